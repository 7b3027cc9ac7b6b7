//! Definitions and `/openapi/v3` documents of the built-in API.

use drover_core::registry::{self, GroupVersion, Verbs};
use drover_schema::{CrdKind, builtin_doc, builtin_docs, crd_group_version, definitions, v3_index};
use serde_json::{Value, json};

fn gvk_list(def: &Value) -> Vec<Value> {
    def["x-kubernetes-group-version-kind"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn doc(gv: &str) -> Value {
    let d = builtin_doc(&GroupVersion::parse(gv)).expect("built-in group-version");
    serde_json::from_slice(&d.body).expect("document is JSON")
}

#[test]
fn every_registry_kind_has_a_definition_with_its_gvk() {
    let defs = definitions();
    for r in registry::builtin() {
        let (g, v, k) = (&*r.gv.group, &*r.gv.version, &*r.kind);
        let name = defs
            .kind_name(g, v, k)
            .unwrap_or_else(|| panic!("no definition for {g}/{v} {k}"));
        let want = json!({ "group": g, "kind": k, "version": v });
        assert!(
            gvk_list(defs.get(name).unwrap()).contains(&want),
            "{name} lacks its GVK"
        );
        if r.verbs != Verbs::CreateOnly {
            let list = defs
                .kind_name(g, v, &format!("{k}List"))
                .expect("list kind");
            assert_eq!(list, format!("{name}List"));
            let want = json!({ "group": g, "kind": format!("{k}List"), "version": v });
            assert!(
                gvk_list(defs.get(list).unwrap()).contains(&want),
                "{list} lacks its GVK"
            );
        }
    }
    assert_eq!(
        defs.kind_name("apps", "v1", "Deployment"),
        Some("io.k8s.api.apps.v1.Deployment")
    );
}

#[test]
fn meta_types_are_named_like_upstream_and_carry_gvk_lists() {
    let defs = definitions();
    let status = defs
        .get("io.k8s.apimachinery.pkg.apis.meta.v1.Status")
        .expect("Status");
    assert_eq!(
        gvk_list(status),
        vec![json!({"group": "", "kind": "Status", "version": "v1"})]
    );
    let delete = defs
        .get("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        .expect("DeleteOptions");
    assert!(
        gvk_list(delete)
            .contains(&json!({"group": "apps", "kind": "DeleteOptions", "version": "v1"}))
    );
    assert!(
        gvk_list(delete).contains(&json!({"group": "", "kind": "DeleteOptions", "version": "v1"}))
    );
    for name in [
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
        "io.k8s.api.autoscaling.v1.Scale",
        "io.k8s.api.core.v1.PodSpec",
    ] {
        assert!(defs.get(name).is_some(), "{name} missing");
    }
}

#[test]
fn fields_carry_descriptions_for_kubectl_explain() {
    let defs = definitions();
    let container = defs.get("io.k8s.api.core.v1.Container").unwrap();
    let ports = &container["properties"]["ports"];
    assert!(ports["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        json!(["containerPort", "protocol"])
    );
    // A reference with a description is wrapped in allOf, like upstream's v3 documents.
    let template =
        &defs.get("io.k8s.api.apps.v1.DeploymentSpec").unwrap()["properties"]["template"];
    assert_eq!(
        template["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"
    );
    assert!(template["description"].is_string());
}

#[test]
fn apps_v1_has_a_patch_operation_kubectl_trusts() {
    let doc = doc("apps/v1");
    assert_eq!(doc["openapi"], "3.0.0");
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    let params: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for p in ["fieldValidation", "dryRun", "fieldManager", "force"] {
        assert!(params.contains(&p), "patch lacks parameter {p}: {params:?}");
    }
    let content = patch["requestBody"]["content"].as_object().unwrap();
    for t in [
        "application/strategic-merge-patch+json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/apply-patch+yaml",
    ] {
        assert!(content.contains_key(t), "patch lacks content type {t}");
    }
    let scale =
        &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
    assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
    assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    assert!(
        doc["paths"]["/apis/apps/v1/deployments"]["get"].is_object(),
        "cluster-wide list path"
    );
    assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"].is_array());
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                out.push(r.to_owned());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_ref_in_every_document_resolves_inside_it() {
    let docs = builtin_docs();
    assert_eq!(docs.len(), registry::builtin_group_versions().len());
    for d in &docs {
        let doc: Value = serde_json::from_slice(&d.body).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{}: bad ref {r}", d.path));
            assert!(
                schemas.contains_key(name),
                "{}: {r} does not resolve",
                d.path
            );
        }
    }
}

#[test]
fn index_lists_every_group_version_with_a_stable_hash() {
    let docs = builtin_docs();
    let index = v3_index(docs.iter().map(|d| &**d));
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
    assert!(index["paths"]["api/v1"].is_object());
    let again = builtin_doc(&GroupVersion::parse("apps/v1")).unwrap();
    assert!(url.ends_with(&again.hash));
    assert_eq!(again.hash.len(), 128);
}

#[test]
fn create_only_and_read_only_resources_get_only_their_operations() {
    let doc = doc("authentication.k8s.io/v1");
    let reviews = &doc["paths"]["/apis/authentication.k8s.io/v1/tokenreviews"];
    assert!(reviews["post"].is_object() && reviews["get"].is_null());
    assert!(doc["paths"]["/apis/authentication.k8s.io/v1/tokenreviews/{name}"].is_null());
    let core = self::doc("v1");
    let cs = &core["paths"]["/api/v1/componentstatuses"];
    assert!(cs["get"].is_object() && cs["post"].is_null());
    let token =
        &core["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"];
    assert_eq!(
        token["x-kubernetes-group-version-kind"]["kind"],
        "TokenRequest"
    );
    let exec = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/exec"];
    assert_eq!(exec["get"]["x-kubernetes-action"], "connect");
}

#[test]
fn crd_documents_use_the_crd_schema_and_no_strategic_merge_patch() {
    let gv = GroupVersion::parse("stable.example.com/v1");
    let resource = drover_core::registry::Resource {
        gv: gv.clone(),
        kind: "CronTab".into(),
        plural: "crontabs".into(),
        singular: "crontab".into(),
        namespaced: true,
        short_names: std::borrow::Cow::Borrowed(&[]),
        categories: std::borrow::Cow::Borrowed(&[]),
        verbs: Verbs::All,
        subresources: std::borrow::Cow::Borrowed(&[]),
        storage_group: "stable.example.com".into(),
        storage_version: "v1".into(),
        preferred: true,
        custom: None,
    };
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"cronSpec": {"type": "string"}}}}});
    let d = crd_group_version(
        &gv,
        &[resource],
        &[CrdKind {
            kind: "CronTab",
            schema: &schema,
        }],
    );
    assert_eq!(d.path, "apis/stable.example.com/v1");
    let doc: Value = serde_json::from_slice(&d.body).unwrap();
    let patch = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
        ["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "CronTab");
    assert!(patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_null());
    assert!(patch["requestBody"]["content"]["application/merge-patch+json"].is_object());
    let def = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
    assert_eq!(
        def["properties"]["spec"]["properties"]["cronSpec"]["type"],
        "string"
    );
    assert!(
        doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object()
    );
}
