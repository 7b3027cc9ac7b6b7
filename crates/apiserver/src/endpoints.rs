//! The endpoints of the `kubernetes` Service: every live API server of the cluster, as
//! upstream's "lease" endpoint reconciler keeps them (`--endpoint-reconciler-type=lease`, the
//! default since 1.11). Each server keeps its own Lease in `kube-system` — named after its
//! address, labelled `apiserver.kubernetes.io/identity=kube-apiserver` like upstream's identity
//! leases — renews it every [`RENEW`], and after each renewal rewrites the `kubernetes`
//! Endpoints and EndpointSlice(s) to the addresses of the Leases that have not expired. A server
//! that stops cleanly deletes its Lease and removes itself at once; one that dies drops out
//! when its Lease expires ([`LEASE_SECONDS`], upstream's master lease TTL is 15 s too).
//!
//! Every server runs this (not only the leader): each one is the only writer of its own Lease,
//! and the endpoint objects are a pure function of the Leases, written only when they differ,
//! with compare-and-swap, so servers converge instead of fighting.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use drover_core::registry::Resource;
use serde_json::{Value, json};

use crate::leader::{micro_time, now_micros};
use crate::meta::{self, meta_str};
use crate::objects::{Decision, decode_stored};
use crate::state::State;
use crate::status::{ApiError, ApiResult};

/// Seconds a server's Lease stays valid without renewal.
pub(crate) const LEASE_SECONDS: i64 = 15;
/// How often a server renews its Lease and reconciles the endpoints.
const RENEW: Duration = Duration::from_secs(5);
/// Leases expired this long ago are deleted (upstream garbage-collects identity leases after
/// an hour too).
const FORGET_AFTER_SECS: i64 = 3600;
/// The label every API server identity Lease carries (upstream's value).
const IDENTITY_LABEL: &str = "apiserver.kubernetes.io/identity";
/// Where a Lease records the address its server serves on (`host:port`).
const ADDRESS_ANNOTATION: &str = "drover.io/apiserver-address";
/// The namespace of the identity Leases.
const LEASE_NAMESPACE: &str = "kube-system";

/// A built-in `v1` resource of `group`.
fn res(state: &State, group: &str, plural: &str) -> Resource {
    crate::bootstrap::res(state, group, "v1", plural)
}

/// The host and port this server advertises: its bound address.
fn advertised(state: &State) -> (String, u16) {
    match state.address.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            p.parse().unwrap_or(state.config.https_port),
        ),
        None => ("127.0.0.1".to_owned(), state.config.https_port),
    }
}

/// The Lease name for an address: `apiserver-` and the address with every character that
/// a name cannot hold turned into `-` (`127.0.0.1:6443` → `apiserver-127-0-0-1-6443`).
pub(crate) fn lease_name(host: &str, port: u16) -> String {
    let mut name = String::from("apiserver");
    for part in host
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        name.push('-');
        name.push_str(&part.to_ascii_lowercase());
    }
    name.push('-');
    name.push_str(&port.to_string());
    name
}

/// One server as its Lease describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    host: String,
    port: u16,
    /// When the Lease expires (µs since the epoch).
    expires: i64,
}

fn member(lease: &Value) -> Option<Member> {
    let address = lease
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ADDRESS_ANNOTATION))
        .and_then(Value::as_str)?;
    let (host, port) = address.rsplit_once(':')?;
    let renew = lease.pointer("/spec/renewTime").and_then(Value::as_str)?;
    let (secs, nanos) = drover_core::time::parse_rfc3339(renew)?;
    let duration = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(LEASE_SECONDS);
    Some(Member {
        name: meta_str(lease, "name")?.to_owned(),
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: port.parse().ok()?,
        expires: (secs + duration) * 1_000_000 + i64::from(nanos / 1000),
    })
}

/// Writes (creates or renews) this server's Lease.
async fn renew(state: &State, host: &str, port: u16) -> ApiResult<()> {
    let lease_res = res(state, "coordination.k8s.io", "leases");
    let name = lease_name(host, port);
    let now = micro_time(now_micros());
    // Read once per process, not at every renewal.
    static HOSTNAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hostname = HOSTNAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_ascii_lowercase())
            .unwrap_or_default()
    });
    let address = format!("{host}:{port}");
    state
        .objects
        .update(&lease_res, Some(LEASE_NAMESPACE), &name, |current| {
            let mut lease = current.unwrap_or_else(|| {
                json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": LEASE_NAMESPACE,
                                 "uid": meta::new_uid(),
                                 "creationTimestamp": meta::rfc3339(meta::now_secs())},
                    "spec": {"acquireTime": now},
                })
            });
            let m = meta::metadata_mut(&mut lease);
            m.remove("resourceVersion");
            let labels = m
                .entry("labels")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(labels) = labels {
                labels.insert(IDENTITY_LABEL.into(), "kube-apiserver".into());
                labels.insert("kubernetes.io/hostname".into(), hostname.as_str().into());
            }
            let annotations = m
                .entry("annotations")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(a) = annotations {
                a.insert(ADDRESS_ANNOTATION.into(), address.clone().into());
            }
            let spec = meta::object_mut(&mut lease, "spec");
            spec.insert("holderIdentity".into(), name.clone().into());
            spec.insert("leaseDurationSeconds".into(), LEASE_SECONDS.into());
            spec.insert("renewTime".into(), now.clone().into());
            Ok(Decision::Write(lease))
        })
        .await
        .map(|_| ())
}

