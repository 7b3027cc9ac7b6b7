//! Planning tests on the recorded layouts (no cgroupfs needed).

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::*;

fn layout(name: &str) -> CgroupLayout {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/cgroups")
        .join(name);
    detect_at(&root).unwrap()
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// `(directory relative to the fake cgroup mount root, file, value)` of each write.
fn writes(cg: &Cgroup, r: &LinuxResources) -> Vec<(String, String, String)> {
    plan_resources(cg, r, true)
        .unwrap()
        .into_iter()
        .map(|w| {
            let d = &cg.dirs[w.dir];
            let rel = d
                .path
                .strip_prefix(d.mount_point.parent().unwrap())
                .unwrap();
            (rel.display().to_string(), w.file, w.value)
        })
        .collect()
}

fn has(ws: &[(String, String, String)], dir: &str, file: &str, value: &str) -> bool {
    ws.iter()
        .any(|(d, f, v)| d == dir && f == file && v == value)
}

#[test]
fn absolute_paths_go_under_each_mount_and_relative_ones_under_our_own_cgroup() {
    let l = layout("hybrid");
    let cg = Cgroup::resolve(&l, "/drover/c1").unwrap();
    assert_eq!(cg.dirs.len(), 10, "9 v1 hierarchies + unified");
    let mem = cg.dirs.iter().find(|d| d.has("memory")).unwrap();
    assert!(
        mem.path.ends_with("sys/fs/cgroup/memory/drover/c1"),
        "{:?}",
        mem.path
    );
    let uni = cg.dirs.last().unwrap();
    assert!(uni.is_unified() && uni.path.ends_with("sys/fs/cgroup/unified/drover/c1"));

    let rel = Cgroup::resolve(&l, "drover/c1").unwrap();
    let mem = rel.dirs.iter().find(|d| d.has("memory")).unwrap();
    assert!(
        mem.path.ends_with("memory/process_api/5c46/drover/c1"),
        "{:?}",
        mem.path
    );
    let pids = rel.dirs.iter().find(|d| d.has("pids")).unwrap();
    assert!(pids.path.ends_with("pids/drover/c1"), "{:?}", pids.path);
}

#[test]
fn systemd_style_and_escaping_paths_are_refused_with_the_reason() {
    let l = layout("v2");
    let e = Cgroup::resolve(&l, "system.slice:drover:c1")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("systemd form") && e.contains("not supported"),
        "{e}"
    );
    let e = Cgroup::resolve(&l, "/a/../../etc").unwrap_err().to_string();
    assert!(e.contains(".."), "{e}");
    let e = Cgroup::resolve(&l, "/").unwrap_err().to_string();
    assert!(e.contains("root cgroup"), "{e}");
}

#[test]
fn hybrid_limits_go_to_v1_controllers_and_hugetlb_to_the_unified_mount() {
    let l = layout("hybrid");
    let cg = Cgroup::resolve(&l, "/d/c").unwrap();
    let r = resources(
        r#"{"memory":{"limit":67108864,"swap":134217728,"reservation":33554432},
            "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0"},
            "pids":{"limit":100},
            "hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#,
    );
    let w = writes(&cg, &r);
    assert!(has(&w, "memory/d/c", "memory.limit_in_bytes", "67108864"));
    assert!(has(
        &w,
        "memory/d/c",
        "memory.memsw.limit_in_bytes",
        "134217728"
    ));
    assert!(has(
        &w,
        "memory/d/c",
        "memory.soft_limit_in_bytes",
        "33554432"
    ));
    assert!(has(&w, "cpu/d/c", "cpu.shares", "512"));
    assert!(has(&w, "cpu/d/c", "cpu.cfs_quota_us", "50000"));
    assert!(has(&w, "cpuset/d/c", "cpuset.cpus", "0"));
    assert!(has(&w, "pids/d/c", "pids.max", "100"));
    assert!(has(&w, "unified/d/c", "hugetlb.2MB.max", "0"));
    // The period is written before the quota (a quota is checked against the period).
    let pos = |f: &str| w.iter().position(|(_, ff, _)| ff == f).unwrap();
    assert!(pos("cpu.cfs_period_us") < pos("cpu.cfs_quota_us"));
    assert!(pos("memory.limit_in_bytes") < pos("memory.memsw.limit_in_bytes"));
    // Devices: deny all first, on the v1 devices hierarchy.
    assert_eq!(
        w.iter().find(|(d, _, _)| d == "devices/d/c").unwrap().1,
        "devices.deny"
    );
}

