//! Paths inside the container's root, resolved in the child so that a symlink the image
//! controls can never point a mount, a device node or a symlink we create onto the host.
//!
//! The parent turns each container path into C strings ([`InRootPath`]); the child resolves
//! them with `openat2(root, path, O_PATH, RESOLVE_IN_ROOT)` (a symlink to `/etc` means the
//! container's `/etc`, `..` stops at the root), creates what is missing one component at a time
//! relative to the resolved parent, and mounts onto `/proc/self/fd/N` of the resulting `O_PATH`
//! descriptor, so the kernel mounts on exactly the inode that was resolved.
//!
//! A component that is a symlink dangling inside the root (Debian images ship
//! `/etc/resolv.conf -> ../run/…`, which does not exist) gets its target created inside the root,
//! as runc does, again component by component. The child side works on stack buffers only.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path};

use anyhow::{Context as _, bail};
use rustix::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// A container path prepared for resolution inside the root: `/dev/pts` → `dev/pts`.
#[derive(Clone, Debug)]
pub(crate) struct InRootPath {
    /// The path as the spec gave it (for messages).
    pub(crate) display: String,
    /// The components joined with `/`, relative to the root.
    full: CString,
    /// All components but the last (`None`: the parent is the root).
    parent: Option<CString>,
    /// The last component.
    name: CString,
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
    /// Prepare a container path. `.` and empty components are dropped; `..` is kept (the kernel
    /// resolves it and never above the root). The root itself is refused.
    pub(crate) fn new(path: &Path, field: &str) -> anyhow::Result<Self> {
        let mut comps: Vec<&[u8]> = Vec::new();
        for c in path.components() {
            match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => comps.push(b".."),
                Component::Normal(n) => comps.push(n.as_bytes()),
            }
        }
        let Some((name, parents)) = comps.split_last() else {
            bail!("{field} {path:?} names the container's root itself");
        };
        let nul = |b: Vec<u8>| {
            if b.len() >= PATH_BUF {
                bail!("{field} {path:?} is longer than {PATH_BUF} bytes");
            }
            CString::new(b).with_context(|| format!("{field} {path:?} has a NUL byte"))
        };
        Ok(Self {
            display: path.display().to_string(),
            full: nul(comps.join(&b'/'))?,
            parent: if parents.is_empty() {
                None
            } else {
                Some(nul(parents.join(&b'/'))?)
            },
            name: nul(name.to_vec())?,
        })
    }

    /// The same path with `name` appended (`/sys/fs/cgroup` + `memory`).
    pub(crate) fn join(&self, name: &str, field: &str) -> anyhow::Result<Self> {
        let mut p = std::path::PathBuf::from("/");
        p.push(Path::new(std::ffi::OsStr::from_bytes(self.full.as_bytes())));
        p.push(name);
        Self::new(&p, field)
    }

    /// The last component.
    pub(crate) fn name(&self) -> &CStr {
        &self.name
    }

    /// The whole path, relative to the root.
    pub(crate) fn full(&self) -> &CStr {
        &self.full
    }
}

// === child side: raw syscalls and stack buffers only from here on ===

/// Longest path the child handles (`PATH_MAX`).
const PATH_BUF: usize = 4096;
/// Dangling links followed while creating one path (the kernel's own limit is 40).
const MAX_LINKS: u32 = 8;

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

/// A path being built on the stack, NUL-terminated on demand.
struct StackPath {
    buf: [u8; PATH_BUF + 1],
    len: usize,
}

impl StackPath {
    fn new() -> Self {
        Self {
            buf: [0; PATH_BUF + 1],
            len: 0,
        }
    }

