//! CustomResourceDefinitions: admission of CRDs, the resources they add, and the controller
//! that serves them (registers every served version, sets `NamesAccepted`/`Established`,
//! and deletes all instances before a deleted CRD goes).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use drover_core::registry::{
    CustomResourceInfo, GroupVersion, Resource, ScalePaths, Subresource, Verbs,
};
use serde_json::{Value, json};

use crate::handlers::{DeleteOptions, delete_stored, prepare_update};
use crate::meta::{self, meta_str};
use crate::objects::decode_stored;
use crate::state::State;
use crate::status::{ApiError, Cause};

/// The finalizer that keeps a CRD until its instances are deleted.
pub(crate) const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

const STATUS: Subresource = Subresource {
    name: "status",
    kind: None,
    verbs: &["get", "patch", "update"],
};
const SCALE: Subresource = Subresource {
    name: "scale",
    kind: Some(("autoscaling", "v1", "Scale")),
    verbs: &["get", "patch", "update"],
};

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// Defaults on create/update of a CRD.
pub(crate) fn prepare(obj: &mut Value, creating: bool) {
    if let Some(names) = obj
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        names
            .entry("singular")
            .or_insert_with(|| kind.to_ascii_lowercase().into());
        names
            .entry("listKind")
            .or_insert_with(|| format!("{kind}List").into());
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("conversion")
            .or_insert_with(|| json!({"strategy": "None"}));
    }
    if creating {
        let m = meta::metadata_mut(obj);
        let fins = m.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(f) = fins.as_array_mut()
            && !f.iter().any(|x| x == CLEANUP_FINALIZER)
        {
            f.push(CLEANUP_FINALIZER.into());
        }
        obj["status"] = json!({"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []});
    }
}

/// Validation of a CRD; returns upstream-shaped causes.
pub(crate) fn validate(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let group = s(obj, "/spec/group");
    let plural = s(obj, "/spec/names/plural");
    let kind = s(obj, "/spec/names/kind");
    if group.is_empty() {
        causes.push(Cause::required("spec.group"));
    } else if !group.contains('.') {
        causes.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind"));
    }
    let name = meta_str(obj, "name").unwrap_or("");
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            &format!("must be spec.names.plural+\".\"+spec.group ({plural}.{group})"),
        ));
    }
    let scope = s(obj, "/spec/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
        ));
    }
    let strategy = s(obj, "/spec/conversion/strategy");
    if strategy == "Webhook" {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.conversion.strategy",
            "Unsupported value: \"Webhook\": Drover serves every version of a custom resource with conversion strategy \"None\"; webhook conversion is not supported",
        ));
    }
    let versions = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::required("spec.versions"));
    }
    let storage = versions.iter().filter(|v| v["storage"] == true).count();
    if !versions.is_empty() && storage != 1 {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!(storage),
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(Cause::required(format!("spec.versions[{i}].name")));
        }
        match v.pointer("/schema/openAPIV3Schema") {
            None => causes.push(Cause::required(format!(
                "spec.versions[{i}].schema.openAPIV3Schema"
            ))),
            Some(schema) => check_schema(
                schema,
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                causes,
            ),
        }
    }
    if let Some(old) = old {
        for f in ["/spec/group", "/spec/names/plural"] {
            if old.pointer(f) != obj.pointer(f) {
                causes.push(Cause::invalid(
                    f.trim_start_matches('/').replace('/', "."),
                    obj.pointer(f).unwrap_or(&Value::Null),
                    "field is immutable",
                ));
            }
        }
    }
}

/// Structural-schema checks, and the refusal of CEL rules (never silently ignored).
fn check_schema(schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(m) = schema.as_object() else {
        causes.push(Cause::invalid(path, schema, "must be an object"));
        return;
    };
    if m.contains_key("x-kubernetes-validations") {
        causes.push(Cause::new(
            "FieldValueForbidden",
            format!("{path}.x-kubernetes-validations"),
            "Forbidden: CEL validation rules (x-kubernetes-validations) are not supported by Drover yet; the CRD is refused rather than served without its rules",
        ));
    }
    let typed = m.contains_key("type")
        || m.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        || m.contains_key("anyOf")
        || m.contains_key("allOf")
        || m.contains_key("oneOf");
    if !typed && path.contains("properties") {
        causes.push(Cause::required(format!("{path}.type")));
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            check_schema(v, &format!("{path}.properties[{k}]"), causes);
        }
    }
    if let Some(items) = m.get("items")
        && items.is_object()
    {
        check_schema(items, &format!("{path}.items"), causes);
    }
    if let Some(ap) = m.get("additionalProperties").filter(|a| a.is_object()) {
        check_schema(ap, &format!("{path}.additionalProperties"), causes);
    }
}

