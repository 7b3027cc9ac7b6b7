//! The container's first process: a fork-like `clone` and the child's sequence up to `execve`.
//!
//! The parent builds a [`Plan`] (every path a C string, every pointer array ready) and calls
//! [`spawn`]. The child only makes syscalls on that plan (see [`crate::sys`]); it talks to the
//! parent over a `SOCK_SEQPACKET` socket pair:
//!
//! ```text
//! parent                                   child
//!   clone ───────────────────────────────▶ wait GO
//!   uid/gid maps, cgroup add_pid, GO ────▶ setresuid(0) in a new userns, setns (user first),
//!                                          unshare, hostname, keyring, mounts
//!                          ◀──────────── NS_READY (only when the spec has create hooks)
//!   prestart/createRuntime/createContainer
//!   hooks, HOOKS_DONE ───────────────────▶ pivot_root, masks, console, rlimits,
//!                                          seccomp (no_new_privs false), cwd, identity,
//!                                          CLOEXEC on every fd but stdio and --preserve-fds,
//!                                          PATH lookup, seccomp (no_new_privs true)
//!                          ◀──────────── READY (or a 12-byte ChildError at any step)
//!   create: exit                           create: open the exec fifo (blocks until `start`)
//!   run/exec: START ─────────────────────▶ run/exec: wait START
//!                                          execve
//! ```

mod program;
mod raw;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use anyhow::Context;
use rustix::io::Errno;

use crate::sys::ChildError;
pub use program::Program;
pub(crate) use raw::set_dumpable_off;
pub use raw::{block_signals, exit_now};
use raw::{
    clone_process, close_inherited_fds, gid, join_session_keyring, last_errno, restore_signals,
    setns, uid, unshare, wait_fifo,
};

// === step codes (1–99, shared with console.rs: 20–39) ===

/// Reading the parent's GO message.
pub const STEP_WAIT_GO: u32 = 1;
/// Becoming root in the new user namespace.
pub const STEP_USERNS_ROOT: u32 = 2;
/// Joining a namespace by path (index: position in `linux.namespaces`).
pub const STEP_SETNS: u32 = 3;
/// Creating the new namespaces.
pub const STEP_UNSHARE: u32 = 4;
/// Setting the hostname.
pub const STEP_HOSTNAME: u32 = 5;
/// Setting the domain name.
pub const STEP_DOMAINNAME: u32 = 6;
/// Waiting while the parent runs the create hooks.
pub const STEP_HOOKS: u32 = 7;
/// Marking inherited fds close-on-exec.
pub const STEP_CLOSE_FDS: u32 = 8;
/// No candidate of the PATH lookup is an executable file.
pub const STEP_NOT_FOUND: u32 = 9;
/// Reopening the exec fifo.
pub const STEP_FIFO_OPEN: u32 = 10;
/// Writing to the exec fifo.
pub const STEP_FIFO_WRITE: u32 = 11;
/// Waiting for the parent's START message.
pub const STEP_WAIT_START: u32 = 12;
/// `execve` itself.
pub const STEP_EXECVE: u32 = 13;
/// Setting or clearing the parent-death signal.
pub const STEP_PDEATHSIG: u32 = 14;
/// Restoring the signal mask.
pub const STEP_SIGMASK: u32 = 15;
/// Clearing close-on-exec on `--preserve-fds`.
pub const STEP_PRESERVE_FDS: u32 = 16;
/// Sending READY to the parent.
pub const STEP_READY: u32 = 17;
/// Joining a new session keyring.
pub const STEP_KEYRING: u32 = 19;

/// The name of one of this module's child step codes (see [`crate::sys`]).
pub fn step_name(step: u32) -> &'static str {
    match step {
        STEP_WAIT_GO => "waiting for the parent",
        STEP_USERNS_ROOT => "becoming root in the user namespace",
        STEP_SETNS => "joining namespace",
        STEP_UNSHARE => "creating namespaces",
        STEP_HOSTNAME => "setting the hostname",
        STEP_DOMAINNAME => "setting the domain name",
        STEP_HOOKS => "waiting for the create hooks",
        STEP_CLOSE_FDS => "closing inherited file descriptors",
        STEP_NOT_FOUND => "looking up the executable",
        STEP_FIFO_OPEN => "opening the exec fifo",
        STEP_FIFO_WRITE => "writing the exec fifo",
        STEP_WAIT_START => "waiting for start",
        STEP_EXECVE => "exec",
        STEP_PDEATHSIG => "setting the parent-death signal",
        STEP_SIGMASK => "restoring the signal mask",
        STEP_PRESERVE_FDS => "passing --preserve-fds",
        STEP_READY => "reporting ready",
        STEP_KEYRING => "joining a new session keyring",
        20..=39 => crate::console::step_name(step),
        _ => "child step",
    }
}

