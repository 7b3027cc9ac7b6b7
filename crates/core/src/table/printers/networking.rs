//! Printers for networking.k8s.io and discovery.k8s.io.

use serde_json::Value;

use super::core_group::load_balancer_addresses;
use super::{AGE, NAME, Printer, col};
use crate::table::descriptions as d;
use crate::table::json::{
    age, arr_at, format_label_selector, get, list_with_more, name, opt_int, opt_str, str_at,
};

// === networking.k8s.io ===

pub(super) static INGRESS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        col(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        col(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer",
        ),
        col("Ports", "string", "Ports of TLS configurations that open"),
        AGE,
    ],
    cells: |ing, now| {
        let ports = if arr_at(ing, &["spec", "tls"]).is_empty() {
            "80"
        } else {
            "80, 443"
        };
        vec![
            name(ing),
            Value::from(opt_str(ing, &["spec", "ingressClassName"]).unwrap_or("<none>")),
            Value::from(ingress_hosts(arr_at(ing, &["spec", "rules"]))),
            Value::from(load_balancer_addresses(get(ing, &["status", "loadBalancer"])).join(",")),
            Value::from(ports),
            age(ing, now),
        ]
    },
};

/// Upstream's `formatHosts`: up to three non-empty hosts, `*` when none. Once three hosts are
/// listed, any further rule (even one without a host) makes it `+ N more...`, N counted over
/// all rules.
fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_owned();
    }
    if more {
        format!("{} + {} more...", list.join(","), rules.len() - MAX)
    } else {
        list.join(",")
    }
}

pub(super) static INGRESS_CLASS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Controller",
            "string",
            "Controller that is responsible for handling this class",
        ),
        col(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters",
        ),
        AGE,
    ],
    cells: |ic, now| {
        let params = match get(ic, &["spec", "parameters"]) {
            None => "<none>".to_owned(),
            Some(p) => {
                let kind = match opt_str(p, &["apiGroup"]) {
                    Some(g) => format!("{}.{g}", str_at(p, &["kind"])),
                    None => str_at(p, &["kind"]).to_owned(),
                };
                format!("{kind}/{}", str_at(p, &["name"]))
            }
        };
        vec![
            name(ic),
            Value::from(str_at(ic, &["spec", "controller"])),
            Value::from(params),
            age(ic, now),
        ]
    },
};

pub(super) static NETWORK_POLICY: Printer = Printer {
    columns: &[
        NAME,
        col("Pod-Selector", "string", d::NETPOL_POD_SELECTOR),
        AGE,
    ],
    cells: |np, now| {
        // `spec.podSelector` is a struct upstream: absent reads as the empty selector, `<none>`.
        let selector = format_label_selector(get(np, &["spec", "podSelector"]));
        vec![name(np), Value::from(selector), age(np, now)]
    },
};

pub(super) static SERVICE_CIDR: Printer = Printer {
    columns: &[NAME, col("CIDRs", "string", d::SCIDR_CIDRS), AGE],
    cells: |sc, now| {
        let cidrs: Vec<&str> = arr_at(sc, &["spec", "cidrs"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        vec![name(sc), Value::from(cidrs.join(",")), age(sc, now)]
    },
};

/// Note: upstream defines two columns but prints three cells (name, parent, age); kubectl
/// ignores the extra cell. Drover sends the same cells.
pub(super) static IP_ADDRESS: Printer = Printer {
    columns: &[NAME, col("ParentRef", "string", d::IP_PARENT_REF)],
    cells: |ip, now| {
        let parent = match get(ip, &["spec", "parentRef"]) {
            None => "<none>".to_owned(),
            Some(p) => {
                let resource = match str_at(p, &["group"]) {
                    "" => str_at(p, &["resource"]).to_owned(),
                    g => format!("{}.{g}", str_at(p, &["resource"])),
                };
                let mut out = resource.to_lowercase();
                if let Some(ns) = opt_str(p, &["namespace"]).filter(|ns| !ns.is_empty()) {
                    out = format!("{out}/{ns}");
                }
                format!("{out}/{}", str_at(p, &["name"]))
            }
        };
        vec![name(ip), Value::from(parent), age(ip, now)]
    },
};

// === discovery.k8s.io ===

pub(super) static ENDPOINT_SLICE: Printer = Printer {
    columns: &[
        NAME,
        col("AddressType", "string", d::EPS_ADDRESS_TYPE),
        col("Ports", "string", d::EPS_PORTS),
        col("Endpoints", "string", d::EPS_ENDPOINTS),
        AGE,
    ],
    cells: |eps, now| {
        let ports: Vec<String> = arr_at(eps, &["ports"])
            .iter()
            .map(|p| match (opt_int(p, &["port"]), opt_str(p, &["name"])) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_owned(),
                (None, None) => "*".to_owned(),
            })
            .collect();
        let addresses: Vec<String> = arr_at(eps, &["endpoints"])
            .iter()
            .flat_map(|e| arr_at(e, &["addresses"]))
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        vec![
            name(eps),
            Value::from(str_at(eps, &["addressType"])),
            Value::from(list_with_more(&ports)),
            Value::from(list_with_more(&addresses)),
            age(eps, now),
        ]
    },
};
