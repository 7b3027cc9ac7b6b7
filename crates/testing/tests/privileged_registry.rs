//! The registry harness: a real `docker-registry` inside a test network namespace, fixtures
//! pushed with skopeo and inspected from inside the namespace, and cleanup on drop and on panic.
//! Needs root (network namespaces).

use std::path::PathBuf;
use std::process::Output;

use drover_testing::{NetNs, Registry, RegistryOptions, fixtures, require_peers};
use serde_json::Value;

const PEERS: &[&str] = &["ip", "docker-registry", "skopeo", "busybox"];

fn inspect(registry: &Registry, reference: &str, raw: bool) -> Output {
    inspect_with(
        registry,
        reference,
        raw,
        &registry.access().skopeo_src_args(),
    )
}

fn inspect_with(registry: &Registry, reference: &str, raw: bool, flags: &[String]) -> Output {
    let mut cmd = registry.command("skopeo");
    cmd.args(["--insecure-policy", "inspect"]).args(flags);
    if raw {
        cmd.arg("--raw");
    }
    cmd.arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo")
}

fn digest_of(raw_manifest: &[u8]) -> String {
    drover_testing::layer::sha256_digest(raw_manifest)
}

#[test]
fn every_fixture_pushed_to_the_netns_registry_is_inspected_from_inside_the_netns() {
    let mut peers = fixtures::host_programs();
    peers.extend_from_slice(PEERS);
    if require_peers("every_fixture_pushed_to_the_netns_registry", &peers, true).is_err() {
        return;
    }
    let registry = Registry::start().unwrap();
    assert_eq!(registry.host_port(), "127.0.0.1:5000");
    for f in fixtures::all() {
        let (name, _) = f.reference.rsplit_once(':').unwrap();
        let pushed = registry.push_fixture(name, f.tag).unwrap();
        assert_eq!(
            pushed.reference,
            format!("127.0.0.1:5000/{}:{}", f.repository, f.tag)
        );
        let out = inspect(&registry, &pushed.reference, true);
        assert!(out.status.success(), "{}: {out:?}", f.reference);
        // Digests are preserved: the registry serves the very bytes of the layout.
        assert_eq!(digest_of(&out.stdout), pushed.digest, "{}", f.reference);
        let out = inspect(&registry, &pushed.reference, false);
        assert!(out.status.success(), "{}: {out:?}", f.reference);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Os"], "linux", "{}", f.reference);
    }
    // Negative control: a tag that was never pushed is not found.
    let out = inspect(&registry, "127.0.0.1:5000/library/nginx:1.25", true);
    assert!(!out.status.success(), "an unpushed tag was found");
}

#[test]
fn the_registry_namespace_has_only_loopback_and_no_route_out() {
    if require_peers("the_registry_namespace_has_only_loopback", PEERS, true).is_err() {
        return;
    }
    let registry = Registry::start().unwrap();
    let ns = registry.netns().unwrap();
    assert!(ns.name().starts_with("drover-test-"), "{}", ns.name());
    assert_eq!(ns.links().unwrap(), ["lo"]);
    assert_eq!(ns.routes().unwrap(), Vec::<String>::new());
    // From inside the namespace nothing but loopback is reachable.
    let out = registry
        .command("timeout")
        .args(["5", "busybox", "wget", "-q", "-O", "-", "http://10.0.0.1/"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unreachable"), "{stderr}");
}

#[test]
fn the_host_cannot_see_the_registry_inside_the_namespace() {
    if require_peers("the_host_cannot_see_the_registry", PEERS, true).is_err() {
        return;
    }
    let registry = Registry::start().unwrap();
    let pushed = registry.push_fixture("busybox", "latest").unwrap();
    // The registry's pid is in the namespace, not the host's: its net namespace differs.
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let theirs = std::fs::read_link(format!("/proc/{}/ns/net", registry.pid())).unwrap();
    assert_ne!(ours, theirs);
    let exe = std::fs::read_link(format!("/proc/{}/exe", registry.pid())).unwrap();
    assert!(exe.ends_with("docker-registry"), "{exe:?}");
    // The same inspect from the host namespace cannot reach it (unless something else happens
    // to serve 127.0.0.1:5000 on the host, which then does not have this digest).
    let host = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
        ])
        .arg(format!("docker://{}", pushed.reference))
        .output()
        .unwrap();
    assert!(!host.status.success() || digest_of(&host.stdout) != pushed.digest);
}

struct Left {
    pid: u32,
    netns: String,
    storage: PathBuf,
}

fn assert_cleaned(left: &Left) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", left.pid));
    assert!(
        status.is_err() || status.unwrap().contains("State:\tZ"),
        "registry pid {} still runs",
        left.pid
    );
    assert!(
        !NetNs::exists(&left.netns),
        "netns {} left behind",
        left.netns
    );
    assert!(
        !PathBuf::from("/run/netns").join(&left.netns).exists(),
        "/run/netns/{} left behind",
        left.netns
    );
    assert!(
        !left.storage.exists(),
        "{} left behind",
        left.storage.display()
    );
}

