//! The contract between the parent and the child of `clone`.
//!
//! Code that runs in the child between `clone` and `execve` may only make raw syscalls on data
//! the parent prepared: no allocation (so no `String`, `Vec`, `format!`, `PathBuf`), no locks
//! (so no `println!`, no `std::env`), no logging. Each module keeps a *plan* type built in the
//! parent (`prepare(…) -> anyhow::Result<Plan>`, allocating freely) and an `apply(&self) ->
//! Result<(), ChildError>` that runs in the child.
//!
//! A failure in the child is a [`ChildError`]: a step code, the errno and an index (which mount,
//! which rlimit, …). It crosses a pipe as 12 bytes and the parent turns it into a message with
//! [`ChildError::describe`]. Step codes are grouped by module so modules never collide:
//! 1–99 [`crate::child`] and [`crate::console`], 100–199 [`crate::rootfs`], 200–299
//! [`crate::process`], 300–399 [`crate::cgroups`], 400–499 [`crate::seccomp`].

/// A failure in the child, small and plain enough to write to a pipe without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildError {
    /// What the child was doing (a module's step code).
    pub step: u32,
    /// The errno the syscall returned (0 when the failure was not a syscall's).
    pub errno: i32,
    /// Which item of the plan failed (mount number, rlimit number, …); 0 when not meaningful.
    pub index: u32,
}

impl ChildError {
    /// A failure of `step` with the errno of a rustix call.
    pub fn new(step: u32, err: rustix::io::Errno, index: u32) -> Self {
        Self {
            step,
            errno: err.raw_os_error(),
            index,
        }
    }

    /// The 12 bytes sent over the error pipe.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.step.to_ne_bytes());
        b[4..8].copy_from_slice(&self.errno.to_ne_bytes());
        b[8..12].copy_from_slice(&self.index.to_ne_bytes());
        b
    }

    /// The inverse of [`ChildError::to_bytes`].
    pub fn from_bytes(b: [u8; 12]) -> Self {
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Self {
            step: u32::from_ne_bytes(word(0)),
            errno: i32::from_ne_bytes(word(4)),
            index: u32::from_ne_bytes(word(8)),
        }
    }

    /// The step's name from the module that owns its code range (parent side; allocates).
    pub fn step_name(&self) -> &'static str {
        match self.step {
            1..=99 => crate::child::step_name(self.step),
            100..=199 => crate::rootfs::step_name(self.step),
            200..=299 => crate::process::step_name(self.step),
            300..=399 => crate::cgroups::step_name(self.step),
            400..=499 => crate::seccomp::step_name(self.step),
            _ => "unknown step",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ChildError;

    #[test]
    fn child_error_round_trips_through_bytes() {
        let e = ChildError {
            step: 104,
            errno: libc::ENOENT,
            index: 7,
        };
        assert_eq!(ChildError::from_bytes(e.to_bytes()), e);
    }
}
