//! The container process's own settings: rlimits, `oom_score_adj`, user and groups, umask,
//! capabilities, `no_new_privs` and the working directory.
//!
//! [`prepare`] runs in the parent and turns `process` of the spec into a [`Plan`] of numbers and
//! pre-built C strings; it also reads what the runtime process itself may do (whether it has
//! `CAP_SYS_RESOURCE`, its hard rlimits, its `oom_score_adj`, the kernel's last capability) and
//! clamps the request to that. The child then calls, in this order:
//!
//! 1. [`Plan::apply_privileged`] — rlimits and `oom_score_adj` (still root, after the rootfs);
//! 2. [`Plan::apply_cwd`] — `chdir(process.cwd)`, resolved inside the container's root;
//! 3. [`Plan::apply_identity`] — bounding set, groups, gid, uid (keeping capabilities across the
//!    uid change with `PR_SET_KEEPCAPS`), then effective/permitted/inheritable and ambient sets,
//!    umask and `no_new_privs`. Seccomp is loaded by the caller around it (see `seccomp`).
//!
//! Child-side failures carry step codes 200–299 (see [`step_name`]).

pub mod caps;
pub mod rlimits;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;

use anyhow::{Context as _, bail};
use oci_spec::runtime::Process;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::process::{Gid, Resource, Rlimit, Uid};
use rustix::thread::{CapabilitySet, CapabilitySets};

use crate::sys::ChildError;

pub use caps::{CapSet, DEFAULT_CAPABILITIES, Sets};

const STEP_RLIMIT: u32 = 201;
const STEP_OOM_OPEN: u32 = 202;
const STEP_OOM_WRITE: u32 = 203;
const STEP_BOUNDING: u32 = 210;
const STEP_KEEPCAPS: u32 = 211;
const STEP_SETGROUPS: u32 = 212;
const STEP_SETGID: u32 = 213;
const STEP_SETUID: u32 = 214;
const STEP_CAPSET: u32 = 216;
const STEP_AMBIENT: u32 = 217;
const STEP_NO_NEW_PRIVS: u32 = 218;
const STEP_CWD: u32 = 220;

/// The name of one of this module's child step codes (see [`crate::sys`]).
pub fn step_name(step: u32) -> &'static str {
    match step {
        STEP_RLIMIT => "setrlimit (process.rlimits)",
        STEP_OOM_OPEN => "open /proc/self/oom_score_adj (the container needs /proc mounted)",
        STEP_OOM_WRITE => "write process.oomScoreAdj to /proc/self/oom_score_adj",
        STEP_BOUNDING => "drop a capability from the bounding set",
        STEP_KEEPCAPS => "prctl(PR_SET_KEEPCAPS)",
        STEP_SETGROUPS => "setgroups (process.user.additionalGids)",
        STEP_SETGID => "setresgid (process.user.gid)",
        STEP_SETUID => "setresuid (process.user.uid)",
        STEP_CAPSET => "capset (process.capabilities effective/permitted/inheritable)",
        STEP_AMBIENT => "raise an ambient capability (process.capabilities.ambient)",
        STEP_NO_NEW_PRIVS => "prctl(PR_SET_NO_NEW_PRIVS) (process.noNewPrivileges)",
        STEP_CWD => {
            "chdir to process.cwd (it must exist inside the container's root filesystem and be a \
             directory)"
        }
        _ => "process step",
    }
}

/// What the caller knows about the container that changes how the process is set up.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// The container has its own user namespace: `setgroups` may be denied there, and then an
    /// empty `additionalGids` is not an error.
    pub user_namespace: bool,
}

/// What the runtime process may do, read once in the parent (the child inherits all of it).
#[derive(Clone, Debug)]
pub struct Host {
    /// The runtime has `CAP_SYS_RESOURCE` in its effective set.
    pub cap_sys_resource: bool,
    /// The runtime's `oom_score_adj`.
    pub oom_score_adj: i32,
    /// `/proc/sys/kernel/cap_last_cap`, limited to the table's last capability.
    pub last_cap: u8,
    /// The runtime's hard limit of each resource ([`rlimits::INFINITY`] for unlimited).
    pub hard_limit: fn(Resource) -> u64,
}

