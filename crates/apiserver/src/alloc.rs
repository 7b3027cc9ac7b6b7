//! ClusterIP and NodePort allocation.
//!
//! A ClusterIP is held by an `IPAddress` object (networking.k8s.io/v1) named after the
//! address, as upstream 1.33 does; a node port by a datastore key. Both are taken with the
//! store's create-if-absent, so two requests — on one server or on several sharing the
//! datastore — can never hold the same one.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use drover_store::Store;
use rand::Rng as _;
use serde_json::{Value, json};

use crate::meta::meta_str;
use crate::state::State;
use crate::status::{ApiError, ApiResult, Cause, Target};

const NODE_PORT_MIN: u16 = 30000;
const NODE_PORT_MAX: u16 = 32767;
const NODE_PORT_PREFIX: &str = "/drover/nodeports/";

fn invalid(name: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::Invalid {
        target: Target::new("", "services", name),
        kind: "Service".into(),
        causes,
    }
}

/// Allocates the service's ClusterIP and node ports (and fills `clusterIPs`).
pub(crate) async fn allocate_service(state: &Arc<State>, svc: &mut Value) -> ApiResult<()> {
    let name = meta_str(svc, "name").unwrap_or("").to_owned();
    let ns = meta_str(svc, "namespace").unwrap_or("").to_owned();
    let ty = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if ty == "ExternalName" {
        return Ok(());
    }
    let requested = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let ip = if requested == "None" {
        None
    } else if requested.is_empty() {
        Some(allocate_ip(state, &ns, &name, None).await?)
    } else {
        let parsed: Ipv4Addr = requested.parse().map_err(|_| {
            invalid(
                &name,
                vec![Cause::invalid(
                    "spec.clusterIPs[0]",
                    &json!(requested),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )],
            )
        })?;
        Some(allocate_ip(state, &ns, &name, Some(parsed)).await?)
    };
    if let Some(ip) = ip {
        let spec = crate::meta::object_mut(svc, "spec");
        spec.insert("clusterIP".into(), ip.to_string().into());
        spec.insert("clusterIPs".into(), json!([ip.to_string()]));
    } else {
        crate::meta::object_mut(svc, "spec").insert("clusterIPs".into(), json!(["None"]));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        let mut taken = Vec::new();
        let ports = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut);
        if let Some(ports) = ports {
            for (i, p) in ports.iter_mut().enumerate() {
                // 0 means "allocate one": protobuf clients (kubectl 1.32 `create service
                // nodeport`) always send the field, and upstream treats zero as unset.
                let want = p
                    .get("nodePort")
                    .and_then(Value::as_u64)
                    .filter(|&n| n != 0)
                    .map(|n| n as u16);
                match allocate_node_port(state, want).await {
                    Ok(port) => {
                        p["nodePort"] = json!(port);
                        taken.push(port);
                    }
                    Err(msg) => {
                        for t in taken {
                            release_node_port(state, t).await;
                        }
                        if let Some(ip) = ip {
                            release_ip(state, ip).await;
                        }
                        return Err(invalid(
                            &name,
                            vec![Cause::invalid(
                                format!("spec.ports[{i}].nodePort"),
                                &json!(want),
                                &msg,
                            )],
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

async fn allocate_ip(
    state: &Arc<State>,
    ns: &str,
    name: &str,
    want: Option<Ipv4Addr>,
) -> ApiResult<Ipv4Addr> {
    let cidr = state.config.service_cidr;
    let Some(res) = state
        .resources
        .find("networking.k8s.io", "v1", "ipaddresses")
    else {
        return Err(ApiError::Internal(
            "the ipaddresses resource is not served".into(),
        ));
    };
    let candidates: Vec<Ipv4Addr> = match want {
        Some(ip) => {
            if !cidr.contains(ip) || ip == cidr.nth(0) || ip == cidr.nth(cidr.size() - 1) {
                return Err(invalid(
                    name,
                    vec![Cause::invalid(
                        "spec.clusterIPs",
                        &json!([ip.to_string()]),
                        &format!(
                            "failed to allocate IP {ip}: provided IP is not in the valid range. The range of valid IPs is {cidr}"
                        ),
                    )],
                ));
            }
            vec![ip]
        }
        None => {
            let mut rng = rand::rng();
            // Random probing keeps allocation O(1) expected; fall back to a scan when full.
            let usable = cidr.size().saturating_sub(2).max(1);
            let mut v: Vec<Ipv4Addr> = (0..32)
                .map(|_| cidr.nth(1 + rng.random_range(0..usable)))
                .collect();
            v.extend((1..=usable).map(|n| cidr.nth(n)));
            v
        }
    };
    for ip in candidates {
        let obj = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IPAddress",
            "metadata": {
                "name": ip.to_string(),
                "uid": crate::meta::new_uid(),
                "creationTimestamp": crate::meta::rfc3339(crate::meta::now_secs()),
                "generation": 1,
                "labels": {
                    "ipaddress.kubernetes.io/ip-family": "IPv4",
                    "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
                },
            },
            "spec": {"parentRef": {"group": "", "resource": "services", "namespace": ns, "name": name}},
        });
        match state.objects.create(&res, None, &ip.to_string(), obj).await {
            Ok(_) => return Ok(ip),
            Err(ApiError::AlreadyExists(_)) => {
                if want.is_some() {
                    return Err(invalid(
                        name,
                        vec![Cause::invalid(
                            "spec.clusterIPs",
                            &json!([ip.to_string()]),
                            &format!(
                                "failed to allocate IP {ip}: provided IP is already allocated"
                            ),
                        )],
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::Internal(format!(
        "failed to allocate a serviceIP: range {cidr} is full"
    )))
}

async fn release_ip(state: &Arc<State>, ip: Ipv4Addr) {
    if let Some(res) = state
        .resources
        .find("networking.k8s.io", "v1", "ipaddresses")
    {
        let _ = state.store.delete(&res.key(None, &ip.to_string()), 0).await;
    }
}

async fn allocate_node_port(state: &Arc<State>, want: Option<u16>) -> Result<u16, String> {
    let candidates: Vec<u16> = match want {
        Some(p) if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&p) => {
            return Err(format!(
                "provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"
            ));
        }
        Some(p) => vec![p],
        None => {
            let mut rng = rand::rng();
            let mut v: Vec<u16> = (0..32)
                .map(|_| rng.random_range(NODE_PORT_MIN..=NODE_PORT_MAX))
                .collect();
            v.extend(NODE_PORT_MIN..=NODE_PORT_MAX);
            v
        }
    };
    for port in candidates {
        match state
            .store
            .create(
                &format!("{NODE_PORT_PREFIX}{port}"),
                Bytes::from_static(b"1"),
            )
            .await
        {
            Ok(_) => return Ok(port),
            Err(drover_store::Error::AlreadyExists { .. }) => {
                if want.is_some() {
                    return Err("provided port is already allocated".to_string());
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("range is full".into())
}

async fn release_node_port(state: &Arc<State>, port: u16) {
    let _ = state
        .store
        .delete(&format!("{NODE_PORT_PREFIX}{port}"), 0)
        .await;
}

/// Frees a deleted service's ClusterIP and node ports.
pub(crate) async fn release_service(state: &Arc<State>, svc: &Value) {
    if let Some(ip) = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
    {
        release_ip(state, ip).await;
    }
    for p in svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = p.get("nodePort").and_then(Value::as_u64) {
            release_node_port(state, n as u16).await;
        }
    }
}
