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
