//! `tmpcopyup` (a runc/crun extension podman uses for `--tmpfs`): a fresh tmpfs on a directory
//! of the image starts with a copy of what the image had there.
//!
//! Child side, raw syscalls on stack buffers only. The source is the image (untrusted): every
//! step is relative to an open directory and uses `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, so no
//! symlink in it is ever followed; symlinks are copied as symlinks.

use std::mem::MaybeUninit;

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

/// Directory levels copied at most (each costs a few KiB of stack).
const MAX_DEPTH: u32 = 32;

/// Copy the contents of directory `src` into directory `dst` (both opened for reading),
/// keeping modes, owners and symlinks; device nodes and FIFOs are recreated.
pub(super) fn copy_tree(src: &OwnedFd, dst: &OwnedFd, depth: u32) -> Result<(), Errno> {
    if depth > MAX_DEPTH {
        return Err(Errno::LOOP);
    }
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    let mut dir = RawDir::new(src, &mut buf);
    while let Some(entry) = dir.next() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        let kind = FileType::from_raw_mode(st.st_mode);
        match kind {
            FileType::Directory => {
                match rustix::fs::mkdirat(dst, name, mode) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let s = rustix::fs::openat(src, name, flags, Mode::empty())?;
                let d = rustix::fs::openat(dst, name, flags, Mode::empty())?;
                copy_tree(&s, &d, depth + 1)?;
            }
            FileType::RegularFile => {
                let s = rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    mode,
                )?;
                copy_data(&s, &d, st.st_size as u64)?;
            }
            FileType::Symlink => {
                let mut target = [0u8; 4096];
                let n = rustix::fs::readlinkat_raw(src, name, &mut target[..])?;
                if n >= target.len() {
                    return Err(Errno::NAMETOOLONG);
                }
                target[n] = 0;
                let target =
                    std::ffi::CStr::from_bytes_with_nul(&target[..=n]).map_err(|_| Errno::INVAL)?;
                rustix::fs::symlinkat(target, dst, name)?;
            }
            _ => rustix::fs::mknodat(dst, name, kind, mode, st.st_rdev)?,
        }
        rustix::fs::chownat(
            dst,
            name,
            Some(Uid::from_raw_unchecked(st.st_uid)),
            Some(Gid::from_raw_unchecked(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        if kind != FileType::Symlink {
            // The mode again: creation applied the umask, and chown drops set-id bits.
            rustix::fs::chmodat(dst, name, mode, AtFlags::empty())?;
        }
    }
    Ok(())
}

fn copy_data(src: &OwnedFd, dst: &OwnedFd, mut left: u64) -> Result<(), Errno> {
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        match rustix::fs::copy_file_range(src, None, dst, None, chunk) {
            Ok(0) => return Ok(()), // the file shrank meanwhile
            Ok(n) => left -= n as u64,
            Err(Errno::INTR) => {}
            // Across filesystems on old kernels: fall back to sendfile.
            Err(Errno::XDEV) | Err(Errno::NOSYS) | Err(Errno::INVAL) => {
                match rustix::fs::sendfile(dst, src, None, chunk) {
                    Ok(0) => return Ok(()),
                    Ok(n) => left -= n as u64,
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    #[test]
    fn a_tree_is_copied_with_modes_and_symlinks_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("file"), "content\n").unwrap();
        std::fs::set_permissions(src.join("file"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::write(src.join("sub/deeper/x"), vec![7u8; 100_000]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let open = |p: &std::path::Path| {
            rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
        };
        copy_tree(&open(&src), &open(&dst), 0).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.join("file")).unwrap(),
            "content\n"
        );
        assert_eq!(
            std::fs::metadata(dst.join("file")).unwrap().mode() & 0o7777,
            0o640
        );
        assert_eq!(
            std::fs::read(dst.join("sub/deeper/x")).unwrap().len(),
            100_000
        );
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap().to_str(),
            Some("/etc/passwd")
        );
        assert!(
            std::fs::symlink_metadata(dst.join("link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
