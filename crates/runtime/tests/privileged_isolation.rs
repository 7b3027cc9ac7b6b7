//! Privileged tests of the container's isolation: `rootfs::Plan` and `process::Plan` applied in
//! a real child, observed from inside the container.
//!
//! The harness does not need core's `clone`: it spawns `/bin/sh` with `Command::pre_exec`,
//! which runs in the forked (single-threaded) child before `execve` — exactly where core's child
//! runs the plans. The child `unshare`s the mount namespace (plus network, IPC and UTS as the
//! spec asks), applies the plans and reports a failure as the 12-byte `ChildError` over a pipe.
//! The shell then runs inside the new root and prints what the test checks.
//!
//! Needs root and busybox-static; skipped (printed) otherwise, unless `DROVER_REQUIRE_PEERS=1`.
//! Everything made on the host is a `drover-test-…` temporary directory (mounts live only in
//! the child's mount namespace and vanish with it).

// `pre_exec` is unsafe: the closure runs between fork and exec. It only calls the plans'
// child-side methods, which make raw syscalls on pre-built data and never allocate.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use drover_runtime::sys::ChildError;
use drover_runtime::{process, rootfs};
use oci_spec::runtime::Spec;
use rustix::fd::OwnedFd;
use serde_json::{Value, json};

// === harness ===

fn privileged() -> bool {
    let require = std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1");
    let reason = if !rustix::process::geteuid().is_root() {
        Some("isolation tests need root")
    } else if !Path::new("/bin/busybox").exists() {
        Some("isolation tests need busybox-static (/bin/busybox)")
    } else {
        None
    };
    match reason {
        None => true,
        Some(r) if require => panic!("{r} (DROVER_REQUIRE_PEERS=1)"),
        Some(r) => {
            eprintln!("SKIP: {r}");
            false
        }
    }
}

/// A bundle directory with a busybox rootfs, removed on drop.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("drover-test-iso-")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "work"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        // The applet links `busybox --install -s` would make, but relative (it points them at
        // the absolute path of the binary it runs from, a host path).
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        assert!(list.status.success(), "busybox --list failed");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
            }
        }
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
}

/// runc's default masked and read-only paths (`runc spec`, 1.1).
const MASKED: [&str; 9] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
];
const READONLY: [&str; 6] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/scsi",
];

/// A runc-like spec: the default mounts, containerd's capabilities, a read-only root.
fn base_spec() -> Value {
    let caps: Vec<&str> = process::DEFAULT_CAPABILITIES.to_vec();
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}],
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY
        }
    })
}

fn parse(v: &Value) -> Spec {
    serde_json::from_value(v.clone()).expect("test spec parses")
}

/// What the container printed.
#[derive(Debug)]
struct Ran {
    stdout: String,
    /// Shown by `Debug` when an assertion fails.
    #[allow(dead_code)]
    stderr: String,
    code: Option<i32>,
}

/// Why the container did not start.
#[derive(Debug)]
enum Failed {
    Prepare(String),
    Child(ChildError, String),
}

struct Harness<'a> {
    bundle: &'a Path,
    no_pivot: bool,
    /// Run in a new user namespace mapping root to root (the only map a process may write for
    /// itself): device nodes are then bind-mounted from the host.
    user_namespace: bool,
    /// The host path of a pty slave opened here, bound onto /dev/console before pivot_root.
    console: Option<&'a Path>,
    /// Open a pty in the container's own devpts after `apply` and bind it with
    /// `rootfs::bind_console` (what core's console setup does).
    console_after_pivot: bool,
    /// Apply the rootfs plan in its two halves (`apply_mounts`, then `enter_root`), with a check
    /// in between that the mounts are done and the root is not entered yet (where runc runs
    /// the createContainer hooks).
    split: bool,
    /// Apply no plan at all (only the namespaces): the floor for the hand-run measurement.
    floor: bool,
    cgroup: Option<&'a drover_runtime::cgroups::Cgroup>,
}

impl<'a> Harness<'a> {
    fn new(bundle: &'a Bundle) -> Self {
        Self::at(bundle.path())
    }

    fn at(bundle: &'a Path) -> Self {
        Self {
            bundle,
            no_pivot: false,
            user_namespace: false,
            console: None,
            console_after_pivot: false,
            split: false,
            floor: false,
            cgroup: None,
        }
    }

