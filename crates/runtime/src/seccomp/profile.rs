//! podman's default seccomp profile, in our own representation.
//!
//! The rules equal the `seccomp.json` that Debian's `golang-github-containers-common` package
//! (0.50.1, the one podman 4.3 on Debian 12 uses) ships as `/usr/share/containers/seccomp.json`:
//! default action `SCMP_ACT_ERRNO` with `ENOSYS`, an allow list, `EPERM` for the syscalls that
//! need a capability the container lacks, and argument rules for `personality` and `socket`.
//! A unit test parses that file when it is installed and compares it rule by rule with this
//! table. [`default_profile`] resolves the capability and architecture conditions.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

const EPERM: u32 = 1;
const EINVAL: u32 = 22;
/// The profile's `defaultErrnoRet`: ENOSYS, so programs probing a new syscall fall back.
pub(crate) const DEFAULT_ERRNO: u32 = 38;

/// podman's default capability set (`default_capabilities` of `containers.conf`), the set
/// [`default_profile`] is usually resolved against.
pub const PODMAN_DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// A rule's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    Allow,
    Errno(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
}
const EQ: Op = Op::Eq;
const NE: Op = Op::Ne;

/// One argument condition (`valueTwo` is 0 in every rule of this profile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Arg {
    pub(crate) index: usize,
    pub(crate) value: u64,
    pub(crate) op: Op,
}

const fn arg(index: usize, value: u64, op: Op) -> Arg {
    Arg { index, value, op }
}

/// `includes` / `excludes`: capabilities (all needed / any excludes) and Go architecture names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub(crate) caps: &'static [&'static str],
    pub(crate) arches: &'static [&'static str],
}

/// One entry of the profile's `syscalls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProfileRule {
    pub(crate) names: &'static [&'static str],
    pub(crate) action: Act,
    pub(crate) args: &'static [Arg],
    pub(crate) includes: Cond,
    pub(crate) excludes: Cond,
}

/// The Go architecture name (`includes.arches`) of the native architecture.
#[cfg(target_arch = "x86_64")]
const NATIVE_GOARCH: &str = "amd64";
#[cfg(target_arch = "aarch64")]
const NATIVE_GOARCH: &str = "arm64";
#[cfg(target_arch = "x86_64")]
const NATIVE_SCMP: &str = "SCMP_ARCH_X86_64";
#[cfg(target_arch = "aarch64")]
const NATIVE_SCMP: &str = "SCMP_ARCH_AARCH64";

impl ProfileRule {
    /// Whether the rule applies to a container with `caps` on the native architecture.
    fn applies(&self, caps: &[String]) -> bool {
        let has = |c: &&str| caps.iter().any(|x| x == c);
        self.includes.caps.iter().all(has)
            && (self.includes.arches.is_empty() || self.includes.arches.contains(&NATIVE_GOARCH))
            && !self.excludes.caps.iter().any(has)
            && !self.excludes.arches.contains(&NATIVE_GOARCH)
    }

