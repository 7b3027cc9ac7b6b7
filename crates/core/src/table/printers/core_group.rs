//! Printers for the core (`v1`) group, except pods.

use serde_json::Value;

use super::{AGE, CONTAINERS, IMAGES, NAME, Printer, col, wide};
use crate::table::descriptions as d;
use crate::table::json::{
    age, arr_at, condition, container_cells, format_labels, get, int_at, map_len, name, opt_int,
    opt_str, quantity, str_at,
};
use crate::table::time::{parse_rfc3339, since};

// === Service ===

pub(super) static SERVICE: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", d::SVC_TYPE),
        col("Cluster-IP", "string", d::SVC_CLUSTER_IP),
        col("External-IP", "string", d::SVC_EXTERNAL_IPS),
        col("Port(s)", "string", d::SVC_PORTS),
        AGE,
        wide("Selector", "string", d::SVC_SELECTOR),
    ],
    cells: service,
};

fn service(svc: &Value, now: i64) -> Vec<Value> {
    // Upstream reads `spec.clusterIPs` (always defaulted from `clusterIP`); fall back to the
    // singular field for objects that lack the list.
    let cluster_ip = match arr_at(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
    {
        Some(ip) => ip,
        None => str_at(svc, &["spec", "clusterIP"]),
    };
    let ports: Vec<String> = arr_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let protocol = opt_str(p, &["protocol"]).unwrap_or("TCP");
            match int_at(p, &["nodePort"]) {
                np if np > 0 => format!("{}:{np}/{protocol}", int_at(p, &["port"])),
                _ => format!("{}/{protocol}", int_at(p, &["port"])),
            }
        })
        .collect();
    let ports = ports.join(",");
    vec![
        name(svc),
        Value::from(str_at(svc, &["spec", "type"])),
        Value::from(if cluster_ip.is_empty() {
            "<none>"
        } else {
            cluster_ip
        }),
        Value::from(service_external_ip(svc)),
        Value::from(if ports.is_empty() {
            "<none>".to_owned()
        } else {
            ports
        }),
        age(svc, now),
        Value::from(format_labels(get(svc, &["spec", "selector"]))),
    ]
}

