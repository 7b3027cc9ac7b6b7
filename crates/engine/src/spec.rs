//! From an image config and `drover run`'s flags to an OCI runtime `config.json`, with Docker's
//! defaults: its mounts, masked and read-only paths, capabilities, seccomp profile, environment
//! and command rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::layout::Healthcheck;
use crate::users::Identity;

/// Docker's default PATH when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The parts of an OCI image config (`config` of the image's config blob) a container uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env` (`K=V`).
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `User`.
    pub user: String,
    /// `ExposedPorts` keys (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// `StopSignal`.
    pub stop_signal: String,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `Healthcheck`, unless it is `["NONE"]`.
    pub healthcheck: Option<Healthcheck>,
}

impl ImageConfig {
    /// Reads the `config` object of an OCI/Docker image config blob.
    pub fn from_json(config: &Value) -> Result<Self> {
        let c = config.get("config").unwrap_or(&Value::Null);
        let strings = |key: &str| -> Result<Vec<String>> {
            match c.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(v) => serde_json::from_value(v.clone()).with_context(|| {
                    format!("image config: config.{key} is not a list of strings")
                }),
            }
        };
        let string = |key: &str| c.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
        let healthcheck = match c.get("Healthcheck") {
            Some(h) if !h.is_null() => {
                let test: Vec<String> =
                    serde_json::from_value(h.get("Test").cloned().unwrap_or(Value::Array(vec![])))
                        .context(
                            "image config: config.Healthcheck.Test is not a list of strings",
                        )?;
                let secs = |key: &str, default: u64| {
                    h.get(key)
                        .and_then(Value::as_u64)
                        .filter(|&ns| ns > 0)
                        .map_or(default, |ns| ns.div_ceil(1_000_000_000))
                };
                match test.first().map(String::as_str) {
                    None | Some("NONE") => None,
                    Some(_) => Some(Healthcheck {
                        test,
                        interval_secs: secs("Interval", 30),
                        timeout_secs: secs("Timeout", 30),
                        retries: h
                            .get("Retries")
                            .and_then(Value::as_u64)
                            .filter(|&r| r > 0)
                            .map_or(3, |r| r as u32),
                        start_period_secs: secs("StartPeriod", 0),
                    }),
                }
            }
            _ => None,
        };
        Ok(Self {
            entrypoint: strings("Entrypoint")?,
            cmd: strings("Cmd")?,
            env: strings("Env")?,
            working_dir: string("WorkingDir"),
            user: string("User"),
            exposed_ports: c
                .get("ExposedPorts")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            stop_signal: string("StopSignal"),
            labels: c
                .get("Labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            healthcheck,
        })
    }
}

/// `--network`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// A new network namespace with only `lo`, up.
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

/// The flags of `drover run` that shape the container (not the ones about attaching).
#[derive(Clone, Debug, Default)]
pub struct ContainerOptions {
    /// `--entrypoint` (`Some("")` clears the image's).
    pub entrypoint: Option<String>,
    /// The command after the image name.
    pub cmd: Vec<String>,
    /// `-e K=V` and `--env-file` lines, in order (`K` alone takes the value from our environment).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `-v host:ctr[:ro]`.
    pub volumes: Vec<String>,
    /// `--tmpfs path[:opts]`.
    pub tmpfs: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--network`.
    pub network: Network,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--ulimit name=soft[:hard]`.
    pub ulimits: Vec<String>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `--cgroup-parent` (default `/drover`): the container's cgroup is `<parent>/<id>`.
    pub cgroup_parent: Option<String>,
    /// `--init`: the host's static init binary, bind-mounted read-only at
    /// [`crate::init::CONTAINER_PATH`] and run as PID 1 in front of the command.
    pub init: Option<PathBuf>,
}

/// What the host side provides that the spec refers to.
pub struct HostFiles<'a> {
    /// The container's directory (for `hosts`, `resolv.conf`, `hostname`).
    pub dir: &'a Path,
    /// The container id (its first 12 digits are the default hostname).
    pub id: &'a str,
    /// Capabilities a container gets by default (containerd's set).
    pub default_caps: &'a [&'a str],
    /// Every capability the kernel has (for `--privileged` and `ALL`).
    pub all_caps: &'a [&'a str],
    /// The default seccomp profile, as an OCI `linux.seccomp` object, for the final capability set.
    pub seccomp: &'a dyn Fn(&[String]) -> Value,
}

