//! Cgroups for containers on v1, v2 and hybrid hosts.
//!
//! The model: [`detect`] reads the host's [`CgroupLayout`]; [`Cgroup::create`] (in the parent,
//! before `clone`) turns the spec's `cgroupsPath` into one directory per hierarchy, creates what
//! is missing and applies `linux.resources`; [`Cgroup::add_pid`] moves the container's init into
//! every directory. A `Cgroup` is `Serialize` so the state file remembers which directories *we*
//! created: [`Cgroup::destroy`] removes only those, from the leaf up.
//!
//! Where a resource goes: each controller is looked up first among the v1 hierarchies, then
//! among the unified root's controllers. On a hybrid host that puts memory, cpu, pids… on v1 and,
//! on this kind of machine, `hugetlb` on the unified mount; the container also joins the unified
//! hierarchy's matching path, as runc does. Nothing here runs in the container's child: all of
//! it is parent-side work on cgroupfs files.

mod detect;
mod device_bpf;
mod devices;
mod resources;
mod stats;

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use detect::{CgroupLayout, LayoutKind, Unified, V1Hierarchy, detect, detect_at};
pub use device_bpf::attach_device_filter;
pub use devices::{allow_spec_devices, default_allowed_devices};
pub use resources::{Write, cpu_shares_to_weight, plan_resources};
pub use stats::Stats;

/// Errors of cgroup detection, creation and control. Each names the file or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A file could not be read, written, created or removed.
    #[error("cgroups: cannot {op} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `mkdir`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A value could not be written to a cgroup file.
    #[error("cgroups: cannot write {value:?} to {path}: {source}")]
    WriteValue {
        /// The cgroup file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of `/proc/self/mountinfo` or `/proc/self/cgroup` did not parse.
    #[error("cgroups: cannot parse {path} line {line}: {text:?}")]
    Mountinfo {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// Neither cgroup v1 nor cgroup2 is mounted.
    #[error(
        "cgroups: no cgroup filesystem is mounted (nothing of type cgroup or cgroup2 in {mountinfo})"
    )]
    NoCgroupFs {
        /// The mountinfo file read.
        mountinfo: PathBuf,
    },
    /// `cgroupsPath` is not usable.
    #[error("cgroups: linux.cgroupsPath {path:?}: {reason}")]
    BadPath {
        /// The path from the spec.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The spec asks for something this host or this runtime cannot do.
    #[error("cgroups: {what}")]
    Unsupported {
        /// What was asked and why it cannot be done.
        what: String,
    },
    /// A resource value is out of range or inconsistent.
    #[error("cgroups: linux.resources.{field}: {reason}")]
    BadValue {
        /// The field of `linux.resources`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A cgroup file the resource needs does not exist on this kernel.
    #[error("cgroups: linux.resources.{field} needs {path}, which this kernel does not have")]
    MissingFile {
        /// The field of `linux.resources`.
        field: &'static str,
        /// The missing file.
        path: PathBuf,
    },
    /// A cgroup directory still had processes after the retries of [`Cgroup::destroy`].
    #[error("cgroups: cannot remove {path}: still busy after {waited:?} (processes inside?)")]
    Busy {
        /// The directory.
        path: PathBuf,
        /// How long removal was retried.
        waited: Duration,
    },
}

/// Which hierarchy a directory of a [`Cgroup`] belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hierarchy {
    /// A v1 hierarchy with these controllers (or `name=…`).
    V1(Vec<String>),
    /// The unified hierarchy; the list is the controllers available at its root.
    Unified(Vec<String>),
}

/// One directory of a container's cgroup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    /// Its hierarchy.
    pub hierarchy: Hierarchy,
    /// The mount point of the hierarchy.
    pub mount_point: PathBuf,
    /// The directory itself (under the mount point).
    pub path: PathBuf,
    /// How many trailing path components did not exist and were made by [`Cgroup::create`]
    /// (0: it made none of them, so [`Cgroup::destroy`] leaves the directory alone).
    pub created: usize,
}

impl CgroupDir {
    fn has(&self, controller: &str) -> bool {
        match &self.hierarchy {
            Hierarchy::V1(c) | Hierarchy::Unified(c) => c.iter().any(|x| x == controller),
        }
    }

    fn is_unified(&self) -> bool {
        matches!(self.hierarchy, Hierarchy::Unified(_))
    }
}

/// A container's cgroup: one directory per hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// The host layout kind it was made on.
    pub kind: LayoutKind,
    /// The directories, v1 hierarchies first, then the unified one.
    pub dirs: Vec<CgroupDir>,
}

