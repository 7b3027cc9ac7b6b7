//! OCI lifecycle hooks: each runs with the container's state JSON on stdin, in order, with the
//! hook's own `args` (`args[0]` is `argv[0]`) and `env` (replacing the runtime's environment),
//! and an optional `timeout` in seconds. A hook that exits non-zero, is killed or times out is an error.
//!
//! `prestart` (deprecated) and `createRuntime` run in the runtime's namespaces during `create`,
//! after the container's namespaces exist and before `pivot_root`; `createContainer` runs at the
//! same point but inside the container's mount namespace; `startContainer` runs during `start`
//! in the container's mount namespace, before the program; `poststart` after it starts and
//! `poststop` at `delete`, both in the runtime's namespaces (their failures are only warnings,
//! as the spec requires).

use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use oci_spec::runtime::{Hook, Hooks};

/// The hook points of the runtime spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// `prestart` (deprecated; runs with `createRuntime`).
    Prestart,
    /// `createRuntime`.
    CreateRuntime,
    /// `createContainer`.
    CreateContainer,
    /// `startContainer`.
    StartContainer,
    /// `poststart`.
    Poststart,
    /// `poststop`.
    Poststop,
}

impl Point {
    /// The spec's field name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Prestart => "prestart",
            Self::CreateRuntime => "createRuntime",
            Self::CreateContainer => "createContainer",
            Self::StartContainer => "startContainer",
            Self::Poststart => "poststart",
            Self::Poststop => "poststop",
        }
    }

    /// The hooks the spec lists for this point.
    #[allow(deprecated)]
    pub fn of(self, hooks: Option<&Hooks>) -> &[Hook] {
        let Some(h) = hooks else { return &[] };
        let list = match self {
            Self::Prestart => h.prestart(),
            Self::CreateRuntime => h.create_runtime(),
            Self::CreateContainer => h.create_container(),
            Self::StartContainer => h.start_container(),
            Self::Poststart => h.poststart(),
            Self::Poststop => h.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

/// Runs every hook of `point` in order; the first failure stops and is returned.
///
/// `mnt_ns`: the container's mount namespace, joined by the hook process before it execs
/// (`createContainer`, `startContainer`).
pub fn run(
    point: Point,
    hooks: Option<&Hooks>,
    state_json: &[u8],
    mnt_ns: Option<BorrowedFd<'_>>,
) -> anyhow::Result<()> {
    for (i, hook) in point.of(hooks).iter().enumerate() {
        run_one(hook, state_json, mnt_ns)
            .with_context(|| format!("{} hook #{i} ({})", point.name(), hook.path().display()))?;
    }
    Ok(())
}

fn run_one(hook: &Hook, state_json: &[u8], mnt_ns: Option<BorrowedFd<'_>>) -> anyhow::Result<()> {
    let mut cmd = Command::new(hook.path());
    if let Some((first, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped());
    if let Some(ns) = mnt_ns {
        join_in_child(&mut cmd, ns.as_raw_fd());
    }
    let mut child = cmd.spawn().context("starting the hook")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin may exit first: a broken pipe is not an error.
        match stdin.write_all(state_json) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(e).context("writing the state to the hook's stdin");
            }
            _ => {}
        }
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let started = Instant::now();
    let mut nap = Duration::from_micros(200);
    let status = loop {
        if let Some(s) = child.try_wait().context("waiting for the hook")? {
            break s;
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", timeout.unwrap_or_default().as_secs());
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    };
    if let Some(sig) = status.signal() {
        bail!("killed by signal {sig}");
    }
    match status.code() {
        Some(0) => Ok(()),
        Some(c) => bail!("exit status {c}"),
        None => bail!("ended abnormally"),
    }
}

#[allow(unsafe_code)]
fn join_in_child(cmd: &mut Command, ns: i32) {
    // SAFETY: the closure runs between fork and exec in the single-threaded hook child and
    // makes one syscall (setns) on an fd the parent keeps open; it does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns, libc::CLONE_NEWNS) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(json: serde_json::Value) -> Hooks {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn hooks_run_in_order_with_the_state_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!("cat >> {0}; echo \" $0 $1 $X\" >> {0}", out.display());
        let h = hooks(serde_json::json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", script, "first", "a1"], "env": ["X=1"]},
            {"path": "/bin/sh", "args": ["sh", "-c", script, "second", "a2"], "env": ["X=2"]},
        ]}));
        run(Point::CreateRuntime, Some(&h), b"{\"id\":\"c\"}", None).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got,
            "{\"id\":\"c\"} first a1 1\n{\"id\":\"c\"} second a2 2\n"
        );
        // Other points have no hooks here: nothing runs.
        run(Point::Poststop, Some(&h), b"", None).unwrap();
    }

    #[test]
    fn a_failing_hook_is_an_error_that_names_it() {
        let h = hooks(serde_json::json!({"prestart": [
            {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]},
        ]}));
        let e = format!(
            "{:#}",
            run(Point::Prestart, Some(&h), b"", None).unwrap_err()
        );
        assert_eq!(e, "prestart hook #0 (/bin/sh): exit status 3");
    }

    #[test]
    fn a_slow_hook_times_out() {
        let h = hooks(serde_json::json!({"poststart": [
            {"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1},
        ]}));
        let t = Instant::now();
        let e = format!(
            "{:#}",
            run(Point::Poststart, Some(&h), b"", None).unwrap_err()
        );
        assert!(e.ends_with("timed out after 1s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(20));
    }
}
