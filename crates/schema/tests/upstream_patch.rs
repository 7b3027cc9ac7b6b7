//! Strategic merge patch through the real built-in schemas, for fields whose patch metadata was
//! corrected against the Kubernetes 1.33 markers (see `tests/data/k8s-v1.33-field-markers.tsv`).

use drover_core::patch::strategic_merge;
use drover_schema::SchemaNode;
use serde_json::{Value, json};

fn patch(group: &str, version: &str, kind: &str, original: Value, patch: Value) -> Value {
    let schema = SchemaNode::for_kind(group, version, kind).expect(kind);
    strategic_merge(&original, &patch, Some(&schema)).expect("patch applies")
}

#[test]
fn pod_disruption_budget_selector_is_replaced_not_merged() {
    // policy/v1 PodDisruptionBudgetSpec.selector: +patchStrategy=replace.
    let pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web", "tier": "front"}}}
    });
    let out = patch(
        "policy",
        "v1",
        "PodDisruptionBudget",
        pdb,
        json!({"spec": {"selector": {"matchLabels": {"app": "api"}}}}),
    );
    assert_eq!(
        out["spec"],
        json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}})
    );
    // A Deployment's selector has no strategy: it merges.
    let deployment =
        json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}});
    let out = patch(
        "apps",
        "v1",
        "Deployment",
        deployment,
        json!({"spec": {"selector": {"matchLabels": {"app": "api"}}}}),
    );
    assert_eq!(
        out["spec"]["selector"],
        json!({"matchLabels": {"app": "api", "tier": "front"}})
    );
}

#[test]
fn validating_admission_policy_variables_merge_by_name() {
    // admissionregistration/v1 ValidatingAdmissionPolicySpec.variables: merge on name (the table
    // had it atomic, so a patch replaced every variable).
    let vap = json!({"spec": {"variables": [
        {"name": "a", "expression": "1"},
        {"name": "b", "expression": "2"}
    ]}});
    let out = patch(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        vap,
        json!({"spec": {"variables": [{"name": "b", "expression": "3"}]}}),
    );
    assert_eq!(
        out["spec"]["variables"],
        json!([{"name": "a", "expression": "1"}, {"name": "b", "expression": "3"}])
    );
}

#[test]
fn crd_validation_rules_merge_by_rule() {
    // apiextensions/v1 JSONSchemaProps.x-kubernetes-validations: merge on rule.
    let crd = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.a > 0"}, {"rule": "self.b > 0"}]
    }}}]}});
    let schema = SchemaNode::for_kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
        .expect("CRD");
    let props = ["spec", "versions"]
        .iter()
        .try_fold(schema, |n, f| n.field(f))
        .and_then(|v| v.items())
        .and_then(|v| v.field("schema"))
        .and_then(|s| s.field("openAPIV3Schema"))
        .expect("openAPIV3Schema");
    let original = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    let out = strategic_merge(
        &original,
        &json!({"x-kubernetes-validations": [{"rule": "self.b > 0", "message": "b"}]}),
        Some(&props),
    )
    .unwrap();
    assert_eq!(
        out["x-kubernetes-validations"],
        json!([{"rule": "self.a > 0"}, {"rule": "self.b > 0", "message": "b"}])
    );
}

#[test]
fn container_allocated_resources_status_merges_by_name_and_host_ips_stay_merging() {
    // core/v1 ContainerStatus.allocatedResourcesStatus: merge on name (listType=map);
    // PodStatus.hostIPs: merge on ip with listType=atomic.
    let pod = json!({"status": {
        "hostIPs": [{"ip": "10.0.0.1"}],
        "containerStatuses": [{"name": "c", "allocatedResourcesStatus": [
            {"name": "gpu", "resources": [{"resourceID": "g0", "health": "Healthy"}]},
            {"name": "cpu", "resources": []}
        ]}]
    }});
    let schema = SchemaNode::for_kind("", "v1", "Pod").expect("Pod");
    let status = schema.field("status").expect("status");
    let statuses = status
        .field("containerStatuses")
        .and_then(|s| s.items())
        .expect("containerStatuses");
    let out = strategic_merge(
        &pod["status"]["containerStatuses"][0],
        &json!({"allocatedResourcesStatus": [{"name": "gpu", "resources": []}]}),
        Some(&statuses),
    )
    .unwrap();
    assert_eq!(
        out["allocatedResourcesStatus"],
        json!([{"name": "gpu", "resources": []}, {"name": "cpu", "resources": []}])
    );
    let host_ips = status.field("hostIPs").expect("hostIPs");
    assert_eq!(host_ips.list_type(), Some("atomic"));
    let out = strategic_merge(
        &pod["status"],
        &json!({"hostIPs": [{"ip": "fd00::1"}]}),
        Some(&status),
    )
    .unwrap();
    assert_eq!(
        out["hostIPs"],
        json!([{"ip": "fd00::1"}, {"ip": "10.0.0.1"}])
    );
}
