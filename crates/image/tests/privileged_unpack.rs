//! Layer unpacking fidelity, whiteouts and confinement. Needs root (chown, mknod, trusted.*
//! xattrs, overlay mounts).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Tar, getxattr, skip_unless_root};
use drover_image::oci::Compression;
use drover_image::unpack::{UnpackError, unpack_layer};
use drover_image::{Digest, Store};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("drover-test-unpack-")
        .tempdir()
        .unwrap()
}

/// `security.capability` v2 granting cap_net_raw (bit 13) permitted + effective.
fn cap_net_raw() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    v.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

fn fidelity_layer() -> Vec<u8> {
    let long_pax = format!("deep/{}/pax-file", "p".repeat(140));
    let long_gnu = format!("deep/{}/gnu-file", "g".repeat(140));
    let cap = cap_net_raw();
    let mut t = Tar::default();
    t.dir("bin/", 0o755)
        .file(
            "bin/ping",
            0o4755,
            0,
            0,
            b"ping",
            &[("SCHILY.xattr.security.capability", &cap)],
        )
        .file("bin/wall", 0o2755, 0, 5, b"wall", &[])
        .symlink("bin/sh", "busybox")
        .dir("data/", 0o750)
        .file(
            "data/owned",
            0o640,
            1000,
            2000,
            b"owned",
            &[("SCHILY.xattr.user.note", b"hello")],
        )
        .hardlink("data/link", "data/owned")
        .dir("tmp/", 0o1777)
        .device("dev/null", tar::EntryType::Char, 1, 3)
        .device("dev/loop200", tar::EntryType::Block, 7, 200)
        .device("run/fifo", tar::EntryType::Fifo, 0, 0)
        .pax_long_file(&long_pax, b"pax")
        .file(&long_gnu, 0o600, 7, 8, b"gnu", &[])
        .file(
            "pax-owner",
            0o644,
            0,
            0,
            b"x",
            &[
                ("uid", b"3000000"),
                ("gid", b"3000001"),
                ("mtime", b"1234567890.5"),
            ],
        );
    t.finish()
}

#[test]
fn unpack_keeps_hard_links_xattrs_capabilities_setuid_devices_long_names_and_ownership() {
    if skip_unless_root("unpack fidelity") {
        return;
    }
    let tar = fidelity_layer();
    let mut diff_ids = Vec::new();
    for (comp, blob) in [
        (Compression::None, tar.clone()),
        (Compression::Gzip, common::gzip(&tar)),
        (Compression::Zstd, common::zstd(&tar)),
    ] {
        let dir = tempdir();
        let d = dir.path();
        let stats = unpack_layer(&blob[..], comp, d, Some(&Digest::of(&tar))).unwrap();
        diff_ids.push(stats.diff_id);

        let m =
            |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        let ping = m("bin/ping");
        assert_eq!(ping.mode() & 0o7777, 0o4755, "setuid kept");
        assert_eq!(
            getxattr(&d.join("bin/ping"), "security.capability"),
            Some(cap_net_raw()),
            "file capability kept"
        );
        let getcap = Command::new("getcap").arg(d.join("bin/ping")).output();
        if let Ok(o) = getcap {
            let s = String::from_utf8_lossy(&o.stdout);
            assert!(s.contains("cap_net_raw"), "getcap sees the capability: {s}");
        }
        let wall = m("bin/wall");
        assert_eq!(
            (wall.mode() & 0o7777, wall.gid()),
            (0o2755, 5),
            "setgid and group kept"
        );
        assert_eq!(
            std::fs::read_link(d.join("bin/sh")).unwrap(),
            PathBuf::from("busybox")
        );
        let owned = m("data/owned");
        assert_eq!(
            (owned.uid(), owned.gid(), owned.mode() & 0o7777),
            (1000, 2000, 0o640)
        );
        assert_eq!(owned.mtime(), 1_600_000_000);
        assert_eq!(
            getxattr(&d.join("data/owned"), "user.note").as_deref(),
            Some(&b"hello"[..])
        );
        let link = m("data/link");
        assert_eq!(link.ino(), owned.ino(), "hard link shares the inode");
        assert_eq!(owned.nlink(), 2);
        assert_eq!(m("data").mode() & 0o7777, 0o750);
        assert_eq!(
            m("data").mtime(),
            1_600_000_000,
            "directory mtime set after its children"
        );
        assert_eq!(m("tmp").mode() & 0o7777, 0o1777, "sticky bit kept");
        let null = m("dev/null");
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        let lp = m("dev/loop200");
        assert!(lp.file_type().is_block_device());
        assert_eq!(lp.rdev(), rustix::fs::makedev(7, 200));
        assert!(m("run/fifo").file_type().is_fifo());
        let pax = format!("deep/{}/pax-file", "p".repeat(140));
        assert_eq!(
            std::fs::read(d.join(&pax)).unwrap(),
            b"pax",
            "PAX long name"
        );
        assert!(!d.join("truncated-name").exists());
        let gnu = format!("deep/{}/gnu-file", "g".repeat(140));
        let g = m(&gnu);
        assert_eq!((g.uid(), g.gid()), (7, 8), "GNU long name with owner");
        let po = m("pax-owner");
        assert_eq!(
            (po.uid(), po.gid()),
            (3_000_000, 3_000_001),
            "PAX uid/gid beyond ustar's octal fields"
        );
        assert_eq!(
            (po.mtime(), po.mtime_nsec()),
            (1_234_567_890, 500_000_000),
            "PAX mtime with fraction"
        );
    }
    assert!(
        diff_ids.iter().all(|d| *d == Digest::of(&tar)),
        "gzip and zstd layers have the tar's diff ID"
    );
}

