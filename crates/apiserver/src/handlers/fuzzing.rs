//! The request-handling steps that need no store, gathered for the fuzz targets (see
//! `crate::fuzzing`): query parameters, the write pipeline of a built-in kind, server-side
//! apply, and CustomResourceDefinitions with their custom resources.

use drover_core::registry::{self, Resource};
use serde_json::{Value, json};

use super::{convert, defaults, delete, fields, read, reviews, strategy, validation, watch};
use crate::negotiate::{self, Encoding};
use crate::objects::{Decision, parse_rv};
use crate::route::Query;
use crate::status::{ApiError, ApiResult};

/// A built-in resource chosen by a fuzzer byte.
pub(crate) fn builtin(pick: u8) -> &'static Resource {
    let all = registry::builtin();
    &all[usize::from(pick) % all.len()]
}

/// The storage-version resource of `res` (what [`super::Ctx::storage_res`] finds).
fn storage_of(res: &Resource) -> Resource {
    if res.is_storage_version() {
        return res.clone();
    }
    registry::builtin()
        .iter()
        .find(|r| {
            r.gv.group == res.storage_group
                && r.gv.version == res.storage_version
                && r.plural == res.plural
        })
        .cloned()
        .unwrap_or_else(|| res.clone())
}

/// Every query parameter a handler parses, for a resource; the continue token must
/// round-trip.
pub(crate) fn query(res: &Resource, raw: &str) {
    let query = Query::parse(Some(raw));
    if let Ok(selection) = read::Selection::parse(&query, res) {
        let obj = json!({"metadata": {"name": "n", "namespace": "ns", "labels": {"a": "b"}}});
        let _ = selection.matches(&obj);
    }
    let _ = read::parse_limit(&query);
    let _ = watch::parse_timeout(&query);
    let _ = super::dry_run(&query);
    if let Some(rv) = query.get("resourceVersion") {
        let _ = parse_rv(rv);
    }
    if let Some(token) = query.get("continue")
        && let Ok(t) = read::decode_continue(token)
    {
        let again = read::decode_continue(&read::encode_continue(t.revision, &t.after))
            .expect("a re-encoded continue token decodes");
        assert_eq!((again.revision, again.after), (t.revision, t.after));
    }
    let target = || crate::objects::target(res, "n");
    let _ = delete::parse_delete_options(None, b"", &query, &target);
    if let Some(include) = query.get("includeObject") {
        let _ = drover_core::table::IncludeObject::parse(include);
    }
    for (k, v) in [("a", "b"), (raw, raw)] {
        let _ = query.get(k);
        let _ = query.all(v);
        let _ = query.flag(k);
    }
}

/// A `DELETE` body (`DeleteOptions`, any encoding) with query `raw`.
pub(crate) fn delete_options(content_type: &str, body: &[u8], raw: &str) {
    let query = Query::parse(Some(raw));
    let target = || crate::objects::target(builtin(0), "n");
    let _ = delete::parse_delete_options(Some(content_type), body, &query, &target);
}

/// What a create, an update and a delete do with `obj` as the body for `res`, short of
/// storing it; then the response forms of the result.
pub(crate) fn write(res: &Resource, obj: Value) {
    let _ = strategy::unknown_fields(res, &obj);
    if strategy::type_check(res, &obj).is_err() || !obj.is_object() {
        return; // the handlers answer 400 here
    }
    let api_version = res.api_version();
    let mut new = obj.clone();
    new["apiVersion"] = api_version.clone().into();
    new["kind"] = res.kind.to_string().into();
    crate::meta::metadata_mut(&mut new).insert("name".into(), "n".into());
    if strategy::admit_custom(res, &mut new).is_err() {
        return;
    }
    let storage = storage_of(res);
    let mut created = convert::to_storage(res, new.clone());
    defaults::create_defaults(&storage, &mut created);
    let valid = validation::validate(&storage, &created, None).is_ok();
    strategy::track_managed_fields(&mut created, None, "fuzz", "Update", &api_version, None);
    respond(res, &storage, created.clone());
    if !valid {
        return;
    }
    // An update to the same body, and one to its status.
    for sub in [None, Some("status")] {
        let update = convert::to_storage(res, obj.clone());
        if let Ok(Decision::Write(o) | Decision::Unchanged(o) | Decision::Delete(o)) =
            strategy::prepare_update(
                &storage,
                sub,
                &created,
                update,
                "other",
                "Update",
                &api_version,
            )
        {
            let _ = validation::validate(&storage, &o, Some(&created));
            respond(res, &storage, o);
        }
    }
    for propagation in [None, Some("Foreground"), Some("Orphan")] {
        let opts = delete::DeleteOptions {
            propagation: propagation.map(str::to_owned),
            grace: Some(30),
            uid: None,
            resource_version: None,
            dry_run: false,
        };
        let _ = strategy::plan_delete(&storage, created.clone(), &opts);
    }
}