impl Host {
    /// Read the running process's capabilities, `oom_score_adj` and the kernel's last capability.
    pub fn detect() -> anyhow::Result<Self> {
        let sets = rustix::thread::capabilities(None).context("reading own capabilities")?;
        let oom = read_trimmed("/proc/self/oom_score_adj")?;
        let oom_score_adj = oom
            .parse()
            .with_context(|| format!("/proc/self/oom_score_adj holds {oom:?}"))?;
        let last = read_trimmed("/proc/sys/kernel/cap_last_cap")?;
        let last_cap: u8 = last
            .parse()
            .with_context(|| format!("/proc/sys/kernel/cap_last_cap holds {last:?}"))?;
        Ok(Self {
            cap_sys_resource: sets.effective.contains(CapabilitySet::SYS_RESOURCE),
            oom_score_adj,
            last_cap: last_cap.min(caps::LAST_KNOWN),
            hard_limit: |r| {
                rustix::process::getrlimit(r)
                    .maximum
                    .unwrap_or(rlimits::INFINITY)
            },
        })
    }
}

fn read_trimmed(path: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_owned())
}

#[derive(Debug)]
struct Limit {
    name: &'static str,
    resource: Resource,
    soft: u64,
    hard: u64,
}

/// The prepared process settings; see the module docs for the order of the `apply_*` calls.
#[derive(Debug)]
pub struct Plan {
    rlimits: Vec<Limit>,
    oom_score_adj: Option<Vec<u8>>,
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    umask: Mode,
    caps: Sets,
    last_cap: u8,
    no_new_privs: bool,
    cwd: CString,
    user_namespace: bool,
    warnings: Vec<String>,
}

/// Prepare `process` of the spec for the child, reading the [`Host`] limits now.
pub fn prepare(process: &Process, opts: &Options) -> anyhow::Result<Plan> {
    prepare_with(process, opts, &Host::detect()?)
}

/// [`prepare`] against given host limits (tests use it to see the clamp).
pub fn prepare_with(process: &Process, opts: &Options, host: &Host) -> anyhow::Result<Plan> {
    let mut warnings = Vec::new();
    let mut limits: Vec<Limit> = Vec::new();
    for r in process.rlimits().iter().flatten() {
        let (name, resource) = rlimits::resource(r.typ());
        if limits.iter().any(|l| l.name == name) {
            bail!("process.rlimits lists {name} twice");
        }
        if r.soft() > r.hard() {
            bail!(
                "process.rlimits {name}: soft limit {} is above hard limit {}",
                r.soft(),
                r.hard()
            );
        }
        let host_hard = (host.hard_limit)(resource);
        let c = rlimits::clamp(r.soft(), r.hard(), host_hard, host.cap_sys_resource);
        if c.lowered {
            warnings.push(format!(
                "{name} {}:{} lowered to {}:{} (the runtime lacks CAP_SYS_RESOURCE and its own \
                 hard limit is {host_hard})",
                r.soft(),
                r.hard(),
                c.soft,
                c.hard
            ));
        }
        limits.push(Limit {
            name,
            resource,
            soft: c.soft,
            hard: c.hard,
        });
    }

    let oom_score_adj = match process.oom_score_adj() {
        None => None,
        Some(v) if !(-1000..=1000).contains(&v) => {
            bail!("process.oomScoreAdj {v} is outside -1000..=1000")
        }
        Some(v) => {
            let (set, lowered) =
                rlimits::clamp_oom_score_adj(v, host.oom_score_adj, host.cap_sys_resource);
            if lowered {
                warnings.push(format!(
                    "process.oomScoreAdj {v} raised to {set}: lowering it below the runtime's own \
                     value needs CAP_SYS_RESOURCE"
                ));
            }
            Some(set.to_string().into_bytes())
        }
    };

    let user = process.user();
    for (what, id) in [("uid", user.uid()), ("gid", user.gid())] {
        if id == u32::MAX {
            bail!("process.user.{what} 4294967295 is not a valid id");
        }
    }
    let mut groups = Vec::new();
    for g in user.additional_gids().iter().flatten() {
        if *g == u32::MAX {
            bail!("process.user.additionalGids has 4294967295, which is not a valid id");
        }
        groups.push(Gid::from_raw(*g));
    }
    let umask = match user.umask() {
        Some(m) if m > 0o777 => bail!("process.user.umask {m:#o} has bits beyond 0o777"),
        Some(m) => Mode::from_raw_mode(m),
        // runc's default when the spec has no umask.
        None => Mode::from_raw_mode(0o022),
    };

    let cwd = process.cwd();
    if !cwd.is_absolute() {
        bail!("process.cwd {cwd:?} must be an absolute path inside the container");
    }
    let cwd = CString::new(cwd.as_os_str().as_bytes())
        .with_context(|| format!("process.cwd {cwd:?} has a NUL byte"))?;

    let mut caps = Sets::from_spec(process.capabilities().as_ref())?.limit_to(host.last_cap);
    let dropped = caps.trim_ambient();
    if dropped.0 != 0 {
        warnings.push(format!(
            "process.capabilities.ambient {} not raised: an ambient capability must also be in \
             the permitted and inheritable sets",
            dropped.names().join(", ")
        ));
    }

    Ok(Plan {
        rlimits: limits,
        oom_score_adj,
        uid: Uid::from_raw(user.uid()),
        gid: Gid::from_raw(user.gid()),
        groups,
        umask,
        caps,
        last_cap: host.last_cap,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        cwd,
        user_namespace: opts.user_namespace,
        warnings,
    })
}