// === messages ===

/// Parent → child: go on after clone (maps written, cgroups joined).
const MSG_GO: u8 = 1;
/// Parent → child: the create hooks ran.
const MSG_HOOKS_DONE: u8 = 2;
/// Parent → child: exec the program (run and exec; `create` uses the fifo instead).
const MSG_START: u8 = 3;
/// Child → parent: namespaces exist, run the create hooks now.
const MSG_NS_READY: u8 = 4;
/// Child → parent: everything is set up.
const MSG_READY: u8 = 5;
/// Child → parent: a 12-byte [`ChildError`] follows in the same message.
const MSG_ERROR: u8 = 6;

/// How the child waits between READY and `execve`.
#[derive(Debug)]
pub enum Wait {
    /// `create`: block on the exec fifo (an `O_PATH` fd, reopened through `/proc/self/fd`).
    Fifo(OwnedFd),
    /// `run` and `exec`: wait for the parent's START message on the sync socket.
    Start,
}

/// A namespace the child joins with `setns`.
#[derive(Debug)]
pub struct Join {
    /// The namespace file, opened by the parent.
    pub fd: OwnedFd,
    /// `CLONE_NEW*` of its type.
    pub nstype: i32,
    /// Its index in `linux.namespaces` (for error messages).
    pub index: u32,
}

/// Everything the child does, prepared by the parent.
pub struct Plan {
    /// Namespaces created by `clone` itself (`CLONE_NEWUSER`, `CLONE_NEWPID`).
    pub clone_flags: i32,
    /// Namespaces created with `unshare` after the joins (so a joined user namespace owns them).
    pub unshare_flags: i32,
    /// Namespaces joined by path, user namespace first.
    pub joins: Vec<Join>,
    /// Whether a new user namespace is created (the child then becomes its root after GO).
    pub new_userns: bool,
    /// `hostname`, when set.
    pub hostname: Option<CString>,
    /// `domainname`, when set.
    pub domainname: Option<CString>,
    /// Whether the parent runs create hooks between NS_READY and HOOKS_DONE.
    pub create_hooks: bool,
    /// The terminal, when `process.terminal` is true.
    pub console: Option<crate::console::ChildConsole>,
    /// The filesystem view (mounts, /dev, pivot_root, masked and read-only paths); `None` for
    /// `exec`, which joins the container's mount namespace instead.
    pub rootfs: Option<crate::rootfs::Plan>,
    /// The process settings (rlimits, oom score, cwd, credentials, capabilities, umask).
    pub process: crate::process::Plan,
    /// The compiled `linux.seccomp` filter.
    pub seccomp: Option<crate::seccomp::Program>,
    /// `process.noNewPrivileges`: decides where the seccomp filter is loaded.
    pub no_new_privs: bool,
    /// A new anonymous session keyring (runc's default; `--no-new-keyring` turns it off).
    pub new_keyring: bool,
    /// `--preserve-fds`: fds 3 .. 3+N stay open across exec.
    pub preserve_fds: u32,
    /// The program.
    pub program: Program,
    /// How to wait for start.
    pub wait: Wait,
    /// The signal mask to restore before exec (the parent blocks signals around clone).
    pub sigmask: libc::sigset_t,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("clone_flags", &self.clone_flags)
            .field("unshare_flags", &self.unshare_flags)
            .field("joins", &self.joins)
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

/// The parent's end of a started child.
#[derive(Debug)]
pub struct Child {
    /// The child's pid in the parent's pid namespace.
    pub pid: i32,
    sock: OwnedFd,
}

/// Why the child stopped before READY.
#[derive(Debug)]
pub enum Failure {
    /// The child reported a step failure.
    Step(ChildError),
    /// The child died or closed the socket without a report.
    Vanished,
}

impl Child {
    /// Parent: lets the child go on after clone (maps written, cgroup joined).
    pub fn go(&self) -> anyhow::Result<()> {
        send(self.sock.as_fd(), &[MSG_GO]).context("waking the container process")
    }