/// How long [`Cgroup::destroy`] retries a busy directory while its tasks exit.
const DESTROY_RETRY: Duration = Duration::from_secs(2);

impl Cgroup {
    /// The directories `cgroups_path` names on this layout, without touching the filesystem.
    ///
    /// An absolute path is taken under each hierarchy's mount point; a relative one under this
    /// process's own cgroup in each hierarchy. systemd's `slice:prefix:name` form is refused.
    pub fn resolve(layout: &CgroupLayout, cgroups_path: &str) -> Result<Self, CgroupError> {
        let rel = check_path(cgroups_path)?;
        let absolute = cgroups_path.starts_with('/');
        let mut dirs = Vec::new();
        for h in &layout.v1 {
            let base = if absolute {
                h.mount_point.clone()
            } else {
                h.mount_point.join(&h.own_path)
            };
            dirs.push(CgroupDir {
                hierarchy: Hierarchy::V1(h.controllers.clone()),
                mount_point: h.mount_point.clone(),
                path: base.join(&rel),
                created: 0,
            });
        }
        if let Some(u) = &layout.unified {
            let base = if absolute {
                u.mount_point.clone()
            } else {
                u.mount_point.join(&u.own_path)
            };
            dirs.push(CgroupDir {
                hierarchy: Hierarchy::Unified(u.controllers.clone()),
                mount_point: u.mount_point.clone(),
                path: base.join(&rel),
                created: 0,
            });
        }
        Ok(Self {
            kind: layout.kind,
            dirs,
        })
    }

    /// Opens an existing container cgroup (for `ps`, `kill --all`, stats). Destroying an opened
    /// cgroup removes nothing: only the `Cgroup` returned by [`Cgroup::create`] (or its
    /// serialized copy in the state file) knows what it created.
    pub fn open(layout: &CgroupLayout, cgroups_path: &str) -> Result<Self, CgroupError> {
        let cg = Self::resolve(layout, cgroups_path)?;
        if let Some(d) = cg.dirs.iter().find(|d| !d.path.is_dir()) {
            return Err(CgroupError::Io {
                op: "open",
                path: d.path.clone(),
                source: std::io::Error::from(ErrorKind::NotFound),
            });
        }
        Ok(cg)
    }

    /// Creates the directories of `cgroups_path` in every hierarchy and applies `resources`
    /// (including the v1 device rules: deny all, the spec's rules, then runc's default allow
    /// list). On failure, whatever was created is removed again.
    pub fn create(
        layout: &CgroupLayout,
        cgroups_path: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Self, CgroupError> {
        let mut cg = Self::resolve(layout, cgroups_path)?;
        let empty = LinuxResources::default();
        let resources = resources.unwrap_or(&empty);
        let writes = plan_resources(&cg, resources, true)?;
        let result = cg
            .make_dirs(&writes)
            .and_then(|()| cg.apply(&writes))
            .and_then(|()| cg.device_program(resources));
        if let Err(e) = result {
            let _ = cg.destroy();
            return Err(e);
        }
        Ok(cg)
    }

    /// On a host without the v1 devices controller, the device rules become a BPF program on
    /// the unified directory.
    fn device_program(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if self
            .dirs
            .iter()
            .any(|d| !d.is_unified() && d.has("devices"))
        {
            return Ok(());
        }
        let Some(u) = self.dirs.iter().find(|d| d.is_unified()) else {
            return Ok(());
        };
        let rules = resources.devices().clone().unwrap_or_default();
        attach_device_filter(&u.path, &rules)
    }

    /// Applies new resources to a running container (`runc update`). Device rules are left as
    /// they are.
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let writes = plan_resources(self, resources, false)?;
        self.apply(&writes)
    }

