//! Syscall name → number, for the architectures drover compiles filters for.
//!
//! The numbers are the `libc` crate's `SYS_*` constants for the target (the macro turns each
//! name into `(name, libc::SYS_name)`), so the table always matches the kernel ABI `libc` was
//! written against. Names the table lacks are skipped by the compiler the way runc skips names
//! libseccomp does not know (see [`super::compile`]).

/// Builds a `&[(&str, u32)]` from `libc::SYS_<name>` constants.
macro_rules! syscall_table {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), libc::$name as u32)),*]
    };
}

/// `(name, number)` for the native architecture, as `libc` names them (with the `SYS_` prefix).
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
const TABLE: &[(&str, u32)] = syscall_table!(
    SYS_read, SYS_write, SYS_open, SYS_close, SYS_stat, SYS_fstat, SYS_lstat, SYS_poll, SYS_lseek,
    SYS_mmap, SYS_mprotect, SYS_munmap, SYS_brk, SYS_rt_sigaction, SYS_rt_sigprocmask,
    SYS_rt_sigreturn, SYS_ioctl, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_access,
    SYS_pipe, SYS_select, SYS_sched_yield, SYS_mremap, SYS_msync, SYS_mincore, SYS_madvise,
    SYS_shmget, SYS_shmat, SYS_shmctl, SYS_dup, SYS_dup2, SYS_pause, SYS_nanosleep, SYS_getitimer,
    SYS_alarm, SYS_setitimer, SYS_getpid, SYS_sendfile, SYS_socket, SYS_connect, SYS_accept,
    SYS_sendto, SYS_recvfrom, SYS_sendmsg, SYS_recvmsg, SYS_shutdown, SYS_bind, SYS_listen,
    SYS_getsockname, SYS_getpeername, SYS_socketpair, SYS_setsockopt, SYS_getsockopt, SYS_clone,
    SYS_fork, SYS_vfork, SYS_execve, SYS_exit, SYS_wait4, SYS_kill, SYS_uname, SYS_semget,
    SYS_semop, SYS_semctl, SYS_shmdt, SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl, SYS_fcntl,
    SYS_flock, SYS_fsync, SYS_fdatasync, SYS_truncate, SYS_ftruncate, SYS_getdents, SYS_getcwd,
    SYS_chdir, SYS_fchdir, SYS_rename, SYS_mkdir, SYS_rmdir, SYS_creat, SYS_link, SYS_unlink,
    SYS_symlink, SYS_readlink, SYS_chmod, SYS_fchmod, SYS_chown, SYS_fchown, SYS_lchown,
    SYS_umask, SYS_gettimeofday, SYS_getrlimit, SYS_getrusage, SYS_sysinfo, SYS_times, SYS_ptrace,
    SYS_getuid, SYS_syslog, SYS_getgid, SYS_setuid, SYS_setgid, SYS_geteuid, SYS_getegid,
    SYS_setpgid, SYS_getppid, SYS_getpgrp, SYS_setsid, SYS_setreuid, SYS_setregid, SYS_getgroups,
    SYS_setgroups, SYS_setresuid, SYS_getresuid, SYS_setresgid, SYS_getresgid, SYS_getpgid,
    SYS_setfsuid, SYS_setfsgid, SYS_getsid, SYS_capget, SYS_capset, SYS_rt_sigpending,
    SYS_rt_sigtimedwait, SYS_rt_sigqueueinfo, SYS_rt_sigsuspend, SYS_sigaltstack, SYS_utime,
    SYS_mknod, SYS_uselib, SYS_personality, SYS_ustat, SYS_statfs, SYS_fstatfs, SYS_sysfs,
    SYS_getpriority, SYS_setpriority, SYS_sched_setparam, SYS_sched_getparam,
    SYS_sched_setscheduler, SYS_sched_getscheduler, SYS_sched_get_priority_max,
    SYS_sched_get_priority_min, SYS_sched_rr_get_interval, SYS_mlock, SYS_munlock, SYS_mlockall,
    SYS_munlockall, SYS_vhangup, SYS_modify_ldt, SYS_pivot_root, SYS__sysctl, SYS_prctl,
    SYS_arch_prctl, SYS_adjtimex, SYS_setrlimit, SYS_chroot, SYS_sync, SYS_acct, SYS_settimeofday,
    SYS_mount, SYS_umount2, SYS_swapon, SYS_swapoff, SYS_reboot, SYS_sethostname,
    SYS_setdomainname, SYS_iopl, SYS_ioperm, SYS_init_module, SYS_delete_module, SYS_quotactl,
    SYS_nfsservctl, SYS_getpmsg, SYS_putpmsg, SYS_afs_syscall, SYS_tuxcall, SYS_security,
    SYS_gettid, SYS_readahead, SYS_setxattr, SYS_lsetxattr, SYS_fsetxattr, SYS_getxattr,
    SYS_lgetxattr, SYS_fgetxattr, SYS_listxattr, SYS_llistxattr, SYS_flistxattr, SYS_removexattr,
    SYS_lremovexattr, SYS_fremovexattr, SYS_tkill, SYS_time, SYS_futex, SYS_sched_setaffinity,
    SYS_sched_getaffinity, SYS_set_thread_area, SYS_io_setup, SYS_io_destroy, SYS_io_getevents,
    SYS_io_submit, SYS_io_cancel, SYS_get_thread_area, SYS_lookup_dcookie, SYS_epoll_create,
    SYS_epoll_ctl_old, SYS_epoll_wait_old, SYS_remap_file_pages, SYS_getdents64,
    SYS_set_tid_address, SYS_restart_syscall, SYS_semtimedop, SYS_fadvise64, SYS_timer_create,
    SYS_timer_settime, SYS_timer_gettime, SYS_timer_getoverrun, SYS_timer_delete,
    SYS_clock_settime, SYS_clock_gettime, SYS_clock_getres, SYS_clock_nanosleep, SYS_exit_group,
    SYS_epoll_wait, SYS_epoll_ctl, SYS_tgkill, SYS_utimes, SYS_vserver, SYS_mbind,
    SYS_set_mempolicy, SYS_get_mempolicy, SYS_mq_open, SYS_mq_unlink, SYS_mq_timedsend,
    SYS_mq_timedreceive, SYS_mq_notify, SYS_mq_getsetattr, SYS_kexec_load, SYS_waitid,
    SYS_add_key, SYS_request_key, SYS_keyctl, SYS_ioprio_set, SYS_ioprio_get, SYS_inotify_init,
    SYS_inotify_add_watch, SYS_inotify_rm_watch, SYS_migrate_pages, SYS_openat, SYS_mkdirat,
    SYS_mknodat, SYS_fchownat, SYS_futimesat, SYS_newfstatat, SYS_unlinkat, SYS_renameat,
    SYS_linkat, SYS_symlinkat, SYS_readlinkat, SYS_fchmodat, SYS_faccessat, SYS_pselect6,
    SYS_ppoll, SYS_unshare, SYS_set_robust_list, SYS_get_robust_list, SYS_splice, SYS_tee,
    SYS_sync_file_range, SYS_vmsplice, SYS_move_pages, SYS_utimensat, SYS_epoll_pwait,
    SYS_signalfd, SYS_timerfd_create, SYS_eventfd, SYS_fallocate, SYS_timerfd_settime,
    SYS_timerfd_gettime, SYS_accept4, SYS_signalfd4, SYS_eventfd2, SYS_epoll_create1, SYS_dup3,
    SYS_pipe2, SYS_inotify_init1, SYS_preadv, SYS_pwritev, SYS_rt_tgsigqueueinfo,
    SYS_perf_event_open, SYS_recvmmsg, SYS_fanotify_init, SYS_fanotify_mark, SYS_prlimit64,
    SYS_name_to_handle_at, SYS_open_by_handle_at, SYS_clock_adjtime, SYS_syncfs, SYS_sendmmsg,
    SYS_setns, SYS_getcpu, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp,
    SYS_finit_module, SYS_sched_setattr, SYS_sched_getattr, SYS_renameat2, SYS_seccomp,
    SYS_getrandom, SYS_memfd_create, SYS_kexec_file_load, SYS_bpf, SYS_execveat, SYS_userfaultfd,
    SYS_membarrier, SYS_mlock2, SYS_copy_file_range, SYS_preadv2, SYS_pwritev2, SYS_pkey_mprotect,
    SYS_pkey_alloc, SYS_pkey_free, SYS_statx, SYS_rseq, SYS_pidfd_send_signal, SYS_io_uring_setup,
    SYS_io_uring_enter, SYS_io_uring_register, SYS_open_tree, SYS_move_mount, SYS_fsopen,
    SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_pidfd_open, SYS_clone3, SYS_close_range,
    SYS_openat2, SYS_pidfd_getfd, SYS_faccessat2, SYS_process_madvise, SYS_epoll_pwait2,
    SYS_mount_setattr, SYS_quotactl_fd, SYS_landlock_create_ruleset, SYS_landlock_add_rule,
    SYS_landlock_restrict_self, SYS_memfd_secret, SYS_process_mrelease, SYS_futex_waitv,
    SYS_set_mempolicy_home_node, SYS_fchmodat2, SYS_mseal,
);

