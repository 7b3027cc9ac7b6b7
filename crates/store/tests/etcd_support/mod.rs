//! A real etcd for tests: `/usr/bin/etcd` (Debian's etcd-server) on loopback with free client
//! and peer ports and a temporary data dir, stopped by PID when dropped.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The etcd binary, or `None` with the reason printed (a panic when `DROVER_REQUIRE_PEERS=1`).
pub fn etcd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("DROVER_ETCD")
        .map_or_else(|| PathBuf::from("/usr/bin/etcd"), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    let reason = format!("{} not found (apt-get install etcd-server)", path.display());
    if std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("DROVER_REQUIRE_PEERS=1 but {reason}");
    }
    eprintln!("skipping: {reason}");
    None
}

/// One etcd member started by this test.
pub struct Etcd {
    binary: PathBuf,
    child: Option<Child>,
    /// Data dir and log (kept across `stop`/`start`).
    pub dir: TempDir,
    pub client_port: u16,
    peer_port: u16,
    extra: Vec<String>,
    /// Client TLS files (CA, cert, key) when the client URL is https.
    tls: Option<[PathBuf; 3]>,
    /// Member name and `--initial-cluster` (one member by default).
    name: String,
    initial_cluster: Option<String>,
}

impl Etcd {
    /// Starts etcd, or returns `None` (after printing why) when it is not installed.
    pub fn start() -> Option<Etcd> {
        Self::start_with(&[])
    }

    /// Starts etcd with extra flags (e.g. `--quota-backend-bytes`).
    pub fn start_with(extra: &[&str]) -> Option<Etcd> {
        let binary = etcd_binary()?;
        // tmpfs keeps etcd's fsyncs cheap on a shared 2-core machine; it survives a restart of
        // the process, which is all the tests need.
        let dir = tempfile::Builder::new()
            .prefix("drover-test-etcd-")
            .tempdir_in(if Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            })
            .expect("create etcd data dir");
        let mut etcd = Etcd {
            binary,
            child: None,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            tls: None,
            name: "drover-test".into(),
            initial_cluster: None,
        };
        etcd.launch();
        Some(etcd)
    }

    /// Starts a cluster of `n` members on loopback and waits until every one is healthy.
    pub fn start_cluster(n: usize) -> Option<Vec<Etcd>> {
        let binary = etcd_binary()?;
        let mut members: Vec<Etcd> = (0..n)
            .map(|i| Etcd {
                binary: binary.clone(),
                child: None,
                dir: tempfile::Builder::new()
                    .prefix("drover-test-etcd-")
                    .tempdir()
                    .expect("create etcd data dir"),
                client_port: free_port(),
                peer_port: free_port(),
                extra: Vec::new(),
                tls: None,
                name: format!("drover-test-{i}"),
                initial_cluster: None,
            })
            .collect();
        let cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        for m in &mut members {
            m.initial_cluster = Some(cluster.clone());
            m.spawn();
        }
        for m in &mut members {
            m.wait_healthy();
        }
        Some(members)
    }

    /// Starts etcd serving clients over TLS with client-certificate auth; `tls` holds the CA,
    /// a client certificate and its key (see [`make_certs`]), used for the readiness check.
    pub fn start_tls(server: [&Path; 3], client: [PathBuf; 3]) -> Option<Etcd> {
        let [ca, cert, key] = server.map(|p| p.display().to_string());
        let binary = etcd_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("drover-test-etcd-")
            .tempdir()
            .expect("create etcd data dir");
        let mut etcd = Etcd {
            binary,
            child: None,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            extra: vec![
                "--cert-file".into(),
                cert,
                "--key-file".into(),
                key,
                "--trusted-ca-file".into(),
                ca,
                "--client-cert-auth".into(),
            ],
            tls: Some(client),
            name: "drover-test".into(),
            initial_cluster: None,
        };
        etcd.launch();
        Some(etcd)
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS etcd).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process (again, on the same data dir and ports) and waits until healthy.
    pub fn launch(&mut self) {
        self.spawn();
        self.wait_healthy();
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("open etcd log");
        let child = Command::new(&self.binary)
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &self.url()])
            .args(["--advertise-client-urls", &self.url()])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args([
                "--initial-cluster",
                &self
                    .initial_cluster
                    .clone()
                    .unwrap_or_else(|| format!("{}={peer}", self.name)),
            ])
            .args(["--logger", "zap", "--log-level", "warn"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        self.child = Some(child);
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("etcd exited with {status} at start; log:\n{}", self.log());
            }
            if self.healthy() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd did not become healthy in 30 s; log:\n{}", self.log());
    }

    /// `GET /health` says true.
    pub fn healthy(&self) -> bool {
        if let Some([ca, cert, key]) = &self.tls {
            let out = Command::new("curl")
                .args(["-s", "--max-time", "2", "--cacert"])
                .arg(ca)
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key)
                .arg(format!("{}/health", self.url()))
                .output();
            return out
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("\"health\":\"true\""));
        }
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// Stops this test's etcd cleanly: SIGTERM to its PID, then waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Makes a CA, a serving certificate for 127.0.0.1 and a client certificate with `openssl`,
/// in `dir`. Returns `(ca, server cert, server key, client cert, client key)`, or `None` (after
/// printing why) when openssl is missing.
pub fn make_certs(dir: &Path) -> Option<[PathBuf; 5]> {
    if Command::new("openssl").arg("version").output().is_err() {
        let reason = "openssl not found (apt-get install openssl)";
        if std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("DROVER_REQUIRE_PEERS=1 but {reason}");
        }
        eprintln!("skipping: {reason}");
        return None;
    }
    let p = |name: &str| dir.join(name);
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=drover-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        ),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN=drover-test-{name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        std::fs::write(p(&format!("{name}.ext")), ext).expect("write ext");
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ]);
    }
    Some([
        p("ca.crt"),
        p("server.crt"),
        p("server.key"),
        p("client.crt"),
        p("client.key"),
    ])
}