fn snapshot(r: &Registry) -> Left {
    Left {
        pid: r.pid(),
        netns: r.netns().unwrap().name().to_string(),
        storage: r.storage_dir(),
    }
}

#[test]
fn dropping_the_registry_kills_it_and_removes_its_namespace_and_storage() {
    if require_peers("dropping_the_registry_kills_it", PEERS, true).is_err() {
        return;
    }
    let registry = Registry::start().unwrap();
    let left = snapshot(&registry);
    // Negative control: while it lives, the checks would fail.
    assert!(NetNs::exists(&left.netns));
    assert!(left.storage.exists());
    assert!(PathBuf::from(format!("/proc/{}", left.pid)).exists());
    drop(registry);
    assert_cleaned(&left);
}

#[test]
fn a_panicking_test_still_removes_the_registry_and_its_namespace() {
    if require_peers("a_panicking_test_still_removes_the_registry", PEERS, true).is_err() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let registry = Registry::start().unwrap();
        tx.send(snapshot(&registry)).unwrap();
        panic!("deliberate panic with a live registry");
    })
    .join();
    assert!(result.is_err());
    let left = rx.recv().unwrap();
    assert_cleaned(&left);
    let ours: Vec<_> = NetNs::list()
        .unwrap()
        .into_iter()
        .filter(|n| n == &left.netns)
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
}