/// The response forms of a stored object, and its field-selector values.
fn respond(res: &Resource, storage: &Resource, stored: Value) {
    for field in fields::supported(&storage.gv.group, &storage.kind) {
        let _ = fields::value(&stored, field);
    }
    let shown = convert::from_storage(res, stored);
    for enc in [Encoding::Json, Encoding::Yaml, Encoding::Protobuf] {
        let _ = negotiate::encode(&shown, enc);
    }
    let _ = strategy::table(
        res,
        std::slice::from_ref(&shown),
        Value::Null,
        "Object",
        false,
    );
    let _ = strategy::scale_of(res, &shown);
}

/// A patch of `current` (a stored object of `res`) of each kind a PATCH request can send,
/// then the update the handler would store.
pub(crate) fn patch(res: &Resource, force: bool, current: &Value, patch: &Value) {
    let api_version = res.api_version();
    let storage = storage_of(res);
    let mut results: Vec<ApiResult<Value>> = Vec::new();
    if patch.is_object() {
        let mut merged = current.clone();
        drover_core::patch::merge_patch(&mut merged, patch);
        results.push(Ok(merged));
        let schema = drover_schema::SchemaNode::for_kind(&res.gv.group, &res.gv.version, &res.kind);
        results.push(
            drover_core::patch::strategic_merge(current, patch, schema.as_ref())
                .map_err(|e| ApiError::BadRequest(e.to_string())),
        );
        for manager in ["kubectl", "fuzz"] {
            for sub in [None, Some("status")] {
                let target = || crate::objects::target(res, "n");
                results.push(crate::apply::apply_to(
                    res, sub, force, &target, current, patch, manager,
                ));
            }
        }
    }
    if patch.is_array() {
        let mut v = current.clone();
        results.push(
            drover_core::patch::json_patch(&mut v, patch)
                .map(|()| v)
                .map_err(|e| ApiError::BadRequest(e.to_string())),
        );
    }
    for new in results.into_iter().flatten() {
        if strategy::type_check(res, &new).is_err() || !new.is_object() {
            continue;
        }
        let _ = strategy::unknown_fields(res, &new);
        let new = convert::to_storage(res, new);
        let mut shown = false;
        for (operation, sub) in [
            ("Update", None),
            ("Apply", None),
            ("Update", Some("status")),
        ] {
            if let Ok(Decision::Write(o) | Decision::Unchanged(o) | Decision::Delete(o)) =
                strategy::prepare_update(
                    &storage,
                    sub,
                    current,
                    new.clone(),
                    "fuzz",
                    operation,
                    &api_version,
                )
            {
                let _ = validation::validate(&storage, &o, Some(current));
                // The response forms are the same code whichever write made the object;
                // once per patch result keeps the target fast enough to explore.
                if !shown {
                    respond(res, &storage, o);
                    shown = true;
                }
            }
        }
    }
}

/// A CustomResourceDefinition: admission, and if it is valid, the resources it serves with
/// `objects` created, patched and shown as each of them.
pub(crate) fn crd(mut crd: Value, objects: &[Value]) {
    let crd_res = registry::builtin()
        .iter()
        .find(|r| r.kind == "CustomResourceDefinition")
        .expect("CRDs are built in");
    if strategy::type_check(crd_res, &crd).is_err() || !crd.is_object() {
        return;
    }
    crate::crd::prepare(&mut crd, true);
    let mut causes = Vec::new();
    crate::crd::validate(&crd, None, &mut causes);
    crate::crd::validate(&crd, Some(&crd), &mut Vec::new());
    if !causes.is_empty() {
        return;
    }
    let resources = crate::crd::resources(&crd);
    let docs: Vec<drover_schema::CrdKind<'_>> = resources
        .iter()
        .filter_map(|r| {
            Some(drover_schema::CrdKind {
                kind: &r.kind,
                schema: &r.custom.as_ref()?.schema,
            })
        })
        .collect();
    if let Some(first) = resources.first() {
        let _ = drover_schema::crd_group_version(&first.gv, &resources, &docs);
    }
    for res in &resources {
        for obj in objects {
            write(res, obj.clone());
            let query = format!(
                "fieldSelector={}%3Dx",
                res.custom
                    .as_ref()
                    .and_then(|c| c.selectable_fields.first())
                    .map_or("metadata.name", String::as_str)
            );
            query_for(res, &query, obj);
            // The scale subresource only ever sees stored objects, which are objects.
            if obj.is_object() {
                let mut scaled = obj.clone();
                strategy::set_replicas(res, &mut scaled, 3);
                let _ = strategy::scale_of(res, &scaled);
            }
        }
        if let [current, patch_body, ..] = objects {
            patch(res, false, current, patch_body);
        }
    }
}

