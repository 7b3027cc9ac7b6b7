//! Every fixture builds into an OCI layout that skopeo accepts (skopeo checks every blob's
//! digest while copying), builds are byte-for-byte reproducible, and the special fixtures carry
//! what the image store's tests rely on.

use std::path::Path;
use std::process::Command;

use drover_testing::fixtures::{self, LAYERS_ABSENT, LAYERS_PRESENT};
use drover_testing::layout::blob_path;
use drover_testing::{require_peers, unpack};
use serde_json::Value;

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo")
}

fn built(reference: &str) -> (tempfile::TempDir, &'static fixtures::Fixture) {
    let tmp = tempfile::Builder::new()
        .prefix("drover-test-layout-")
        .tempdir()
        .unwrap();
    let f = fixtures::find(reference).unwrap();
    f.write_layout(&tmp.path().join("l")).unwrap();
    (tmp, f)
}

#[test]
fn every_fixture_layout_is_copied_by_skopeo_with_digests_verified() {
    let mut peers = fixtures::host_programs();
    peers.push("skopeo");
    if require_peers("every_fixture_layout_is_copied_by_skopeo", &peers, false).is_err() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("drover-test-layouts-")
        .tempdir()
        .unwrap();
    let built = fixtures::build_all(&tmp.path().join("src")).unwrap();
    assert_eq!(built.len(), fixtures::all().len());
    for (f, dir, written) in built {
        let src = format!("oci:{}:{}", dir.display(), f.tag);
        let inspect = skopeo(&["inspect", "--raw", &src]);
        assert!(inspect.status.success(), "{}: {inspect:?}", f.reference);
        let raw: Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(raw["schemaVersion"], 2, "{}", f.reference);
        // Copying reads and verifies every blob against its descriptor.
        let dest = tmp.path().join("copy").join(f.slug());
        std::fs::create_dir_all(&dest).unwrap();
        let copy = skopeo(&[
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
            &src,
            &format!("oci:{}:{}", dest.display(), f.tag),
        ]);
        assert!(copy.status.success(), "{}: {copy:?}", f.reference);
        let copied = unpack::resolve_tag(&dest, f.tag).unwrap();
        assert_eq!(copied.digest, written.top.digest, "{}", f.reference);
    }
}