    /// Prepare the plans of `spec`, start `/bin/sh -c script` in a child that applies them, and
    /// collect its output.
    fn run(&self, spec: &Value, script: &str) -> Result<Ran, Failed> {
        let spec = parse(spec);
        let names: Vec<String> = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
            .iter()
            .map(|n| n.typ().to_string())
            .collect();
        let mut flags = libc::CLONE_NEWNS;
        for (name, flag) in [
            ("net", libc::CLONE_NEWNET),
            ("ipc", libc::CLONE_NEWIPC),
            ("uts", libc::CLONE_NEWUTS),
        ] {
            if names.iter().any(|n| n == name) {
                flags |= flag;
            }
        }
        if self.user_namespace {
            flags |= libc::CLONE_NEWUSER;
        }
        let opts = rootfs::Options {
            bundle: self.bundle,
            user_namespace: self.user_namespace,
            no_pivot: self.no_pivot,
            console: self.console,
            cgroup: self.cgroup,
        };
        let fs = rootfs::prepare(&spec, &opts).map_err(|e| Failed::Prepare(format!("{e:#}")))?;
        let proc_spec = spec.process().as_ref().expect("spec has a process");
        let pr = process::prepare(
            proc_spec,
            &process::Options {
                user_namespace: self.user_namespace,
            },
        )
        .map_err(|e| Failed::Prepare(format!("{e:#}")))?;
        let (err_read, err_write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let probe =
            CString::new(self.bundle.join("rootfs/dev/null").as_os_str().as_bytes()).unwrap();
        let run_child = ChildSide {
            floor: self.floor,
            split: self.split.then_some(probe),
            console_after_pivot: self.console_after_pivot,
            userns: self.user_namespace,
            flags,
            fs,
            pr,
            err_write,
        };

        // The floor runs the host's busybox shell, the container the rootfs's copy of it.
        let mut cmd = Command::new(if self.floor {
            "/bin/busybox"
        } else {
            "/bin/sh"
        });
        if self.floor {
            cmd.arg("sh");
        }
        cmd.arg("-c")
            .arg(script)
            .env_clear()
            .env("PATH", "/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let plans = std::sync::Arc::new(run_child);
        let child_plans = plans.clone();
        // SAFETY: the closure runs in the forked child; `ChildSide::run` makes raw syscalls on
        // data prepared above and does not allocate, lock or log.
        unsafe {
            cmd.pre_exec(move || child_plans.run());
        }
        let out = cmd.output();
        drop(cmd);
        let ChildSide {
            fs, pr, err_write, ..
        } = std::sync::Arc::try_unwrap(plans)
            .ok()
            .expect("the command is gone");
        drop(err_write);
        let mut buf = Vec::new();
        std::fs::File::from(err_read).read_to_end(&mut buf).unwrap();
        if buf.len() == 12 {
            let e = ChildError::from_bytes(buf[..12].try_into().unwrap());
            let msg = if (100..200).contains(&e.step) {
                fs.describe(&e)
            } else {
                pr.describe(&e)
            };
            return Err(Failed::Child(e, msg));
        }
        let out = out.expect("spawning the container shell");
        Ok(Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
        })
    }

    fn ok(&self, spec: &Value, script: &str) -> Ran {
        match self.run(spec, script) {
            Ok(r) => {
                assert_eq!(r.code, Some(0), "container script failed: {r:#?}");
                r
            }
            Err(e) => panic!("container did not start: {e:?}"),
        }
    }
}

struct ChildSide {
    floor: bool,
    /// With the split: a host path of the rootfs's /dev/null, which must exist between halves.
    split: Option<CString>,
    console_after_pivot: bool,
    userns: bool,
    flags: i32,
    fs: rootfs::Plan,
    pr: process::Plan,
    err_write: OwnedFd,
}

impl ChildSide {
    /// Child side: what core's child does between `clone` and `execve`, in its order.
    fn run(&self) -> std::io::Result<()> {
        let r = self.steps();
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = rustix::io::write(&self.err_write, &e.to_bytes());
                Err(std::io::Error::from_raw_os_error(e.errno.max(1)))
            }
        }
    }

    fn steps(&self) -> Result<(), ChildError> {
        // SAFETY: the forked child is single-threaded; unshare changes only its own namespaces.
        if unsafe { libc::unshare(self.flags) } != 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(ChildError {
                step: 1,
                errno,
                index: 0,
            });
        }
        if self.userns {
            for (file, content) in [
                (c"/proc/self/setgroups", &b"deny"[..]),
                (c"/proc/self/uid_map", b"0 0 1"),
                (c"/proc/self/gid_map", b"0 0 1"),
            ] {
                let fail = |e: rustix::io::Errno| ChildError::new(2, e, 0);
                let fd =
                    rustix::fs::open(file, rustix::fs::OFlags::WRONLY, rustix::fs::Mode::empty())
                        .map_err(fail)?;
                rustix::io::write(&fd, content).map_err(fail)?;
            }
        }
        if self.floor {
            return Ok(());
        }
        match &self.split {
            None => self.fs.apply()?,
            Some(probe) => {
                self.fs.apply_mounts()?;
                // Between the halves: the mounts are visible under the host path of the rootfs.
                rustix::fs::stat(probe.as_c_str()).map_err(|e| ChildError::new(4, e, 0))?;
                self.fs.enter_root()?;
            }
        }
        if self.console_after_pivot {
            let fail = |e: rustix::io::Errno| ChildError::new(3, e, 0);
            let flags = rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY;
            let master = rustix::fs::open(
                c"/dev/ptmx",
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY,
                rustix::fs::Mode::empty(),
            )
            .map_err(fail)?;
            rustix::pty::unlockpt(&master).map_err(fail)?;
            let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags).map_err(fail)?;
            rootfs::bind_console(std::os::fd::AsFd::as_fd(&slave))?;
        }
        self.pr.apply_privileged()?;
        self.pr.apply_cwd()?;
        self.pr.apply_identity()
    }
}

/// `/proc/self/mountinfo` lines: (mount point, per-mount options, fs type, super options).
fn mounts(mountinfo: &str) -> Vec<(String, String, String, String)> {
    mountinfo
        .lines()
        .filter(|l| l.contains(" - "))
        .map(|l| {
            let (left, right) = l.split_once(" - ").unwrap();
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            (
                f[4].to_owned(),
                f[5].to_owned(),
                r[0].to_owned(),
                r.get(2).unwrap_or(&"").to_string(),
            )
        })
        .collect()
}

fn find<'m>(
    m: &'m [(String, String, String, String)],
    point: &str,
) -> &'m (String, String, String, String) {
    m.iter()
        .rev()
        .find(|x| x.0 == point)
        .unwrap_or_else(|| panic!("no mount at {point} in {m:#?}"))
}

fn section<'s>(out: &'s str, name: &str) -> &'s str {
    let start = format!("=={name}==\n");
    let i = out
        .find(&start)
        .unwrap_or_else(|| panic!("no section {name} in {out}"))
        + start.len();
    let rest = &out[i..];
    &rest[..rest.find("\n==").map(|j| j + 1).unwrap_or(rest.len())]
}

// === tests ===

