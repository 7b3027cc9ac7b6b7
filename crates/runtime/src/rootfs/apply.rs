//! Child side: raw syscalls on what [`super::prepare`] built. No allocation, no locks, no
//! logging; every failure is a [`ChildError`] with this module's step codes.

use std::ffi::CStr;

use rustix::fd::{AsFd as _, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};
use rustix::process::{Gid, Uid};

use super::options::ms;
use super::path::{FdPath, Kind, ensure, ensure_parent, fd_path, open_dir_in_root, open_in_root};
use super::*;

fn mount(
    src: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: u64,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    rustix::mount::mount(
        src,
        target,
        fstype,
        MountFlags::from_bits_retain(flags as u32),
        data,
    )
}

fn err(step: u32, index: usize) -> impl FnOnce(Errno) -> ChildError {
    move |e| ChildError::new(step, e, index as u32)
}

/// The lockable flags (`ro`, `nosuid`, `nodev`, `noexec`) the mount under `fd` has now.
fn locked_flags(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let st = rustix::fs::fstatvfs(fd)?.f_flag.bits();
    Ok(st & ms::LOCKABLE)
}

/// `MS_BIND | MS_REMOUNT` of the mount whose root `fd` is, with `flags`, keeping the locked
/// flags the options did not clear.
fn remount_bind(fd: &OwnedFd, flags: u64, cleared: u64) -> Result<(), Errno> {
    let keep = locked_flags(fd.as_fd())? & !cleared;
    let p = fd_path(fd);
    mount(
        c"",
        p.as_cstr(),
        c"",
        ms::BIND | ms::REMOUNT | flags | keep,
        None,
    )
}

impl Plan {
    /// Child side: set up the whole filesystem view and enter it: [`Plan::apply_mounts`] then
    /// [`Plan::enter_root`]. Must run in the container's new mount namespace; raw syscalls only.
    pub fn apply(&self) -> Result<(), ChildError> {
        self.apply_mounts()?;
        self.enter_root()
    }

    /// Child side, first half: propagation, the rootfs bind, every mount, `/dev`. The process
    /// is still outside the new root afterwards — where runc runs the `prestart`,
    /// `createRuntime` and `createContainer` hooks (they see the finished mounts under the
    /// rootfs path). Raw syscalls only.
    pub fn apply_mounts(&self) -> Result<(), ChildError> {
        // Nodes and mount points get exactly the modes the plan says.
        let old = rustix::process::umask(Mode::empty());
        let r = self.mounts_inner();
        rustix::process::umask(old);
        r
    }

    /// Child side, second half: `pivot_root` (or move + `chroot`), then sysctls, read-only
    /// and masked paths and the read-only root. Raw syscalls only.
    pub fn enter_root(&self) -> Result<(), ChildError> {
        let root = self.open_root()?;
        self.enter(&root)?;
        drop(root);
        self.after_pivot()
    }

    fn open_root(&self) -> Result<OwnedFd, ChildError> {
        rustix::fs::open(
            self.rootfs.as_c_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err(STEP_OPEN_ROOTFS, 0))
    }