/// A bearer token as a client sends it (`Authorization: Bearer …`, or a TokenReview's
/// `spec.token`): verified with a signing key; and `claims` signed with that key, verified,
/// which must give back the service account the claims name (when they name one).
pub(crate) fn token(raw: &str, claims: Option<&Value>) {
    static KEY: std::sync::OnceLock<ring::signature::EcdsaKeyPair> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
        ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("key")
    });
    let _ = reviews::verify_with(key, raw.trim());
    if let Some(claims) = claims {
        let token = reviews::sign_with(key, claims).expect("signing works");
        if let Ok(user) = reviews::verify_with(key, &token) {
            let ns = claims["kubernetes.io"]["namespace"].as_str().unwrap_or("");
            assert!(
                user.name.starts_with("system:serviceaccount:"),
                "{}",
                user.name
            );
            assert!(
                user.groups
                    .contains(&format!("system:serviceaccounts:{ns}"))
            );
        }
    }
}

fn query_for(res: &Resource, raw: &str, obj: &Value) {
    if let Ok(s) = read::Selection::parse(&Query::parse(Some(raw)), res) {
        let _ = s.matches(obj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(target: &str, name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/corpus")
            .join(target)
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The `crd` target only reaches custom resources through an admitted CRD: its main
    /// seed must be one (served, with a schema, printer columns, scale and selectable fields).
    #[test]
    fn the_crd_seed_is_admitted_and_serves_a_resource() {
        let items: Vec<Value> = serde_json::from_slice(&seed("crd", "seed-01")).expect("JSON");
        let mut crd = items[0].clone();
        crate::crd::prepare(&mut crd, true);
        let mut causes = Vec::new();
        crate::crd::validate(&crd, None, &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        let resources = crate::crd::resources(&crd);
        let custom = resources[0].custom.as_ref().expect("custom");
        assert!(custom.scale.is_some() && !custom.selectable_fields.is_empty());
        assert_eq!(custom.printer_columns.len(), 3);
    }

    /// Found in the fuzzing campaign (the patch fuzz binary took over two minutes on one
    /// input): server-side apply and managed-fields tracking scanned a list once per path
    /// (and per applied item, and per conflict), so a Pod with 4 000 containers force-applied
    /// by a second manager took seconds to minutes. Lists are now indexed; the outcome is
    /// the same.
    #[test]
    fn apply_to_a_long_keyed_list_takes_the_fields_over() {
        let n = 4000;
        let res = registry::builtin()
            .iter()
            .find(|r| r.gv.group.is_empty() && r.kind == "Pod")
            .expect("pods");
        let owned: serde_json::Map<String, Value> = (0..n)
            .map(|i| {
                (
                    format!("k:{{\"name\":\"c{i}\"}}"),
                    json!({".": {}, "f:image": {}, "f:name": {}}),
                )
            })
            .collect();
        let containers = |image: &str| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"name": format!("c{i}"), "image": image}))
                .collect()
        };
        let current = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "managedFields": [{
                "manager": "other", "operation": "Apply", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:containers": owned}},
            }]},
            "spec": {"containers": containers("i")},
        });
        let applied = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": containers("j")}});
        let target = || crate::objects::target(res, "p");
        let conflict = crate::apply::apply_to(res, None, false, &target, &current, &applied, "me");
        assert!(matches!(conflict, Err(ApiError::Conflict { .. })));
        let out = crate::apply::apply_to(res, None, true, &target, &current, &applied, "me")
            .expect("forced");
        let items = out["spec"]["containers"].as_array().expect("list");
        assert_eq!(items.len(), n);
        assert!(items.iter().all(|c| c["image"] == "j"));
        let managers = out["metadata"]["managedFields"]
            .as_array()
            .expect("entries");
        let other = managers
            .iter()
            .find(|e| e["manager"] == "other")
            .expect("other");
        let other_c0 = &other["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"c0\"}"];
        assert!(other_c0.get("f:image").is_none(), "{other_c0}");
        assert!(other_c0.get("f:name").is_some(), "{other_c0}");
        // An update by a third manager then takes only what it changes.
        let mut changed = out.clone();
        changed["spec"]["containers"][5]["image"] = "k".into();
        let Ok(Decision::Write(updated)) =
            strategy::prepare_update(res, None, &out, changed, "third", "Update", "v1")
        else {
            panic!("an update");
        };
        let third = updated["metadata"]["managedFields"]
            .as_array()
            .and_then(|m| m.iter().find(|e| e["manager"] == "third"))
            .expect("third")
            .clone();
        assert_eq!(
            third["fieldsV1"],
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"c5\"}": {".": {}, "f:image": {}}}}})
        );
    }

    /// The `object` and `patch` seeds name the kinds they were written for.
    #[test]
    fn seeds_pick_the_kinds_they_were_written_for() {
        let kind = |target: &str, name: &str| builtin(seed(target, name)[0]).kind.to_string();
        assert_eq!(kind("object", "seed-01"), "Pod");
        assert_eq!(kind("object", "seed-02"), "Deployment");
        assert_eq!(kind("patch", "seed-06"), "Deployment");
        assert_eq!(kind("query", "seed-08"), "Event");
    }
}