/// The live servers: every unexpired identity Lease, plus `this` server unless it resigned.
/// Leases expired for more than [`FORGET_AFTER_SECS`] are returned separately for deletion.
fn members(state: &State, this: Option<&Member>) -> (Vec<Member>, Vec<String>) {
    let lease_res = res(state, "coordination.k8s.io", "leases");
    let prefix = format!("{}{LEASE_NAMESPACE}/", lease_res.key_prefix());
    let now = now_micros();
    let (mut live, mut forget) = (Vec::new(), Vec::new());
    for (_, entry) in state.cache.snapshot(&prefix, None).items {
        let Ok(lease) = decode_stored(&entry.value, entry.mod_revision) else {
            continue;
        };
        let is_identity = lease
            .pointer("/metadata/labels")
            .and_then(|l| l.get(IDENTITY_LABEL))
            .is_some();
        let Some(m) = member(&lease).filter(|_| is_identity) else {
            continue;
        };
        if this.is_some_and(|t| t.name == m.name) {
            continue;
        }
        if m.expires > now {
            live.push(m);
        } else if now - m.expires > FORGET_AFTER_SECS * 1_000_000 {
            forget.push(m.name);
        }
    }
    live.extend(this.cloned());
    (live, forget)
}

/// Hosts by port: the shape both Endpoints subsets and EndpointSlices take.
fn by_port(members: &[Member]) -> BTreeMap<u16, BTreeSet<String>> {
    let mut out: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    for m in members {
        out.entry(m.port).or_default().insert(m.host.clone());
    }
    out
}

/// The `kubernetes` Endpoints' subsets for these servers.
fn subsets(groups: &BTreeMap<u16, BTreeSet<String>>) -> Value {
    groups
        .iter()
        .map(|(port, hosts)| {
            json!({
                "addresses": hosts.iter().map(|h| json!({"ip": h})).collect::<Vec<_>>(),
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            })
        })
        .collect()
}

/// Name of the EndpointSlice for the `index`-th port (by port number): `kubernetes` for the
/// first, as upstream names its one slice; servers on other ports (several servers on one
/// host) get `kubernetes-<port>`, since one slice has one set of ports.
fn slice_name(index: usize, port: u16) -> String {
    if index == 0 {
        "kubernetes".to_owned()
    } else {
        format!("kubernetes-{port}")
    }
}

/// Writes `fields` into the object `name` of `r` in `default` unless it already has them;
/// creates it from `base` when absent.
async fn converge(
    state: &State,
    r: &Resource,
    name: &str,
    base: Value,
    fields: &[(&str, Value)],
) -> ApiResult<()> {
    state
        .objects
        .update(r, Some("default"), name, |current| {
            let mut obj = match current {
                Some(obj) => {
                    if fields.iter().all(|(k, v)| obj.get(*k) == Some(v)) {
                        return Ok(Decision::Unchanged(obj));
                    }
                    obj
                }
                None => {
                    let mut obj = base.clone();
                    let m = meta::metadata_mut(&mut obj);
                    m.insert("uid".into(), meta::new_uid().into());
                    m.insert(
                        "creationTimestamp".into(),
                        meta::rfc3339(meta::now_secs()).into(),
                    );
                    obj
                }
            };
            meta::metadata_mut(&mut obj).remove("resourceVersion");
            if let Some(o) = obj.as_object_mut() {
                for (k, v) in fields {
                    o.insert((*k).to_owned(), v.clone());
                }
            }
            Ok(Decision::Write(obj))
        })
        .await
        .map(|_| ())
}

/// Rewrites the `kubernetes` Endpoints and EndpointSlices to `members`.
async fn write_endpoints(state: &State, members: &[Member]) -> ApiResult<()> {
    let groups = by_port(members);
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
    });
    converge(
        state,
        &res(state, "", "endpoints"),
        "kubernetes",
        endpoints,
        &[("subsets", subsets(&groups))],
    )
    .await?;
    let slice_res = res(state, "discovery.k8s.io", "endpointslices");
    let mut wanted = BTreeSet::new();
    for (i, (port, hosts)) in groups.iter().enumerate() {
        let name = slice_name(i, *port);
        let base = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes",
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        });
        let endpoints: Vec<Value> = hosts
            .iter()
            .map(|h| json!({"addresses": [h], "conditions": {"ready": true}}))
            .collect();
        let fields = [
            ("addressType", json!("IPv4")),
            ("endpoints", Value::from(endpoints)),
            (
                "ports",
                json!([{"name": "https", "port": port, "protocol": "TCP"}]),
            ),
        ];
        converge(state, &slice_res, &name, base, &fields).await?;
        wanted.insert(name);
    }
    // Slices for ports no live server uses any more.
    let prefix = format!("{}default/kubernetes-", slice_res.key_prefix());
    for (key, _) in state.cache.snapshot(&prefix, None).items {
        let name = key.rsplit('/').next().unwrap_or_default().to_owned();
        if !wanted.contains(&name) {
            delete_named(state, &slice_res, Some("default"), &name).await?;
        }
    }
    Ok(())
}