    fn make_dirs(&mut self, writes: &[Write]) -> Result<(), CgroupError> {
        let mut needed_unified: Vec<String> = Vec::new();
        for w in writes {
            if self.dirs[w.dir].is_unified()
                && let Some(c) = w.file.split('.').next()
                && c != "cgroup"
                && !needed_unified.iter().any(|x| x == c)
            {
                needed_unified.push(c.to_string());
            }
        }
        let kind = self.kind;
        for d in &mut self.dirs {
            let mut missing = Vec::new();
            let mut p = d.path.as_path();
            while !p.exists() {
                missing.push(p.to_path_buf());
                match p.parent() {
                    Some(parent) if parent.starts_with(&d.mount_point) => p = parent,
                    _ => break,
                }
            }
            missing.reverse();
            // v2 controllers must be enabled in every ancestor's subtree_control. On a pure v2
            // host enable all the root offers (runc, crun); on a hybrid host only what the spec
            // needs there, to leave the host's unified tree as it was.
            let enable: Vec<String> = match (&d.hierarchy, kind) {
                (Hierarchy::Unified(all), LayoutKind::V2) => all.clone(),
                (Hierarchy::Unified(_), _) => needed_unified.clone(),
                (Hierarchy::V1(_), _) => Vec::new(),
            };
            if !enable.is_empty() {
                let first_new = missing.first().unwrap_or(&d.path);
                let mut dir = d.mount_point.clone();
                let rel = first_new
                    .parent()
                    .and_then(|p| p.strip_prefix(&d.mount_point).ok());
                enable_in(&dir, &enable)?;
                for c in rel.into_iter().flat_map(Path::components) {
                    dir.push(c);
                    enable_in(&dir, &enable)?;
                }
            }
            // Counted before the mkdirs: a create that fails half-way still lets destroy()
            // remove the upper directories it made (missing lower ones are skipped there).
            d.created = missing.len();
            for (i, m) in missing.iter().enumerate() {
                std::fs::create_dir(m).map_err(|source| CgroupError::Io {
                    op: "mkdir",
                    path: m.clone(),
                    source,
                })?;
                if d.has("cpuset") && !d.is_unified() {
                    copy_cpuset_from_parent(m)?;
                }
                if i + 1 < missing.len() && !enable.is_empty() {
                    enable_in(m, &enable)?;
                }
            }
        }
        Ok(())
    }

    fn apply(&self, writes: &[Write]) -> Result<(), CgroupError> {
        for w in writes {
            let dir = &self.dirs[w.dir].path;
            let mut path = dir.join(&w.file);
            let mut value = w.value.as_str();
            if !path.exists()
                && let Some((file, v)) = &w.fallback
                && dir.join(file).exists()
            {
                path = dir.join(file);
                value = v;
            }
            if !path.exists() {
                return Err(CgroupError::MissingFile {
                    field: w.field,
                    path,
                });
            }
            match write_file(&path, value) {
                Err(_) if w.may_fail => {}
                r => r?,
            }
        }
        Ok(())
    }

