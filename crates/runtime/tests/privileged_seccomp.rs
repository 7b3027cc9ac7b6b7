//! The compiled filter installed for real, in forked children of the test (root only: the
//! children drop to podman's default capability set). Each child makes its syscalls with raw
//! `syscall(2)` and reports `(return, errno)` pairs over a pipe; the parent compares.
#![allow(unsafe_code)]

use drover_runtime::seccomp::{
    PODMAN_DEFAULT_CAPABILITIES, Program, compile, default_profile, syscall_number,
};

/// What a child does after (optionally) installing the filter.
#[derive(Clone, Copy)]
enum Probe {
    /// The fixed list of calls in [`calls`], results over the pipe.
    Calls,
    /// One x32 ABI `getpid`; the filter kills the process.
    X32,
    /// i386 calls through `int 0x80`: getpid (20), bpf (357), quotactl_fd (443).
    I386,
}

/// An i386 syscall through `int 0x80` (returns `-errno` on failure).
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32, a: u32, b: u32, c: u32) -> i64 {
    let ret: u32;
    // SAFETY: `int 0x80` enters the kernel's i386 syscall table with eax = number and ebx, ecx,
    // edx = arguments. rbx is reserved by LLVM, so the whole 64-bit register is swapped with a
    // scratch one and swapped back (a 32-bit xchg would zero rbx's upper half). The calls made
    // here take no pointers; r8–r11 are declared clobbered.
    unsafe {
        std::arch::asm!(
            "xchg {a}, rbx",
            "int 0x80",
            "xchg {a}, rbx",
            a = inout(reg) u64::from(a) => _,
            inlateout("eax") nr => ret,
            in("ecx") b,
            in("edx") c,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    i64::from(ret as i32)
}

const NR_CALLS: usize = 6;

/// `(name, nr, args)` of the calls, prepared in the parent (the child must not allocate).
fn calls() -> [(&'static str, i64, [i64; 6]); NR_CALLS] {
    let nr = |n: &str| i64::from(syscall_number(n).unwrap());
    [
        // mount("none", "/tmp", "tmpfs", 0, NULL): the target exists, so only the capability check can refuse
        (
            "mount",
            nr("mount"),
            [
                c"none".as_ptr() as i64,
                c"/tmp".as_ptr() as i64,
                c"tmpfs".as_ptr() as i64,
                0,
                0,
                0,
            ],
        ),
        (
            "unshare",
            nr("unshare"),
            [libc::CLONE_NEWNS as i64, 0, 0, 0, 0, 0],
        ),
        // bpf(BPF_MAP_CREATE, NULL, 0): EFAULT/EINVAL for root without a filter.
        ("bpf", nr("bpf"), [0, 0, 0, 0, 0, 0]),
        // quotactl_fd(-1, …) exists in the kernel but not in podman's profile.
        ("quotactl_fd", nr("quotactl_fd"), [-1, 0, 0, 0, 0, 0]),
        ("getpid", nr("getpid"), [0; 6]),
        // socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT): EINVAL without CAP_AUDIT_WRITE.
        (
            "socket",
            nr("socket"),
            [libc::AF_NETLINK as i64, libc::SOCK_RAW as i64, 9, 0, 0, 0],
        ),
    ]
}

/// podman's default capability set as a capset mask.
fn default_cap_mask() -> u64 {
    let bit = |name: &str| -> u64 {
        let n = match name {
            "CAP_CHOWN" => 0,
            "CAP_DAC_OVERRIDE" => 1,
            "CAP_FOWNER" => 3,
            "CAP_FSETID" => 4,
            "CAP_KILL" => 5,
            "CAP_SETGID" => 6,
            "CAP_SETUID" => 7,
            "CAP_SETPCAP" => 8,
            "CAP_NET_BIND_SERVICE" => 10,
            "CAP_SYS_CHROOT" => 18,
            "CAP_SETFCAP" => 31,
            other => panic!("{other} not mapped"),
        };
        1 << n
    };
    PODMAN_DEFAULT_CAPABILITIES
        .iter()
        .map(|c| bit(c))
        .fold(0, |a, b| a | b)
}

/// Forks a child that enters a private mount namespace, drops to `caps` (if given), installs `prog` (if given) and runs `probe`.
/// Returns the wait status and, for [`Probe::Calls`], the `(ret, errno)` of each call.
fn in_child(
    prog: Option<&Program>,
    caps: Option<u64>,
    probe: Probe,
) -> (i32, [(i64, i32); NR_CALLS]) {
    let calls = calls();
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two ints of a live array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only makes raw syscalls on data prepared above and `_exit`s; it never
    // returns into the test harness or touches its locks.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: raw syscalls on stack data; see above.
        unsafe {
            libc::close(fds[0]);
            // A private mount namespace first: the unfiltered control child is root with every
            // capability, and its mount probe must not reach the host's mount table.
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                libc::_exit(104);
            }
            let root = c"/".as_ptr();
            let none = std::ptr::null();
            if libc::mount(
                none,
                root,
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                libc::_exit(105);
            }
            if let Some(mask) = caps {
                let header = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3, this process
                let lo = mask as u32;
                let hi = (mask >> 32) as u32;
                let data = [lo, lo, 0, hi, hi, 0]; // {effective, permitted, inheritable} × 2
                if libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) != 0 {
                    libc::_exit(101);
                }
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(102);
            }
            if let Some(p) = prog
                && p.apply().is_err()
            {
                libc::_exit(103);
            }
            match probe {
                Probe::X32 => {
                    libc::syscall(0x4000_0000 | libc::SYS_getpid);
                    libc::_exit(0);
                }
                #[cfg(target_arch = "x86_64")]
                Probe::I386 => {
                    let mut out = [(0i64, 0i32); NR_CALLS];
                    out[0].0 = int80(20, 0, 0, 0);
                    out[1].0 = int80(357, 0, 0, 0);
                    out[2].0 = int80(443, u32::MAX, 0, 0);
                    let bytes = std::mem::size_of_val(&out);
                    libc::write(fds[1], out.as_ptr().cast(), bytes);
                    libc::_exit(0);
                }
                #[cfg(not(target_arch = "x86_64"))]
                Probe::I386 => libc::_exit(0),
                Probe::Calls => {
                    let mut out = [(0i64, 0i32); NR_CALLS];
                    for (i, (_, nr, a)) in calls.iter().enumerate() {
                        let r = libc::syscall(*nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                        out[i] = (r, if r < 0 { *libc::__errno_location() } else { 0 });
                    }
                    let bytes = std::mem::size_of_val(&out);
                    libc::write(fds[1], out.as_ptr().cast(), bytes);
                    libc::_exit(0);
                }
            }
        }
    }
    // SAFETY: closing our copy of the write end; reading into a live, sized buffer.
    unsafe { libc::close(fds[1]) };
    let mut out = [(0i64, 0i32); NR_CALLS];
    let want = std::mem::size_of_val(&out);
    let n = unsafe { libc::read(fds[0], out.as_mut_ptr().cast(), want) };
    unsafe { libc::close(fds[0]) };
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if matches!(probe, Probe::Calls) || (matches!(probe, Probe::I386) && status == 0) {
        assert_eq!(
            n as usize, want,
            "child status {status:#x} (101 capset, 102 nnp, 103 seccomp, 104/105 private mount ns)"
        );
    }
    (status, out)
}

fn result(out: &[(i64, i32); NR_CALLS], name: &str) -> (i64, i32) {
    out[calls().iter().position(|(n, _, _)| *n == name).unwrap()]
}

fn require_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root (the children drop capabilities from root's full set)");
    false
}

fn default_caps() -> Vec<String> {
    PODMAN_DEFAULT_CAPABILITIES
        .iter()
        .map(|c| c.to_string())
        .collect()
}

#[test]
fn the_default_profile_with_default_caps_refuses_what_podman_refuses() {
    if !require_root() {
        return;
    }
    let prog = compile(&default_profile(&default_caps())).unwrap();
    let (status, out) = in_child(Some(&prog), Some(default_cap_mask()), Probe::Calls);
    assert_eq!(status, 0);
    assert_eq!(result(&out, "mount"), (-1, libc::EPERM));
    assert_eq!(result(&out, "unshare"), (-1, libc::EPERM));
    assert_eq!(result(&out, "bpf"), (-1, libc::EPERM));
    assert_eq!(
        result(&out, "quotactl_fd"),
        (-1, libc::ENOSYS),
        "unlisted → ENOSYS"
    );
    assert_eq!(
        result(&out, "socket"),
        (-1, libc::EINVAL),
        "NETLINK_AUDIT without CAP_AUDIT_WRITE"
    );
    let (pid, errno) = result(&out, "getpid");
    assert!(pid > 1 && errno == 0, "getpid works: {pid} {errno}");
}

#[test]
fn the_filter_not_the_kernel_makes_those_answers() {
    if !require_root() {
        return;
    }
    // Control: root with every capability and no filter gets other answers for the calls the
    // filter decides alone (bpf, the unlisted call, the audit socket).
    let (_, bare) = in_child(None, None, Probe::Calls);
    assert_ne!(
        result(&bare, "bpf").1,
        libc::EPERM,
        "{:?}",
        result(&bare, "bpf")
    );
    assert_ne!(result(&bare, "quotactl_fd").1, libc::ENOSYS);
    assert_ne!(result(&bare, "socket").1, libc::EINVAL);
    // The same root process with the filter gets the filter's answers.
    let prog = compile(&default_profile(&default_caps())).unwrap();
    let (_, filtered) = in_child(Some(&prog), None, Probe::Calls);
    assert_eq!(result(&filtered, "bpf"), (-1, libc::EPERM));
    assert_eq!(result(&filtered, "quotactl_fd"), (-1, libc::ENOSYS));
    assert_eq!(result(&filtered, "socket"), (-1, libc::EINVAL));
}

#[test]
fn an_x32_syscall_kills_the_process() {
    if !require_root() || !cfg!(target_arch = "x86_64") {
        return;
    }
    let prog = compile(&default_profile(&default_caps())).unwrap();
    let (status, _) = in_child(Some(&prog), Some(default_cap_mask()), Probe::X32);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "status {status:#x}"
    );
    // Control: without the filter the same call returns (ENOSYS or a pid) and the child exits 0.
    let (status, _) = in_child(None, Some(default_cap_mask()), Probe::X32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
}

#[test]
fn i386_programs_get_the_profile_through_their_own_syscall_numbers() {
    if !require_root() || !cfg!(target_arch = "x86_64") {
        return;
    }
    // Control: without a filter, int 0x80 getpid works (else the kernel has no IA32 emulation
    // and there is nothing to check).
    let (status, bare) = in_child(None, Some(default_cap_mask()), Probe::I386);
    if status != 0 {
        eprintln!("skipped: int 0x80 does not work here (no IA32 emulation), status {status:#x}");
        return;
    }
    assert!(bare[0].0 > 1, "i386 getpid: {:?}", bare[0]);
    assert_ne!(
        bare[2].0,
        -i64::from(libc::ENOSYS),
        "quotactl_fd exists for i386 too"
    );
    let prog = compile(&default_profile(&default_caps())).unwrap();
    let (status, out) = in_child(Some(&prog), Some(default_cap_mask()), Probe::I386);
    assert_eq!(status, 0, "the i386 calls were not killed");
    assert!(out[0].0 > 1, "getpid allowed: {:?}", out[0]);
    assert_eq!(
        out[1].0,
        -i64::from(libc::EPERM),
        "bpf refused by the i386 rules"
    );
    assert_eq!(
        out[2].0,
        -i64::from(libc::ENOSYS),
        "unlisted i386 call: ENOSYS"
    );
    // A profile without SCMP_ARCH_X86 treats i386 as a foreign ABI: killed.
    let mut native_only = default_profile(&default_caps());
    native_only.set_architectures(Some(vec![oci_spec::runtime::Arch::ScmpArchX86_64]));
    let prog = compile(&native_only).unwrap();
    let (status, _) = in_child(Some(&prog), Some(default_cap_mask()), Probe::I386);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "status {status:#x}"
    );
}

