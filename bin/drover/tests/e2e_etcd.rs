//! `drover server --datastore-endpoint etcd://…` against a real etcd 3.4 started by each test,
//! driven by real kubectl: the object lifecycle, two servers on one etcd, an etcd outage and a
//! server started before its etcd. Only the tests' own etcd is ever stopped (by its PID).
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Etcd, Server};

/// A server on `etcd` under a key prefix of its own.
fn server_on(etcd: &Etcd, extra: &[&str]) -> Server {
    let endpoint = etcd.endpoint();
    let mut args = vec![
        "--datastore-endpoint",
        endpoint.as_str(),
        "--datastore-prefix",
        "/drover-test",
    ];
    args.extend_from_slice(extra);
    Server::start_with(&args)
}

/// `GET path` with the admin credential, returning (status code, body), without kubectl's
/// retries (kubectl retries 503s).
fn curl(s: &Server, path: &str) -> (u16, String) {
    let (cert, key) = s.client_cert_files();
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "10", "-w", "\n%{http_code}"])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg(format!("https://127.0.0.1:{}{path}", s.port))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn eventually_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kubectl_create_get_list_watch_delete_on_etcd() {
    require_kubectl!();
    let Some(etcd) = Etcd::start() else { return };
    let s = server_on(&etcd, &[]);
    let watch = s.kubectl_child(&["get", "configmaps", "--watch-only", "-o", "name"]);
    // Let kubectl list and start its watch before the writes.
    std::thread::sleep(Duration::from_millis(1500));
    s.k(&["create", "configmap", "one", "--from-literal=k=v1"]);
    assert_eq!(s.k(&["get", "cm", "one", "-o", "jsonpath={.data.k}"]), "v1");
    s.k(&["patch", "cm", "one", "-p", r#"{"data":{"k":"v2"}}"#]);
    assert_eq!(s.k(&["get", "cm", "one", "-o", "jsonpath={.data.k}"]), "v2");
    s.k(&["create", "configmap", "two"]);
    let names = s.k(&["get", "cm", "-o", "name"]);
    assert!(
        names.contains("configmap/one") && names.contains("configmap/two"),
        "{names}"
    );
    s.k(&["delete", "cm", "one"]);
    assert!(s.k_err(&["get", "cm", "one"]).contains("NotFound"));
    // The watch saw the creates, the update and the delete.
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill").arg(watch.id().to_string()).status();
    let out = watch.wait_with_output().expect("watch output");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.matches("configmap/one").count() >= 3 && seen.contains("configmap/two"),
        "kubectl --watch-only saw: {seen}"
    );
    // The state survives a server restart (it lives in etcd).
    let mut s = s;
    s.restart();
    assert!(s.k(&["get", "cm", "-o", "name"]).contains("configmap/two"));
}

#[test]
fn two_servers_on_one_etcd_serve_one_cluster_with_one_kubeconfig() {
    require_kubectl!();
    let Some(etcd) = Etcd::start() else { return };
    let a = server_on(&etcd, &[]);
    let endpoint = etcd.endpoint();
    common::assert_second_server_joins(
        &a,
        &[
            "--datastore-endpoint",
            &endpoint,
            "--datastore-prefix",
            "/drover-test",
        ],
    );
}

#[test]
fn etcd_outage_answers_503_naming_the_endpoint_and_the_server_recovers() {
    require_kubectl!();
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    let mut s = server_on(&etcd, &[]);
    s.k(&["create", "configmap", "before"]);
    let endpoint = format!("127.0.0.1:{}", etcd.client_port);

    etcd.stop();
    eventually_for(
        "/readyz to report the etcd outage",
        Duration::from_secs(20),
        || {
            let (code, body) = curl(&s, "/readyz");
            code == 503 && body.contains("[-]etcd failed") && body.contains(&endpoint)
        },
    );
    let (code, body) = curl(&s, "/readyz/etcd");
    assert!(
        code == 503 && body.contains(&endpoint),
        "/readyz/etcd: {code} {body}"
    );
    let (code, body) = curl(&s, "/api/v1/namespaces/default/configmaps");
    assert_eq!(code, 503, "a list during the outage: {body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("a Status body");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        status["reason"] == "ServiceUnavailable" && message.contains(&endpoint),
        "the Status must name the etcd endpoint: {status}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        s.is_running(),
        "the server must keep running while etcd is down; log:\n{}",
        s.log()
    );

    etcd.launch();
    eventually_for("/readyz to recover", Duration::from_secs(30), || {
        curl(&s, "/readyz").0 == 200
    });
    s.k(&["create", "configmap", "after"]);
    let names = s.k(&["get", "cm", "-o", "name"]);
    assert!(
        names.contains("configmap/before") && names.contains("configmap/after"),
        "{names}"
    );
}

#[test]
fn server_started_before_etcd_waits_for_it_then_serves() {
    require_kubectl!();
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    etcd.stop();
    let endpoint = etcd.endpoint();
    let mut s = Server::start_unready(&["--datastore-endpoint", &endpoint]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        s.is_running(),
        "the server must wait for etcd, not exit; log:\n{}",
        s.log()
    );
    assert!(
        s.log().contains(&format!("127.0.0.1:{}", etcd.client_port)),
        "the log must say which etcd it waits for:\n{}",
        s.log()
    );
    etcd.launch();
    s.wait_until_ready();
    s.k(&["create", "configmap", "late"]);
}

#[test]
fn helm_install_upgrade_rollback_uninstall_on_etcd() {
    require_kubectl!();
    if !common::have_peer("helm 3.17", common::helm_binary().is_some()) {
        return;
    }
    let Some(etcd) = Etcd::start() else { return };
    let s = server_on(&etcd, &[]);
    let chart = common::fixture("chart-basic");
    let greeting = || {
        s.k(&[
            "get",
            "cm",
            "r1-settings",
            "-o",
            "jsonpath={.data.greeting}",
        ])
    };
    s.h(&["install", "r1", &chart, "--set", "greeting=hello"]);
    assert_eq!(greeting(), "hello");
    s.h(&["upgrade", "r1", &chart, "--set", "greeting=again"]);
    assert_eq!(greeting(), "again");
    s.h(&["rollback", "r1", "1"]);
    assert_eq!(greeting(), "hello");
    let history = s.h(&["history", "r1", "-o", "json"]);
    assert_eq!(history.matches("\"revision\"").count(), 3, "{history}");
    s.h(&["uninstall", "r1"]);
    assert!(s.k_err(&["get", "cm", "r1-settings"]).contains("NotFound"));
}
