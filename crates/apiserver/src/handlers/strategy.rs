//! Per-kind behaviour on top of the generic handlers (upstream's "strategies"): defaults,
//! validation, status handling, generation, allocation of cluster IPs and node ports, and
//! how deletion proceeds.

use std::sync::Arc;

use drover_core::registry::Resource;
use serde_json::{Map, Value, json};

use super::Ctx;
use super::delete::DeleteOptions;
use crate::meta::{self, meta_str, metadata_mut};
use crate::objects::Decision;
use crate::state::State;
use crate::status::{ApiError, ApiResult};

pub(super) fn is(res: &Resource, group: &str, kind: &str) -> bool {
    res.gv.group == group && res.kind == kind
}

pub(super) fn has_status_subresource(res: &Resource) -> bool {
    res.subresource("status").is_some()
}

pub(crate) use super::defaults::prepare_create;
pub(crate) use super::validation::validate;

/// Kinds whose `metadata.generation` tracks spec changes (those with a spec that controllers
/// observe; upstream sets it in each kind's strategy).
pub(super) fn tracks_generation(res: &Resource) -> bool {
    !matches!(
        (res.gv.group.as_ref(), res.kind.as_ref()),
        (
            "",
            "Pod"
                | "Node"
                | "Namespace"
                | "Service"
                | "PersistentVolume"
                | "PersistentVolumeClaim"
                | "ConfigMap"
                | "Secret"
                | "Endpoints"
                | "Event"
                | "ServiceAccount"
        ) | ("events.k8s.io", "Event")
            | ("coordination.k8s.io", "Lease")
            | ("discovery.k8s.io", "EndpointSlice")
    )
}

/// True for kinds that accept a PUT of an absent object as a create (upstream's
/// `AllowCreateOnUpdate`).
pub(crate) fn allow_create_on_update(res: &Resource) -> bool {
    matches!(
        (res.gv.group.as_ref(), res.kind.as_ref()),
        ("", "Endpoints" | "Event" | "LimitRange" | "Node")
            | ("coordination.k8s.io", "Lease")
            | ("events.k8s.io", "Event")
    )
}

/// Built-in kinds take strategic merge patches; custom resources do not (415, as upstream).
pub(crate) fn supports_strategic_merge(res: &Resource) -> bool {
    drover_core::registry::builtin()
        .iter()
        .any(|b| b.gv == res.gv && b.kind == res.kind)
}

/// Fields of `obj` its kind's schema does not know (for `fieldValidation`).
pub(crate) fn unknown_fields(res: &Resource, obj: &Value) -> Vec<String> {
    if let Some(custom) = &res.custom {
        let mut probe = obj.clone();
        return crate::custom::admit(&custom.schema, &mut probe).unknown;
    }
    match drover_schema::SchemaNode::for_kind(&res.gv.group, &res.gv.version, &res.kind) {
        Some(node) => drover_schema::unknown_fields(node, obj),
        None => Vec::new(),
    }
}

/// Rejects values of the wrong JSON type for a built-in kind (a string where an object is
/// expected, …) with the decode error upstream gives, before anything else looks at them.
pub(crate) fn type_check(res: &Resource, obj: &Value) -> ApiResult<()> {
    if res.custom.is_some() {
        return Ok(());
    }
    let Some(node) = drover_schema::SchemaNode::for_kind(&res.gv.group, &res.gv.version, &res.kind)
    else {
        return Ok(());
    };
    let errors = drover_schema::type_errors(node, obj);
    if errors.is_empty() {
        return Ok(());
    }
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    Err(ApiError::BadRequest(text.join("; ")))
}

/// Creating in a namespace that does not exist → 404; one being deleted → 403 (upstream's
/// NamespaceLifecycle admission).
pub(crate) async fn check_namespace_accepts(
    ctx: &Ctx<'_>,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<()> {
    let Some(ns) = ns else { return Ok(()) };
    let Some(ns_res) = ctx.state.resources.find("", "v1", "namespaces") else {
        return Ok(());
    };
    match ctx.state.objects.get(&ns_res, None, ns).await? {
        None => Err(ApiError::NotFound(crate::status::Target::new(
            "",
            "namespaces",
            ns,
        ))),
        Some((obj, _)) if meta_str(&obj, "deletionTimestamp").is_some() => {
            Err(ApiError::Forbidden {
                message: format!(
                    "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    ctx.target().qualified(),
                    name
                ),
                target: crate::objects::target(&ctx.res, name),
            })
        }
        Some(_) => Ok(()),
    }
}