#[test]
fn runc_like_spec_gives_dev_proc_masks_and_a_read_only_root() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let mut h = Harness::new(&b);
    h.split = true;
    let r = h.ok(
        &base_spec(),
        "echo ==mountinfo==; cat /proc/self/mountinfo
         echo ==dev==; stat -c '%n %F %a %t:%T %u:%g' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev
         echo ==links==; for l in fd stdin stdout stderr ptmx core; do echo $l $(readlink /dev/$l); done
         echo ==keys==; cat /proc/keys | wc -c; ls -A /sys/firmware | wc -l
         echo ==rootwrite==; touch /drover-test-file 2>&1 || true
         echo ==devnull==; echo hi > /dev/null && echo ok
         echo ==ptmx==; stat -c '%a' /dev/pts/ptmx
         echo ==end==",
    );
    let out = &r.stdout;
    let m = mounts(section(out, "mountinfo"));
    let root = find(&m, "/");
    assert!(
        root.1.split(',').any(|o| o == "ro"),
        "root is not read-only: {root:?}"
    );
    let dev = find(&m, "/dev");
    assert_eq!(dev.2, "tmpfs");
    assert!(dev.3.contains("mode=755"), "{dev:?}");
    let pts = find(&m, "/dev/pts");
    assert_eq!(pts.2, "devpts");
    assert!(
        pts.3.contains("ptmxmode=666") && pts.3.contains("mode=620") && pts.3.contains("gid=5"),
        "{pts:?}"
    );
    assert_eq!(find(&m, "/dev/shm").2, "tmpfs");
    assert_eq!(find(&m, "/dev/mqueue").2, "mqueue");
    assert!(find(&m, "/sys").1.split(',').any(|o| o == "ro"));
    for p in READONLY.iter().filter(|p| Path::new(p).exists()) {
        let e = find(&m, p);
        assert!(
            e.1.split(',').any(|o| o == "ro"),
            "{p} not read-only: {e:?}"
        );
    }
    // Masked: files by a bind of the container's /dev/null (a node of the /dev tmpfs), dirs
    // by an empty read-only tmpfs. (This host has no /proc/kcore; /proc/keys and /sys/firmware
    // exist.)
    assert_eq!(
        find(&m, "/proc/keys").2,
        "tmpfs",
        "/proc/keys is not masked"
    );
    let fw = find(&m, "/sys/firmware");
    assert!(
        fw.2 == "tmpfs" && fw.1.starts_with("ro"),
        "/sys/firmware: {fw:?}"
    );
    assert_eq!(
        section(out, "keys"),
        "0\n0\n",
        "masked paths still show data"
    );
    let dev_lines = section(out, "dev");
    for (node, nums) in [
        ("/dev/null", "1:3"),
        ("/dev/zero", "1:5"),
        ("/dev/full", "1:7"),
        ("/dev/random", "1:8"),
        ("/dev/urandom", "1:9"),
        ("/dev/tty", "5:0"),
    ] {
        let expected = format!("{node} character special file 666 {nums} 0:0");
        assert!(
            dev_lines.contains(&expected),
            "{expected:?} not in {dev_lines}"
        );
    }
    assert!(dev_lines.contains("/dev directory 755"), "{dev_lines}");
    let links = section(out, "links");
    for l in [
        "fd /proc/self/fd",
        "stdin /proc/self/fd/0",
        "stdout /proc/self/fd/1",
        "stderr /proc/self/fd/2",
        "ptmx pts/ptmx",
    ] {
        assert!(links.lines().any(|x| x == l), "{l:?} not in {links}");
    }
    assert!(
        section(out, "rootwrite").contains("Read-only file system"),
        "{out}"
    );
    assert_eq!(section(out, "devnull").trim(), "ok");
    assert_eq!(section(out, "ptmx").trim(), "666");
    assert!(!b.rootfs().join("drover-test-file").exists());
}

#[test]
fn a_read_only_root_checker_catches_a_writable_root() {
    // Negative control of the test above: the same checks on a spec without root.readonly.
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let mut spec = base_spec();
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["maskedPaths"] = json!([]);
    let r = Harness::new(&b).ok(
        &spec,
        "cat /proc/self/mountinfo; echo ==w==; touch /drover-test-file && echo wrote",
    );
    let m = mounts(&r.stdout);
    assert!(!find(&m, "/").1.split(',').any(|o| o == "ro"));
    assert!(r.stdout.contains("wrote"));
    assert!(
        m.iter().all(|x| x.0 != "/proc/keys"),
        "/proc/keys is masked without maskedPaths"
    );
    assert!(b.rootfs().join("drover-test-file").exists());
}

#[test]
fn symlinks_in_the_image_never_lead_mounts_or_nodes_onto_the_host() {
    if !privileged() {
        return;
    }
    let host_dev = tempfile::Builder::new()
        .prefix("drover-test-iso-host-")
        .tempdir()
        .unwrap();
    let host_etc = tempfile::Builder::new()
        .prefix("drover-test-iso-host-")
        .tempdir()
        .unwrap();
    let in_root = |rootfs: &Path, host: &Path| rootfs.join(host.strip_prefix("/").unwrap());
    let b = Bundle::new();
    let rootfs = b.rootfs();
    // The image points /dev at a host directory by an absolute link, and a mount destination
    // at another one by a relative link climbing far above the root.
    std::fs::remove_dir(rootfs.join("dev")).unwrap();
    std::os::unix::fs::symlink(host_dev.path(), rootfs.join("dev")).unwrap();
    let rel = format!(
        "{}{}",
        "../".repeat(16),
        host_etc.path().strip_prefix("/").unwrap().display()
    );
    std::os::unix::fs::symlink(&rel, rootfs.join("etc/escape")).unwrap();
    std::fs::create_dir_all(in_root(&rootfs, host_dev.path())).unwrap();
    std::fs::create_dir_all(in_root(&rootfs, host_etc.path())).unwrap();
    let mut spec = base_spec();
    spec["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/etc/escape/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
    ));
    let r = Harness::new(&b).ok(&spec, "ls /dev");
    assert!(
        r.stdout.contains("null") && r.stdout.contains("pts"),
        "{r:?}"
    );
    let host_is_empty = |dir: &Path| {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            entries.is_empty(),
            "the container wrote to the host's {}: {entries:?}",
            dir.display()
        );
    };
    host_is_empty(host_dev.path());
    host_is_empty(host_etc.path());
    // The links were followed inside the rootfs instead.
    assert!(
        in_root(&rootfs, host_etc.path()).join("sub").is_dir(),
        "mount point not made in the rootfs"
    );

    // A link that dangles inside the rootfs gets its target made inside the rootfs (as runc),
    // never on the host: here /dev -> <host dir> with no such directory in the rootfs, and a
    // Debian-style /etc/resolv.conf -> ../run/… that a file bind mount covers.
    std::fs::remove_dir_all(in_root(&rootfs, host_dev.path())).unwrap();
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        rootfs.join("etc/resolv.conf"),
    )
    .unwrap();
    let resolv = host_etc.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 192.0.2.53\n").unwrap();
    spec["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/etc/resolv.conf", "type": "bind", "source": resolv, "options": ["rbind", "ro"]}
    ));
    let r = Harness::new(&b).ok(&spec, "ls /dev/null && cat /etc/resolv.conf");
    assert!(r.stdout.contains("nameserver 192.0.2.53"), "{r:?}");
    host_is_empty(host_dev.path());
    assert!(
        in_root(&rootfs, host_dev.path()).is_dir(),
        "link target not made in the rootfs"
    );
    assert!(
        rootfs
            .join("run/systemd/resolve/stub-resolv.conf")
            .is_file()
    );
    std::fs::remove_file(&resolv).unwrap();

    // Negative control: a naive host-side join follows the same link out of the rootfs, and
    // the host-directory check sees it.
    std::fs::create_dir_all(rootfs.join("etc/escape/naive")).unwrap();
    let escaped = std::panic::catch_unwind(|| host_is_empty(host_etc.path()));
    assert!(
        escaped.is_err(),
        "the checker must flag a write through the link"
    );
}

