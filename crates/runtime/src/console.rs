//! `process.terminal: true`: a pty whose master goes to `--console-socket`, runc's protocol.
//!
//! The parent connects to the console socket (a listening `AF_UNIX` stream socket of the
//! caller: conmon, podman, a test) before the clone. The child, after the rootfs is in place,
//! opens the container's `/dev/ptmx` (so the pty belongs to the container's devpts instance),
//! gets the slave with `TIOCGPTPEER` (no path lookup, no allocation), sends the master over the
//! socket with `SCM_RIGHTS` (payload: the name `/dev/ptmx`, like runc), makes the slave its
//! controlling terminal and its stdin, stdout and stderr.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, bail};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use rustix::pty::OpenptFlags;

use crate::sys::ChildError;

/// Opening `/dev/ptmx` in the container.
pub const STEP_PTMX: u32 = 20;
/// Unlocking the pty.
pub const STEP_UNLOCKPT: u32 = 21;
/// Opening the slave with `TIOCGPTPEER`.
pub const STEP_PEER: u32 = 22;
/// Sending the master over the console socket.
pub const STEP_SEND: u32 = 23;
/// `setsid`.
pub const STEP_SETSID: u32 = 24;
/// `TIOCSCTTY`.
pub const STEP_CTTY: u32 = 25;
/// Making the slave stdin, stdout and stderr.
pub const STEP_STDIO: u32 = 26;
/// Setting the window size.
pub const STEP_WINSIZE: u32 = 27;

/// The name of one of this module's child step codes.
pub fn step_name(step: u32) -> &'static str {
    match step {
        STEP_PTMX => "opening /dev/ptmx in the container",
        STEP_UNLOCKPT => "unlocking the pty",
        STEP_PEER => "opening the pty slave",
        STEP_SEND => "sending the pty master to the console socket",
        STEP_SETSID => "starting a session",
        STEP_CTTY => "setting the controlling terminal",
        STEP_STDIO => "making the pty the standard streams",
        STEP_WINSIZE => "setting the terminal size",
        _ => "console step",
    }
}

/// The child's terminal plan: the connected console socket and the initial size.
#[derive(Debug)]
pub struct ChildConsole {
    socket: OwnedFd,
    size: Option<(u16, u16)>,
    bind_console: bool,
}

impl ChildConsole {
    /// Parent: connects to `--console-socket` (fd renumbered above `min_fd`). `bind_console`:
    /// also bind the slave onto the container's `/dev/console` (the container's first process,
    /// not `exec`).
    pub fn connect(
        path: &Path,
        size: Option<(u16, u16)>,
        min_fd: i32,
        bind_console: bool,
    ) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("connecting to the console socket {}", path.display()))?;
        let socket = crate::child::dup_above(OwnedFd::from(stream), min_fd)?;
        Ok(Self {
            socket,
            size,
            bind_console,
        })
    }

    /// Child: makes the pty, hands the master over and takes the slave as terminal and stdio.
    pub fn apply(&self) -> Result<(), ChildError> {
        let step = |code: u32| move |e: Errno| ChildError::new(code, e, 0);
        let master = rustix::fs::open(
            c"/dev/ptmx",
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(step(STEP_PTMX))?;
        rustix::pty::unlockpt(&master).map_err(step(STEP_UNLOCKPT))?;
        let slave =
            rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
                .map_err(step(STEP_PEER))?;
        if self.bind_console {
            crate::rootfs::bind_console(slave.as_fd())?;
        }
        if let Some((rows, cols)) = self.size {
            let ws = rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            rustix::termios::tcsetwinsize(&slave, ws).map_err(step(STEP_WINSIZE))?;
        }
        send_fd(self.socket.as_fd(), master.as_fd()).map_err(step(STEP_SEND))?;
        drop(master);
        rustix::process::setsid().map_err(step(STEP_SETSID))?;
        rustix::process::ioctl_tiocsctty(&slave).map_err(step(STEP_CTTY))?;
        rustix::stdio::dup2_stdin(&slave).map_err(step(STEP_STDIO))?;
        rustix::stdio::dup2_stdout(&slave).map_err(step(STEP_STDIO))?;
        rustix::stdio::dup2_stderr(&slave).map_err(step(STEP_STDIO))?;
        Ok(())
    }
}

/// Sends `fd` over `socket` with `SCM_RIGHTS` and the payload `/dev/ptmx` (no allocation).
fn send_fd(
    socket: rustix::fd::BorrowedFd<'_>,
    fd: rustix::fd::BorrowedFd<'_>,
) -> Result<(), Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Errno::NOBUFS);
    }
    let payload = [std::io::IoSlice::new(b"/dev/ptmx")];
    rustix::net::sendmsg(socket, &payload, &mut cmsg, SendFlags::NOSIGNAL).map(|_| ())
}

