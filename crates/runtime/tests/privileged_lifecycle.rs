//! The runtime's lifecycle, driven through its CLI as root with busybox bundles: create → start →
//! kill → delete, run exit codes, duplicate ids, a missing binary, a bad config, namespaces seen
//! from inside, user namespace mappings, fd leaks, `--preserve-fds`, the exec fifo, exec with
//! and without a terminal, hooks, and stdio passthrough.

#[path = "../testdata/bundles/support.rs"]
mod support;

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use serde_json::json;
use support::{Bundle, Container, base_config, privileged, text};

fn cmdline(pid: i64) -> String {
    text(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

#[test]
fn create_start_kill_delete_moves_through_runcs_states() {
    if !privileged() {
        return;
    }
    let bundle = Bundle::new(&base_config(&["sleep", "1000"]));
    let c = Container::new("life");
    let pid_file = c.root.path().join("pid");
    let out = c.rt(&[
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
    ]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], c.id.as_str());
    assert_eq!(st["bundle"], bundle.path().to_str().unwrap());
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // The exec fifo holds the program back: the process is still the runtime, not sleep.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !cmdline(pid).starts_with("sleep"),
        "program ran before start: {}",
        cmdline(pid)
    );
    // Its cgroup exists (named after the id).
    assert!(
        !support::cgroup_dirs_named(&c.id).is_empty(),
        "no cgroup named {}",
        c.id
    );

    let out = c.rt(&["start", &c.id]);
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    assert_eq!(c.status(), "running");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(cmdline(pid).trim(), "sleep 1000");
    let out = c.rt(&["start", &c.id]);
    assert!(!out.status.success(), "a second start must fail");
    assert!(
        text(&out.stderr).contains("cannot start an already running container"),
        "{}",
        text(&out.stderr)
    );
    let out = c.rt(&["delete", &c.id]);
    assert!(
        !out.status.success(),
        "delete of a running container without --force must fail"
    );
    assert!(
        text(&out.stderr).contains("that is not stopped: running"),
        "{}",
        text(&out.stderr)
    );

    let out = c.rt(&["kill", &c.id, "KILL"]);
    assert!(out.status.success(), "kill: {}", text(&out.stderr));
    c.wait_status("stopped");
    assert_eq!(c.state()["pid"], 0);
    let out = c.rt(&["delete", &c.id]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    let out = c.rt(&["state", &c.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        support::cgroup_dirs_named(&c.id).is_empty(),
        "cgroup left behind"
    );
    assert!(!c.root.path().join(&c.id).exists(), "state dir left behind");
}

#[test]
fn run_returns_the_programs_exit_code_and_128_plus_signal() {
    if !privileged() {
        return;
    }
    for (script, want) in [("exit 0", 0), ("exit 3", 3)] {
        let bundle = Bundle::new(&base_config(&["sh", "-c", script]));
        let c = Container::new("exit");
        let out = c.rt(&["run", "-b", bundle.path().to_str().unwrap(), &c.id]);
        assert_eq!(
            out.status.code(),
            Some(want),
            "{script}: {}",
            text(&out.stderr)
        );
        // A foreground run deletes the container when it ends.
        assert!(
            !c.root.path().join(&c.id).exists(),
            "{script}: state left behind"
        );
        assert!(
            support::cgroup_dirs_named(&c.id).is_empty(),
            "{script}: cgroup left behind"
        );
    }
    // Killed by SIGKILL (from outside: pid 1 of a pid namespace ignores its own SIGKILL).
    let bundle = Bundle::new(&base_config(&["sleep", "1000"]));
    let c = Container::new("killed");
    let mut cmd = c.cmd(&["run", "-b", bundle.path().to_str().unwrap(), &c.id]);
    cmd.stdout(std::process::Stdio::null());
    let mut run = cmd.spawn().unwrap();
    c.wait_status("running");
    assert!(c.rt(&["kill", &c.id, "SIGKILL"]).status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not return after its container was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(128 + 9));
    assert!(
        !c.root.path().join(&c.id).exists(),
        "state left behind after SIGKILL"
    );
}

#[test]
fn a_duplicate_id_is_refused_and_leaves_the_first_container_alone() {
    if !privileged() {
        return;
    }
    let bundle = Bundle::new(&base_config(&["sleep", "1000"]));
    let c = Container::new("dup");
    let b = bundle.path().to_str().unwrap();
    assert!(c.rt(&["create", "-b", b, &c.id]).status.success());
    let out = c.rt(&["create", "-b", b, &c.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("container with id exists: {}", c.id)),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(c.status(), "created");
}

#[test]
fn a_missing_binary_fails_create_with_runcs_message_and_leaves_nothing() {
    if !privileged() {
        return;
    }
    let bundle = Bundle::new(&base_config(&["no-such-program", "x"]));
    let c = Container::new("nobin");
    let out = c.rt(&["create", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exec: \"no-such-program\": executable file not found in $PATH"),
        "{}",
        text(&out.stderr)
    );
    // The failed create wiped its state dir and its cgroup.
    assert!(!c.root.path().join(&c.id).exists(), "state dir left behind");
    assert!(
        support::cgroup_dirs_named(&c.id).is_empty(),
        "cgroup left behind"
    );
    // And the id can be used again.
    bundle.write_config(&base_config(&["true"]));
    let out = c.rt(&["run", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_bad_config_names_the_field() {
    if !privileged() {
        return;
    }
    let mut cfg = base_config(&["true"]);
    cfg["process"]["args"] = json!("true");
    let bundle = Bundle::new(&cfg);
    let c = Container::new("badcfg");
    let out = c.rt(&["create", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("process.args: invalid type: string \"true\", expected a sequence"),
        "{err}"
    );
    assert!(!c.root.path().join(&c.id).exists());
}

/// Runs `script` in a fresh container and returns its stdout (asserting exit 0).
fn run_script(cfg: serde_json::Value, name: &str) -> String {
    let bundle = Bundle::new(&cfg);
    let c = Container::new(name);
    let out = c.rt(&["run", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn every_namespace_is_new_when_seen_from_inside() {
    if !privileged() {
        return;
    }
    let names = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let script = format!(
        "echo pid=$$; hostname; for n in {}; do echo $n=$(readlink /proc/self/ns/$n); done",
        names.join(" ")
    );
    let mut cfg = base_config(&["sh", "-c", &script]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]);
    let out = run_script(cfg, "ns");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("pid=1"), "{out}");
    assert_eq!(lines.next(), Some("drover-test-host"), "{out}");
    for n in names {
        let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        let line = lines.next().unwrap_or_default();
        let inside = line
            .strip_prefix(&format!("{n}="))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(inside.starts_with(&format!("{n}:[")), "{out}");
        assert_ne!(
            inside,
            host.to_str().unwrap(),
            "{n} namespace is the host's"
        );
    }

    // Negative control: without a uts namespace in the spec the container shares the host's.
    let mut cfg = base_config(&["sh", "-c", "readlink /proc/self/ns/uts"]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
    cfg.as_object_mut().unwrap().remove("hostname");
    let out = run_script(cfg, "nsneg");
    let host = std::fs::read_link("/proc/self/ns/uts").unwrap();
    assert_eq!(out.trim(), host.to_str().unwrap());
}

#[test]
fn a_user_namespace_maps_the_configured_ids() {
    if !privileged() {
        return;
    }
    let mut cfg = base_config(&[
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/oom_score_adj",
    ]);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    // Written by the container's root through its own /proc/self (needs it dumpable again).
    cfg["process"]["oomScoreAdj"] = json!(123);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}, {"type": "network"}]);
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    let out = run_script(cfg, "userns");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "1000", "1000", "0", "200000", "65536", "0", "300000", "65536", "123"
        ],
        "{out}"
    );
}

#[test]
fn the_program_sees_only_stdio_and_preserved_fds() {
    if !privileged() {
        return;
    }
    // `ls /proc/$$/fd; true` lists the shell's own descriptors while it waits for ls (no pipe:
    // the shell would hold a pipe end itself; `; true` keeps it from exec'ing ls in its place).
    let bundle = Bundle::new(&base_config(&["sh", "-c", "ls /proc/$$/fd; true"]));
    let leak = std::fs::File::open("/etc/hostname").unwrap();
    let leak_fd = OwnedFd::from(leak);
    let raw = leak_fd.as_raw_fd();
    let run = |preserve: Option<&str>| {
        let c = Container::new("fds");
        let mut args = vec!["run", "-b", bundle.path().to_str().unwrap()];
        if let Some(n) = preserve {
            args.extend(["--preserve-fds", n]);
        }
        args.push(&c.id);
        let mut cmd = c.cmd(&args);
        // The runtime inherits fds 3, 4 and 5 without CLOEXEC (fds a caller leaked).
        // SAFETY: dup2 between fork and exec of the test's own child; no allocation.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || {
                // Via a high number: dup2(fd, fd) would keep CLOEXEC when raw is 3..5 itself.
                let hi = libc::fcntl(raw, libc::F_DUPFD, 100);
                for n in 3..=5 {
                    if hi < 0 || libc::dup2(hi, n) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                libc::close(hi);
                Ok(())
            });
        }
        let out = support::output(cmd, Duration::from_secs(30), "run with a leaked fd");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let mut fds: Vec<u32> = text(&out.stdout)
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        fds.sort_unstable();
        fds.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
    };
    assert_eq!(run(None), "0 1 2");
    // Negative control: the same fd, passed on purpose, is seen — the listing can see a leak.
    assert_eq!(run(Some("3")), "0 1 2 3 4 5");
    drop(leak_fd);
}

#[test]
fn preserved_fds_reach_the_program() {
    if !privileged() {
        return;
    }
    let bundle = Bundle::new(&base_config(&["sh", "-c", "echo through-fd-3 >&3"]));
    let c = Container::new("preserve");
    let (mut r, w) = std::io::pipe().unwrap();
    let w = OwnedFd::from(w);
    let raw = w.as_raw_fd();
    let mut cmd = c.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "-b",
        bundle.path().to_str().unwrap(),
        &c.id,
    ]);
    // SAFETY: dup2 between fork and exec of the test's own child.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            let hi = libc::fcntl(raw, libc::F_DUPFD, 100);
            if hi < 0 || libc::dup2(hi, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(hi);
            Ok(())
        });
    }
    let out = support::output(cmd, Duration::from_secs(30), "run --preserve-fds 1");
    drop(w);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut got = String::new();
    r.read_to_string(&mut got).unwrap();
    assert_eq!(got, "through-fd-3\n");
}

