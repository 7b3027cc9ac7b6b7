//! The child's raw syscalls (and the parent's signal and dumpable setup): each a thin,
//! allocation-free wrapper with its SAFETY argument.

use std::os::fd::{AsRawFd, BorrowedFd};

use anyhow::{Context, bail};
use rustix::io::Errno;

use super::{
    STEP_CLOSE_FDS, STEP_FIFO_OPEN, STEP_FIFO_WRITE, STEP_KEYRING, STEP_PRESERVE_FDS, STEP_SIGMASK,
    step,
};
use crate::sys::ChildError;

/// A fork-like `clone`: no new stack, no shared memory; returns 0 in the child.
#[allow(unsafe_code)]
pub(super) fn clone_process(ns_flags: i32) -> std::io::Result<i32> {
    // SAFETY: SYS_clone with a NULL stack behaves like fork(2) with namespace flags: the child
    // gets a copy of the address space and continues here. The caller is single-threaded (the
    // runtime CLI never starts threads), so no lock can be held by a thread that does not exist
    // in the child, and the child only makes raw syscalls on data prepared before the clone
    // (no allocation, see crate::sys) until it execs or `_exit`s.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (ns_flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ret as i32)
}

/// `_exit` without running any destructor or atexit handler.
#[allow(unsafe_code)]
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

pub(super) fn uid(n: u32) -> rustix::process::Uid {
    rustix::process::Uid::from_raw(n)
}

pub(super) fn gid(n: u32) -> rustix::process::Gid {
    rustix::process::Gid::from_raw(n)
}

#[allow(unsafe_code)]
pub(super) fn unshare(flags: i32) -> Result<(), Errno> {
    let flags = rustix::thread::UnshareFlags::from_bits_retain(flags as u32);
    // SAFETY: the child is single-threaded, so no other thread can observe the namespaces (or
    // an unshared fd table) change under it.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}

#[allow(unsafe_code)]
pub(super) fn setns(fd: BorrowedFd<'_>, nstype: i32) -> Result<(), Errno> {
    // SAFETY: setns on a namespace fd we own; it changes only this (single-threaded) process.
    let r = unsafe { libc::setns(fd.as_raw_fd(), nstype) };
    if r < 0 {
        Err(Errno::from_raw_os_error(last_errno()))
    } else {
        Ok(())
    }
}

pub(super) fn last_errno() -> i32 {
    // Reads errno without allocating.
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Marks every fd from 3 + `preserve` up close-on-exec (one `close_range`), and clears it on
/// the preserved ones: the program sees only stdio and `--preserve-fds` (CVE-2024-21626).
#[allow(unsafe_code)]
pub(super) fn close_inherited_fds(preserve: u32) -> Result<(), ChildError> {
    for fd in 3..3 + preserve as i32 {
        // SAFETY: fcntl on an fd number; a closed number just fails with EBADF.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
            return Err(ChildError {
                step: STEP_PRESERVE_FDS,
                errno: last_errno(),
                index: fd as u32,
            });
        }
    }
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 + preserve,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(ChildError {
            step: STEP_CLOSE_FDS,
            errno: last_errno(),
            index: 0,
        });
    }
    Ok(())
}

/// Reopens the `O_PATH` fifo for writing — this blocks until `start` opens it for reading —
/// and writes one byte.
pub(super) fn wait_fifo(fifo: BorrowedFd<'_>) -> Result<(), ChildError> {
    let path = crate::rootfs::FdPath::new(fifo);
    let p = path.as_cstr();
    let fd = loop {
        match rustix::fs::open(
            p,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => break fd,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(ChildError::new(STEP_FIFO_OPEN, e, 0)),
        }
    };
    step(STEP_FIFO_WRITE, rustix::io::write(&fd, b"0"))?;
    Ok(())
}

/// Restores the signal mask, and SIGPIPE's default action (Rust ignores SIGPIPE in the runtime,
/// and an ignored signal would stay ignored across exec).
#[allow(unsafe_code)]
pub(super) fn restore_signals(mask: &libc::sigset_t) -> Result<(), ChildError> {
    // SAFETY: signal() and sigprocmask are async-signal-safe; the set was prepared by the parent.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(ChildError {
            step: STEP_SIGMASK,
            errno: last_errno(),
            index: 1,
        });
    }
    // SAFETY: as above.
    if unsafe { libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) } < 0 {
        return Err(ChildError {
            step: STEP_SIGMASK,
            errno: last_errno(),
            index: 0,
        });
    }
    Ok(())
}

#[allow(unsafe_code)]
pub(super) fn join_session_keyring() -> Result<(), ChildError> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, NULL) makes an anonymous keyring; no memory is read.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0usize) };
    if r < 0 {
        let errno = last_errno();
        // Kernels without keys (ENOSYS) or a full quota (EDQUOT) run without one, like runc.
        if errno != libc::ENOSYS && errno != libc::EDQUOT {
            return Err(ChildError {
                step: STEP_KEYRING,
                errno,
                index: 0,
            });
        }
    }
    Ok(())
}

/// `prctl(PR_SET_DUMPABLE, 0)`: while this binary runs inside a container's namespaces (the
/// child until `execve`, the whole `exec` parent), no container process can open its
/// `/proc/PID/exe` or memory (CVE-2019-5736). `execve` of the program resets it.
#[allow(unsafe_code)]
pub(crate) fn set_dumpable_off() -> anyhow::Result<()> {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes integers only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_DUMPABLE, 0)");
    }
    Ok(())
}

/// Blocks the signals the parent forwards (and SIGCHLD) and returns the previous mask, which
/// the child restores before exec.
#[allow(unsafe_code)]
pub fn block_signals() -> anyhow::Result<(libc::sigset_t, libc::sigset_t)> {
    // SAFETY: plain sigset manipulation on stack values; sigprocmask on this single thread.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        // Keep the synchronous fault signals deliverable.
        for s in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGTRAP,
        ] {
            libc::sigdelset(&mut all, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &all, &mut old) < 0 {
            bail!("sigprocmask: {}", std::io::Error::last_os_error());
        }
        Ok((all, old))
    }
}
