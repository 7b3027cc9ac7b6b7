//! The container's filesystem view: mounts, `/dev`, `pivot_root`, masked and read-only paths,
//! the read-only root and sysctls.
//!
//! [`prepare`] (parent) turns the spec into a [`Plan`]: every mount of `mounts` in order
//! (with runc's `/dev` defaults added when the spec lacks them), the `cgroup` mount expanded
//! per hierarchy, the device nodes and `/dev` symlinks, and the post-`pivot_root` steps.
//! [`Plan::apply`] (child, in its new mount namespace) runs it with raw syscalls only:
//!
//! 1. `/` becomes recursively private (or `linux.rootfsPropagation`), the rootfs is bound onto
//!    itself and opened as an `O_PATH` root descriptor;
//! 2. each mount's destination is resolved *inside that root* (`openat2` + `RESOLVE_IN_ROOT`,
//!    see `rootfs/path.rs`) and the mount made on `/proc/self/fd/N` — never through a path the image
//!    controls; bind mounts are then remounted for `ro`/`nosuid`/… and propagation is applied;
//! 3. `/dev` gets its nodes (`mknod`, or host nodes bind-mounted in a user namespace), symlinks,
//!    `/dev/ptmx -> pts/ptmx` and `/dev/console` when there is a terminal;
//! 4. `pivot_root(".", ".")` + `umount2(".", MNT_DETACH)` (or `MS_MOVE` + `chroot` with
//!    `no_pivot`);
//! 5. sysctls through `/proc/sys`, `linux.readonlyPaths`, `linux.maskedPaths`, `root.readonly`.
//!
//! Child-side failures carry step codes 100–199 (see [`step_name`]); [`Plan::describe`] names
//! the mount, device or path an index refers to.

mod apply;
mod copyup;
mod dev;
pub mod options;
mod path;
mod prepare;

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use rustix::io::Errno;

use crate::sys::ChildError;
pub(crate) use path::FdPath;
use path::{InRootPath, Kind};

pub use apply::bind_console;
pub use prepare::prepare;

const STEP_ROOT_PROPAGATION: u32 = 101;
const STEP_PARENT_PRIVATE: u32 = 102;
const STEP_BIND_ROOTFS: u32 = 103;
const STEP_OPEN_ROOTFS: u32 = 104;
const STEP_MOUNTPOINT: u32 = 110;
const STEP_MOUNT: u32 = 111;
const STEP_REMOUNT: u32 = 112;
const STEP_PROPAGATION: u32 = 113;
const STEP_MKNOD: u32 = 114;
const STEP_CHOWN_NODE: u32 = 115;
const STEP_BIND_NODE: u32 = 116;
const STEP_SYMLINK: u32 = 117;
const STEP_REMOUNT_RO: u32 = 118;
const STEP_CONSOLE: u32 = 119;
const STEP_INTO_PROC: u32 = 120;
const STEP_RECURSIVE_ATTR: u32 = 121;
const STEP_COPYUP: u32 = 122;
const STEP_CHDIR_ROOTFS: u32 = 130;
const STEP_PIVOT: u32 = 131;
const STEP_OLD_ROOT_SLAVE: u32 = 132;
const STEP_UMOUNT_OLD_ROOT: u32 = 133;
const STEP_CHDIR_NEW_ROOT: u32 = 134;
const STEP_MOVE_ROOT: u32 = 135;
const STEP_CHROOT: u32 = 136;
const STEP_ROOT_PROPAGATION_AFTER: u32 = 137;
const STEP_SYSCTL_OPEN: u32 = 140;
const STEP_SYSCTL_WRITE: u32 = 141;
const STEP_READONLY_BIND: u32 = 150;
const STEP_READONLY_REMOUNT: u32 = 151;
const STEP_MASK: u32 = 160;
const STEP_READONLY_ROOT: u32 = 170;

/// The name of one of this module's child step codes (see [`crate::sys`]).
pub fn step_name(step: u32) -> &'static str {
    match step {
        STEP_ROOT_PROPAGATION => "make / private (linux.rootfsPropagation)",
        STEP_PARENT_PRIVATE => "make the rootfs's parent mount private",
        STEP_BIND_ROOTFS => "bind the rootfs onto itself",
        STEP_OPEN_ROOTFS => "open the rootfs",
        STEP_MOUNTPOINT => "resolve or create a mount point inside the rootfs",
        STEP_MOUNT => "mount",
        STEP_REMOUNT => "remount a bind mount with its flags",
        STEP_PROPAGATION => "set a mount's propagation",
        STEP_MKNOD => "create a device node",
        STEP_CHOWN_NODE => "chown a device node",
        STEP_BIND_NODE => "bind-mount a host device node",
        STEP_SYMLINK => "create a symlink in /dev",
        STEP_REMOUNT_RO => "remount read-only",
        STEP_CONSOLE => "bind the terminal onto /dev/console",
        STEP_COPYUP => "copy the image's files into a tmpfs (tmpcopyup)",
        STEP_RECURSIVE_ATTR => {
            "set recursive mount attributes (rro, rnosuid, …) with mount_setattr"
        }
        STEP_INTO_PROC => {
            "refuse a mount point that resolves into /proc (a symlink in the image points there)"
        }
        STEP_CHDIR_ROOTFS => "chdir into the rootfs",
        STEP_PIVOT => "pivot_root",
        STEP_OLD_ROOT_SLAVE => "make the shared root a slave before leaving it",
        STEP_UMOUNT_OLD_ROOT => "unmount the old root",
        STEP_CHDIR_NEW_ROOT => "chdir to the new root",
        STEP_MOVE_ROOT => "move the rootfs onto / (no pivot)",
        STEP_CHROOT => "chroot (no pivot)",
        STEP_ROOT_PROPAGATION_AFTER => "apply linux.rootfsPropagation to the new root",
        STEP_SYSCTL_OPEN => "open a /proc/sys file (linux.sysctl; the container needs /proc)",
        STEP_SYSCTL_WRITE => "write a sysctl (linux.sysctl)",
        STEP_READONLY_BIND => "bind a read-only path onto itself (linux.readonlyPaths)",
        STEP_READONLY_REMOUNT => "remount a read-only path (linux.readonlyPaths)",
        STEP_MASK => "mask a path (linux.maskedPaths)",
        STEP_READONLY_ROOT => "remount the root read-only (root.readonly)",
        _ => "rootfs step",
    }
}

