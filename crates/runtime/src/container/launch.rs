//! `create`'s sequence (also the first half of `run`): load and check the bundle, claim the
//! state directory, prepare every plan, clone, write the id maps, join the cgroup, run the
//! create hooks, wait for READY, save the state.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::{CreateOpts, Extra, kill_raw, open_ns, pid, state_json};
use crate::child::{self, Failure, Join, Plan, Program, Wait};
use crate::hooks::{self, Point};
use crate::state::{self, EXEC_FIFO, Record, Root, Status};

/// What `launch` hands back: the running child, its record and what start still needs.
pub(super) struct Launched {
    pub(super) child: child::Child,
    /// The runtime's end of the console socket when it proxies the terminal itself.
    pub(super) console_peer: Option<std::os::unix::net::UnixStream>,
    pub(super) record: Record,
    pub(super) plan: Plan,
    pub(super) hooks: Option<oci_spec::runtime::Hooks>,
    pub(super) sigmask: libc::sigset_t,
}

/// Undoes a half-made container unless disarmed: kills and reaps the child, removes the cgroup
/// and the state directory (libcontainer leaves them behind; see docs/runtime.md).
struct Undo<'a> {
    root: &'a Root,
    id: String,
    child: Option<i32>,
    cgroup: Option<crate::cgroups::Cgroup>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(p) = self.child {
            let _ = kill_raw(p, libc::SIGKILL);
            let _ = rustix::process::waitpid(Some(pid(p)), rustix::process::WaitOptions::empty());
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        let _ = self.root.remove(&self.id);
    }
}

fn ns_info(t: LinuxNamespaceType) -> (i32, &'static str) {
    match t {
        LinuxNamespaceType::Mount => (libc::CLONE_NEWNS, "mnt"),
        LinuxNamespaceType::Cgroup => (libc::CLONE_NEWCGROUP, "cgroup"),
        LinuxNamespaceType::Uts => (libc::CLONE_NEWUTS, "uts"),
        LinuxNamespaceType::Ipc => (libc::CLONE_NEWIPC, "ipc"),
        LinuxNamespaceType::User => (libc::CLONE_NEWUSER, "user"),
        LinuxNamespaceType::Pid => (libc::CLONE_NEWPID, "pid"),
        LinuxNamespaceType::Network => (libc::CLONE_NEWNET, "net"),
        LinuxNamespaceType::Time => (libc::CLONE_NEWTIME, "time"),
    }
}

/// The namespace part of the child plan.
struct Namespaces {
    clone_flags: i32,
    unshare_flags: i32,
    joins: Vec<Join>,
    /// A pid namespace joined by path: the parent enters it (for its children) around clone.
    pid_join: Option<OwnedFd>,
    names: Vec<String>,
}

