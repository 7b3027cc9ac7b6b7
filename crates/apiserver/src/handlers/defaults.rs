//! Defaults applied on create, per kind (upstream's `PrepareForCreate` and defaulting).

use std::sync::Arc;

use drover_core::registry::Resource;
use serde_json::{Value, json};

use super::strategy::{has_status_subresource, is, tracks_generation};
use crate::meta::{meta_str, metadata_mut};
use crate::state::State;
use crate::status::ApiResult;

/// Defaults on create.
pub(crate) async fn prepare_create(
    state: &Arc<State>,
    res: &Resource,
    obj: &mut Value,
) -> ApiResult<()> {
    let _ = state;
    create_defaults(res, obj);
    Ok(())
}

/// The defaults [`prepare_create`] applies (they need nothing but the object).
pub(super) fn create_defaults(res: &Resource, obj: &mut Value) {
    if is(res, "", "Secret") {
        fold_string_data(obj);
    }
    drop_empty_metadata(obj);
    if tracks_generation(res) {
        metadata_mut(obj).insert("generation".into(), json!(1));
    } else {
        metadata_mut(obj).remove("generation");
    }
    if has_status_subresource(res)
        && !is(res, "", "Pod")
        && !is(res, "", "Node")
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    match (res.gv.group.as_ref(), res.kind.as_ref()) {
        ("", "Namespace") => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
            let name = meta_str(obj, "name").unwrap_or("").to_owned();
            let labels = metadata_mut(obj)
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), name.into());
            }
        }
        ("", "Pod") => {
            let status = obj.get("status").cloned().unwrap_or(Value::Null);
            if !status.is_object() || status.get("phase").is_none() {
                obj["status"] = json!({"phase": "Pending", "qosClass": qos_class(obj)});
            }
            default_pod_spec(obj.pointer_mut("/spec"));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crate::crd::prepare(obj, true),
        ("", "Secret")
            if obj
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty) =>
        {
            obj["type"] = "Opaque".into();
        }
        ("", "Service") => default_service(obj),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => default_flow_schema(obj),
        // v1 defaulting: claims and volumes start Pending, in filesystem mode.
        ("", "PersistentVolumeClaim" | "PersistentVolume") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("volumeMode").or_insert(json!("Filesystem"));
                if res.kind == "PersistentVolume" {
                    spec.entry("persistentVolumeReclaimPolicy")
                        .or_insert(json!("Retain"));
                }
            }
            crate::meta::object_mut(obj, "status")
                .entry("phase")
                .or_insert(json!("Pending"));
        }
        ("apps", "Deployment") => {
            let spec = obj.get_mut("spec").and_then(Value::as_object_mut);
            if let Some(spec) = spec {
                spec.entry("replicas").or_insert(json!(1));
                spec.entry("revisionHistoryLimit").or_insert(json!(10));
                spec.entry("progressDeadlineSeconds").or_insert(json!(600));
                // Upstream defaults whenever the type is empty (protobuf clients always send
                // the struct, so `strategy: {}` is common).
                let strategy = spec.entry("strategy").or_insert(json!({}));
                if let Some(st) = strategy.as_object_mut() {
                    if st
                        .get("type")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        st.insert("type".into(), json!("RollingUpdate"));
                    }
                    if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                        let ru = st.entry("rollingUpdate").or_insert(json!({}));
                        if let Some(ru) = ru.as_object_mut() {
                            ru.entry("maxUnavailable").or_insert(json!("25%"));
                            ru.entry("maxSurge").or_insert(json!("25%"));
                        }
                    }
                }
                default_pod_spec(spec.get_mut("template").and_then(|t| t.get_mut("spec")));
            }
        }
        ("apps", "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                if res.kind != "DaemonSet" && res.kind != "Job" {
                    spec.entry("replicas").or_insert(json!(1));
                }
                default_pod_spec(spec.get_mut("template").and_then(|t| t.get_mut("spec")));
            }
        }
        _ => {}
    }
}

fn default_pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("securityContext").or_insert(json!({}));
    spec.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.entry("terminationMessagePath")
                    .or_insert(json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy").or_insert(json!("File"));
                let latest = c.get("image").and_then(Value::as_str).is_some_and(|i| {
                    let tail = i.rsplit('/').next().unwrap_or(i);
                    !i.contains('@') && (!tail.contains(':') || tail.ends_with(":latest"))
                });
                c.entry("imagePullPolicy").or_insert(json!(if latest {
                    "Always"
                } else {
                    "IfNotPresent"
                }));
                c.entry("resources").or_insert(json!({}));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        let full = ["cpu", "memory"].iter().all(|r| {
            let l = lim.and_then(|l| l.get(*r));
            l.is_some() && req.and_then(|q| q.get(*r)).is_none_or(|q| Some(q) == l)
        });
        guaranteed &= full;
    }
    if guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}

/// Upstream's `SetDefaults_FlowSchemaSpec`: an unset (or zero) `matchingPrecedence` is 1000, so
/// it prints, and sorts in Tables, as upstream's would.
fn default_flow_schema(obj: &mut Value) {
    let spec = crate::meta::object_mut(obj, "spec");
    if spec
        .get("matchingPrecedence")
        .and_then(Value::as_i64)
        .is_none_or(|p| p == 0)
    {
        spec.insert("matchingPrecedence".into(), json!(1000));
    }
}

fn default_service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if ty != "ExternalName" {
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        spec.entry("internalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        spec.entry("externalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
            if !p.contains_key("targetPort")
                && let Some(port) = p.get("port").cloned()
            {
                p.insert("targetPort".into(), port);
            }
        }
    }
}

/// Folds a Secret's `stringData` into `data` (base64; its keys win) and drops it, as upstream
/// does on every write: `stringData` is write-only.
pub(crate) fn fold_string_data(obj: &mut Value) {
    use base64::Engine as _;
    let Some(string_data) = obj.as_object_mut().and_then(|m| m.remove("stringData")) else {
        return;
    };
    let Some(sd) = string_data.as_object() else {
        return;
    };
    if sd.is_empty() {
        return;
    }
    let data = crate::meta::object_mut(obj, "data");
    for (k, v) in sd {
        let text = v.as_str().unwrap_or_default();
        data.insert(
            k.clone(),
            base64::engine::general_purpose::STANDARD
                .encode(text)
                .into(),
        );
    }
}

/// Drops empty metadata maps and lists, which Go's encoder omits (`annotations: {}` after
/// removing the last annotation must not linger).
pub(crate) fn drop_empty_metadata(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
            let empty = match m.get(f) {
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                m.remove(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_schema_matching_precedence_defaults_to_1000() {
        let mut fs = json!({"spec": {"priorityLevelConfiguration": {"name": "global-default"}}});
        default_flow_schema(&mut fs);
        assert_eq!(fs["spec"]["matchingPrecedence"], 1000);
        let mut fs = json!({"spec": {"matchingPrecedence": 0}});
        default_flow_schema(&mut fs);
        assert_eq!(fs["spec"]["matchingPrecedence"], 1000);
        let mut fs = json!({"spec": {"matchingPrecedence": 250}});
        default_flow_schema(&mut fs);
        assert_eq!(fs["spec"]["matchingPrecedence"], 250);
    }
}
