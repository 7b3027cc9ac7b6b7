//! Objects every cluster has, and the API server's own controllers (namespace lifecycle,
//! per-namespace defaults, Event TTL). Controllers are level-triggered: each pass looks at the
//! whole state and closes the gap, so they can stop and restart at any time.

use std::sync::Arc;
use std::time::Duration;

use drover_core::registry::Resource;
use serde_json::{Value, json};

use crate::handlers::{DeleteOptions, delete_stored};
use crate::meta::{self, meta_str};
use crate::objects::decode_stored;
use crate::state::State;
use crate::status::{ApiError, ApiResult};

const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A built-in resource by group, version and plural (registered, so this cannot fail).
pub(crate) fn res(state: &State, group: &str, version: &str, plural: &str) -> Resource {
    state
        .resources
        .find(group, version, plural)
        .expect("built-in resource is registered")
}

/// Fills the metadata a create would and stores the object unless it exists.
async fn ensure(state: &State, r: &Resource, mut obj: Value) -> ApiResult<()> {
    let name = meta_str(&obj, "name").unwrap_or("").to_owned();
    let ns = meta_str(&obj, "namespace").map(str::to_owned);
    {
        let m = meta::metadata_mut(&mut obj);
        m.insert("uid".into(), meta::new_uid().into());
        m.insert(
            "creationTimestamp".into(),
            meta::rfc3339(meta::now_secs()).into(),
        );
    }
    match state.objects.create(r, ns.as_deref(), &name, obj).await {
        Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the default namespaces and the `kubernetes` Service with its endpoints.
pub(crate) async fn run(state: &Arc<State>) -> ApiResult<()> {
    let ns_res = res(state, "", "v1", "namespaces");
    for ns in NAMESPACES {
        let obj = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        ensure(state, &ns_res, obj).await?;
    }
    let svc_res = res(state, "", "v1", "services");
    if state
        .objects
        .get(&svc_res, Some("default"), "kubernetes")
        .await?
        .is_none()
    {
        let ip = state.config.first_service_ip().to_string();
        let mut svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": state.config.https_port}],
                "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            },
        });
        match crate::alloc::allocate_service(state, &mut svc).await {
            Ok(()) => ensure(state, &svc_res, svc).await?,
            // Another server took it first; its Service exists or is about to.
            Err(ApiError::Invalid { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // This server's identity Lease and the `kubernetes` endpoints listing every live server.
    crate::endpoints::register(state).await?;
    bootstrap_rbac(state).await?;
    // The bootstrap namespaces' defaults exist before the server reports ready; everything
    // else the namespace controller does waits for this server to lead.
    for ns in NAMESPACES {
        ensure_namespace_defaults(state, ns).await?;
    }
    Ok(())
}

/// The bootstrap ClusterRoles and bindings every cluster has (see [`crate::rbac::defaults`]).
/// Existing objects are left alone, so an administrator's edits survive restarts.
async fn bootstrap_rbac(state: &Arc<State>) -> ApiResult<()> {
    let roles = res(state, "rbac.authorization.k8s.io", "v1", "clusterroles");
    let bindings = res(
        state,
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
    );
    for r in crate::rbac::defaults::cluster_roles() {
        ensure(state, &roles, r).await?;
    }
    for b in crate::rbac::defaults::cluster_role_bindings() {
        ensure(state, &bindings, b).await?;
    }
    Ok(())
}

/// Runs the API server's own namespace and Event TTL controllers until shutdown (or until
/// aborted when this server stops leading).
pub(crate) async fn run_controllers(state: Arc<State>) {
    {
        let mut shutdown = state.shutdown.clone();
        let mut last_expiry: Option<std::time::Instant> = None;
        loop {
            // React to namespace changes promptly; resync every few seconds regardless.
            let ns_prefix = res(&state, "", "v1", "namespaces").key_prefix();
            let sub = state.cache.subscribe(state.cache.revision());
            reconcile_namespaces(&state).await;
            // Event TTL needs no promptness; a pass parses every Event, so at most once a minute.
            if last_expiry.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                expire_events(&state).await;
                last_expiry = Some(std::time::Instant::now());
            }
            let wait = crate::cache::next_change(sub, |ev| {
                ev.key.starts_with(ns_prefix.as_str()) || ev.change == crate::cache::Change::Delete
            });
            tokio::select! {
                _ = wait => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = crate::state::shutting_down(&mut shutdown) => return,
            }
        }
    }
}

/// Every namespace gets its `default` ServiceAccount and `kube-root-ca.crt` ConfigMap; a
/// namespace being deleted has its contents deleted, then is finalized and removed.
async fn reconcile_namespaces(state: &Arc<State>) {
    let ns_res = res(state, "", "v1", "namespaces");
    let snap = state.cache.snapshot(&ns_res.key_prefix(), None);
    for (_, entry) in snap.items {
        let Ok(ns) = decode_stored(&entry.value, entry.mod_revision) else {
            continue;
        };
        let name = meta_str(&ns, "name").unwrap_or("").to_owned();
        let result = if meta_str(&ns, "deletionTimestamp").is_some() {
            terminate_namespace(state, &ns_res, &name).await
        } else {
            ensure_namespace_defaults(state, &name).await
        };
        if let Err(e) = result {
            tracing::warn!("namespace controller: {name}: {e:?}");
        }
    }
}

async fn ensure_namespace_defaults(state: &Arc<State>, ns: &str) -> ApiResult<()> {
    let sa_res = res(state, "", "v1", "serviceaccounts");
    if state.cache.get(&sa_res.key(Some(ns), "default")).is_none() {
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
        ensure(state, &sa_res, sa).await?;
    }
    let cm_res = res(state, "", "v1", "configmaps");
    if state
        .cache
        .get(&cm_res.key(Some(ns), "kube-root-ca.crt"))
        .is_none()
    {
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                         "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
            "data": {"ca.crt": state.identity.ca_cert_pem},
        });
        ensure(state, &cm_res, cm).await?;
    }
    Ok(())
}

/// Deletes everything in a terminating namespace; once empty, removes the `kubernetes`
/// finalizer and the namespace itself.
async fn terminate_namespace(state: &Arc<State>, ns_res: &Resource, ns: &str) -> ApiResult<()> {
    let mut remaining = 0usize;
    let node_res = res(state, "", "v1", "nodes");
    let all = state.resources.all();
    for r in all
        .iter()
        .filter(|r| r.namespaced && r.is_storage_version() && r.verbs.stored())
    {
        let prefix = format!("{}{ns}/", r.key_prefix());
        let snap = state.cache.snapshot(&prefix, None);
        for (_, entry) in snap.items {
            remaining += 1;
            let Ok(obj) = decode_stored(&entry.value, entry.mod_revision) else {
                continue;
            };
            let name = meta_str(&obj, "name").unwrap_or("").to_owned();
            // Pods bound to a node that does not exist are deleted at once (upstream's pod GC).
            let orphan_pod = r.kind == "Pod"
                && obj
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| {
                        !n.is_empty() && state.cache.get(&node_res.key(None, n)).is_none()
                    });
            if meta_str(&obj, "deletionTimestamp").is_some() && !orphan_pod {
                continue;
            }
            let opts = DeleteOptions {
                propagation: Some("Background".into()),
                grace: if orphan_pod { Some(0) } else { None },
                uid: None,
                resource_version: None,
                dry_run: false,
            };
            if let Err(e) = delete_stored(state, r, r, Some(ns), &name, &opts).await
                && !matches!(e, ApiError::NotFound(_))
            {
                tracing::warn!("namespace {ns}: cannot delete {} {name}: {e:?}", r.plural);
            }
        }
    }
    if remaining > 0 {
        return Ok(());
    }
    let manager = "namespace-controller";
    state
        .objects
        .update(ns_res, None, ns, |cur| {
            let Some(cur) = cur else {
                return Err(ApiError::NotFound(crate::status::Target::new(
                    "",
                    "namespaces",
                    ns,
                )));
            };
            let mut new = cur.clone();
            crate::meta::object_mut(&mut new, "spec").insert("finalizers".into(), json!([]));
            crate::handlers::prepare_update(
                ns_res,
                Some("finalize"),
                &cur,
                new,
                manager,
                "Update",
                "v1",
            )
        })
        .await
        .map(|_| ())
        .or_else(|e| {
            if matches!(e, ApiError::NotFound(_)) {
                Ok(())
            } else {
                Err(e)
            }
        })
}

/// Deletes Events older than `--event-ttl`.
async fn expire_events(state: &Arc<State>) {
    let ev_res = res(state, "", "v1", "events");
    let ttl = state.config.event_ttl.as_secs() as i64;
    let now = meta::now_secs();
    let snap = state.cache.snapshot(&ev_res.key_prefix(), None);
    for (key, entry) in snap.items {
        let Ok(ev) = decode_stored(&entry.value, entry.mod_revision) else {
            continue;
        };
        let last = ["lastTimestamp", "eventTime", "firstTimestamp"]
            .iter()
            .filter_map(|f| ev.get(*f).and_then(Value::as_str))
            .chain(
                ev.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str),
            )
            .filter_map(meta::parse_rfc3339)
            .max();
        if last.is_some_and(|t| now - t > ttl) {
            let _ =
                drover_store::Store::delete(state.store.as_ref(), &key, entry.mod_revision).await;
        }
    }
}
