//! Store, import/export, GC and the CLI verbs over local archives. Needs root (unpacking sets
//! owners and device nodes); skopeo tests skip without skopeo.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Tar, skip_unless_root, skip_without};
use drover_image::archive::{Format, export, import};
use drover_image::{Platform, Store};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("drover-test-store-")
        .tempdir()
        .unwrap()
}

fn base_layer() -> Vec<u8> {
    let mut t = Tar::default();
    t.dir("bin/", 0o755)
        .file("bin/tool", 0o755, 0, 0, b"#!/bin/sh\necho base\n", &[])
        .file("etc/os", 0o644, 0, 0, b"base", &[]);
    t.finish()
}

fn app_layer(tag: &str) -> Vec<u8> {
    let mut t = Tar::default();
    t.file("app/version", 0o644, 0, 0, tag.as_bytes(), &[]);
    t.finish()
}

fn snapshots(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("snapshots"))
        .unwrap()
        .count()
}

fn blobs(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn images_share_base_snapshots_and_gc_removes_only_unreferenced_content() {
    if skip_unless_root("gc") {
        return;
    }
    let w = tempdir();
    common::write_layout(
        &w.path().join("a"),
        "example.com/app:v1",
        &[base_layer(), app_layer("v1")],
        "gzip",
        &["/bin/tool"],
    );
    common::write_layout(
        &w.path().join("b"),
        "example.com/app:v2",
        &[base_layer(), app_layer("v2")],
        "gzip",
        &["/bin/tool"],
    );
    let store = Store::open(w.path().join("store")).unwrap();
    import(&store, &w.path().join("a"), None, &Platform::host()).unwrap();
    import(&store, &w.path().join("b"), None, &Platform::host()).unwrap();
    assert_eq!(
        snapshots(&store),
        3,
        "the base layer is unpacked once for both images"
    );
    let v1 = store.resolve("example.com/app:v1").unwrap();
    let v2 = store.resolve("example.com/app:v2").unwrap();
    let (p1, p2) = (
        store.mount_plan(&v1).unwrap(),
        store.mount_plan(&v2).unwrap(),
    );
    assert_eq!(p1.lowerdirs[1], p2.lowerdirs[1], "shared base snapshot");
    assert_ne!(p1.lowerdirs[0], p2.lowerdirs[0]);
    let cfg = store.config(&v1).unwrap().config.unwrap();
    assert_eq!(cfg.cmd.as_deref(), Some(&["/bin/tool".to_owned()][..]));
    assert_eq!(cfg.stop_signal.as_deref(), Some("SIGQUIT"));

    // Nothing is unreferenced yet.
    let g = store.gc().unwrap();
    assert_eq!((g.blobs, g.snapshots), (0, 0));
    // A lease keeps v1 alive after its name goes.
    store.add_lease("drover-test-ctr", &v1).unwrap();
    assert!(store.remove_name("example.com/app:v1").unwrap());
    assert_eq!(store.gc().unwrap().blobs, 0, "leased content survives");
    store.remove_lease("drover-test-ctr").unwrap();
    let g = store.gc().unwrap();
    // v1's manifest, config and app layer go; the base layer stays for v2.
    assert_eq!((g.blobs, g.snapshots), (3, 1), "{g:?}");
    assert_eq!(snapshots(&store), 2);
    assert!(
        store
            .mount_plan(&v2)
            .unwrap()
            .lowerdirs
            .iter()
            .all(|p| p.is_dir())
    );
    assert!(store.check().unwrap().is_empty());
    assert!(store.remove_name("example.com/app:v2").unwrap());
    store.gc().unwrap();
    assert_eq!((blobs(&store), snapshots(&store)), (0, 0));
}

#[test]
fn check_flags_a_corrupted_blob_a_missing_blob_and_a_missing_snapshot() {
    if skip_unless_root("check negative control") {
        return;
    }
    let w = tempdir();
    common::write_layout(
        &w.path().join("a"),
        "example.com/app:v1",
        &[base_layer(), app_layer("v1")],
        "none",
        &["/bin/tool"],
    );
    let store = Store::open(w.path().join("store")).unwrap();
    import(&store, &w.path().join("a"), None, &Platform::host()).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let img = store.resolve("example.com/app:v1").unwrap();
    let m = store.manifest(&img.manifest).unwrap();
    // Broken variant 1: a blob whose bytes no longer match its name.
    let p = store.blob_path(&m.layers[1].digest);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[600] ^= 1;
    std::fs::write(&p, &bytes).unwrap();
    let problems = store.check().unwrap();
    assert!(
        problems.iter().any(|s| s.contains("hashes to")),
        "{problems:?}"
    );
    // Broken variant 2: a listed image missing a blob and a snapshot.
    std::fs::remove_file(&p).unwrap();
    let chains = store.chain_ids(&img).unwrap();
    std::fs::remove_dir_all(store.snapshot_path(&chains[0])).unwrap();
    let problems = store.check().unwrap();
    assert!(
        problems
            .iter()
            .any(|s| s.contains("missing") && s.contains("blob")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|s| s.contains("snapshot")),
        "{problems:?}"
    );
}

fn tar_dir(dir: &Path, out: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
}

fn assert_nothing_partial(store: &Store) {
    assert!(store.images().unwrap().is_empty(), "no image may be listed");
    assert_eq!(
        std::fs::read_dir(store.root().join("ingest"))
            .unwrap()
            .count(),
        0,
        "ingest must be empty"
    );
    assert!(store.check().unwrap().is_empty());
}

#[test]
fn corrupt_or_tampered_archives_are_refused_and_leave_nothing_behind() {
    if skip_unless_root("corrupt archives") {
        return;
    }
    let w = tempdir();
    let layout = w.path().join("a");
    common::write_layout(
        &layout,
        "example.com/app:v1",
        &[base_layer(), app_layer("v1")],
        "gzip",
        &["/bin/tool"],
    );
    let good = w.path().join("good.tar");
    tar_dir(&layout, &good);
    let store = Store::open(w.path().join("store")).unwrap();

    // Truncated tarball.
    let bytes = std::fs::read(&good).unwrap();
    let cut = w.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = import(&store, &cut, None, &Platform::host())
        .unwrap_err()
        .to_string();
    assert!(e.contains("cut.tar"), "names the file: {e}");
    assert_nothing_partial(&store);

    // Not a tar at all.
    let junk = w.path().join("junk.tar");
    std::fs::write(&junk, vec![0x5a; 3000]).unwrap();
    assert!(import(&store, &junk, None, &Platform::host()).is_err());
    assert_nothing_partial(&store);

    // A layer whose bytes do not match its digest.
    let img_m: drover_image::oci::Index =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let md = &img_m.manifests[0].digest;
    let m: drover_image::oci::Manifest =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(md.hex())).unwrap())
            .unwrap();
    let lp = layout.join("blobs/sha256").join(m.layers[1].digest.hex());
    let mut lb = std::fs::read(&lp).unwrap();
    let last = lb.len() - 1;
    lb[last] ^= 0xff;
    std::fs::write(&lp, &lb).unwrap();
    let e = import(&store, &layout, None, &Platform::host())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("expected digest") && e.contains(m.layers[1].digest.as_str()),
        "{e}"
    );
    assert!(!store.has_blob(&m.layers[1].digest));
    assert!(store.images().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join("ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn oci_and_docker_archive_exports_import_back_with_the_same_identity() {
    if skip_unless_root("export round trip") {
        return;
    }
    let w = tempdir();
    common::write_layout(
        &w.path().join("a"),
        "example.com/app:v1",
        &[base_layer(), app_layer("v1")],
        "zstd",
        &["/bin/tool"],
    );
    let src = Store::open(w.path().join("src")).unwrap();
    import(&src, &w.path().join("a"), None, &Platform::host()).unwrap();
    let img = src.resolve("example.com/app:v1").unwrap();
    for format in [Format::Oci, Format::Docker] {
        let out = w.path().join(format!("{format:?}.tar"));
        export(
            &src,
            &["example.com/app:v1".into()],
            format,
            std::fs::File::create(&out).unwrap(),
        )
        .unwrap();
        let dst = Store::open(w.path().join(format!("dst-{format:?}"))).unwrap();
        let recs = import(&dst, &out, None, &Platform::host()).unwrap();
        assert_eq!(recs.len(), 1);
        let back = dst.resolve("example.com/app:v1").unwrap();
        assert_eq!(back.config, img.config, "{format:?}: same image ID");
        assert_eq!(dst.chain_ids(&back).unwrap(), src.chain_ids(&img).unwrap());
        if format == Format::Oci {
            assert_eq!(
                back.target.digest, img.target.digest,
                "OCI export keeps the manifest bytes"
            );
        }
        assert!(dst.check().unwrap().is_empty());
    }
}

#[test]
fn skopeo_reads_our_exports_and_its_layouts_import() {
    if skip_unless_root("skopeo interop") || skip_without("skopeo interop", "skopeo") {
        return;
    }
    let w = tempdir();
    let layout = w.path().join("a");
    common::write_layout(
        &layout,
        "example.com/app:v1",
        &[base_layer(), app_layer("v1")],
        "gzip",
        &["/bin/tool"],
    );
    // skopeo copy → OCI layout → drover image import.
    let copied = w.path().join("copied");
    let st = Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:example.com/app:v1", layout.display()))
        .arg(format!("oci:{}:v1", copied.display()))
        .status()
        .unwrap();
    assert!(st.success(), "skopeo copy");
    let store = Store::open(w.path().join("store")).unwrap();
    let e = import(&store, &copied, None, &Platform::host())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("give a full name"),
        "a tag-only layout needs a name: {e}"
    );
    import(
        &store,
        &copied,
        Some("example.com/copied:v1"),
        &Platform::host(),
    )
    .unwrap();
    let img = store.resolve("example.com/copied:v1").unwrap();
    assert_eq!(store.mount_plan(&img).unwrap().lowerdirs.len(), 2);
    // skopeo reads our docker-archive export and converts it back to a layout.
    let arch = w.path().join("docker.tar");
    export(
        &store,
        &["example.com/copied:v1".into()],
        Format::Docker,
        std::fs::File::create(&arch).unwrap(),
    )
    .unwrap();
    let back = w.path().join("back");
    let st = Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("docker-archive:{}", arch.display()))
        .arg(format!("oci:{}:example.com/back:v1", back.display()))
        .status()
        .unwrap();
    assert!(st.success(), "skopeo reads the docker-archive export");
    let recs = import(&store, &back, None, &Platform::host()).unwrap();
    // skopeo re-serializes the config when converting docker → OCI: compare the content.
    let a: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&recs[0].config).unwrap()).unwrap();
    let b: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&img.config).unwrap()).unwrap();
    assert_eq!(a, b, "same config through skopeo");
    assert_eq!(
        store.chain_ids(&recs[0]).unwrap(),
        store.chain_ids(&img).unwrap()
    );
    // And our OCI archive.
    let oci_tar = w.path().join("oci.tar");
    export(
        &store,
        &["example.com/copied:v1".into()],
        Format::Oci,
        std::fs::File::create(&oci_tar).unwrap(),
    )
    .unwrap();
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!(
            "oci-archive:{}:example.com/copied:v1",
            oci_tar.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cli(data: &Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_drover-image"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn cli_import_ls_tag_inspect_rm_prune_check() {
    if skip_unless_root("cli verbs") {
        return;
    }
    let w = tempdir();
    let layout = w.path().join("a");
    common::write_layout(
        &layout,
        "nginx:1.27-alpine",
        &[base_layer(), app_layer("v1")],
        "gzip",
        &["/bin/tool"],
    );
    let data = w.path().join("data");
    let (ok, out, err) = cli(&data, &["import", layout.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("docker.io/library/nginx:1.27-alpine"), "{out}");
    let (ok, out, _) = cli(
        &data,
        &["tag", "nginx:1.27-alpine", "127.0.0.1:5000/web:v1"],
    );
    assert!(ok);
    assert!(out.is_empty());
    let (_, out, _) = cli(&data, &["ls"]);
    assert!(
        out.contains("nginx:1.27-alpine") && out.contains("127.0.0.1:5000/web:v1"),
        "{out}"
    );
    let (ok, out, err) = cli(&data, &["inspect", "127.0.0.1:5000/web:v1"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["LowerDirs"].as_array().unwrap().len(), 2);
    assert_eq!(v[0]["Config"]["config"]["Cmd"][0], "/bin/tool");
    let id = v[0]["Id"].as_str().unwrap()[7..19].to_owned();
    let (ok, _, err) = cli(&data, &["inspect", "nope:1"]);
    assert!(!ok && err.contains("\"nope:1\" not found"), "{err}");
    let (ok, out, _) = cli(&data, &["rm", "nginx:1.27-alpine"]);
    assert!(
        ok && out.contains("Deleted 0 blob(s)"),
        "the other name keeps the content: {out}"
    );
    let (ok, out, _) = cli(&data, &["rm", &id]);
    assert!(
        ok && out.contains("Untagged: 127.0.0.1:5000/web:v1") && !out.contains("Deleted 0 blob"),
        "{out}"
    );
    let (_, out, _) = cli(&data, &["ls", "-q"]);
    assert!(out.trim().is_empty(), "{out}");
    let (ok, out, _) = cli(&data, &["check"]);
    assert!(ok && out.trim() == "ok");
    let (ok, out, _) = cli(&data, &["prune"]);
    assert!(ok && out.contains("Deleted 0 blob(s)"), "{out}");
}
