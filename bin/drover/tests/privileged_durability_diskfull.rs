//! Disk full, for real: the server's SQLite datastore lives on a small tmpfs (mounted by this
//! test, named `drover-test-…`, unmounted in Drop). A filler file takes almost all of its room;
//! writes then fail with HTTP 507 and a Status message that names the database path on that
//! filesystem and says "no space left on device"; reads keep working; once the filler is
//! removed, writes succeed again without a restart.
//!
//! Needs root (mount). Skips with a reason otherwise, unless `DROVER_REQUIRE_PEERS=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;

/// A tmpfs mounted by this test; unmounted and removed when dropped, also on panic.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("drover-test-diskfull-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("drover-test-diskfull")
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount tmpfs on {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Free bytes on the filesystem of `path` (`df`, so no unsafe statvfs).
fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .expect("run df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot parse df output: {out:?}"))
}

fn configmap(name: &str, kib: usize) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"blob":"{}"}}}}"#,
        "y".repeat(kib * 1024)
    )
    .into_bytes()
}

const CM: &str = "/api/v1/namespaces/default/configmaps";

#[test]
fn full_disk_gives_507_naming_the_datastore_reads_work_and_writes_recover() {
    if !is_root() {
        let reason = "not root: mounting a tmpfs needs CAP_SYS_ADMIN";
        if std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("DROVER_REQUIRE_PEERS=1 but {reason}");
        }
        eprintln!("skipping: {reason}");
        return;
    }
    let fs = Tmpfs::mount("24m");
    let db = fs.dir.join("state.db");
    let endpoint = format!("sqlite://{}", db.display());
    let server = Server::start_with(&["--datastore-endpoint", &endpoint]);

    let first = server.curl(
        "POST",
        CM,
        "application/json",
        Some(&configmap("before-full", 4)),
    );
    assert_eq!(
        first.code, 201,
        "a write before the disk is full: {}",
        first.body
    );

    // Leave about 256 KiB free.
    let filler = fs.dir.join("filler");
    let room = free_bytes(&fs.dir).saturating_sub(256 * 1024);
    std::fs::write(&filler, vec![0u8; room as usize]).expect("write the filler file");

    let mut full = None;
    for n in 0..200 {
        let reply = server.curl(
            "POST",
            CM,
            "application/json",
            Some(&configmap(&format!("fill-{n}"), 32)),
        );
        match reply.code {
            201 => continue,
            507 => {
                full = Some(reply);
                break;
            }
            other => panic!(
                "write {n} on a filling disk answered {other}: {}",
                reply.body
            ),
        }
    }
    let full = full.expect("no write failed with 507 on a full disk");
    let status = full.json();
    eprintln!("507 Status: {status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 507);
    assert_eq!(status["reason"], "InsufficientStorage");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no space left on device"),
        "message does not say the disk is full: {message}"
    );
    assert!(
        message.contains(&fs.dir.display().to_string()),
        "message does not name the datastore's path {}: {message}",
        fs.dir.display()
    );

    // Reads keep working.
    let get = server.curl(
        "GET",
        &format!("{CM}/before-full"),
        "application/json",
        None,
    );
    assert_eq!(get.code, 200, "read on a full disk: {}", get.body);
    let list = server.curl("GET", CM, "application/json", None);
    assert_eq!(list.code, 200, "list on a full disk: {}", list.body);

    // Free the space: writes succeed again, without a restart.
    std::fs::remove_file(&filler).expect("remove the filler");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = server.curl(
            "POST",
            CM,
            "application/json",
            Some(&configmap("after-free", 4)),
        );
        if reply.code == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not recover after space was freed: {} {}",
            reply.code,
            reply.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let get = server.curl("GET", &format!("{CM}/after-free"), "application/json", None);
    assert_eq!(get.code, 200, "{}", get.body);
    drop(server);
}