#[test]
fn skopeo_rejects_a_layout_with_a_corrupted_layer_blob() {
    // Negative control for the test above: a flipped byte in a layer must be caught.
    if require_peers("skopeo_rejects_a_corrupted_layer", &["skopeo"], false).is_err() {
        return;
    }
    let (tmp, f) = built("nginx:1.27-alpine");
    let layout = tmp.path().join("l");
    let manifest =
        unpack::manifest_for(&layout, f.tag, &drover_testing::layout::Platform::host()).unwrap();
    let layer = manifest["layers"][1]["digest"].as_str().unwrap();
    let path = blob_path(&layout, layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let copy = skopeo(&[
        "copy",
        "--quiet",
        &format!("oci:{}:{}", layout.display(), f.tag),
        &format!("dir:{}", tmp.path().join("out").display()),
    ]);
    assert!(!copy.status.success(), "a corrupted blob was copied");
    let stderr = String::from_utf8_lossy(&copy.stderr);
    assert!(stderr.contains("Digest did not match"), "{stderr}");
}

fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn building_twice_gives_identical_layouts_and_versions_differ_only_above_the_base() {
    if require_peers("building_twice", &["busybox"], false).is_err() {
        return;
    }
    let (a, _) = built("ghcr.io/myorg/web:v1.4.2");
    let (b, _) = built("ghcr.io/myorg/web:v1.4.2");
    let (files_a, files_b) = (
        all_files(&a.path().join("l")),
        all_files(&b.path().join("l")),
    );
    assert!(
        files_a.len() >= 6,
        "{:?}",
        files_a.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert_eq!(files_a, files_b, "two builds of the same fixture differ");

    // Negative control: another version differs, but shares the busybox base layer.
    let (c, _) = built("ghcr.io/myorg/web:v1.4.3");
    let host = drover_testing::layout::Platform::host();
    let m_a = unpack::manifest_for(&a.path().join("l"), "v1.4.2", &host).unwrap();
    let m_c = unpack::manifest_for(&c.path().join("l"), "v1.4.3", &host).unwrap();
    assert_ne!(all_files(&c.path().join("l")), files_a);
    assert_eq!(
        m_a["layers"][0], m_c["layers"][0],
        "base layer should be shared"
    );
    assert_ne!(m_a["layers"][1], m_c["layers"][1]);
}

fn config_of(reference: &str) -> Value {
    let (tmp, f) = built(reference);
    let layout = tmp.path().join("l");
    let m =
        unpack::manifest_for(&layout, f.tag, &drover_testing::layout::Platform::host()).unwrap();
    unpack::read_json(&blob_path(&layout, m["config"]["digest"].as_str().unwrap())).unwrap()
}

#[test]
fn image_configs_carry_what_the_seed_relies_on() {
    if require_peers("image_configs_carry", &fixtures::host_programs(), false).is_err() {
        return;
    }
    let nginx = config_of("nginx:1.27-alpine");
    assert_eq!(nginx["config"]["StopSignal"], "SIGQUIT");
    assert_eq!(
        nginx["config"]["ExposedPorts"]["80/tcp"],
        serde_json::json!({})
    );
    assert_eq!(nginx["config"]["Entrypoint"][0], "/docker-entrypoint.sh");
    assert_eq!(
        nginx["config"]["Cmd"],
        serde_json::json!(["nginx", "-g", "daemon off;"])
    );
    assert_eq!(nginx["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);

    let cfg = config_of("drover-fixtures/config:v1");
    let c = &cfg["config"];
    assert_eq!(c["User"], "www-data");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert!(c["Cmd"][0].as_str().unwrap().contains("$GREETING"));
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .contains(&"GREETING=hello".into())
    );
    assert_eq!(c["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 3);

    let pg = config_of("postgres:16-alpine");
    assert_eq!(
        pg["config"]["ExposedPorts"]["5432/tcp"],
        serde_json::json!({})
    );
    let redis = config_of("redis:7-alpine");
    assert_eq!(redis["config"]["Cmd"], serde_json::json!(["redis-server"]));
}

#[test]
fn the_multiarch_fixture_is_an_index_with_amd64_and_arm64() {
    let (tmp, f) = built("drover-fixtures/multiarch:v1");
    let layout = tmp.path().join("l");
    let top = unpack::resolve_tag(&layout, f.tag).unwrap();
    assert_eq!(top.media_type, drover_testing::layout::INDEX_MEDIA_TYPE);
    let index = unpack::read_json(&blob_path(&layout, &top.digest)).unwrap();
    let archs: Vec<_> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    let arm = drover_testing::layout::Platform::linux("arm64");
    let m = unpack::manifest_for(&layout, f.tag, &arm).unwrap();
    let cfg =
        unpack::read_json(&blob_path(&layout, m["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["variant"], "v8");
    let err = unpack::manifest_for(
        &layout,
        f.tag,
        &drover_testing::layout::Platform::linux("s390x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("s390x"), "{err}");
}

/// What is wrong with an unpacked `drover-fixtures/layers:v1` root.
fn layer_problems(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, content) in LAYERS_PRESENT {
        match std::fs::read_to_string(root.join(&path[1..])) {
            Ok(c) if c == *content => {}
            Ok(c) => problems.push(format!("{path} has {c:?}, want {content:?}")),
            Err(e) => problems.push(format!("{path}: {e}")),
        }
    }
    for path in LAYERS_ABSENT {
        if root.join(&path[1..]).exists() {
            problems.push(format!("{path} exists but a whiteout removed it"));
        }
    }
    if root.join("data/cache/sub").exists() {
        problems.push("/data/cache/sub survived the opaque directory".into());
    }
    problems
}

#[test]
fn unpacking_the_layers_fixture_applies_whiteouts_and_the_opaque_directory() {
    let (tmp, f) = built("drover-fixtures/layers:v1");
    let layout = tmp.path().join("l");
    let root = tmp.path().join("root");
    unpack::unpack(&layout, f.tag, &root).unwrap();
    assert_eq!(layer_problems(&root), Vec::<String>::new());
    assert!(root.join("bin/busybox").is_file());

    // Negative control: plain untar of every layer (no whiteout handling) must be flagged.
    let naive = tmp.path().join("naive");
    std::fs::create_dir(&naive).unwrap();
    let m =
        unpack::manifest_for(&layout, f.tag, &drover_testing::layout::Platform::host()).unwrap();
    for l in m["layers"].as_array().unwrap() {
        let blob = std::fs::read(blob_path(&layout, l["digest"].as_str().unwrap())).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
        a.unpack(&naive).unwrap();
    }
    let problems = layer_problems(&naive);
    assert!(
        problems.iter().any(|p| p.contains("remove-me")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("opaque") || p.contains("old-a")),
        "{problems:?}"
    );
}

#[test]
fn the_base_layer_has_busybox_links_and_the_users_runtime_tests_need() {
    let (tmp, f) = built("busybox");
    let root = tmp.path().join("root");
    unpack::unpack(&tmp.path().join("l"), f.tag, &root).unwrap();
    for applet in ["sh", "httpd", "wget", "nc", "sleep", "id", "su"] {
        let link = std::fs::read_link(root.join("bin").join(applet)).unwrap();
        assert_eq!(link, Path::new("busybox"), "/bin/{applet}");
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(passwd.contains("\nwww-data:x:33:33:") && passwd.contains("\nnobody:x:65534:"));
    let www_groups: Vec<_> = group
        .lines()
        .filter(|l| {
            l.rsplit(':')
                .next()
                .unwrap()
                .split(',')
                .any(|m| m == "www-data")
        })
        .map(|l| l.split(':').nth(2).unwrap())
        .collect();
    assert_eq!(www_groups, ["4", "100"]);
    use std::os::unix::fs::PermissionsExt;
    let tmp_mode = std::fs::metadata(root.join("tmp"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(tmp_mode & 0o7777, 0o1777);
}

#[test]
fn writing_into_a_non_empty_directory_is_refused_with_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("junk"), "x").unwrap();
    let err = fixtures::find("busybox")
        .unwrap()
        .write_layout(tmp.path())
        .unwrap_err();
    assert!(
        err.to_string().contains(&tmp.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn the_distroless_stand_in_has_no_shell_but_users_certificates_and_tmp() {
    let f = fixtures::find("gcr.io/distroless/static-debian12").unwrap();
    if require_peers("the_distroless_stand_in", f.host_files, false).is_err() {
        return;
    }
    let (tmp, f) = built(f.reference);
    let root = tmp.path().join("root");
    unpack::unpack(&tmp.path().join("l"), f.tag, &root).unwrap();
    assert!(!root.join("bin/sh").exists() && !root.join("bin").exists());
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("\nnonroot:x:65532:65532:"), "{passwd}");
    let bundle = std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(bundle.contains("BEGIN CERTIFICATE"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(root.join("tmp"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o1777);
    let config = unpack::config_for(
        &tmp.path().join("l"),
        f.tag,
        &drover_testing::layout::Platform::host(),
    )
    .unwrap();
    assert!(config["config"]["Entrypoint"].is_null() && config["config"]["Cmd"].is_null());
}
