//! Where a container lives on disk, and the two files that describe it.
//!
//! ```text
//! <data-dir>/containers/<id>/
//!   container.json   Record: what the user asked for (written once by `run`)
//!   status.json      Status: what the supervisor observed (rewritten atomically)
//!   bundle/          the OCI bundle: config.json and the rootfs mount point
//!   upper/ work/     the container's writable overlay layer
//!   hosts resolv.conf hostname
//!   ctr.log ctr.log.1 …  CRI-format logs
//!   attach.sock      the supervisor's socket
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The directories of one engine instance (one data dir).
#[derive(Clone, Debug)]
pub struct Layout {
    /// `--data-dir`.
    pub data_dir: PathBuf,
}

impl Layout {
    /// The layout under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }

    /// `<data-dir>/containers`.
    pub fn containers(&self) -> PathBuf {
        self.data_dir.join("containers")
    }

    /// The runtime's state root (`drover runtime --root`).
    pub fn runtime_root(&self) -> PathBuf {
        self.data_dir.join("runtime")
    }

    /// The image store.
    pub fn images(&self) -> PathBuf {
        self.data_dir.join("images")
    }

    /// One container's directory.
    pub fn container(&self, id: &str) -> ContainerDir {
        ContainerDir(self.containers().join(id))
    }

    /// Every container's record, oldest first.
    pub fn list(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(self.containers()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).context("reading the containers directory"),
        };
        for entry in entries {
            let entry = entry?;
            let dir = ContainerDir(entry.path());
            // A directory without a record is a `run` that has not finished writing it yet.
            if let Ok(record) = dir.record() {
                out.push(record);
            }
        }
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(out)
    }

    /// Finds a container by name, full id or unique id prefix, as Docker does.
    pub fn find(&self, key: &str) -> Result<Record> {
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.name == key || r.id == key) {
            return Ok(r.clone());
        }
        let matches: Vec<&Record> = all.iter().filter(|r| r.id.starts_with(key)).collect();
        match matches.as_slice() {
            [one] if !key.is_empty() => Ok((*one).clone()),
            [] | [_] => bail!("No such container: {key}"),
            _ => bail!("multiple containers match the id prefix {key:?}; give more of the id"),
        }
    }
}

/// One container's directory.
#[derive(Clone, Debug)]
pub struct ContainerDir(pub PathBuf);

impl ContainerDir {
    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// `container.json`.
    pub fn record_path(&self) -> PathBuf {
        self.0.join("container.json")
    }
    /// `status.json`.
    pub fn status_path(&self) -> PathBuf {
        self.0.join("status.json")
    }
    /// The OCI bundle directory.
    pub fn bundle(&self) -> PathBuf {
        self.0.join("bundle")
    }
    /// The rootfs mount point inside the bundle.
    pub fn rootfs(&self) -> PathBuf {
        self.0.join("bundle").join("rootfs")
    }
    /// The current log file; rotated files carry `.1`, `.2`, … (`.1` is the newest).
    pub fn log_path(&self) -> PathBuf {
        self.0.join("ctr.log")
    }
    /// The supervisor's attach socket.
    pub fn attach_socket(&self) -> PathBuf {
        self.0.join("attach.sock")
    }

    /// Reads `container.json`.
    pub fn record(&self) -> Result<Record> {
        let text = fs::read(self.record_path())
            .with_context(|| format!("reading {}", self.record_path().display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("parsing {}", self.record_path().display()))
    }

    /// Reads `status.json`; a container whose supervisor has not written one yet is `created`.
    pub fn status(&self) -> Result<Status> {
        match fs::read(self.status_path()) {
            Ok(text) => serde_json::from_slice(&text)
                .with_context(|| format!("parsing {}", self.status_path().display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Status::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.status_path().display())),
        }
    }

    /// Writes `status.json` atomically (temp file, fsync, rename).
    pub fn write_status(&self, status: &Status) -> Result<()> {
        write_atomic(&self.status_path(), &serde_json::to_vec_pretty(status)?)
    }
}

/// Writes `bytes` to `path` so readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
    Ok(())
}