/// Records who wrote which fields in `metadata.managedFields`. Apply computes ownership
/// itself; every other write makes its manager the owner of the fields it changed.
pub(crate) fn track_managed_fields(
    obj: &mut Value,
    old: Option<&Value>,
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    if operation == "Apply" {
        return;
    }
    crate::apply::track_update(obj, old, manager, api_version, subresource);
}

/// Turns an incoming full object into what is stored on update (status handling, immutable
/// metadata, generation, managed fields), or decides it is a no-op or a finished deletion.
pub(crate) fn prepare_update(
    res: &Resource,
    sub: Option<&str>,
    cur: &Value,
    new: Value,
    manager: &str,
    operation: &str,
    api_version: &str,
) -> ApiResult<Decision> {
    let mut out = match sub {
        Some("status") => {
            let mut o = cur.clone();
            match new.get("status") {
                Some(s) => o["status"] = s.clone(),
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            o
        }
        Some("finalize") => {
            let mut o = cur.clone();
            let finalizers = new
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            meta::object_mut(&mut o, "spec").insert("finalizers".into(), finalizers);
            o
        }
        _ => {
            let mut o = new;
            if has_status_subresource(res) {
                match cur.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            o
        }
    };
    if is(res, "", "Secret") {
        super::defaults::fold_string_data(&mut out);
    }
    super::defaults::drop_empty_metadata(&mut out);
    {
        let cur_meta = cur
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(uid) = meta_str(&out, "uid").filter(|u| !u.is_empty())
            && Some(uid) != cur_meta.get("uid").and_then(Value::as_str)
        {
            return Err(ApiError::Conflict {
                target: crate::objects::target(res, meta_str(cur, "name").unwrap_or("")),
                message: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    cur_meta.get("uid").and_then(Value::as_str).unwrap_or("")
                ),
            });
        }
        let m = metadata_mut(&mut out);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match cur_meta.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        m.remove("selfLink");
        m.insert(
            "resourceVersion".into(),
            cur_meta
                .get("resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    if tracks_generation(res) && sub.is_none() && spec_of(&out) != spec_of(cur) {
        let g = cur
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        metadata_mut(&mut out).insert("generation".into(), json!(g));
    }
    if let Err(causes) = validate(res, &out, Some(cur)) {
        return Err(ApiError::Invalid {
            target: crate::objects::target(res, meta_str(cur, "name").unwrap_or("")),
            kind: res.kind.to_string(),
            causes,
        });
    }
    let managed = out.pointer("/metadata/managedFields");
    let managed_changed = managed.is_some() && managed != cur.pointer("/metadata/managedFields");
    if !managed_changed && without_bookkeeping(&out) == without_bookkeeping(cur) {
        return Ok(Decision::Unchanged(cur.clone()));
    }
    track_managed_fields(
        &mut out,
        Some(cur),
        manager,
        operation,
        api_version,
        sub.filter(|s| *s == "status"),
    );
    if is_gone(&out) {
        return Ok(Decision::Delete(out));
    }
    Ok(Decision::Write(out))
}

/// Everything but metadata and status: what a generation counts.
fn spec_of(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

fn without_bookkeeping(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    o
}

/// True when an object being deleted has no finalizers left (it can go).
pub(crate) fn is_gone(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
        && obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        && !(obj.get("kind").and_then(Value::as_str) == Some("Pod")
            && obj
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
            && obj
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0)
}

/// What a DELETE does to the current object: delete now, or mark it (finalizers, graceful
/// pod termination, namespace lifecycle).
pub(crate) fn plan_delete(res: &Resource, cur: Value, opts: &DeleteOptions) -> Decision {
    let mut obj = cur;
    let mut finalizers: Vec<Value> = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let already = meta_str(&obj, "deletionTimestamp").is_some();
    let policy = opts.propagation.as_deref().unwrap_or("Background");
    let add = |fs: &mut Vec<Value>, f: &str| {
        if !fs.iter().any(|x| x == f) {
            fs.push(f.into());
        }
    };
    match policy {
        "Foreground" => {
            finalizers.retain(|f| f != "orphan");
            add(&mut finalizers, "foregroundDeletion");
        }
        "Orphan" => {
            finalizers.retain(|f| f != "foregroundDeletion");
            add(&mut finalizers, "orphan");
        }
        _ => {}
    }
    let ns_pending = is(res, "", "Namespace")
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    let pod_grace = if is(res, "", "Pod")
        && obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
    {
        let g = opts
            .grace
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30);
        if g > 0
            && obj
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .is_none_or(|p| p != "Succeeded" && p != "Failed")
        {
            Some(g)
        } else {
            None
        }
    } else {
        None
    };
    if finalizers.is_empty() && !ns_pending && pod_grace.is_none() {
        if already
            && obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
        {
            return Decision::Unchanged(obj);
        }
        return Decision::Delete(obj);
    }
    let m = metadata_mut(&mut obj);
    let changed_finalizers = m
        .get("finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        != finalizers;
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    if already && !changed_finalizers {
        // Shortening a pod's grace period is allowed; anything else is a no-op.
        if let Some(g) = pod_grace {
            let cur = m
                .get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX);
            if g < cur {
                m.insert("deletionGracePeriodSeconds".into(), json!(g));
                return Decision::Write(obj);
            }
        }
        return Decision::Unchanged(obj);
    }
    if !already {
        let now = meta::now_secs();
        let grace = pod_grace.unwrap_or(0);
        m.insert(
            "deletionTimestamp".into(),
            meta::rfc3339(now + grace).into(),
        );
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
    }
    if ns_pending {
        meta::object_mut(&mut obj, "status").insert("phase".into(), "Terminating".into());
    }
    Decision::Write(obj)
}

/// Prunes, defaults and validates a custom resource against its CRD's schema.
pub(crate) fn admit_custom(res: &Resource, obj: &mut Value) -> ApiResult<()> {
    let Some(custom) = &res.custom else {
        return Ok(());
    };
    let a = crate::custom::admit(&custom.schema, obj);
    if a.causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid {
            target: crate::objects::target(res, meta_str(obj, "name").unwrap_or("")),
            kind: res.kind.to_string(),
            causes: a.causes,
        })
    }
}

/// The JSON pointer of a `.a.b` path.
fn pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, p| format!("{acc}/{p}"))
}

