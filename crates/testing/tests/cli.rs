//! The `drover-fixtures` binary: list, build, build-all and push, with their errors.

use std::process::{Command, Output};

use drover_testing::{Registry, fixtures, require_peers, unpack};

const BIN: &str = env!("CARGO_BIN_EXE_drover-fixtures");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn list_names_every_fixture_with_its_registry_path() {
    let out = run(&["list"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    for f in fixtures::all() {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(f.reference))
            .unwrap_or_else(|| panic!("{} not listed:\n{stdout}", f.reference));
        assert!(line.contains(f.repository), "{line}");
    }
}

#[test]
fn build_prints_the_digest_in_index_json_and_two_builds_agree() {
    if require_peers("build_prints_the_digest", &["busybox"], false).is_err() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for n in ["a", "b"] {
        let dir = tmp.path().join(n);
        let out = run(&[
            "build",
            "docker.io/library/busybox",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let stdout = text(&out.stdout);
        let fields: Vec<_> = stdout.split_whitespace().collect();
        assert_eq!(fields[0], "busybox:latest", "{stdout}");
        let top = unpack::resolve_tag(&dir, "latest").unwrap();
        assert_eq!(fields[1], top.digest);
        digests.push(top.digest);
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn build_of_an_unknown_image_fails_and_lists_the_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&["build", "nginx:1.25", "--out", tmp.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("\"nginx:1.25\"") && stderr.contains("nginx:1.27-alpine"),
        "{stderr}"
    );
}

#[test]
fn push_checks_its_registry_argument_and_its_layouts() {
    let out = run(&["push", "--registry", "127.0.0.1:5000/library", "busybox"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("host:port"),
        "{}",
        text(&out.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&[
        "push",
        "--registry",
        "127.0.0.1:5000",
        "--from",
        tmp.path().to_str().unwrap(),
        "busybox",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("run build-all"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn build_all_then_push_from_the_layouts_to_a_registry() {
    let mut peers = fixtures::host_programs();
    peers.extend(["docker-registry", "skopeo"]);
    if require_peers("build_all_then_push", &peers, false).is_err() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("images");
    let out = run(&["build-all", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).lines().count(), fixtures::all().len());

    let registry = Registry::start_on_host_loopback().unwrap();
    let out = run(&[
        "push",
        "--registry",
        registry.host_port(),
        "--from",
        out_dir.to_str().unwrap(),
        "nginx:1.27-alpine",
        "ghcr.io/myorg/web:v1.4.3",
    ]);
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("-> {}/myorg/web:v1.4.3", registry.host_port())),
        "{stdout}"
    );
    let inspect = Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/library/nginx:1.27-alpine",
            registry.host_port()
        ))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{inspect:?}");
    // Not pushed: busybox.
    let missing = Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/library/busybox:latest",
            registry.host_port()
        ))
        .output()
        .unwrap();
    assert!(!missing.status.success());
}