/// Syscalls the x86_64 kernel has that `libc` does not name (numbers from the kernel's
/// `arch/x86/entry/syscalls/syscall_64.tbl`).
#[cfg(target_arch = "x86_64")]
const EXTRA: &[(&str, u32)] = &[("io_pgetevents", 333), ("query_module", 178)];

/// `(name, number)` for the native architecture, as `libc` names them (with the `SYS_` prefix).
#[cfg(target_arch = "aarch64")]
#[rustfmt::skip]
const TABLE: &[(&str, u32)] = syscall_table!(
    SYS_io_setup, SYS_io_destroy, SYS_io_submit, SYS_io_cancel, SYS_io_getevents, SYS_setxattr,
    SYS_lsetxattr, SYS_fsetxattr, SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr, SYS_listxattr,
    SYS_llistxattr, SYS_flistxattr, SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr,
    SYS_getcwd, SYS_lookup_dcookie, SYS_eventfd2, SYS_epoll_create1, SYS_epoll_ctl,
    SYS_epoll_pwait, SYS_dup, SYS_dup3, SYS_fcntl, SYS_inotify_init1, SYS_inotify_add_watch,
    SYS_inotify_rm_watch, SYS_ioctl, SYS_ioprio_set, SYS_ioprio_get, SYS_flock, SYS_mknodat,
    SYS_mkdirat, SYS_unlinkat, SYS_symlinkat, SYS_linkat, SYS_umount2, SYS_mount, SYS_pivot_root,
    SYS_nfsservctl, SYS_statfs, SYS_fstatfs, SYS_truncate, SYS_ftruncate, SYS_fallocate,
    SYS_faccessat, SYS_chdir, SYS_fchdir, SYS_chroot, SYS_fchmod, SYS_fchmodat, SYS_fchownat,
    SYS_fchown, SYS_openat, SYS_close, SYS_vhangup, SYS_pipe2, SYS_quotactl, SYS_getdents64,
    SYS_lseek, SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_pwrite64, SYS_preadv,
    SYS_pwritev, SYS_sendfile, SYS_pselect6, SYS_ppoll, SYS_signalfd4, SYS_vmsplice, SYS_splice,
    SYS_tee, SYS_readlinkat, SYS_newfstatat, SYS_fstat, SYS_sync, SYS_fsync, SYS_fdatasync,
    SYS_timerfd_create, SYS_timerfd_settime, SYS_timerfd_gettime, SYS_utimensat, SYS_acct,
    SYS_capget, SYS_capset, SYS_personality, SYS_exit, SYS_exit_group, SYS_waitid,
    SYS_set_tid_address, SYS_unshare, SYS_futex, SYS_set_robust_list, SYS_get_robust_list,
    SYS_nanosleep, SYS_getitimer, SYS_setitimer, SYS_kexec_load, SYS_init_module,
    SYS_delete_module, SYS_timer_create, SYS_timer_gettime, SYS_timer_getoverrun,
    SYS_timer_settime, SYS_timer_delete, SYS_clock_settime, SYS_clock_gettime, SYS_clock_getres,
    SYS_clock_nanosleep, SYS_syslog, SYS_ptrace, SYS_sched_setparam, SYS_sched_setscheduler,
    SYS_sched_getscheduler, SYS_sched_getparam, SYS_sched_setaffinity, SYS_sched_getaffinity,
    SYS_sched_yield, SYS_sched_get_priority_max, SYS_sched_get_priority_min,
    SYS_sched_rr_get_interval, SYS_restart_syscall, SYS_kill, SYS_tkill, SYS_tgkill,
    SYS_sigaltstack, SYS_rt_sigsuspend, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigpending,
    SYS_rt_sigtimedwait, SYS_rt_sigqueueinfo, SYS_rt_sigreturn, SYS_setpriority, SYS_getpriority,
    SYS_reboot, SYS_setregid, SYS_setgid, SYS_setreuid, SYS_setuid, SYS_setresuid, SYS_getresuid,
    SYS_setresgid, SYS_getresgid, SYS_setfsuid, SYS_setfsgid, SYS_times, SYS_setpgid, SYS_getpgid,
    SYS_getsid, SYS_setsid, SYS_getgroups, SYS_setgroups, SYS_uname, SYS_sethostname,
    SYS_setdomainname, SYS_getrusage, SYS_umask, SYS_prctl, SYS_getcpu, SYS_gettimeofday,
    SYS_settimeofday, SYS_adjtimex, SYS_getpid, SYS_getppid, SYS_getuid, SYS_geteuid, SYS_getgid,
    SYS_getegid, SYS_gettid, SYS_sysinfo, SYS_mq_open, SYS_mq_unlink, SYS_mq_timedsend,
    SYS_mq_timedreceive, SYS_mq_notify, SYS_mq_getsetattr, SYS_msgget, SYS_msgctl, SYS_msgrcv,
    SYS_msgsnd, SYS_semget, SYS_semctl, SYS_semtimedop, SYS_semop, SYS_shmget, SYS_shmctl,
    SYS_shmat, SYS_shmdt, SYS_socket, SYS_socketpair, SYS_bind, SYS_listen, SYS_accept,
    SYS_connect, SYS_getsockname, SYS_getpeername, SYS_sendto, SYS_recvfrom, SYS_setsockopt,
    SYS_getsockopt, SYS_shutdown, SYS_sendmsg, SYS_recvmsg, SYS_readahead, SYS_brk, SYS_munmap,
    SYS_mremap, SYS_add_key, SYS_request_key, SYS_keyctl, SYS_clone, SYS_execve, SYS_mmap,
    SYS_fadvise64, SYS_swapon, SYS_swapoff, SYS_mprotect, SYS_msync, SYS_mlock, SYS_munlock,
    SYS_mlockall, SYS_munlockall, SYS_mincore, SYS_madvise, SYS_remap_file_pages, SYS_mbind,
    SYS_get_mempolicy, SYS_set_mempolicy, SYS_migrate_pages, SYS_move_pages,
    SYS_rt_tgsigqueueinfo, SYS_perf_event_open, SYS_accept4, SYS_recvmmsg, SYS_wait4,
    SYS_prlimit64, SYS_fanotify_init, SYS_fanotify_mark, SYS_name_to_handle_at,
    SYS_open_by_handle_at, SYS_clock_adjtime, SYS_syncfs, SYS_setns, SYS_sendmmsg,
    SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp, SYS_finit_module, SYS_sched_setattr,
    SYS_sched_getattr, SYS_renameat2, SYS_seccomp, SYS_getrandom, SYS_memfd_create, SYS_bpf,
    SYS_execveat, SYS_userfaultfd, SYS_membarrier, SYS_mlock2, SYS_copy_file_range, SYS_preadv2,
    SYS_pwritev2, SYS_pkey_mprotect, SYS_pkey_alloc, SYS_pkey_free, SYS_statx, SYS_rseq,
    SYS_kexec_file_load, SYS_pidfd_send_signal, SYS_io_uring_setup, SYS_io_uring_enter,
    SYS_io_uring_register, SYS_open_tree, SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount,
    SYS_fspick, SYS_pidfd_open, SYS_clone3, SYS_close_range, SYS_openat2, SYS_pidfd_getfd,
    SYS_faccessat2, SYS_process_madvise, SYS_epoll_pwait2, SYS_mount_setattr, SYS_quotactl_fd,
    SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self,
    SYS_memfd_secret, SYS_process_mrelease, SYS_futex_waitv, SYS_set_mempolicy_home_node,
    SYS_mseal, SYS_renameat, SYS_sync_file_range, SYS_getrlimit, SYS_setrlimit,
);

