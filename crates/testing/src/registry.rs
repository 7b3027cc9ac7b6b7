//! A real Docker registry (Debian's `docker-registry`, distribution 2.8) for tests: on
//! `127.0.0.1` inside a fresh network namespace ([`Registry::start`]), inside a namespace the
//! test made ([`Registry::start_in_netns`]), or on the host's loopback
//! ([`Registry::start_on_host_loopback`]); optionally with basic auth, bearer-token auth or
//! TLS ([`RegistryOptions`]).
//!
//! Dropping a [`Registry`] kills the registry process (and the token realm) by PID, waits for
//! them, deletes the network namespace it made and the storage directory — also while a test
//! panics.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::fixtures;
use crate::netns::{NetNs, command_line, run};
use crate::{HarnessError, have_program};

/// Port the registry listens on inside its own network namespace (always free there).
pub const NETNS_PORT: u16 = 5000;

/// Port of the token endpoint inside the registry's namespace (with `token_auth`).
pub const NETNS_TOKEN_PORT: u16 = 5001;

/// How long [`Registry::start`] waits for `GET /v2/` to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How a [`Registry`] is set up beyond the defaults (plain HTTP, no auth).
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Require HTTP basic auth (an htpasswd file with this user and password, bcrypt).
    pub basic_auth: Option<(String, String)>,
    /// Serve HTTPS with a certificate for `127.0.0.1` and `localhost` signed by a CA made for
    /// this registry ([`Registry::ca_cert`]).
    pub tls: bool,
    /// Bearer-token auth (Docker Hub's flow) instead of plain basic auth: a token endpoint
    /// ([`Registry::token_realm`]) that wants `basic_auth`'s credentials if set, or none. The
    /// token grants pull, push and delete on every fixture repository and on
    /// `token_repositories`.
    pub token_auth: bool,
    /// More repositories the bearer token grants (beyond the fixtures').
    pub token_repositories: Vec<String>,
}

/// A running registry. See the module docs.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    token_server: Option<(Child, String)>,
    addr: String,
    options: RegistryOptions,
    dir: TempDir,
    // Declared last: dropped after the process is gone.
    place: Place,
}

/// Where the registry runs.
#[derive(Debug)]
enum Place {
    /// In a namespace the registry made (deleted on drop).
    Own(NetNs),
    /// In a namespace the test made (left alone on drop).
    Joined(String),
    /// In the host's namespace.
    Host,
}

impl Place {
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self {
            Place::Own(ns) => ns.command(program),
            Place::Joined(name) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", name]).arg(program);
                cmd
            }
            Place::Host => Command::new(program),
        }
    }

    fn in_netns(&self) -> bool {
        !matches!(self, Place::Host)
    }
}

/// How a client such as skopeo reaches a registry: its CA and credentials.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// A directory holding `ca.crt` (the form `skopeo --cert-dir` and containers' `certs.d`
    /// read); `None` means plain HTTP.
    pub cert_dir: Option<PathBuf>,
    /// User and password for basic auth.
    pub creds: Option<(String, String)>,
}

impl Access {
    /// skopeo flags for a source (`inspect`, or the source of `copy`): `--tls-verify=false`
    /// or `--cert-dir DIR`, and `--creds user:password`.
    pub fn skopeo_src_args(&self) -> Vec<String> {
        self.args("")
    }

    /// skopeo flags for the destination of `copy` (`--dest-…`).
    pub fn skopeo_dest_args(&self) -> Vec<String> {
        self.args("dest-")
    }

    fn args(&self, prefix: &str) -> Vec<String> {
        let mut args = match &self.cert_dir {
            Some(dir) => vec![format!("--{prefix}cert-dir={}", dir.display())],
            None => vec![format!("--{prefix}tls-verify=false")],
        };
        if let Some((user, password)) = &self.creds {
            args.push(format!("--{prefix}creds={user}:{password}"));
        }
        args
    }
}

/// An image pushed to a [`Registry`].
#[derive(Clone, Debug)]
pub struct Pushed {
    /// `host:port/repository:tag`, what a client pulls.
    pub reference: String,
    /// The repository path inside the registry (`library/nginx`).
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// Digest of the pushed manifest or index (preserved from the layout).
    pub digest: String,
}

