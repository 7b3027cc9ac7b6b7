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

#[test]
fn missing_required_fields_are_422_with_upstream_paths() {
    require_kubectl!();
    let s = Server::start();
    let cases = [
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec:\n  ports:\n  - name: x\n",
            "The Service \"bad\" is invalid: spec.ports[0].port: Required value",
        ),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n",
            "rules[0].verbs: Required value",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec:\n  rules:\n  - http:\n      paths:\n      - path: /\n        backend: {service: {name: s, port: {number: 80}}}\n",
            "spec.rules[0].http.paths[0].pathType: Required value",
        ),
    ];
    for (manifest, want) in cases {
        let out = s.kubectl_env("1.32", &["create", "-f", "-"], &[], Some(manifest));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "want {want:?}, got:\n{err}"
        );
    }
}

#[test]
fn two_servers_on_one_datastore_serve_one_cluster_with_one_kubeconfig() {
    require_kubectl!();
    let a = Server::start();
    let db = format!("sqlite://{}", a.data_dir().join("db/state.db").display());
    common::assert_second_server_joins(&a, &["--datastore-endpoint", &db]);
}

#[test]
fn service_account_tokens_are_authorized_by_rbac() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "serviceaccount", "reader"]);
    s.k(&[
        "create",
        "role",
        "cm-reader",
        "--verb=get,list",
        "--resource=configmaps",
    ]);
    s.k(&[
        "create",
        "rolebinding",
        "reader",
        "--role=cm-reader",
        "--serviceaccount=default:reader",
    ]);
    s.k(&["create", "configmap", "visible", "--from-literal=a=b"]);
    let token = s.k(&["create", "token", "reader"]).trim().to_owned();
    let as_reader = |method: &str, path: &str| -> u16 {
        let out = std::process::Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                method,
                "-H",
            ])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("https://127.0.0.1:{}{path}", s.port))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
    };
    assert_eq!(
        as_reader("GET", "/api/v1/namespaces/default/configmaps/visible"),
        200
    );
    assert_eq!(
        as_reader("GET", "/api/v1/namespaces/default/configmaps"),
        200
    );
    assert_eq!(
        as_reader("DELETE", "/api/v1/namespaces/default/configmaps/visible"),
        403,
        "the role grants no delete"
    );
    assert_eq!(
        as_reader("GET", "/api/v1/namespaces/default/secrets"),
        403,
        "the role grants no secrets"
    );
    assert_eq!(
        as_reader("GET", "/api/v1/namespaces/kube-system/configmaps"),
        403,
        "the binding is namespaced"
    );
    assert_eq!(
        as_reader("GET", "/apis"),
        200,
        "discovery is open to every authenticated user"
    );
    // A SubjectAccessReview answers with the same authorizer.
    let sar = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"system:serviceaccount:default:reader","groups":["system:serviceaccounts"],"resourceAttributes":{"namespace":"default","verb":"list","resource":"configmaps"}}}"#.to_owned();
    let allowed = |verb: &str| {
        let review = sar.replace("\"list\"", &format!("{verb:?}"));
        let args = ["create", "-f", "-", "-o", "jsonpath={.status.allowed}"];
        let out = s.kubectl_env("1.32", &args, &[], Some(&review));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(allowed("list"), "true");
    assert_eq!(allowed("delete"), "false");
}
