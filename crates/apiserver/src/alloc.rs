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
        let obj = ip_address(ip, ns, name);
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

/// The IPAddress object that records `ip` as the ClusterIP of Service `ns/name`.
fn ip_address(ip: Ipv4Addr, ns: &str, name: &str) -> Value {
    json!({
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
    })
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

/// The Service's IPv4 cluster IP, if it has one.
fn cluster_ip(svc: &Value) -> Option<Ipv4Addr> {
    svc.pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// The node ports the Service's ports hold.
fn node_ports(svc: &Value) -> impl Iterator<Item = u16> + '_ {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
        .map(|n| n as u16)
}

/// Frees a deleted service's ClusterIP and node ports.
pub(crate) async fn release_service(state: &Arc<State>, svc: &Value) {
    if let Some(ip) = cluster_ip(svc) {
        release_ip(state, ip).await;
    }
    for n in node_ports(svc) {
        release_node_port(state, n).await;
    }
}

// === repair ===

/// How often the repair controller looks for leaks.
const REPAIR_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// How long an inconsistency must persist, unchanged, before the repair acts on it: an
/// allocation is made before its Service is stored and released after the Service is gone, so
/// a short-lived mismatch is normal.
const REPAIR_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// An inconsistency between the Services and the allocations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Leak {
    /// An allocator-managed IPAddress no Service uses.
    Ip(Ipv4Addr),
    /// A node-port key no Service uses.
    Port(u16),
    /// A Service whose ClusterIP has no IPAddress (ns, name).
    MissingIp(Ipv4Addr, String, String),
}

/// What one repair pass found (from the watch cache and the node-port keys).
#[derive(Default)]
struct Observed {
    /// ClusterIP → the Service (ns, name) holding it.
    ips_in_use: std::collections::HashMap<Ipv4Addr, (String, String)>,
    ports_in_use: std::collections::HashSet<u16>,
    /// Allocator-managed IPAddress objects → their resourceVersion.
    ip_objects: std::collections::HashMap<Ipv4Addr, drover_store::Revision>,
    /// Node-port keys → their revision.
    port_keys: std::collections::HashMap<u16, drover_store::Revision>,
}

/// What to do about a leak that persisted through the grace period.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RepairOp {
    /// Delete the IPAddress if it is still at this revision.
    ReleaseIp(Ipv4Addr, drover_store::Revision),
    /// Delete the node-port key if it is still at this revision.
    ReleasePort(u16, drover_store::Revision),
    /// Create the missing IPAddress for the Service (ns, name).
    RecordIp(Ipv4Addr, String, String),
}

/// Suspected leaks: when each was first seen, and the revision it was seen at (a changed
/// revision restarts the grace period).
type Suspects = std::collections::HashMap<Leak, (drover_store::Revision, std::time::Instant)>;

/// Compares the allocations with the Services; returns the repairs whose inconsistency has
/// lasted `grace` unchanged, and keeps the rest as suspects.
fn plan_repair(
    seen: &Observed,
    suspects: &mut Suspects,
    now: std::time::Instant,
    grace: std::time::Duration,
) -> Vec<RepairOp> {
    let mut found: Vec<(Leak, drover_store::Revision)> = Vec::new();
    for (ip, rev) in &seen.ip_objects {
        if !seen.ips_in_use.contains_key(ip) {
            found.push((Leak::Ip(*ip), *rev));
        }
    }
    for (port, rev) in &seen.port_keys {
        if !seen.ports_in_use.contains(port) {
            found.push((Leak::Port(*port), *rev));
        }
    }
    for (ip, (ns, name)) in &seen.ips_in_use {
        if !seen.ip_objects.contains_key(ip) {
            found.push((Leak::MissingIp(*ip, ns.clone(), name.clone()), 0));
        }
    }
    let mut next = Suspects::new();
    let mut ops = Vec::new();
    for (leak, rev) in found {
        let since = match suspects.get(&leak) {
            Some((r, t)) if *r == rev => *t,
            _ => now,
        };
        if now.duration_since(since) < grace {
            next.insert(leak, (rev, since));
            continue;
        }
        ops.push(match leak {
            Leak::Ip(ip) => RepairOp::ReleaseIp(ip, rev),
            Leak::Port(p) => RepairOp::ReleasePort(p, rev),
            Leak::MissingIp(ip, ns, name) => RepairOp::RecordIp(ip, ns, name),
        });
    }
    *suspects = next;
    ops
}

/// Reads the Services, IPAddresses and node-port keys.
async fn observe(state: &Arc<State>) -> ApiResult<Observed> {
    let mut seen = Observed::default();
    let cidr = state.config.service_cidr;
    if let Some(svc_res) = state.resources.find("", "v1", "services") {
        for (_, e) in state.cache.snapshot(&svc_res.key_prefix(), None).items {
            let Ok(svc) = crate::objects::decode_stored(&e.value, e.mod_revision) else {
                continue;
            };
            let ns = meta_str(&svc, "namespace").unwrap_or("").to_owned();
            let name = meta_str(&svc, "name").unwrap_or("").to_owned();
            if let Some(ip) = cluster_ip(&svc).filter(|ip| cidr.contains(*ip)) {
                seen.ips_in_use.insert(ip, (ns, name));
            }
            seen.ports_in_use.extend(node_ports(&svc));
        }
    }
    if let Some(ip_res) = state
        .resources
        .find("networking.k8s.io", "v1", "ipaddresses")
    {
        for (key, e) in state.cache.snapshot(&ip_res.key_prefix(), None).items {
            let managed = crate::objects::decode_stored(&e.value, e.mod_revision)
                .ok()
                .is_some_and(|o| {
                    o.pointer("/metadata/labels/ipaddress.kubernetes.io~1managed-by")
                        == Some(&json!("ipallocator.k8s.io"))
                });
            if let Some(ip) = key.rsplit('/').next().and_then(|s| s.parse().ok())
                && managed
            {
                seen.ip_objects.insert(ip, e.mod_revision);
            }
        }
    }
    let ports = state
        .store
        .range(drover_store::RangeRequest::prefix(NODE_PORT_PREFIX))
        .await?;
    for kv in ports.kvs {
        if let Ok(p) = kv.key[NODE_PORT_PREFIX.len()..].parse() {
            seen.port_keys.insert(p, kv.mod_revision);
        }
    }
    Ok(seen)
}

