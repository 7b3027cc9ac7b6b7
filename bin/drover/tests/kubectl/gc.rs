//! Garbage collection through ownerReferences: background, foreground with
//! blockOwnerDeletion, orphan, and a cascade interrupted by a crash.
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{self, Server};
use crate::{cms, configmap, names};

fn uid(s: &Server, what: &str) -> String {
    let u = s.k(&["get", what, "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(u.len(), 36, "{what} uid {u:?}");
    u
}

/// Creates a ConfigMap owned by `owner` (a ConfigMap), optionally blocking the owner's
/// deletion and holding a finalizer of its own.
fn owned_cm(s: &Server, name: &str, owner: Option<&str>, block: bool, hold: bool) {
    let mut cm = configmap(name, json!({}), json!({}));
    if let Some(o) = owner {
        cm["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": o, "uid": uid(s, &format!("cm/{o}")), "blockOwnerDeletion": block}]);
    }
    if hold {
        cm["metadata"]["finalizers"] = json!(["example.com/hold"]);
    }
    s.k_in(&["create", "-f", "-"], &cm.to_string());
}

fn release(s: &Server, name: &str) {
    s.k(&[
        "patch",
        "cm",
        name,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
}

fn exists(s: &Server, what: &str) -> bool {
    s.kubectl(&["get", what]).status.success()
}

fn owned_by(kind: &str, name: &str, uid: &str) -> Value {
    let api = if kind == "Deployment" || kind == "ReplicaSet" {
        "apps/v1"
    } else {
        "v1"
    };
    json!([{"apiVersion": api, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}])
}

#[test]
fn background_deletion_removes_a_three_level_deployment_replicaset_pod_chain() {
    require_kubectl!();
    let s = Server::start();
    s.k(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=0",
    ]);
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-abc", "labels": {"app": "web"}, "ownerReferences": owned_by("Deployment", "web", &uid(&s, "deploy/web"))},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
    });
    s.k_in(&["create", "-f", "-"], &rs.to_string());
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-abc-x1", "labels": {"app": "web"}, "ownerReferences": owned_by("ReplicaSet", "web-abc", &uid(&s, "rs/web-abc"))},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
    });
    s.k_in(&["create", "-f", "-"], &pod.to_string());
    // An unrelated pod with the same labels stays.
    s.k(&["run", "bystander", "--image=nginx:1.27", "--labels=app=web"]);

    s.k(&["delete", "deploy", "web"]);
    common::eventually("the ReplicaSet and its Pod to be collected", || {
        s.k(&["get", "rs,pods", "-o", "name"]).trim() == "pod/bystander"
    });
}

#[test]
fn foreground_deletion_waits_for_blocking_dependents_before_the_owner() {
    require_kubectl!();
    let s = Server::start();
    owned_cm(&s, "root", None, false, false);
    owned_cm(&s, "mid", Some("root"), true, false);
    owned_cm(&s, "leaf", Some("mid"), true, true);
    owned_cm(&s, "loose", Some("root"), false, true);
    s.k(&[
        "delete",
        "cm",
        "root",
        "--cascade=foreground",
        "--wait=false",
    ]);
    common::eventually("the cascade to reach the leaf", || {
        !s.k(&[
            "get",
            "cm",
            "leaf",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .is_empty()
    });
    // The leaf's finalizer holds mid (it blocks), and mid holds root. `loose` does not block.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        s.k(&["get", "cm", "root", "-o", "jsonpath={.metadata.finalizers}"]),
        r#"["foregroundDeletion"]"#
    );
    assert_eq!(
        s.k(&["get", "cm", "mid", "-o", "jsonpath={.metadata.finalizers}"]),
        r#"["foregroundDeletion"]"#
    );
    assert!(
        exists(&s, "cm/loose"),
        "loose is being deleted but held by its own finalizer"
    );
    release(&s, "leaf");
    common::eventually("root, mid and leaf to be deleted", || {
        names(&s.k(&["get", "cm", "-o", "name"])) == cms(&["kube-root-ca.crt", "loose"])
    });
    release(&s, "loose");
    common::eventually("loose to go", || !exists(&s, "cm/loose"));

    // `kubectl delete --cascade=foreground` (waiting) returns only when the owner is gone.
    owned_cm(&s, "p", None, false, false);
    owned_cm(&s, "c", Some("p"), true, false);
    assert_eq!(
        s.k(&["delete", "cm", "p", "--cascade=foreground"]).trim(),
        "configmap \"p\" deleted"
    );
    assert!(!exists(&s, "cm/p") && !exists(&s, "cm/c"));
}

#[test]
fn orphan_deletion_keeps_dependents_and_strips_their_owner_reference() {
    require_kubectl!();
    let s = Server::start();
    owned_cm(&s, "owner", None, false, false);
    owned_cm(&s, "kid1", Some("owner"), true, false);
    owned_cm(&s, "kid2", Some("owner"), false, false);
    s.k(&["delete", "cm", "owner", "--cascade=orphan"]);
    assert!(!exists(&s, "cm/owner"));
    common::eventually("the owner references to be removed", || {
        s.k(&[
            "get",
            "cm",
            "kid1",
            "kid2",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences}",
        ])
        .is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        exists(&s, "cm/kid1") && exists(&s, "cm/kid2"),
        "orphans stay"
    );
}

#[test]
fn a_cascade_interrupted_by_a_crash_finishes_after_restart() {
    require_kubectl!();
    let mut s = Server::start();
    owned_cm(&s, "fg", None, false, false);
    owned_cm(&s, "fg-mid", Some("fg"), true, false);
    owned_cm(&s, "fg-kid", Some("fg-mid"), true, true);
    owned_cm(&s, "bg", None, false, false);
    let bg_uid = uid(&s, "cm/bg");
    let kids: Vec<String> = (0..20)
        .map(|i| {
            let mut cm = configmap(&format!("bg-kid-{i}"), json!({"kid": "yes"}), json!({}));
            cm["metadata"]["ownerReferences"] =
                json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "bg", "uid": bg_uid}]);
            // A comment first, so that kubectl reads a YAML stream rather than one JSON object.
            format!("# owned by bg\n{cm}")
        })
        .collect();
    s.k_in(&["create", "-f", "-"], &kids.join("\n---\n"));
    s.k(&["delete", "cm", "fg", "--cascade=foreground", "--wait=false"]);
    s.k(&["delete", "cm", "bg", "--wait=false"]);
    s.crash_and_restart();
    // The foreground chain is still waiting for its held leaf; only a collector that rebuilt
    // its state after the crash can finish it.
    common::eventually("the cascade to reach the held leaf", || {
        !s.k(&[
            "get",
            "cm",
            "fg-kid",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .is_empty()
    });
    for owner in ["cm/fg", "cm/fg-mid"] {
        assert_eq!(
            s.k(&["get", owner, "-o", "jsonpath={.metadata.finalizers}"]),
            r#"["foregroundDeletion"]"#,
            "{owner}"
        );
    }
    release(&s, "fg-kid");
    common::eventually("both cascades to finish after the crash", || {
        names(&s.k(&["get", "cm", "-o", "name"])) == cms(&["kube-root-ca.crt"])
    });
}