#[test]
fn stdout_and_stderr_pass_through_without_a_terminal() {
    if !privileged() {
        return;
    }
    let bundle = Bundle::new(&base_config(&["sh", "-c", "echo to-out; echo to-err >&2"]));
    let c = Container::new("stdio");
    let out = c.rt(&["run", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "to-out\n");
    assert_eq!(text(&out.stderr), "to-err\n");
}

#[test]
fn exec_runs_in_the_containers_namespaces_and_returns_its_exit_code() {
    if !privileged() {
        return;
    }
    let bundle = Bundle::new(&base_config(&["sleep", "1000"]));
    let c = Container::new("exec");
    let out = c.rt(&["run", "-d", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pid = c.state()["pid"].as_i64().unwrap();
    let out = c.rt(&[
        "exec",
        "-e",
        "X=42",
        &c.id,
        "sh",
        "-c",
        "hostname; echo $X; readlink /proc/self/ns/net; ls /proc | grep -c '^[0-9]'; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "drover-test-host");
    assert_eq!(lines[1], "42");
    let container_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(lines[2], container_net.to_str().unwrap());
    // Only the container's processes are visible: sleep, the exec'd sh (and its pipeline).
    assert!(lines[3].parse::<u32>().unwrap() <= 4, "{o}");
    let out = c.rt(&["ps", "--format", "json", &c.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids, [pid]);
    // A detached exec with a pid file, then `kill --all` reaches it as well as init.
    let exec_pid_file = c.root.path().join("exec.pid");
    let out = c.rt(&[
        "exec",
        "-d",
        "--pid-file",
        exec_pid_file.to_str().unwrap(),
        &c.id,
        "sleep",
        "999",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let exec_pid: i64 = std::fs::read_to_string(&exec_pid_file)
        .unwrap()
        .parse()
        .unwrap();
    let out = c.rt(&["ps", "--format", "json", &c.id]);
    let mut pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    pids.sort();
    let mut want = vec![pid, exec_pid];
    want.sort();
    assert_eq!(pids, want);
    assert_eq!(cmdline(exec_pid).trim(), "sleep 999");

    assert!(c.rt(&["kill", "--all", &c.id, "9"]).status.success());
    c.wait_status("stopped");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{exec_pid}")).exists()
        && !cmdline(exec_pid).is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "kill --all missed the exec'd process"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = c.rt(&["exec", &c.id, "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot exec in a stopped container"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn exec_with_a_terminal_sends_the_pty_master_to_the_console_socket() {
    if !privileged() {
        return;
    }
    let bundle = Bundle::new(&base_config(&["sleep", "1000"]));
    let c = Container::new("tty");
    let out = c.rt(&["run", "-d", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sock = c.root.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut cmd = c.cmd(&[
        "exec",
        "-t",
        "--console-socket",
        sock.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        "tty; test -t 0 && echo stdin-is-tty; exit 7",
    ]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (stream, _) = listener.accept().unwrap();
    let master = drover_runtime::console::recv_fd(&stream).unwrap();
    let mut master = std::fs::File::from(master);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    // The slave closes when the program exits: the master then reads EIO.
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let got = text(&got);
    assert_eq!(status.code(), Some(7), "{got} / stderr: {err}");
    assert!(got.contains("/dev/pts/0"), "{got}");
    assert!(got.contains("stdin-is-tty"), "{got}");
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    if !privileged() {
        return;
    }
    // The log directory is bound into the container at the same path, so hooks that run in the
    // container's mount namespace (createContainer, startContainer) find it too.
    let logdir = tempfile::Builder::new()
        .prefix("drover-test-hooks-")
        .tempdir()
        .unwrap();
    let log = logdir.path().join("log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} $(cat) >> {}", log.display())]});
    let mut cfg = base_config(&["sh", "-c", &format!("echo program >> {}", log.display())]);
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": logdir.path(), "type": "bind", "source": logdir.path(), "options": ["rbind", "rw"]
    }));
    cfg["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [hook("startContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    let bundle = Bundle::new(&cfg);
    let c = Container::new("hooks");
    let out = c.rt(&["run", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let got = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = got.lines().map(|l| l.split(' ').next().unwrap()).collect();
    // poststart runs after the program started; the program may write before or after it.
    let mut without_program: Vec<&str> =
        order.iter().copied().filter(|w| *w != "program").collect();
    assert_eq!(
        without_program,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{got}"
    );
    assert!(
        order.iter().position(|w| *w == "program")
            > order.iter().position(|w| *w == "startContainer"),
        "{got}"
    );
    for line in got.lines().filter(|l| !l.starts_with("program")) {
        let (name, json) = line.split_once(' ').unwrap();
        let st: serde_json::Value =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}: {json}"));
        assert_eq!(st["id"], c.id.as_str(), "{line}");
        let want = match name {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(st["status"], want, "{line}");
    }
    without_program.clear();

    // A failing createRuntime hook fails create and leaves nothing behind.
    cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]});
    bundle.write_config(&cfg);
    let c2 = Container::new("hookfail");
    let out = c2.rt(&["create", "-b", bundle.path().to_str().unwrap(), &c2.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("createRuntime hook #0 (/bin/sh): exit status 4"),
        "{}",
        text(&out.stderr)
    );
    assert!(!c2.root.path().join(&c2.id).exists());
    assert!(support::cgroup_dirs_named(&c2.id).is_empty());
}

#[test]
fn a_foreground_run_forwards_signals_to_the_container() {
    if !privileged() {
        return;
    }
    let script = "trap 'exit 42' TERM; echo ready > /dev/shm/ready; while :; do sleep 0.05; done";
    let bundle = Bundle::new(&base_config(&["sh", "-c", script]));
    let c = Container::new("signal");
    let mut cmd = c.cmd(&["run", "-b", bundle.path().to_str().unwrap(), &c.id]);
    cmd.stdout(std::process::Stdio::null());
    let mut run = cmd.spawn().unwrap();
    c.wait_status("running");
    // Wait until the trap is installed (the script writes a file inside the container).
    let pid = c.state()["pid"].as_i64().unwrap();
    let ready = format!("/proc/{pid}/root/dev/shm/ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&ready).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never got ready"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(run.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGTERM was not forwarded (run still waits)"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(42));
}

#[test]
fn seccomp_is_loaded_for_a_non_root_user_with_and_without_no_new_privs() {
    if !privileged() {
        return;
    }
    // busybox's uname ignores a failing uname(2), so the probe is mkdir (on the writable
    // /dev/shm) plus the kernel's own word in /proc/self/status.
    let probe = "mkdir /dev/shm/d 2>/dev/null; echo mkdir=$?; grep '^Seccomp:' /proc/self/status";
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    for nnp in [true, false] {
        let mut cfg = base_config(&["sh", "-c", probe]);
        cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        cfg["process"]["noNewPrivileges"] = json!(nnp);
        // Negative control first: without the profile mkdir works.
        let out = run_script(cfg.clone(), "nosec");
        assert_eq!(out, "mkdir=0\nSeccomp:\t0\n", "nnp={nnp}");
        // Without no_new_privs the filter needs CAP_SYS_ADMIN: it must be loaded before the
        // switch to uid 1000, or create fails with EACCES.
        cfg["linux"]["seccomp"] = profile.clone();
        let out = run_script(cfg, "sec");
        assert_eq!(out, "mkdir=1\nSeccomp:\t2\n", "nnp={nnp}");
    }
}

#[test]
fn exec_takes_a_process_file_or_user_and_cwd_flags() {
    if !privileged() {
        return;
    }
    let bundle = Bundle::new(&base_config(&["sleep", "1000"]));
    let c = Container::new("execp");
    let out = c.rt(&["run", "-d", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let process = c.root.path().join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sh", "-c", "id -u; id -g; pwd"], "cwd": "/tmp",
               "user": {"uid": 1000, "gid": 1001}, "env": ["PATH=/bin"]})
        .to_string(),
    )
    .unwrap();
    let out = c.rt(&["exec", "-p", process.to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1000\n1001\n/tmp\n");
    let out = c.rt(&[
        "exec",
        "--user",
        "1002:1003",
        "--cwd",
        "/tmp",
        &c.id,
        "sh",
        "-c",
        "id -u; id -g; pwd",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1002\n1003\n/tmp\n");
    // A bad process file names the field.
    std::fs::write(&process, r#"{"args": "sh", "cwd": "/"}"#).unwrap();
    let out = c.rt(&["exec", "-p", process.to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("args: invalid type: string"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn namespaces_given_by_path_are_joined_like_a_pod() {
    if !privileged() {
        return;
    }
    // The "sandbox": its own pid, net, ipc and uts namespaces.
    let sandbox_bundle = Bundle::new(&base_config(&["sleep", "1000"]));
    let sandbox = Container::new("sandbox");
    let out = sandbox.rt(&[
        "run",
        "-d",
        "-b",
        sandbox_bundle.path().to_str().unwrap(),
        &sandbox.id,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let spid = sandbox.state()["pid"].as_i64().unwrap();
    // A second container joins them by path (new mount namespace only).
    let mut cfg = base_config(&[
        "sh",
        "-c",
        "echo $$; hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/pid; ps -o comm | grep -c sleep",
    ]);
    cfg["linux"]["namespaces"] = json!([
        {"type": "pid", "path": format!("/proc/{spid}/ns/pid")},
        {"type": "network", "path": format!("/proc/{spid}/ns/net")},
        {"type": "ipc", "path": format!("/proc/{spid}/ns/ipc")},
        {"type": "uts", "path": format!("/proc/{spid}/ns/uts")},
        {"type": "mount"}
    ]);
    cfg.as_object_mut().unwrap().remove("hostname");
    let out = run_script(cfg, "member");
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(
        lines[0], "1",
        "the member is not pid 1: it joined the sandbox's pid namespace"
    );
    assert_eq!(lines[1], "drover-test-host", "{out}");
    let ns = |n: &str| std::fs::read_link(format!("/proc/{spid}/ns/{n}")).unwrap();
    assert_eq!(lines[2], ns("net").to_str().unwrap(), "{out}");
    assert_eq!(lines[3], ns("pid").to_str().unwrap(), "{out}");
    assert_eq!(lines[4], "1", "the sandbox's sleep is visible: {out}");
}

#[test]
fn a_container_with_a_terminal_gets_a_pty_from_its_own_devpts() {
    if !privileged() {
        return;
    }
    let mut cfg = base_config(&[
        "sh",
        "-c",
        "tty; test -c /dev/console && echo console-ok; exit 5",
    ]);
    cfg["process"]["terminal"] = json!(true);
    let bundle = Bundle::new(&cfg);
    let c = Container::new("term");
    let sock = c.root.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut cmd = c.cmd(&[
        "run",
        "--console-socket",
        sock.to_str().unwrap(),
        "-b",
        bundle.path().to_str().unwrap(),
        &c.id,
    ]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut master = std::fs::File::from(drover_runtime::console::recv_fd(&stream).unwrap());
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let got = text(&got);
    assert_eq!(status.code(), Some(5), "{got} / stderr: {err}");
    assert!(got.contains("/dev/pts/0"), "{got}");
    assert!(got.contains("console-ok"), "{got}");
    // Without a console socket, a foreground run proxies the terminal itself (like runc)...
    let out = c.rt(&["run", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(
        o.contains("/dev/pts/0\r\n") && o.contains("console-ok"),
        "{o}"
    );
    // ... and a detached one, which has nobody to hand the terminal to, is refused.
    let out = c.rt(&["run", "-d", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--console-socket"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn warnings_go_to_the_log_file_when_there_is_one() {
    if !privileged() {
        return;
    }
    // runc's default spec lists ambient capabilities the kernel will not raise: a warning.
    let mut cfg = base_config(&["true"]);
    cfg["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
    let bundle = Bundle::new(&cfg);
    let c = Container::new("warn");
    let b = bundle.path().to_str().unwrap();
    let out = c.rt(&["run", "-b", b, &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: "),
        "no warning without --log: {}",
        text(&out.stderr)
    );
    let log = c.root.path().join("log.json");
    let out = c.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "-b",
        b,
        &c.id,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "warnings leaked to stderr");
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["level"], "warning");
    assert!(line["msg"].as_str().unwrap().contains("ambient"), "{line}");
}

#[test]
fn exec_joins_a_user_namespace_first() {
    if !privileged() {
        return;
    }
    let mut cfg = base_config(&["sleep", "1000"]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    let bundle = Bundle::new(&cfg);
    let c = Container::new("userexec");
    let out = c.rt(&["run", "-d", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pid = c.state()["pid"].as_i64().unwrap();
    let out = c.rt(&[
        "exec",
        "--user",
        "1000",
        &c.id,
        "sh",
        "-c",
        "id -u; readlink /proc/self/ns/user",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let userns = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    assert_eq!(text(&out.stdout), format!("1000\n{}\n", userns.display()));
}
