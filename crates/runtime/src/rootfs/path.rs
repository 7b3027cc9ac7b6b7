//! Paths inside the container's root, resolved in the child so that a symlink the image
//! controls can never point a mount, a device node or a symlink we create onto the host.
//!
//! The parent splits each container path into components ([`InRootPath`]); the child resolves
//! them with `openat2(root, path, O_PATH, RESOLVE_IN_ROOT)` (a symlink to `/etc` means the
//! container's `/etc`, `..` stops at the root), creates what is missing one component at a time
//! relative to the resolved parent, and mounts onto `/proc/self/fd/N` of the resulting `O_PATH`
//! descriptor, so the kernel mounts on exactly the inode that was resolved.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path};

use anyhow::{Context as _, bail};
use rustix::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// A container path split for resolution inside the root: `/dev/pts` → `dev`, `dev/pts`.
#[derive(Clone, Debug)]
pub(crate) struct InRootPath {
    /// The path as the spec gave it (for messages).
    pub(crate) display: String,
    /// `prefixes[i]` is the first `i + 1` components joined with `/`.
    prefixes: Vec<CString>,
    /// `names[i]` is component `i` alone.
    names: Vec<CString>,
}

/// What to create when the last component is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A directory (mode 0755).
    Dir,
    /// An empty regular file (mode 0644), for binding a file or a device node.
    File,
}

impl InRootPath {
    /// Split a container path. `.` and empty components are dropped; `..` is kept (the kernel
    /// resolves it and never above the root). The root itself is refused.
    pub(crate) fn new(path: &Path, field: &str) -> anyhow::Result<Self> {
        let mut prefixes = Vec::new();
        let mut names = Vec::new();
        let mut joined: Vec<u8> = Vec::new();
        for c in path.components() {
            let name: &[u8] = match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
                Component::ParentDir => b"..",
                Component::Normal(n) => n.as_bytes(),
            };
            if !joined.is_empty() {
                joined.push(b'/');
            }
            joined.extend_from_slice(name);
            let nul = |b: &[u8]| {
                CString::new(b).with_context(|| format!("{field} {path:?} has a NUL byte"))
            };
            prefixes.push(nul(&joined)?);
            names.push(nul(name)?);
        }
        if names.is_empty() {
            bail!("{field} {path:?} names the container's root itself");
        }
        Ok(Self {
            display: path.display().to_string(),
            prefixes,
            names,
        })
    }

    /// The same path with `name` appended (`/sys/fs/cgroup` + `memory`).
    pub(crate) fn join(&self, name: &str, field: &str) -> anyhow::Result<Self> {
        let mut p = std::path::PathBuf::from("/");
        p.push(
            self.prefixes
                .last()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        p.push(name);
        Self::new(&p, field)
    }

    /// The last component.
    pub(crate) fn name(&self) -> &CStr {
        self.names.last().expect("InRootPath is never empty")
    }

    /// The whole path, relative to the root.
    pub(crate) fn full(&self) -> &CStr {
        self.prefixes.last().expect("InRootPath is never empty")
    }

    fn len(&self) -> usize {
        self.names.len()
    }
}

// === child side: raw syscalls only from here on ===

/// `/proc/self/fd/N` for a descriptor, formatted into a stack buffer.
pub(crate) struct FdPath {
    buf: [u8; 32],
}

impl FdPath {
    /// The magic link of `fd`.
    pub(crate) fn new(fd: BorrowedFd<'_>) -> Self {
        Self::from_number(fd.as_raw_fd() as u32)
    }

    /// The magic link of descriptor number `n`.
    pub(crate) fn from_number(mut n: u32) -> Self {
        const PREFIX: &[u8] = b"/proc/self/fd/";
        let mut buf = [0u8; 32];
        buf[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut digits = [0u8; 10];
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[PREFIX.len() + i] = digits[len - 1 - i];
        }
        Self { buf }
    }

    /// As a C string (the buffer is NUL-padded).
    pub(crate) fn as_cstr(&self) -> &CStr {
        // The buffer always holds a NUL after the digits (at most 14 + 10 of 32 bytes are used).
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"/proc/self/fd/")
    }
}