    /// Moves `pid` (all its threads) into every directory of the cgroup.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        for d in &self.dirs {
            write_file(&d.path.join("cgroup.procs"), &value)?;
        }
        Ok(())
    }

    /// The processes in the cgroup, including sub-cgroups the container made (the union over
    /// its directories), sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for d in &self.dirs {
            for dir in subtree(&d.path)? {
                read_procs(&dir.join("cgroup.procs"), &mut pids)?;
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Sends `signal` to every process in the cgroup. The freezer (v1 `freezer.state`, v2
    /// `cgroup.freeze`) holds the processes still while they are signalled, so a fork racing
    /// the kill cannot escape, as runc does for `kill --all`.
    pub fn kill_all(&self, signal: i32) -> Result<(), CgroupError> {
        let freezer = self.freezer();
        if let Some((file, frozen, _)) = &freezer {
            write_file(file, frozen)?;
            wait_frozen(file);
        }
        let result = self.signal_each(signal);
        if let Some((file, _, thawed)) = &freezer {
            write_file(file, thawed)?;
        }
        result
    }

    fn signal_each(&self, signal: i32) -> Result<(), CgroupError> {
        let sig = rustix::process::Signal::from_named_raw(signal).ok_or_else(|| {
            CgroupError::Unsupported {
                what: format!("kill_all: {signal} is not a signal number"),
            }
        })?;
        for pid in self.pids()? {
            let Some(p) = rustix::process::Pid::from_raw(pid) else {
                continue;
            };
            match rustix::process::kill_process(p, sig) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) => {
                    return Err(CgroupError::Io {
                        op: "kill",
                        path: PathBuf::from(format!("/proc/{pid}")),
                        source: e.into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The freezer file and its frozen/thawed values, if this cgroup has a freezer.
    fn freezer(&self) -> Option<(PathBuf, &'static str, &'static str)> {
        for d in &self.dirs {
            if !d.is_unified() && d.has("freezer") {
                return Some((d.path.join("freezer.state"), "FROZEN", "THAWED"));
            }
        }
        let u = self.dirs.iter().find(|d| d.is_unified())?;
        let f = u.path.join("cgroup.freeze");
        f.exists().then_some((f, "1", "0"))
    }

    /// Removes the directories this cgroup created, leaf first, each up to the first component
    /// it made. A directory that is still busy (tasks draining) is retried for a short while;
    /// one already gone is fine.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        let mut keep = |r: Result<(), CgroupError>| {
            if let Err(e) = r
                && first_err.is_none()
            {
                first_err = Some(e);
            }
        };
        for d in &self.dirs {
            if d.created == 0 {
                continue;
            }
            // Sub-cgroups the container made inside ours go first, deepest first.
            match subtree(&d.path) {
                Ok(dirs) => dirs.iter().skip(1).rev().for_each(|s| keep(rmdir_retry(s))),
                Err(CgroupError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
                Err(e) => keep(Err(e)),
            }
            let mut p = d.path.clone();
            for _ in 0..d.created {
                keep(rmdir_retry(&p));
                if !p.pop() {
                    break;
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// `dir` and every directory below it, parents before children.
fn subtree(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let entries = std::fs::read_dir(&out[i]).map_err(|source| CgroupError::Io {
            op: "list",
            path: out[i].clone(),
            source,
        })?;
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path());
            }
        }
        i += 1;
    }
    Ok(out)
}

fn read_procs(path: &Path, pids: &mut Vec<i32>) -> Result<(), CgroupError> {
    let text = read_file(path)?;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let pid = line.trim().parse().map_err(|_| CgroupError::Io {
            op: "parse",
            path: path.to_path_buf(),
            source: std::io::Error::new(ErrorKind::InvalidData, line.to_string()),
        })?;
        pids.push(pid);
    }
    Ok(())
}

/// The name of one of this module's child step codes (see [`crate::sys`]). Cgroups do all their
/// work in the parent, so no child step uses the 300–399 range yet.
pub fn step_name(_step: u32) -> &'static str {
    "cgroups step"
}

/// Waits (briefly) until a v1 freezer reports `FROZEN` rather than `FREEZING`; v2's
/// `cgroup.freeze` takes effect for the purpose of signalling as soon as it is written.
fn wait_frozen(file: &Path) {
    if !file.ends_with("freezer.state") {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        match std::fs::read_to_string(file) {
            Ok(s) if s.trim() == "FREEZING" => std::thread::sleep(Duration::from_millis(1)),
            _ => return,
        }
    }
}

/// Checks `cgroupsPath` and returns it relative (no leading `/`).
fn check_path(p: &str) -> Result<PathBuf, CgroupError> {
    let bad = |reason| CgroupError::BadPath {
        path: p.to_string(),
        reason,
    };
    if !p.starts_with('/') && p.split(':').count() == 3 {
        return Err(bad(
            "the systemd form slice:prefix:name is not supported (drover manages cgroupfs directly; give a path such as /drover/<id>)",
        ));
    }
    let rel = Path::new(p.trim_start_matches('/'));
    if rel.as_os_str().is_empty() {
        return Err(bad(
            "empty or the root cgroup; a container needs its own cgroup",
        ));
    }
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(bad("must not contain `.` or `..` components"));
    }
    Ok(rel.to_path_buf())
}

/// Enables `controllers` for the children of `dir` (its `cgroup.subtree_control`), writing only
/// those not enabled yet. A controller `dir` itself does not have (its `cgroup.controllers`) is
/// left out, as runc does; a resource that needs it then fails naming its missing file.
fn enable_in(dir: &Path, controllers: &[String]) -> Result<(), CgroupError> {
    let available = read_file(&dir.join("cgroup.controllers"))?;
    let f = dir.join("cgroup.subtree_control");
    let current = read_file(&f)?;
    let has = |text: &str, c: &str| text.split_whitespace().any(|x| x == c);
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| has(&available, c) && !has(&current, c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_file(&f, &missing.join(" "))
}

/// A new v1 cpuset cgroup starts with empty `cpus` and `mems`, and a task cannot join it until
/// both are set: copy them from the parent (runc does the same).
fn copy_cpuset_from_parent(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let mine = dir.join(f);
        if read_file(&mine)?.trim().is_empty() {
            let v = read_file(&parent.join(f))?;
            write_file(&mine, v.trim())?;
        }
    }
    Ok(())
}

fn rmdir_retry(p: &Path) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(p) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if start.elapsed() >= DESTROY_RETRY {
                    return Err(CgroupError::Busy {
                        path: p.to_path_buf(),
                        waited: start.elapsed(),
                    });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    op: "rmdir",
                    path: p.to_path_buf(),
                    source,
                });
            }
        }
    }
}

pub(crate) fn read_file(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    // cgroupfs wants one write(2) per value: std::fs::write does exactly one for short values.
    std::fs::write(path, value).map_err(|source| CgroupError::WriteValue {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests;
