//! Layer extraction into an overlayfs lower directory.
//!
//! Each layer is unpacked on its own (a diff, not a merged tree): the runtime stacks the
//! snapshots with overlayfs. OCI whiteouts become overlayfs whiteouts: `.wh.NAME` is a 0/0
//! character device `NAME`, and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory.
//!
//! Confinement: entry paths are taken relative to the snapshot root; `..` components are
//! refused, a leading `/` is dropped, and every existing parent must be a real directory (a
//! symlinked parent is refused, never followed). Hard links must point inside the same layer.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};

use crate::decompress::decompressor;
use crate::digest::{Digest, HashingReader};
use crate::oci::Compression;

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry's path leaves the snapshot directory.
    #[error("layer entry {path:?} is refused: {reason}")]
    Escape {
        /// The entry path as written in the tar.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A hard link names a target that this layer did not create.
    #[error("layer entry {path:?} is a hard link to {target:?}, which is not in the same layer")]
    LinkTarget {
        /// The link entry.
        path: String,
        /// Its target.
        target: String,
    },
    /// The tar stream is corrupt or an IO step failed.
    #[error("unpacking layer entry {path:?}: {source}")]
    Io {
        /// The entry (empty before the first entry).
        path: String,
        /// The IO error.
        source: io::Error,
    },
    /// The uncompressed stream does not hash to the diff ID in the image config.
    #[error(
        "layer diff ID mismatch: config says {expected}, the uncompressed layer hashes to {actual}"
    )]
    DiffId {
        /// Expected diff ID.
        expected: Digest,
        /// Computed digest.
        actual: Digest,
    },
}

fn io_at(path: &str) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What unpacking one layer produced.
#[derive(Debug, Clone)]
pub struct UnpackStats {
    /// Digest of the uncompressed tar (the diff ID).
    pub diff_id: Digest,
    /// Uncompressed bytes read.
    pub bytes: u64,
    /// Entries processed.
    pub entries: u64,
}

/// Unpacks one compressed layer blob into `dest` (an empty directory) and returns the digest of
/// the uncompressed stream. When `expected` is given a mismatch is an error.
pub fn unpack_layer(
    blob: impl Read,
    compression: Compression,
    dest: &Path,
    expected: Option<&Digest>,
) -> Result<UnpackStats, UnpackError> {
    let raw = decompressor(compression, blob).map_err(io_at(""))?;
    let mut hashing = HashingReader::new(raw);
    let entries = extract(&mut hashing, dest)?;
    // The tar reader stops at the end-of-archive marker; hash the padding after it too.
    io::copy(&mut hashing, &mut io::sink()).map_err(io_at(""))?;
    let diff_id = Digest::from_hasher(hashing.hasher);
    if let Some(exp) = expected
        && *exp != diff_id
    {
        return Err(UnpackError::DiffId {
            expected: exp.clone(),
            actual: diff_id,
        });
    }
    Ok(UnpackStats {
        diff_id,
        bytes: hashing.count,
        entries,
    })
}

struct Extractor<'a> {
    root: &'a Path,
    /// Directories known to exist as real directories (not symlinks) under root.
    dirs: HashSet<PathBuf>,
    /// Directory mtimes, applied last (children change them).
    dir_times: Vec<(PathBuf, i64, u32)>,
    /// Copy buffer: large writes cut syscalls (io::copy writes 8 KiB at a time).
    buf: Vec<u8>,
}

fn copy_big(r: &mut impl Read, w: &mut File, buf: &mut [u8]) -> io::Result<()> {
    use std::io::Write;
    loop {
        // Fill the buffer as far as the entry allows before one write.
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            return Ok(());
        }
        w.write_all(&buf[..n])?;
    }
}

fn extract(r: &mut dyn Read, root: &Path) -> Result<u64, UnpackError> {
    let mut ar = tar::Archive::new(r);
    let mut ex = Extractor {
        root,
        dirs: HashSet::new(),
        dir_times: Vec::new(),
        buf: vec![0; 1 << 20],
    };
    let mut n = 0;
    for entry in ar.entries().map_err(io_at(""))? {
        let entry = entry.map_err(io_at("(next entry)"))?;
        ex.entry(entry)?;
        n += 1;
    }
    for (path, secs, nsec) in ex.dir_times.iter().rev() {
        set_times(path, *secs, *nsec).map_err(io_at(&path.display().to_string()))?;
    }
    Ok(n)
}