impl Registry {
    /// Starts a registry on `127.0.0.1:5000` inside a new network namespace
    /// `drover-test-reg-<random>` that has only `lo`. Reach it with [`Registry::command`].
    /// Needs root, `ip` and `docker-registry`.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_with(RegistryOptions::default())
    }

    /// [`Registry::start`] with basic auth and/or TLS.
    pub fn start_with(options: RegistryOptions) -> Result<Self, HarnessError> {
        let netns = NetNs::create("reg")?;
        Self::spawn(
            Place::Own(netns),
            format!("127.0.0.1:{NETNS_PORT}"),
            options,
        )
    }

    /// Starts a registry inside network namespace `netns`, which the caller made and keeps
    /// (it is not deleted on drop), listening on `addr` there: `127.0.0.1:PORT`, or an address
    /// of one of the namespace's interfaces so that other namespaces reach it. With
    /// `token_auth`, the realm listens on the same IP, port + 1.
    pub fn start_in_netns(
        netns: &str,
        addr: std::net::SocketAddrV4,
        options: RegistryOptions,
    ) -> Result<Self, HarnessError> {
        if !NetNs::exists(netns) {
            return Err(HarnessError::Command {
                command: format!("ip netns exec {netns}"),
                detail: format!("no network namespace named {netns:?} (ip netns list)"),
            });
        }
        Self::spawn(Place::Joined(netns.to_string()), addr.to_string(), options)
    }

    /// Starts a registry on the host's `127.0.0.1` on a free port, for tests that are fine
    /// there (no root needed).
    pub fn start_on_host_loopback() -> Result<Self, HarnessError> {
        Self::start_on_host_loopback_with(RegistryOptions::default())
    }

    /// [`Registry::start_on_host_loopback`] with basic auth and/or TLS.
    pub fn start_on_host_loopback_with(options: RegistryOptions) -> Result<Self, HarnessError> {
        Self::spawn(Place::Host, format!("127.0.0.1:{}", free_port()?), options)
    }

    fn spawn(place: Place, addr: String, options: RegistryOptions) -> Result<Self, HarnessError> {
        if !have_program("docker-registry") {
            return Err(HarnessError::MissingPeer {
                program: "docker-registry".into(),
                hint: "apt-get install docker-registry",
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("drover-test-registry-")
            .tempdir()
            .map_err(io("create the registry's temp dir"))?;
        let (config, token) = write_config(dir.path(), &addr, place.in_netns(), &options)?;
        let log = dir.path().join("registry.log");
        let mut cmd = place.command("docker-registry");
        cmd.arg("serve").arg(&config);
        let child = start(cmd, Some(&log))?;
        let mut registry = Self {
            child,
            token_server: None,
            addr,
            options,
            dir,
            place,
        };
        if let Some((files, realm_addr)) = token {
            let mut cmd = registry.command("busybox");
            cmd.args(["httpd", "-f", "-p", &realm_addr])
                .arg("-h")
                .arg(&files.www)
                .arg("-c")
                .arg(&files.httpd_conf);
            registry.token_server = Some((start(cmd, None)?, realm_addr));
        }
        registry.wait_ready()?;
        Ok(registry)
    }

    /// The token endpoint (`http://127.0.0.1:PORT/auth/token`) with `token_auth`.
    pub fn token_realm(&self) -> Option<String> {
        self.token_server
            .as_ref()
            .map(|(_, addr)| format!("http://{addr}{}", crate::token::TOKEN_PATH))
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(HarnessError::NotReady {
                    addr: self.addr.clone(),
                    secs: 0,
                    log: format!("(exited with {status})\n{}", self.log()),
                });
            }
            let token_ready = match &self.token_server {
                Some((_, addr)) => self.answers_http(addr),
                None => true,
            };
            if token_ready && self.answers_v2() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(HarnessError::NotReady {
                    addr: self.addr.clone(),
                    secs: READY_TIMEOUT.as_secs(),
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the registry answers HTTP on its port right now (any status: with auth `/v2/`
    /// is a 401, and a plain-HTTP probe of the TLS port gets a 400).
    pub fn answers_v2(&self) -> bool {
        self.answers_http(&self.addr)
    }

    fn answers_http(&self, addr: &str) -> bool {
        let url = format!("http://{addr}/v2/");
        match &self.place {
            // Not `wget -T`: Debian's busybox 1.35 wget crashes with it; coreutils' timeout
            // bounds the probe instead.
            Place::Own(_) | Place::Joined(_) => self
                .command("timeout")
                .args(["5", "busybox", "wget", "-q", "-O", "/dev/null", &url])
                .stdout(Stdio::null())
                .output()
                .is_ok_and(|o| {
                    o.status.success()
                        || String::from_utf8_lossy(&o.stderr).contains("server returned error")
                }),
            Place::Host => http_get_status(addr, "/v2/").is_some(),
        }
    }

    /// `127.0.0.1:PORT` of the registry (inside its namespace for [`Registry::start`]).
    pub fn host_port(&self) -> &str {
        &self.addr
    }

    /// The registry process's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The network namespace the registry runs in (`None` for the host-loopback variant).
    pub fn netns(&self) -> Option<&NetNs> {
        match &self.place {
            Place::Own(ns) => Some(ns),
            _ => None,
        }
    }

    /// The name of the network namespace the registry runs in (its own or the caller's).
    pub fn netns_name(&self) -> Option<&str> {
        match &self.place {
            Place::Own(ns) => Some(ns.name()),
            Place::Joined(name) => Some(name),
            Place::Host => None,
        }
    }

    /// A command that runs `program` where the registry is reachable: inside its network
    /// namespace, or plainly on the host for [`Registry::start_on_host_loopback`].
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.place.command(program)
    }

    /// The registry's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log"))
            .unwrap_or_else(|e| format!("(cannot read the registry log: {e})"))
    }

    /// Builds fixture `name:tag` (any spelling [`fixtures::find`] accepts) and pushes it to
    /// its repository (`library/nginx`, `myorg/web`, …) with skopeo, digests preserved.
    pub fn push_fixture(&self, name: &str, tag: &str) -> Result<Pushed, HarnessError> {
        let fixture = fixtures::find(&format!("{name}:{tag}"))?;
        let layout = self.dir.path().join("layouts").join(fixture.slug());
        let written = if layout.join("index.json").exists() {
            None
        } else {
            Some(fixture.write_layout(&layout)?)
        };
        self.push_layout(&layout, fixture.tag, fixture.repository, fixture.tag)?;
        let digest = match written {
            Some(w) => w.top.digest,
            None => crate::unpack::resolve_tag(&layout, fixture.tag)?.digest,
        };
        Ok(Pushed {
            reference: format!("{}/{}:{}", self.addr, fixture.repository, fixture.tag),
            repository: fixture.repository.to_string(),
            tag: fixture.tag.to_string(),
            digest,
        })
    }

    /// Pushes tag `tag` of OCI layout `layout` as `repository:dest_tag` (all platforms of an
    /// index; digests preserved).
    pub fn push_layout(
        &self,
        layout: &Path,
        tag: &str,
        repository: &str,
        dest_tag: &str,
    ) -> Result<(), HarnessError> {
        let dest = format!("{}/{repository}:{dest_tag}", self.addr);
        skopeo_copy(self.command("skopeo"), layout, tag, &dest, &self.access())
    }

    /// What a client needs to reach this registry (CA directory, credentials).
    pub fn access(&self) -> Access {
        Access {
            cert_dir: self.options.tls.then(|| self.dir.path().join("certs")),
            creds: self.options.basic_auth.clone(),
        }
    }

    /// PEM file of the CA that signed the registry's certificate (TLS only).
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.options
            .tls
            .then(|| self.dir.path().join("certs").join("ca.crt"))
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.options.tls { "https" } else { "http" }
    }

    /// The registry's storage directory (blobs and repositories as distribution writes them).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.token_server {
            let _ = child.kill();
            let _ = child.wait();
        }
        // `ip netns exec` replaced itself with docker-registry, so this PID is the registry.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Then `dir` (removed) and `place` (an own namespace is deleted) drop.
    }
}

