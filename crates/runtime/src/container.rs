//! The container lifecycle: `create`, `start`, `run`, `kill`, `delete`, `state`.
//!
//! `create` loads the bundle, claims the state directory (a duplicate id fails there), prepares
//! every plan, clones the child ([`crate::child`]), writes the id maps, joins the cgroup, runs
//! the create hooks and waits for READY; only then is `state.json` written. Anything that fails
//! before that point is undone by [`Undo`]: the child is killed and reaped, the cgroup removed
//! and the state directory wiped, so a failed create never leaves a half container behind.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use crate::child::{self, Failure, Join, Plan, Program, Wait};
use crate::hooks::{self, Point};
use crate::state::{self, EXEC_FIFO, Record, Root, Status};

/// Options of `create` and `run`.
#[derive(Clone, Debug, Default)]
pub struct CreateOpts {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Where to write the container's pid.
    pub pid_file: Option<PathBuf>,
    /// The caller's console socket (for `process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// `--no-pivot`: use `MS_MOVE` + `chroot` instead of `pivot_root`.
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the runtime's session keyring.
    pub no_new_keyring: bool,
    /// `--preserve-fds N`: pass fds 3 .. 3+N to the program.
    pub preserve_fds: u32,
}

/// The extra state Drover keeps beside runc's fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Extra {
    hooks: Option<oci_spec::runtime::Hooks>,
}

/// `create`: the container waits on the exec fifo for `start`.
pub fn create(root: &Root, id: &str, opts: &CreateOpts) -> anyhow::Result<()> {
    let launched = launch(root, id, opts, true, false)?;
    drop(launched);
    Ok(())
}

