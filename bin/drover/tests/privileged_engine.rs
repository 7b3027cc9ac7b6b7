//! Docker-style containers end to end: `drover run/ps/logs/exec/stop/kill/rm/inspect` on real
//! containers made by our own runtime, as root. Each test uses its own data dir and cgroup
//! parent named `drover-test-…`, and removes both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Engine {
    data: PathBuf,
    rootfs: PathBuf,
    cgroup_parent: String,
}

fn is_root() -> bool {
    rustix_uid() == 0
}

fn rustix_uid() -> u32 {
    // /proc/self/status "Uid:" line, so the test needs no extra dependency.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Skips (returns None) without root or busybox, unless CI requires them.
fn engine(tag: &str) -> Option<Engine> {
    let required = std::env::var_os("DROVER_REQUIRE_PEERS").is_some();
    if !is_root() || busybox().is_none() {
        assert!(
            !required,
            "privileged engine tests need root and busybox-static"
        );
        eprintln!("skipping: needs root and busybox-static");
        return None;
    }
    let suffix = format!("{tag}-{}", std::process::id());
    let data = PathBuf::from(format!("/tmp/drover-test-engine-{suffix}"));
    let _ = std::fs::remove_dir_all(&data);
    let rootfs = data.join("rootfs");
    make_rootfs(&rootfs);
    Some(Engine {
        data,
        rootfs,
        cgroup_parent: format!("/drover-test-engine-{suffix}"),
    })
}

fn make_rootfs(root: &Path) {
    for d in [
        "bin", "etc", "proc", "sys", "dev", "tmp", "home/app", "data",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let bb = busybox().unwrap();
    std::fs::copy(&bb, root.join("bin/busybox")).unwrap();
    let out = Command::new(root.join("bin/busybox"))
        .args(["--list"])
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let link = root.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
    )
    .unwrap();
    std::fs::write(root.join("bin/not-executable"), "#!/bin/sh\necho no\n").unwrap();
}

impl Engine {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drover"));
        c.args(args).env("DROVER_DATA_DIR", &self.data);
        c
    }

    /// `drover run` with the test's rootfs and cgroup parent, plus `flags`, then `argv`.
    fn run(&self, flags: &[&str], argv: &[&str]) -> Output {
        let mut args = vec![
            "run",
            "--rootfs",
            self.rootfs.to_str().unwrap(),
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        args.extend_from_slice(flags);
        args.push("busybox");
        args.extend_from_slice(argv);
        self.cmd(&args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "drover {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    fn wait_state(&self, name: &str, state: &str) -> serde_json::Value {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            // The container may not exist yet (a `run -d` still starting).
            let out = self.cmd(&["inspect", name]).output().unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map(|v: serde_json::Value| v[0].clone())
                .unwrap_or_default();
            if v["State"]["Status"] == state {
                return v;
            }
            assert!(
                Instant::now() < end,
                "{name} never became {state}: {v:#} {}",
                stderr(&out)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if std::env::var_os("DROVER_TEST_KEEP").is_some() {
            eprintln!("keeping {} (DROVER_TEST_KEEP)", self.data.display());
            return;
        }
        // Remove every container (kills them), then the data dir and the cgroup parent.
        if let Ok(out) = self.cmd(&["ps", "-aq", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.data);
        for ctrl in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ =
                std::fs::remove_dir(ctrl.path().join(self.cgroup_parent.trim_start_matches('/')));
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn foreground_run_streams_output_and_returns_the_exit_code() {
    let Some(e) = engine("fg") else { return };
    let out = e.run(&["--rm"], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    // --rm removed it.
    assert_eq!(e.ok(&["ps", "-aq"]), "");
}

#[test]
fn docker_exit_codes_for_commands_that_cannot_run() {
    let Some(e) = engine("codes") else { return };
    let out = e.run(&["--rm"], &["no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-command"), "{}", stderr(&out));
    let out = e.run(&["--rm"], &["/bin/not-executable"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    let out = e.run(&["--network", "bridge"], &["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("not supported yet"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_container_sees_what_the_flags_asked_for() {
    let Some(e) = engine("flags") else { return };
    let vol = e.data.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "from host").unwrap();
    let volume = format!("{}:/data:ro", vol.display());
    let out = e.run(
        &[
            "--rm",
            "-e",
            "GREETING=hi",
            "-w",
            "/tmp",
            "-u",
            "app",
            "--hostname",
            "box",
            "--read-only",
            "-v",
            &volume,
            "--memory",
            "64m",
            "--pids-limit",
            "50",
        ],
        &[
            "sh",
            "-c",
            "echo $GREETING; pwd; id; hostname; cat /data/f; echo; \
             touch /x 2>/dev/null || echo rootfs-ro; touch /data/y 2>/dev/null || echo vol-ro; \
             ip link show lo | grep -q UP && echo lo-up; cat /etc/hostname; echo HOME=$HOME",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "hi",
            "/tmp",
            "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)",
            "box",
            "from host",
            "rootfs-ro",
            "vol-ro",
            "lo-up",
            "box",
            "HOME=/home/app",
        ],
        "{}",
        stderr(&out)
    );
}

#[test]
fn detached_containers_show_in_ps_log_exec_stop_and_rm() {
    let Some(e) = engine("detach") else { return };
    let id = e.run(
        &["-d", "--name", "web"],
        &[
            "sh",
            "-c",
            "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
        ],
    );
    assert!(id.status.success(), "{}", stderr(&id));
    let id = stdout(&id).trim().to_owned();
    assert_eq!(id.len(), 64);
    let ps = e.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(
        ps.contains(&id[..12]) && ps.contains("Up ") && ps.contains("web"),
        "{ps}"
    );
    // Logs (eventually, the output is asynchronous).
    let end = Instant::now() + Duration::from_secs(10);
    while !e.ok(&["logs", "web"]).contains("started") {
        assert!(Instant::now() < end, "no log line");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(e.data.join("containers").join(&id).join("ctr.log")).unwrap();
    assert!(
        log.lines().any(|l| l.ends_with(" stdout F started")),
        "{log}"
    );
    // exec sees the same container.
    assert_eq!(
        e.ok(&["exec", "web", "cat", "/etc/hostname"]).trim(),
        &id[..12]
    );
    let out = e
        .cmd(&["exec", "web", "sh", "-c", "exit 4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    // stop: StopSignal (TERM) is trapped, the container exits 0 on its own.
    assert_eq!(e.ok(&["stop", "web"]).trim(), "web");
    let v = e.wait_state("web", "exited");
    assert_eq!(v["State"]["ExitCode"], 0);
    assert_eq!(v["State"]["OOMKilled"], false);
    assert!(e.ok(&["logs", "web"]).contains("bye"));
    let ps = e.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (0)"), "{ps}");
    assert!(!e.ok(&["ps"]).contains("web"));
    let out = e.cmd(&["exec", "web", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    e.ok(&["rm", "web"]);
    assert!(!e.data.join("containers").join(&id).exists());
}

#[test]
fn stop_kills_after_the_timeout_and_rm_refuses_running_containers() {
    let Some(e) = engine("stop") else { return };
    let out = e.run(
        &["-d", "--name", "stubborn"],
        &["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = e.cmd(&["rm", "stubborn"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("You cannot remove a running container"),
        "{}",
        stderr(&out)
    );
    let started = Instant::now();
    e.ok(&["stop", "-t", "1", "stubborn"]);
    assert!(started.elapsed() >= Duration::from_secs(1));
    let v = e.wait_state("stubborn", "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    e.ok(&["rm", "stubborn"]);
}

#[test]
fn the_container_outlives_whoever_started_it_and_its_exit_is_recorded() {
    let Some(e) = engine("adopt") else { return };
    // A parent shell starts the container, then is killed with SIGKILL.
    let script = format!(
        "{} run -d --name orphan --rootfs {} --cgroup-parent {} busybox sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do echo tick $i; sleep 0.2; done; exit 7'; exec sleep 60",
        env!("CARGO_BIN_EXE_drover"),
        e.rootfs.display(),
        e.cgroup_parent
    );
    let mut parent = Command::new("sh")
        .args(["-c", &script])
        .env("DROVER_DATA_DIR", &e.data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    e.wait_state("orphan", "running");
    parent.kill().unwrap();
    parent.wait().unwrap();
    // A fresh CLI still sees it running, and `logs -f` follows it to the end.
    assert!(e.ok(&["ps"]).contains("orphan"));
    let follow = e.ok(&["logs", "-f", "orphan"]);
    let ticks: Vec<&str> = follow.lines().collect();
    let want: Vec<String> = (1..=15).map(|i| format!("tick {i}")).collect();
    assert_eq!(ticks, want);
    let v = e.wait_state("orphan", "exited");
    assert_eq!(v["State"]["ExitCode"], 7);
}

#[test]
fn restart_policy_on_failure_counts_restarts() {
    let Some(e) = engine("restart") else { return };
    let out = e.run(
        &["-d", "--name", "flaky", "--restart", "on-failure:2"],
        &["sh", "-c", "echo run; exit 1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let v = e.inspect("flaky");
        if v["State"]["Status"] == "exited" && v["RestartCount"] == 2 {
            assert_eq!(v["State"]["ExitCode"], 1);
            break;
        }
        assert!(Instant::now() < end, "{v:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let runs = e.ok(&["logs", "flaky"]);
    assert_eq!(runs.lines().filter(|l| *l == "run").count(), 3, "{runs}");
}

#[test]
fn oom_kills_are_reported_and_outside_kills_are_not() {
    let Some(e) = engine("oom") else { return };
    // Grow a shell variable until the 16 MiB limit ends it.
    let out = e.run(
        &["--name", "hog", "--memory", "16m"],
        &["sh", "-c", "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let v = e.inspect("hog");
    assert_eq!(v["State"]["OOMKilled"], true, "{v:#}");
    // Negative control: SIGKILL from outside is also 137, but not an OOM kill.
    let out = e.run(
        &["-d", "--name", "victim", "--memory", "16m"],
        &["sleep", "100"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    e.wait_state("victim", "running");
    e.ok(&["kill", "victim"]);
    let v = e.wait_state("victim", "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["State"]["OOMKilled"], false, "{v:#}");
}

#[test]
fn stdin_reaches_an_interactive_container() {
    let Some(e) = engine("stdin") else { return };
    let mut child = e
        .cmd(&[
            "run",
            "--rm",
            "-i",
            "--rootfs",
            e.rootfs.to_str().unwrap(),
            "--cgroup-parent",
            &e.cgroup_parent,
            "busybox",
            "sh",
            "-c",
            "tr a-z A-Z",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello from stdin\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "HELLO FROM STDIN\n");
}

#[test]
fn logs_rotate_at_the_size_limit() {
    let Some(e) = engine("rotate") else { return };
    let out = e.run(
        &[
            "--name",
            "chatty",
            "--log-max-size",
            "4k",
            "--log-max-files",
            "2",
        ],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = e.inspect("chatty");
    let dir = PathBuf::from(v["LogPath"].as_str().unwrap());
    assert!(PathBuf::from(format!("{}.2", dir.display())).exists());
    assert!(!PathBuf::from(format!("{}.3", dir.display())).exists());
    let logs = e.ok(&["logs", "chatty"]);
    let last: Vec<&str> = logs.lines().rev().take(3).collect();
    assert_eq!(last, ["line 399", "line 398", "line 397"]);
    assert!(!logs.contains("line 0\n"));
}

impl Engine {
    /// Builds fixture images as OCI layouts and imports them into the engine's image store.
    fn import_fixtures(&self, references: &[&str]) {
        for reference in references {
            let fixture = drover_testing::fixtures::find(reference).unwrap();
            let dir = self.data.join("layouts").join(fixture.slug());
            fixture.write_layout(&dir).unwrap();
            self.ok(&["image", "import", dir.to_str().unwrap(), reference]);
        }
    }

    fn run_image(&self, flags: &[&str], image: &str, argv: &[&str]) -> Output {
        let mut args = vec![
            "run",
            "--pull",
            "never",
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        args.extend_from_slice(flags);
        args.push(image);
        args.extend_from_slice(argv);
        self.cmd(&args).stdin(Stdio::null()).output().unwrap()
    }
}

#[test]
fn images_run_with_their_config_user_and_stop_signal() {
    let Some(e) = engine("image") else { return };
    e.import_fixtures(&["drover-fixtures/config:v1", "nginx:1.27-alpine"]);
    // Entrypoint + Cmd, WorkingDir, Env and User (with supplementary groups) from the image.
    let out = e.run_image(&["--rm"], "drover-fixtures/config:v1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "hello from /srv/app as www-data groups 33 4 100\n"
    );
    // A command replaces Cmd, not the Entrypoint (`/bin/sh -c`).
    let out = e.run_image(
        &["--rm", "-e", "GREETING=hey"],
        "drover-fixtures/config:v1",
        &["echo $GREETING; id -u"],
    );
    assert_eq!(stdout(&out), "hey\n33\n", "{}", stderr(&out));
    // nginx's stand-in serves /healthz; `stop` sends its StopSignal (SIGQUIT), which ends it
    // cleanly: exit 0, where the kill after the timeout would have made it 137.
    let out = e.run_image(&["-d", "--name", "web"], "nginx:1.27-alpine", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    e.wait_state("web", "running");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let out = e
            .cmd(&[
                "exec",
                "web",
                "wget",
                "-q",
                "-O-",
                "http://127.0.0.1/healthz",
            ])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < end,
            "healthz never answered: {}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = e.inspect("web");
    assert_eq!(v["Config"]["StopSignal"], "SIGQUIT");
    e.ok(&["stop", "web"]);
    let v = e.wait_state("web", "exited");
    assert_eq!(v["State"]["ExitCode"], 0, "{v:#}");
    e.ok(&["rm", "web"]);
}

#[test]
fn healthchecks_report_healthy_and_unhealthy() {
    let Some(e) = engine("health") else { return };
    e.import_fixtures(&["drover-fixtures/config:v1"]);
    // The fixture's check is `test -f /srv/app/hello.txt` every 5 s, 3 retries.
    let out = e.run_image(
        &["-d", "--name", "fine"],
        "drover-fixtures/config:v1",
        &["sleep 60"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = e.run_image(
        &["-d", "--name", "sick"],
        "drover-fixtures/config:v1",
        &["rm /srv/app/hello.txt; sleep 60"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let end = Instant::now() + Duration::from_secs(40);
    loop {
        let fine = e.inspect("fine")["State"]["Health"]["Status"].clone();
        let sick = e.inspect("sick")["State"]["Health"]["Status"].clone();
        if fine == "healthy" && sick == "unhealthy" {
            break;
        }
        assert!(Instant::now() < end, "fine={fine} sick={sick}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let ps = e.ok(&["ps"]);
    assert!(
        ps.contains("(healthy)") && ps.contains("(unhealthy)"),
        "{ps}"
    );
}

#[test]
fn terminals_for_run_and_exec() {
    let Some(e) = engine("tty") else { return };
    // `-t` gives the container a pty as its console; output arrives through it (CR LF).
    let out = e.run(
        &["--rm", "-t"],
        &["sh", "-c", "tty; test -t 1 && echo is-a-tty; echo $TERM"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out).replace('\r', "");
    // As under Docker: stdio is the pty's slave, `/dev/pts/0` in the container's devpts.
    assert_eq!(text, "/dev/pts/0\nis-a-tty\nxterm\n");
    // `exec -t` gets a pty of its own.
    let out = e.run(&["-d", "--name", "box"], &["sleep", "60"]);
    assert!(out.status.success(), "{}", stderr(&out));
    e.wait_state("box", "running");
    let out = e
        .cmd(&["exec", "-t", "box", "sh", "-c", "tty; exit 5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let text = stdout(&out).replace('\r', "");
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
}

/// Debian's static tini (`apt-get install tini`), the init `--init` finds on this host.
fn tini_static() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/tini-static");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("DROVER_REQUIRE_PEERS").is_none(),
        "--init tests need tini (apt-get install tini: /usr/bin/tini-static)"
    );
    eprintln!("skipping: needs /usr/bin/tini-static (apt-get install tini)");
    None
}

/// A script in the test rootfs that leaves an orphan: it backgrounds a child that writes its pid
/// to `/tmp/orphan-NAME.pid` and sleeps a second, and exits at once, so the child is reparented
/// to PID 1 and becomes a zombie there unless PID 1 reaps it.
fn write_orphan_maker(rootfs: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let path = rootfs.join("bin/make-orphan");
    std::fs::write(
        &path,
        "#!/bin/sh\nsh -c \"echo \\$\\$ > /tmp/orphan-$1.pid; exec sleep 1\" &\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Process `pid`'s state letter and parent inside container `name`, or None once it is gone.
fn proc_state(e: &Engine, name: &str, pid: &str) -> Option<(String, String)> {
    let out = e
        .cmd(&["exec", name, "cat", &format!("/proc/{pid}/stat")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    // `pid (comm) S ppid …`: the fields after the last ')'.
    let text = stdout(&out);
    let rest = text.rsplit_once(')').map(|(_, r)| r.to_owned())?;
    let mut fields = rest.split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

#[test]
fn init_is_pid_1_and_the_command_is_not() {
    let Some(e) = engine("init-pid1") else { return };
    let Some(_) = tini_static() else { return };
    let script = "echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; exit 3";
    // Found on the host without --init-path; the command's exit code comes through the init.
    let out = e.run(&["--rm", "--init"], &["sh", "-c", script]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert_ne!(lines[0], "1", "the command must not be PID 1 under --init");
    assert_eq!(
        lines[1].trim_end(),
        format!("/sbin/docker-init -- sh -c {script}")
    );
    // Negative control: without --init the command is PID 1.
    let out = e.run(&["--rm"], &["sh", "-c", script]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1", "{text:?}");
    assert_eq!(lines[1].trim_end(), format!("sh -c {script}"));
    // inspect records it as Docker does (HostConfig.Init), with the user's command as Path/Args.
    let out = e.run(
        &[
            "-d",
            "--name",
            "with-init",
            "--init",
            "--init-path",
            "/usr/bin/tini-static",
        ],
        &["sleep", "60"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = e.wait_state("with-init", "running");
    assert_eq!(v["HostConfig"]["Init"], true, "{v:#}");
    assert_eq!(v["Path"], "sleep");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sleep", "60"]));
    assert!(e.ok(&["ps"]).contains("\"sleep 60\""));
    // A read-only rootfs still gets its init (the mount point is made before the remount).
    let out = e.run(&["--rm", "--init", "--read-only"], &["sh", "-c", "echo $$"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(stdout(&out).trim(), "1");
    // From an image too (an overlay rootfs; the image's entrypoint and user come after the
    // init, which runs as that user).
    e.import_fixtures(&["drover-fixtures/config:v1"]);
    let out = e.run_image(
        &["--rm", "--init"],
        "drover-fixtures/config:v1",
        &["echo $$; id -u; tr '\\0' ' ' < /proc/1/cmdline"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_ne!(lines[0], "1", "{text:?}");
    assert_eq!(lines[1], "33", "{text:?}");
    assert!(lines[2].starts_with("/sbin/docker-init -- "), "{text:?}");
    let out = e.run(&["-d", "--name", "no-init"], &["sleep", "60"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        e.inspect("no-init")["HostConfig"]["Init"],
        serde_json::Value::Null
    );
}

#[test]
fn init_reaps_orphaned_zombies() {
    let Some(e) = engine("init-zombie") else {
        return;
    };
    let Some(_) = tini_static() else { return };
    write_orphan_maker(&e.rootfs);
    // PID 1 is (the init, or) a shell that execs a `sleep`, which never waits for children.
    for (name, init) in [("reaped", true), ("zombie", false)] {
        let mut flags = vec!["-d", "--name", name];
        if init {
            flags.push("--init");
        }
        let cmd = format!("make-orphan {name}; exec sleep 100");
        let out = e.run(&flags, &["sh", "-c", &cmd]);
        assert!(out.status.success(), "{}", stderr(&out));
        e.wait_state(name, "running");
        let pid_file = e.rootfs.join(format!("tmp/orphan-{name}.pid"));
        let end = Instant::now() + Duration::from_secs(20);
        let pid = loop {
            if let Ok(p) = std::fs::read_to_string(&pid_file)
                && !p.trim().is_empty()
            {
                break p.trim().to_owned();
            }
            assert!(Instant::now() < end, "the orphan never wrote its pid");
            std::thread::sleep(Duration::from_millis(50));
        };
        // Wait until the orphan's `sleep 1` is over: it is then a zombie or gone.
        let end = Instant::now() + Duration::from_secs(20);
        let last = loop {
            let st = proc_state(&e, name, &pid);
            let done = match &st {
                None => true,
                // Under the init, a zombie is only a moment: wait for it to be reaped.
                Some((s, _)) => s == "Z" && !init,
            };
            if done {
                break st;
            }
            assert!(Instant::now() < end, "{name}: orphan {pid} is still {st:?}");
            std::thread::sleep(Duration::from_millis(100));
        };
        if init {
            assert_eq!(last, None, "the init reaped the orphan");
        } else {
            // Negative control: the orphan was reparented to PID 1, which never reaps it.
            assert_eq!(last, Some(("Z".to_owned(), "1".to_owned())));
        }
    }
}

#[test]
fn stop_goes_through_the_init_to_the_command() {
    let Some(e) = engine("init-stop") else { return };
    let Some(_) = tini_static() else { return };
    // A plain `sleep` as PID 1 ignores SIGTERM (the kernel protects a namespace's init from
    // signals it has no handler for); under --init it is an ordinary process and dies of it.
    let out = e.run(&["-d", "--name", "plain", "--init"], &["sleep", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    e.wait_state("plain", "running");
    e.ok(&["stop", "-t", "30", "plain"]);
    let v = e.wait_state("plain", "exited");
    assert_eq!(
        v["State"]["ExitCode"], 143,
        "SIGTERM, not the timeout's SIGKILL: {v:#}"
    );
    // A command that handles the signal: its own exit code is the container's.
    let out = e.run(
        &["-d", "--name", "trapper", "--init"],
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; while true; do sleep 0.1; done",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    e.wait_state("trapper", "running");
    e.ok(&["stop", "-t", "30", "trapper"]);
    let v = e.wait_state("trapper", "exited");
    assert_eq!(v["State"]["ExitCode"], 42, "{v:#}");
    // Negative control: without --init the same `sleep` shrugs off SIGTERM and is killed after
    // the timeout.
    let out = e.run(&["-d", "--name", "bare"], &["sleep", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    e.wait_state("bare", "running");
    e.ok(&["stop", "-t", "1", "bare"]);
    let v = e.wait_state("bare", "exited");
    assert_eq!(v["State"]["ExitCode"], 137, "{v:#}");
}

#[test]
fn init_path_errors_are_clear() {
    let Some(e) = engine("init-errors") else {
        return;
    };
    let out = e.run(
        &[
            "--rm",
            "--init",
            "--init-path",
            "/nonexistent/drover-test-init",
        ],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/drover-test-init does not exist")
            && err.contains("install tini"),
        "{err}"
    );
    // Nothing was left behind.
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    // A dynamically linked init would need the image's libc: refused.
    if Path::new("/usr/bin/tini").exists() {
        let out = e.run(
            &["--rm", "--init", "--init-path", "/usr/bin/tini"],
            &["true"],
        );
        assert_eq!(out.status.code(), Some(125));
        assert!(
            stderr(&out).contains("dynamically linked"),
            "{}",
            stderr(&out)
        );
    }
    // The container never executes Drover itself.
    let out = e.run(
        &[
            "--rm",
            "--init",
            "--init-path",
            env!("CARGO_BIN_EXE_drover"),
        ],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("Drover itself"), "{}", stderr(&out));
}

/// A client process that is killed and reaped if the test fails before it ends.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A pty pair for the test to play the user's terminal: (master, slave).
fn open_pty() -> (std::os::fd::OwnedFd, std::fs::File) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    (master, slave)
}

fn set_size(master: &std::os::fd::OwnedFd, rows: u16, cols: u16) {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(master, ws).unwrap();
}

/// The shell's script for the resize tests: it reports its terminal's size at start and on
/// every SIGWINCH.
const REPORT_SIZES: &str = "echo start $(stty size); trap 'echo winch $(stty size)' WINCH; \
                            while true; do sleep 0.1; done";

/// Runs `drover ARGS` (which runs [`REPORT_SIZES`] in a terminal) under a pty the test holds,
/// resizes that pty twice as a terminal emulator does (new size, then SIGWINCH to the client),
/// checks each size arrives inside, and ends it with ^C. Returns the client's exit code.
fn follow_resizes(e: &Engine, args: &[&str]) -> Option<i32> {
    use std::sync::{Arc, Mutex};
    let (master, slave) = open_pty();
    set_size(&master, 24, 80);
    let mut child = ChildGuard(
        e.cmd(args)
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave)
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let output = Arc::new(Mutex::new(String::new()));
    {
        let output = output.clone();
        let master = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = rustix::io::read(&master, &mut buf) {
                if n == 0 {
                    break;
                }
                output
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    let wait_for = |want: &str| {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let text = output.lock().unwrap().replace('\r', "");
            if text.lines().any(|l| l == want) {
                return;
            }
            assert!(Instant::now() < end, "never saw {want:?} in {text:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("start 24 80");
    let client = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    for (rows, cols) in [(30, 100), (40, 132)] {
        // What a terminal emulator does when its window changes: resize, then SIGWINCH.
        set_size(&master, rows, cols);
        rustix::process::kill_process(client, rustix::process::Signal::WINCH).unwrap();
        wait_for(&format!("winch {rows} {cols}"));
    }
    // ^C through both terminals ends the shell, and with it the client.
    rustix::io::write(&master, b"\x03").unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < end, "drover {args:?} did not end after ^C");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn exec_tty_follows_terminal_resizes() {
    let Some(e) = engine("exec-resize") else {
        return;
    };
    let out = e.run(&["-d", "--name", "box"], &["sleep", "60"]);
    assert!(out.status.success(), "{}", stderr(&out));
    e.wait_state("box", "running");
    let code = follow_resizes(&e, &["exec", "-it", "box", "sh", "-c", REPORT_SIZES]);
    assert_eq!(code, Some(130), "the shell died of SIGINT");
}

#[test]
fn run_tty_follows_terminal_resizes() {
    let Some(e) = engine("run-resize") else {
        return;
    };
    let code = follow_resizes(
        &e,
        &[
            "run",
            "--rm",
            "-it",
            "--rootfs",
            e.rootfs.to_str().unwrap(),
            "--cgroup-parent",
            &e.cgroup_parent,
            "busybox",
            "sh",
            "-c",
            REPORT_SIZES,
        ],
    );
    assert_eq!(code, Some(130), "the shell died of SIGINT");
}

#[test]
fn signals_to_a_foreground_run_reach_the_container_with_stdin_open() {
    let Some(e) = engine("sigproxy") else {
        return;
    };
    // With -i the client has a thread reading stdin; a SIGTERM must still be forwarded (Docker's
    // sig-proxy), not end the client, whichever of its threads the kernel hands it to.
    for attempt in 0..3 {
        let mut child = ChildGuard(
            e.cmd(&[
                "run",
                "--rm",
                "-i",
                "--rootfs",
                e.rootfs.to_str().unwrap(),
                "--cgroup-parent",
                &e.cgroup_parent,
                "busybox",
                "sh",
                "-c",
                "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
        );
        let child = &mut child.0;
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line, "ready\n", "attempt {attempt}");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(7),
            "attempt {attempt}: {status} {rest:?}"
        );
        assert_eq!(rest, "got-term\n", "attempt {attempt}");
    }
}