#[test]
fn bind_mounts_keep_ro_and_propagation_and_tmpfs_options_reach_the_kernel() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let shared = tempfile::Builder::new()
        .prefix("drover-test-iso-src-")
        .tempdir()
        .unwrap();
    std::fs::write(shared.path().join("hello"), "from the host\n").unwrap();
    let file = shared.path().join("single");
    std::fs::write(&file, "one file\n").unwrap();
    let mut spec = base_spec();
    let extra = [
        json!({"destination": "/data/ro", "type": "bind", "source": shared.path(), "options": ["rbind", "ro", "rprivate"]}),
        json!({"destination": "/data/rw", "source": shared.path(), "options": ["bind", "nosuid", "rshared"]}),
        json!({"destination": "/etc/single.conf", "type": "bind", "source": file, "options": ["bind", "ro"]}),
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "size=1m", "mode=700"]}),
    ];
    spec["mounts"].as_array_mut().unwrap().extend(extra);
    let r = Harness::new(&b).ok(
        &spec,
        "cat /proc/self/mountinfo; echo ==ro==; cat /data/ro/hello; touch /data/ro/x 2>&1 || true
         echo ==rw==; touch /data/rw/drover-test-made && echo made
         echo ==file==; cat /etc/single.conf; stat -c %a /scratch
         echo ==end==",
    );
    let m = mounts(&r.stdout);
    let ro = find(&m, "/data/ro");
    assert!(ro.1.split(',').any(|o| o == "ro"), "{ro:?}");
    let rw = find(&m, "/data/rw");
    assert!(
        rw.1.split(',').any(|o| o == "nosuid") && rw.1.starts_with("rw"),
        "{rw:?}"
    );
    let info = &r.stdout;
    let line = |p: &str| {
        info.lines()
            .rev()
            .find(|l| l.split(' ').nth(4) == Some(p))
            .unwrap()
            .to_owned()
    };
    assert!(
        line("/data/rw").contains("shared:"),
        "rshared not applied: {}",
        line("/data/rw")
    );
    assert!(
        !line("/data/ro").contains("shared:"),
        "rprivate not applied: {}",
        line("/data/ro")
    );
    let scratch = find(&m, "/scratch");
    assert_eq!(scratch.2, "tmpfs");
    assert!(
        scratch.3.contains("size=1024k") && scratch.3.contains("mode=700"),
        "{scratch:?}"
    );
    assert!(scratch.1.contains("noexec") && scratch.1.contains("nosuid"));
    let ro_out = section(info, "ro");
    assert!(
        ro_out.contains("from the host") && ro_out.contains("Read-only file system"),
        "{ro_out}"
    );
    assert_eq!(section(info, "rw").trim(), "made");
    assert!(
        shared.path().join("drover-test-made").exists(),
        "the rw bind does not reach the host dir"
    );
    assert!(
        section(info, "file").starts_with("one file\n700"),
        "{}",
        section(info, "file")
    );
    assert!(
        b.rootfs().join("etc/single.conf").is_file(),
        "file mount point not created as a file"
    );
}

#[test]
fn sysctls_apply_in_the_new_network_namespace_only() {
    if !privileged() {
        return;
    }
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host_before.trim() == "1" { "0" } else { "1" };
    let b = Bundle::new();
    let mut spec = base_spec();
    spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": want});
    let r = Harness::new(&b).ok(&spec, "cat /proc/sys/net/ipv4/ip_forward");
    assert_eq!(r.stdout.trim(), want);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_before
    );

    // Without a network namespace the same sysctl would change the host: refused in prepare.
    let mut spec = base_spec();
    spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": want});
    spec["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "ipc"}]);
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "sysfs");
    match Harness::new(&b).run(&spec, "true") {
        Err(Failed::Prepare(msg)) => assert!(msg.contains("net.ipv4.ip_forward"), "{msg}"),
        other => panic!("expected a prepare error, got {other:?}"),
    }
}