async fn delete_named(state: &State, r: &Resource, ns: Option<&str>, name: &str) -> ApiResult<()> {
    match state
        .objects
        .update(r, ns, name, |current| {
            Ok(match current {
                Some(obj) => Decision::Delete(obj),
                None => Decision::Unchanged(Value::Null),
            })
        })
        .await
    {
        Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One pass: renew this server's Lease (unless `resigning`), then write the endpoints.
async fn reconcile(state: &State, resigning: bool) -> ApiResult<()> {
    let (host, port) = advertised(state);
    let this = if resigning {
        let lease_res = res(state, "coordination.k8s.io", "leases");
        delete_named(
            state,
            &lease_res,
            Some(LEASE_NAMESPACE),
            &lease_name(&host, port),
        )
        .await?;
        None
    } else {
        renew(state, &host, port).await?;
        Some(Member {
            name: lease_name(&host, port),
            host,
            port,
            expires: i64::MAX,
        })
    };
    let (live, forget) = members(state, this.as_ref());
    let lease_res = res(state, "coordination.k8s.io", "leases");
    for name in forget {
        delete_named(state, &lease_res, Some(LEASE_NAMESPACE), &name).await?;
    }
    if live.is_empty() {
        // The last server is leaving: keep the endpoints as they are (upstream does the same),
        // so the Service does not flap to empty on a single-server restart.
        return Ok(());
    }
    write_endpoints(state, &live).await
}

/// Registers this server in the endpoints before it reports ready (part of bootstrap).
pub(crate) async fn register(state: &Arc<State>) -> ApiResult<()> {
    reconcile(state, false).await
}

/// Renews and reconciles every [`RENEW`] until shutdown, then removes this server.
pub(crate) async fn run(state: Arc<State>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RENEW) => {}
            _ = crate::state::shutting_down(&mut shutdown) => break,
        }
        if let Err(e) = reconcile(&state, false).await {
            tracing::warn!("apiserver endpoints: {}", e.to_status()["message"]);
        }
    }
    if let Err(e) = reconcile(&state, true).await {
        tracing::warn!(
            "apiserver endpoints: cannot remove this server: {}",
            e.to_status()["message"]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_are_valid_object_names() {
        assert_eq!(lease_name("127.0.0.1", 6443), "apiserver-127-0-0-1-6443");
        assert_eq!(lease_name("::1", 443), "apiserver-1-443");
        assert_eq!(
            lease_name("Node-A.example", 6443),
            "apiserver-node-a-example-6443"
        );
    }

    #[test]
    fn a_lease_is_read_back_as_the_member_it_describes() {
        let lease = json!({
            "metadata": {"name": "apiserver-10-0-0-1-6443",
                         "annotations": {ADDRESS_ANNOTATION: "10.0.0.1:6443"}},
            "spec": {"renewTime": "2026-11-26T12:00:00.500000Z", "leaseDurationSeconds": 15},
        });
        let m = member(&lease).unwrap();
        let (renewed, _) = drover_core::time::parse_rfc3339("2026-11-26T12:00:00Z").unwrap();
        assert_eq!((m.host.as_str(), m.port), ("10.0.0.1", 6443));
        assert_eq!(m.expires, (renewed + 15) * 1_000_000 + 500_000);
        // Without the address annotation it is not an endpoint Lease.
        let mut other = lease.clone();
        other["metadata"]["annotations"] = json!({});
        assert_eq!(member(&other), None);
    }

    #[test]
    fn servers_are_grouped_by_port_with_one_slice_per_port() {
        let m = |host: &str, port| Member {
            name: lease_name(host, port),
            host: host.into(),
            port,
            expires: 0,
        };
        let groups = by_port(&[
            m("10.0.0.2", 6443),
            m("10.0.0.1", 6443),
            m("127.0.0.1", 7443),
        ]);
        assert_eq!(
            subsets(&groups),
            json!([
                {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                 "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
                {"addresses": [{"ip": "127.0.0.1"}],
                 "ports": [{"name": "https", "port": 7443, "protocol": "TCP"}]},
            ])
        );
        assert_eq!(slice_name(0, 6443), "kubernetes");
        assert_eq!(slice_name(1, 7443), "kubernetes-7443");
    }
}