/// What the user asked for: written once by `run`, read by everyone after.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// `--name`, or a generated one.
    pub name: String,
    /// The image reference as given.
    pub image: String,
    /// The image's id (config digest), when it came from the image store.
    #[serde(default)]
    pub image_id: String,
    /// Unix seconds.
    pub created: i64,
    /// The command line the container runs (entrypoint + cmd), for `ps` and `inspect`.
    pub command: Vec<String>,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// The signal `stop` sends first (image StopSignal or SIGTERM).
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL.
    pub stop_timeout: u64,
    /// Whether stdin stays open for attach clients (`-i`).
    pub open_stdin: bool,
    /// Whether the container has a terminal (`-t`).
    pub tty: bool,
    /// Ordered overlay lower directories (topmost first); empty when `rootfs_dir` is used.
    pub lower_dirs: Vec<PathBuf>,
    /// A plain directory used as the rootfs instead of an image (`--rootfs`).
    pub rootfs_dir: Option<PathBuf>,
    /// `--label`.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The image's healthcheck (or `--health-*` flags), if any.
    pub healthcheck: Option<Healthcheck>,
    /// `--log-max-size` in bytes and the number of rotated files kept.
    pub log_max_size: u64,
    /// Rotated log files kept.
    pub log_max_files: u32,
    /// The container's cgroup (`--cgroup-parent` + id).
    pub cgroups_path: String,
    /// The container gets a network namespace of its own (`--network none`): the supervisor
    /// brings its `lo` up.
    #[serde(default)]
    pub own_netns: bool,
    /// `--init`: the host's init binary, mounted at `/sbin/docker-init` as PID 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
}

/// `--restart`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart.
    #[default]
    No,
    /// Restart whatever the exit code, unless stopped by the user.
    Always,
    /// Restart after a non-zero exit, at most `max` times (0 = no limit).
    OnFailure {
        /// Most restarts; 0 means no limit.
        max: u32,
    },
    /// Like `always`, but not after the user stopped it (even across supervisor restarts).
    UnlessStopped,
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "no" => Self::No,
            "always" => Self::Always,
            "unless-stopped" => Self::UnlessStopped,
            "on-failure" => Self::OnFailure { max: 0 },
            other => match other.strip_prefix("on-failure:") {
                Some(n) => Self::OnFailure {
                    max: n
                        .parse()
                        .map_err(|_| format!("invalid restart count {n:?} in {s:?}"))?,
                },
                None => {
                    return Err(format!(
                        "invalid restart policy {s:?}: use no, always, on-failure[:N] or unless-stopped"
                    ));
                }
            },
        })
    }
}

/// A Docker image healthcheck (the `Healthcheck` of the image config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Healthcheck {
    /// `["CMD", args…]` or `["CMD-SHELL", "command"]`.
    pub test: Vec<String>,
    /// Between checks, in seconds.
    pub interval_secs: u64,
    /// Per check, in seconds.
    pub timeout_secs: u64,
    /// Consecutive failures before `unhealthy`.
    pub retries: u32,
    /// Grace period after start, in seconds, during which failures do not count.
    pub start_period_secs: u64,
}

/// What the supervisor observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `created`, `running`, `exited`.
    pub state: State,
    /// Host pid of the container's init while running.
    pub pid: i32,
    /// Host pid of the supervisor.
    pub supervisor_pid: i32,
    /// Unix seconds and nanoseconds of the last start.
    pub started_at: Option<(i64, u32)>,
    /// Unix seconds and nanoseconds of the last exit.
    pub finished_at: Option<(i64, u32)>,
    /// The last exit code (128+signal when killed by a signal).
    pub exit_code: Option<i32>,
    /// The kernel's OOM killer ended the last run.
    pub oom_killed: bool,
    /// How many times the restart policy restarted it.
    pub restart_count: u32,
    /// `drover stop` (or `kill`) ended it: restart policies other than `always` stand down.
    pub stopped_by_user: bool,
    /// An error that kept the container from starting.
    pub error: Option<String>,
    /// `starting`, `healthy` or `unhealthy` when the container has a healthcheck.
    pub health: Option<String>,
    /// Consecutive failed health checks.
    pub health_failures: u32,
}

