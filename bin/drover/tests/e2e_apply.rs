//! Server-side apply with several field managers, driven by real kubectl.
mod common;

use common::Server;

fn cm(data: &[(&str, &str)], labels: &[(&str, &str)]) -> String {
    let mut y = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n");
    if !labels.is_empty() {
        y.push_str("  labels:\n");
        for (k, v) in labels {
            y.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    y.push_str("data:\n");
    for (k, v) in data {
        y.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    y
}

fn apply(s: &Server, manager: &str, yaml: &str, force: bool) -> std::process::Output {
    let mut args = vec![
        "apply",
        "--server-side",
        "--field-manager",
        manager,
        "-f",
        "-",
    ];
    if force {
        args.push("--force-conflicts");
    }
    s.kubectl_env("1.32", &args, &[], Some(yaml))
}

fn data(s: &Server) -> serde_json::Value {
    let out = s.k(&["get", "cm", "shared", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["data"].clone()
}

#[test]
fn a_field_dropped_from_one_managers_apply_stays_while_another_manager_owns_it() {
    require_kubectl!();
    let s = Server::start();
    assert!(
        apply(
            &s,
            "alice",
            &cm(&[("shared", "1"), ("mine", "a")], &[("team", "a")]),
            false
        )
        .status
        .success()
    );
    assert!(
        apply(
            &s,
            "bob",
            &cm(&[("shared", "1"), ("bobs", "b")], &[]),
            false
        )
        .status
        .success()
    );
    // Alice stops applying both `shared` and `mine`: `mine` goes, `shared` stays (bob owns it).
    assert!(
        apply(&s, "alice", &cm(&[], &[("team", "a")]), false)
            .status
            .success()
    );
    let d = data(&s);
    assert_eq!(
        d.get("mine"),
        None,
        "alice's dropped field should be removed: {d}"
    );
    assert_eq!(d["shared"], "1", "a field bob still owns must stay: {d}");
    assert_eq!(d["bobs"], "b");
    // Bob drops it too: now it goes.
    assert!(
        apply(&s, "bob", &cm(&[("bobs", "b")], &[]), false)
            .status
            .success()
    );
    assert_eq!(data(&s).get("shared"), None);
}

#[test]
fn applying_a_field_another_manager_owns_with_a_different_value_conflicts_unless_forced() {
    require_kubectl!();
    let s = Server::start();
    assert!(
        apply(&s, "alice", &cm(&[("x", "1")], &[]), false)
            .status
            .success()
    );
    let out = apply(&s, "bob", &cm(&[("x", "2")], &[]), false);
    assert!(!out.status.success(), "a conflicting apply must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflict") && err.contains("alice") && err.contains(".data.x"),
        "{err}"
    );
    assert_eq!(
        data(&s)["x"],
        "1",
        "a refused apply must not change the object"
    );
    assert!(
        apply(&s, "bob", &cm(&[("x", "2")], &[]), true)
            .status
            .success()
    );
    assert_eq!(data(&s)["x"], "2");
    // Alice lost ownership of x: dropping it from her apply leaves bob's value.
    assert!(
        apply(&s, "alice", &cm(&[("y", "1")], &[]), false)
            .status
            .success()
    );
    assert_eq!(data(&s)["x"], "2");
    let mf = s.k(&[
        "get",
        "cm",
        "shared",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert!(mf.contains("alice") && mf.contains("bob"), "{mf}");
}

#[test]
fn objects_made_with_client_side_apply_migrate_to_server_side_apply() {
    require_kubectl!();
    let s = Server::start();
    let v1 = cm(&[("a", "1"), ("b", "2")], &[]);
    let out = s.kubectl_env("1.32", &["apply", "-f", "-"], &[], Some(&v1));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Server-side apply by kubectl takes over from client-side apply without conflicts...
    let out = s.kubectl_env(
        "1.32",
        &["apply", "--server-side", "-f", "-"],
        &[],
        Some(&cm(&[("a", "10"), ("b", "2")], &[])),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(data(&s)["a"], "10");
    // ...and owns the fields: dropping one removes it.
    let out = s.kubectl_env(
        "1.32",
        &["apply", "--server-side", "-f", "-"],
        &[],
        Some(&cm(&[("a", "10")], &[])),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        data(&s).get("b"),
        None,
        "after migration, a field dropped from the manifest is removed: {}",
        data(&s)
    );
}

#[test]
fn client_side_apply_of_an_update_uses_openapi_v3_only() {
    require_kubectl!();
    let s = Server::start();
    let deploy = |replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n        ports:\n        - containerPort: 80\n"
        )
    };
    let out = s.kubectl_env("1.32", &["apply", "-f", "-"], &[], Some(&deploy(2)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.kubectl_env("1.32", &["apply", "-v=6", "-f", "-"], &[], Some(&deploy(3)));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("/openapi/v3/apis/apps/v1?hash="),
        "kubectl did not read the apps/v1 OpenAPI v3 document:\n{log}"
    );
    assert!(
        !log.contains("/openapi/v2"),
        "kubectl fell back to /openapi/v2:\n{log}"
    );
    assert!(log.contains("PATCH https://"), "{log}");
    assert_eq!(
        s.k(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
}