#[test]
fn rlimits_are_clamped_to_the_hosts_hard_limit_and_oom_score_is_set() {
    if !privileged() {
        return;
    }
    let host_hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    let b = Bundle::new();
    let mut spec = base_spec();
    spec["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1048576u64, "hard": 1048576u64},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    spec["process"]["oomScoreAdj"] = json!(500);
    let r = Harness::new(&b).ok(
        &spec,
        "ulimit -Sn; ulimit -Hn; ulimit -Hc; cat /proc/self/oom_score_adj",
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    let has_cap = rustix::thread::capabilities(None)
        .unwrap()
        .effective
        .contains(rustix::thread::CapabilitySet::SYS_RESOURCE);
    let expect = if has_cap {
        1_048_576
    } else {
        host_hard.unwrap_or(u64::MAX).min(1_048_576)
    };
    assert_eq!(lines[0], expect.to_string(), "{lines:?}");
    assert_eq!(lines[1], expect.to_string(), "{lines:?}");
    assert_eq!(lines[2], "0");
    assert_eq!(lines[3], "500");
}

#[test]
fn default_capabilities_and_no_new_privs_show_in_proc_status() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let r = Harness::new(&b).ok(
        &base_spec(),
        "grep -E '^(Cap|NoNewPrivs)' /proc/self/status",
    );
    let field = |name: &str| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:\t")))
            .unwrap_or_else(|| panic!("{name} missing in {}", r.stdout))
            .to_owned()
    };
    // containerd's 14 as a mask (see process::caps); as root the exec keeps the bounding set.
    assert_eq!(field("CapEff"), "00000000a80425fb");
    assert_eq!(field("CapPrm"), "00000000a80425fb");
    assert_eq!(field("CapBnd"), "00000000a80425fb");
    assert_eq!(field("CapInh"), "0000000000000000");
    assert_eq!(field("NoNewPrivs"), "1");
}

#[test]
fn user_groups_umask_ambient_capabilities_and_cwd_are_applied() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    std::fs::create_dir_all(b.rootfs().join("work/dir")).unwrap();
    let mut spec = base_spec();
    spec["root"]["readonly"] = json!(false);
    spec["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 27], "umask": 23 /* 0o027 */});
    spec["process"]["cwd"] = json!("/work/dir");
    spec["process"]["noNewPrivileges"] = json!(false);
    let nbs = ["CAP_NET_BIND_SERVICE"];
    spec["process"]["capabilities"] = json!({
        "bounding": nbs, "effective": nbs, "permitted": nbs, "inheritable": nbs, "ambient": nbs
    });
    let r = Harness::new(&b).ok(
        &spec,
        "id -u; id -g; id -G; umask; pwd; grep -E '^(CapEff|CapAmb|NoNewPrivs)' /proc/self/status",
    );
    let l: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        &l[..5],
        ["1000", "1001", "1001 5 27", "0027", "/work/dir"],
        "{r:?}"
    );
    assert!(l.contains(&"CapEff:\t0000000000000400"), "{l:?}");
    assert!(l.contains(&"CapAmb:\t0000000000000400"), "{l:?}");
    assert!(l.contains(&"NoNewPrivs:\t0"), "{l:?}");
}

#[test]
fn a_missing_cwd_is_a_clear_child_error() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let mut spec = base_spec();
    spec["process"]["cwd"] = json!("/no/such/dir");
    match Harness::new(&b).run(&spec, "true") {
        Err(Failed::Child(e, msg)) => {
            assert_eq!(e.errno, libc::ENOENT);
            assert!(
                msg.contains("process.cwd") && msg.contains("/no/such/dir"),
                "{msg}"
            );
        }
        other => panic!("expected a child error, got {other:?}"),
    }
}

#[test]
fn no_pivot_moves_the_root_and_still_isolates() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let mut h = Harness::new(&b);
    h.no_pivot = true;
    let r = h.ok(&base_spec(), "ls /; echo ==; touch /x 2>&1 || true");
    assert!(
        r.stdout.contains("bin") && r.stdout.contains("Read-only file system"),
        "{r:?}"
    );
    assert!(
        !r.stdout.contains("boot"),
        "the host root is visible: {r:?}"
    );
}

#[test]
fn in_a_user_namespace_devices_are_bound_from_the_host_and_sysfs_falls_back_to_a_bind() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let mut spec = base_spec();
    // No network namespace: a user namespace cannot mount a sysfs then (runc binds /sys).
    spec["linux"]["namespaces"] =
        json!([{"type": "user"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]);
    // Nor a proc without its own PID namespace: bind the host's.
    spec["mounts"][0] =
        json!({"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind"]});
    // Only root is mapped, so devpts cannot take gid=5.
    spec["mounts"][2]["options"] = json!([
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620"
    ]);
    let mut h = Harness::new(&b);
    h.user_namespace = true;
    let r = h.ok(
        &spec,
        "cat /proc/self/mountinfo; echo ==io==; echo hi > /dev/null && head -c 4 /dev/zero | wc -c
         echo ==id==; id -u; grep CapEff /proc/self/status",
    );
    let m = mounts(&r.stdout);
    for node in [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    ] {
        let e = find(&m, node);
        assert_ne!(e.2, "tmpfs", "{node} was not bound from the host: {e:?}");
    }
    let sys = find(&m, "/sys");
    assert_eq!(sys.2, "sysfs");
    assert!(sys.1.starts_with("ro"), "{sys:?}");
    assert!(
        m.iter().any(|x| x.0.starts_with("/sys/fs/cgroup")),
        "/sys is not a recursive bind of the host's: {m:#?}"
    );
    assert_eq!(section(&r.stdout, "io").trim(), "4");
    let id = section(&r.stdout, "id");
    assert!(id.starts_with("0\nCapEff:\t00000000a80425fb"), "{id}");
}

/// Removes the test's cgroup even when the test fails.
struct CgroupGuard(drover_runtime::cgroups::Cgroup);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("removing the test cgroup: {e}");
        }
    }
}