/// Upstream's `getServiceExternalIP` (wide, so load-balancer addresses are not clipped).
fn service_external_ip(svc: &Value) -> String {
    let external: Vec<&str> = arr_at(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, &["spec", "type"]) {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_owned(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut all = load_balancer_addresses(get(svc, &["status", "loadBalancer"]));
            all.extend(external.iter().map(|s| (*s).to_owned()));
            if all.is_empty() {
                "<pending>".to_owned()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

/// The sorted, de-duplicated IPs (or hostnames) of a load-balancer status.
pub(super) fn load_balancer_addresses(status: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = status
        .map(|s| arr_at(s, &["ingress"]))
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| match (str_at(i, &["ip"]), str_at(i, &["hostname"])) {
            ("", "") => None,
            ("", host) => Some(host.to_owned()),
            (ip, _) => Some(ip.to_owned()),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

// === Node ===

pub(super) static NODE: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "The status of the node"),
        col("Roles", "string", "The roles of the node"),
        AGE,
        col("Version", "string", d::NODE_KUBELET),
        wide("Internal-IP", "string", d::NODE_ADDRESSES),
        wide("External-IP", "string", d::NODE_ADDRESSES),
        wide("OS-Image", "string", d::NODE_OS_IMAGE),
        wide("Kernel-Version", "string", d::NODE_KERNEL),
        wide("Container-Runtime", "string", d::NODE_RUNTIME),
    ],
    cells: node,
};

fn node(node: &Value, now: i64) -> Vec<Value> {
    // The last condition of a type wins, as in upstream's condition map.
    let ready = arr_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if get(node, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = get(node, &["metadata", "labels"])
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None if k == "kubernetes.io/role" => v.as_str().filter(|v| !v.is_empty()),
            None => None,
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    let address = |ty: &str| {
        arr_at(node, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == ty)
            .map_or("<none>", |a| str_at(a, &["address"]))
            .to_owned()
    };
    let info = |field: &str| match str_at(node, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_owned(),
        s => s.to_owned(),
    };
    vec![
        name(node),
        Value::from(status.join(",")),
        Value::from(if roles.is_empty() {
            "<none>".to_owned()
        } else {
            roles.join(",")
        }),
        age(node, now),
        Value::from(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        Value::from(address("InternalIP")),
        Value::from(address("ExternalIP")),
        Value::from(info("osImage")),
        Value::from(info("kernelVersion")),
        Value::from(info("containerRuntimeVersion")),
    ]
}

// === Event (core/v1 and events.k8s.io/v1) ===

const EVENT_COLUMNS: &[crate::table::Column] = &[
    col("Last Seen", "string", d::EV_LAST),
    col("Type", "string", d::EV_TYPE),
    col("Reason", "string", d::EV_REASON),
    col("Object", "string", d::EV_INVOLVED),
    wide("Subobject", "string", d::REF_FIELD_PATH),
    wide("Source", "string", d::EV_SOURCE),
    col("Message", "string", d::EV_MESSAGE),
    wide("First Seen", "string", d::EV_FIRST),
    wide("Count", "string", d::EV_COUNT),
    crate::table::Column::new_static("Name", "string", "name", d::OM_NAME, 1),
];

pub(super) static EVENT: Printer = Printer {
    columns: EVENT_COLUMNS,
    cells: core_event,
};
pub(super) static EVENTS_V1_EVENT: Printer = Printer {
    columns: EVENT_COLUMNS,
    cells: events_v1_event,
};

/// The fields of an event that the printer reads, from either API shape.
struct EventView<'a> {
    first: Option<&'a Value>,
    last: Option<&'a Value>,
    event_time: Option<&'a Value>,
    series: Option<&'a Value>,
    count: i64,
    object: &'a Value,
    component: &'a str,
    host: &'a str,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    message: &'a str,
}

fn core_event(ev: &Value, now: i64) -> Vec<Value> {
    event(
        ev,
        &EventView {
            first: get(ev, &["firstTimestamp"]),
            last: get(ev, &["lastTimestamp"]),
            event_time: get(ev, &["eventTime"]),
            series: get(ev, &["series"]),
            count: int_at(ev, &["count"]),
            object: get(ev, &["involvedObject"]).unwrap_or(&Value::Null),
            component: str_at(ev, &["source", "component"]),
            host: str_at(ev, &["source", "host"]),
            reporting_controller: str_at(ev, &["reportingComponent"]),
            reporting_instance: str_at(ev, &["reportingInstance"]),
            message: str_at(ev, &["message"]),
        },
        now,
    )
}

/// events.k8s.io/v1 renames the fields; upstream converts to the internal (core) event first.
fn events_v1_event(ev: &Value, now: i64) -> Vec<Value> {
    event(
        ev,
        &EventView {
            first: get(ev, &["deprecatedFirstTimestamp"]),
            last: get(ev, &["deprecatedLastTimestamp"]),
            event_time: get(ev, &["eventTime"]),
            series: get(ev, &["series"]),
            count: int_at(ev, &["deprecatedCount"]),
            object: get(ev, &["regarding"]).unwrap_or(&Value::Null),
            component: str_at(ev, &["deprecatedSource", "component"]),
            host: str_at(ev, &["deprecatedSource", "host"]),
            reporting_controller: str_at(ev, &["reportingController"]),
            reporting_instance: str_at(ev, &["reportingInstance"]),
            message: str_at(ev, &["note"]),
        },
        now,
    )
}

fn event(ev: &Value, v: &EventView<'_>, now: i64) -> Vec<Value> {
    let present = |t: Option<&Value>| t.and_then(Value::as_str).and_then(parse_rfc3339).is_some();
    let first = if present(v.first) {
        since(v.first, now)
    } else {
        since(v.event_time, now)
    };
    let mut last = if present(v.last) {
        since(v.last, now)
    } else {
        first.clone()
    };
    let mut count = v.count;
    if let Some(series) = v.series {
        last = since(get(series, &["lastObservedTime"]), now);
        count = int_at(series, &["count"]);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }
    let kind = str_at(v.object, &["kind"]).to_lowercase();
    let target = match str_at(v.object, &["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = if v.component.is_empty() {
        v.reporting_controller
    } else {
        v.component
    };
    let instance = if v.host.is_empty() {
        v.reporting_instance
    } else {
        v.host
    };
    let source = if instance.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        Value::from(last),
        Value::from(str_at(ev, &["type"])),
        Value::from(str_at(ev, &["reason"])),
        Value::from(target),
        Value::from(str_at(v.object, &["fieldPath"])),
        Value::from(source),
        Value::from(v.message.trim()),
        Value::from(first),
        Value::from(count),
        name(ev),
    ]
}

// === Small core kinds ===

pub(super) static NAMESPACE: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "The status of the namespace"),
        AGE,
    ],
    cells: |ns, now| {
        vec![
            name(ns),
            Value::from(str_at(ns, &["status", "phase"])),
            age(ns, now),
        ]
    },
};

pub(super) static SECRET: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", d::SECRET_TYPE),
        col("Data", "string", d::SECRET_DATA),
        AGE,
    ],
    cells: |s, now| {
        let data = map_len(s, &["data"]);
        vec![
            name(s),
            Value::from(str_at(s, &["type"])),
            Value::from(data),
            age(s, now),
        ]
    },
};