/// Metadata gathered from the header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    mtime_nsec: u32,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn meta_of<R: Read>(entry: &mut tar::Entry<'_, R>, shown: &str) -> Result<Meta, UnpackError> {
    let h = entry.header();
    let mut m = Meta {
        mode: h.mode().map_err(io_at(shown))? & 0o7777,
        uid: h.uid().map_err(io_at(shown))? as u32,
        gid: h.gid().map_err(io_at(shown))? as u32,
        mtime: h.mtime().map_err(io_at(shown))? as i64,
        mtime_nsec: 0,
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions().map_err(io_at(shown))? {
        for ext in pax {
            let ext = ext.map_err(io_at(shown))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let text = std::str::from_utf8(value).unwrap_or("");
            match key {
                "uid" => m.uid = text.parse().unwrap_or(m.uid),
                "gid" => m.gid = text.parse().unwrap_or(m.gid),
                "mtime" => {
                    let (s, frac) = text.split_once('.').unwrap_or((text, ""));
                    m.mtime = s.parse().unwrap_or(m.mtime);
                    let digits: String = frac.chars().take(9).collect();
                    m.mtime_nsec = format!("{digits:0<9}").parse().unwrap_or(0);
                }
                k if k.starts_with("SCHILY.xattr.") => {
                    m.xattrs
                        .push((k["SCHILY.xattr.".len()..].to_owned(), value.to_vec()));
                }
                _ => {}
            }
        }
    }
    Ok(m)
}

/// Splits a tar path into clean relative components, refusing `..`.
fn clean(raw: &[u8], shown: &str) -> Result<Vec<std::ffi::OsString>, UnpackError> {
    let p = Path::new(std::ffi::OsStr::from_bytes(raw));
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_owned()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(UnpackError::Escape {
                    path: shown.to_owned(),
                    reason: "it contains a '..' component",
                });
            }
            Component::Prefix(_) => {
                return Err(UnpackError::Escape {
                    path: shown.to_owned(),
                    reason: "bad prefix",
                });
            }
        }
    }
    Ok(out)
}