// === impl Plan ===

impl Plan {
    /// What the parent changed from the spec (clamped rlimits, oom score), for the log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The capability sets the child will end with.
    pub fn capabilities(&self) -> Sets {
        self.caps
    }

    /// A message for a child failure of this plan, naming the rlimit or capability concerned.
    pub fn describe(&self, e: &ChildError) -> String {
        let errno = Errno::from_raw_os_error(e.errno);
        let what = match e.step {
            STEP_RLIMIT => self
                .rlimits
                .get(e.index as usize)
                .map(|l| format!(" {} {}:{}", l.name, l.soft, l.hard))
                .unwrap_or_default(),
            STEP_BOUNDING | STEP_AMBIENT => {
                format!(
                    " {}",
                    caps::name(e.index as u8).unwrap_or("(unknown capability)")
                )
            }
            STEP_CWD => format!(" {:?}", self.cwd),
            _ => String::new(),
        };
        format!("{}{what}: {errno}", step_name(e.step))
    }

    /// Child side: rlimits and `oom_score_adj`. Raw syscalls only.
    pub fn apply_privileged(&self) -> Result<(), ChildError> {
        for (i, l) in self.rlimits.iter().enumerate() {
            let lim = Rlimit {
                current: finite(l.soft),
                maximum: finite(l.hard),
            };
            rustix::process::setrlimit(l.resource, lim)
                .map_err(|e| ChildError::new(STEP_RLIMIT, e, i as u32))?;
        }
        if let Some(value) = &self.oom_score_adj {
            let fd = rustix::fs::open(
                c"/proc/self/oom_score_adj",
                OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| ChildError::new(STEP_OOM_OPEN, e, 0))?;
            write_all(&fd, value).map_err(|e| ChildError::new(STEP_OOM_WRITE, e, 0))?;
        }
        Ok(())
    }

    /// Child side: `chdir(process.cwd)`; call after the root is in place. Raw syscalls only.
    pub fn apply_cwd(&self) -> Result<(), ChildError> {
        rustix::process::chdir(self.cwd.as_c_str()).map_err(|e| ChildError::new(STEP_CWD, e, 0))
    }

    /// Child side: bounding set, groups, gid, uid, capability sets, umask and `no_new_privs`.
    /// Raw syscalls only.
    pub fn apply_identity(&self) -> Result<(), ChildError> {
        // Dropping from the bounding set needs CAP_SETPCAP, which the uid change may take away.
        for n in 0..=self.last_cap {
            if !self.caps.bounding.contains(n) {
                rustix::thread::remove_capability_from_bounding_set(cap_bit(n))
                    .map_err(|e| ChildError::new(STEP_BOUNDING, e, u32::from(n)))?;
            }
        }
        // Keep the permitted set across setresuid to a non-zero uid; capset below trims it.
        rustix::thread::set_keep_capabilities(true)
            .map_err(|e| ChildError::new(STEP_KEEPCAPS, e, 0))?;
        match rustix::thread::set_thread_groups(&self.groups) {
            Ok(()) => {}
            // A user namespace whose setgroups is "deny" refuses even an empty list.
            Err(Errno::PERM) if self.user_namespace && self.groups.is_empty() => {}
            Err(e) => return Err(ChildError::new(STEP_SETGROUPS, e, 0)),
        }
        rustix::thread::set_thread_res_gid(self.gid, self.gid, self.gid)
            .map_err(|e| ChildError::new(STEP_SETGID, e, 0))?;
        rustix::thread::set_thread_res_uid(self.uid, self.uid, self.uid)
            .map_err(|e| ChildError::new(STEP_SETUID, e, 0))?;
        rustix::thread::set_keep_capabilities(false)
            .map_err(|e| ChildError::new(STEP_KEEPCAPS, e, 1))?;
        let sets = CapabilitySets {
            effective: CapabilitySet::from_bits_retain(self.caps.effective.0),
            permitted: CapabilitySet::from_bits_retain(self.caps.permitted.0),
            inheritable: CapabilitySet::from_bits_retain(self.caps.inheritable.0),
        };
        rustix::thread::set_capabilities(None, sets)
            .map_err(|e| ChildError::new(STEP_CAPSET, e, 0))?;
        // The uid change cleared the ambient set; raise the spec's members now.
        for n in 0..=self.last_cap {
            if self.caps.ambient.contains(n) {
                rustix::thread::configure_capability_in_ambient_set(cap_bit(n), true)
                    .map_err(|e| ChildError::new(STEP_AMBIENT, e, u32::from(n)))?;
            }
        }
        rustix::process::umask(self.umask);
        if self.no_new_privs {
            rustix::thread::set_no_new_privs(true)
                .map_err(|e| ChildError::new(STEP_NO_NEW_PRIVS, e, 0))?;
        }
        Ok(())
    }
}