#[test]
fn a_registry_on_host_loopback_serves_pushed_fixtures() {
    if require_peers(
        "a_registry_on_host_loopback",
        &["docker-registry", "skopeo"],
        false,
    )
    .is_err()
    {
        return;
    }
    let registry = Registry::start_on_host_loopback().unwrap();
    assert!(registry.netns().is_none());
    assert!(registry.host_port().starts_with("127.0.0.1:"));
    let pushed = registry
        .push_fixture("ghcr.io/myorg/web", "v1.4.2")
        .unwrap();
    let out = inspect(&registry, &pushed.reference, true);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(digest_of(&out.stdout), pushed.digest);
    let storage = registry.storage_dir();
    assert!(
        storage
            .join("docker/registry/v2/repositories/myorg/web")
            .is_dir()
    );
    drop(registry);
    assert!(!storage.exists());
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_registry_with_basic_auth_refuses_anonymous_and_wrong_credentials() {
    if require_peers("a_registry_with_basic_auth", PEERS, true).is_err() {
        return;
    }
    let registry = Registry::start_with(RegistryOptions {
        basic_auth: Some(("drover".into(), "s3cret".into())),
        tls: false,
        ..Default::default()
    })
    .unwrap();
    let pushed = registry.push_fixture("busybox", "latest").unwrap();
    let ok = inspect(&registry, &pushed.reference, true);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(digest_of(&ok.stdout), pushed.digest);
    // Negative controls: no credentials, wrong password.
    let anonymous = inspect_with(
        &registry,
        &pushed.reference,
        true,
        &["--tls-verify=false".into()],
    );
    assert!(!anonymous.status.success());
    assert!(
        stderr(&anonymous).contains("authentication required"),
        "{}",
        stderr(&anonymous)
    );
    let wrong = inspect_with(
        &registry,
        &pushed.reference,
        true,
        &["--tls-verify=false".into(), "--creds=drover:wrong".into()],
    );
    assert!(!wrong.status.success(), "a wrong password was accepted");
}

#[test]
fn a_tls_registry_is_trusted_through_its_ca_and_refused_without_it() {
    if require_peers("a_tls_registry", PEERS, true).is_err() {
        return;
    }
    let registry = Registry::start_with(RegistryOptions {
        basic_auth: None,
        tls: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(registry.scheme(), "https");
    let ca = std::fs::read_to_string(registry.ca_cert().unwrap()).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    let pushed = registry.push_fixture("nginx", "1.27-alpine").unwrap();
    let ok = inspect(&registry, &pushed.reference, true);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(digest_of(&ok.stdout), pushed.digest);
    // Negative control: verifying against the system roots fails.
    let untrusted = inspect_with(&registry, &pushed.reference, true, &[]);
    assert!(!untrusted.status.success());
    assert!(
        stderr(&untrusted).contains("certificate"),
        "{}",
        stderr(&untrusted)
    );
}

#[test]
fn a_host_loopback_registry_with_tls_and_basic_auth_serves_the_multiarch_index() {
    if require_peers(
        "a_host_loopback_registry_with_tls_and_auth",
        &["docker-registry", "skopeo"],
        false,
    )
    .is_err()
    {
        return;
    }
    let registry = Registry::start_on_host_loopback_with(RegistryOptions {
        basic_auth: Some(("u".into(), "p".into())),
        tls: true,
        ..Default::default()
    })
    .unwrap();
    let pushed = registry
        .push_fixture("drover-fixtures/multiarch", "v1")
        .unwrap();
    let raw = inspect(&registry, &pushed.reference, true);
    assert!(raw.status.success(), "{raw:?}");
    assert_eq!(digest_of(&raw.stdout), pushed.digest);
    let index: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    let anonymous = inspect_with(
        &registry,
        &pushed.reference,
        true,
        &[format!(
            "--cert-dir={}",
            registry.access().cert_dir.unwrap().display()
        )],
    );
    assert!(
        !anonymous.status.success(),
        "anonymous pull from an auth registry"
    );
}

#[test]
fn a_token_auth_registry_sends_clients_to_its_realm_and_accepts_the_bearer_token() {
    if require_peers("a_token_auth_registry", PEERS, true).is_err() {
        return;
    }
    let registry = Registry::start_with(RegistryOptions {
        token_auth: true,
        ..Default::default()
    })
    .unwrap();
    let realm = registry.token_realm().unwrap();
    assert_eq!(realm, "http://127.0.0.1:5001/auth/token");
    // The challenge names the realm and the service, as Docker Hub's does.
    let challenge = registry
        .command("sh")
        .args([
            "-c",
            "printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | timeout 5 busybox nc 127.0.0.1 5000",
        ])
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&challenge.stdout).into_owned();
    assert!(headers.contains("401"), "{headers}");
    assert!(
        headers.contains(&format!(
            "Bearer realm=\"{realm}\",service=\"drover-test-registry\""
        )),
        "{headers}"
    );
    // skopeo does the token dance (anonymously here) for push and inspect.
    let pushed = registry.push_fixture("redis", "7-alpine").unwrap();
    let ok = inspect(&registry, &pushed.reference, true);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(digest_of(&ok.stdout), pushed.digest);
    // Negative control: the token does not grant a repository outside its list.
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("busybox");
    fixtures::find("busybox")
        .unwrap()
        .write_layout(&layout)
        .unwrap();
    let denied = registry.push_layout(&layout, "latest", "someone-else/busybox", "latest");
    let err = denied.unwrap_err().to_string();
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );
}

#[test]
fn a_token_realm_with_credentials_refuses_anonymous_and_wrong_ones() {
    if require_peers("a_token_realm_with_credentials", PEERS, true).is_err() {
        return;
    }
    let registry = Registry::start_with(RegistryOptions {
        basic_auth: Some(("robot".into(), "t0ken".into())),
        token_auth: true,
        ..Default::default()
    })
    .unwrap();
    let pushed = registry
        .push_fixture("ghcr.io/myorg/web", "v1.4.3")
        .unwrap();
    let ok = inspect(&registry, &pushed.reference, true);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(digest_of(&ok.stdout), pushed.digest);
    let anonymous = inspect_with(
        &registry,
        &pushed.reference,
        true,
        &["--tls-verify=false".into()],
    );
    assert!(!anonymous.status.success(), "anonymous token was issued");
    let wrong = inspect_with(
        &registry,
        &pushed.reference,
        true,
        &["--tls-verify=false".into(), "--creds=robot:nope".into()],
    );
    assert!(!wrong.status.success(), "a wrong password got a token");
}

#[test]
fn a_registry_joins_a_namespace_the_test_owns_and_leaves_it_on_drop() {
    let mut peers = PEERS.to_vec();
    peers.extend_from_slice(fixtures::find("postgres:16-alpine").unwrap().host_files);
    if require_peers("a_registry_joins_a_namespace", &peers, true).is_err() {
        return;
    }
    // A test-made namespace with an interface address, as a node or bridge namespace would be.
    let ns = NetNs::create("join").unwrap();
    // On `lo`: this kernel has no dummy interfaces; the address is what matters.
    let st = std::process::Command::new("ip")
        .args(["-n", ns.name(), "addr", "add", "10.99.0.1/32", "dev", "lo"])
        .status()
        .unwrap();
    assert!(st.success());
    let registry = Registry::start_in_netns(
        ns.name(),
        "10.99.0.1:5000".parse().unwrap(),
        RegistryOptions {
            token_auth: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(registry.netns().is_none());
    assert_eq!(registry.netns_name(), Some(ns.name()));
    assert_eq!(
        registry.token_realm().unwrap(),
        "http://10.99.0.1:5001/auth/token"
    );
    let pushed = registry.push_fixture("postgres", "16-alpine").unwrap();
    assert_eq!(
        pushed.reference,
        "10.99.0.1:5000/library/postgres:16-alpine"
    );
    let out = inspect(&registry, &pushed.reference, true);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(digest_of(&out.stdout), pushed.digest);
    let pid = registry.pid();
    drop(registry);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
    assert!(status.is_err() || status.unwrap().contains("State:\tZ"));
    assert!(
        NetNs::exists(ns.name()),
        "the caller's namespace was deleted"
    );
}

#[test]
fn joining_a_namespace_that_does_not_exist_names_it() {
    if require_peers("joining_a_namespace_that_does_not_exist", PEERS, true).is_err() {
        return;
    }
    let err = Registry::start_in_netns(
        "drover-test-no-such-ns",
        "127.0.0.1:5000".parse().unwrap(),
        RegistryOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("drover-test-no-such-ns"), "{err}");
}