/// The resources a CRD serves, one per served version.
pub(crate) fn resources(crd: &Value) -> Vec<Resource> {
    let group = s(crd, "/spec/group").to_owned();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let plural = s(&names, "/plural").to_owned();
    let kind = s(&names, "/kind").to_owned();
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map_or_else(|| kind.to_ascii_lowercase(), str::to_owned);
    let strs = |f: &str| -> Vec<Cow<'static, str>> {
        names
            .get(f)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(|s| Cow::Owned(s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = s(crd, "/spec/scope") == "Namespaced";
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .unwrap_or("")
        .to_owned();
    let mut served: Vec<&Value> = versions.iter().filter(|v| v["served"] == true).collect();
    // Discovery lists versions by Kubernetes version priority: GA > beta > alpha, newer first.
    served.sort_by_key(|v| std::cmp::Reverse(version_priority(v["name"].as_str().unwrap_or(""))));
    served
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut subs = Vec::new();
            if v.pointer("/subresources/status").is_some() {
                subs.push(STATUS);
            }
            let scale = v.pointer("/subresources/scale").map(|sc| ScalePaths {
                spec_replicas: s(sc, "/specReplicasPath").to_owned(),
                status_replicas: s(sc, "/statusReplicasPath").to_owned(),
                label_selector: sc
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
            if scale.is_some() {
                subs.push(SCALE);
            }
            let info = CustomResourceInfo {
                schema: v
                    .pointer("/schema/openAPIV3Schema")
                    .cloned()
                    .unwrap_or(json!({})),
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                scale,
                selectable_fields: v
                    .get("selectableFields")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| {
                                f["jsonPath"]
                                    .as_str()
                                    .map(|p| p.trim_start_matches('.').to_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                crd_name: meta_str(crd, "name").unwrap_or("").to_owned(),
            };
            Resource {
                gv: GroupVersion {
                    group: group.clone().into(),
                    version: v["name"].as_str().unwrap_or("").to_owned().into(),
                },
                kind: kind.clone().into(),
                plural: plural.clone().into(),
                singular: singular.clone().into(),
                namespaced,
                short_names: strs("shortNames").into(),
                categories: strs("categories").into(),
                verbs: Verbs::All,
                subresources: subs.into(),
                storage_group: group.clone().into(),
                storage_version: storage_version.clone().into(),
                preferred: i == 0,
                custom: Some(Arc::new(info)),
            }
        })
        .collect()
}

/// Kubernetes version priority (`v2` > `v1` > `v1beta2` > `v1beta1` > `v1alpha1` > others).
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let (level, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        return (0, 0, 0);
    };
    (level, major, minor)
}

fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

/// Starts the CRD controller.
pub(crate) fn spawn(state: Arc<State>) {
    tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        let prefix = crd_resource(&state).key_prefix();
        loop {
            let sub = state.cache.subscribe(state.cache.revision());
            reconcile(&state).await;
            let wait = crate::cache::next_change(sub, |ev| ev.key.starts_with(prefix.as_str()));
            tokio::select! {
                _ = wait => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = crate::state::shutting_down(&mut shutdown) => return,
            }
        }
    });
}

/// True when every CRD in the watch cache has its resources registered (readiness).
pub(crate) fn all_served(state: &State) -> bool {
    let prefix = crd_resource(state).key_prefix();
    let snap = state.cache.snapshot(&prefix, None);
    let served: std::collections::HashSet<String> = state
        .resources
        .all()
        .iter()
        .filter_map(|r| r.custom.as_ref().map(|c| c.crd_name.clone()))
        .collect();
    snap.items.iter().all(|(key, entry)| {
        let name = key.rsplit('/').next().unwrap_or("");
        served.contains(name)
            || decode_stored(&entry.value, entry.mod_revision)
                .map(|crd| {
                    !crd.pointer("/spec/versions")
                        .and_then(Value::as_array)
                        .is_some_and(|v| v.iter().any(|v| v["served"] == true))
                })
                .unwrap_or(true)
    })
}

fn crd_resource(state: &State) -> Resource {
    state
        .resources
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("built-in")
}

/// One pass: serve every CRD, mark them established, clean up deleted ones.
pub(crate) async fn reconcile(state: &Arc<State>) {
    let crd_res = crd_resource(state);
    let snap = state.cache.snapshot(&crd_res.key_prefix(), None);
    let crds: Vec<Value> = snap
        .items
        .iter()
        .filter_map(|(_, e)| decode_stored(&e.value, e.mod_revision).ok())
        .collect();
    let mut custom = Vec::new();
    for crd in &crds {
        custom.extend(resources(crd));
    }
    state.resources.set_custom(custom);
    state
        .crds_synced
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // Every server serves every CRD; only the Lease holder writes their status.
    if !state.leader.is_leader() {
        return;
    }
    for crd in &crds {
        let name = meta_str(crd, "name").unwrap_or("").to_owned();
        if meta_str(crd, "deletionTimestamp").is_some() {
            cleanup(state, &crd_res, crd, &name).await;
        } else if !is_established(crd) {
            establish(state, &crd_res, &name).await;
        }
    }
}

async fn establish(state: &Arc<State>, crd_res: &Resource, name: &str) {
    let r = state
        .objects
        .update(crd_res, None, name, |cur| {
            let Some(cur) = cur else { return Err(ApiError::NotFound(crate::objects::target(crd_res, name))) };
            let mut new = cur.clone();
            let now = meta::rfc3339(meta::now_secs());
            let cond = |t: &str, reason: &str, msg: &str| {
                json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg})
            };
            let storage = cur
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .and_then(|vs| vs.iter().find(|v| v["storage"] == true))
                .and_then(|v| v["name"].as_str())
                .unwrap_or("")
                .to_owned();
            let mut stored: Vec<Value> = cur.pointer("/status/storedVersions").and_then(Value::as_array).cloned().unwrap_or_default();
            if !stored.iter().any(|v| v == storage.as_str()) {
                stored.push(storage.into());
            }
            new["status"] = json!({
                "conditions": [
                    cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                    cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                ],
                "acceptedNames": cur.pointer("/spec/names").cloned().unwrap_or(json!({})),
                "storedVersions": stored,
            });
            prepare_update(crd_res, Some("status"), &cur, new, "apiextensions-controller", "Update", "apiextensions.k8s.io/v1")
        })
        .await;
    if let Err(e) = r
        && !matches!(e, ApiError::NotFound(_))
    {
        tracing::warn!("CRD controller: cannot establish {name}: {e:?}");
    }
}