#[test]
fn a_cgroup_mount_shows_the_containers_own_cgroup_read_only() {
    if !privileged() {
        return;
    }
    use drover_runtime::cgroups;
    let layout = cgroups::detect().unwrap();
    let name = format!("/drover-test-iso-{}", std::process::id());
    let cg = CgroupGuard(cgroups::Cgroup::create(&layout, &name, None).unwrap());
    let b = Bundle::new();
    let mut spec = base_spec();
    spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
    }));
    let mut h = Harness::new(&b);
    h.cgroup = Some(&cg.0);
    let r = h.ok(
        &spec,
        "cat /proc/self/mountinfo; echo ==ls==; ls /sys/fs/cgroup
         echo ==w==; mkdir /sys/fs/cgroup/memory/x 2>&1 || true",
    );
    let info = &r.stdout;
    let m = mounts(info);
    let top = find(&m, "/sys/fs/cgroup");
    // As runc 1.1: the tmpfs is writable but nosuid/nodev/noexec, the hierarchies read-only.
    assert!(top.2 == "tmpfs" && top.1.contains("noexec"), "{top:?}");
    let listed = section(info, "ls");
    for h in &layout.v1 {
        let dir = h.dir_name();
        assert!(
            listed.lines().any(|l| l == dir),
            "{dir} missing from {listed}"
        );
        let point = format!("/sys/fs/cgroup/{dir}");
        let line = info
            .lines()
            .rev()
            .find(|l| l.split(' ').nth(4) == Some(point.as_str()))
            .unwrap();
        // The mount's root inside the hierarchy is the container's own cgroup, not the host's.
        assert!(line.split(' ').nth(3).unwrap().ends_with(&name), "{line}");
        assert!(line.split(' ').nth(5).unwrap().starts_with("ro"), "{line}");
    }
    if layout.unified.is_some() {
        assert!(listed.lines().any(|l| l == "unified"), "{listed}");
    }
    assert!(
        section(info, "w").contains("Read-only file system"),
        "{info}"
    );
}

#[test]
fn the_terminal_is_bound_onto_dev_console_before_or_after_pivot_root() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let script = "stat -c '%t:%T' /dev/console; grep ' /dev/console ' /proc/self/mountinfo";
    // A pty of the host's devpts, opened by the parent and passed in the options.
    let master =
        rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)
            .unwrap();
    rustix::pty::unlockpt(&master).unwrap();
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY,
    )
    .unwrap();
    let slave_rdev = rustix::fs::fstat(&slave).unwrap().st_rdev;
    let slave_path = PathBuf::from(format!("/dev/pts/{}", rustix::fs::minor(slave_rdev)));
    let mut h = Harness::new(&b);
    h.console = Some(&slave_path);
    let r = h.ok(&base_spec(), script);
    let want = format!(
        "{:x}:{:x}",
        rustix::fs::major(slave_rdev),
        rustix::fs::minor(slave_rdev)
    );
    assert_eq!(r.stdout.lines().next(), Some(want.as_str()), "{r:?}");
    assert!(r.stdout.contains("devpts"), "{r:?}");

    // A pty of the container's own devpts instance (its first: pts/0, major 136), bound after
    // pivot_root.
    let mut h = Harness::new(&b);
    h.console_after_pivot = true;
    let r = h.ok(&base_spec(), script);
    assert_eq!(r.stdout.lines().next(), Some("88:0"), "{r:?}");
    assert!(r.stdout.contains("devpts"), "{r:?}");

    // Negative control: without a terminal there is no /dev/console at all.
    let r = Harness::new(&b)
        .run(
            &base_spec(),
            "test -e /dev/console && echo present || echo absent",
        )
        .unwrap();
    assert_eq!(r.stdout.trim(), "absent");
}

/// Unmounts a host mount the test made, even when the test fails.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn overlay_rootfs_and_overlay_mounts_work() {
    if !privileged() {
        return;
    }
    let lower = Bundle::new();
    let layers = tempfile::Builder::new()
        .prefix("drover-test-iso-ovl-")
        .tempdir()
        .unwrap();
    let l = |n: &str| layers.path().join(n);
    for d in [
        "upper",
        "work",
        "data-lower",
        "data-upper",
        "data-work",
        "bundle/rootfs",
    ] {
        std::fs::create_dir_all(l(d)).unwrap();
    }
    std::fs::write(l("data-lower/from-lower"), "lower layer\n").unwrap();
    // The caller (the image store) mounts the rootfs as an overlay; the runtime takes it as is.
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.rootfs().display(),
        l("upper").display(),
        l("work").display()
    );
    rustix::mount::mount(
        c"overlay",
        l("bundle/rootfs").as_path(),
        c"overlay",
        rustix::mount::MountFlags::empty(),
        Some(std::ffi::CString::new(opts).unwrap().as_c_str()),
    )
    .unwrap();
    let _guard = MountGuard(l("bundle/rootfs"));
    let mut spec = base_spec();
    spec["root"]["readonly"] = json!(false);
    spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "overlay", "source": "overlay",
        "options": [
            format!("lowerdir={}", l("data-lower").display()),
            format!("upperdir={}", l("data-upper").display()),
            format!("workdir={}", l("data-work").display()),
        ]
    }));
    let bundle = l("bundle");
    let r = Harness::at(&bundle).ok(
        &spec,
        "cat /data/from-lower; echo new > /data/drover-test-new; echo root > /drover-test-root
         grep -E ' / | /data ' /proc/self/mountinfo",
    );
    assert!(r.stdout.starts_with("lower layer\n"), "{r:?}");
    assert_eq!(r.stdout.matches(" - overlay ").count(), 2, "{r:?}");
    assert!(
        l("data-upper/drover-test-new").exists(),
        "the overlay mount's upper layer got no write"
    );
    assert!(
        l("upper/drover-test-root").exists(),
        "the overlay rootfs's upper layer got no write"
    );
    assert!(
        !lower.rootfs().join("drover-test-root").exists(),
        "the lower layer was written"
    );
}

/// A shared mount on the host with a submount, removed even when the test fails.
struct SharedHostMount {
    dir: tempfile::TempDir,
}

