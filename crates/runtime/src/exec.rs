//! `exec`: a new process inside a running container.
//!
//! The runtime first makes itself non-dumpable (`PR_SET_DUMPABLE 0`, the CVE-2019-5736
//! defence: a container process cannot open `/proc/<runtime>/exe` or its memory while the
//! runtime is inside the container's namespaces). The parent joins the container's pid
//! namespace for its children, clones, and returns to its own; the child joins the other
//! namespaces (user first) with `setns`, the parent adds it to the container's cgroup, and the
//! child applies the process spec (terminal, credentials, capabilities, seccomp, cwd) and execs,
//! exactly as the container's first process does ([`crate::child`]).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use anyhow::{Context, bail};
use oci_spec::runtime::Process;

use crate::child::{self, Join, Plan, Program, Wait};
use crate::state::{Record, Root, Status};

/// The parsed `exec` command line.
struct ExecArgs {
    id: String,
    process: Process,
    console_socket: Option<std::path::PathBuf>,
    pid_file: Option<std::path::PathBuf>,
    detach: bool,
    preserve_fds: u32,
}

/// Runs `exec` and returns the exit code (the program's in the foreground).
pub(crate) fn main(root: &Root, f: &crate::cli::flags::Parsed) -> anyhow::Result<i32> {
    child::set_dumpable_off()?;
    let args = parse(root, f)?;
    exec(root, &args)
}

