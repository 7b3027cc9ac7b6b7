//! helm 3.17 against the API server: release storage in Secrets (protobuf), three-way
//! upgrades, rollback, `--atomic`, and charts with CRDs. The charts live in `tests/fixtures/`
//! and are made of objects that need no running pods.
#[macro_use]
mod common;

use common::Server;
use serde_json::Value;

macro_rules! require_helm {
    () => {
        require_kubectl!();
        if !common::have_peer("helm 3.17", common::helm_binary().is_some()) {
            return;
        }
    };
}

fn chart() -> String {
    common::fixture("chart-basic")
}

/// `helm history` as (revision, status, description) rows.
fn history(s: &Server, release: &str) -> Vec<(u64, String, String)> {
    let out = s.h(&["history", release, "-o", "json"]);
    let rows: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("helm history JSON ({e}): {out}"));
    rows.as_array()
        .expect("history rows")
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().expect("revision"),
                r["status"].as_str().unwrap_or("").to_owned(),
                r["description"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn statuses(s: &Server, release: &str) -> Vec<String> {
    history(s, release)
        .into_iter()
        .map(|(_, st, _)| st)
        .collect()
}

/// The Secrets helm keeps its release records in.
fn release_secrets(s: &Server, release: &str) -> String {
    s.k(&["get", "secrets", "-l", &format!("owner=helm,name={release}"), "-o", r#"jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.status} {.type}{"\n"}{end}"#])
}

/// `<greeting> <revision>` from a release's settings ConfigMap.
fn settings(s: &Server, release: &str) -> String {
    s.k(&[
        "get",
        "cm",
        &format!("{release}-settings"),
        "-o",
        "jsonpath={.data.greeting} {.data.revision}",
    ])
}

#[test]
fn helm_installs_upgrades_lists_rolls_back_and_uninstalls_a_release() {
    require_helm!();
    let s = Server::start();
    let install = s.h(&["install", "r1", &chart()]);
    assert!(
        install.contains("STATUS: deployed") && install.contains("Release r1 says hello."),
        "{install}"
    );
    assert_eq!(settings(&s, "r1"), "hello 1");
    // (That stringData reaches `data` is checked in e2e_kubectl: write::secret_string_data_…)
    assert_eq!(
        s.k(&["get", "secret", "r1-secret", "-o", "jsonpath={.type}"]),
        "Opaque"
    );
    assert_eq!(
        s.k(&["get", "sa", "r1-sa", "-o", "name"]).trim(),
        "serviceaccount/r1-sa"
    );
    assert_eq!(
        s.k(&[
            "get",
            "svc",
            "r1-svc",
            "-o",
            "jsonpath={.spec.ports[*].port}"
        ]),
        "80"
    );
    assert_eq!(
        release_secrets(&s, "r1"),
        "sh.helm.release.v1.r1.v1 deployed helm.sh/release.v1\n"
    );
    let managers = s.k(&[
        "get",
        "cm",
        "r1-settings",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
        "--show-managed-fields",
    ]);
    assert_eq!(managers, "helm");

    let up = s.h(&[
        "upgrade",
        "r1",
        &chart(),
        "--set",
        "greeting=hi",
        "--set",
        "extraPort=90",
    ]);
    assert!(
        up.contains("has been upgraded") && up.contains("Release r1 says hi."),
        "{up}"
    );
    assert_eq!(settings(&s, "r1"), "hi 2");
    assert_eq!(
        s.k(&[
            "get",
            "svc",
            "r1-svc",
            "-o",
            "jsonpath={.spec.ports[*].port}"
        ]),
        "80 90"
    );

    let list = s.h(&["list"]);
    let row: Vec<&str> = list
        .lines()
        .nth(1)
        .expect("a release row")
        .split('\t')
        .map(str::trim)
        .collect();
    assert_eq!(
        (row[0], row[1], row[2], row[4], row[5]),
        ("r1", "default", "2", "deployed", "settings-0.1.0"),
        "{list}"
    );
    let listed: Value = serde_json::from_str(&s.h(&["list", "-o", "json"])).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(statuses(&s, "r1"), ["superseded", "deployed"]);

    let back = s.h(&["rollback", "r1", "1"]);
    assert!(back.contains("Rollback was a success"), "{back}");
    assert_eq!(
        s.k(&[
            "get",
            "cm",
            "r1-settings",
            "-o",
            "jsonpath={.data.greeting}"
        ]),
        "hello"
    );
    assert_eq!(
        s.k(&[
            "get",
            "svc",
            "r1-svc",
            "-o",
            "jsonpath={.spec.ports[*].port}"
        ]),
        "80",
        "the extra port is removed again"
    );
    let h = history(&s, "r1");
    assert_eq!(
        h.last().map(|(r, st, d)| (*r, st.as_str(), d.as_str())),
        Some((3, "deployed", "Rollback to 1")),
        "{h:?}"
    );

    let gone = s.h(&["uninstall", "r1"]);
    assert!(gone.contains("release \"r1\" uninstalled"), "{gone}");
    common::eventually("the release's objects to be deleted", || {
        s.k(&[
            "get",
            "cm,svc,sa,secret",
            "-l",
            "app.kubernetes.io/instance=r1",
            "-o",
            "name",
        ])
        .is_empty()
    });
    assert_eq!(
        release_secrets(&s, "r1"),
        "",
        "the release records are deleted"
    );
    assert_eq!(s.h(&["list", "-q"]), "");
    assert!(!s.helm(&["status", "r1"]).status.success());
}

#[test]
fn helm_upgrade_atomic_commits_a_good_upgrade_and_rolls_back_a_failed_one() {
    require_helm!();
    let s = Server::start();
    s.h(&["install", "r2", &chart()]);
    s.h(&[
        "upgrade",
        "r2",
        &chart(),
        "--atomic",
        "--timeout",
        "60s",
        "--set",
        "greeting=good",
    ]);
    assert_eq!(
        s.k(&[
            "get",
            "cm",
            "r2-settings",
            "-o",
            "jsonpath={.data.greeting}"
        ]),
        "good"
    );
    assert_eq!(statuses(&s, "r2"), ["superseded", "deployed"]);

    // `broken=true` adds an object the server must refuse (an invalid name).
    let out = s.helm(&[
        "upgrade",
        "r2",
        &chart(),
        "--atomic",
        "--timeout",
        "60s",
        "--set",
        "greeting=bad",
        "--set",
        "broken=true",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the upgrade must fail");
    assert!(
        err.contains("has been rolled back due to atomic being set") && err.contains("is invalid"),
        "{err}"
    );
    assert_eq!(
        s.k(&[
            "get",
            "cm",
            "r2-settings",
            "-o",
            "jsonpath={.data.greeting}"
        ]),
        "good",
        "rolled back"
    );
    let h = history(&s, "r2");
    let tail: Vec<(&str, &str)> = h
        .iter()
        .skip(2)
        .map(|(_, st, d)| (st.as_str(), d.as_str()))
        .collect();
    assert_eq!(tail.len(), 2, "{h:?}");
    assert_eq!(tail[0].0, "failed");
    assert!(tail[0].1.contains("r2-Not_A_Valid_Name"), "{h:?}");
    assert_eq!(tail[1], ("deployed", "Rollback to 2"));
    assert_eq!(
        s.k(&["get", "cm", "-o", "name"])
            .lines()
            .filter(|l| l.contains("Not_A_Valid"))
            .count(),
        0
    );
}

#[test]
fn helm_status_and_get_manifest_show_the_deployed_release() {
    require_helm!();
    let s = Server::start();
    s.h(&["install", "r3", &chart(), "--set", "greeting=status"]);
    let status = s.h(&["status", "r3"]);
    for want in [
        "NAME: r3",
        "NAMESPACE: default",
        "STATUS: deployed",
        "REVISION: 1",
        "Release r3 says status.",
    ] {
        assert!(status.contains(want), "{want:?} missing:\n{status}");
    }
    let st: Value = serde_json::from_str(&s.h(&["status", "r3", "-o", "json"])).expect("json");
    assert_eq!(st["info"]["status"], "deployed");
    assert_eq!(st["config"]["greeting"], "status");
    let manifest = s.h(&["get", "manifest", "r3"]);
    for want in [
        "# Source: settings/templates/configmap.yaml",
        "name: r3-settings",
        "greeting: \"status\"",
        "kind: ServiceAccount",
        "kind: Service\n",
        "kind: Secret",
    ] {
        assert!(manifest.contains(want), "{want:?} missing:\n{manifest}");
    }
    assert_eq!(
        manifest.matches("\n---\n").count() + usize::from(manifest.starts_with("---\n")),
        4,
        "four objects:\n{manifest}"
    );
    // Every object in the manifest is live.
    let live = s.k_in(&["get", "-f", "-", "-o", "name"], &manifest);
    let mut live: Vec<&str> = live.lines().collect();
    live.sort_unstable();
    assert_eq!(
        live,
        [
            "configmap/r3-settings",
            "secret/r3-secret",
            "service/r3-svc",
            "serviceaccount/r3-sa"
        ]
    );
    let values = s.h(&["get", "values", "r3"]);
    assert!(values.contains("greeting: status"), "{values}");
}

#[test]
fn helm_installs_a_chart_with_crds_and_a_custom_resource() {
    require_helm!();
    let s = Server::start();
    let out = s.h(&["install", "g1", &common::fixture("chart-crd")]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    let established = s.k(&[
        "get",
        "crd",
        "gadgets.example.com",
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#,
    ]);
    assert_eq!(established, "True");
    assert_eq!(
        s.k(&["get", "gadgets", "g1-g", "-o", "jsonpath={.spec.size}"]),
        "3"
    );
    assert_eq!(
        s.k(&["get", "gadget", "-o", "name"]).trim(),
        "gadget.example.com/g1-g"
    );
    // A second release of the same chart reuses the CRD (helm skips existing CRDs).
    s.h(&["install", "g2", &common::fixture("chart-crd")]);
    assert_eq!(
        s.k(&["get", "gadgets", "-o", "name"]),
        "gadget.example.com/g1-g\ngadget.example.com/g2-g\n"
    );
    s.h(&["uninstall", "g1"]);
    common::eventually("the custom resource of g1 to be deleted", || {
        s.k(&["get", "gadgets", "-o", "name"]) == "gadget.example.com/g2-g\n"
    });
    // helm never deletes CRDs.
    assert_eq!(
        s.k(&["get", "crd", "-o", "name"]).trim(),
        "customresourcedefinition.apiextensions.k8s.io/gadgets.example.com"
    );
}
