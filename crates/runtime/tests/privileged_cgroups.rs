//! Real cgroups on this host (root only): limits read back from cgroupfs, processes added and
//! listed, an OOM kill told apart from an outside `kill -9`, a pids limit that makes fork fail,
//! and removal of exactly what was created. Everything is named `drover-test-*` and removed by
//! a guard, also when an assertion fails.

use std::io::{Read, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drover_runtime::cgroups::{Cgroup, CgroupLayout, LayoutKind, detect};
use oci_spec::runtime::LinuxResources;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (cgroupfs writes)");
            return;
        }
    };
}

/// Removes the cgroup (and kills what is left in it) when the test ends, however it ends.
struct Guard {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cg.kill_all(libc::SIGKILL);
        let _ = self.cg.destroy();
    }
}

fn name(test: &str) -> String {
    format!("/drover-test-{}-{test}", std::process::id())
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(cg: &Cgroup, controller: &str, file: &str) -> String {
    let d = cg
        .dirs
        .iter()
        .find(|d| match &d.hierarchy {
            drover_runtime::cgroups::Hierarchy::V1(c) => c.iter().any(|x| x == controller),
            drover_runtime::cgroups::Hierarchy::Unified(_) => controller == "unified",
        })
        .unwrap_or_else(|| panic!("no {controller} directory"));
    std::fs::read_to_string(d.path.join(file))
        .unwrap()
        .trim()
        .to_string()
}

/// A `sh -c script` that waits for a line on stdin before running `script`, so it can be put
/// into the cgroup first.
fn held_shell(script: &str) -> Child {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn release(c: &mut Child) {
    c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
}

fn wait_with_timeout(c: &mut Child, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not end in 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn layout() -> CgroupLayout {
    detect().expect("cgroup layout of this host")
}

#[test]
fn limits_are_written_and_read_back_and_a_process_is_added_and_listed() {
    require_root!();
    let l = layout();
    let path = name("limits");
    let r = resources(
        r#"{"memory":{"limit":67108864,"reservation":33554432},
            "cpu":{"shares":512,"quota":50000,"period":100000},
            "pids":{"limit":50},
            "devices":[{"allow":false,"access":"rwm"}]}"#,
    );
    let cg = Cgroup::create(&l, &path, Some(&r)).unwrap();
    let mut g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    if l.kind != LayoutKind::V2 {
        assert_eq!(read(&cg, "memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(
            read(&cg, "memory", "memory.soft_limit_in_bytes"),
            "33554432"
        );
        assert_eq!(read(&cg, "cpu", "cpu.shares"), "512");
        assert_eq!(read(&cg, "cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&cg, "cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&cg, "pids", "pids.max"), "50");
        let devices = read(&cg, "devices", "devices.list");
        assert!(
            devices.contains("c 1:3 rwm") && devices.contains("c 136:* rwm"),
            "{devices}"
        );
        assert!(
            !devices.contains("a *:* rwm"),
            "deny-all took effect: {devices}"
        );
    }

    let child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    g.children.push(child);
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), [pid]);
    if l.kind == LayoutKind::Hybrid {
        // Hybrid: the process also joined the unified hierarchy's matching path.
        assert_eq!(read(&cg, "unified", "cgroup.procs"), pid.to_string());
    }
    let s = cg.stats().unwrap();
    assert_eq!(s.pids_current, Some(1));
    let (usage, ws) = (s.memory_usage.unwrap(), s.memory_working_set.unwrap());
    assert!(ws <= usage, "working set {ws} above usage {usage}");
    assert!(s.cpu_usage_ns.is_some());

    // Updating raises the memory limit on the running container.
    cg.update(&resources(
        r#"{"memory":{"limit":134217728},"pids":{"limit":60}}"#,
    ))
    .unwrap();
    if l.kind != LayoutKind::V2 {
        assert_eq!(read(&cg, "memory", "memory.limit_in_bytes"), "134217728");
        assert_eq!(read(&cg, "pids", "pids.max"), "60");
    }

    // kill --all: the process dies, the cgroup empties, destroy removes every directory.
    cg.kill_all(libc::SIGKILL).unwrap();
    let status = wait_with_timeout(&mut g.children[0], "sleep after kill_all");
    assert!(!status.success());
    cg.destroy().unwrap();
    for d in &cg.dirs {
        assert!(!d.path.exists(), "{} left behind", d.path.display());
    }
    assert!(!cg.oom_killed().is_ok_and(|k| k), "no OOM here");
}

#[test]
fn an_oom_kill_is_reported_and_an_outside_kill_9_is_not() {
    require_root!();
    let l = layout();
    let limit = r#"{"memory":{"limit":16777216,"swap":16777216}}"#;
    let hog = Cgroup::create(&l, &name("oom"), Some(&resources(limit))).unwrap();
    let mut hog_guard = Guard {
        cg: hog.clone(),
        children: vec![],
    };
    // Doubling a shell string passes 16 MiB within a few rounds.
    let mut c = held_shell("x=aaaaaaaaaaaaaaaa; while :; do x=\"$x$x\"; done");
    hog.add_pid(c.id() as i32).unwrap();
    release(&mut c);
    let status = wait_with_timeout(&mut c, "the memory hog");
    hog_guard.children.push(c);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(hog.oom_killed().unwrap(), "the OOM killer's count went up");
    assert!(hog.oom_kill_count().unwrap().unwrap() >= 1);

    // Negative control: a SIGKILL from outside, in another cgroup, is not an OOM kill.
    let other = Cgroup::create(&l, &name("kill9"), Some(&resources(limit))).unwrap();
    let mut other_guard = Guard {
        cg: other.clone(),
        children: vec![],
    };
    let mut s = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    other.add_pid(s.id() as i32).unwrap();
    s.kill().unwrap();
    let status = wait_with_timeout(&mut s, "sleep after kill -9");
    other_guard.children.push(s);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(
        !other.oom_killed().unwrap(),
        "kill -9 from outside counted as OOM"
    );
}

#[test]
fn a_pids_limit_makes_fork_fail() {
    require_root!();
    let l = layout();
    let run = |limit: i64, test: &str| -> (String, String) {
        let r = resources(&format!(r#"{{"pids":{{"limit":{limit}}}}}"#));
        let cg = Cgroup::create(&l, &name(test), Some(&r)).unwrap();
        let mut g = Guard {
            cg: cg.clone(),
            children: vec![],
        };
        let mut c = held_shell("/bin/true && echo forked");
        cg.add_pid(c.id() as i32).unwrap();
        release(&mut c);
        wait_with_timeout(&mut c, "the forking shell");
        let (mut out, mut err) = (String::new(), String::new());
        c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        g.children.push(c);
        (out, err)
    };
    let (out, err) = run(1, "pids1");
    assert!(
        !out.contains("forked"),
        "fork succeeded under pids.max=1: {out}"
    );
    assert!(err.to_lowercase().contains("fork"), "stderr: {err}");
    // Control: the same shell forks fine with room to spare.
    let (out, _) = run(10, "pids10");
    assert!(out.contains("forked"), "{out}");
}

#[test]
fn destroy_removes_only_what_create_made() {
    require_root!();
    let l = layout();
    let parent = name("parent");
    // The test makes the parent itself in every hierarchy; create() adds only the leaf.
    let pre = Cgroup::create(&l, &parent, None).unwrap();
    let _pre_guard = Guard {
        cg: pre.clone(),
        children: vec![],
    };
    let leaf = Cgroup::create(&l, &format!("{parent}/leaf"), None).unwrap();
    assert!(leaf.dirs.iter().all(|d| d.created == 1), "{:?}", leaf.dirs);
    // A cgroup opened rather than created removes nothing.
    let opened = Cgroup::open(&l, &format!("{parent}/leaf")).unwrap();
    opened.destroy().unwrap();
    assert!(leaf.dirs.iter().all(|d| d.path.exists()));
    // Through the state file and back, as `delete` will do it.
    let state = serde_json::to_string(&leaf).unwrap();
    let back: Cgroup = serde_json::from_str(&state).unwrap();
    back.destroy().unwrap();
    for (l, p) in leaf.dirs.iter().zip(&pre.dirs) {
        assert!(!l.path.exists(), "{} left behind", l.path.display());
        assert!(
            p.path.exists(),
            "{} (not ours) was removed",
            p.path.display()
        );
    }
}

#[test]
fn a_relative_path_lands_under_our_own_cgroup_and_bad_paths_are_refused() {
    require_root!();
    let l = layout();
    let rel = format!("drover-test-{}-rel", std::process::id());
    let cg = Cgroup::create(&l, &rel, None).unwrap();
    let _g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mem_own = own
        .lines()
        .find_map(|line| line.split_once(":memory:").map(|(_, p)| p.to_string()));
    if let Some(mem_own) = mem_own {
        let d = cg
            .dirs
            .iter()
            .find(|d| d.path.starts_with("/sys/fs/cgroup/memory"))
            .unwrap();
        let expect = PathBuf::from("/sys/fs/cgroup/memory")
            .join(mem_own.trim_start_matches('/'))
            .join(&rel);
        assert_eq!(d.path, expect);
        assert!(d.path.is_dir());
    }
    let e = Cgroup::create(&l, "machine.slice:drover:x", None).unwrap_err();
    assert!(e.to_string().contains("not supported"), "{e}");
}

/// Removes a directory made by the test itself.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn the_v2_device_program_refuses_devices_outside_the_rules() {
    require_root!();
    let l = layout();
    let Some(unified) = l.unified.as_ref() else {
        eprintln!("skipped: no cgroup2 mount for a device program");
        return;
    };
    // On this hybrid host the v1 devices controller is what containers get; the BPF program
    // (what a v2-only host uses) is checked on a unified directory of its own.
    let run = |rules: &str, test: &str| -> String {
        let dir = unified
            .mount_point
            .join(format!("drover-test-{}-{test}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let _g = DirGuard(dir.clone());
        let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(rules).unwrap();
        drover_runtime::cgroups::attach_device_filter(&dir, &rules).unwrap();
        let mut c = held_shell("true </dev/null && echo null; true </dev/kmsg && echo kmsg");
        std::fs::write(dir.join("cgroup.procs"), c.id().to_string()).unwrap();
        release(&mut c);
        wait_with_timeout(&mut c, "the device-probing shell");
        let mut out = String::new();
        c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        out
    };
    let out = run("[]", "devbpf-deny");
    assert!(
        out.contains("null"),
        "/dev/null is in the default allow list: {out:?}"
    );
    assert!(
        !out.contains("kmsg"),
        "/dev/kmsg (c 1:11) opened despite deny-all: {out:?}"
    );
    // Control: a spec rule that allows reading c 1:11 opens it.
    let out = run(
        r#"[{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]"#,
        "devbpf-allow",
    );
    assert!(out.contains("null") && out.contains("kmsg"), "{out:?}");
}

/// Puts the unified root's `cgroup.subtree_control` back as the test found it.
struct SubtreeGuard {
    file: PathBuf,
    controller: &'static str,
    was_enabled: bool,
}

impl Drop for SubtreeGuard {
    fn drop(&mut self) {
        if !self.was_enabled {
            let _ = std::fs::write(&self.file, format!("-{}", self.controller));
        }
    }
}

#[test]
fn hybrid_puts_a_controller_that_lives_only_in_cgroup2_on_the_unified_mount() {
    require_root!();
    let l = layout();
    let Some(u) = l
        .unified
        .as_ref()
        .filter(|u| u.has("hugetlb") && l.v1_for("hugetlb").is_none())
    else {
        eprintln!("skipped: hugetlb is not a cgroup2-only controller on this host");
        return;
    };
    let file = u.mount_point.join("cgroup.subtree_control");
    let was_enabled = std::fs::read_to_string(&file).unwrap().contains("hugetlb");
    let _restore = SubtreeGuard {
        file,
        controller: "hugetlb",
        was_enabled,
    };
    let r = resources(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":0}],"pids":{"limit":7}}"#);
    let cg = Cgroup::create(&l, &name("hugetlb"), Some(&r)).unwrap();
    let _g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    assert_eq!(read(&cg, "unified", "hugetlb.2MB.max"), "0");
    assert_eq!(
        read(&cg, "pids", "pids.max"),
        "7",
        "v1 controllers still get theirs"
    );
}

#[test]
fn a_v2_only_layout_runs_for_real_on_this_hosts_unified_mount() {
    require_root!();
    let l = layout();
    let Some(unified) = l.unified.clone().filter(|_| l.kind == LayoutKind::Hybrid) else {
        eprintln!("skipped: needs a hybrid host (a real v2 host is covered by the other tests)");
        return;
    };
    // The unified mount alone, as a v2-only host would look with few controllers: exercises
    // controller enabling, the device BPF program through create(), the v2 freezer in
    // kill_all, cpu.stat in stats() and destroy, on the real kernel.
    let file = unified.mount_point.join("cgroup.subtree_control");
    let was_enabled = std::fs::read_to_string(&file).unwrap().contains("hugetlb");
    let _restore = SubtreeGuard {
        file,
        controller: "hugetlb",
        was_enabled,
    };
    let v2 = CgroupLayout {
        kind: LayoutKind::V2,
        v1: vec![],
        unified: Some(unified),
    };
    let r = resources(
        r#"{"devices":[{"allow":false,"access":"rwm"}],
            "hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#,
    );
    let cg = Cgroup::create(&v2, &name("v2only"), Some(&r)).unwrap();
    let mut g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    assert_eq!(read(&cg, "unified", "hugetlb.2MB.max"), "0");
    let mut c =
        held_shell("true </dev/null && echo null; true </dev/kmsg && echo kmsg; exec sleep 30");
    let pid = c.id() as i32;
    cg.add_pid(pid).unwrap();
    release(&mut c);
    // Wait until the shell has exec'd sleep (its probes are done) before killing it.
    let start = Instant::now();
    while !std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .starts_with("sleep")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the shell never reached sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(cg.pids().unwrap(), [pid]);
    let s = cg.stats().unwrap();
    assert!(s.cpu_usage_ns.is_some_and(|ns| ns > 0), "{s:?}");
    assert_eq!(
        s.memory_usage, None,
        "no memory controller in this unified tree"
    );
    cg.kill_all(libc::SIGKILL).unwrap();
    let status = wait_with_timeout(&mut c, "sleep after the v2 kill_all");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    g.children.push(c);
    assert_eq!(
        out, "null\n",
        "the device program let /dev/null through and stopped /dev/kmsg"
    );
    assert_eq!(
        read(&cg, "unified", "cgroup.freeze"),
        "0",
        "thawed after the kill"
    );
    cg.destroy().unwrap();
    assert!(cg.dirs.iter().all(|d| !d.path.exists()));
}

/// Self-timed figures, not a test of speed: `cargo test -p drover-runtime --test
/// privileged_cgroups -- --ignored --nocapture bench_`. Prints medians of `detect()`, of a full
/// container cgroup lifecycle (create with memory/pids/cpu limits and the device rules, add a
/// pid, destroy), of the same lifecycle for the three limited controllers only done with bare
/// mkdir/write/rmdir (the floor from the runtime research), and of compiling podman's profile.
#[test]
#[ignore = "a measurement, run by hand"]
fn bench_cgroup_lifecycle_and_seccomp_compile() {
    require_root!();
    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }
    const N: usize = 100;
    let l = layout();
    let detect_t = median(
        (0..N)
            .map(|_| {
                let t = Instant::now();
                detect().unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let r = resources(
        r#"{"memory":{"limit":67108864},"pids":{"limit":100},"cpu":{"shares":512},
            "devices":[{"allow":false,"access":"rwm"}]}"#,
    );
    let me = std::process::id() as i32;
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let ours = median(
        (0..N)
            .map(|i| {
                let t = Instant::now();
                let cg = Cgroup::create(&l, &name(&format!("bench{i}")), Some(&r)).unwrap();
                cg.add_pid(me).unwrap();
                // Back to where this process was, then remove.
                for line in own.lines() {
                    let mut parts = line.splitn(3, ':');
                    let (_, ctrls, path) =
                        (parts.next(), parts.next().unwrap(), parts.next().unwrap());
                    let d = cg.dirs.iter().find(|d| match &d.hierarchy {
                        drover_runtime::cgroups::Hierarchy::V1(c) => c.join(",") == ctrls,
                        drover_runtime::cgroups::Hierarchy::Unified(_) => ctrls.is_empty(),
                    });
                    if let Some(d) = d {
                        let back = d.mount_point.join(path.trim_start_matches('/'));
                        std::fs::write(back.join("cgroup.procs"), me.to_string()).unwrap();
                    }
                }
                cg.destroy().unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let floor = median(
        (0..N)
            .map(|i| {
                let t = Instant::now();
                let dirs: Vec<PathBuf> = ["memory", "pids", "cpu"]
                    .iter()
                    .map(|c| PathBuf::from(format!("/sys/fs/cgroup/{c}/drover-test-{me}-floor{i}")))
                    .collect();
                for d in &dirs {
                    std::fs::create_dir(d).unwrap();
                }
                std::fs::write(dirs[0].join("memory.limit_in_bytes"), "67108864").unwrap();
                std::fs::write(dirs[1].join("pids.max"), "100").unwrap();
                std::fs::write(dirs[2].join("cpu.shares"), "512").unwrap();
                for d in &dirs {
                    std::fs::write(d.join("cgroup.procs"), me.to_string()).unwrap();
                }
                for (d, c) in dirs.iter().zip(["memory", "pids", "cpu"]) {
                    let line = own
                        .lines()
                        .find(|l| l.split(':').nth(1) == Some(c))
                        .unwrap();
                    let back = PathBuf::from(format!("/sys/fs/cgroup/{c}"))
                        .join(line.splitn(3, ':').nth(2).unwrap().trim_start_matches('/'));
                    std::fs::write(back.join("cgroup.procs"), me.to_string()).unwrap();
                    std::fs::remove_dir(d).unwrap();
                }
                t.elapsed()
            })
            .collect(),
    );
    let profile = drover_runtime::seccomp::default_profile(
        &drover_runtime::seccomp::PODMAN_DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
    );
    let compile_t = median(
        (0..N)
            .map(|_| {
                let t = Instant::now();
                drover_runtime::seccomp::compile(&profile).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    println!("n={N} medians, {:?} host:", l.kind);
    println!("  detect()                                   {detect_t:?}");
    println!(
        "  create+add_pid+destroy ({} dirs)            {ours:?}",
        l.v1.len() + usize::from(l.unified.is_some())
    );
    println!("  floor: 3 dirs, 3 limits, attach, rmdir       {floor:?}");
    println!("  seccomp compile(default profile)           {compile_t:?}");
}

#[test]
fn sub_cgroups_made_inside_the_container_are_listed_killed_and_removed() {
    require_root!();
    let l = layout();
    let cg = Cgroup::create(&l, &name("nested"), None).unwrap();
    let mut g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    // What systemd inside a container does: sub-cgroups of its own, a process in one of them.
    let outer = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let inner = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let (outer_pid, inner_pid) = (outer.id() as i32, inner.id() as i32);
    g.children.extend([outer, inner]);
    cg.add_pid(outer_pid).unwrap();
    for d in &cg.dirs {
        let sub = d.path.join("init.scope/deeper");
        std::fs::create_dir_all(&sub).unwrap();
        if sub.parent().unwrap().join("cpuset.cpus").exists() {
            for (dir, f) in [
                (sub.parent().unwrap(), "cpuset.cpus"),
                (sub.parent().unwrap(), "cpuset.mems"),
            ] {
                let v = std::fs::read_to_string(d.path.join(f)).unwrap();
                std::fs::write(dir.join(f), v.trim()).unwrap();
            }
        }
        std::fs::write(
            sub.parent().unwrap().join("cgroup.procs"),
            inner_pid.to_string(),
        )
        .unwrap();
    }
    assert_eq!(cg.pids().unwrap(), {
        let mut v = vec![outer_pid, inner_pid];
        v.sort();
        v
    });
    cg.kill_all(libc::SIGKILL).unwrap();
    for c in &mut g.children {
        wait_with_timeout(c, "a sleep after kill_all");
    }
    cg.destroy().unwrap();
    for d in &cg.dirs {
        assert!(!d.path.exists(), "{} left behind", d.path.display());
    }
}

#[path = "../testdata/bundles/support.rs"]
mod support;

/// `runc --root <tmp>` for the comparisons below; dropping it force-deletes the container.
struct Runc {
    root: tempfile::TempDir,
    id: String,
}

impl Runc {
    fn new(name: &str) -> Self {
        let root = tempfile::Builder::new()
            .prefix("drover-test-runc-")
            .tempdir()
            .unwrap();
        Self {
            root,
            id: support::unique(name),
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new("runc");
        c.arg("--root").arg(self.root.path()).args(args);
        support::output(c, Duration::from_secs(30), &format!("runc {args:?}"))
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(self.root.path())
            .args(["delete", "--force", &self.id])
            .output();
    }
}

/// The cgroup files a container's limits land in (v1 / hybrid), read from the host.
fn limits_of(cgroups_path: &str) -> Vec<(String, String)> {
    let files = [
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("memory", "memory.memsw.limit_in_bytes"),
        ("pids", "pids.max"),
        ("cpu", "cpu.shares"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("cpuset", "cpuset.cpus"),
        ("devices", "devices.list"),
    ];
    files
        .iter()
        .map(|(c, f)| {
            let p = PathBuf::from("/sys/fs/cgroup")
                .join(c)
                .join(cgroups_path.trim_start_matches('/'))
                .join(f);
            let v = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let mut lines: Vec<&str> = v.lines().collect();
            lines.sort_unstable();
            (format!("{c}/{f}"), lines.join("\n"))
        })
        .collect()
}

#[test]
fn a_container_gets_the_same_cgroup_files_as_under_runc() {
    require_root!();
    if layout().kind == LayoutKind::V2 || !support::privileged() || !support::require("runc") {
        return;
    }
    let me = std::process::id();
    let config = |path: &str| {
        let mut cfg = support::base_config(&["sleep", "100"]);
        cfg["linux"]["cgroupsPath"] = serde_json::json!(path);
        cfg["linux"]["resources"] = serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}],
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
            "pids": {"limit": 50},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"}
        });
        cfg
    };
    let ours_path = format!("/drover-test-{me}-ctr-ours");
    let bundle = support::Bundle::new(&config(&ours_path));
    let c = support::Container::new("cg-ours");
    let out = c.rt(&["run", "-d", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
    let ours = limits_of(&ours_path);

    let runc_path = format!("/drover-test-{me}-ctr-runc");
    let runc_bundle = support::Bundle::new(&config(&runc_path));
    let r = Runc::new("cg-runc");
    let out = r.run(&[
        "run",
        "-d",
        "-b",
        runc_bundle.path().to_str().unwrap(),
        &r.id,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "runc: {}",
        support::text(&out.stderr)
    );
    let theirs = limits_of(&runc_path);
    for ((name, a), (_, b)) in ours.iter().zip(&theirs) {
        assert_eq!(a, b, "{name}: drover vs runc");
    }
    // Negative control for the comparison: another limit must show up as a difference.
    let mut changed = config(&ours_path);
    changed["linux"]["resources"]["pids"]["limit"] = serde_json::json!(51);
    drop(c);
    let bundle = support::Bundle::new(&changed);
    let c = support::Container::new("cg-ours2");
    let out = c.rt(&["run", "-d", "-b", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
    let differs: Vec<String> = limits_of(&ours_path)
        .into_iter()
        .zip(&theirs)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((n, _), _)| n)
        .collect();
    assert_eq!(differs, ["pids/pids.max"]);
}