pub(super) static CONFIG_MAP: Printer = Printer {
    columns: &[NAME, col("Data", "string", d::CM_DATA), AGE],
    cells: |cm, now| {
        let data = map_len(cm, &["data"]) + map_len(cm, &["binaryData"]);
        vec![name(cm), Value::from(data), age(cm, now)]
    },
};

pub(super) static SERVICE_ACCOUNT: Printer = Printer {
    columns: &[NAME, col("Secrets", "string", d::SA_SECRETS), AGE],
    cells: |sa, now| {
        vec![
            name(sa),
            Value::from(arr_at(sa, &["secrets"]).len()),
            age(sa, now),
        ]
    },
};

pub(super) static COMPONENT_STATUS: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "Status of the component conditions"),
        col("Message", "string", "Message of the component conditions"),
        col("Error", "string", "Error of the component conditions"),
    ],
    cells: |cs, _| {
        let healthy = condition(arr_at(cs, &["conditions"]), "Healthy");
        let status = match healthy {
            Some(c) if str_at(c, &["status"]) == "True" => "Healthy",
            Some(_) => "Unhealthy",
            None => "Unknown",
        };
        let field = |f: &str| Value::from(healthy.map_or("", |c| str_at(c, &[f])));
        vec![
            name(cs),
            Value::from(status),
            field("message"),
            field("error"),
        ]
    },
};

pub(super) static POD_TEMPLATE: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Containers",
            "string",
            "Names of each container in the template.",
        ),
        col(
            "Images",
            "string",
            "Images referenced by each container in the template.",
        ),
        col("Pod Labels", "string", "The labels for the pod template."),
    ],
    cells: |pt, _| {
        let (names, images) = container_cells(arr_at(pt, &["template", "spec", "containers"]));
        let labels = format_labels(get(pt, &["template", "metadata", "labels"]));
        vec![name(pt), names, images, Value::from(labels)]
    },
};

pub(super) static REPLICATION_CONTROLLER: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", d::RC_SPEC_REPLICAS),
        col("Current", "integer", d::RC_STATUS_REPLICAS),
        col("Ready", "integer", d::RC_STATUS_READY),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::RC_SPEC_SELECTOR),
    ],
    cells: |rc, now| {
        let (names, images) =
            container_cells(arr_at(rc, &["spec", "template", "spec", "containers"]));
        vec![
            name(rc),
            // `spec.replicas` defaults to 1.
            Value::from(opt_int(rc, &["spec", "replicas"]).unwrap_or(1)),
            Value::from(int_at(rc, &["status", "replicas"])),
            Value::from(int_at(rc, &["status", "readyReplicas"])),
            age(rc, now),
            names,
            images,
            Value::from(format_labels(get(rc, &["spec", "selector"]))),
        ]
    },
};

pub(super) static ENDPOINTS: Printer = Printer {
    columns: &[NAME, col("Endpoints", "string", d::EP_SUBSETS), AGE],
    cells: |ep, now| vec![name(ep), Value::from(format_endpoints(ep)), age(ep, now)],
};

/// Upstream's `formatEndpoints`: up to three `ip:port` pairs, then `+ N more...`.
fn format_endpoints(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = arr_at(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            list.extend(
                addresses
                    .iter()
                    .map(|a| str_at(a, &["ip"]).to_owned())
                    .take(MAX - list.len()),
            );
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses.iter().take(MAX - list.len()) {
                list.push(join_host_port(str_at(a, &["ip"]), int_at(port, &["port"])));
            }
        }
    }
    let joined = list.join(",");
    if count > list.len() {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// Go's `net.JoinHostPort`: IPv6 hosts are bracketed.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) static RESOURCE_QUOTA: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        col(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        AGE,
    ],
    cells: resource_quota,
};

fn resource_quota(rq: &Value, now: i64) -> Vec<Value> {
    let hard = get(rq, &["status", "hard"]).and_then(Value::as_object);
    let mut resources: Vec<&String> = hard.into_iter().flat_map(|m| m.keys()).collect();
    resources.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for r in resources {
        let used = quantity(get(rq, &["status", "used", r]));
        let limit = quantity(get(rq, &["status", "hard", r]));
        let entry = format!("{r}: {used}/{limit}");
        let mut pieces = r.split('.');
        if pieces.next() == Some("limits") && pieces.next().is_some() {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(rq),
        Value::from(requests.join(", ")),
        Value::from(limits.join(", ")),
        age(rq, now),
    ]
}