/// Copies tag `tag` of OCI layout `layout` to `docker://<dest>` (`host:port/repo:tag`) with
/// `skopeo copy --all --preserve-digests` and the destination flags of `access`
/// (`--dest-tls-verify=false` for plain HTTP). `skopeo` is the command to run (e.g.
/// [`Registry::command`]`("skopeo")` to run it inside the registry's namespace).
pub fn skopeo_copy(
    mut skopeo: Command,
    layout: &Path,
    tag: &str,
    dest: &str,
    access: &Access,
) -> Result<(), HarnessError> {
    if !have_program("skopeo") {
        return Err(HarnessError::MissingPeer {
            program: "skopeo".into(),
            hint: "apt-get install skopeo",
        });
    }
    skopeo
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
        ])
        .args(access.skopeo_dest_args())
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"));
    run(&mut skopeo).map(drop)
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.to_string();
    move |source| HarnessError::Io { what, source }
}

/// Writes the registry's config (and its auth and TLS files) below `dir`; returns the config
/// path and, with token auth, the realm's files and address.
fn write_config(
    dir: &Path,
    addr: &str,
    in_netns: bool,
    options: &RegistryOptions,
) -> Result<(PathBuf, Option<(crate::token::TokenFiles, String)>), HarnessError> {
    let storage = dir.join("storage");
    std::fs::create_dir(&storage).map_err(io("create the registry's storage dir"))?;
    let mut yaml = config_yaml(addr, &storage);
    let mut token = None;
    if options.token_auth {
        let realm_addr = realm_addr(addr, in_netns)?;
        let mut repos: Vec<String> = fixtures::all()
            .iter()
            .map(|f| f.repository.to_string())
            .collect();
        repos.extend(options.token_repositories.iter().cloned());
        let files = crate::token::write(dir, &realm_addr, &repos, options.basic_auth.as_ref())?;
        yaml.push_str(&files.registry_yaml);
        token = Some((files, realm_addr));
    } else if let Some((user, password)) = &options.basic_auth {
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, htpasswd_line(user, password)?)
            .map_err(io("write the htpasswd file"))?;
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: drover-test\n    path: {}\n",
            htpasswd.display()
        ));
    }
    if options.tls {
        let (cert, key) = crate::tls::write_test_pki(dir)?;
        yaml = yaml.replace(
            &format!("  addr: {addr}\n"),
            &format!(
                "  addr: {addr}\n  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ),
        );
    }
    let config = dir.join("config.yml");
    std::fs::write(&config, yaml).map_err(io("write the registry config"))?;
    Ok((config, token))
}

