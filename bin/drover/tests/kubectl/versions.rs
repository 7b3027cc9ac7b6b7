//! Older and newer kubectl: the oldest (1.27, JSON bodies, v2beta1 discovery) and the newest
//! (1.33, protobuf bodies) we support.
use crate::common::{self, Server};

fn smoke(minor: &str) {
    if !common::have_peer(
        &format!("kubectl {minor}"),
        common::kubectl_binary(minor).is_some(),
    ) {
        return;
    }
    let s = Server::start();
    let k = |args: &[&str]| -> String {
        let out = s.kubectl_v(minor, args);
        assert!(
            out.status.success(),
            "kubectl {minor} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let v = k(&["version", "-o", "json"]);
    let v = crate::parse(&v);
    assert!(
        v["clientVersion"]["gitVersion"]
            .as_str()
            .is_some_and(|g| g.starts_with(&format!("v{minor}."))),
        "{v}"
    );
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.33.0+drover");
    assert!(
        k(&["get", "ns"])
            .lines()
            .any(|l| l.starts_with("default ") && l.contains("Active"))
    );
    assert_eq!(
        k(&["create", "configmap", "c1", "--from-literal=a=1"]).trim(),
        "configmap/c1 created"
    );
    assert_eq!(k(&["get", "cm", "c1", "-o", "jsonpath={.data.a}"]), "1");
    let widget = common::fixture("manifests/widget-config.yaml");
    let apply = |file: &str| k(&["apply", "-f", file]);
    assert_eq!(apply(&widget).trim(), "configmap/widget created");
    let red = s.dir.path().join("red.yaml");
    std::fs::write(
        &red,
        std::fs::read_to_string(&widget)
            .expect("fixture")
            .replace("blue", "red"),
    )
    .expect("write");
    assert_eq!(
        apply(&red.to_string_lossy()).trim(),
        "configmap/widget configured"
    );
    let ssa = k(&["apply", "--server-side", "--force-conflicts", "-f", &widget]);
    assert_eq!(ssa.trim(), "configmap/widget serverside-applied");
    assert_eq!(
        k(&["get", "cm", "widget", "-o", "jsonpath={.data.color}"]),
        "blue"
    );
    k(&["create", "deployment", "d1", "--image=nginx:1.27"]);
    let table = k(&["get", "deploy"]);
    assert!(
        table.starts_with("NAME ") && table.contains("READY") && table.contains("d1 "),
        "server-side table: {table}"
    );
    assert_eq!(
        k(&["delete", "cm", "c1", "widget"])
            .matches("deleted")
            .count(),
        2
    );
    assert_eq!(
        k(&["get", "cm", "-o", "name"]),
        "configmap/kube-root-ca.crt\n"
    );
}

#[test]
fn kubectl_1_27_can_read_write_and_delete() {
    smoke("1.27");
}

#[test]
fn kubectl_1_33_can_read_write_and_delete() {
    smoke("1.33");
}

/// kubectl 1.27 and 1.28 check `fieldValidation` support in /openapi/v2 (protobuf only).
#[test]
fn kubectl_1_27_and_1_28_apply_with_default_validation() {
    for minor in ["1.27", "1.28"] {
        if !common::have_peer(
            &format!("kubectl {minor}"),
            common::kubectl_binary(minor).is_some(),
        ) {
            continue;
        }
        let s = Server::start();
        for manifest in ["manifests/widget-config.yaml", "manifests/deploy-v1.yaml"] {
            let out = s.kubectl_v(minor, &["apply", "-f", &common::fixture(manifest)]);
            assert!(
                out.status.success(),
                "kubectl {minor} apply -f {manifest}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(
            s.k(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
            "2"
        );
    }
}

/// Unknown fields still fail kubectl 1.27's default validation: a single object through the
/// server's strict field validation, the items of a `kind: List` through kubectl's own
/// validation against /openapi/v2 (the List kind has no `fieldValidation` to defer to).
#[test]
fn kubectl_1_27_reports_unknown_fields_with_default_validation() {
    if !common::have_peer("kubectl 1.27", common::kubectl_binary("1.27").is_some()) {
        return;
    }
    let s = Server::start();
    let fail = |args: &[&str], stdin: Option<&str>| -> String {
        let out = s.kubectl_env("1.27", args, &[], stdin);
        assert!(
            !out.status.success(),
            "kubectl 1.27 {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let single = common::fixture("manifests/configmap-unknown-field.yaml");
    let err = fail(&["apply", "-f", &single], None);
    assert!(err.contains(r#"unknown field "colour""#), "{err}");

    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "listed"},
         "data": {"k": "v"}, "colour": "blue"},
    ]});
    let err = fail(&["apply", "-f", "-"], Some(&list.to_string()));
    assert!(
        err.contains("error validating data")
            && err.contains(r#"unknown field "colour" in io.k8s.api.core.v1.ConfigMap"#),
        "{err}"
    );
    assert_eq!(
        s.k(&["get", "cm", "-o", "name"]),
        "configmap/kube-root-ca.crt\n"
    );
}

#[test]
fn apply_of_a_kind_list_file_validates() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "cm", "a", "--from-literal=k=v"]);
    s.k(&["label", "cm", "a", "saved=yes"]);
    // The round trip people do every day: save a list, apply it back.
    let list = s.k(&["get", "cm", "-l", "saved=yes", "-o", "yaml"]);
    assert!(list.contains("kind: List"), "{list}");
    s.k_in(&["apply", "-f", "-"], &list);
    let fresh = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [crate::configmap("b", serde_json::json!({}), serde_json::json!({}))]});
    s.k_in(&["create", "-f", "-"], &fresh.to_string());
}

#[test]
fn openapi_v2_is_json_for_clients_that_do_not_ask_for_protobuf() {
    require_kubectl!();
    let s = Server::start();
    let doc = crate::parse(&s.k(&["get", "--raw", "/openapi/v2"]));
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(
        doc["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(
        doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
            .is_object()
    );
}
