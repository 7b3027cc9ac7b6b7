//! Deleting and waiting, namespace termination, and kubectl's read-only helpers (whoami,
//! explain, api-resources).
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{self, Collector, Server};
use crate::{cells, configmap};

/// Waits (bounded) for a child kubectl to exit and returns whether it succeeded and its output.
fn finish(mut c: Collector, what: &str) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = c.child.try_wait().expect("try_wait") {
            std::thread::sleep(Duration::from_millis(50));
            return (status.success(), c.text());
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not return within 30s (the watch missed the change?)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn held_configmap(name: &str) -> String {
    let mut cm = configmap(name, json!({}), json!({"k": "v"}));
    cm["metadata"]["finalizers"] = json!(["example.com/hold"]);
    cm.to_string()
}

const RELEASE: &str = r#"{"metadata":{"finalizers":null}}"#;

#[test]
fn delete_waits_for_finalizers_unless_told_not_to() {
    require_kubectl!();
    let s = Server::start();
    s.k_in(&["create", "-f", "-"], &held_configmap("held"));
    assert_eq!(
        s.k(&["delete", "cm", "held", "--wait=false"]).trim(),
        "configmap \"held\" deleted"
    );
    let ts = s.k(&[
        "get",
        "cm",
        "held",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(
        ts.ends_with('Z'),
        "still there, marked for deletion: {ts:?}"
    );
    let err = s.k_err(&["delete", "cm", "held", "--timeout=2s"]);
    assert!(err.contains("timed out waiting"), "{err}");
    // A waiting delete returns once the last finalizer goes.
    let waiting = Collector::new(s.kubectl_child(&["delete", "cm", "held", "--timeout=30s"]));
    std::thread::sleep(Duration::from_millis(500));
    s.k(&["patch", "cm", "held", "--type=merge", "-p", RELEASE]);
    let (ok, out) = finish(waiting, "kubectl delete (waiting)");
    assert!(ok, "{out}");
    assert!(s.k_err(&["get", "cm", "held"]).contains("NotFound"));
    // --ignore-not-found and a plain NotFound.
    assert!(
        s.k_err(&["delete", "cm", "held"])
            .contains("configmaps \"held\" not found")
    );
    assert_eq!(s.k(&["delete", "cm", "held", "--ignore-not-found"]), "");
}

#[test]
fn wait_for_delete_jsonpath_and_a_status_condition() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "cm", "flag"]);
    let ready = Collector::new(s.kubectl_child(&[
        "wait",
        "--for=jsonpath={.data.ready}=yes",
        "cm/flag",
        "--timeout=30s",
    ]));
    std::thread::sleep(Duration::from_millis(500));
    s.k(&[
        "patch",
        "cm",
        "flag",
        "--type=merge",
        "-p",
        r#"{"data":{"ready":"no"}}"#,
    ]);
    s.k(&[
        "patch",
        "cm",
        "flag",
        "--type=merge",
        "-p",
        r#"{"data":{"ready":"yes"}}"#,
    ]);
    let (ok, out) = finish(ready, "kubectl wait --for=jsonpath");
    assert!(ok && out.contains("configmap/flag condition met"), "{out}");

    s.k(&[
        "create",
        "deployment",
        "d1",
        "--image=nginx:1.27",
        "--replicas=0",
    ]);
    let err = s.k_err(&[
        "wait",
        "--for=condition=Available",
        "deploy/d1",
        "--timeout=1s",
    ]);
    assert!(err.contains("timed out"), "no condition yet: {err}");
    let available = Collector::new(s.kubectl_child(&[
        "wait",
        "--for=condition=Available",
        "deploy/d1",
        "--timeout=30s",
    ]));
    std::thread::sleep(Duration::from_millis(500));
    let status = json!({"status": {"conditions": [{
        "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "ok",
        "lastUpdateTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}});
    s.k(&[
        "patch",
        "deploy",
        "d1",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    let (ok, out) = finish(available, "kubectl wait --for=condition");
    assert!(
        ok && out.contains("deployment.apps/d1 condition met"),
        "{out}"
    );
    // The status subresource changed only the status.
    assert_eq!(
        s.k(&[
            "get",
            "deploy",
            "d1",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "1"
    );

    s.k_in(&["create", "-f", "-"], &held_configmap("gone"));
    s.k(&["delete", "cm", "gone", "--wait=false"]);
    let deleted =
        Collector::new(s.kubectl_child(&["wait", "--for=delete", "cm/gone", "--timeout=30s"]));
    std::thread::sleep(Duration::from_millis(500));
    s.k(&["patch", "cm", "gone", "--type=merge", "-p", RELEASE]);
    let (ok, out) = finish(deleted, "kubectl wait --for=delete");
    assert!(ok && out.contains("configmap/gone condition met"), "{out}");
}

#[test]
fn deleting_a_namespace_terminates_it_removes_its_content_and_refuses_new_objects() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "namespace", "doomed"]);
    s.k(&[
        "create",
        "cm",
        "plain",
        "-n",
        "doomed",
        "--from-literal=k=v",
    ]);
    s.k(&[
        "create",
        "deployment",
        "web",
        "-n",
        "doomed",
        "--image=nginx:1.27",
    ]);
    // A finalizer keeps one object, and so the namespace, around while we look.
    s.k_in(
        &["create", "-n", "doomed", "-f", "-"],
        &held_configmap("held"),
    );
    assert_eq!(
        s.k(&["delete", "namespace", "doomed", "--wait=false"])
            .trim(),
        "namespace \"doomed\" deleted"
    );
    let row = s.k(&["get", "namespace", "doomed", "--no-headers"]);
    assert_eq!(cells(&row)[1], "Terminating", "{row}");
    common::eventually("the namespace's other content to be deleted", || {
        s.k(&["get", "cm,deploy", "-n", "doomed", "-o", "name"])
            .trim()
            == "configmap/held"
    });
    let err = s.k_err(&["create", "cm", "late", "-n", "doomed"]);
    assert!(
        err.contains("forbidden")
            && err.contains(
                "unable to create new content in namespace doomed because it is being terminated"
            ),
        "{err}"
    );
    let code = s.curl(
        "POST",
        "/api/v1/namespaces/doomed/configmaps",
        "application/json",
        Some(
            configmap("late", json!({}), json!({}))
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(code.code, 403, "{}", code.body);
    assert_eq!(code.json()["reason"], "Forbidden");

    s.k(&[
        "patch",
        "cm",
        "held",
        "-n",
        "doomed",
        "--type=merge",
        "-p",
        RELEASE,
    ]);
    common::eventually("the namespace to disappear", || {
        !s.kubectl(&["get", "namespace", "doomed"]).status.success()
    });
    assert_eq!(s.k(&["get", "cm,deploy", "-n", "doomed", "-o", "name"]), "");
    // The name can be used again, and the new namespace is empty but for its defaults.
    s.k(&["create", "namespace", "doomed"]);
    common::eventually("the new namespace's default objects", || {
        s.k(&["get", "cm,sa", "-n", "doomed", "-o", "name"])
            == "configmap/kube-root-ca.crt\nserviceaccount/default\n"
    });
}

#[test]
fn whoami_explain_and_api_resources_describe_the_server() {
    require_kubectl!();
    let s = Server::start();
    let who = s.k(&["auth", "whoami", "-o", "json"]);
    let who = crate::parse(&who);
    assert_eq!(who["status"]["userInfo"]["username"], "system:admin");
    assert!(
        who["status"]["userInfo"]["groups"]
            .as_array()
            .is_some_and(|g| g.contains(&json!("system:masters"))),
        "{who}"
    );

    let doc = s.k(&["explain", "deploy.spec.template.spec.containers.ports"]);
    for want in [
        "KIND:       Deployment",
        "VERSION:    v1",
        "FIELD: ports <[]ContainerPort>",
        "containerPort\t<integer> -required-",
        "protocol\t<string>",
    ] {
        assert!(doc.contains(want), "{want:?} missing from explain:\n{doc}");
    }
    let err = s.k_err(&["explain", "deploy.spec.nosuchfield"]);
    assert!(err.contains("nosuchfield"), "{err}");

    let resources = s.k(&["api-resources", "-o", "wide"]);
    let line = |name: &str| -> Vec<String> {
        resources
            .lines()
            .map(cells)
            .find(|c| c.first().map(String::as_str) == Some(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{resources}"))
    };
    let deploy = line("deployments");
    assert_eq!(
        &deploy[1..5],
        ["deploy", "apps/v1", "true", "Deployment"],
        "{deploy:?}"
    );
    assert_eq!(
        deploy.last().map(String::as_str),
        Some("all"),
        "category: {deploy:?}"
    );
    assert_eq!(&line("services")[1..5], ["svc", "v1", "true", "Service"]);
    assert_eq!(
        &line("namespaces")[1..5],
        ["ns", "v1", "false", "Namespace"]
    );
    assert_eq!(line("pods")[1], "po");
    let apps = s.k(&["api-resources", "--api-group=apps", "-o", "name"]);
    assert_eq!(
        apps,
        "controllerrevisions.apps\ndaemonsets.apps\ndeployments.apps\nreplicasets.apps\nstatefulsets.apps\n"
    );
    // Short names resolve.
    s.k(&["create", "deployment", "web", "--image=nginx:1.27"]);
    assert_eq!(
        s.k(&["get", "deploy", "-o", "name"]),
        "deployment.apps/web\n"
    );
}