    fn mounts_inner(&self) -> Result<(), ChildError> {
        mount(c"", c"/", c"", self.root_propagation, None)
            .map_err(err(STEP_ROOT_PROPAGATION, 0))?;
        if let Some(p) = &self.parent_mount {
            mount(c"", p, c"", ms::PRIVATE, None).map_err(err(STEP_PARENT_PRIVATE, 0))?;
        }
        mount(&self.rootfs, &self.rootfs, c"", ms::BIND | ms::REC, None)
            .map_err(err(STEP_BIND_ROOTFS, 0))?;
        let root = self.open_root()?;
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Mount(m) => apply_mount(root.as_fd(), i, m)?,
                Op::Node(n) => apply_node(root.as_fd(), i, n)?,
                Op::Link(l) => apply_link(root.as_fd(), i, l)?,
                Op::RemountRo(t) => {
                    let fd = open_in_root(root.as_fd(), t.full(), OFlags::empty())
                        .map_err(err(STEP_MOUNTPOINT, i))?;
                    remount_bind(&fd, ms::RDONLY, 0).map_err(err(STEP_REMOUNT_RO, i))?;
                }
                Op::Console(t) => {
                    let fd =
                        ensure(root.as_fd(), t, Kind::File).map_err(err(STEP_MOUNTPOINT, i))?;
                    let src = self.console.as_deref().unwrap_or(c"/dev/null");
                    mount(src, fd_path(&fd).as_cstr(), c"", ms::BIND, None)
                        .map_err(err(STEP_CONSOLE, i))?;
                }
            }
        }
        Ok(())
    }

    fn enter(&self, root: &OwnedFd) -> Result<(), ChildError> {
        rustix::process::fchdir(root).map_err(err(STEP_CHDIR_ROOTFS, 0))?;
        // With a shared root the old root's mounts are peers of the host's: detaching them
        // below would unmount the host's copies too. Make the whole tree a slave first (the
        // new root's propagation is restored from rootfsPropagation afterwards, as runc).
        // (After pivot_root, `mount(".")` would reach the new root, not the stacked old one.)
        if self.root_propagation & ms::SHARED != 0 {
            mount(c"", c"/", c"", ms::SLAVE | ms::REC, None)
                .map_err(err(STEP_OLD_ROOT_SLAVE, 0))?;
        }
        if self.no_pivot {
            mount(c".", c"/", c"", ms::MOVE, None).map_err(err(STEP_MOVE_ROOT, 0))?;
            rustix::process::chroot(c".").map_err(err(STEP_CHROOT, 0))?;
        } else {
            // The old root ends up stacked on the new one at "."; umount2 reaches it there.
            rustix::process::pivot_root(c".", c".").map_err(err(STEP_PIVOT, 0))?;
            rustix::mount::unmount(c".", UnmountFlags::DETACH)
                .map_err(err(STEP_UMOUNT_OLD_ROOT, 0))?;
        }
        rustix::process::chdir(c"/").map_err(err(STEP_CHDIR_NEW_ROOT, 0))?;
        if let Some(p) = self.after_pivot_propagation {
            mount(c"", c"/", c"", p, None).map_err(err(STEP_ROOT_PROPAGATION_AFTER, 0))?;
        }
        Ok(())
    }

    /// Inside the new root nothing of the host is reachable, so plain paths are safe here.
    fn after_pivot(&self) -> Result<(), ChildError> {
        for (i, (path, value)) in self.sysctls.iter().enumerate() {
            let fd = rustix::fs::open(
                path.as_c_str(),
                OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(err(STEP_SYSCTL_OPEN, i))?;
            write_all(&fd, value).map_err(err(STEP_SYSCTL_WRITE, i))?;
        }
        for (i, p) in self.readonly_paths.iter().enumerate() {
            match mount(p, p, c"", ms::BIND | ms::REC, None) {
                Ok(()) => {}
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(ChildError::new(STEP_READONLY_BIND, e, i as u32)),
            }
            let fd = rustix::fs::open(p.as_c_str(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .map_err(err(STEP_READONLY_REMOUNT, i))?;
            remount_bind(&fd, ms::RDONLY, 0).map_err(err(STEP_READONLY_REMOUNT, i))?;
        }
        for (i, p) in self.masked_paths.iter().enumerate() {
            let st = match rustix::fs::stat(p.as_c_str()) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(ChildError::new(STEP_MASK, e, i as u32)),
            };
            let r = if rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::Directory
            {
                mount(c"tmpfs", p, c"tmpfs", ms::RDONLY, None)
            } else {
                mount(c"/dev/null", p, c"", ms::BIND, None)
            };
            r.map_err(err(STEP_MASK, i))?;
        }
        if self.readonly_root {
            let fd = rustix::fs::open(c"/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .map_err(err(STEP_READONLY_ROOT, 0))?;
            remount_bind(&fd, ms::RDONLY, 0).map_err(err(STEP_READONLY_ROOT, 0))?;
        }
        Ok(())
    }
}

/// `PROC_SUPER_MAGIC` (`statfs(2)`).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

fn apply_mount(root: BorrowedFd<'_>, i: usize, m: &MountOp) -> Result<(), ChildError> {
    let fd = ensure(root, &m.target, m.kind).map_err(err(STEP_MOUNTPOINT, i))?;
    if !m.into_proc {
        let st = rustix::fs::fstatfs(&fd).map_err(err(STEP_INTO_PROC, i))?;
        if st.f_type == PROC_SUPER_MAGIC {
            return Err(ChildError::new(STEP_INTO_PROC, Errno::PERM, i as u32));
        }
    }
    // tmpcopyup: hold the image's directory open before the tmpfs covers it.
    let image_dir = if m.copy_up {
        Some(open_dir_in_root(root, &m.target).map_err(err(STEP_COPYUP, i))?)
    } else {
        None
    };
    let target = fd_path(&fd);
    let mut remount = m.bind_remount;
    match mount(
        &m.source,
        target.as_cstr(),
        &m.fstype,
        m.flags,
        m.data.as_deref(),
    ) {
        Ok(()) => {}
        Err(Errno::PERM) if m.rbind_fallback.is_some() => {
            let host = m.rbind_fallback.as_deref().unwrap_or(c"/sys");
            mount(host, target.as_cstr(), c"", ms::BIND | ms::REC, None)
                .map_err(err(STEP_MOUNT, i))?;
            if m.flags != 0 {
                remount = Some((m.flags, 0));
            }
        }
        Err(e) => return Err(ChildError::new(STEP_MOUNT, e, i as u32)),
    }
    drop(fd);
    if let Some(image_dir) = image_dir {
        let tmpfs = open_dir_in_root(root, &m.target).map_err(err(STEP_COPYUP, i))?;
        super::copyup::copy_tree(&image_dir, &tmpfs, 0).map_err(err(STEP_COPYUP, i))?;
    }
    if remount.is_none() && m.propagation.is_empty() && m.recursive.is_none() {
        return Ok(());
    }
    // The descriptor resolved before the mount names the covered directory; resolve again to
    // reach the root of the new mount.
    let fd =
        open_in_root(root, m.target.full(), OFlags::empty()).map_err(err(STEP_MOUNTPOINT, i))?;
    if let Some((flags, cleared)) = remount {
        remount_bind(&fd, flags, cleared).map_err(err(STEP_REMOUNT, i))?;
    }
    let target = fd_path(&fd);
    for p in &m.propagation {
        mount(c"", target.as_cstr(), c"", *p, None).map_err(err(STEP_PROPAGATION, i))?;
    }
    if let Some((set, clear)) = m.recursive {
        mount_setattr_recursive(&fd, set, clear).map_err(err(STEP_RECURSIVE_ATTR, i))?;
    }
    Ok(())
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, …)`: the attributes on the mount
/// whose root `fd` is and on every mount below it (rustix has no wrapper yet).
#[allow(unsafe_code)]
fn mount_setattr_recursive(fd: &OwnedFd, set: u64, clear: u64) -> Result<(), Errno> {
    use rustix::fd::AsRawFd as _;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the path is a NUL-terminated empty string, `attr` lives across the call and its
    // size is passed; the kernel only reads both.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        // SAFETY: errno is thread-local and was just set by the failed call.
        Err(Errno::from_raw_os_error(unsafe {
            *libc::__errno_location()
        }))
    }
}

fn apply_node(root: BorrowedFd<'_>, i: usize, n: &NodeOp) -> Result<(), ChildError> {
    if let Some(host) = &n.bind_from {
        let fd = ensure(root, &n.target, Kind::File).map_err(err(STEP_MOUNTPOINT, i))?;
        return mount(host, fd_path(&fd).as_cstr(), c"", ms::BIND, None)
            .map_err(err(STEP_BIND_NODE, i));
    }
    let dir = ensure_parent(root, &n.target).map_err(err(STEP_MOUNTPOINT, i))?;
    match rustix::fs::unlinkat(&dir, n.target.name(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(ChildError::new(STEP_MKNOD, e, i as u32)),
    }
    rustix::fs::mknodat(
        &dir,
        n.target.name(),
        n.file_type,
        Mode::from_raw_mode(n.perm),
        n.dev,
    )
    .map_err(err(STEP_MKNOD, i))?;
    rustix::fs::chownat(
        &dir,
        n.target.name(),
        Some(Uid::from_raw_unchecked(n.uid)),
        Some(Gid::from_raw_unchecked(n.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(err(STEP_CHOWN_NODE, i))
}

fn apply_link(root: BorrowedFd<'_>, i: usize, l: &LinkOp) -> Result<(), ChildError> {
    let dir = ensure_parent(root, &l.link).map_err(err(STEP_MOUNTPOINT, i))?;
    if l.replace {
        match rustix::fs::unlinkat(&dir, l.link.name(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(ChildError::new(STEP_SYMLINK, e, i as u32)),
        }
    }
    match rustix::fs::symlinkat(l.target.as_c_str(), &dir, l.link.name()) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(ChildError::new(STEP_SYMLINK, e, i as u32)),
    }
}

/// Child side, after `pivot_root`: bind the terminal's pty slave onto `/dev/console` (for a
/// terminal made inside the container's own devpts). Raw syscalls only.
pub fn bind_console(slave: BorrowedFd<'_>) -> Result<(), ChildError> {
    match rustix::fs::open(
        c"/dev/console",
        OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(_) | Err(Errno::EXIST) => {}
        Err(e) => return Err(ChildError::new(STEP_CONSOLE, e, 0)),
    }
    let src = FdPath::new(slave);
    mount(src.as_cstr(), c"/dev/console", c"", ms::BIND, None).map_err(err(STEP_CONSOLE, 0))
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