impl Extractor<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let comps = clean(&raw_path, &shown)?;
        let Some((name, parents)) = comps.split_last() else {
            // The root itself ("./"): nothing to create.
            return Ok(());
        };
        let parent = self.ensure_parents(parents, &shown)?;
        let name_bytes = name.as_bytes();
        if name_bytes == b".wh..wh..opq" {
            // Opaque directory: the parent hides every lower entry.
            return lsetxattr(&parent, "trusted.overlay.opaque", b"y").map_err(io_at(&shown));
        }
        if name_bytes.starts_with(b".wh..wh.") {
            return Ok(()); // aufs bookkeeping (e.g. .wh..wh.plnk), meaningless here.
        }
        if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
            let target = parent.join(std::ffi::OsStr::from_bytes(hidden));
            self.remove_existing(&target).map_err(io_at(&shown))?;
            return rustix::fs::mknodat(CWD, &target, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(|e| io_at(&shown)(e.into()));
        }
        let path = parent.join(name);
        let meta = meta_of(&mut entry, &shown)?;
        match kind {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        self.remove_existing(&path).map_err(io_at(&shown))?;
                        fs::create_dir(&path).map_err(io_at(&shown))?;
                    }
                    Err(_) => fs::create_dir(&path).map_err(io_at(&shown))?,
                }
                self.dirs.insert(path.clone());
                self.finish(&path, &meta, false, &shown)?;
                self.dir_times.push((path, meta.mtime, meta.mtime_nsec));
                return Ok(());
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                self.remove_existing(&path).map_err(io_at(&shown))?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io_at(&shown))?;
                copy_big(&mut entry, &mut f, &mut self.buf).map_err(io_at(&shown))?;
                drop(f);
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    io_at(&shown)(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "symlink without target",
                    ))
                })?;
                self.remove_existing(&path).map_err(io_at(&shown))?;
                symlink(std::ffi::OsStr::from_bytes(&target), &path).map_err(io_at(&shown))?;
                self.finish(&path, &meta, true, &shown)?;
                return Ok(());
            }
            tar::EntryType::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let target_shown = String::from_utf8_lossy(&target_raw).into_owned();
                let tcomps = clean(&target_raw, &target_shown)?;
                let (tname, tparents) =
                    tcomps.split_last().ok_or_else(|| UnpackError::LinkTarget {
                        path: shown.clone(),
                        target: target_shown.clone(),
                    })?;
                let tparent = self.existing_parents(tparents, &shown, &target_shown)?;
                let target = tparent.join(tname);
                match fs::symlink_metadata(&target) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Err(UnpackError::LinkTarget {
                            path: shown,
                            target: target_shown,
                        });
                    }
                }
                if target != path {
                    self.remove_existing(&path).map_err(io_at(&shown))?;
                    fs::hard_link(&target, &path).map_err(io_at(&shown))?;
                }
                // A hard link shares the target's inode and so its metadata.
                return Ok(());
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.remove_existing(&path).map_err(io_at(&shown))?;
                rustix::fs::mknodat(
                    CWD,
                    &path,
                    ft,
                    Mode::from_raw_mode(0o600),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|e| io_at(&shown)(e.into()))?;
            }
            other => {
                return Err(io_at(&shown)(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("unsupported tar entry type {other:?}"),
                )));
            }
        }
        self.finish(&path, &meta, false, &shown)
    }

    /// Ownership, then mode (chown clears setuid), then xattrs (chown also drops
    /// `security.capability`), then times.
    fn finish(&self, path: &Path, m: &Meta, is_link: bool, shown: &str) -> Result<(), UnpackError> {
        rustix::fs::chownat(
            CWD,
            path,
            Some(Uid::from_raw(m.uid)),
            Some(Gid::from_raw(m.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_at(shown)(e.into()))?;
        if !is_link {
            fs::set_permissions(path, fs::Permissions::from_mode(m.mode)).map_err(io_at(shown))?;
        }
        for (k, v) in &m.xattrs {
            lsetxattr(path, k, v).map_err(|e| {
                io_at(shown)(io::Error::new(e.kind(), format!("setting xattr {k}: {e}")))
            })?;
        }
        set_times(path, m.mtime, m.mtime_nsec).map_err(io_at(shown))
    }

    /// Creates missing parents (0755, root-owned) and refuses any parent that is not a real
    /// directory.
    fn ensure_parents(
        &mut self,
        parents: &[std::ffi::OsString],
        shown: &str,
    ) -> Result<PathBuf, UnpackError> {
        let mut cur = self.root.to_path_buf();
        for c in parents {
            cur.push(c);
            if self.dirs.contains(&cur) {
                continue;
            }
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(UnpackError::Escape {
                        path: shown.to_owned(),
                        reason: "a parent directory is a symlink in this layer",
                    });
                }
                Ok(_) => {
                    return Err(UnpackError::Escape {
                        path: shown.to_owned(),
                        reason: "a parent path is not a directory",
                    });
                }
                Err(_) => {
                    fs::create_dir(&cur).map_err(io_at(shown))?;
                    fs::set_permissions(&cur, fs::Permissions::from_mode(0o755))
                        .map_err(io_at(shown))?;
                }
            }
            self.dirs.insert(cur.clone());
        }
        Ok(cur)
    }

    /// Like `ensure_parents` but creates nothing (hard-link targets must already exist in
    /// this layer); a symlinked parent is an escape, a missing one a bad link target.
    fn existing_parents(
        &self,
        parents: &[std::ffi::OsString],
        shown: &str,
        target: &str,
    ) -> Result<PathBuf, UnpackError> {
        let mut cur = self.root.to_path_buf();
        for c in parents {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(UnpackError::Escape {
                        path: shown.to_owned(),
                        reason: "the hard link target's parent is a symlink or not a directory",
                    });
                }
                Err(_) => {
                    return Err(UnpackError::LinkTarget {
                        path: shown.to_owned(),
                        target: target.to_owned(),
                    });
                }
            }
        }
        Ok(cur)
    }

    /// Removes what a later entry of the same layer replaces.
    fn remove_existing(&mut self, path: &Path) -> io::Result<()> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(path)?;
                // Cached knowledge about directories below it is stale now.
                self.dirs.retain(|d| !d.starts_with(path));
                Ok(())
            }
            Ok(_) => fs::remove_file(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    rustix::fs::lsetxattr(path, name, value, XattrFlags::empty()).map_err(io::Error::from)
}

fn set_times(path: &Path, secs: i64, nsec: u32) -> io::Result<()> {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nsec as _,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(io::Error::from)
}

/// Opens a blob file for unpacking, sniffing its compression from the first bytes.
pub(crate) fn open_layer(path: &Path) -> io::Result<(File, Compression)> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 4];
    let n = f.read(&mut head)?;
    use std::io::Seek;
    f.seek(io::SeekFrom::Start(0))?;
    Ok((f, Compression::sniff(&head[..n])))
}