    /// Append `bytes` as further components (a leading `/` adds nothing: in-root paths are
    /// relative to the root).
    fn push(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        for c in bytes
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
        {
            let extra = c.len() + usize::from(self.len > 0);
            if self.len + extra > PATH_BUF {
                return Err(Errno::NAMETOOLONG);
            }
            if self.len > 0 {
                self.buf[self.len] = b'/';
                self.len += 1;
            }
            self.buf[self.len..self.len + c.len()].copy_from_slice(c);
            self.len += c.len();
        }
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The first `len` bytes as a C string (`.` when empty: the root itself).
    fn cstr(&mut self, len: usize) -> &CStr {
        if len == 0 {
            return c".";
        }
        self.buf[len] = 0;
        CStr::from_bytes_with_nul(&self.buf[..=len]).unwrap_or(c".")
    }

    /// Undo the NUL `cstr` wrote when the path continues past `len`.
    fn restore(&mut self, len: usize) {
        if len > 0 && len < self.len {
            self.buf[len] = b'/';
        }
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

/// `p` resolved in `root` as a directory open for reading (for `getdents`).
pub(crate) fn open_dir_in_root(root: BorrowedFd<'_>, p: &InRootPath) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(root, p.full(), flags, Mode::empty(), resolve)
}

/// Resolve `p` in `root`, creating missing components (directories, and a `last` of the given
/// kind); returns an `O_PATH` descriptor of the result.
pub(crate) fn ensure(root: BorrowedFd<'_>, p: &InRootPath, last: Kind) -> Result<OwnedFd, Errno> {
    match open_in_root(root, p.full(), OFlags::empty()) {
        Err(Errno::NOENT) => {}
        r => return r,
    }
    create(root, p.full().to_bytes(), last, 0)?;
    open_in_root(root, p.full(), OFlags::empty())
}

/// Resolve (creating directories as needed) the parent directory of `p`.
pub(crate) fn ensure_parent(root: BorrowedFd<'_>, p: &InRootPath) -> Result<OwnedFd, Errno> {
    let Some(parent) = &p.parent else {
        return open_in_root(root, c".", OFlags::DIRECTORY);
    };
    match open_in_root(root, parent, OFlags::DIRECTORY) {
        Err(Errno::NOENT) => {}
        r => return r,
    }
    create(root, parent.to_bytes(), Kind::Dir, 0)?;
    open_in_root(root, parent, OFlags::DIRECTORY)
}

/// Create the missing components of `path` (relative to the root) one at a time, each in its
/// resolved parent. Neither `mkdirat` nor `O_CREAT|O_EXCL` follows a symlink in the last
/// component, so a link is never written through; a link that dangles inside the root has its
/// target created (inside the root) instead, up to [`MAX_LINKS`] deep.
fn create(root: BorrowedFd<'_>, path: &[u8], last: Kind, depth: u32) -> Result<(), Errno> {
    let mut walk = StackPath::new();
    walk.push(path)?;
    let total = walk.len;
    let mut end = 0;
    while end < total {
        let start = if end == 0 { 0 } else { end + 1 };
        let parent_len = end;
        end = walk.bytes()[start..]
            .iter()
            .position(|b| *b == b'/')
            .map_or(total, |i| start + i);
        let kind = if end == total { last } else { Kind::Dir };
        let found = open_in_root(root, walk.cstr(end), OFlags::empty());
        walk.restore(end);
        match found {
            Ok(_) => continue,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        let parent = open_in_root(root, walk.cstr(parent_len), OFlags::DIRECTORY);
        walk.restore(parent_len);
        let parent = parent?;
        let mut name = StackPath::new();
        name.push(&walk.bytes()[start..end])?;
        let name_len = name.len;
        let made = match kind {
            Kind::Dir => {
                rustix::fs::mkdirat(&parent, name.cstr(name_len), Mode::from_raw_mode(0o755))
            }
            Kind::File => rustix::fs::openat(
                &parent,
                name.cstr(name_len),
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
                Mode::from_raw_mode(0o644),
            )
            .map(drop),
        };
        match made {
            Ok(()) => continue,
            Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        // It exists but does not resolve: a symlink dangling inside the root (or a race).
        let found = open_in_root(root, walk.cstr(end), OFlags::empty());
        walk.restore(end);
        match found {
            Ok(_) => continue,
            Err(Errno::NOENT) if depth < MAX_LINKS => {}
            Err(Errno::NOENT) => return Err(Errno::LOOP),
            Err(e) => return Err(e),
        }
        let mut target = [0u8; PATH_BUF];
        let n = rustix::fs::readlinkat_raw(&parent, name.cstr(name_len), &mut target[..])?;
        let mut next = StackPath::new();
        if target.first() != Some(&b'/') {
            // Relative to the link's directory (the kernel resolves the same way).
            next.push(&walk.bytes()[..parent_len])?;
        }
        next.push(&target[..n])?;
        create(root, next.bytes(), kind, depth + 1)?;
    }
    Ok(())
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
    fn paths_keep_dotdot_for_the_kernel_and_refuse_the_root() {
        let p = InRootPath::new(Path::new("/dev//./pts"), "m").unwrap();
        assert_eq!(p.full(), c"dev/pts");
        assert_eq!(p.name(), c"pts");
        assert_eq!(p.parent.as_deref(), Some(c"dev"));
        let p = InRootPath::new(Path::new("/a/../../etc"), "m").unwrap();
        assert_eq!(p.full(), c"a/../../etc");
        let p = InRootPath::new(Path::new("relative/x"), "m").unwrap();
        assert_eq!(p.full(), c"relative/x");
        assert!(InRootPath::new(Path::new("/"), "mounts[0].destination").is_err());
        assert_eq!(p.join("y", "m").unwrap().full(), c"relative/x/y");
        assert!(
            InRootPath::new(Path::new("/dev"), "m")
                .unwrap()
                .parent
                .is_none()
        );
    }

    #[test]
    fn stack_paths_split_components_and_terminate_on_demand() {
        let mut s = StackPath::new();
        s.push(b"/a//b/./c").unwrap();
        assert_eq!(s.bytes(), b"a/b/c");
        assert_eq!(s.cstr(3), c"a/b");
        s.restore(3);
        assert_eq!(s.bytes(), b"a/b/c");
        assert_eq!(s.cstr(0), c".");
        s.restore(0);
        assert_eq!(
            s.bytes(),
            b"a/b/c",
            "the root's \".\" must not touch the buffer"
        );
        assert_eq!(
            StackPath::new().push(&[b'x'; PATH_BUF + 1]),
            Err(Errno::NAMETOOLONG)
        );
    }

    /// Unprivileged: creation inside a temporary "root", through links that dangle in it.
    #[test]
    fn dangling_links_get_their_target_created_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root_path = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root_path.join("etc")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        // Absolute and relative links whose targets are missing in the root; the absolute one
        // names a real directory outside the root.
        std::os::unix::fs::symlink(&outside, root_path.join("abs")).unwrap();
        std::os::unix::fs::symlink("../run/resolv.conf", root_path.join("etc/resolv.conf"))
            .unwrap();
        std::os::unix::fs::symlink("loop", root_path.join("loop")).unwrap();
        let root =
            rustix::fs::open(&root_path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();

        let p = InRootPath::new(Path::new("/abs/sub/dir"), "m").unwrap();
        ensure(root.as_fd(), &p, Kind::Dir).unwrap();
        let inside = root_path
            .join(outside.strip_prefix("/").unwrap())
            .join("sub/dir");
        assert!(inside.is_dir(), "target not made inside the root");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "wrote outside the root"
        );

        let p = InRootPath::new(Path::new("/etc/resolv.conf"), "m").unwrap();
        ensure(root.as_fd(), &p, Kind::File).unwrap();
        assert!(root_path.join("run/resolv.conf").is_file());

        let p = InRootPath::new(Path::new("/loop/x"), "m").unwrap();
        assert_eq!(
            ensure(root.as_fd(), &p, Kind::Dir).unwrap_err(),
            Errno::LOOP
        );
    }
}