/// Spawns `cmd` with stdin closed and stdout+stderr to `log` (or discarded).
fn start(mut cmd: Command, log: Option<&Path>) -> Result<Child, HarnessError> {
    cmd.stdin(Stdio::null());
    match log {
        Some(path) => {
            let out = File::create(path).map_err(io("create the registry log"))?;
            let err = out.try_clone().map_err(io("open the registry log"))?;
            cmd.stdout(out).stderr(err);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    cmd.spawn().map_err(|e| HarnessError::Command {
        command: command_line(&cmd),
        detail: e.to_string(),
    })
}

/// Where the token realm listens: 127.0.0.1:5001 next to a registry on 127.0.0.1:5000 in its
/// own namespace, the same IP and port + 1 in a caller's namespace, a free port on the host.
fn realm_addr(registry: &str, in_netns: bool) -> Result<String, HarnessError> {
    let (ip, port) = registry.rsplit_once(':').unwrap_or((registry, "0"));
    let port: u16 = port.parse().unwrap_or(0);
    Ok(match (in_netns, port) {
        (true, NETNS_PORT) if ip == "127.0.0.1" => format!("127.0.0.1:{NETNS_TOKEN_PORT}"),
        (true, p) => format!("{ip}:{}", p.wrapping_add(1)),
        (false, _) => format!("127.0.0.1:{}", free_port()?),
    })
}

fn free_port() -> Result<u16, HarnessError> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|source| HarnessError::Io {
            what: "find a free port on 127.0.0.1".into(),
            source,
        })?
        .port())
}

fn htpasswd_line(user: &str, password: &str) -> Result<String, HarnessError> {
    let mut salt = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut salt))
        .map_err(|source| HarnessError::Io {
            what: "read /dev/urandom for a bcrypt salt".into(),
            source,
        })?;
    // Cost 5: the registry checks it on every request; tests need no brute-force resistance.
    let hash = bcrypt::hash_with_salt(password, 5, salt).map_err(|e| HarnessError::Command {
        command: "bcrypt".into(),
        detail: e.to_string(),
    })?;
    Ok(format!(
        "{user}:{}\n",
        hash.format_for_version(bcrypt::Version::TwoY)
    ))
}

fn config_yaml(addr: &str, storage: &Path) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n  secret: drover-test-registry\n\
         health:\n  storagedriver:\n    enabled: false\n",
        storage.display()
    )
}

/// The status code of `GET path` on `addr` (HTTP/1.0, no body read), `None` on any failure.
fn http_get_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