#[cfg(target_arch = "aarch64")]
const EXTRA: &[(&str, u32)] = &[];

/// `(name, number)` of the i386 ABI, which an x86_64 kernel also serves to 32-bit programs
/// (and to `int 0x80` from 64-bit ones). `libc` has no constants for it on x86_64, so the numbers
/// are written out from the kernel's `arch/x86/entry/syscalls/syscall_32.tbl` (through 462,
/// `mseal`).
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
const I386: &[(&str, u32)] = &[
    ("restart_syscall", 0), ("exit", 1), ("fork", 2), ("read", 3), ("write", 4), ("open", 5),
    ("close", 6), ("waitpid", 7), ("creat", 8), ("link", 9), ("unlink", 10), ("execve", 11),
    ("chdir", 12), ("time", 13), ("mknod", 14), ("chmod", 15), ("lchown", 16), ("break", 17),
    ("oldstat", 18), ("lseek", 19), ("getpid", 20), ("mount", 21), ("umount", 22), ("setuid", 23),
    ("getuid", 24), ("stime", 25), ("ptrace", 26), ("alarm", 27), ("oldfstat", 28), ("pause", 29),
    ("utime", 30), ("stty", 31), ("gtty", 32), ("access", 33), ("nice", 34), ("ftime", 35),
    ("sync", 36), ("kill", 37), ("rename", 38), ("mkdir", 39), ("rmdir", 40), ("dup", 41),
    ("pipe", 42), ("times", 43), ("prof", 44), ("brk", 45), ("setgid", 46), ("getgid", 47),
    ("signal", 48), ("geteuid", 49), ("getegid", 50), ("acct", 51), ("umount2", 52), ("lock", 53),
    ("ioctl", 54), ("fcntl", 55), ("mpx", 56), ("setpgid", 57), ("ulimit", 58),
    ("oldolduname", 59), ("umask", 60), ("chroot", 61), ("ustat", 62), ("dup2", 63),
    ("getppid", 64), ("getpgrp", 65), ("setsid", 66), ("sigaction", 67), ("sgetmask", 68),
    ("ssetmask", 69), ("setreuid", 70), ("setregid", 71), ("sigsuspend", 72), ("sigpending", 73),
    ("sethostname", 74), ("setrlimit", 75), ("getrlimit", 76), ("getrusage", 77),
    ("gettimeofday", 78), ("settimeofday", 79), ("getgroups", 80), ("setgroups", 81),
    ("select", 82), ("symlink", 83), ("oldlstat", 84), ("readlink", 85), ("uselib", 86),
    ("swapon", 87), ("reboot", 88), ("readdir", 89), ("mmap", 90), ("munmap", 91),
    ("truncate", 92), ("ftruncate", 93), ("fchmod", 94), ("fchown", 95), ("getpriority", 96),
    ("setpriority", 97), ("profil", 98), ("statfs", 99), ("fstatfs", 100), ("ioperm", 101),
    ("socketcall", 102), ("syslog", 103), ("setitimer", 104), ("getitimer", 105), ("stat", 106),
    ("lstat", 107), ("fstat", 108), ("olduname", 109), ("iopl", 110), ("vhangup", 111),
    ("idle", 112), ("vm86old", 113), ("wait4", 114), ("swapoff", 115), ("sysinfo", 116),
    ("ipc", 117), ("fsync", 118), ("sigreturn", 119), ("clone", 120), ("setdomainname", 121),
    ("uname", 122), ("modify_ldt", 123), ("adjtimex", 124), ("mprotect", 125),
    ("sigprocmask", 126), ("create_module", 127), ("init_module", 128), ("delete_module", 129),
    ("get_kernel_syms", 130), ("quotactl", 131), ("getpgid", 132), ("fchdir", 133),
    ("bdflush", 134), ("sysfs", 135), ("personality", 136), ("afs_syscall", 137),
    ("setfsuid", 138), ("setfsgid", 139), ("_llseek", 140), ("getdents", 141), ("_newselect", 142),
    ("flock", 143), ("msync", 144), ("readv", 145), ("writev", 146), ("getsid", 147),
    ("fdatasync", 148), ("_sysctl", 149), ("mlock", 150), ("munlock", 151), ("mlockall", 152),
    ("munlockall", 153), ("sched_setparam", 154), ("sched_getparam", 155),
    ("sched_setscheduler", 156), ("sched_getscheduler", 157), ("sched_yield", 158),
    ("sched_get_priority_max", 159), ("sched_get_priority_min", 160),
    ("sched_rr_get_interval", 161), ("nanosleep", 162), ("mremap", 163), ("setresuid", 164),
    ("getresuid", 165), ("vm86", 166), ("query_module", 167), ("poll", 168), ("nfsservctl", 169),
    ("setresgid", 170), ("getresgid", 171), ("prctl", 172), ("rt_sigreturn", 173),
    ("rt_sigaction", 174), ("rt_sigprocmask", 175), ("rt_sigpending", 176),
    ("rt_sigtimedwait", 177), ("rt_sigqueueinfo", 178), ("rt_sigsuspend", 179), ("pread64", 180),
    ("pwrite64", 181), ("chown", 182), ("getcwd", 183), ("capget", 184), ("capset", 185),
    ("sigaltstack", 186), ("sendfile", 187), ("getpmsg", 188), ("putpmsg", 189), ("vfork", 190),
    ("ugetrlimit", 191), ("mmap2", 192), ("truncate64", 193), ("ftruncate64", 194),
    ("stat64", 195), ("lstat64", 196), ("fstat64", 197), ("lchown32", 198), ("getuid32", 199),
    ("getgid32", 200), ("geteuid32", 201), ("getegid32", 202), ("setreuid32", 203),
    ("setregid32", 204), ("getgroups32", 205), ("setgroups32", 206), ("fchown32", 207),
    ("setresuid32", 208), ("getresuid32", 209), ("setresgid32", 210), ("getresgid32", 211),
    ("chown32", 212), ("setuid32", 213), ("setgid32", 214), ("setfsuid32", 215),
    ("setfsgid32", 216), ("pivot_root", 217), ("mincore", 218), ("madvise", 219),
    ("getdents64", 220), ("fcntl64", 221), ("gettid", 224), ("readahead", 225), ("setxattr", 226),
    ("lsetxattr", 227), ("fsetxattr", 228), ("getxattr", 229), ("lgetxattr", 230),
    ("fgetxattr", 231), ("listxattr", 232), ("llistxattr", 233), ("flistxattr", 234),
    ("removexattr", 235), ("lremovexattr", 236), ("fremovexattr", 237), ("tkill", 238),
    ("sendfile64", 239), ("futex", 240), ("sched_setaffinity", 241), ("sched_getaffinity", 242),
    ("set_thread_area", 243), ("get_thread_area", 244), ("io_setup", 245), ("io_destroy", 246),
    ("io_getevents", 247), ("io_submit", 248), ("io_cancel", 249), ("fadvise64", 250),
    ("exit_group", 252), ("lookup_dcookie", 253), ("epoll_create", 254), ("epoll_ctl", 255),
    ("epoll_wait", 256), ("remap_file_pages", 257), ("set_tid_address", 258),
    ("timer_create", 259), ("timer_settime", 260), ("timer_gettime", 261),
    ("timer_getoverrun", 262), ("timer_delete", 263), ("clock_settime", 264),
    ("clock_gettime", 265), ("clock_getres", 266), ("clock_nanosleep", 267), ("statfs64", 268),
    ("fstatfs64", 269), ("tgkill", 270), ("utimes", 271), ("fadvise64_64", 272), ("vserver", 273),
    ("mbind", 274), ("get_mempolicy", 275), ("set_mempolicy", 276), ("mq_open", 277),
    ("mq_unlink", 278), ("mq_timedsend", 279), ("mq_timedreceive", 280), ("mq_notify", 281),
    ("mq_getsetattr", 282), ("kexec_load", 283), ("waitid", 284), ("add_key", 286),
    ("request_key", 287), ("keyctl", 288), ("ioprio_set", 289), ("ioprio_get", 290),
    ("inotify_init", 291), ("inotify_add_watch", 292), ("inotify_rm_watch", 293),
    ("migrate_pages", 294), ("openat", 295), ("mkdirat", 296), ("mknodat", 297), ("fchownat", 298),
    ("futimesat", 299), ("fstatat64", 300), ("unlinkat", 301), ("renameat", 302), ("linkat", 303),
    ("symlinkat", 304), ("readlinkat", 305), ("fchmodat", 306), ("faccessat", 307),
    ("pselect6", 308), ("ppoll", 309), ("unshare", 310), ("set_robust_list", 311),
    ("get_robust_list", 312), ("splice", 313), ("sync_file_range", 314), ("tee", 315),
    ("vmsplice", 316), ("move_pages", 317), ("getcpu", 318), ("epoll_pwait", 319),
    ("utimensat", 320), ("signalfd", 321), ("timerfd_create", 322), ("eventfd", 323),
    ("fallocate", 324), ("timerfd_settime", 325), ("timerfd_gettime", 326), ("signalfd4", 327),
    ("eventfd2", 328), ("epoll_create1", 329), ("dup3", 330), ("pipe2", 331),
    ("inotify_init1", 332), ("preadv", 333), ("pwritev", 334), ("rt_tgsigqueueinfo", 335),
    ("perf_event_open", 336), ("recvmmsg", 337), ("fanotify_init", 338), ("fanotify_mark", 339),
    ("prlimit64", 340), ("name_to_handle_at", 341), ("open_by_handle_at", 342),
    ("clock_adjtime", 343), ("syncfs", 344), ("sendmmsg", 345), ("setns", 346),
    ("process_vm_readv", 347), ("process_vm_writev", 348), ("kcmp", 349), ("finit_module", 350),
    ("sched_setattr", 351), ("sched_getattr", 352), ("renameat2", 353), ("seccomp", 354),
    ("getrandom", 355), ("memfd_create", 356), ("bpf", 357), ("execveat", 358), ("socket", 359),
    ("socketpair", 360), ("bind", 361), ("connect", 362), ("listen", 363), ("accept4", 364),
    ("getsockopt", 365), ("setsockopt", 366), ("getsockname", 367), ("getpeername", 368),
    ("sendto", 369), ("sendmsg", 370), ("recvfrom", 371), ("recvmsg", 372), ("shutdown", 373),
    ("userfaultfd", 374), ("membarrier", 375), ("mlock2", 376), ("copy_file_range", 377),
    ("preadv2", 378), ("pwritev2", 379), ("pkey_mprotect", 380), ("pkey_alloc", 381),
    ("pkey_free", 382), ("statx", 383), ("arch_prctl", 384), ("io_pgetevents", 385), ("rseq", 386),
    ("semget", 393), ("semctl", 394), ("shmget", 395), ("shmctl", 396), ("shmat", 397),
    ("shmdt", 398), ("msgget", 399), ("msgsnd", 400), ("msgrcv", 401), ("msgctl", 402),
    ("clock_gettime64", 403), ("clock_settime64", 404), ("clock_adjtime64", 405),
    ("clock_getres_time64", 406), ("clock_nanosleep_time64", 407), ("timer_gettime64", 408),
    ("timer_settime64", 409), ("timerfd_gettime64", 410), ("timerfd_settime64", 411),
    ("utimensat_time64", 412), ("pselect6_time64", 413), ("ppoll_time64", 414),
    ("io_pgetevents_time64", 416), ("recvmmsg_time64", 417), ("mq_timedsend_time64", 418),
    ("mq_timedreceive_time64", 419), ("semtimedop_time64", 420), ("rt_sigtimedwait_time64", 421),
    ("futex_time64", 422), ("sched_rr_get_interval_time64", 423), ("pidfd_send_signal", 424),
    ("io_uring_setup", 425), ("io_uring_enter", 426), ("io_uring_register", 427),
    ("open_tree", 428), ("move_mount", 429), ("fsopen", 430), ("fsconfig", 431), ("fsmount", 432),
    ("fspick", 433), ("pidfd_open", 434), ("clone3", 435), ("close_range", 436), ("openat2", 437),
    ("pidfd_getfd", 438), ("faccessat2", 439), ("process_madvise", 440), ("epoll_pwait2", 441),
    ("mount_setattr", 442), ("quotactl_fd", 443), ("landlock_create_ruleset", 444),
    ("landlock_add_rule", 445), ("landlock_restrict_self", 446), ("memfd_secret", 447),
    ("process_mrelease", 448), ("futex_waitv", 449), ("set_mempolicy_home_node", 450),
    ("cachestat", 451), ("fchmodat2", 452), ("map_shadow_stack", 453), ("futex_wake", 454),
    ("futex_wait", 455), ("futex_requeue", 456), ("statmount", 457), ("listmount", 458),
    ("lsm_get_self_attr", 459), ("lsm_set_self_attr", 460), ("lsm_list_modules", 461),
    ("mseal", 462),
];