/// Deletes every instance of a deleted CRD, then lets the CRD go.
async fn cleanup(state: &Arc<State>, crd_res: &Resource, crd: &Value, name: &str) {
    let Some(res) = resources(crd).into_iter().find(|r| r.is_storage_version()) else {
        return;
    };
    let snap = state.cache.snapshot(&res.key_prefix(), None);
    let mut remaining = 0;
    for (_, e) in snap.items {
        remaining += 1;
        let Ok(obj) = decode_stored(&e.value, e.mod_revision) else {
            continue;
        };
        if meta_str(&obj, "deletionTimestamp").is_some() {
            continue;
        }
        let opts = DeleteOptions {
            propagation: Some("Background".into()),
            grace: None,
            uid: None,
            resource_version: None,
            dry_run: false,
        };
        let ns = meta_str(&obj, "namespace").map(str::to_owned);
        let _ = delete_stored(
            state,
            &res,
            &res,
            ns.as_deref(),
            meta_str(&obj, "name").unwrap_or(""),
            &opts,
        )
        .await;
    }
    if remaining > 0 {
        return;
    }
    let _ = state
        .objects
        .update(crd_res, None, name, |cur| {
            let Some(cur) = cur else {
                return Err(ApiError::NotFound(crate::objects::target(crd_res, name)));
            };
            let mut new = cur.clone();
            if let Some(f) = new
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
            {
                f.retain(|x| x != CLEANUP_FINALIZER);
            }
            prepare_update(
                crd_res,
                None,
                &cur,
                new,
                "apiextensions-controller",
                "Update",
                "apiextensions.k8s.io/v1",
            )
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "gadgets", "kind": "Gadget", "shortNames": ["gd"]},
                     "versions": [
                        {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}},
                        {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                         "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}}]}
        })
    }

    #[test]
    fn served_versions_become_resources_preferred_by_priority() {
        let rs = resources(&crd());
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].gv.version, "v1");
        assert!(rs[0].preferred && !rs[1].preferred);
        assert!(rs[0].subresource("status").is_some() && rs[1].subresource("status").is_none());
        assert_eq!(rs[1].key_prefix(), rs[0].key_prefix());
        assert_eq!(rs[0].short_names.as_ref(), &[Cow::Borrowed("gd")]);
    }

    #[test]
    fn webhook_conversion_and_cel_are_refused_clearly() {
        let mut c = crd();
        c["spec"]["conversion"] = json!({"strategy": "Webhook"});
        c["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] =
            json!([{"rule": "self.a > 0"}]);
        let mut causes = Vec::new();
        validate(&c, None, &mut causes);
        let text: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(
            text.iter()
                .any(|t| t.contains("webhook conversion is not supported")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("x-kubernetes-validations") && t.contains("not supported")),
            "{text:?}"
        );
    }

    #[test]
    fn version_priority_orders_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v2", "v1beta2", "v1", "v1beta1", "foo"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, vec!["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }
}