/// `openat2(root, path, O_PATH | O_CLOEXEC | extra, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`,
/// retried on `EAGAIN` (a concurrent rename made the kernel give up).
pub(crate) fn open_in_root(
    root: BorrowedFd<'_>,
    path: &CStr,
    extra: OFlags,
) -> Result<OwnedFd, Errno> {
    let flags = OFlags::PATH | OFlags::CLOEXEC | extra;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(root, path, flags, Mode::empty(), resolve) {
            Err(Errno::AGAIN) | Err(Errno::INTR) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// Resolve `p` in `root`, creating missing components (directories, and a `last` of the given
/// kind); returns an `O_PATH` descriptor of the result.
pub(crate) fn ensure(root: BorrowedFd<'_>, p: &InRootPath, last: Kind) -> Result<OwnedFd, Errno> {
    match open_in_root(root, p.full(), OFlags::empty()) {
        Err(Errno::NOENT) => {}
        r => return r,
    }
    ensure_upto(root, p, p.len(), last)
}

/// Resolve (creating directories as needed) the parent directory of `p`.
pub(crate) fn ensure_parent(root: BorrowedFd<'_>, p: &InRootPath) -> Result<OwnedFd, Errno> {
    if p.len() == 1 {
        return open_in_root(root, c".", OFlags::DIRECTORY);
    }
    match open_in_root(root, &p.prefixes[p.len() - 2], OFlags::DIRECTORY) {
        Err(Errno::NOENT) => ensure_upto(root, p, p.len() - 1, Kind::Dir),
        r => r,
    }
}

fn ensure_upto(
    root: BorrowedFd<'_>,
    p: &InRootPath,
    upto: usize,
    last: Kind,
) -> Result<OwnedFd, Errno> {
    let mut parent = open_in_root(root, c".", OFlags::DIRECTORY)?;
    for i in 0..upto {
        let prefix = &p.prefixes[i];
        match open_in_root(root, prefix, OFlags::empty()) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        // Create the component in the resolved parent: neither mkdirat nor O_CREAT|O_EXCL
        // follows a symlink in the last component, so a dangling link is never written through.
        let kind = if i + 1 == upto { last } else { Kind::Dir };
        let created = match kind {
            Kind::Dir => rustix::fs::mkdirat(&parent, &p.names[i], Mode::from_raw_mode(0o755)),
            Kind::File => rustix::fs::openat(
                &parent,
                &p.names[i],
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
                Mode::from_raw_mode(0o644),
            )
            .map(drop),
        };
        match created {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        parent = open_in_root(root, prefix, OFlags::empty())?;
    }
    Ok(parent)
}

/// A mount target descriptor and its magic-link path.
pub(crate) fn fd_path(fd: &OwnedFd) -> FdPath {
    FdPath::new(fd.as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_paths_are_formatted_without_allocating() {
        let fd = rustix::fs::open(c"/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let p = fd_path(&fd);
        assert_eq!(
            p.as_cstr().to_str().unwrap(),
            format!("/proc/self/fd/{}", fd.as_raw_fd())
        );
        assert_eq!(FdPath::from_number(0).as_cstr(), c"/proc/self/fd/0");
        assert_eq!(
            FdPath::from_number(i32::MAX as u32).as_cstr(),
            c"/proc/self/fd/2147483647"
        );
    }

    #[test]
    fn paths_split_into_prefixes_and_keep_dotdot_for_the_kernel() {
        let p = InRootPath::new(Path::new("/dev//./pts"), "m").unwrap();
        assert_eq!(p.full(), c"dev/pts");
        assert_eq!(p.name(), c"pts");
        assert_eq!(p.prefixes[0].as_c_str(), c"dev");
        let p = InRootPath::new(Path::new("/a/../../etc"), "m").unwrap();
        assert_eq!(p.full(), c"a/../../etc");
        let p = InRootPath::new(Path::new("relative/x"), "m").unwrap();
        assert_eq!(p.full(), c"relative/x");
        assert!(InRootPath::new(Path::new("/"), "mounts[0].destination").is_err());
        assert_eq!(p.join("y", "m").unwrap().full(), c"relative/x/y");
    }
}
