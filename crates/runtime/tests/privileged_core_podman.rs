//! podman (with conmon) drives `drover-runtime` through runc's CLI: `run --rm` with exit codes
//! and output, then a detached container with `exec`, `stop` and `rm`.
//!
//! podman runs with a private `--root`/`--runroot` and `--cgroup-parent` under
//! `drover-test-podman-…`, `--network none`, the cgroupfs manager and file events; nofile and
//! nproc are given explicitly because podman's default (1048576) exceeds this host's hard limit
//! and root lacks CAP_SYS_RESOURCE (see docs/runtime.md). Everything is removed at the end,
//! also when an assertion fails ([`Cleanup`]).

#[path = "../testdata/bundles/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{privileged, require, text};

struct Podman {
    work: tempfile::TempDir,
    parent: String,
}

impl Podman {
    fn cmd(&self, args: &[&str]) -> Command {
        let w = self.work.path();
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(w.join("root"))
            .arg("--runroot")
            .arg(w.join("runroot"))
            .arg("--runtime")
            .arg(w.join("drover-runtime"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        support::output(
            self.cmd(args),
            Duration::from_secs(120),
            &format!("podman {args:?}"),
        )
    }

    fn container_args<'a>(&'a self, rootfs: &'a str) -> Vec<&'a str> {
        vec![
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:4096",
            "--ulimit",
            "nproc=4096:4096",
            "--cgroup-parent",
            &self.parent,
            "--rootfs",
            rootfs,
        ]
    }
}

/// Removes every container, unmounts what podman left under the work dir and removes the
/// `drover-test-podman-…` cgroups.
struct Cleanup<'a>(&'a Podman);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd(&["rm", "-af", "-t", "0"]).output();
        unmount_under(self.0.work.path());
        let name = self.0.parent.trim_start_matches('/');
        let mut dirs = support::cgroup_dirs_named(name);
        // Children first (conmon's and the containers' cgroups), then the parent.
        let mut all = Vec::new();
        for d in dirs.drain(..) {
            collect(&d, &mut all);
        }
        all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for d in all {
            let _ = std::fs::remove_dir(&d);
        }
    }
}

fn collect(d: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect(&e.path(), out);
            }
        }
    }
    out.push(d.to_path_buf());
}

fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = rustix::mount::unmount(p.as_str(), rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn podman_runs_execs_and_stops_containers_through_drover_runtime() {
    if !privileged() || !require("podman") || !require("conmon") {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("drover-test-podman-")
        .tempdir()
        .unwrap();
    let parent = format!("/{}", support::unique("podman"));
    std::os::unix::fs::symlink(support::runtime_bin(), work.path().join("drover-runtime")).unwrap();
    // A rootfs like the bundles' (busybox with relative links).
    let bundle = support::Bundle::new(&support::base_config(&["true"]));
    let rootfs = bundle.path().join("rootfs");
    let rootfs = rootfs.to_str().unwrap();
    let pm = Podman { work, parent };
    let _cleanup = Cleanup(&pm);

    let mut args = vec!["run", "--rm"];
    args.extend(pm.container_args(rootfs));
    args.push("/bin/true");
    let out = pm.run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "podman run /bin/true: {}",
        text(&out.stderr)
    );

    let mut args = vec!["run", "--rm"];
    args.extend(pm.container_args(rootfs));
    args.extend(["sh", "-c", "echo hello from podman; hostname; exit 4"]);
    let out = pm.run(&args);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("hello from podman\n"),
        "{}",
        text(&out.stdout)
    );

    let mut args = vec!["run", "-d"];
    args.extend(pm.container_args(rootfs));
    args.extend(["sleep", "1000"]);
    let out = pm.run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "podman run -d: {}",
        text(&out.stderr)
    );
    let id = text(&out.stdout).trim().to_string();
    let out = pm.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo exec-ok; ls /proc | grep -c '^[0-9]'; exit 6",
    ]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "podman exec: {}",
        text(&out.stderr)
    );
    let o = text(&out.stdout);
    assert!(o.starts_with("exec-ok\n"), "{o}");
    assert!(
        Path::new(drover_runtime::state::DEFAULT_ROOT)
            .join(&id)
            .join("state.json")
            .exists(),
        "podman did not use drover-runtime's default --root"
    );
    let out = pm.run(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.OCIRuntime}}",
        &id,
    ]);
    assert!(
        text(&out.stdout).starts_with("running "),
        "{}",
        text(&out.stdout)
    );
    let out = pm.run(&["stop", "-t", "1", &id]);
    assert!(out.status.success(), "podman stop: {}", text(&out.stderr));
    let out = pm.run(&["inspect", "--format", "{{.State.Status}}", &id]);
    assert_eq!(text(&out.stdout).trim(), "exited");
    let out = pm.run(&["rm", &id]);
    assert!(out.status.success(), "podman rm: {}", text(&out.stderr));
    // The runtime's own state is gone too (podman uses the default --root), and while the
    // container ran it was there (so the check can fail).
    assert!(
        !Path::new(drover_runtime::state::DEFAULT_ROOT)
            .join(&id)
            .exists(),
        "runtime state of {id} left behind"
    );
}