fn namespaces(spec: &Spec, min_fd: i32) -> anyhow::Result<Namespaces> {
    let mut ns = Namespaces {
        clone_flags: 0,
        unshare_flags: 0,
        joins: Vec::new(),
        pid_join: None,
        names: Vec::new(),
    };
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for (i, n) in list.iter().enumerate() {
        let (flag, name) = ns_info(n.typ());
        ns.names.push(name.to_string());
        match n.path() {
            None if flag == libc::CLONE_NEWPID || flag == libc::CLONE_NEWUSER => {
                ns.clone_flags |= flag
            }
            None => ns.unshare_flags |= flag,
            Some(p) => {
                let fd = rustix::fs::open(
                    p,
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .with_context(|| format!("linux.namespaces[{i}].path: opening {}", p.display()))?;
                let fd = child::dup_above(fd, min_fd)?;
                if flag == libc::CLONE_NEWPID {
                    ns.pid_join = Some(fd);
                } else {
                    let join = Join {
                        fd,
                        nstype: flag,
                        index: i as u32,
                    };
                    if flag == libc::CLONE_NEWUSER {
                        ns.joins.insert(0, join);
                    } else {
                        ns.joins.push(join);
                    }
                }
            }
        }
    }
    Ok(ns)
}

fn id_map(maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>) -> String {
    maps.into_iter()
        .flatten()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Everything prepared before the clone.
struct Prepared {
    plan: Plan,
    cgroup: crate::cgroups::Cgroup,
    uid_map: String,
    gid_map: String,
    /// A pid namespace joined by path (entered by the parent around the clone).
    pid_join: Option<OwnedFd>,
    /// The container's namespace names, for `state.json`.
    names: Vec<String>,
    console_peer: Option<std::os::unix::net::UnixStream>,
    hooks: Option<oci_spec::runtime::Hooks>,
    /// The signals the parent blocked (the plan carries the mask to restore).
    blocked: libc::sigset_t,
}

/// `fifo`: wait on the exec fifo (`create`) instead of START; `proxy`: a terminal without
/// `--console-socket` is proxied by this process (foreground `run`).
pub(super) fn launch(
    root: &Root,
    id: &str,
    opts: &CreateOpts,
    fifo: bool,
    proxy: bool,
) -> anyhow::Result<Launched> {
    child::set_dumpable_off()?;
    let bundle = crate::spec::load(&opts.bundle)?;
    let spec = &bundle.spec;
    let dir = root.create_container_dir(id)?;
    let mut undo = Undo {
        root,
        id: id.to_string(),
        child: None,
        cgroup: None,
        armed: true,
    };
    let p = prepare(spec, &bundle.dir, opts, id, &dir, fifo, proxy, &mut undo)?;
    let plan = &p.plan;

    let ch = spawn_in(plan, p.pid_join.as_ref())?;
    undo.child = Some(ch.pid);
    if plan.new_userns {
        std::fs::write(format!("/proc/{}/uid_map", ch.pid), &p.uid_map)
            .context("writing linux.uidMappings")?;
        std::fs::write(format!("/proc/{}/gid_map", ch.pid), &p.gid_map)
            .context("writing linux.gidMappings")?;
    }
    p.cgroup
        .add_pid(ch.pid)
        .context("joining the container's cgroup")?;
    ch.go()?;
    let (pid_start, _) =
        state::proc_start_time(ch.pid).context("reading the container process's start time")?;
    let mut record = Record {
        id: id.to_string(),
        pid: ch.pid,
        pid_start,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::rfc3339(SystemTime::now()),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup: Some(p.cgroup.clone()),
        owner_uid: rustix::process::getuid().as_raw(),
        namespaces: p.names.clone(),
    };
    if plan.create_hooks {
        run_create_hooks(&ch, plan, &record, p.hooks.as_ref())?;
    }
    if let Err(f) = ch.wait_ready() {
        bail!("{}", describe(&f, plan, &ch));
    }
    if p.hooks.is_some() {
        let extra = Extra {
            hooks: p.hooks.clone(),
        };
        std::fs::write(dir.join("hooks.json"), serde_json::to_vec(&extra)?)
            .context("saving the hooks")?;
    }
    record.created = state::rfc3339(SystemTime::now());
    root.save(&record)?;
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, ch.pid)?;
    }
    undo.armed = false;
    Ok(Launched {
        child: ch,
        console_peer: p.console_peer,
        record,
        plan: p.plan,
        hooks: p.hooks,
        sigmask: p.blocked,
    })
}

