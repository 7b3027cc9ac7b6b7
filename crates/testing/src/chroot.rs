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
    /// The image's `User` (`name`, `uid`, `name:group`, `uid:gid`), resolved against the
    /// root's `/etc/passwd` and `/etc/group` at start; `None` runs as root.
    pub user: Option<String>,
}

impl RunSpec {
    /// The spec an image config (`config` object of the config blob) describes:
    /// `Entrypoint` + `Cmd`, `Env`, `WorkingDir` (default `/`), `User`.
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
            user: c["User"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }

    /// Adds or replaces an environment variable.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.retain(|e| e.split('=').next() != Some(key));
        self.env.push(format!("{key}={value}"));
        self
    }

    fn command(&self, netns: &NetNs, root: &Path) -> Result<Command, HarnessError> {
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
        .args(&self.env);
        if let Some(spec) = &self.user {
            // The user is set before the chroot, so unshare keeps CAP_SYS_CHROOT as an ambient
            // capability (the command inherits it: a difference from a real runtime that
            // tests of identity do not see).
            let user = resolve_user(root, spec)?;
            let groups: Vec<String> = user.groups.iter().map(u32::to_string).collect();
            cmd.arg("/usr/bin/setpriv")
                .arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .arg(if groups.is_empty() {
                    "--clear-groups".to_string()
                } else {
                    format!("--groups={}", groups.join(","))
                })
                .args(["--inh-caps=+sys_chroot", "--ambient-caps=+sys_chroot"]);
        }
        cmd.arg("/usr/bin/unshare")
            .arg(format!("--root={}", root.display()))
            .arg(format!("--wd={}", self.cwd))
            .args(&self.argv);
        Ok(cmd)
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
        let mut cmd = spec.command(netns, root)?;
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
        init_pid(&self.child)
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
        kill_namespace(&mut self.child);
    }
}

/// Host PID of the PID namespace's init, the only child of `unshare --fork`.
fn init_pid(unshare: &Child) -> Option<u32> {
    let pid = unshare.id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// Kills everything `unshare` started and reaps it. SIGKILL to the namespace's PID 1 makes the
/// kernel kill every process in it; `--kill-child` alone is not enough, since the parent-death
/// signal is cleared when the command changes user (`su redis`, a `User`).
fn kill_namespace(unshare: &mut Child) {
    if let Some(pid) = init_pid(unshare) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let _ = unshare.kill();
    let _ = unshare.wait();
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
        user: None,
    };
    let mut cmd = spec.command(netns, root)?;
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
            kill_namespace(&mut child);
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

/// A user resolved against an image's `/etc/passwd` and `/etc/group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Supplementary groups: every group of `/etc/group` that lists the user by name
    /// (sorted by GID).
    pub groups: Vec<u32>,
}

/// Resolves an image `User` (`name`, `uid`, `name:group`, `uid:gid`) the way container runtimes
/// do: names through the root's `/etc/passwd` and `/etc/group`; a numeric uid absent from
/// `/etc/passwd` gets gid 0 unless one is given.
pub fn resolve_user(root: &Path, spec: &str) -> Result<ResolvedUser, HarnessError> {
    let read = |file: &str| std::fs::read_to_string(root.join(file)).unwrap_or_default();
    let (passwd, group) = (read("etc/passwd"), read("etc/group"));
    let bad = |detail: String| HarnessError::Command {
        command: format!("resolve user {spec:?} in {}", root.display()),
        detail,
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == user_part || f[2] == user_part));
    let (uid, mut gid, name) = match (&entry, user_part.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse()
                .map_err(|_| bad(format!("bad uid in /etc/passwd: {f:?}")))?,
            f[3].parse()
                .map_err(|_| bad(format!("bad gid in /etc/passwd: {f:?}")))?,
            Some(f[0].to_string()),
        ),
        (None, Ok(uid)) => (uid, 0, None),
        (None, Err(_)) => return Err(bad("no such user in the image's /etc/passwd".into())),
    };
    let groups_lines: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups_lines
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| bad(format!("no group {g:?} in the image's /etc/group")))?,
        };
    }
    let mut groups: Vec<u32> = match &name {
        Some(name) => groups_lines
            .iter()
            .filter(|f| f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .collect(),
        None => Vec::new(),
    };
    groups.sort_unstable();
    groups.dedup();
    Ok(ResolvedUser { uid, gid, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("etc")).unwrap();
        std::fs::write(tmp.path().join("etc/passwd"), crate::fixtures::PASSWD).unwrap();
        std::fs::write(tmp.path().join("etc/group"), crate::fixtures::GROUP).unwrap();
        tmp
    }

    #[test]
    fn users_resolve_by_name_or_number_with_supplementary_groups() {
        let r = root();
        let www = resolve_user(r.path(), "www-data").unwrap();
        assert_eq!(
            www,
            ResolvedUser {
                uid: 33,
                gid: 33,
                groups: vec![4, 100]
            }
        );
        assert_eq!(resolve_user(r.path(), "33").unwrap(), www);
        let with_group = resolve_user(r.path(), "www-data:users").unwrap();
        assert_eq!((with_group.uid, with_group.gid), (33, 100));
        let numeric = resolve_user(r.path(), "1234:5678").unwrap();
        assert_eq!(
            numeric,
            ResolvedUser {
                uid: 1234,
                gid: 5678,
                groups: vec![]
            }
        );
        assert_eq!(resolve_user(r.path(), "4321").unwrap().gid, 0);
    }

    #[test]
    fn unknown_users_and_groups_are_errors_naming_them() {
        let r = root();
        let err = resolve_user(r.path(), "mallory").unwrap_err().to_string();
        assert!(
            err.contains("mallory") && err.contains("/etc/passwd"),
            "{err}"
        );
        let err = resolve_user(r.path(), "www-data:wheel")
            .unwrap_err()
            .to_string();
        assert!(err.contains("wheel"), "{err}");
    }
}