/// Receives a pty master sent by [`ChildConsole::apply`] (or by runc): the caller's side of a
/// console socket, used by `exec`/`run` tests and tools that drive the runtime.
pub fn recv_fd(stream: &UnixStream) -> anyhow::Result<OwnedFd> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    rustix::net::recvmsg(stream, &mut iov, &mut cmsg, RecvFlags::CMSG_CLOEXEC)
        .context("receiving the pty master from the console socket")?;
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    bail!("the console socket message carried no file descriptor")
}

impl ChildConsole {
    /// Parent: a console whose master comes back to the runtime itself (foreground `run` and
    /// `exec` without `--console-socket`, which then proxy the terminal like runc). Returns the
    /// child's plan and the runtime's end of the socket.
    pub fn pair(
        size: Option<(u16, u16)>,
        min_fd: i32,
        bind_console: bool,
    ) -> anyhow::Result<(Self, UnixStream)> {
        let (ours, theirs) = UnixStream::pair().context("creating the console socket pair")?;
        let socket = crate::child::dup_above(OwnedFd::from(theirs), min_fd)?;
        Ok((
            Self {
                socket,
                size,
                bind_console,
            },
            ours,
        ))
    }
}

/// The host terminal in raw mode for as long as it lives (restored on drop).
struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    fn enter() -> Self {
        let stdin = rustix::stdio::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(stdin) else {
            return Self { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
        Self { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                rustix::stdio::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

/// Proxies the runtime's stdin/stdout to the container's pty `master` until `child` exits,
/// forwarding signals (SIGWINCH also resizes the pty); returns the exit code (128+N when
/// killed by signal N). `blocked`: the signals the runtime blocked (all but faults).
pub(crate) fn proxy_and_wait(
    master: OwnedFd,
    child: i32,
    blocked: &libc::sigset_t,
) -> anyhow::Result<i32> {
    use rustix::event::{PollFd, PollFlags, poll};
    let sigfd = signal_fd(blocked)?;
    let _raw = RawMode::enter();
    resize(&master);
    let stdin = rustix::stdio::stdin();
    let stdout = rustix::stdio::stdout();
    let (mut master_open, mut stdin_open) = (true, true);
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(&sigfd, PollFlags::IN)];
        if master_open {
            fds.push(PollFd::new(&master, PollFlags::IN));
        }
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e).context("polling the terminal"),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut i = 1;
        if master_open {
            if ready[i] {
                match rustix::io::read(&master, &mut buf) {
                    Ok(0) | Err(Errno::IO) => master_open = false,
                    Ok(n) => write_all(stdout, &buf[..n])?,
                    Err(Errno::INTR) | Err(Errno::AGAIN) => {}
                    Err(e) => return Err(e).context("reading the container's terminal"),
                }
            }
            i += 1;
        }
        if stdin_open && ready[i] {
            match rustix::io::read(stdin, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => write_all(master.as_fd(), &buf[..n])?,
                Err(Errno::INTR) | Err(Errno::AGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
        if ready[0] {
            let mut info = [0u8; 128];
            while let Ok(128) = rustix::io::read(&sigfd, &mut info) {
                let sig = i32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                if sig == libc::SIGWINCH {
                    resize(&master);
                }
                if sig != libc::SIGCHLD {
                    crate::container::kill_raw(child, sig);
                }
            }
            if let Some(code) = reap(child)? {
                // Drain what the program wrote before it exited.
                while master_open {
                    match rustix::io::read(&master, &mut buf) {
                        Ok(n) if n > 0 => write_all(stdout, &buf[..n])?,
                        _ => master_open = false,
                    }
                }
                return Ok(code);
            }
        }
    }
}

fn write_all(fd: rustix::fd::BorrowedFd<'_>, mut b: &[u8]) -> anyhow::Result<()> {
    while !b.is_empty() {
        match rustix::io::write(fd, b) {
            Ok(n) => b = &b[n..],
            Err(Errno::INTR) | Err(Errno::AGAIN) => {}
            Err(e) => return Err(e).context("copying terminal output"),
        }
    }
    Ok(())
}

fn resize(master: &OwnedFd) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
}

/// The exit code of `child` if it has exited (reaped), else None.
fn reap(child: i32) -> anyhow::Result<Option<i32>> {
    let pid = rustix::process::Pid::from_raw(child).context("bad pid")?;
    match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG) {
        Ok(Some((_, st))) => Ok(st
            .exit_status()
            .or_else(|| st.terminating_signal().map(|s| 128 + s))),
        Ok(None) => Ok(None),
        Err(e) => Err(e).context("waitpid"),
    }
}

#[allow(unsafe_code)]
fn signal_fd(set: &libc::sigset_t) -> anyhow::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: signalfd on a valid, blocked signal set; the returned fd is owned below.
    let fd = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("signalfd");
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