/// The allocators' repair controller (upstream's ClusterIP and node-port repair loops):
/// releases IPAddresses and node ports no Service holds, and records the IPAddress of a
/// Service that lacks one, once the mismatch has lasted [`REPAIR_GRACE`]. Runs while this
/// server leads.
pub(crate) async fn run_repair(state: Arc<State>) {
    let mut shutdown = state.shutdown.clone();
    let mut suspects = Suspects::new();
    loop {
        match observe(&state).await {
            Ok(seen) => {
                let ops = plan_repair(
                    &seen,
                    &mut suspects,
                    std::time::Instant::now(),
                    REPAIR_GRACE,
                );
                for op in ops {
                    apply_repair(&state, op).await;
                }
            }
            Err(e) => tracing::warn!("allocator repair: cannot read the allocations: {e:?}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REPAIR_INTERVAL) => {}
            _ = crate::state::shutting_down(&mut shutdown) => return,
        }
    }
}

async fn apply_repair(state: &Arc<State>, op: RepairOp) {
    let ip_res = state
        .resources
        .find("networking.k8s.io", "v1", "ipaddresses");
    let result = match (&op, &ip_res) {
        (RepairOp::ReleaseIp(ip, rev), Some(res)) => state
            .store
            .delete(&res.key(None, &ip.to_string()), *rev)
            .await
            .map(|_| ()),
        (RepairOp::ReleasePort(p, rev), _) => state
            .store
            .delete(&format!("{NODE_PORT_PREFIX}{p}"), *rev)
            .await
            .map(|_| ()),
        (RepairOp::RecordIp(ip, ns, name), Some(res)) => {
            let obj = ip_address(*ip, ns, name);
            match state.objects.create(res, None, &ip.to_string(), obj).await {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
                Err(e) => {
                    tracing::warn!("allocator repair: cannot record {ip} for {ns}/{name}: {e:?}");
                    Ok(())
                }
            }
        }
        (_, None) => Ok(()),
    };
    match result {
        Ok(()) => tracing::info!("allocator repair: {op:?}"),
        // Changed since it was observed (reallocated, or already released): not a leak.
        Err(drover_store::Error::Conflict { .. } | drover_store::Error::NotFound { .. }) => {}
        Err(e) => tracing::warn!("allocator repair: {op:?} failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn observed() -> Observed {
        let mut o = Observed::default();
        o.ips_in_use
            .insert(ip("10.43.0.1"), ("default".into(), "kubernetes".into()));
        o.ip_objects.insert(ip("10.43.0.1"), 5);
        o.ports_in_use.insert(30001);
        o.port_keys.insert(30001, 6);
        o
    }

    #[test]
    fn a_consistent_state_needs_no_repair() {
        let mut suspects = Suspects::new();
        let now = Instant::now();
        assert!(plan_repair(&observed(), &mut suspects, now, Duration::from_secs(10)).is_empty());
        assert!(suspects.is_empty());
    }

    #[test]
    fn leaks_are_repaired_only_after_the_grace_period_unchanged() {
        let mut seen = observed();
        seen.ip_objects.insert(ip("10.43.0.9"), 7); // no Service
        seen.port_keys.insert(30500, 8); // no Service
        seen.ips_in_use
            .insert(ip("10.43.0.10"), ("ns".into(), "web".into())); // no IPAddress
        let grace = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut suspects = Suspects::new();
        assert!(
            plan_repair(&seen, &mut suspects, t0, grace).is_empty(),
            "too young"
        );
        assert_eq!(suspects.len(), 3);
        assert!(plan_repair(&seen, &mut suspects, t0 + grace / 2, grace).is_empty());
        // The leaked IP was reallocated in between (new revision): its clock restarts.
        seen.ip_objects.insert(ip("10.43.0.9"), 12);
        let mut ops = plan_repair(&seen, &mut suspects, t0 + grace, grace);
        ops.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(
            ops,
            vec![
                RepairOp::RecordIp(ip("10.43.0.10"), "ns".into(), "web".into()),
                RepairOp::ReleasePort(30500, 8),
            ]
        );
        assert_eq!(
            plan_repair(&seen, &mut suspects, t0 + grace + grace, grace),
            vec![RepairOp::ReleaseIp(ip("10.43.0.9"), 12)]
        );
    }

    #[test]
    fn a_mismatch_that_resolves_itself_is_forgotten() {
        let mut seen = observed();
        seen.ip_objects.insert(ip("10.43.0.9"), 7);
        let grace = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut suspects = Suspects::new();
        plan_repair(&seen, &mut suspects, t0, grace);
        // Its Service got stored.
        seen.ips_in_use
            .insert(ip("10.43.0.9"), ("ns".into(), "late".into()));
        assert!(plan_repair(&seen, &mut suspects, t0 + grace * 2, grace).is_empty());
        assert!(suspects.is_empty());
    }
}