    /// Parent: waits for NS_READY (only when the plan has `create_hooks`).
    pub fn wait_namespaces(&self) -> Result<(), Failure> {
        self.expect(MSG_NS_READY)
    }

    /// Parent: the create hooks ran; the child goes on with the rootfs.
    pub fn hooks_done(&self) -> anyhow::Result<()> {
        send(self.sock.as_fd(), &[MSG_HOOKS_DONE]).context("resuming the container process")
    }

    /// Parent: waits until the child is ready to exec (or reports why it is not).
    pub fn wait_ready(&self) -> Result<(), Failure> {
        self.expect(MSG_READY)
    }

    /// Parent (run, exec): tells the child to exec, then waits until it did (the socket is
    /// close-on-exec) or reports an `execve` failure.
    pub fn start(&self) -> Result<(), Failure> {
        if send(self.sock.as_fd(), &[MSG_START]).is_err() {
            return Err(Failure::Vanished);
        }
        let mut buf = [0u8; 16];
        match recv(self.sock.as_fd(), &mut buf) {
            Ok(0) => Ok(()),
            Ok(13) if buf[0] == MSG_ERROR => Err(Failure::Step(decode(&buf))),
            _ => Err(Failure::Vanished),
        }
    }

    fn expect(&self, want: u8) -> Result<(), Failure> {
        let mut buf = [0u8; 16];
        match recv(self.sock.as_fd(), &mut buf) {
            Ok(1) if buf[0] == want => Ok(()),
            Ok(13) if buf[0] == MSG_ERROR => Err(Failure::Step(decode(&buf))),
            _ => Err(Failure::Vanished),
        }
    }
}

fn decode(buf: &[u8; 16]) -> ChildError {
    let mut b = [0u8; 12];
    b.copy_from_slice(&buf[1..13]);
    ChildError::from_bytes(b)
}

fn send(fd: BorrowedFd<'_>, msg: &[u8]) -> Result<(), Errno> {
    rustix::net::send(fd, msg, rustix::net::SendFlags::NOSIGNAL).map(|_| ())
}

fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match rustix::net::recv(fd, &mut *buf, rustix::net::RecvFlags::empty()) {
            Ok((n, _)) => return Ok(n),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Creates the sync socket pair; both ends close-on-exec and numbered above `min_fd` so they
/// never collide with `--preserve-fds`.
fn socket_pair(min_fd: RawFd) -> anyhow::Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("creating the sync socket pair")?;
    Ok((dup_above(a, min_fd)?, dup_above(b, min_fd)?))
}

/// Re-numbers `fd` to the lowest free number ≥ `min_fd` (close-on-exec), so the fds the parent
/// hands to the child stay clear of `--preserve-fds`.
pub fn dup_above(fd: OwnedFd, min_fd: RawFd) -> anyhow::Result<OwnedFd> {
    if fd.as_raw_fd() >= min_fd {
        return Ok(fd);
    }
    rustix::io::fcntl_dupfd_cloexec(&fd, min_fd).context("renumbering a file descriptor")
}

/// Clones the child, which runs `plan` and never returns; the parent gets a [`Child`].
///
/// The process must be single-threaded (the runtime's CLI always is).
pub fn spawn(plan: &Plan) -> anyhow::Result<Child> {
    let min_fd = 3 + plan.preserve_fds as RawFd;
    let (parent_sock, child_sock) = socket_pair(min_fd)?;
    let pid = clone_process(plan.clone_flags).context("clone")?;
    if pid == 0 {
        drop(parent_sock);
        run_child(plan, child_sock.as_fd())
    }
    drop(child_sock);
    Ok(Child {
        pid,
        sock: parent_sock,
    })
}

/// The child: runs the sequence, reports a failure and exits; on success it has exec'd.
fn run_child(plan: &Plan, sock: BorrowedFd<'_>) -> ! {
    let err = match child_sequence(plan, sock) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let mut msg = [0u8; 13];
    msg[0] = MSG_ERROR;
    msg[1..].copy_from_slice(&err.to_bytes());
    let _ = send(sock, &msg);
    exit_now(1)
}

enum Never {}

fn step<T>(code: u32, r: Result<T, Errno>) -> Result<T, ChildError> {
    r.map_err(|e| ChildError::new(code, e, 0))
}

fn child_sequence(plan: &Plan, sock: BorrowedFd<'_>) -> Result<Never, ChildError> {
    // Die with the parent until READY: a create that was killed half-way leaves no process.
    step(
        STEP_PDEATHSIG,
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)),
    )?;
    let mut buf = [0u8; 16];
    match recv(sock, &mut buf) {
        Ok(1) if buf[0] == MSG_GO => {}
        Ok(_) => exit_now(1),
        Err(e) => return Err(ChildError::new(STEP_WAIT_GO, e, 0)),
    }
    if plan.new_userns {
        // Root of the new namespace: the parent mapped container uid/gid 0.
        step(
            STEP_USERNS_ROOT,
            rustix::thread::set_thread_res_gid(gid(0), gid(0), gid(0)),
        )?;
        step(
            STEP_USERNS_ROOT,
            rustix::thread::set_thread_res_uid(uid(0), uid(0), uid(0)),
        )?;
        // The runtime made itself non-dumpable (CVE-2019-5736); inside a user namespace that
        // would leave /proc/self owned by the host's root, out of reach of the container's root
        // (e.g. oom_score_adj). Container root cannot write the host's binary anyway (runc does
        // the same).
        step(
            STEP_USERNS_ROOT,
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable),
        )?;
    }
    for j in &plan.joins {
        setns(j.fd.as_fd(), j.nstype).map_err(|e| ChildError::new(STEP_SETNS, e, j.index))?;
    }
    if plan.unshare_flags != 0 {
        step(STEP_UNSHARE, unshare(plan.unshare_flags))?;
    }
    if let Some(h) = &plan.hostname {
        step(STEP_HOSTNAME, rustix::system::sethostname(h.as_bytes()))?;
    }
    if let Some(d) = &plan.domainname {
        step(STEP_DOMAINNAME, rustix::system::setdomainname(d.as_bytes()))?;
    }
    if plan.new_keyring {
        join_session_keyring()?;
    }
    // runc's order: the mounts, then the create hooks (they may mount into the rootfs from
    // the container's mount namespace), then pivot_root and the path masks.
    if let Some(rootfs) = &plan.rootfs {
        rootfs.apply_mounts()?;
    }
    if plan.create_hooks {
        step(STEP_HOOKS, send(sock, &[MSG_NS_READY]))?;
        match recv(sock, &mut buf) {
            Ok(1) if buf[0] == MSG_HOOKS_DONE => {}
            Ok(_) => exit_now(1),
            Err(e) => return Err(ChildError::new(STEP_HOOKS, e, 0)),
        }
    }
    if let Some(rootfs) = &plan.rootfs {
        rootfs.enter_root()?;
    }
    if let Some(console) = &plan.console {
        console.apply()?;
    }
    plan.process.apply_privileged()?;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the identity change
    // drops: load it now. With no_new_privs it is loaded last, so it filters as little of our
    // own setup as possible.
    if !plan.no_new_privs
        && let Some(s) = &plan.seccomp
    {
        s.apply()?;
    }
    plan.process.apply_cwd()?;
    plan.process.apply_identity()?;
    close_inherited_fds(plan.preserve_fds)?;
    let exe = plan.program.lookup()?;
    if plan.no_new_privs
        && let Some(s) = &plan.seccomp
    {
        s.apply()?;
    }
    step(
        STEP_PDEATHSIG,
        rustix::process::set_parent_process_death_signal(None),
    )?;
    step(STEP_READY, send(sock, &[MSG_READY]))?;
    // Signals are deliverable while the process waits for start (a created container dies of
    // SIGTERM as runc's does), with their default actions.
    restore_signals(&plan.sigmask)?;
    match &plan.wait {
        Wait::Fifo(fifo) => wait_fifo(fifo.as_fd())?,
        Wait::Start => match recv(sock, &mut buf) {
            Ok(1) if buf[0] == MSG_START => {}
            Ok(_) => exit_now(1),
            Err(e) => return Err(ChildError::new(STEP_WAIT_START, e, 0)),
        },
    }
    Err(plan.program.execve(exe))
}