    fn to_oci(self) -> LinuxSyscall {
        let (action, errno) = match self.action {
            Act::Allow => (LinuxSeccompAction::ScmpActAllow, None),
            Act::Errno(e) => (LinuxSeccompAction::ScmpActErrno, Some(e)),
        };
        let args = self
            .args
            .iter()
            .map(|a| {
                LinuxSeccompArgBuilder::default()
                    .index(a.index)
                    .value(a.value)
                    .value_two(0u64)
                    .op(match a.op {
                        Op::Eq => LinuxSeccompOperator::ScmpCmpEq,
                        Op::Ne => LinuxSeccompOperator::ScmpCmpNe,
                    })
                    .build()
                    .expect("every field is set")
            })
            .collect::<Vec<_>>();
        let mut b = LinuxSyscallBuilder::default()
            .names(self.names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .action(action);
        if let Some(e) = errno {
            b = b.errno_ret(e);
        }
        if !args.is_empty() {
            b = b.args(args);
        }
        b.build().expect("every field is set")
    }
}

fn scmp_arch(name: &str) -> Option<Arch> {
    Some(match name {
        "SCMP_ARCH_X86_64" => Arch::ScmpArchX86_64,
        "SCMP_ARCH_X86" => Arch::ScmpArchX86,
        "SCMP_ARCH_X32" => Arch::ScmpArchX32,
        "SCMP_ARCH_AARCH64" => Arch::ScmpArchAarch64,
        "SCMP_ARCH_ARM" => Arch::ScmpArchArm,
        _ => return None,
    })
}

/// podman's default profile for a container whose (bounding) capabilities are `capabilities`
/// (`CAP_…` names), resolved for the native architecture: rules whose `includes`/`excludes`
/// conditions do not hold are left out, as podman does when it builds a container's spec.
pub fn default_profile(capabilities: &[String]) -> LinuxSeccomp {
    let arches: Vec<Arch> = ARCH_MAP
        .iter()
        .filter(|(a, _)| *a == NATIVE_SCMP)
        .flat_map(|(a, subs)| std::iter::once(a).chain(subs.iter()))
        .filter_map(|n| scmp_arch(n))
        .collect();
    let syscalls: Vec<LinuxSyscall> = RULES
        .iter()
        .filter(|r| r.applies(capabilities))
        .map(|r| r.to_oci())
        .collect();
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(DEFAULT_ERRNO)
        .architectures(arches)
        .syscalls(syscalls)
        .build()
        .expect("every field is set")
}

/// The profile's rules, in the file's order.
#[rustfmt::skip]
pub(crate) const RULES: &[ProfileRule] = &[
    ProfileRule {
        names: &[
            "bdflush", "io_pgetevents", "kexec_file_load", "kexec_load", "migrate_pages",
            "move_pages", "nfsservctl", "nice", "oldfstat", "oldlstat", "oldolduname", "oldstat",
            "olduname", "pciconfig_iobase", "pciconfig_read", "pciconfig_write", "sgetmask",
            "ssetmask", "swapcontext", "swapoff", "swapon", "sysfs", "uselib", "userfaultfd",
            "ustat", "vm86", "vm86old", "vmsplice",
        ],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &[
            "_llseek", "_newselect", "accept", "accept4", "access", "adjtimex", "alarm", "bind",
            "brk", "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime",
            "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
            "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "clone", "clone3",
            "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
            "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
            "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
            "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
            "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
            "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr",
            "flock", "fork", "fremovexattr", "fsconfig", "fsetxattr", "fsmount", "fsopen",
            "fspick", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
            "ftruncate", "ftruncate64", "futex", "futex_time64", "futimesat", "get_mempolicy",
            "get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64",
            "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
            "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
            "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32",
            "getrlimit", "getrusage", "getsid", "getsockname", "getsockopt", "gettid",
            "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
            "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
            "io_setup", "io_submit", "ioctl", "ioprio_get", "ioprio_set", "ipc", "keyctl", "kill",
            "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
            "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
            "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "mbind",
            "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod",
            "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mount", "mount_setattr",
            "move_mount", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
            "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
            "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
            "name_to_handle_at", "nanosleep", "newfstatat", "open", "open_tree", "openat",
            "openat2", "pause", "pidfd_getfd", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
            "pivot_root", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
            "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
            "process_mrelease", "process_vm_readv", "process_vm_writev", "pselect6",
            "pselect6_time64", "ptrace", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
            "readdir", "readlink", "readlinkat", "readv", "reboot", "recv", "recvfrom", "recvmmsg",
            "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
            "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
            "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
            "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
            "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
            "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
            "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
            "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
            "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
            "sendmsg", "sendto", "set_mempolicy", "set_robust_list", "set_thread_area",
            "set_tid_address", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
            "setgid32", "setgroups", "setgroups32", "setitimer", "setns", "setpgid", "setpriority",
            "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
            "setreuid", "setreuid32", "setrlimit", "setsid", "setsockopt", "setuid", "setuid32",
            "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaction",
            "sigaltstack", "signal", "signalfd", "signalfd4", "sigpending", "sigprocmask",
            "sigreturn", "sigsuspend", "socketcall", "socketpair", "splice", "stat", "stat64",
            "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
            "syncfs", "syscall", "sysinfo", "syslog", "tee", "tgkill", "time", "timer_create",
            "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
            "timer_settime", "timer_settime64", "timerfd", "timerfd_create", "timerfd_gettime",
            "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill",
            "truncate", "truncate64", "ugetrlimit", "umask", "umount", "umount2", "uname",
            "unlink", "unlinkat", "unshare", "utime", "utimensat", "utimensat_time64", "utimes",
            "vfork", "wait4", "waitid", "waitpid", "write", "writev",
        ],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["personality"],
        action: Act::Allow,
        args: &[arg(0, 0, EQ)],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["personality"],
        action: Act::Allow,
        args: &[arg(0, 8, EQ)],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["personality"],
        action: Act::Allow,
        args: &[arg(0, 131072, EQ)],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["personality"],
        action: Act::Allow,
        args: &[arg(0, 131080, EQ)],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["personality"],
        action: Act::Allow,
        args: &[arg(0, 4294967295, EQ)],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["sync_file_range2"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &[], arches: &["ppc64le"] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls", "sync_file_range2"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &[], arches: &["arm", "arm64"] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["arch_prctl"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &[], arches: &["amd64", "x32"] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["modify_ldt"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &[], arches: &["amd64", "x32", "x86"] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &[], arches: &["s390", "s390x"] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["open_by_handle_at"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_DAC_READ_SEARCH"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["open_by_handle_at"],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_DAC_READ_SEARCH"], arches: &[] },
    },
    ProfileRule {
        names: &[
            "bpf", "fanotify_init", "lookup_dcookie", "perf_event_open", "quotactl",
            "setdomainname", "sethostname", "setns",
        ],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_SYS_ADMIN"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &[
            "bpf", "fanotify_init", "lookup_dcookie", "perf_event_open", "quotactl",
            "setdomainname", "sethostname", "setns",
        ],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_SYS_ADMIN"], arches: &[] },
    },
    ProfileRule {
        names: &["chroot"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_SYS_CHROOT"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["chroot"],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_SYS_CHROOT"], arches: &[] },
    },
    ProfileRule {
        names: &["delete_module", "finit_module", "init_module", "query_module"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_SYS_MODULE"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["delete_module", "finit_module", "init_module", "query_module"],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_SYS_MODULE"], arches: &[] },
    },
    ProfileRule {
        names: &["acct"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_SYS_PACCT"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["acct"],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_SYS_PACCT"], arches: &[] },
    },
    ProfileRule {
        names: &["kcmp", "process_madvise"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_SYS_PTRACE"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["kcmp", "process_madvise"],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_SYS_PTRACE"], arches: &[] },
    },
    ProfileRule {
        names: &["ioperm", "iopl"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_SYS_RAWIO"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["ioperm", "iopl"],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_SYS_RAWIO"], arches: &[] },
    },
    ProfileRule {
        names: &["clock_settime", "clock_settime64", "settimeofday", "stime"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_SYS_TIME"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["clock_settime", "clock_settime64", "settimeofday", "stime"],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_SYS_TIME"], arches: &[] },
    },
    ProfileRule {
        names: &["vhangup"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_SYS_TTY_CONFIG"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
    ProfileRule {
        names: &["vhangup"],
        action: Act::Errno(EPERM),
        args: &[],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_SYS_TTY_CONFIG"], arches: &[] },
    },
    ProfileRule {
        names: &["socket"],
        action: Act::Errno(EINVAL),
        args: &[arg(0, 16, EQ), arg(2, 9, EQ)],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_AUDIT_WRITE"], arches: &[] },
    },
    ProfileRule {
        names: &["socket"],
        action: Act::Allow,
        args: &[arg(2, 9, NE)],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_AUDIT_WRITE"], arches: &[] },
    },
    ProfileRule {
        names: &["socket"],
        action: Act::Allow,
        args: &[arg(0, 16, NE)],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_AUDIT_WRITE"], arches: &[] },
    },
    ProfileRule {
        names: &["socket"],
        action: Act::Allow,
        args: &[arg(2, 9, NE)],
        includes: Cond { caps: &[], arches: &[] },
        excludes: Cond { caps: &["CAP_AUDIT_WRITE"], arches: &[] },
    },
    ProfileRule {
        names: &["socket"],
        action: Act::Allow,
        args: &[],
        includes: Cond { caps: &["CAP_AUDIT_WRITE"], arches: &[] },
        excludes: Cond { caps: &[], arches: &[] },
    },
];

/// `archMap`: each architecture with the sub-architectures a filter for it also covers.
pub(crate) const ARCH_MAP: &[(&str, &[&str])] = &[
    ("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"]),
    (
        "SCMP_ARCH_MIPS64",
        &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"],
    ),
    (
        "SCMP_ARCH_MIPS64N32",
        &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"],
    ),
    (
        "SCMP_ARCH_MIPSEL64",
        &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"],
    ),
    (
        "SCMP_ARCH_MIPSEL64N32",
        &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"],
    ),
    ("SCMP_ARCH_S390X", &["SCMP_ARCH_S390"]),
];
