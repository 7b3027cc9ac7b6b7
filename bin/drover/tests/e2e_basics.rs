//! The server's own surface, driven by real kubectl: health, version, auth, restart.
mod common;

use common::Server;

#[test]
fn health_and_version_answer_without_credentials_everything_else_401() {
    let s = Server::start();
    let base = format!("https://127.0.0.1:{}", s.port);
    for (path, want) in [
        ("/livez", 200),
        ("/readyz", 200),
        ("/healthz", 200),
        ("/version", 200),
        ("/readyz/etcd", 200),
        ("/api", 401),
        ("/metrics", 401),
        ("/apis/apps/v1/deployments", 401),
    ] {
        let out = std::process::Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{base}{path}"),
            ])
            .output()
            .expect("curl");
        let code = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(code, want.to_string(), "GET {path} without credentials");
    }
}

#[test]
fn kubectl_sees_a_cluster_and_the_admin_identity() {
    require_kubectl!();
    let s = Server::start();
    let v = s.k(&["version", "-o", "json"]);
    assert!(v.contains("v1.33.0+drover"), "{v}");
    let who = s.k(&["auth", "whoami"]);
    assert!(
        who.contains("system:admin") && who.contains("system:masters"),
        "{who}"
    );
    assert_eq!(s.k(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    let ns = s.k(&["get", "ns", "-o", "name"]);
    for want in [
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
        "namespace/kube-node-lease",
    ] {
        assert!(ns.contains(want), "{ns}");
    }
    let info = s.k(&["cluster-info"]);
    assert!(
        info.contains("Kubernetes control plane is running at"),
        "{info}"
    );
    let svc = s.k(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert_eq!(svc, "10.43.0.1");
    let token = s.k(&["create", "token", "default"]);
    assert!(token.starts_with("eyJ"), "{token}");
}

#[test]
fn objects_and_identity_survive_a_restart() {
    require_kubectl!();
    let mut s = Server::start();
    s.k(&["create", "configmap", "keep", "--from-literal=a=b"]);
    let kubeconfig = std::fs::read_to_string(s.kubeconfig()).expect("kubeconfig");
    s.restart();
    assert_eq!(
        std::fs::read_to_string(s.kubeconfig()).expect("kubeconfig"),
        kubeconfig,
        "identity changed across restart"
    );
    assert_eq!(s.k(&["get", "cm", "keep", "-o", "jsonpath={.data.a}"]), "b");
    s.crash_and_restart();
    assert_eq!(s.k(&["get", "cm", "keep", "-o", "jsonpath={.data.a}"]), "b");
}

#[test]
fn chunked_lists_page_through_more_objects_than_one_store_page() {
    require_kubectl!();
    let s = Server::start();
    let docs: Vec<String> = (0..1001)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05}\n  labels: {{parity: \"{}\"}}\n", i % 2))
        .collect();
    let out = s.kubectl_env(
        "1.32",
        &["create", "-f", "-", "-o", "name"],
        &[],
        Some(&docs.join("---\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for chunk in ["500", "7"] {
        let names = s.k(&["get", "cm", "--chunk-size", chunk, "-o", "name"]);
        let n = names
            .lines()
            .filter(|l| l.starts_with("configmap/cm-"))
            .count();
        assert_eq!(n, 1001, "--chunk-size {chunk} listed {n} of 1001");
        let mut sorted: Vec<&str> = names.lines().collect();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            names.lines().count(),
            "--chunk-size {chunk} listed duplicates"
        );
    }
    let odd = s.k(&[
        "get",
        "cm",
        "-l",
        "parity=1",
        "--chunk-size",
        "100",
        "-o",
        "name",
    ]);
    assert_eq!(odd.lines().count(), 500);
}