/// `start`: runs the startContainer hooks, releases the exec fifo, runs the poststart hooks.
pub fn start(root: &Root, id: &str) -> anyhow::Result<()> {
    let (rec, status) = root.load_record(id)?;
    match status {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running => bail!("cannot start an already running container"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    let hooks = load_hooks(root, id);
    if !Point::StartContainer.of(hooks.as_ref()).is_empty() {
        let mnt = open_ns(rec.pid, "mnt")?;
        let json = state_json(&rec, Status::Created);
        if let Err(e) = hooks::run(
            Point::StartContainer,
            hooks.as_ref(),
            &json,
            Some(mnt.as_fd()),
        ) {
            let _ = rustix::process::kill_process(pid(rec.pid), rustix::process::Signal::KILL);
            return Err(e);
        }
    }
    release_fifo(root, &rec)?;
    poststart(&rec, hooks.as_ref());
    Ok(())
}

/// `run`: create and start in one process. In the foreground it forwards signals, waits, deletes
/// the container and returns the program's exit code (128+N when killed by signal N).
pub fn run(root: &Root, id: &str, opts: &CreateOpts, detach: bool) -> anyhow::Result<i32> {
    let launched = launch(root, id, opts, false, !detach)?;
    let rec = &launched.record;
    if !Point::StartContainer.of(launched.hooks.as_ref()).is_empty() {
        let mnt = open_ns(rec.pid, "mnt")?;
        let json = state_json(rec, Status::Created);
        if let Err(e) = hooks::run(
            Point::StartContainer,
            launched.hooks.as_ref(),
            &json,
            Some(mnt.as_fd()),
        ) {
            let _ = destroy(root, rec, launched.hooks.as_ref());
            return Err(e);
        }
    }
    if let Err(f) = launched.child.start() {
        let msg = describe(&f, &launched.plan, &launched.child);
        let _ = destroy(root, rec, launched.hooks.as_ref());
        bail!("{msg}");
    }
    poststart(rec, launched.hooks.as_ref());
    if detach {
        return Ok(0);
    }
    let code = match &launched.console_peer {
        Some(peer) => {
            let master = crate::console::recv_fd(peer)?;
            crate::console::proxy_and_wait(master, rec.pid, &launched.sigmask)?
        }
        None => forward_and_wait(rec.pid, &launched.sigmask)?,
    };
    destroy(root, rec, launched.hooks.as_ref())?;
    Ok(code)
}

/// `kill`: sends `sig` to the container's process (or, with `all`, every process of its cgroup).
pub fn kill(root: &Root, id: &str, sig: i32, all: bool) -> anyhow::Result<()> {
    let (rec, status) = root.load_record(id)?;
    if status == Status::Stopped && !all {
        bail!("container not running");
    }
    match (&rec.cgroup, all) {
        (Some(cg), true) => cg
            .kill_all(sig)
            .with_context(|| format!("signalling every process of container {id}")),
        _ => send_signal(rec.pid, sig),
    }
}

/// `delete`: removes a stopped or created container; `force` kills a running one first.
pub fn delete(root: &Root, id: &str, force: bool) -> anyhow::Result<()> {
    let (rec, status) = match root.load(id) {
        Ok((Some(r), s)) => (r, s),
        Ok((None, _)) => return root.remove(id),
        Err(e) => {
            if force && state::validate_id(id).is_ok() {
                return Ok(());
            }
            return Err(e);
        }
    };
    if status == Status::Running && !force {
        bail!("cannot delete container {id} that is not stopped: running");
    }
    let hooks = load_hooks(root, id);
    destroy(root, &rec, hooks.as_ref())
}

/// `state`: runc's JSON for one container.
pub fn state(root: &Root, id: &str) -> anyhow::Result<serde_json::Value> {
    match root.load(id)? {
        (Some(rec), status) => Ok(rec.to_oci(status)),
        (None, _) => Ok(serde_json::json!({
            "ociVersion": "1.2.0", "id": id, "pid": 0, "status": "creating",
            "bundle": "", "rootfs": "", "created": "", "owner": "",
        })),
    }
}

/// Kills what is left, waits for the init process to go, removes the cgroup, runs the
/// poststop hooks and wipes the state directory.
fn destroy(
    root: &Root,
    rec: &Record,
    hooks: Option<&oci_spec::runtime::Hooks>,
) -> anyhow::Result<()> {
    if state::is_alive(rec) {
        send_signal(rec.pid, libc::SIGKILL)?;
        wait_gone(rec)?;
    }
    if let Some(cg) = &rec.cgroup {
        // Processes exec'd into a container without its own pid namespace can outlive init.
        // (Skipped when the cgroup is empty: kill_all freezes and thaws, which costs time.)
        if cg.pids().map_or(true, |p| !p.is_empty()) {
            let _ = cg.kill_all(libc::SIGKILL);
        }
        cg.destroy()
            .with_context(|| format!("removing the cgroup of {}", rec.id))?;
    }
    let json = state_json(rec, Status::Stopped);
    if let Err(e) = hooks::run(Point::Poststop, hooks, &json, None) {
        crate::cli::warn(&format!("{e:#}"));
    }
    root.remove(&rec.id)
}

fn wait_gone(rec: &Record) -> anyhow::Result<()> {
    // Our own child (run) is reaped here; a container created by another process is reaped by
    // its parent (or subreaper), and a zombie counts as gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut nap = Duration::from_micros(100);
    loop {
        let _ = rustix::process::waitpid(Some(pid(rec.pid)), rustix::process::WaitOptions::NOHANG);
        if !state::is_alive(rec) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "container {} (pid {}) did not exit within 10s of SIGKILL",
                rec.id,
                rec.pid
            );
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

fn poststart(rec: &Record, hooks: Option<&oci_spec::runtime::Hooks>) {
    if Point::Poststart.of(hooks).is_empty() {
        return;
    }
    let json = state_json(rec, Status::Running);
    if let Err(e) = hooks::run(Point::Poststart, hooks, &json, None) {
        crate::cli::warn(&format!("{e:#}"));
    }
}

fn state_json(rec: &Record, status: Status) -> Vec<u8> {
    serde_json::to_vec(&rec.to_oci(status)).unwrap_or_default()
}

fn load_hooks(root: &Root, id: &str) -> Option<oci_spec::runtime::Hooks> {
    let body = std::fs::read(root.container_dir(id).join("hooks.json")).ok()?;
    serde_json::from_slice::<Extra>(&body).ok()?.hooks
}

fn pid(p: i32) -> rustix::process::Pid {
    rustix::process::Pid::from_raw(p).unwrap_or(rustix::process::Pid::INIT)
}

fn send_signal(p: i32, sig: i32) -> anyhow::Result<()> {
    // rustix's Signal cannot name every number (real-time signals): the raw call is used.
    let r = kill_raw(p, sig);
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(e).with_context(|| format!("sending signal {sig} to pid {p}"));
    }
    Ok(())
}

#[allow(unsafe_code)]
pub(crate) fn kill_raw(p: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(p, sig) }
}

fn open_ns(p: i32, name: &str) -> anyhow::Result<OwnedFd> {
    let path = format!("/proc/{p}/ns/{name}");
    rustix::fs::open(
        &path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .with_context(|| format!("opening {path}"))
}

/// Reads the exec fifo: the child, blocked opening it for writing, goes on and execs.
fn release_fifo(root: &Root, rec: &Record) -> anyhow::Result<()> {
    let path = root.container_dir(&rec.id).join(EXEC_FIFO);
    let fd = rustix::fs::open(
        &path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .with_context(|| format!("opening the exec fifo {}", path.display()))?;
    let mut buf = [0u8; 1];
    loop {
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("waiting on the exec fifo"),
        }
        match rustix::io::read(&fd, &mut buf) {
            Ok(1) => break,
            Ok(_) | Err(rustix::io::Errno::AGAIN) => {
                if !state::is_alive(rec) {
                    bail!("container process {} exited before start", rec.pid);
                }
            }
            Err(e) => return Err(e).context("reading the exec fifo"),
        }
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(())
}

/// Forwards every signal to the container and returns its exit code once it exits.
#[allow(unsafe_code)]
pub(crate) fn forward_and_wait(child: i32, blocked: &libc::sigset_t) -> anyhow::Result<i32> {
    loop {
        // SAFETY: sigwaitinfo on a set of signals this (single) thread blocked; the info struct
        // is a plain C struct on our stack.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(blocked, &mut info)
        };
        if sig < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e).context("waiting for signals");
        }
        if sig != libc::SIGCHLD {
            let _ = send_signal(child, sig);
            continue;
        }
        // Only our own child: `waitpid(None)` would mean our process group, which a child with
        // a terminal has left (setsid).
        loop {
            match rustix::process::waitpid(Some(pid(child)), rustix::process::WaitOptions::NOHANG) {
                Ok(Some((p, status))) => {
                    if p.as_raw_nonzero().get() == child {
                        if let Some(code) = status.exit_status() {
                            return Ok(code);
                        }
                        if let Some(sig) = status.terminating_signal() {
                            return Ok(128 + sig);
                        }
                    }
                }
                Ok(None) => break,
                Err(rustix::io::Errno::CHILD) => bail!("the container process disappeared"),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e).context("waitpid"),
            }
        }
    }
}