/// Where a resource keeps its replica counts and selector (built-ins: spec.replicas,
/// status.replicas, spec.selector; custom resources: their CRD's scale paths).
fn scale_paths(res: &Resource) -> (String, String, Option<String>) {
    match res.custom.as_ref().and_then(|c| c.scale.clone()) {
        Some(p) => (
            pointer(&p.spec_replicas),
            pointer(&p.status_replicas),
            p.label_selector.map(|l| pointer(&l)),
        ),
        None => ("/spec/replicas".into(), "/status/replicas".into(), None),
    }
}

/// Sets the desired replicas of an object (the scale subresource's write).
pub(crate) fn set_replicas(res: &Resource, obj: &mut Value, replicas: i64) {
    let (spec, _, _) = scale_paths(res);
    let mut cur = obj;
    let parts: Vec<&str> = spec.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur[*p] = json!(replicas);
        } else {
            if !cur.get(*p).is_some_and(Value::is_object) {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
    }
}

/// The `autoscaling/v1` Scale of an object.
pub(crate) fn scale_of(res: &Resource, obj: &Value) -> Value {
    let (spec_path, status_path, selector_path) = scale_paths(res);
    let selector = match selector_path {
        Some(p) => obj
            .pointer(&p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        None => obj
            .pointer("/spec/selector")
            .and_then(|s| drover_core::selector::Selector::from_label_selector(s).ok())
            .map(|s| s.to_string())
            .unwrap_or_default(),
    };
    let mut meta = Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&format!("/metadata/{f}")) {
            meta.insert(f.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.pointer(&spec_path).and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer(&status_path).and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Allocates what a new object needs from shared pools (ClusterIPs, node ports).
pub(crate) async fn allocate(state: &Arc<State>, res: &Resource, obj: &mut Value) -> ApiResult<()> {
    if is(res, "", "Service") {
        crate::alloc::allocate_service(state, obj).await?;
    }
    Ok(())
}

/// Frees what an object held, at once (its create failed).
pub(crate) async fn release_now(state: &Arc<State>, res: &Resource, obj: &Value) {
    if is(res, "", "Service") {
        crate::alloc::release_service(state, obj).await;
    }
}

/// Frees what an object held once it is gone from the store.
pub(crate) async fn release(state: &Arc<State>, res: &Resource, obj: &Value) {
    if is(res, "", "Service") {
        let ns = meta_str(obj, "namespace").unwrap_or("");
        let name = meta_str(obj, "name").unwrap_or("");
        // Only once the object is really gone from the store.
        if state
            .objects
            .get(res, Some(ns), name)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            crate::alloc::release_service(state, obj).await;
        }
    }
}

/// Server-side apply.
pub(crate) fn server_side_apply(
    ctx: &Ctx<'_>,
    current: &Value,
    applied: &Value,
    manager: &str,
) -> ApiResult<Value> {
    crate::apply::apply(ctx, current, applied, manager)
}

/// The server-side Table for objects of a resource.
pub(crate) fn table(
    res: &Resource,
    items: &[Value],
    list_meta: Value,
    include: &str,
    v1beta1: bool,
) -> Value {
    crate::tables::table(res, items, list_meta, include, v1beta1)
}