#[path = "../testdata/bundles/support.rs"]
mod support;

/// Runs `config` to completion under drover-runtime (or runc) and returns its stdout.
fn run_container(config: &serde_json::Value, runc: bool) -> String {
    let bundle = support::Bundle::new(config);
    let b = bundle.path().to_str().unwrap();
    if !runc {
        let c = support::Container::new("seccomp");
        let out = c.rt(&["run", "-b", b, &c.id]);
        assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
        return support::text(&out.stdout);
    }
    let root = tempfile::Builder::new()
        .prefix("drover-test-runc-")
        .tempdir()
        .unwrap();
    let id = support::unique("seccomp-runc");
    let mut cmd = std::process::Command::new("runc");
    cmd.arg("--root")
        .arg(root.path())
        .args(["run", "-b", b, &id]);
    let out = support::output(cmd, std::time::Duration::from_secs(30), "runc run");
    let _ = std::process::Command::new("runc")
        .arg("--root")
        .arg(root.path())
        .args(["delete", "--force", &id])
        .output();
    assert_eq!(
        out.status.code(),
        Some(0),
        "runc: {}",
        support::text(&out.stderr)
    );
    support::text(&out.stdout)
}

#[test]
fn a_container_with_podmans_profile_answers_like_the_same_container_under_runc() {
    if !support::privileged() || !support::require("runc") {
        return;
    }
    // sethostname is refused by the profile (resolved for podman's default capabilities) even
    // though this container holds CAP_SYS_ADMIN, so only the filter can refuse it; unshare is
    // allowed by the profile and by the capability.
    let probe = "hostname drover-x 2>/dev/null; echo sethostname=$?; \
                 unshare -m true 2>/dev/null; echo unshare=$?; grep '^Seccomp:' /proc/self/status";
    let mut cfg = support::base_config(&["sh", "-c", probe]);
    // Every capability this process holds (root here lacks CAP_SYS_RESOURCE).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    let held: Vec<&str> = drover_runtime::process::caps::NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| eff & (1 << i) != 0)
        .map(|(_, c)| *c)
        .collect();
    assert!(held.contains(&"CAP_SYS_ADMIN"));
    let caps = serde_json::json!(held);
    cfg["process"]["capabilities"] =
        serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
    // Negative control: without the profile the same calls succeed.
    let bare = run_container(&cfg, false);
    assert_eq!(bare, "sethostname=0\nunshare=0\nSeccomp:\t0\n");
    cfg["linux"]["seccomp"] = serde_json::to_value(default_profile(&default_caps())).unwrap();
    let ours = run_container(&cfg, false);
    assert_eq!(ours, "sethostname=1\nunshare=0\nSeccomp:\t2\n");
    let theirs = run_container(&cfg, true);
    assert_eq!(ours, theirs, "drover vs runc with the same profile");
}
