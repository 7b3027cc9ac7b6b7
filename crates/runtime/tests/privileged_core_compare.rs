//! The same bundle under `drover-runtime`, runc and crun: what the container sees must agree.
//!
//! The program prints `id`, its hostname, the `Cap*`/`Seccomp`/`NoNewPrivs` lines of
//! `/proc/self/status`, `/proc/self/cgroup`, `ls /proc/self/fd`, `ulimit -a` and
//! `/proc/self/mounts`. All sections but the mounts must be identical. Mounts are compared as
//! sorted (mount point, fs type) pairs, minus two intentional differences (docs/runtime.md):
//!
//! * `/sys/fs/cgroup`: on this hybrid host Drover also binds the unified (cgroup2) hierarchy
//!   at `/sys/fs/cgroup/unified`, which runc 1.1 leaves out, and crun names its tmpfs
//!   differently; the v1 controller mounts themselves must be the same set.
//! * masked paths: each runtime masks the same paths, but files are covered with a `/dev/null`
//!   from a different devtmpfs/tmpfs, so their fs type differs; the set of masked paths must
//!   be the same.
//!
//! crun 1.8 refuses hybrid cgroups, so every runtime runs inside `unshare -m` with an empty file
//! bind-mounted over `/sys/fs/cgroup/unified/cgroup.controllers` (never on the host's view).

#[path = "../testdata/bundles/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use support::{Bundle, base_config, privileged, require, text};

const PROBE: &str = "id; hostname; grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status; \
    echo ---; cat /proc/self/cgroup; echo ---; ls /proc/self/fd; echo ---; ulimit -a; \
    echo ---; cat /proc/self/mounts";

const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

fn probe_config(cgroups_path: &str) -> serde_json::Value {
    let mut cfg = base_config(&["sh", "-c", PROBE]);
    cfg["linux"]["cgroupsPath"] = json!(cgroups_path);
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
    }));
    cfg
}

/// The differences between two probe outputs (empty when they agree).
fn differences(a: &str, b: &str) -> Vec<String> {
    let sa: Vec<&str> = a.split("---\n").collect();
    let sb: Vec<&str> = b.split("---\n").collect();
    if sa.len() != 5 || sb.len() != 5 {
        return vec![format!("malformed probe output:\n{a}\n=====\n{b}")];
    }
    let mut diffs = Vec::new();
    for (i, name) in ["id/hostname/status", "cgroup", "fds", "ulimit"]
        .iter()
        .enumerate()
    {
        if sa[i] != sb[i] {
            diffs.push(format!("{name} differs:\n{}\n-----\n{}", sa[i], sb[i]));
        }
    }
    let (ma, mb) = (mounts(sa[4]), mounts(sb[4]));
    if ma != mb {
        let only_a: Vec<_> = ma.difference(&mb).collect();
        let only_b: Vec<_> = mb.difference(&ma).collect();
        diffs.push(format!(
            "mounts differ: only first {only_a:?}, only second {only_b:?}"
        ));
    }
    diffs
}

/// (mount point, fs type) pairs, with the two documented differences normalized.
fn mounts(section: &str) -> BTreeSet<(String, String)> {
    let mut set = BTreeSet::new();
    for line in section.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (point, fstype) = (
            f.get(1).copied().unwrap_or(""),
            f.get(2).copied().unwrap_or(""),
        );
        if point == "/sys/fs/cgroup" || point == "/sys/fs/cgroup/unified" {
            continue;
        }
        if MASKED.contains(&point) {
            set.insert((point.to_string(), "masked".to_string()));
            continue;
        }
        set.insert((point.to_string(), fstype.to_string()));
    }
    set
}

#[test]
fn drover_runc_and_crun_give_the_container_the_same_view() {
    if !privileged() || !require("runc") || !require("crun") || !require("unshare") {
        return;
    }
    let cg = support::unique("compare");
    let bundle = Bundle::new(&probe_config(&format!("/{cg}")));
    // Negative control: the same probe with one more capability and another hostname.
    let mut broken = probe_config(&format!("/{cg}"));
    broken["process"]["capabilities"]["effective"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    broken["process"]["capabilities"]["permitted"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    broken["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    let broken_bundle = Bundle::new(&broken);
    let work = tempfile::Builder::new()
        .prefix("drover-test-compare-")
        .tempdir()
        .unwrap();
    let w = work.path().display();
    let empty = work.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let run = |rt: &str, root: &str, id: &str, bundle: &Bundle, out: &str| {
        format!(
            "cd {} && {rt} --root {w}/{root} run {id} > {w}/{out} 2>&1 || echo \"exit $?\" >> {w}/{out}\n",
            bundle.path().display()
        )
    };
    let mut script = format!(
        "set -u\nmount --bind {} /sys/fs/cgroup/unified/cgroup.controllers\n",
        empty.display()
    );
    script += &run(
        support::runtime_bin(),
        "sd",
        &format!("{cg}-d"),
        &bundle,
        "drover",
    );
    script += &run("runc", "sr", &format!("{cg}-r"), &bundle, "runc");
    script += &run("crun", "sc", &format!("{cg}-c"), &bundle, "crun");
    script += &run(
        support::runtime_bin(),
        "sd",
        &format!("{cg}-b"),
        &broken_bundle,
        "broken",
    );
    std::fs::write(work.path().join("in.sh"), script).unwrap();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh"])
        .arg(work.path().join("in.sh"));
    let out = support::output(cmd, Duration::from_secs(120), "the three runtimes");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let read = |n: &str| std::fs::read_to_string(work.path().join(n)).unwrap();
    let (drover, runc, crun, broken) = (read("drover"), read("runc"), read("crun"), read("broken"));
    assert!(drover.starts_with("uid=0(root) gid=0(root)"), "{drover}");
    assert!(drover.contains("NoNewPrivs:\t1"), "{drover}");

    let with_runc = differences(&drover, &runc);
    assert!(
        with_runc.is_empty(),
        "drover vs runc:\n{}",
        with_runc.join("\n")
    );
    let with_crun = differences(&drover, &crun);
    assert!(
        with_crun.is_empty(),
        "drover vs crun:\n{}",
        with_crun.join("\n")
    );
    // The v1 controllers are mounted by all three (the normalization only drops the tmpfs
    // itself and the unified mount).
    let v1 = |s: &str| -> BTreeSet<String> {
        s.lines()
            .filter(|l| l.starts_with("cgroup /sys/fs/cgroup/"))
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect()
    };
    assert!(!v1(&drover).is_empty(), "{drover}");
    assert_eq!(v1(&drover), v1(&runc));
    assert_eq!(v1(&drover), v1(&crun));

    // The checker sees a changed capability set.
    let caught = differences(&broken, &runc);
    assert!(
        caught.iter().any(|d| d.contains("CapEff")),
        "negative control not caught: {caught:?}"
    );
    assert!(
        support::cgroup_dirs_named(&cg).is_empty(),
        "cgroup left behind"
    );
}