fn unpack_err(tar: Vec<u8>) -> (UnpackError, tempfile::TempDir) {
    let dir = tempdir();
    let dest = dir.path().join("snap");
    std::fs::create_dir(&dest).unwrap();
    let e = unpack_layer(&tar[..], Compression::None, &dest, None).expect_err("must be refused");
    (e, dir)
}

fn only_snap_inside(dir: &Path) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("snap")],
        "nothing may be created next to the snapshot"
    );
}

#[test]
fn hostile_paths_are_refused_and_nothing_lands_outside_the_snapshot() {
    if skip_unless_root("hostile paths") {
        return;
    }
    let mut t = Tar::default();
    t.file("../evil", 0o644, 0, 0, b"x", &[]);
    let (e, dir) = unpack_err(t.finish());
    assert!(e.to_string().contains("'..'"), "{e}");
    only_snap_inside(dir.path());

    let mut t = Tar::default();
    t.file("a/../../evil", 0o644, 0, 0, b"x", &[]);
    let (e, dir) = unpack_err(t.finish());
    assert!(matches!(e, UnpackError::Escape { .. }), "{e}");
    only_snap_inside(dir.path());

    // A symlinked parent is never followed.
    let outside = tempdir();
    let mut t = Tar::default();
    t.symlink("a", outside.path().to_str().unwrap())
        .file("a/evil", 0o644, 0, 0, b"x", &[]);
    let (e, _dir) = unpack_err(t.finish());
    assert!(e.to_string().contains("symlink"), "{e}");
    assert!(
        !outside.path().join("evil").exists(),
        "write through a symlinked parent"
    );

    // Hard links may only point inside the same layer.
    let mut t = Tar::default();
    t.hardlink("pw", "../../../../etc/passwd");
    let (e, _dir) = unpack_err(t.finish());
    assert!(matches!(e, UnpackError::Escape { .. }), "{e}");
    let mut t = Tar::default();
    t.hardlink("pw", "etc/passwd");
    let (e, _dir) = unpack_err(t.finish());
    assert!(matches!(e, UnpackError::LinkTarget { .. }), "{e}");
    let mut t = Tar::default();
    t.symlink("s", "/etc").hardlink("pw", "s/passwd");
    let (e, _dir) = unpack_err(t.finish());
    assert!(matches!(e, UnpackError::Escape { .. }), "{e}");

    // Absolute paths are confined to the snapshot.
    let dir = tempdir();
    let mut t = Tar::default();
    t.file("/abs/file", 0o644, 0, 0, b"in", &[]);
    let tar = t.finish();
    unpack_layer(&tar[..], Compression::None, dir.path(), None).unwrap();
    assert_eq!(std::fs::read(dir.path().join("abs/file")).unwrap(), b"in");
}

#[test]
fn corrupt_or_mismatched_layers_are_refused() {
    if skip_unless_root("corrupt layers") {
        return;
    }
    let mut t = Tar::default();
    t.file("f", 0o644, 0, 0, &[7u8; 5000], &[]);
    let tar = t.finish();
    let dir = tempdir();
    let e = unpack_layer(
        &tar[..],
        Compression::None,
        dir.path(),
        Some(&Digest::of(b"other")),
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::DiffId { .. }), "{e}");
    let gz = common::gzip(&tar);
    let dir = tempdir();
    let e = unpack_layer(&gz[..gz.len() / 2], Compression::Gzip, dir.path(), None).unwrap_err();
    assert!(e.to_string().contains("unpacking layer entry"), "{e}");
    let zs = common::zstd(&tar);
    let dir = tempdir();
    assert!(unpack_layer(&zs[..zs.len() / 2], Compression::Zstd, dir.path(), None).is_err());
}

