//! Drover's OCI runtime.
//!
//! `drover runtime …` (or the `drover-runtime` link to the binary) runs [`cli::main`] before any
//! async runtime, logging or the full CLI exists: the process is single-threaded from start to
//! end. That is what makes the process model safe:
//!
//! * The **parent** (the `create`/`run`/`exec` process) does everything that allocates, parses or
//!   can fail in interesting ways: it reads `config.json`, resolves paths, compiles the seccomp
//!   filter, creates cgroups and turns the whole spec into plans of pre-built C strings and
//!   numbers.
//! * The **child** is made with a fork-like `clone` (no new stack, no exec of our binary) and
//!   applies those plans with raw syscalls only: no allocation, no locks, no logging. A failure
//!   is reported as a fixed-size [`sys::ChildError`] over a pipe and the child `_exit`s.
//! * The child ends by `execve`-ing the user's program; the container never runs our binary.
//!
//! Modules: [`cli`] (runc's verbs, flags and exit codes), [`spec`] (load and check
//! `config.json`), [`state`] (the state directory), [`container`] (create/start/kill/delete),
//! [`child`] (clone and the child's sequence), [`exec`] (setns into a running container),
//! [`console`] (pty and `--console-socket`), [`hooks`], [`rootfs`] (mounts, /dev, pivot_root,
//! masked and read-only paths), [`process`] (rlimits, oom score, credentials, capabilities,
//! no_new_privs), [`cgroups`] (v1, v2 and hybrid), [`seccomp`] (OCI profile → BPF) and [`sys`]
//! (the no-allocation helpers and the child error contract).

pub mod cgroups;
pub mod child;
pub mod cli;
pub mod console;
pub mod container;
pub mod exec;
pub mod hooks;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;