/// The container's coarse state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Made but never started.
    #[default]
    Created,
    /// The init process runs.
    Running,
    /// Between a restart policy's runs.
    Restarting,
    /// It ran and ended.
    Exited,
}

/// A new random container id: 64 lowercase hex digits, as Docker's.
pub fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A generated name (`adjective_noun`) not used by any container in `taken`.
pub fn generate_name(taken: &[String]) -> String {
    use rand::seq::IndexedRandom;
    const LEFT: &[&str] = &[
        "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nimble", "proud", "quiet", "rapid", "sharp", "tidy", "vivid", "witty", "young", "zesty",
    ];
    const RIGHT: &[&str] = &[
        "badger", "condor", "dingo", "egret", "falcon", "gecko", "heron", "ibis", "jackal",
        "koala", "lemur", "marmot", "newt", "otter", "puffin", "quail", "raven", "stoat", "tapir",
        "walrus",
    ];
    let mut rng = rand::rng();
    loop {
        let name = format!(
            "{}_{}",
            LEFT.choose(&mut rng).unwrap_or(&"drover"),
            RIGHT.choose(&mut rng).unwrap_or(&"container")
        );
        if !taken.contains(&name) {
            return name;
        }
        let numbered = format!("{name}{}", rand::Rng::random_range(&mut rng, 1..1000));
        if !taken.contains(&numbered) {
            return numbered;
        }
    }
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !first_ok || !rest_ok || name.len() < 2 {
        bail!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(())
}

/// Seconds and nanoseconds since the epoch, now.
pub fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_like_docker() {
        assert_eq!("no".parse(), Ok(RestartPolicy::No));
        assert_eq!(
            "on-failure:3".parse(),
            Ok(RestartPolicy::OnFailure { max: 3 })
        );
        assert_eq!(
            "on-failure".parse(),
            Ok(RestartPolicy::OnFailure { max: 0 })
        );
        let err = "sometimes".parse::<RestartPolicy>().unwrap_err();
        assert!(err.contains("invalid restart policy"), "{err}");
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(check_name("web-1.a_b").is_ok());
        assert!(check_name("-web").is_err());
        assert!(check_name("we b").is_err());
        assert!(check_name("a").is_err());
        let name = generate_name(&[]);
        assert!(check_name(&name).is_ok(), "{name}");
    }

    #[test]
    fn find_by_name_id_and_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(tmp.path());
        for (id, name) in [("abc123", "one"), ("abd456", "two")] {
            let dir = layout.container(id);
            fs::create_dir_all(dir.path()).unwrap();
            let record = Record {
                id: id.into(),
                name: name.into(),
                image: "busybox".into(),
                image_id: String::new(),
                created: 1,
                command: vec!["sh".into()],
                auto_remove: false,
                restart: RestartPolicy::No,
                stop_signal: "SIGTERM".into(),
                stop_timeout: 10,
                open_stdin: false,
                tty: false,
                lower_dirs: vec![],
                rootfs_dir: None,
                labels: Default::default(),
                healthcheck: None,
                log_max_size: 1,
                log_max_files: 1,
                cgroups_path: "/drover/x".into(),
                own_netns: true,
                init: None,
            };
            fs::write(dir.record_path(), serde_json::to_vec(&record).unwrap()).unwrap();
        }
        assert_eq!(layout.find("two").unwrap().id, "abd456");
        assert_eq!(layout.find("abc").unwrap().name, "one");
        let err = layout.find("ab").unwrap_err().to_string();
        assert!(err.contains("multiple containers"), "{err}");
        let err = layout.find("zzz").unwrap_err().to_string();
        assert_eq!(err, "No such container: zzz");
    }
}
