//! Seccomp: the OCI `linux.seccomp` profile compiled to classic BPF by our own compiler (no
//! libseccomp), and podman's default profile.
//!
//! The parent calls [`compile`] (allocates, can fail with a message naming the rule); the child
//! calls [`Program::apply`] as one of its last steps before `execve` (raw syscall, no
//! allocation). [`default_profile`] builds podman's default profile for a capability set.
//!
//! Semantics worth knowing (also in `docs/runtime-cgroups-seccomp.md`):
//! * Syscall names the native table does not know are skipped, as runc skips names libseccomp
//!   does not know; [`Program::unknown_names`] lists them. A misspelt name is indistinguishable
//!   from a syscall of another architecture and is skipped too.
//! * Rules for one syscall are tried in profile order; the first whose conditions all hold
//!   decides.
//! * The native architecture is compiled, plus i386 on x86_64 when the profile lists
//!   `SCMP_ARCH_X86`. A syscall made through another ABI (x32, or i386 when not listed) is
//!   killed, like libseccomp's default bad-arch action.

mod bpf;
mod compile;
mod profile;
mod syscalls;

pub use bpf::Insn;
pub use compile::{BAD_ARCH_ACTION, I386_AUDIT_ARCH, NATIVE_AUDIT_ARCH, X32_SYSCALL_BIT, compile};
pub use profile::{PODMAN_DEFAULT_CAPABILITIES, default_profile};
pub use syscalls::{
    Abi, name as syscall_name, number as syscall_number, number_in as syscall_number_in,
};

use crate::sys::ChildError;

/// Errors of [`compile`].
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile uses a feature this runtime does not implement.
    #[error("seccomp: {what} is not supported")]
    Unsupported {
        /// What was asked.
        what: String,
    },
    /// An argument condition is invalid.
    #[error("seccomp: linux.seccomp.syscalls[{rule}].args: {reason}")]
    BadArg {
        /// Index of the rule in `linux.seccomp.syscalls`.
        rule: usize,
        /// What is wrong.
        reason: String,
    },
    /// The program exceeds the kernel's 4096-instruction limit.
    #[error(
        "seccomp: the compiled filter has {len} instructions, above the kernel's limit of 4096"
    )]
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// Step code: `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
pub const STEP_SET_FILTER: u32 = 400;
/// Step code: the `prctl(PR_SET_SECCOMP)` fallback failed.
pub const STEP_PRCTL: u32 = 401;

/// A compiled filter, ready for [`Program::apply`] in the child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
    flags: u32,
    unknown_names: Vec<String>,
    notes: Vec<String>,
}

impl Program {
    /// The BPF instructions.
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits passed to `seccomp(2)`.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Syscall names of the profile the native table does not know (skipped, like runc).
    pub fn unknown_names(&self) -> &[String] {
        &self.unknown_names
    }

    /// Other things the compiler decided that a user may want to see (architectures left out).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Installs the filter on the calling thread. Runs in the child: no allocation. The caller
    /// has set `no_new_privs` or holds `CAP_SYS_ADMIN`, as the kernel requires.
    #[allow(unsafe_code)]
    pub fn apply(&self) -> Result<(), ChildError> {
        let prog = libc::sock_fprog {
            len: self.insns.len() as u16,
            filter: self.insns.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `self.insns`, a live slice of `Insn`, which is `repr(C)` with
        // the layout of `struct sock_filter` (u16, u8, u8, u32); the kernel copies the program
        // before returning and does not keep the pointer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let errno = if r > 0 {
            // TSYNC: the id of a thread that could not be synchronised.
            libc::ESRCH
        } else {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        };
        if errno != libc::ENOSYS || self.flags != 0 {
            return Err(ChildError {
                step: STEP_SET_FILTER,
                errno,
                index: 0,
            });
        }
        // SAFETY: as above; prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) reads the same
        // struct (kernels before 3.17 have no seccomp(2)).
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(ChildError {
                step: STEP_PRCTL,
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                index: 0,
            })
        }
    }
}

/// The name of one of this module's child step codes (see [`crate::sys`]).
pub fn step_name(step: u32) -> &'static str {
    match step {
        STEP_SET_FILTER => "install the seccomp filter (seccomp SECCOMP_SET_MODE_FILTER)",
        STEP_PRCTL => "install the seccomp filter (prctl PR_SET_SECCOMP)",
        _ => "seccomp step",
    }
}

#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod tests;