fn cap_bit(n: u8) -> CapabilitySet {
    CapabilitySet::from_bits_retain(1u64 << n)
}

fn finite(v: u64) -> Option<u64> {
    (v != rlimits::INFINITY).then_some(v)
}

fn write_all(fd: &rustix::fd::OwnedFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, UserBuilder};

    fn host(cap: bool) -> Host {
        Host {
            cap_sys_resource: cap,
            oom_score_adj: 0,
            last_cap: 40,
            hard_limit: |_| 20_000,
        }
    }

    fn nofile(soft: u64, hard: u64) -> Process {
        let rl = PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(soft)
            .hard(hard)
            .build()
            .unwrap();
        ProcessBuilder::default()
            .rlimits(vec![rl])
            .cwd("/")
            .build()
            .unwrap()
    }

    #[test]
    fn podman_default_nofile_is_clamped_with_a_warning_without_cap_sys_resource() {
        let plan = prepare_with(
            &nofile(1_048_576, 1_048_576),
            &Options::default(),
            &host(false),
        )
        .unwrap();
        assert_eq!(
            (plan.rlimits[0].soft, plan.rlimits[0].hard),
            (20_000, 20_000)
        );
        assert!(
            plan.warnings()[0].contains("RLIMIT_NOFILE"),
            "{:?}",
            plan.warnings()
        );
        let plan = prepare_with(
            &nofile(1_048_576, 1_048_576),
            &Options::default(),
            &host(true),
        )
        .unwrap();
        assert_eq!(plan.rlimits[0].hard, 1_048_576);
        assert!(plan.warnings().is_empty());
    }

    #[test]
    fn soft_above_hard_is_an_error_naming_the_limit() {
        let err = prepare_with(&nofile(10, 5), &Options::default(), &host(true)).unwrap_err();
        assert!(format!("{err:#}").contains("RLIMIT_NOFILE"));
    }

    #[test]
    fn relative_cwd_and_out_of_range_oom_score_are_errors() {
        let p = ProcessBuilder::default().cwd("work").build().unwrap();
        let err = prepare_with(&p, &Options::default(), &host(true)).unwrap_err();
        assert!(format!("{err:#}").contains("process.cwd"));
        let p = ProcessBuilder::default()
            .cwd("/")
            .oom_score_adj(1001)
            .build()
            .unwrap();
        let err = prepare_with(&p, &Options::default(), &host(true)).unwrap_err();
        assert!(format!("{err:#}").contains("oomScoreAdj"));
    }

    #[test]
    fn user_and_umask_default_like_runc() {
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(100u32)
            .additional_gids(vec![5u32, 6])
            .build()
            .unwrap();
        let mut p = ProcessBuilder::default()
            .cwd("/")
            .user(user)
            .build()
            .unwrap();
        p.set_capabilities(None);
        let plan = prepare_with(&p, &Options::default(), &host(true)).unwrap();
        assert_eq!(plan.uid.as_raw(), 1000);
        assert_eq!(plan.groups.len(), 2);
        assert_eq!(plan.umask.bits(), 0o022);
        // No capabilities object: nothing is kept (runc).
        assert_eq!(plan.capabilities(), Sets::default());
    }
}