/// The spec plus what `run` records about it.
pub struct Built {
    /// `config.json`.
    pub spec: Value,
    /// entrypoint + cmd (without the init in front, as Docker shows it).
    pub args: Vec<String>,
    /// The hostname.
    pub hostname: String,
    /// Files to write into the container's directory before start (`hosts`, …).
    pub files: Vec<(PathBuf, String)>,
}

/// Docker's byte sizes: `512m`, `1g`, `100k`, `1024b` or plain bytes (powers of 1024).
pub fn parse_bytes(s: &str) -> Result<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower
        .strip_suffix('b')
        .filter(|r| !r.is_empty())
        .unwrap_or(&lower);
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size {s:?}: use a number with b, k, m or g"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}: must not be negative");
    }
    Ok((n * mult as f64) as i64)
}

const RLIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
    "as",
];

fn parse_ulimit(s: &str) -> Result<Value> {
    let (name, values) = s
        .split_once('=')
        .with_context(|| format!("invalid ulimit {s:?}: use name=soft[:hard]"))?;
    if !RLIMITS.contains(&name) {
        bail!("invalid ulimit {s:?}: unknown resource {name:?}");
    }
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    let parse = |v: &str| -> Result<u64> {
        if v == "-1" || v == "unlimited" {
            return Ok(u64::MAX);
        }
        v.parse()
            .with_context(|| format!("invalid ulimit {s:?}: {v:?} is not a number"))
    };
    let (soft, hard) = (parse(soft)?, parse(hard)?);
    if soft > hard {
        bail!("invalid ulimit {s:?}: soft limit {soft} exceeds hard limit {hard}");
    }
    Ok(json!({"type": format!("RLIMIT_{}", name.to_ascii_uppercase()), "soft": soft, "hard": hard}))
}