/// Parent side before the clone: the exec fifo, namespaces, terminal, program, process and
/// seccomp plans, the cgroup (recorded in `undo`) and the rootfs plan.
#[allow(clippy::too_many_arguments)]
fn prepare(
    spec: &Spec,
    bundle_dir: &Path,
    opts: &CreateOpts,
    id: &str,
    dir: &Path,
    fifo: bool,
    proxy: bool,
    undo: &mut Undo<'_>,
) -> anyhow::Result<Prepared> {
    let process = spec.process().as_ref().context("process: missing")?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !proxy {
        bail!("process.terminal is true: pass --console-socket to receive the pty master");
    }
    let min_fd = 3 + opts.preserve_fds as i32;
    let wait = if fifo {
        Wait::Fifo(exec_fifo(dir, min_fd)?)
    } else {
        Wait::Start
    };
    let ns = namespaces(spec, min_fd)?;
    let linux = spec.linux().as_ref();
    let size = process
        .console_size()
        .map(|b| (b.height() as u16, b.width() as u16));
    let mut console_peer = None;
    let console = match (&opts.console_socket, terminal) {
        (Some(path), true) => Some(crate::console::ChildConsole::connect(
            path, size, min_fd, true,
        )?),
        (None, true) => {
            let (c, peer) = crate::console::ChildConsole::pair(size, min_fd, true)?;
            console_peer = Some(peer);
            Some(c)
        }
        _ => None,
    };
    let env = process.env().clone().unwrap_or_default();
    let program = Program::new(process.args().as_deref().unwrap_or_default(), &env)?;
    let hooks = spec.hooks().clone();
    let create_hooks = [
        Point::Prestart,
        Point::CreateRuntime,
        Point::CreateContainer,
    ]
    .iter()
    .any(|p| !p.of(hooks.as_ref()).is_empty());
    let user_namespace = ns.names.iter().any(|n| n == "user");
    let process_plan =
        crate::process::prepare(process, &crate::process::Options { user_namespace })?;
    for w in process_plan.warnings() {
        crate::cli::warn(w);
    }
    let seccomp = compile_seccomp(linux.and_then(|l| l.seccomp().as_ref()))?;
    let cgroup = create_cgroup(linux, id)?;
    undo.cgroup = Some(cgroup.clone());
    let rootfs = crate::rootfs::prepare(
        spec,
        &crate::rootfs::Options {
            bundle: bundle_dir,
            user_namespace,
            no_pivot: opts.no_pivot,
            console: None,
            cgroup: Some(&cgroup),
        },
    )?;
    let (blocked, old_mask) = child::block_signals()?;
    let plan = Plan {
        clone_flags: ns.clone_flags,
        unshare_flags: ns.unshare_flags,
        joins: ns.joins,
        new_userns: ns.clone_flags & libc::CLONE_NEWUSER != 0,
        hostname: cstr(spec.hostname(), "hostname")?,
        domainname: cstr(spec.domainname(), "domainname")?,
        create_hooks,
        console,
        rootfs: Some(rootfs),
        process: process_plan,
        seccomp,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        new_keyring: !opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        program,
        wait,
        sigmask: old_mask,
    };
    Ok(Prepared {
        plan,
        cgroup,
        uid_map: id_map(linux.and_then(|l| l.uid_mappings().as_ref())),
        gid_map: id_map(linux.and_then(|l| l.gid_mappings().as_ref())),
        pid_join: ns.pid_join,
        names: ns.names,
        console_peer,
        hooks,
        blocked,
    })
}

fn cstr(s: &Option<String>, what: &str) -> anyhow::Result<Option<CString>> {
    s.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| CString::new(s).with_context(|| format!("{what} contains a NUL byte")))
        .transpose()
}

/// Makes the exec fifo and opens it `O_PATH` (renumbered above `min_fd`).
fn exec_fifo(dir: &Path, min_fd: i32) -> anyhow::Result<OwnedFd> {
    let path = dir.join(EXEC_FIFO);
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &path,
        rustix::fs::Mode::from_bits_retain(0o622),
    )
    .with_context(|| format!("creating the exec fifo {}", path.display()))?;
    let fd = rustix::fs::open(
        &path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .context("opening the exec fifo")?;
    child::dup_above(fd, min_fd)
}

/// The container's cgroup: `linux.cgroupsPath`, or the id (relative to the runtime's own
/// cgroup), with the spec's resources; the nodes of `linux.devices` are allowed in the device
/// cgroup too, as runc does.
fn create_cgroup(
    linux: Option<&oci_spec::runtime::Linux>,
    id: &str,
) -> anyhow::Result<crate::cgroups::Cgroup> {
    let layout = crate::cgroups::detect()?;
    let cgroups_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| id.to_string());
    let resources = crate::cgroups::allow_spec_devices(
        linux.and_then(|l| l.resources().as_ref()),
        linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default(),
    );
    crate::cgroups::Cgroup::create(&layout, &cgroups_path, Some(&resources))
        .with_context(|| format!("linux.cgroupsPath {cgroups_path:?}"))
}

