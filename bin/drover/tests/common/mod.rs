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
        self.launch();
        self.wait_ready();
    }

    /// Starts a server with extra flags without waiting for it to be ready (e.g. before its
    /// datastore is up); see [`Server::wait_until_ready`].
    pub fn start_unready(args: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
        };
        s.launch();
        s
    }

    /// Waits until `/readyz` answers 200 (panics if the process exits first).
    pub fn wait_until_ready(&mut self) {
        self.wait_ready();
    }

    /// The process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    fn launch(&mut self) {
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

    /// Starts a server that was stopped with [`Server::stop_with`] again.
    pub fn restart_stopped(&mut self) {
        assert!(self.child.is_none(), "server is still running");
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

/// Waits for `child` (stdout/stderr piped), killing it by PID and panicking with `what` after `timeout`.
pub fn wait_with_timeout(child: Child, timeout: Duration, what: &str) -> Output {
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

// === helpers for the kubectl and helm suites ===

/// The directory of checked-in test inputs (charts, manifests, kustomize dirs, scripts).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One fixture file or directory, as a string path for command lines.
pub fn fixture(rel: &str) -> String {
    let p = fixtures().join(rel);
    assert!(p.exists(), "fixture {} is missing", p.display());
    p.to_string_lossy().into_owned()
}

/// The reply of a raw HTTP request.
pub struct Reply {
    pub code: u16,
    pub body: String,
}

impl Reply {
    /// The body parsed as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.body))
    }
}

impl Server {
    /// kubectl 1.32 with stdin; must succeed; returns stdout.
    pub fn k_in(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_env("1.32", args, &[], Some(stdin));
        assert!(
            out.status.success(),
            "kubectl {args:?} (stdin {stdin:?}) failed ({}):\nstdout: {}\nstderr: {}\nserver log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl 1.32 with stdin that must fail; returns stderr.
    pub fn k_in_err(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_env("1.32", args, &[], Some(stdin));
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed but printed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Starts kubectl 1.32 as a long-running child (e.g. `get -w`) with stdout piped. The caller
    /// stops it with [`stop_child`].
    pub fn kubectl_child(&self, args: &[&str]) -> Child {
        let bin = kubectl_binary("1.32").expect("kubectl 1.32");
        let home = self.dir.path().join("home-1.32");
        std::fs::create_dir_all(&home).expect("home");
        Command::new(bin)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubectl")
    }

    /// helm that must succeed; returns stdout.
    pub fn h(&self, args: &[&str]) -> String {
        let out = self.helm(args);
        assert!(
            out.status.success(),
            "helm {args:?} failed ({}):\nstdout: {}\nstderr: {}\nserver log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The admin's client certificate and key from the kubeconfig, written to PEM files once.
    pub fn client_cert_files(&self) -> (PathBuf, PathBuf) {
        let cert = self.dir.path().join("client.crt");
        let key = self.dir.path().join("client.key");
        if !cert.exists() {
            let cfg = std::fs::read_to_string(self.kubeconfig()).expect("kubeconfig");
            let field = |name: &str| {
                let line = cfg
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(name))
                    .unwrap_or_else(|| panic!("{name} in kubeconfig"));
                let out = Command::new("base64")
                    .arg("-d")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .and_then(|mut c| {
                        use std::io::Write as _;
                        c.stdin
                            .take()
                            .expect("stdin")
                            .write_all(line.trim().as_bytes())?;
                        c.wait_with_output()
                    })
                    .expect("base64 -d");
                out.stdout
            };
            std::fs::write(&cert, field("client-certificate-data:")).expect("write cert");
            std::fs::write(&key, field("client-key-data:")).expect("write key");
        }
        (cert, key)
    }

    /// A raw HTTPS request with the admin's client certificate (curl), for bodies and status
    /// codes that kubectl would not send or would hide. `body` is sent as is.
    pub fn curl(&self, method: &str, path: &str, content_type: &str, body: Option<&[u8]>) -> Reply {
        let (cert, key) = self.client_cert_files();
        let body_file = self.dir.path().join(format!("curl-body-{}", free_port()));
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sk",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("Content-Type: {content_type}"),
        ])
        .args(["-H", "Accept: application/json"])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key);
        if let Some(b) = body {
            std::fs::write(&body_file, b).expect("body file");
            cmd.arg("--data-binary")
                .arg(format!("@{}", body_file.display()));
        }
        cmd.arg(format!("https://127.0.0.1:{}{path}", self.port))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = wait_with_timeout(
            cmd.spawn().expect("curl"),
            Duration::from_secs(60),
            &format!("curl {method} {path}"),
        );
        let _ = std::fs::remove_file(&body_file);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        Reply {
            code: code
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("curl {method} {path}: no status code in {text:?}")),
            body: body.to_owned(),
        }
    }
}

/// Reads a child's stdout on a thread and collects it into a shared buffer, so a test can poll
/// what a long-running command (e.g. `kubectl get -w`) has printed so far.
pub struct Collector {
    pub child: Child,
    buf: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Collector {
    pub fn new(mut child: Child) -> Collector {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let sink = std::sync::Arc::clone(&buf);
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Collector { child, buf }
    }

    /// What the child printed so far.
    pub fn text(&self) -> String {
        self.buf.lock().expect("lock").clone()
    }

    /// Stops the child by PID and returns everything it printed.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        self.text()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `python3`, when it can import the `kubernetes` client (the second independent client).
pub fn python_with_kubernetes() -> Option<PathBuf> {
    let py = which("python3")?;
    let ok = Command::new(&py)
        .args(["-c", "import kubernetes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(py)
}

/// Skips the test (returns) unless python3 with the `kubernetes` package is available.
#[macro_export]
macro_rules! require_python_kubernetes {
    () => {
        match common::python_with_kubernetes() {
            Some(py) => py,
            None => {
                // Panics under DROVER_REQUIRE_PEERS, otherwise prints why the test is skipped.
                let _ = common::have_peer(
                    "python3 with the kubernetes package (pip install kubernetes)",
                    false,
                );
                return;
            }
        }
    };
}

/// A real etcd (`/usr/bin/etcd`, Debian's etcd-server) on loopback with free client and peer
/// ports and a temporary data dir, stopped by its PID when dropped. `None` (after printing
/// why) when etcd is not installed, a panic instead under `DROVER_REQUIRE_PEERS=1`.
pub struct Etcd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub client_port: u16,
    peer_port: u16,
}

impl Etcd {
    pub fn start() -> Option<Etcd> {
        let found = Path::new("/usr/bin/etcd").exists();
        if !have_peer("etcd (apt-get install etcd-server)", found) {
            return None;
        }
        let mut etcd = Etcd {
            child: None,
            dir: tempfile::Builder::new()
                .prefix("drover-test-etcd-")
                .tempdir()
                .expect("tempdir"),
            client_port: free_port(),
            peer_port: free_port(),
        };
        etcd.launch();
        Some(etcd)
    }

    /// `etcd://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.client_port)
    }

    /// Starts the process (again, on the same data dir and ports) and waits until healthy.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log");
        let child = Command::new("/usr/bin/etcd")
            .args(["--name", "drover-test"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("drover-test={peer}")])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.healthy() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("etcd exited with {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy within 30s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn healthy(&self) -> bool {
        use std::io::{Read as _, Write as _};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// Stops this test's own etcd cleanly: SIGTERM to its PID, then waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// === several servers, one cluster ===

/// The proof that a second server on `a`'s datastore serves the same cluster, for any
/// datastore (`datastore` = the flags that point a server at it): a wrong `--token` is refused
/// with a message that says what to do; with the right one, `a`'s kubeconfig pointed at the
/// second server works (same CA and admin credential); writes through either server are read
/// and watched through the other; Service IPs allocated through both stay distinct. Returns the
/// second server.
pub fn assert_second_server_joins(a: &Server, datastore: &[&str]) -> Server {
    let token = std::fs::read_to_string(a.data_dir().join("token"))
        .expect("token")
        .trim()
        .to_owned();
    let wrong = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["server", "--https-listen-port", &free_port().to_string()])
        .args(datastore)
        .args(["--token", "not-the-token", "--data-dir"])
        .arg(a.dir.path().join("wrong"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && err.contains("same --token"),
        "{err}"
    );

    let mut args = datastore.to_vec();
    args.extend(["--token", token.as_str()]);
    let b = Server::start_with(&args);
    let kc = std::fs::read_to_string(a.kubeconfig())
        .expect("kubeconfig")
        .replace(
            &format!("127.0.0.1:{}", a.port),
            &format!("127.0.0.1:{}", b.port),
        );
    let kc_path = a.dir.path().join("kubeconfig-b.yaml");
    std::fs::write(&kc_path, kc).expect("write");
    let kc_b = kc_path.display().to_string();
    let via_b = |args: &[&str]| {
        let mut full = vec!["--kubeconfig", kc_b.as_str()];
        full.extend_from_slice(args);
        b.k(&full)
    };

    // B's watch cache follows the datastore: a watch on B from a revision before A's write
    // replays that write.
    let before = via_b(&["get", "cm", "-o", "jsonpath={.metadata.resourceVersion}"]);
    a.k(&["create", "configmap", "from-a", "--from-literal=x=1"]);
    let watched = via_b(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={before}&timeoutSeconds=2"
        ),
    ]);
    assert!(
        watched.contains("\"ADDED\"") && watched.contains("\"from-a\""),
        "B's watch from {before} must replay A's write; saw: {watched}"
    );
    assert_eq!(
        via_b(&["get", "cm", "from-a", "-o", "jsonpath={.data.x}"]),
        "1"
    );
    via_b(&["create", "configmap", "from-b"]);
    assert!(
        a.k(&["get", "cm", "-o", "name"])
            .contains("configmap/from-b")
    );

    for i in 0..5 {
        let (sa, sb) = (format!("sa{i}"), format!("sb{i}"));
        a.k(&["create", "service", "clusterip", &sa, "--tcp=80:80"]);
        via_b(&["create", "service", "clusterip", &sb, "--tcp=80:80"]);
    }
    let ips = a.k(&["get", "svc", "-o", "jsonpath={.items[*].spec.clusterIP}"]);
    let mut list: Vec<&str> = ips.split_whitespace().collect();
    let n = list.len();
    list.sort();
    list.dedup();
    assert_eq!(
        (n, list.len()),
        (11, 11),
        "cluster IPs must be distinct across servers: {ips}"
    );
    b
}