fn cap_name(s: &str) -> String {
    let up = s.to_ascii_uppercase();
    if up.starts_with("CAP_") || up == "ALL" {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The final capability set: the default (or all, when privileged), `--cap-add`, `--cap-drop`.
pub fn capabilities(opts: &ContainerOptions, host: &HostFiles<'_>) -> Result<Vec<String>> {
    let known = |c: &str| host.all_caps.contains(&c);
    let base: &[&str] = if opts.privileged {
        host.all_caps
    } else {
        host.default_caps
    };
    let mut caps: Vec<String> = base.iter().map(|c| c.to_string()).collect();
    for add in &opts.cap_add {
        let c = cap_name(add);
        if c == "ALL" {
            caps = host.all_caps.iter().map(|c| c.to_string()).collect();
        } else if !known(&c) {
            bail!("invalid --cap-add {add:?}: unknown capability {c}");
        } else if !caps.contains(&c) {
            caps.push(c);
        }
    }
    for drop in &opts.cap_drop {
        let c = cap_name(drop);
        if c == "ALL" {
            // Docker: drop ALL, then what --cap-add named is added back.
            caps.retain(|have| opts.cap_add.iter().any(|a| &cap_name(a) == have));
        } else if !known(&c) {
            bail!("invalid --cap-drop {drop:?}: unknown capability {c}");
        } else {
            caps.retain(|have| *have != c);
        }
    }
    Ok(caps)
}

/// The cgroup of container `id` under `parent` (default `/drover`).
pub fn cgroups_path(parent: Option<&str>, id: &str) -> String {
    let parent = parent.unwrap_or("/drover").trim_end_matches('/');
    let parent = if parent.starts_with('/') {
        parent.to_owned()
    } else {
        format!("/{parent}")
    };
    format!("{parent}/{id}")
}

/// Builds the container's `config.json`. `identity` is the resolved `-u`/image user,
/// `lookup_env` gives our environment's value for `-e K` without `=V`.
pub fn build(
    image: &ImageConfig,
    opts: &ContainerOptions,
    identity: &Identity,
    host: &HostFiles<'_>,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Built> {
    // Command: --entrypoint replaces the image's entrypoint and drops its Cmd, as Docker does.
    let (entrypoint, default_cmd) = match &opts.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.clone()], Vec::new()),
        None => (image.entrypoint.clone(), image.cmd.clone()),
    };
    let cmd = if opts.cmd.is_empty() {
        default_cmd
    } else {
        opts.cmd.clone()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        bail!("no command specified: the image has no Entrypoint or Cmd and none was given");
    }

    let hostname = match (&opts.hostname, opts.network) {
        (Some(h), _) => h.clone(),
        (None, Network::Host) => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        (None, Network::None) => host.id.chars().take(12).collect(),
    };

    // Environment: image, then -e; HOSTNAME, PATH, HOME and TERM filled in when absent.
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |k: &str, v: String, env: &mut Vec<(String, String)>| match env
        .iter_mut()
        .find(|(key, _)| key == k)
    {
        Some(slot) => slot.1 = v,
        None => env.push((k.to_owned(), v)),
    };
    set("PATH", DEFAULT_PATH.into(), &mut env);
    set("HOSTNAME", hostname.clone(), &mut env);
    for kv in &image.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(k, v.into(), &mut env);
    }
    for kv in &opts.env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => set(k, v.into(), &mut env),
            Some(_) => bail!("invalid environment variable {kv:?}: empty name"),
            None => {
                if let Some(v) = lookup_env(kv) {
                    set(kv, v, &mut env);
                }
            }
        }
    }
    if opts.tty && !env.iter().any(|(k, _)| k == "TERM") {
        env.push(("TERM".into(), "xterm".into()));
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), identity.home.clone()));
    }

    let cwd = opts
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| image.working_dir.clone());
    let cwd = if cwd.is_empty() { "/".to_owned() } else { cwd };
    if !cwd.starts_with('/') {
        bail!("the working directory {cwd:?} is invalid: it needs to be an absolute path");
    }

    let caps = capabilities(opts, host)?;
    let mut no_new_privs = false;
    let mut seccomp = !opts.privileged;
    for so in &opts.security_opt {
        match so.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                no_new_privs = true
            }
            "no-new-privileges:false" | "no-new-privileges=false" => no_new_privs = false,
            "seccomp=unconfined" | "seccomp:unconfined" => seccomp = false,
            other => bail!(
                "unsupported --security-opt {other:?}: drover supports no-new-privileges and seccomp=unconfined"
            ),
        }
    }

    let mut rlimits = Vec::new();
    for u in &opts.ulimits {
        rlimits.push(parse_ulimit(u)?);
    }

    // Mounts: Docker's defaults, then the container's files, then volumes and tmpfs.
    let sys_opts = if opts.privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev", "relatime"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    let mut files = Vec::new();
    let (hosts, resolv) = match opts.network {
        Network::Host => (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
        Network::None => (
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
            ),
            String::new(),
        ),
    };
    for (name, content) in [
        ("hosts", hosts),
        ("resolv.conf", resolv),
        ("hostname", format!("{hostname}\n")),
    ] {
        let path = host.dir.join(name);
        mounts.push(json!({
            "destination": format!("/etc/{name}"), "type": "bind",
            "source": path, "options": ["rbind", "rprivate"],
        }));
        files.push((path, content));
    }
    for v in &opts.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, m] => (*s, *d, *m),
            _ => bail!("invalid volume {v:?}: use /host/path:/container/path[:ro|rw]"),
        };
        if !src.starts_with('/') {
            bail!(
                "invalid volume {v:?}: named volumes are not supported yet, give an absolute host path"
            );
        }
        if !dst.starts_with('/') {
            bail!("invalid volume {v:?}: the container path must be absolute");
        }
        let mut options = vec!["rbind"];
        match mode {
            "" | "rw" => {}
            "ro" => options.push("ro"),
            other => bail!("invalid volume {v:?}: unknown mode {other:?} (use ro or rw)"),
        }
        options.push("rprivate");
        std::fs::create_dir_all(src)
            .with_context(|| format!("creating the volume's host path {src}"))?;
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": options}));
    }
    for t in &opts.tmpfs {
        let (dst, topts) = t.split_once(':').unwrap_or((t, ""));
        if !dst.starts_with('/') {
            bail!("invalid --tmpfs {t:?}: the path must be absolute");
        }
        let mut options: Vec<&str> = if topts.is_empty() {
            vec!["rw", "noexec", "nosuid", "size=65536k"]
        } else {
            topts.split(',').collect()
        };
        options.retain(|o| !o.is_empty());
        mounts.push(
            json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": options}),
        );
    }

    // The init goes last, so no volume hides it.
    let mut process_args = args.clone();
    if let Some(init) = &opts.init {
        mounts.push(json!({
            "destination": crate::init::CONTAINER_PATH, "type": "bind",
            "source": init, "options": ["rbind", "ro", "nosuid", "nodev", "rprivate"],
        }));
        process_args = [crate::init::CONTAINER_PATH.to_owned(), "--".to_owned()]
            .into_iter()
            .chain(args.iter().cloned())
            .collect();
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if opts.network == Network::None {
        namespaces.push(json!({"type": "network"}));
    }

    let mut resources = serde_json::Map::new();
    resources.insert(
        "devices".into(),
        json!([{"allow": opts.privileged, "access": "rwm"}]),
    );
    if let Some(m) = opts.memory {
        if m < 6 * 1024 * 1024 {
            bail!("invalid --memory: the minimum allowed is 6MB");
        }
        resources.insert("memory".into(), json!({"limit": m}));
    }
    if let Some(c) = opts.cpus {
        let max = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if c <= 0.0 || c > max {
            bail!("invalid --cpus {c}: the range of CPUs is from 0.01 to {max:.2}");
        }
        resources.insert(
            "cpu".into(),
            json!({"quota": (c * 100_000.0).round() as i64, "period": 100_000}),
        );
    }
    if let Some(p) = opts.pids_limit {
        resources.insert("pids".into(), json!({"limit": p}));
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": cgroups_path(opts.cgroup_parent.as_deref(), host.id),
    });
    if !opts.privileged {
        linux["maskedPaths"] = json!([
            "/proc/asound",
            "/proc/acpi",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap"
        ]);
        linux["readonlyPaths"] = json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]);
    }
    if seccomp {
        linux["seccomp"] = (host.seccomp)(&caps);
    }

    let mut annotations = serde_json::Map::new();
    for (k, v) in image.labels.iter().chain(&opts.labels) {
        annotations.insert(k.clone(), Value::String(v.clone()));
    }

    // 1.1.0: nothing here needs a newer spec, and crun 1.8 (Debian bookworm) refuses "1.2.0"
    // ("unknown version specified") when `DROVER_RUNTIME=crun`.
    let spec = json!({
        "ociVersion": "1.1.0",
        "process": {
            "terminal": opts.tty,
            "user": {"uid": identity.uid, "gid": identity.gid, "additionalGids": identity.additional_gids},
            "args": process_args,
            "env": env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits,
            "noNewPrivileges": no_new_privs,
        },
        "root": {"path": "rootfs", "readonly": opts.read_only},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": annotations,
    });
    Ok(Built {
        spec,
        args,
        hostname,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &[&str] = &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    const ALL: &[&str] = &[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_ADMIN",
        "CAP_NET_ADMIN",
    ];

    fn build_with(image: &ImageConfig, opts: &ContainerOptions) -> Result<Built> {
        let tmp = std::env::temp_dir();
        let seccomp = |caps: &[String]| json!({"defaultAction": "SCMP_ACT_ERRNO", "caps": caps});
        let host = HostFiles {
            dir: &tmp,
            id: "0123456789abcdef0123",
            default_caps: DEFAULT,
            all_caps: ALL,
            seccomp: &seccomp,
        };
        let identity = Identity {
            uid: 0,
            gid: 0,
            additional_gids: vec![0],
            home: "/root".into(),
        };
        build(image, opts, &identity, &host, &|k| {
            (k == "FROM_HOST").then(|| "yes".to_owned())
        })
    }

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/docker-entrypoint.sh".into()],
            cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            env: vec!["PATH=/opt/bin:/bin".into(), "A=1".into()],
            working_dir: "/srv".into(),
            ..Default::default()
        }
    }

    #[test]
    fn command_rules_follow_docker() {
        let b = build_with(&image(), &ContainerOptions::default()).unwrap();
        assert_eq!(
            b.args,
            ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
        );
        let opts = ContainerOptions {
            cmd: vec!["sh".into()],
            ..Default::default()
        };
        assert_eq!(
            build_with(&image(), &opts).unwrap().args,
            ["/docker-entrypoint.sh", "sh"]
        );
        // --entrypoint drops the image's Cmd too.
        let opts = ContainerOptions {
            entrypoint: Some("/bin/echo".into()),
            ..Default::default()
        };
        assert_eq!(build_with(&image(), &opts).unwrap().args, ["/bin/echo"]);
        let err = build_with(&ImageConfig::default(), &ContainerOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("no command specified"), "{err}");
    }

    #[test]
    fn init_runs_in_front_of_the_command_from_a_read_only_bind() {
        let opts = ContainerOptions {
            init: Some("/usr/bin/tini-static".into()),
            volumes: vec![format!("{}:/sbin", std::env::temp_dir().display())],
            ..Default::default()
        };
        let b = build_with(&image(), &opts).unwrap();
        assert_eq!(
            b.spec["process"]["args"],
            json!([
                "/sbin/docker-init",
                "--",
                "/docker-entrypoint.sh",
                "nginx",
                "-g",
                "daemon off;"
            ])
        );
        // What ps and inspect show stays the user's command, as in Docker.
        assert_eq!(
            b.args,
            ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
        );
        let mounts = b.spec["mounts"].as_array().unwrap();
        let last = mounts.last().unwrap();
        assert_eq!(last["destination"], "/sbin/docker-init");
        assert_eq!(last["source"], "/usr/bin/tini-static");
        assert!(last["options"].as_array().unwrap().contains(&json!("ro")));
        let plain = build_with(&image(), &ContainerOptions::default()).unwrap();
        assert_eq!(plain.spec["process"]["args"], json!(plain.args));
        assert!(
            !plain.spec["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["destination"] == "/sbin/docker-init")
        );
    }

    #[test]
    fn environment_layers_image_flags_and_defaults() {
        let opts = ContainerOptions {
            env: vec!["A=2".into(), "FROM_HOST".into(), "MISSING".into()],
            tty: true,
            ..Default::default()
        };
        let b = build_with(&image(), &opts).unwrap();
        let env: Vec<&str> = b.spec["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            env,
            [
                "PATH=/opt/bin:/bin",
                "HOSTNAME=0123456789ab",
                "A=2",
                "FROM_HOST=yes",
                "TERM=xterm",
                "HOME=/root"
            ]
        );
        assert_eq!(b.spec["process"]["cwd"], "/srv");
        assert_eq!(b.hostname, "0123456789ab");
    }

    #[test]
    fn capabilities_add_drop_all_and_unknown() {
        let opts = ContainerOptions {
            cap_add: vec!["net_admin".into()],
            cap_drop: vec!["CAP_KILL".into()],
            ..Default::default()
        };
        let b = build_with(&image(), &opts).unwrap();
        assert_eq!(
            b.spec["process"]["capabilities"]["effective"],
            json!(["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"])
        );
        assert_eq!(
            b.spec["linux"]["seccomp"]["caps"], b.spec["process"]["capabilities"]["effective"],
            "the seccomp profile is resolved for the final capability set"
        );
        let opts = ContainerOptions {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["CHOWN".into()],
            ..Default::default()
        };
        let b = build_with(&image(), &opts).unwrap();
        assert_eq!(
            b.spec["process"]["capabilities"]["bounding"],
            json!(["CAP_CHOWN"])
        );
        let opts = ContainerOptions {
            cap_add: vec!["CAP_FLY".into()],
            ..Default::default()
        };
        let err = build_with(&image(), &opts).err().unwrap().to_string();
        assert!(err.contains("unknown capability CAP_FLY"), "{err}");
    }

    #[test]
    fn privileged_drops_confinement() {
        let opts = ContainerOptions {
            privileged: true,
            ..Default::default()
        };
        let b = build_with(&image(), &opts).unwrap();
        assert_eq!(b.spec["process"]["capabilities"]["effective"], json!(ALL));
        assert!(b.spec["linux"].get("seccomp").is_none());
        assert!(b.spec["linux"].get("maskedPaths").is_none());
        assert_eq!(b.spec["linux"]["resources"]["devices"][0]["allow"], true);
        let normal = build_with(&image(), &ContainerOptions::default()).unwrap();
        assert_eq!(
            normal.spec["linux"]["resources"]["devices"][0]["allow"],
            false
        );
        assert!(
            normal.spec["linux"]["maskedPaths"]
                .as_array()
                .unwrap()
                .len()
                > 5
        );
    }

    #[test]
    fn resources_volumes_and_limits() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = ContainerOptions {
            memory: Some(parse_bytes("512m").unwrap()),
            cpus: Some(0.5),
            pids_limit: Some(64),
            volumes: vec![format!("{}:/data:ro", tmp.path().display())],
            tmpfs: vec!["/run:size=1m".into()],
            ulimits: vec!["nofile=1024:4096".into()],
            read_only: true,
            ..Default::default()
        };
        let b = build_with(&image(), &opts).unwrap();
        let r = &b.spec["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 512 * 1024 * 1024);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["pids"]["limit"], 64);
        assert_eq!(b.spec["root"]["readonly"], true);
        assert_eq!(
            b.spec["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}])
        );
        let mounts = b.spec["mounts"].as_array().unwrap();
        let data = mounts.iter().find(|m| m["destination"] == "/data").unwrap();
        assert_eq!(data["options"], json!(["rbind", "ro", "rprivate"]));
        let run = mounts.iter().find(|m| m["destination"] == "/run").unwrap();
        assert_eq!(run["options"], json!(["size=1m"]));
    }

    #[test]
    fn bad_flags_are_clear_errors() {
        for (opts, want) in [
            (
                ContainerOptions {
                    volumes: vec!["data:/data".into()],
                    ..Default::default()
                },
                "named volumes are not supported",
            ),
            (
                ContainerOptions {
                    ulimits: vec!["nofile=10:5".into()],
                    ..Default::default()
                },
                "exceeds hard limit",
            ),
            (
                ContainerOptions {
                    memory: Some(1024),
                    ..Default::default()
                },
                "minimum allowed is 6MB",
            ),
            (
                ContainerOptions {
                    workdir: Some("relative".into()),
                    ..Default::default()
                },
                "needs to be an absolute path",
            ),
            (
                ContainerOptions {
                    security_opt: vec!["apparmor=x".into()],
                    ..Default::default()
                },
                "unsupported --security-opt",
            ),
        ] {
            let err = build_with(&image(), &opts).err().unwrap().to_string();
            assert!(err.contains(want), "{err}");
        }
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100k").unwrap(), 100 << 10);
        assert_eq!(parse_bytes("2048").unwrap(), 2048);
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn image_config_is_read_with_healthcheck_defaults() {
        let cfg = json!({"config": {
            "Entrypoint": ["/e"], "Cmd": null, "Env": ["A=1"], "User": "www",
            "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT",
            "Healthcheck": {"Test": ["CMD-SHELL", "wget -q -O- localhost/healthz"], "Interval": 5_000_000_000u64}
        }});
        let c = ImageConfig::from_json(&cfg).unwrap();
        assert_eq!(c.entrypoint, ["/e"]);
        assert!(c.cmd.is_empty());
        assert_eq!(c.exposed_ports, ["80/tcp"]);
        let h = c.healthcheck.unwrap();
        assert_eq!((h.interval_secs, h.timeout_secs, h.retries), (5, 30, 3));
        let none = json!({"config": {"Healthcheck": {"Test": ["NONE"]}}});
        assert!(ImageConfig::from_json(&none).unwrap().healthcheck.is_none());
        let bad = json!({"config": {"Cmd": "sh"}});
        let err = ImageConfig::from_json(&bad).unwrap_err().to_string();
        assert!(err.contains("config.Cmd"), "{err}");
    }
}
