//! The container lifecycle: `create`, `start`, `run`, `kill`, `delete`, `state`.
//!
//! `create` loads the bundle, claims the state directory (a duplicate id fails there), prepares
//! every plan, clones the child ([`crate::child`]), writes the id maps, joins the cgroup, runs
//! the create hooks and waits for READY; only then is `state.json` written. Anything that fails
//! before that point is undone (`launch::Undo`): the child is killed and reaped, the cgroup
//! removed and the state directory wiped, so a failed create never leaves a half container
//! behind. `launch` holds that sequence; this file the verbs and the waiting.

mod launch;

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::hooks::{self, Point};
use crate::state::{self, EXEC_FIFO, Record, Root, Status};
use launch::launch;
pub(crate) use launch::{compile_seccomp, describe, write_pid_file};

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
