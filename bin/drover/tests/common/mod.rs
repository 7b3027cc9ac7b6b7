//! End-to-end harness: starts the real `drover` binary on its own data dir and port, and runs
//! real client binaries (kubectl, helm) against it.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `drover server`, stopped (by PID) when dropped.
pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    extra_args: Vec<String>,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Server {
    /// Starts a server and waits until it is ready.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra flags.
    pub fn start_with(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Server {
            child: None,
            dir,
            port: free_port(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("server")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--https-listen-port")
            .arg(self.port.to_string())
            .args(&self.extra_args)
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start drover");
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir().join("kubeconfig.yaml")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "drover server exited early with {status}; log:\n{}",
                    self.log()
                );
            }
            if self.kubeconfig().exists()
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                let out = self.raw_get("/readyz");
                if out.status.success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server not ready within 60s (deadlock in startup?); log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Sends a signal to the server and waits for it to exit.
    pub fn stop_with(&mut self, signal: i32) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY-free: kill(2) through the `kill` binary on our own child's PID.
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within 30s of signal {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops (SIGTERM) and starts again on the same data dir and port.
    pub fn restart(&mut self) {
        let status = self.stop_with(15);
        assert!(
            status.success(),
            "drover server exited with {status} on SIGTERM; log:\n{}",
            self.log()
        );
        self.spawn();
    }

    /// Kills (SIGKILL) and starts again.
    pub fn crash_and_restart(&mut self) {
        self.stop_with(9);
        self.spawn();
    }

    /// Runs a kubectl of the given minor version (e.g. "1.32") with this server's kubeconfig.
    pub fn kubectl_v(&self, minor: &str, args: &[&str]) -> Output {
        self.kubectl_env(minor, args, &[], None)
    }

    pub fn kubectl_env(
        &self,
        minor: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> Output {
        let bin = kubectl_binary(minor).unwrap_or_else(|| panic!("kubectl {minor} not found"));
        let home = self.dir.path().join(format!("home-{minor}"));
        std::fs::create_dir_all(&home).expect("home");
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", &home)
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        wait_with_timeout(
            child,
            Duration::from_secs(120),
            &format!("kubectl {args:?}"),
        )
    }

    /// kubectl 1.32 (the reference client).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_v("1.32", args)
    }

    /// kubectl 1.32 that must succeed; returns stdout.
    pub fn k(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}\nserver log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl 1.32 that must fail; returns stderr.
    pub fn k_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed but printed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl get --raw PATH`.
    pub fn raw_get(&self, path: &str) -> Output {
        self.kubectl(&["get", "--raw", path])
    }

    /// Runs helm with this server's kubeconfig.
    pub fn helm(&self, args: &[&str]) -> Output {
        let bin = helm_binary().expect("helm not found");
        let home = self.dir.path().join("home-helm");
        std::fs::create_dir_all(&home).expect("home");
        let child = Command::new(bin)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", &home)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run helm");
        wait_with_timeout(child, Duration::from_secs(180), &format!("helm {args:?}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_with_timeout(child: Child, timeout: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{what} did not finish within {timeout:?} (a watch or wait that never ends?)");
        }
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Finds `kubectl.1.NN`: on PATH, or beside the real binary of the `kubectl` on PATH.
pub fn kubectl_binary(minor: &str) -> Option<PathBuf> {
    let name = format!("kubectl.{minor}");
    if let Some(p) = which(&name) {
        return Some(p);
    }
    let kubectl = which("kubectl")?;
    let real = std::fs::canonicalize(kubectl).ok()?;
    let candidate = real.parent()?.join(&name);
    candidate.exists().then_some(candidate)
}

pub fn helm_binary() -> Option<PathBuf> {
    which("helm").or_else(|| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/peers/bin/helm");
        p.exists().then_some(p)
    })
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// True when the peers a test needs are present. In CI (`DROVER_REQUIRE_PEERS=1`) a missing
/// peer fails the test instead of skipping it.
pub fn have_peer(name: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var_os("DROVER_REQUIRE_PEERS").is_some() {
        panic!(
            "{name} is required (DROVER_REQUIRE_PEERS is set) but was not found; run scripts/setup-test-peers.sh"
        );
    }
    eprintln!("skipping: {name} not found (run scripts/setup-test-peers.sh)");
    false
}

/// Skips the test (returns) unless kubectl 1.32 is available.
#[macro_export]
macro_rules! require_kubectl {
    () => {
        if !common::have_peer("kubectl 1.32", common::kubectl_binary("1.32").is_some()) {
            return;
        }
    };
}

/// The seed examples directory (`../shared/seed/examples` beside the project).
pub fn seed_examples() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed/examples");
    p.exists().then_some(p)
}

/// The kubectl/helm probe inputs (`../shared/research/kprobe`).
pub fn kprobe() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/research/kprobe");
    p.exists().then_some(p)
}

/// Polls `f` until it returns true (bounded; names what it waited for).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after 30s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