/// Unmounts on drop.
struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn whiteouts_and_opaque_dirs_hide_lower_layers_in_the_overlay_mount() {
    if skip_unless_root("whiteouts") {
        return;
    }
    let mut l1 = Tar::default();
    l1.file("a/keep", 0o644, 0, 0, b"keep", &[])
        .file("a/gone", 0o644, 0, 0, b"gone", &[])
        .file("b/old", 0o644, 0, 0, b"old", &[])
        .file("c/x", 0o644, 0, 0, b"x", &[]);
    let mut l2 = Tar::default();
    l2.file("a/.wh.gone", 0o644, 0, 0, b"", &[])
        .dir("b/", 0o755)
        .file("b/.wh..wh..opq", 0o644, 0, 0, b"", &[])
        .file("b/new", 0o644, 0, 0, b"new", &[])
        .file(".wh.c", 0o644, 0, 0, b"", &[]);
    let mut l3 = Tar::default();
    l3.file("c/again", 0o644, 0, 0, b"again", &[]);
    let work = tempdir();
    let layout = work.path().join("layout");
    common::write_layout(
        &layout,
        "example.com/wh:v1",
        &[l1.finish(), l2.finish(), l3.finish()],
        "gzip",
        &["/bin/sh"],
    );
    let store = Store::open(work.path().join("store")).unwrap();
    drover_image::archive::import(&store, &layout, None, &drover_image::Platform::host()).unwrap();
    let img = store.resolve("example.com/wh:v1").unwrap();
    let plan = store.mount_plan(&img).unwrap();
    assert_eq!(plan.lowerdirs.len(), 3);
    // Topmost first: lowerdirs[1] is layer 2.
    let l2dir = &plan.lowerdirs[1];
    let wh = std::fs::symlink_metadata(l2dir.join("a/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 char device"
    );
    assert!(!l2dir.join("a/.wh.gone").exists());
    assert_eq!(
        getxattr(&l2dir.join("b"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );

    let merged = work.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    let lower: Vec<String> = plan
        .lowerdirs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let st = Command::new("mount")
        .args(["-t", "overlay", "drover-test-overlay", "-o"])
        .arg(format!("lowerdir={}", lower.join(":")))
        .arg(&merged)
        .status()
        .unwrap();
    assert!(st.success(), "overlay mount failed");
    let _m = Mount(merged.clone());
    assert!(merged.join("a/keep").exists());
    assert!(!merged.join("a/gone").exists(), "whiteout hides a/gone");
    assert!(!merged.join("b/old").exists(), "opaque dir hides b/old");
    assert!(merged.join("b/new").exists());
    assert!(!merged.join("c/x").exists(), "whited-out dir c hides c/x");
    assert_eq!(
        std::fs::read(merged.join("c/again")).unwrap(),
        b"again",
        "layer 3 recreates c"
    );
}

#[test]
fn mutated_layers_never_panic_or_write_outside_the_snapshot() {
    // A seeded mutation run over a layer with every entry kind (a cheap stand-in for cargo fuzz
    // on stable): each mutant unpacks or fails cleanly, and nothing appears next to the target.
    if skip_unless_root("mutated layers") {
        return;
    }
    let seed: u64 = std::env::var("DROVER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("mutation seed: {seed} (DROVER_TEST_SEED={seed} to rerun)");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let base = fidelity_layer();
    let mut outcomes = (0, 0);
    for i in 0..300 {
        let mut t = base.clone();
        for _ in 0..rand::Rng::random_range(&mut rng, 1..8) {
            // Mostly hit headers (the first 512 bytes of entries), sometimes anywhere.
            let pos = if rand::Rng::random_bool(&mut rng, 0.8) {
                let block = rand::Rng::random_range(&mut rng, 0..t.len() / 512);
                block * 512 + rand::Rng::random_range(&mut rng, 0..512)
            } else {
                rand::Rng::random_range(&mut rng, 0..t.len())
            };
            t[pos] = rand::Rng::random(&mut rng);
        }
        let dir = tempdir();
        let dest = dir.path().join("snap");
        std::fs::create_dir(&dest).unwrap();
        match unpack_layer(&t[..], Compression::None, &dest, None) {
            Ok(_) => outcomes.0 += 1,
            Err(_) => outcomes.1 += 1,
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("snap")],
            "mutant {i} (seed {seed}) wrote outside"
        );
    }
    eprintln!("mutants: {} unpacked, {} refused", outcomes.0, outcomes.1);
    assert!(
        outcomes.1 > 0,
        "mutations must produce some refusals, or the run tests nothing"
    );
}