#[test]
fn v1_co_mounted_cpu_cpuacct_receives_the_cpu_files() {
    let cg = Cgroup::resolve(&layout("v1"), "/d/c").unwrap();
    let w = writes(
        &cg,
        &resources(r#"{"cpu":{"shares":2048},"network":{"classID":1048577}}"#),
    );
    assert!(has(&w, "cpu,cpuacct/d/c", "cpu.shares", "2048"));
    assert!(has(
        &w,
        "net_cls,net_prio/d/c",
        "net_cls.classid",
        "1048577"
    ));
}

#[test]
fn v2_converts_shares_swap_and_quota_like_runc() {
    let cg = Cgroup::resolve(&layout("v2"), "/d/c").unwrap();
    let r = resources(
        r#"{"memory":{"limit":1000,"swap":3000,"reservation":500},
            "cpu":{"shares":1024,"quota":-1,"period":50000},
            "pids":{"limit":-1},
            "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}}"#,
    );
    let w = writes(&cg, &r);
    assert!(has(&w, "cgroup/d/c", "memory.max", "1000"));
    assert!(
        has(&w, "cgroup/d/c", "memory.swap.max", "2000"),
        "OCI swap is memory+swap: {w:?}"
    );
    assert!(has(&w, "cgroup/d/c", "memory.low", "500"));
    assert!(has(&w, "cgroup/d/c", "cpu.weight", "39"));
    assert!(has(&w, "cgroup/d/c", "cpu.max", "max 50000"));
    assert!(has(&w, "cgroup/d/c", "pids.max", "max"));
    assert!(has(&w, "cgroup/d/c", "io.bfq.weight", "500"));
    assert!(has(&w, "cgroup/d/c", "io.max", "8:0 rbps=1048576"));
    let io = plan_resources(&cg, &r, true).unwrap();
    let weight = io.iter().find(|w| w.file == "io.bfq.weight").unwrap();
    assert_eq!(weight.fallback, Some(("io.weight".into(), "4950".into())));
}

#[test]
fn v2_device_rules_leave_the_file_plan_to_the_bpf_program() {
    let cg = Cgroup::resolve(&layout("v2"), "/d/c").unwrap();
    let deny = resources(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#);
    assert!(plan_resources(&cg, &deny, true).unwrap().is_empty());
    // Bad rules are still refused before anything is created.
    let bad = resources(r#"{"devices":[{"allow":true,"type":"c","access":"rwx"}]}"#);
    assert!(device_bpf::program(bad.devices().as_ref().unwrap()).is_err());
}

#[test]
fn resources_without_a_controller_or_with_bad_values_name_what_is_wrong() {
    let hybrid = Cgroup::resolve(&layout("hybrid"), "/d/c").unwrap();
    let e = plan_resources(&hybrid, &resources(r#"{"network":{"classID":1}}"#), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("net_cls controller"), "{e}");
    let e = plan_resources(
        &hybrid,
        &resources(r#"{"memory":{"limit":200,"swap":100}}"#),
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("memory.swap") && e.contains("below"), "{e}");
    let v1 = Cgroup::resolve(&layout("v1"), "/d/c").unwrap();
    let e = plan_resources(&v1, &resources(r#"{"unified":{"memory.high":"1"}}"#), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs cgroup v2"), "{e}");
    let v2 = Cgroup::resolve(&layout("v2"), "/d/c").unwrap();
    let e = plan_resources(&v2, &resources(r#"{"unified":{"../x":"1"}}"#), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"../x\""), "{e}");
}

#[test]
fn update_raises_memory_limit_and_swap_in_an_order_that_works_both_ways() {
    let cg = Cgroup::resolve(&layout("hybrid"), "/d/c").unwrap();
    let r = resources(r#"{"memory":{"limit":300,"swap":400}}"#);
    let w = plan_resources(&cg, &r, false).unwrap();
    let files: Vec<(&str, bool)> = w.iter().map(|w| (w.file.as_str(), w.may_fail)).collect();
    assert_eq!(
        files,
        [
            ("memory.limit_in_bytes", true),
            ("memory.memsw.limit_in_bytes", false),
            ("memory.limit_in_bytes", false)
        ]
    );
}

#[test]
fn cpu_shares_convert_to_weight_with_runcs_formula() {
    assert_eq!(cpu_shares_to_weight(0), 0, "unset stays unset");
    assert_eq!(cpu_shares_to_weight(2), 1);
    assert_eq!(cpu_shares_to_weight(1024), 39);
    assert_eq!(cpu_shares_to_weight(512), 20, "the kubelet's 500m request");
    assert_eq!(cpu_shares_to_weight(262_144), 10_000);
    assert_eq!(cpu_shares_to_weight(1), 1, "below the v1 minimum clamps");
    assert_eq!(
        cpu_shares_to_weight(1 << 30),
        10_000,
        "above the v1 maximum clamps"
    );
}

#[test]
fn a_cgroup_round_trips_through_the_state_file_with_what_it_created() {
    let mut cg = Cgroup::resolve(&layout("hybrid"), "/d/c").unwrap();
    cg.dirs[0].created = 2;
    let back: Cgroup = serde_json::from_str(&serde_json::to_string(&cg).unwrap()).unwrap();
    assert_eq!(back, cg);
    let _unused: PathBuf = back.dirs[0].path.clone();
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_failed_create_removes_every_directory_it_made_and_names_the_file() {
    // A recorded tree in a temporary directory: mkdir works, but the new directories have none
    // of the kernel's files, so applying the limits fails part-way.
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cgroups/hybrid");
    copy_tree(&src, tmp.path());
    let l = detect_at(tmp.path()).unwrap();
    let r = resources(r#"{"memory":{"limit":1048576}}"#);
    let err = Cgroup::create(&l, "/drover/c1", Some(&r))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&tmp.path().display().to_string()), "{err}");
    for h in
        l.v1.iter()
            .map(|h| &h.mount_point)
            .chain(l.unified.iter().map(|u| &u.mount_point))
    {
        assert!(
            !h.join("drover").exists(),
            "{} left behind",
            h.join("drover").display()
        );
    }
    // Negative control: without the rollback the directories would still be there.
    let mut cg = Cgroup::resolve(&l, "/drover/c1").unwrap();
    assert!(
        cg.make_dirs(&[]).is_err(),
        "cpuset copy fails on the fake tree"
    );
    assert!(l.v1[0].mount_point.join("drover/c1").exists());
    cg.destroy().unwrap();
    assert!(!l.v1[0].mount_point.join("drover").exists());
}