/// What `launch` hands back: the running child, its record and what start still needs.
struct Launched {
    child: child::Child,
    /// The runtime's end of the console socket when it proxies the terminal itself.
    console_peer: Option<std::os::unix::net::UnixStream>,
    record: Record,
    plan: Plan,
    hooks: Option<oci_spec::runtime::Hooks>,
    sigmask: libc::sigset_t,
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

/// `fifo`: wait on the exec fifo (`create`) instead of START; `proxy`: a terminal without
/// `--console-socket` is proxied by this process (foreground `run`).
fn launch(
    root: &Root,
    id: &str,
    opts: &CreateOpts,
    fifo: bool,
    proxy: bool,
) -> anyhow::Result<Launched> {
    child::set_dumpable_off()?;
    let bundle = crate::spec::load(&opts.bundle)?;
    let spec = &bundle.spec;
    let process = spec.process().as_ref().context("process: missing")?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !proxy {
        bail!("process.terminal is true: pass --console-socket to receive the pty master");
    }
    let dir = root.create_container_dir(id)?;
    let mut undo = Undo {
        root,
        id: id.to_string(),
        child: None,
        cgroup: None,
        armed: true,
    };
    let min_fd = 3 + opts.preserve_fds as i32;

    let wait = if fifo {
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
        Wait::Fifo(child::dup_above(fd, min_fd)?)
    } else {
        Wait::Start
    };
    let ns = namespaces(spec, min_fd)?;
    let linux = spec.linux().as_ref();
    let uid_map = id_map(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid_map = id_map(linux.and_then(|l| l.gid_mappings().as_ref()));
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
    let cstr = |s: &Option<String>, what: &str| -> anyhow::Result<Option<CString>> {
        s.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| CString::new(s).with_context(|| format!("{what} contains a NUL byte")))
            .transpose()
    };
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
    let layout = crate::cgroups::detect()?;
    let cgroups_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| id.to_string());
    // The nodes of linux.devices are allowed in the device cgroup too, as runc does.
    let resources = crate::cgroups::allow_spec_devices(
        linux.and_then(|l| l.resources().as_ref()),
        linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default(),
    );
    let cgroup = crate::cgroups::Cgroup::create(&layout, &cgroups_path, Some(&resources))
        .with_context(|| format!("linux.cgroupsPath {cgroups_path:?}"))?;
    undo.cgroup = Some(cgroup.clone());
    let rootfs = crate::rootfs::prepare(
        spec,
        &crate::rootfs::Options {
            bundle: &bundle.dir,
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

    let own_pidns = match &ns.pid_join {
        Some(fd) => {
            let own = open_ns(std::process::id() as i32, "pid")?;
            setns_pid(fd.as_raw_fd()).context("joining linux.namespaces pid path")?;
            Some(own)
        }
        None => None,
    };
    let spawned = child::spawn(&plan);
    if let Some(own) = own_pidns {
        setns_pid(own.as_raw_fd()).context("returning to the runtime's pid namespace")?;
    }
    let ch = spawned?;
    undo.child = Some(ch.pid);

    if plan.new_userns {
        std::fs::write(format!("/proc/{}/uid_map", ch.pid), &uid_map)
            .context("writing linux.uidMappings")?;
        std::fs::write(format!("/proc/{}/gid_map", ch.pid), &gid_map)
            .context("writing linux.gidMappings")?;
    }
    cgroup
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
        cgroup: Some(cgroup),
        owner_uid: rustix::process::getuid().as_raw(),
        namespaces: ns.names,
    };
    if create_hooks {
        if let Err(f) = ch.wait_namespaces() {
            bail!("{}", describe(&f, &plan, &ch));
        }
        let json = state_json(&record, Status::Creating);
        hooks::run(Point::Prestart, hooks.as_ref(), &json, None)?;
        hooks::run(Point::CreateRuntime, hooks.as_ref(), &json, None)?;
        if !Point::CreateContainer.of(hooks.as_ref()).is_empty() {
            let mnt = open_ns(ch.pid, "mnt")?;
            hooks::run(
                Point::CreateContainer,
                hooks.as_ref(),
                &json,
                Some(mnt.as_fd()),
            )?;
        }
        ch.hooks_done()?;
    }
    if let Err(f) = ch.wait_ready() {
        bail!("{}", describe(&f, &plan, &ch));
    }
    if hooks.is_some() {
        let extra = Extra {
            hooks: hooks.clone(),
        };
        std::fs::write(dir.join("hooks.json"), serde_json::to_vec(&extra)?)
            .context("saving the hooks")?;
    }
    record.created = state::rfc3339(SystemTime::now());
    root.save(&record)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, ch.pid)?;
    }
    undo.armed = false;
    Ok(Launched {
        child: ch,
        console_peer,
        record,
        plan,
        hooks,
        sigmask: blocked,
    })
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