/// The ABIs a filter can cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    /// The architecture this binary runs on (x86_64 or aarch64).
    Native,
    /// i386 on an x86_64 kernel.
    I386,
}

/// The number of `name` in `abi`, if it has one.
pub fn number_in(abi: Abi, name: &str) -> Option<u32> {
    match abi {
        Abi::Native => number(name),
        #[cfg(target_arch = "x86_64")]
        Abi::I386 => I386.iter().find(|(n, _)| *n == name).map(|&(_, nr)| nr),
        #[cfg(not(target_arch = "x86_64"))]
        Abi::I386 => None,
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("drover's seccomp compiler has syscall tables for x86_64 and aarch64 only");

/// The number of the syscall `name` on the native architecture, if it has one.
pub fn number(name: &str) -> Option<u32> {
    let key = name.strip_prefix("SYS_").unwrap_or(name);
    TABLE
        .iter()
        .find(|(n, _)| n.strip_prefix("SYS_") == Some(key))
        .or_else(|| EXTRA.iter().find(|(n, _)| *n == key))
        .map(|&(_, nr)| nr)
}

/// The name of syscall number `nr` on the native architecture (for messages and tests).
pub fn name(nr: u32) -> Option<&'static str> {
    TABLE
        .iter()
        .chain(EXTRA)
        .find(|&&(_, n)| n == nr)
        .map(|(name, _)| name.strip_prefix("SYS_").unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_the_kernel_numbers() {
        assert_eq!(number("getpid"), Some(libc::SYS_getpid as u32));
        assert_eq!(number("mount"), Some(libc::SYS_mount as u32));
        assert_eq!(number("no_such_syscall"), None);
        assert_eq!(name(libc::SYS_bpf as u32), Some("bpf"));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_numbers_are_the_well_known_ones() {
        assert_eq!(number("read"), Some(0));
        assert_eq!(number("execve"), Some(59));
        assert_eq!(number("io_pgetevents"), Some(333));
        assert_eq!(number("_llseek"), None, "a 32-bit-only syscall");
        assert_eq!(number_in(Abi::I386, "_llseek"), Some(140));
        assert_eq!(number_in(Abi::I386, "getpid"), Some(20));
        assert_eq!(number_in(Abi::I386, "bpf"), Some(357));
        assert_eq!(number_in(Abi::I386, "mseal"), Some(462));
        assert_eq!(number_in(Abi::I386, "no_such_syscall"), None);
    }
}
