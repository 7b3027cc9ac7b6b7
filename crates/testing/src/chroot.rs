//! Runs an unpacked image's command in a `chroot`, inside a test's network namespace, in fresh
//! PID, mount and UTS namespaces — a stand-in for a container runtime, enough to check that a
//! fixture behaves (serves, answers, stops on its stop signal) before Drover's runtime exists.
//!
//! The process tree is `ip netns exec NS unshare --pid --fork --kill-child --mount --uts sh -c
//! '<mount /proc and /dev>; exec env -i ENV… unshare --root=ROOT --wd=CWD ARGV…'`, so the image
//! needs no shell of its own. On drop the namespace's PID 1 is
//! SIGKILLed by PID (the kernel then kills every process in the namespace) and `unshare` too;
//! the mounts vanish with the mount namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::HarnessError;
use crate::netns::{NetNs, command_line};

/// What to run in the chroot: argv, environment, working directory, hostname.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The command and its arguments (resolved through `PATH` in `env`).
    pub argv: Vec<String>,
    /// `KEY=value` entries; nothing else is in the environment.
    pub env: Vec<String>,
    /// Working directory inside the root.
    pub cwd: String,
    /// Hostname in the UTS namespace.
    pub hostname: String,
}

impl RunSpec {
    /// The spec an image config (`config` object of the config blob) describes:
    /// `Entrypoint` + `Cmd`, `Env`, `WorkingDir` (default `/`). `User` is ignored (runs as
    /// root); the fixtures' entrypoints switch users themselves, like the originals.
    pub fn from_config(config: &Value) -> Self {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let c = &config["config"];
        let mut argv = strings(&c["Entrypoint"]);
        argv.extend(strings(&c["Cmd"]));
        Self {
            argv,
            env: strings(&c["Env"]),
            cwd: c["WorkingDir"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("/")
                .to_string(),
            hostname: "drover-test-chroot".into(),
        }
    }

    /// Adds or replaces an environment variable.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.retain(|e| e.split('=').next() != Some(key));
        self.env.push(format!("{key}={value}"));
        self
    }

    fn command(&self, netns: &NetNs, root: &Path) -> Command {
        // Arguments: root, hostname, the environment, then `unshare --root --wd argv`; env and
        // unshare are the host's, so the image needs neither a shell nor `env` (distroless).
        const SCRIPT: &str = r#"set -e
root="$1"; host="$2"; shift 2
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
hostname "$host"
exec /usr/bin/env -i "$@"
"#;
        let mut cmd = netns.command("unshare");
        cmd.args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "sh",
            "-c",
            SCRIPT,
            "sh",
        ])
        .arg(root)
        .arg(&self.hostname)
        .args(&self.env)
        .arg("/usr/bin/unshare")
        .arg(format!("--root={}", root.display()))
        .arg(format!("--wd={}", self.cwd))
        .args(&self.argv);
        cmd
    }
}

/// A long-running process in a chroot (see the module docs); killed on drop.
#[derive(Debug)]
pub struct ChrootProcess {
    child: Child,
    log: PathBuf,
}

impl ChrootProcess {
    /// Starts `spec` in `root` inside `netns`; stdout and stderr go to `log`.
    pub fn spawn(
        netns: &NetNs,
        root: &Path,
        spec: &RunSpec,
        log: &Path,
    ) -> Result<Self, HarnessError> {
        let io = |source| HarnessError::Io {
            what: format!("create log {}", log.display()),
            source,
        };
        let out = std::fs::File::create(log).map_err(io)?;
        let err = out.try_clone().map_err(io)?;
        let mut cmd = spec.command(netns, root);
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().map_err(|e| HarnessError::Command {
            command: command_line(&cmd),
            detail: e.to_string(),
        })?;
        Ok(Self {
            child,
            log: log.to_path_buf(),
        })
    }

    /// The output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Host PID of the namespace's PID 1 (the image's command), once it exists.
    pub fn init_pid(&self) -> Option<u32> {
        let pid = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// Sends `signal` (e.g. `QUIT`, `TERM`) to the image's command, by PID.
    pub fn signal(&self, signal: &str) -> Result<(), HarnessError> {
        let pid = self.init_pid().ok_or_else(|| HarnessError::Command {
            command: format!("kill -{signal}"),
            detail: "the chroot's PID 1 is not running".into(),
        })?;
        let mut kill = Command::new("kill");
        kill.arg(format!("-{signal}")).arg(pid.to_string());
        crate::netns::run(&mut kill).map(drop)
    }

    /// Waits up to `timeout` for the process to end.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChrootProcess {
    fn drop(&mut self) {
        // SIGKILL to the namespace's PID 1 makes the kernel kill every process in it.
        // `--kill-child` alone is not enough: the parent-death signal is cleared when the
        // image's entrypoint changes user (`su redis`).
        if let Some(pid) = self.init_pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `argv` to completion in `root` inside `netns` (same wrapping as [`ChrootProcess`]),
/// with `env` as its whole environment; gives up after `timeout`.
pub fn chroot_exec(
    netns: &NetNs,
    root: &Path,
    env: &[String],
    argv: &[&str],
    timeout: Duration,
) -> Result<Output, HarnessError> {
    let spec = RunSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: env.to_vec(),
        cwd: "/".into(),
        hostname: "drover-test-exec".into(),
    };
    let mut cmd = spec.command(netns, root);
    let line = command_line(&cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::Command {
            command: line.clone(),
            detail: e.to_string(),
        })?;
    let deadline = Instant::now() + timeout;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HarnessError::Command {
                command: line,
                detail: format!("still running after {timeout:?}; killed"),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().map_err(|e| HarnessError::Command {
        command: line,
        detail: e.to_string(),
    })
}
