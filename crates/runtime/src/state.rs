//! The state directory: `<root>/<id>/state.json` plus the exec fifo, one directory per container.
//!
//! `state.json` is written atomically (temporary file + rename). It records the container's pid
//! together with that pid's start time from `/proc/PID/stat`, so a pid reused by an unrelated
//! process after the container died reads as `stopped`, never as the container. The status is
//! derived on every read, the way runc does: no pid yet → `creating`; the process is gone (or a
//! zombie, or a different process) → `stopped`; the exec fifo still exists → `created`; else
//! `running`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The default `--root`.
pub const DEFAULT_ROOT: &str = "/run/drover-runtime";
/// The file name of the exec fifo inside a container's state directory.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

/// A container's status as `runc state` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is in progress.
    Creating,
    /// `create` finished; the process waits on the exec fifo for `start`.
    Created,
    /// The user's program runs.
    Running,
    /// The container's process has exited.
    Stopped,
}

impl Status {
    /// The lower-case name runc uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

/// What `state.json` holds (our own record; [`Record::to_oci`] gives runc's JSON shape).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The container id.
    pub id: String,
    /// The container's init pid in the runtime's pid namespace.
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat` when the container was created.
    pub pid_start: u64,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The rootfs directory.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 in UTC.
    pub created: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup (with what the runtime created, so `delete` removes only that).
    #[serde(default)]
    pub cgroup: Option<crate::cgroups::Cgroup>,
    /// The uid of the user who created the container.
    pub owner_uid: u32,
    /// Namespaces the container has (runtime-spec type names: `pid`, `mount`, …).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

impl Record {
    /// runc's `state` JSON for this container with the given status.
    pub fn to_oci(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": "1.2.0",
            "id": self.id,
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": owner_name(self.owner_uid),
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v
    }
}

/// The runtime's state root (`--root`).
#[derive(Clone, Debug)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// A root at `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The state directory of container `id` (not checked for existence).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Makes the state directory of a new container; an existing one is runc's duplicate error.
    pub fn create_container_dir(&self, id: &str) -> anyhow::Result<PathBuf> {
        validate_id(id)?;
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.dir)
            .with_context(|| format!("creating state root {}", self.dir.display()))?;
        let dir = self.container_dir(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container with id exists: {id}")
            }
            Err(e) => Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }

    /// Writes `state.json` atomically.
    pub fn save(&self, rec: &Record) -> anyhow::Result<()> {
        let dir = self.container_dir(&rec.id);
        let tmp = dir.join(".state.json.tmp");
        let body = serde_json::to_vec(rec)?;
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&body)?;
        drop(f);
        std::fs::rename(&tmp, dir.join(STATE_FILE))
            .with_context(|| format!("renaming {} into place", tmp.display()))?;
        Ok(())
    }

    /// Loads container `id`: its record (None while `creating`) and its current status.
    pub fn load(&self, id: &str) -> anyhow::Result<(Option<Record>, Status)> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        let body = match std::fs::read(dir.join(STATE_FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if dir.is_dir() {
                    return Ok((None, Status::Creating));
                }
                bail!("container \"{id}\" does not exist");
            }
            Err(e) => return Err(e).with_context(|| format!("reading state of {id}")),
        };
        let rec: Record = serde_json::from_slice(&body)
            .with_context(|| format!("corrupt state file {}", dir.join(STATE_FILE).display()))?;
        let status = derive_status(&rec, &dir);
        Ok((Some(rec), status))
    }

    /// Loads a container that finished `create` (an error while it is still `creating`).
    pub fn load_record(&self, id: &str) -> anyhow::Result<(Record, Status)> {
        match self.load(id)? {
            (Some(r), s) => Ok((r, s)),
            (None, _) => bail!("container {id} is still being created"),
        }
    }

    /// Removes a container's state directory.
    pub fn remove(&self, id: &str) -> anyhow::Result<()> {
        let dir = self.container_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
        }
    }

    /// The ids of all containers under the root, sorted.
    pub fn list(&self) -> anyhow::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.dir.display())),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn derive_status(rec: &Record, dir: &Path) -> Status {
    match proc_start_time(rec.pid) {
        Some((start, zombie)) if start == rec.pid_start && !zombie => {
            if dir.join(EXEC_FIFO).exists() {
                Status::Created
            } else {
                Status::Running
            }
        }
        _ => Status::Stopped,
    }
}

/// Whether `rec`'s process is still the container's process (alive, not a zombie, same start).
pub fn is_alive(rec: &Record) -> bool {
    matches!(proc_start_time(rec.pid), Some((s, false)) if s == rec.pid_start)
}

/// A container id is valid like runc's: letters, digits, `_`, `+`, `-`, `.`; not `.` or `..`.
pub fn validate_id(id: &str) -> anyhow::Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.');
    if id.is_empty() || id == "." || id == ".." || id.len() > 1024 || !id.chars().all(ok_char) {
        bail!("invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.' only");
    }
    Ok(())
}

/// The start time (field 22 of `/proc/PID/stat`) and whether the process is a zombie or dead.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<(u64, bool)> {
    // The command name (field 2) may contain spaces and parentheses: fields resume after the
    // last ')'. Field 3 is the state, field 22 the start time.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Ok::<_, ()>((start, state == "Z" || state == "X")).ok()
}

/// `SystemTime` as RFC 3339 in UTC with nanoseconds, like Go's `time.RFC3339Nano`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

// Howard Hinnant's days-to-civil algorithm (public domain description).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn owner_name(uid: u32) -> String {
    // runc reports the user name; fall back to the number when /etc/passwd has no entry.
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let mut f = line.split(':');
            let (Some(name), _, Some(u)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if u.parse() == Ok(uid) {
                return name.to_string();
            }
        }
    }
    uid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, pid: i32, start: u64) -> Record {
        Record {
            id: id.into(),
            pid,
            pid_start: start,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: rfc3339(SystemTime::now()),
            annotations: HashMap::new(),
            cgroup: None,
            owner_uid: 0,
            namespaces: vec![],
        }
    }

    #[test]
    fn ids_are_validated_like_runc() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "abc-1.2_3+4", "..a"] {
            validate_id(good).unwrap();
        }
    }

    #[test]
    fn duplicate_id_is_runcs_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path().join("root"));
        root.create_container_dir("c1").unwrap();
        let e = root.create_container_dir("c1").unwrap_err().to_string();
        assert_eq!(e, "container with id exists: c1");
    }

    #[test]
    fn status_follows_the_process_and_the_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let cdir = root.create_container_dir("c").unwrap();
        assert_eq!(root.load("c").unwrap().1, Status::Creating);
        let me = std::process::id() as i32;
        let (start, _) = proc_start_time(me).unwrap();
        root.save(&record("c", me, start)).unwrap();
        assert_eq!(root.load("c").unwrap().1, Status::Running);
        std::fs::write(cdir.join(EXEC_FIFO), b"").unwrap();
        assert_eq!(root.load("c").unwrap().1, Status::Created);
        // Negative control: the same pid with another start time is a reused pid → stopped.
        root.save(&record("c", me, start + 1)).unwrap();
        assert_eq!(root.load("c").unwrap().1, Status::Stopped);
        assert_eq!(root.list().unwrap(), vec!["c".to_string()]);
        root.remove("c").unwrap();
        assert!(
            root.load("c")
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let stat = "42 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19";
        assert_eq!(parse_stat(stat), Some((777, false)));
        let z = "42 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 5 19";
        assert_eq!(parse_stat(z), Some((5, true)));
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = UNIX_EPOCH + std::time::Duration::new(951_782_400 + 3661, 5);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01.000000005Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }
}