impl SharedHostMount {
    fn new() -> Self {
        use rustix::mount::{MountPropagationFlags, mount_bind, mount_change};
        let dir = tempfile::Builder::new()
            .prefix("drover-test-iso-shared-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        mount_bind(dir.path(), dir.path()).unwrap();
        mount_change(dir.path(), MountPropagationFlags::SHARED).unwrap();
        let s = Self { dir };
        s.mount_sub();
        s
    }

    fn sub(&self) -> PathBuf {
        self.dir.path().join("sub")
    }

    fn mount_sub(&self) {
        rustix::mount::mount(
            c"tmpfs",
            self.sub().as_path(),
            c"tmpfs",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .unwrap();
    }

    /// Whether the host still has the submount.
    fn sub_mounted(&self) -> bool {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let sub = self.sub();
        info.lines()
            .any(|l| l.split(' ').nth(4) == Some(sub.to_str().unwrap()))
    }
}

impl Drop for SharedHostMount {
    fn drop(&mut self) {
        use rustix::mount::{UnmountFlags, unmount};
        let _ = unmount(self.sub().as_path(), UnmountFlags::DETACH);
        let _ = unmount(self.dir.path(), UnmountFlags::DETACH);
    }
}

#[test]
fn a_shared_root_propagation_never_unmounts_the_hosts_mounts() {
    if !privileged() {
        return;
    }
    let host = SharedHostMount::new();
    assert!(host.sub_mounted());
    let b = Bundle::new();
    for (propagation, no_pivot) in [
        ("rshared", false),
        ("shared", false),
        ("rshared", true),
        ("rslave", false),
    ] {
        let mut spec = base_spec();
        spec["linux"]["rootfsPropagation"] = json!(propagation);
        let mut h = Harness::new(&b);
        h.no_pivot = no_pivot;
        let r = h.ok(&spec, "awk '$5 == \"/\"' /proc/self/mountinfo");
        // (A slave of this host's private root is simply private: no tag.)
        let shared = propagation.ends_with("shared");
        assert_eq!(r.stdout.contains("shared:"), shared, "{propagation}: {r:?}");
        assert!(
            host.sub_mounted(),
            "{propagation} (no_pivot {no_pivot}): leaving the old root unmounted the host's mount"
        );
    }

    // Negative control: a child that detaches the same mount from a namespace still sharing
    // with the host does unmount the host's copy, and the check above sees it.
    let sub = std::ffi::CString::new(host.sub().to_str().unwrap()).unwrap();
    let mut cmd = Command::new("/bin/true");
    // SAFETY: raw syscalls only between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::umount2(sub.as_ptr(), libc::MNT_DETACH) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert!(cmd.status().unwrap().success());
    assert!(
        !host.sub_mounted(),
        "the checker must see an unmount propagated to the host"
    );
}

#[test]
fn spec_devices_are_created_with_their_mode_owner_and_parent_directories() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let mut spec = base_spec();
    spec["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 1000, "gid": 1001},
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640}
    ]);
    let r = Harness::new(&b).ok(
        &spec,
        "stat -c '%n %F %a %t:%T %u:%g' /dev/fuse /dev/net/tun /dev/null /dev/zero",
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "/dev/fuse character special file 600 a:e5 1000:1001",
            "/dev/net/tun character special file 666 a:c8 0:0",
            "/dev/null character special file 640 1:3 0:0",
            "/dev/zero character special file 666 1:5 0:0",
        ],
        "{r:?}"
    );
}

#[test]
fn a_mount_point_an_image_symlink_leads_into_proc_is_refused() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    std::os::unix::fs::symlink("/proc/sys", b.rootfs().join("data")).unwrap();
    let mut spec = base_spec();
    spec["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/data/kernel", "type": "tmpfs", "source": "tmpfs"}
    ));
    match Harness::new(&b).run(&spec, "true") {
        Err(Failed::Child(e, msg)) => {
            assert_eq!(e.errno, libc::EPERM, "{msg}");
            assert!(
                msg.contains("/proc") && msg.contains("/data/kernel"),
                "{msg}"
            );
        }
        other => panic!("expected a child error, got {other:?}"),
    }
    // Control: the same mount on a real directory works.
    std::fs::remove_file(b.rootfs().join("data")).unwrap();
    std::fs::create_dir(b.rootfs().join("data")).unwrap();
    let r = Harness::new(&b).ok(&spec, "grep ' /data/kernel ' /proc/self/mountinfo");
    assert!(r.stdout.contains("tmpfs"), "{r:?}");
}

#[test]
fn a_read_only_dev_is_made_read_only_after_its_nodes() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let mut spec = base_spec();
    spec["mounts"][1]["options"] =
        json!(["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]);
    let r = Harness::new(&b).ok(
        &spec,
        "ls /dev/null /dev/ptmx && echo x > /dev/null && touch /dev/new 2>&1; grep ' /dev ' /proc/self/mountinfo",
    );
    assert!(
        r.stdout.contains("/dev/null") && r.stdout.contains("Read-only file system"),
        "{r:?}"
    );
    let m = mounts(&r.stdout);
    assert!(find(&m, "/dev").1.starts_with("ro"), "{r:?}");
}

/// Hand-run measurement (not a test of behaviour):
/// `cargo test -p drover-runtime --release --test privileged_isolation -- --ignored --nocapture measure`.
/// Wall time of one container start of `/bin/true` through this harness (fork, unshare, the
/// plans, exec, exit) against the same without the plans, and `runc run` of the same bundle.
#[test]
#[ignore]
fn measure_isolation_cost() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let spec = base_spec();
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1000.0
    };
    let mut floor_h = Harness::new(&b);
    floor_h.floor = true;
    let full_h = Harness::new(&b);
    let mut runc_spec = spec.clone();
    runc_spec["process"]["args"] = json!(["/bin/true"]);
    runc_spec["process"]["terminal"] = json!(false);
    std::fs::write(b.path().join("config.json"), runc_spec.to_string()).unwrap();
    let has_runc = Command::new("runc").arg("--version").output().is_ok();
    let (mut floor, mut full, mut runc, mut prep) = (vec![], vec![], vec![], vec![]);
    for i in 0..40 {
        floor.push(time(&mut || {
            floor_h.run(&spec, "true").unwrap();
        }));
        full.push(time(&mut || {
            full_h.ok(&spec, "true");
        }));
        prep.push(time(&mut || {
            let s = parse(&spec);
            let o = rootfs::Options {
                bundle: b.path(),
                user_namespace: false,
                no_pivot: false,
                console: None,
                cgroup: None,
            };
            rootfs::prepare(&s, &o).unwrap();
            process::prepare(s.process().as_ref().unwrap(), &process::Options::default()).unwrap();
        }));
        if has_runc {
            let id = format!("drover-test-iso-bench-{}-{i}", std::process::id());
            runc.push(time(&mut || {
                let st = Command::new("runc")
                    .args(["run", "--bundle"])
                    .arg(b.path())
                    .arg(&id)
                    .status()
                    .unwrap();
                assert!(st.success());
            }));
        }
    }
    println!(
        "median wall ms over 40 runs (harness: fork + unshare(mnt,net,ipc,uts) + exec /bin/sh -c true):"
    );
    println!("  floor, no plans:           {:.2}", median(floor));
    println!("  with rootfs+process plans: {:.2}", median(full));
    println!("  prepare (parent) alone:    {:.3}", median(prep));
    if has_runc {
        println!(
            "  runc run (same bundle, /bin/true, whole runtime incl. cgroups): {:.2}",
            median(runc)
        );
    }
}

