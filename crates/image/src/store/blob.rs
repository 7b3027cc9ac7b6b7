//! Verified blob writes and atomic file replacement.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{Result, StoreError, ioe};
use crate::digest::Digest;
use crate::lock::FileLock;

/// Writes a file atomically: temp file, fsync, rename, fsync of the directory.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("store paths have parents");
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{:08x}",
        path.file_name().expect("file name").to_string_lossy(),
        std::process::id(),
        rand::random::<u32>()
    ));
    let res = (|| {
        let mut f = File::create(&tmp).map_err(ioe("creating", &tmp))?;
        f.write_all(bytes).map_err(ioe("writing", &tmp))?;
        f.sync_all().map_err(ioe("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(ioe("renaming into", path))?;
        sync_dir(dir)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ioe("syncing", dir))
}

/// A blob being written; verified and renamed into place by `commit`, removed if dropped.
#[derive(Debug)]
pub struct BlobWriter {
    pub(super) file: Option<File>,
    pub(super) tmp: PathBuf,
    pub(super) dest: PathBuf,
    pub(super) hasher: Sha256,
    pub(super) count: u64,
    pub(super) expected: Digest,
    pub(super) expected_size: Option<u64>,
    pub(super) what: String,
    pub(super) _lock: FileLock,
}

impl BlobWriter {
    /// Describes the blob in errors (e.g. `layer 2/5 of nginx:1.27`).
    pub fn describe(&mut self, what: String) {
        self.what = what;
    }

    /// Appends bytes. Fails early when more bytes arrive than the descriptor's size.
    pub fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.count += buf.len() as u64;
        if let Some(s) = self.expected_size
            && self.count > s
        {
            return Err(StoreError::DigestMismatch {
                what: self.what.clone(),
                expected: self.expected.clone(),
                expected_size: s,
                actual: Digest::from_hasher(self.hasher.clone()),
                actual_size: self.count,
            });
        }
        self.hasher.update(buf);
        let f = self.file.as_mut().expect("open until commit");
        f.write_all(buf).map_err(ioe("writing", &self.tmp))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.count
    }

    /// Verifies digest and size, syncs and renames the blob into place.
    pub fn commit(mut self) -> Result<()> {
        let got = Digest::from_hasher(self.hasher.clone());
        let size_ok = self.expected_size.is_none_or(|s| s == self.count);
        if got != self.expected || !size_ok {
            return Err(StoreError::DigestMismatch {
                what: self.what.clone(),
                expected: self.expected.clone(),
                expected_size: self.expected_size.unwrap_or(0),
                actual: got,
                actual_size: self.count,
            });
        }
        let f = self.file.take().expect("open until commit");
        f.sync_all().map_err(ioe("syncing", &self.tmp))?;
        drop(f);
        fs::rename(&self.tmp, &self.dest).map_err(ioe("committing blob", &self.dest))?;
        // The directory entry is made durable once for many blobs: `Store::update_index` syncs
        // `blobs/` and `snapshots/` before any name that needs them is written.
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