fn parse(root: &Root, f: &crate::cli::flags::Parsed) -> anyhow::Result<ExecArgs> {
    for (flag, what) in [
        ("apparmor", "AppArmor is not supported by drover runtime"),
        (
            "process-label",
            "SELinux is not supported by drover runtime",
        ),
        (
            "cgroup",
            "joining a sub-cgroup is not supported by drover runtime",
        ),
    ] {
        if f.get(flag).is_some_and(|v| !v.is_empty()) {
            bail!("--{flag}: {what}");
        }
    }
    let Some((id, cmd)) = f.rest.split_first() else {
        bail!("exec: usage: exec [options] <container-id> <command> [args…] (or -p process.json)");
    };
    let process = match f.get("process") {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading --process {path}"))?;
            parse_process(&bytes).with_context(|| format!("--process {path}"))?
        }
        None => {
            if cmd.is_empty() {
                bail!("exec: no command given (pass it after the container id, or use -p)");
            }
            let (rec, _) = root.load_record(id)?;
            let bundle = crate::spec::load(&rec.bundle)?;
            let mut p = bundle
                .spec
                .process()
                .clone()
                .context("process: missing in the container's config")?;
            p.set_args(Some(cmd.to_vec()));
            p.set_terminal(Some(f.on("tty")));
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(f.all("env").iter().cloned());
            p.set_env(Some(env));
            if let Some(cwd) = f.get("cwd") {
                p.set_cwd(cwd.into());
            }
            if let Some(u) = f.get("user") {
                let (uid, gid) = parse_user(u)?;
                p.user_mut().set_uid(uid);
                if let Some(g) = gid {
                    p.user_mut().set_gid(g);
                }
            }
            if !f.all("additional-gids").is_empty() {
                let gids = f
                    .all("additional-gids")
                    .iter()
                    .map(|g| {
                        g.parse::<u32>()
                            .with_context(|| format!("--additional-gids: {g:?} is not a gid"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                p.user_mut().set_additional_gids(Some(gids));
            }
            if f.on("no-new-privs") {
                p.set_no_new_privileges(Some(true));
            }
            if !f.all("cap").is_empty() {
                add_caps(&mut p, f.all("cap"))?;
            }
            p
        }
    };
    Ok(ExecArgs {
        id: id.clone(),
        process,
        console_socket: f.get("console-socket").map(Into::into),
        pid_file: f.get("pid-file").map(Into::into),
        detach: f.on("detach"),
        preserve_fds: crate::cli::parse_preserve_fds(f.get("preserve-fds"))?,
    })
}

/// A runtime-spec `process` object; like runc, a missing `user` means uid 0, gid 0.
fn parse_process(bytes: &[u8]) -> anyhow::Result<Process> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes)?;
    if let Some(o) = v.as_object_mut() {
        o.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    serde_path_to_error::deserialize::<_, Process>(v).map_err(|e| {
        let path = e.path().to_string();
        anyhow::anyhow!("{path}: {}", e.into_inner())
    })
}

/// `-u uid[:gid]` (numbers only: names would need the container's /etc/passwd).
fn parse_user(u: &str) -> anyhow::Result<(u32, Option<u32>)> {
    let (uid, gid) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let num = |s: &str| {
        s.parse::<u32>()
            .with_context(|| format!("--user: {s:?} is not a numeric id (use uid[:gid])"))
    };
    Ok((num(uid)?, gid.map(num).transpose()?))
}

fn add_caps(p: &mut Process, caps: &[String]) -> anyhow::Result<()> {
    use oci_spec::runtime::{Capability, LinuxCapabilities};
    let mut set: LinuxCapabilities = p.capabilities().clone().unwrap_or_default();
    for name in caps {
        let up = name.to_ascii_uppercase();
        let full = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        let cap: Capability = serde_json::from_value(serde_json::Value::String(full))
            .map_err(|_| anyhow::anyhow!("--cap: unknown capability {name:?}"))?;
        for field in 0..4 {
            let list = match field {
                0 => set.bounding().clone(),
                1 => set.effective().clone(),
                2 => set.permitted().clone(),
                _ => set.inheritable().clone(),
            };
            let mut list = list.unwrap_or_default();
            list.insert(cap);
            match field {
                0 => set.set_bounding(Some(list)),
                1 => set.set_effective(Some(list)),
                2 => set.set_permitted(Some(list)),
                _ => set.set_inheritable(Some(list)),
            };
        }
    }
    p.set_capabilities(Some(set));
    Ok(())
}

fn exec(root: &Root, a: &ExecArgs) -> anyhow::Result<i32> {
    let (rec, status) = root.load_record(&a.id)?;
    if status == Status::Stopped {
        bail!("cannot exec in a stopped container");
    }
    let p = &a.process;
    let terminal = p.terminal().unwrap_or(false);
    if terminal && a.console_socket.is_none() {
        bail!("--tty needs --console-socket to receive the pty master");
    }
    let min_fd = 3 + a.preserve_fds as i32;
    let mut joins = Vec::new();
    let mut pid_ns = None;
    for (i, name) in rec.namespaces.iter().enumerate() {
        let fd = open_ns(rec.pid, name)?;
        let fd = child::dup_above(fd, min_fd)?;
        let nstype = match name.as_str() {
            "pid" => {
                pid_ns = Some(fd);
                continue;
            }
            "user" => libc::CLONE_NEWUSER,
            "mnt" => libc::CLONE_NEWNS,
            "net" => libc::CLONE_NEWNET,
            "ipc" => libc::CLONE_NEWIPC,
            "uts" => libc::CLONE_NEWUTS,
            "cgroup" => libc::CLONE_NEWCGROUP,
            other => bail!("state of {}: unknown namespace {other:?}", rec.id),
        };
        let join = Join {
            fd,
            nstype,
            index: i as u32,
        };
        if nstype == libc::CLONE_NEWUSER {
            joins.insert(0, join);
        } else {
            joins.push(join);
        }
    }
    let console = match (&a.console_socket, terminal) {
        (Some(path), true) => {
            let size = p
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16));
            Some(crate::console::ChildConsole::connect(
                path, size, min_fd, false,
            )?)
        }
        _ => None,
    };
    let env = p.env().clone().unwrap_or_default();
    let program = Program::new(p.args().as_deref().unwrap_or_default(), &env)?;
    let user_namespace = rec.namespaces.iter().any(|n| n == "user");
    let process_plan = crate::process::prepare(p, &crate::process::Options { user_namespace })?;
    for w in process_plan.warnings() {
        crate::cli::warn(w);
    }
    // The exec'd process gets the container's seccomp profile, as with runc.
    let bundle = crate::spec::load(&rec.bundle)?;
    let linux = bundle.spec.linux().as_ref();
    let seccomp = crate::container::compile_seccomp(linux.and_then(|l| l.seccomp().as_ref()))?;
    let (blocked, old_mask) = child::block_signals()?;
    let plan = Plan {
        clone_flags: 0,
        unshare_flags: 0,
        joins,
        new_userns: false,
        hostname: None,
        domainname: None,
        create_hooks: false,
        console,
        rootfs: None,
        process: process_plan,
        seccomp,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        new_keyring: false,
        preserve_fds: a.preserve_fds,
        program,
        wait: Wait::Start,
        sigmask: old_mask,
    };
    let own = match &pid_ns {
        Some(fd) => {
            let own = open_ns(std::process::id() as i32, "pid")?;
            setns(fd, libc::CLONE_NEWPID).context("joining the container's pid namespace")?;
            Some(own)
        }
        None => None,
    };
    let spawned = child::spawn(&plan);
    if let Some(own) = own {
        setns(&own, libc::CLONE_NEWPID).context("returning to the runtime's pid namespace")?;
    }
    let ch = spawned?;
    let kill_child = |ch: &child::Child| {
        let _ = crate::container::kill_raw(ch.pid, libc::SIGKILL);
        let _ = rustix::process::waitpid(
            rustix::process::Pid::from_raw(ch.pid),
            rustix::process::WaitOptions::empty(),
        );
    };
    let joined = match &rec.cgroup {
        Some(cg) => cg.add_pid(ch.pid).context("joining the container's cgroup"),
        None => Ok(()),
    };
    if let Err(e) = joined.and_then(|()| ch.go()) {
        kill_child(&ch);
        return Err(e);
    }
    let outcome = ch.wait_ready().and_then(|()| ch.start());
    if let Err(f) = outcome {
        let msg = crate::container::describe(&f, &plan, &ch);
        kill_child(&ch);
        bail!("{msg}");
    }
    if let Some(path) = &a.pid_file {
        crate::container::write_pid_file(path, ch.pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    crate::container::forward_and_wait(ch.pid, &blocked)
}

fn open_ns(pid: i32, name: &str) -> anyhow::Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/{name}");
    rustix::fs::open(
        &path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .with_context(|| format!("opening {path}"))
}

#[allow(unsafe_code)]
fn setns(fd: &OwnedFd, nstype: i32) -> std::io::Result<()> {
    // SAFETY: setns on a namespace fd we own; for CLONE_NEWPID it only changes the namespace of
    // future children of this single-threaded process.
    if unsafe { libc::setns(fd.as_raw_fd(), nstype) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The pids (in the runtime's pid namespace) of every process of the container: those in its
/// pid namespace when it has its own, else just its init process.
pub(crate) fn container_pids(rec: &Record) -> anyhow::Result<Vec<i32>> {
    if let Some(cg) = &rec.cgroup
        && let Ok(pids) = cg.pids()
    {
        return Ok(pids);
    }
    if !rec.namespaces.iter().any(|n| n == "pid") {
        return Ok(vec![rec.pid]);
    }
    let target = std::fs::metadata(format!("/proc/{}/ns/pid", rec.pid))
        .with_context(|| format!("container {} is not running", rec.id))?
        .ino();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if std::fs::metadata(format!("/proc/{p}/ns/pid")).is_ok_and(|m| m.ino() == target) {
            pids.push(p);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_files_name_the_bad_field_and_default_the_user() {
        let p = parse_process(br#"{"args": ["hostname"], "cwd": "/"}"#).unwrap();
        assert_eq!(p.user().uid(), 0);
        let e = format!(
            "{:#}",
            parse_process(br#"{"args": "x", "cwd": "/"}"#).unwrap_err()
        );
        assert!(e.starts_with("args: invalid type: string"), "{e}");
        assert!(parse_process(b"[1]").is_err());
    }

    #[test]
    fn users_are_numeric_uid_and_optional_gid() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:50").unwrap(), (1000, Some(50)));
        assert!(
            parse_user("alice")
                .unwrap_err()
                .to_string()
                .starts_with("--user:")
        );
    }

    #[test]
    fn caps_are_added_to_every_set() {
        let mut p = Process::default();
        add_caps(&mut p, &["CAP_SYS_ADMIN".to_string()]).unwrap();
        let c = p.capabilities().clone().unwrap();
        assert!(
            c.effective()
                .as_ref()
                .unwrap()
                .contains(&oci_spec::runtime::Capability::SysAdmin)
        );
        assert!(
            c.bounding()
                .as_ref()
                .unwrap()
                .contains(&oci_spec::runtime::Capability::SysAdmin)
        );
        assert!(add_caps(&mut p, &["CAP_NOPE".to_string()]).is_err());
    }
}