#[test]
fn rro_makes_every_submount_of_a_recursive_bind_read_only() {
    if !privileged() {
        return;
    }
    // A host directory with a writable tmpfs mounted inside it.
    let src = tempfile::Builder::new()
        .prefix("drover-test-iso-rro-")
        .tempdir()
        .unwrap();
    let sub = src.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    rustix::mount::mount(
        c"tmpfs",
        sub.as_path(),
        c"tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap();
    let _guard = MountGuard(sub.clone());
    let b = Bundle::new();
    let script = "touch /r/top 2>&1; touch /r/sub/deep 2>&1 && echo deep-written; true";
    let with = |options: Value| {
        let mut spec = base_spec();
        spec["mounts"].as_array_mut().unwrap().push(json!(
            {"destination": "/r", "type": "bind", "source": src.path(), "options": options}
        ));
        Harness::new(&b).ok(&spec, script).stdout
    };
    let out = with(json!(["rbind", "rro"]));
    assert_eq!(out.matches("Read-only file system").count(), 2, "{out}");
    assert!(!out.contains("deep-written"), "{out}");
    // Control: plain `ro` covers only the top mount; the submount stays writable.
    let out = with(json!(["rbind", "ro"]));
    assert_eq!(out.matches("Read-only file system").count(), 1, "{out}");
    assert!(out.contains("deep-written"), "{out}");
}

#[test]
fn tmpcopyup_fills_a_fresh_tmpfs_with_the_images_files() {
    if !privileged() {
        return;
    }
    let b = Bundle::new();
    let run = b.rootfs().join("run");
    std::fs::create_dir_all(run.join("sub")).unwrap();
    std::fs::write(run.join("sub/file"), "from the image\n").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", run.join("link")).unwrap();
    let script = "cat /run/sub/file; readlink /run/link; (echo new > /run/new) 2>&1 && echo wrote; \
                  grep ' /run ' /proc/self/mountinfo";
    let with = |options: Value| {
        let mut spec = base_spec();
        spec["mounts"].as_array_mut().unwrap().push(json!(
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": options}
        ));
        Harness::new(&b)
            .ok(&spec, &format!("{script}; true"))
            .stdout
    };
    let out = with(json!(["nosuid", "nodev", "tmpcopyup"]));
    assert!(
        out.starts_with("from the image\n/etc/hostname\nwrote\n"),
        "{out}"
    );
    assert!(out.contains(" - tmpfs "), "{out}");
    assert!(
        !run.join("new").exists(),
        "the write reached the image, not the tmpfs"
    );
    // Read-only: filled first, then read-only.
    let out = with(json!(["ro", "tmpcopyup"]));
    assert!(out.starts_with("from the image\n/etc/hostname\n"), "{out}");
    assert!(
        out.contains("Read-only file system") && !out.contains("wrote"),
        "{out}"
    );
    // Control: without tmpcopyup the tmpfs is empty.
    let out = with(json!(["nosuid"]));
    assert!(
        !out.contains("from the image") && out.contains("wrote"),
        "{out}"
    );
}

/// Whether a peer tool is installed; without it the test is skipped (printed), unless
/// `DROVER_REQUIRE_PEERS=1`.
fn peer(tool: &str) -> bool {
    if Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    if std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{tool} is required (DROVER_REQUIRE_PEERS=1) but missing");
    }
    eprintln!("SKIP: {tool} is not installed");
    false
}

#[test]
fn runcs_own_spec_gives_the_same_mounts_dev_and_capabilities_as_runc() {
    if !privileged() || !peer("runc") {
        return;
    }
    let b = Bundle::new();
    let st = Command::new("runc")
        .arg("spec")
        .current_dir(b.path())
        .status()
        .unwrap();
    assert!(st.success(), "runc spec failed");
    let path = b.path().join("config.json");
    let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    // Mount point, per-mount options and type; /dev without times; the capability sets; ids.
    spec["process"]["args"] = json!([
        "sh",
        "-c",
        "awk '{print $5, $6, $(NF-2)}' /proc/self/mountinfo; \
         ls -ln /dev | awk '{print $1, $3, $4, $5, $6, $NF}' | sort; \
         grep -E '^(Cap|NoNewPrivs)' /proc/self/status; id; ulimit -Hn; \
         (touch /x) 2>&1; cat /proc/keys | wc -c"
    ]);
    std::fs::write(&path, spec.to_string()).unwrap();
    let state = tempfile::Builder::new()
        .prefix("drover-test-iso-state-")
        .tempdir()
        .unwrap();
    let run = |bin: &str, id: &str| {
        let out = Command::new(bin)
            .arg("--root")
            .arg(state.path().join(id))
            .args(["run", "--bundle"])
            .arg(b.path())
            .arg(id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let pid = std::process::id();
    let theirs = run("runc", &format!("drover-test-iso-runc-{pid}"));
    let ours = run(
        env!("CARGO_BIN_EXE_drover-runtime"),
        &format!("drover-test-iso-ours-{pid}"),
    );
    // The one known difference: on a hybrid host Drover also mounts the unified hierarchy.
    let ours: String = ours
        .lines()
        .filter(|l| !l.starts_with("/sys/fs/cgroup/unified "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        theirs.contains("Read-only file system") && theirs.contains("/proc/keys"),
        "{theirs}"
    );
    assert_eq!(
        ours, theirs,
        "drover-runtime differs from runc for runc's own spec"
    );
}