/// Clones the child, inside `pid_join`'s pid namespace when given (entered for the clone
/// only: the runtime returns to its own right after).
fn spawn_in(plan: &Plan, pid_join: Option<&OwnedFd>) -> anyhow::Result<child::Child> {
    let own_pidns = match pid_join {
        Some(fd) => {
            let own = open_ns(std::process::id() as i32, "pid")?;
            setns_pid(fd.as_raw_fd()).context("joining linux.namespaces pid path")?;
            Some(own)
        }
        None => None,
    };
    let spawned = child::spawn(plan);
    if let Some(own) = own_pidns {
        setns_pid(own.as_raw_fd()).context("returning to the runtime's pid namespace")?;
    }
    spawned
}

/// prestart and createRuntime (runtime namespaces), createContainer (the container's mount
/// namespace), while the child waits between its mounts and pivot_root.
fn run_create_hooks(
    ch: &child::Child,
    plan: &Plan,
    record: &Record,
    hooks: Option<&oci_spec::runtime::Hooks>,
) -> anyhow::Result<()> {
    if let Err(f) = ch.wait_namespaces() {
        bail!("{}", describe(&f, plan, ch));
    }
    let json = state_json(record, Status::Creating);
    hooks::run(Point::Prestart, hooks, &json, None)?;
    hooks::run(Point::CreateRuntime, hooks, &json, None)?;
    if !Point::CreateContainer.of(hooks).is_empty() {
        let mnt = open_ns(ch.pid, "mnt")?;
        hooks::run(Point::CreateContainer, hooks, &json, Some(mnt.as_fd()))?;
    }
    ch.hooks_done()
}

/// Compiles `linux.seccomp` in the parent (warnings for syscalls this kernel does not know).
pub(crate) fn compile_seccomp(
    s: Option<&oci_spec::runtime::LinuxSeccomp>,
) -> anyhow::Result<Option<crate::seccomp::Program>> {
    let Some(s) = s else { return Ok(None) };
    let p = crate::seccomp::compile(s).context("linux.seccomp")?;
    // runc skips syscalls libseccomp does not know without a word; so do we, unless --debug.
    if !crate::cli::debug() {
        return Ok(Some(p));
    }
    for n in p.unknown_names() {
        crate::cli::warn(&format!(
            "seccomp: syscall {n:?} is not known on this architecture; skipped"
        ));
    }
    for n in p.notes() {
        crate::cli::warn(&format!("seccomp: {n}"));
    }
    Ok(Some(p))
}

#[allow(unsafe_code)]
fn setns_pid(fd: i32) -> std::io::Result<()> {
    // SAFETY: setns(CLONE_NEWPID) only changes the pid namespace of future children of this
    // single-threaded process.
    if unsafe { libc::setns(fd, libc::CLONE_NEWPID) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Writes the pid file atomically (temporary file + rename), as runc does.
pub(crate) fn write_pid_file(path: &Path, p: i32) -> anyhow::Result<()> {
    let abs = std::path::absolute(path)?;
    let tmp = abs.with_file_name(format!(
        ".{}.tmp",
        abs.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, p.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &abs).with_context(|| format!("writing the pid file {}", abs.display()))
}

/// A child failure as a message; reaps the child so the message can say how it ended.
pub(crate) fn describe(f: &Failure, plan: &Plan, ch: &child::Child) -> String {
    match f {
        Failure::Step(e) if e.step == child::STEP_NOT_FOUND => {
            plan.program.not_found_message(e.errno)
        }
        Failure::Step(e) if (200..300).contains(&e.step) => {
            format!("container init failed: {}", plan.process.describe(e))
        }
        Failure::Step(e) if (100..200).contains(&e.step) && plan.rootfs.is_some() => {
            let rootfs = plan
                .rootfs
                .as_ref()
                .map(|r| r.describe(e))
                .unwrap_or_default();
            format!("container init failed: {rootfs}")
        }
        Failure::Step(e) => {
            let err = std::io::Error::from_raw_os_error(e.errno);
            let what = e.step_name();
            if e.index != 0 || matches!(e.step, 100..=499) {
                format!(
                    "container init failed {what} (step {}, item {}): {err}",
                    e.step, e.index
                )
            } else {
                format!("container init failed {what}: {err}")
            }
        }
        // Not reaped here: `Undo` kills and reaps it, so its pid cannot be reused before.
        Failure::Vanished => format!("container init (pid {}) exited unexpectedly", ch.pid),
    }
}