/// What the caller (the container's create sequence) tells [`prepare`] besides the spec.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// The bundle directory: `root.path` and relative bind sources are taken under it.
    pub bundle: &'a Path,
    /// The container has its own user namespace: device nodes are bind-mounted from the host
    /// instead of `mknod` (which a user namespace forbids), `sysfs` falls back to a recursive
    /// bind of the host's `/sys`, and the default devpts has no `gid=5`.
    pub user_namespace: bool,
    /// `--no-pivot`: move the rootfs onto `/` and `chroot` instead of `pivot_root` (for roots
    /// on a ramfs, where `pivot_root` is impossible).
    pub no_pivot: bool,
    /// The host path of a pty slave the parent opened (`/dev/pts/3`): bound onto
    /// `/dev/console` by path (a descriptor opened before the mount namespace was unshared
    /// cannot be a bind source: the kernel refuses mounts of another namespace). A terminal
    /// made inside the container after `pivot_root` is bound with [`bind_console`] instead.
    pub console: Option<&'a Path>,
    /// The container's cgroup, for `cgroup` mounts (v1: a tmpfs with one bind per hierarchy and
    /// the co-mount symlinks; v2: a bind of its directory; with a cgroup namespace, cgroup
    /// filesystems are mounted instead of bound).
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
}

/// The prepared filesystem setup of one container.
#[derive(Debug)]
pub struct Plan {
    rootfs: CString,
    rootfs_path: PathBuf,
    root_propagation: u64,
    after_pivot_propagation: Option<u64>,
    parent_mount: Option<CString>,
    ops: Vec<Op>,
    descriptions: Vec<String>,
    console: Option<CString>,
    no_pivot: bool,
    sysctls: Vec<(CString, Vec<u8>)>,
    sysctl_names: Vec<String>,
    readonly_paths: Vec<CString>,
    masked_paths: Vec<CString>,
    readonly_root: bool,
}

/// One pre-`pivot_root` step.
#[derive(Debug)]
enum Op {
    Mount(MountOp),
    Node(NodeOp),
    Link(LinkOp),
    RemountRo(InRootPath),
    Console(InRootPath),
}

#[derive(Debug)]
struct MountOp {
    target: InRootPath,
    kind: Kind,
    source: CString,
    fstype: CString,
    flags: u64,
    data: Option<CString>,
    /// For bind mounts with flags: the remount's flags and the flags the options cleared.
    bind_remount: Option<(u64, u64)>,
    propagation: Vec<u64>,
    /// In a user namespace `sysfs` cannot be mounted without a network namespace of its own:
    /// then the host's `/sys` is bound recursively instead (as runc).
    rbind_fallback: Option<CString>,
    /// The destination is (lexically) inside `/proc` and was allowed there; any other mount
    /// point that resolves into a procfs (an image symlink pointing into `/proc`) is refused.
    into_proc: bool,
    /// `MOUNT_ATTR_*` bits to set and clear recursively (`rro`, `rnosuid`, …).
    recursive: Option<(u64, u64)>,
    /// `tmpcopyup`: copy what the image has at the destination into the new tmpfs.
    copy_up: bool,
}

#[derive(Debug)]
struct NodeOp {
    target: InRootPath,
    file_type: FileType,
    perm: u32,
    dev: u64,
    uid: u32,
    gid: u32,
    /// In a user namespace: the host node to bind instead of `mknod`.
    bind_from: Option<CString>,
}

#[derive(Debug)]
struct LinkOp {
    link: InRootPath,
    target: CString,
    replace: bool,
}

impl Plan {
    /// The rootfs directory on the host (canonical).
    pub fn rootfs(&self) -> &Path {
        &self.rootfs_path
    }

    /// Descriptors opened in the parent that the child still needs (so the caller must not
    /// close them before [`Plan::apply`]). None today: the plan holds paths and opens what it
    /// needs in the child, where mounts of the new namespace can be bind sources.
    pub fn kept_fds(&self) -> Vec<RawFd> {
        Vec::new()
    }

    /// A message for a child failure of this plan, naming the mount, node or path concerned.
    pub fn describe(&self, e: &ChildError) -> String {
        let errno = Errno::from_raw_os_error(e.errno);
        let i = e.index as usize;
        let what = match e.step {
            STEP_MOUNTPOINT..=STEP_COPYUP => self.descriptions.get(i).cloned(),
            STEP_SYSCTL_OPEN | STEP_SYSCTL_WRITE => self.sysctl_names.get(i).cloned(),
            STEP_READONLY_BIND | STEP_READONLY_REMOUNT => self
                .readonly_paths
                .get(i)
                .map(|p| p.to_string_lossy().into_owned()),
            STEP_MASK => self
                .masked_paths
                .get(i)
                .map(|p| p.to_string_lossy().into_owned()),
            _ => None,
        };
        match what {
            Some(w) => format!("{} ({w}): {errno}", step_name(e.step)),
            None => format!("{}: {errno}", step_name(e.step)),
        }
    }
}
