//! Shared helpers of the runtime core's privileged tests (included with `#[path]`): busybox
//! bundles built in a temporary directory, the runtime binary, timeouts, cleanup guards.
//!
//! Everything a test makes carries the prefix `drover-test-`: container ids (hence cgroup
//! names), state roots, temporary directories. [`Container`]'s `Drop` force-deletes the
//! container even when the test fails.

#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The runtime under test.
pub fn runtime_bin() -> &'static str {
    env!("CARGO_BIN_EXE_drover-runtime")
}

/// Whether a peer tool is present; without it the test is skipped (printed), unless
/// `DROVER_REQUIRE_PEERS=1`, where it fails.
pub fn require(tool: &str) -> bool {
    let found = if tool.starts_with('/') {
        Path::new(tool).exists()
    } else {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found {
        return true;
    }
    if std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{tool} is required (DROVER_REQUIRE_PEERS=1) but missing");
    }
    eprintln!("SKIP: {tool} is not installed");
    false
}

/// Root and busybox are needed by every test here.
pub fn privileged() -> bool {
    if !rustix::process::geteuid().is_root() {
        if std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("privileged runtime tests need root");
        }
        eprintln!("SKIP: privileged runtime tests need root");
        return false;
    }
    require("/bin/busybox")
}

/// A unique `drover-test-…` name.
pub fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "drover-test-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// runc's default config, adapted: no terminal, no ambient capabilities, `args` as given.
pub fn base_config(args: &[&str]) -> Value {
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "drover-test-host",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A bundle in a temporary directory: busybox-static installed into `rootfs/bin`.
pub struct Bundle {
    pub dir: tempfile::TempDir,
}

impl Bundle {
    /// Builds the rootfs and writes `config`.
    pub fn new(config: &Value) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("drover-test-bundle-")
            .tempdir()
            .unwrap();
        let bin = dir.path().join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        for d in ["proc", "dev", "sys", "tmp", "etc", "root"] {
            std::fs::create_dir_all(dir.path().join("rootfs").join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        // Relative links (`busybox --install -s` would point them at the host path). The list
        // comes from the host binary: exec-ing the fresh copy races with other test threads
        // forking while its write fd is open (ETXTBSY).
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        assert!(list.status.success(), "busybox --list failed");
        for applet in text(&list.stdout)
            .lines()
            .filter(|a| !a.is_empty() && *a != "busybox")
        {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::write(
            dir.path().join("rootfs/etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("rootfs/etc/group"), "root:x:0:\n").unwrap();
        let b = Self { dir };
        b.write_config(config);
        b
    }

    /// Replaces `config.json`.
    pub fn write_config(&self, config: &Value) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A state root plus a container id; dropping it force-deletes the container.
pub struct Container {
    pub root: tempfile::TempDir,
    pub id: String,
}

impl Container {
    /// A fresh state root and id.
    pub fn new(name: &str) -> Self {
        let root = tempfile::Builder::new()
            .prefix("drover-test-root-")
            .tempdir()
            .unwrap();
        Self {
            root,
            id: unique(name),
        }
    }

    /// `drover-runtime --root <root> <args…>`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(runtime_bin());
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Runs the runtime with `args` (the id is not added) and a timeout.
    pub fn rt(&self, args: &[&str]) -> Output {
        output(
            self.cmd(args),
            Duration::from_secs(30),
            &format!("drover-runtime {args:?}"),
        )
    }

    /// `state` as JSON (panics when the command fails).
    pub fn state(&self) -> Value {
        let out = self.rt(&["state", &self.id]);
        assert!(out.status.success(), "state failed: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The current status string.
    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
    }

    /// Waits until the status is `want`.
    pub fn wait_status(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Tolerates "does not exist" while a concurrent `run` has not made the state yet.
            let out = self.rt(&["state", &self.id]);
            let s = serde_json::from_slice::<Value>(&out.stdout)
                .map(|v| v["status"].as_str().unwrap_or_default().to_string())
                .unwrap_or_else(|_| text(&out.stderr));
            if s == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "status stayed {s}, expected {want}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete", "--force", &self.id]).output();
    }
}

/// Runs `cmd` with a deadline; on expiry kills it and panics naming `what`.
///
/// stdout and stderr go to temporary files, not pipes: a created container inherits the
/// runtime's stdio (as with runc), so a pipe would not reach EOF while the container lives.
pub fn output(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    drop(cmd);
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {timeout:?} (the runtime probably hangs on its sync \
                 socket with the container process, or on the exec fifo)"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |f: &mut std::fs::File| {
        use std::io::Seek;
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// Lossy UTF-8.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The cgroup directories named `name` under every v1 hierarchy (and the unified one).
pub fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name().to_str() == Some(name) {
                    found.push(e.path());
                }
                if d.components().count() < 8 {
                    stack.push(e.path());
                }
            }
        }
    }
    found
}
