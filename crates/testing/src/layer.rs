//! Deterministic layer tarballs.
//!
//! A [`LayerBuilder`] is a sorted map from path to entry. [`LayerBuilder::build`] writes it as a
//! tar stream (GNU headers, fixed mtime, owner as set — root by default, sorted paths, every
//! parent directory present) and gzips it with a fixed header, so the same entries give the same
//! `diff_id` and blob digest on every run and every machine that has the same host files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::BuildError;

/// The modification time written into every tar header: 2024-01-01T00:00:00Z.
pub const FIXED_MTIME: u64 = 1_704_067_200;

/// Media type of a gzip-compressed OCI layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Where a regular file's bytes come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Bytes given by the fixture.
    Bytes(Vec<u8>),
    /// A file on the host, read when the layer is built (symlinks followed).
    Host(PathBuf),
}

#[derive(Clone, Debug)]
enum Kind {
    Dir,
    File(Source),
    Symlink(String),
}

#[derive(Clone, Debug)]
struct Entry {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// A layer being assembled: paths are absolute-looking (`/bin/sh`) or relative (`bin/sh`), both
/// mean the same entry. Adding a path twice replaces the earlier entry.
#[derive(Clone, Debug, Default)]
pub struct LayerBuilder {
    entries: BTreeMap<String, Entry>,
}

/// A built layer: the gzip blob and the digests a manifest and a config need.
#[derive(Clone, Debug)]
pub struct Layer {
    /// The gzip-compressed tar stream (the blob).
    pub blob: Vec<u8>,
    /// `sha256:<hex>` of [`Layer::blob`].
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar stream (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// Paths in the tar stream, in order (without a leading `/`).
    pub paths: Vec<String>,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Normalises `path` to the form stored in the tar stream: no leading `/`, no `.` components,
/// no trailing `/`. Rejects `..` and the empty path.
pub(crate) fn normalize(path: &str) -> Result<String, BuildError> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(BuildError::BadPath {
                    path: path.to_string(),
                    reason: "`..` is not allowed in a layer path",
                });
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(BuildError::BadPath {
            path: path.to_string(),
            reason: "a layer entry needs a non-empty path below `/`",
        });
    }
    Ok(parts.join("/"))
}

// === impl LayerBuilder ===

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, path: &str, kind: Kind, mode: u32) -> Result<&mut Self, BuildError> {
        let path = normalize(path)?;
        self.entries.insert(
            path,
            Entry {
                kind,
                mode,
                uid: 0,
                gid: 0,
            },
        );
        Ok(self)
    }

    /// A directory with permission bits `mode` (e.g. `0o755`, `0o1777`).
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<&mut Self, BuildError> {
        self.insert(path, Kind::Dir, mode)
    }

    /// A regular file with the given contents.
    pub fn file(
        &mut self,
        path: &str,
        mode: u32,
        contents: impl Into<Vec<u8>>,
    ) -> Result<&mut Self, BuildError> {
        self.insert(path, Kind::File(Source::Bytes(contents.into())), mode)
    }

    /// A regular file whose contents are read from `host` when the layer is built.
    pub fn host_file(
        &mut self,
        path: &str,
        mode: u32,
        host: impl Into<PathBuf>,
    ) -> Result<&mut Self, BuildError> {
        self.insert(path, Kind::File(Source::Host(host.into())), mode)
    }

    /// A symbolic link pointing at `target` (stored verbatim).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self, BuildError> {
        self.insert(path, Kind::Symlink(target.to_string()), 0o777)
    }

    /// Sets the owner of an entry added before.
    pub fn owner(&mut self, path: &str, uid: u64, gid: u64) -> Result<&mut Self, BuildError> {
        let key = normalize(path)?;
        let entry = self
            .entries
            .get_mut(&key)
            .ok_or_else(|| BuildError::BadPath {
                path: path.to_string(),
                reason: "owner() needs an entry added before",
            })?;
        entry.uid = uid;
        entry.gid = gid;
        Ok(self)
    }

    /// An OCI whiteout: deletes `path` of the layers below (`dir/.wh.name`).
    pub fn whiteout(&mut self, path: &str) -> Result<&mut Self, BuildError> {
        let key = normalize(path)?;
        let (parent, name) = match key.rsplit_once('/') {
            Some((parent, name)) => (format!("{parent}/"), name),
            None => (String::new(), key.as_str()),
        };
        let marker = format!("{parent}.wh.{name}");
        self.insert(&marker, Kind::File(Source::Bytes(Vec::new())), 0o644)
    }

    /// An OCI opaque whiteout: hides everything the layers below have inside directory `dir`
    /// (`dir/.wh..wh..opq`). The directory itself is added too.
    pub fn opaque(&mut self, dir: &str) -> Result<&mut Self, BuildError> {
        let key = normalize(dir)?;
        if !self.entries.contains_key(&key) {
            self.dir(&key, 0o755)?;
        }
        self.insert(
            &format!("{key}/.wh..wh..opq"),
            Kind::File(Source::Bytes(Vec::new())),
            0o644,
        )
    }

    /// Copies a host directory tree below `dest`, keeping the host's permission bits and
    /// symlinks; `keep` decides per host path (files and directories) whether it is copied.
    pub fn host_tree(
        &mut self,
        host: &Path,
        dest: &str,
        keep: &dyn Fn(&Path) -> bool,
    ) -> Result<&mut Self, BuildError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(host).map_err(|e| BuildError::host(host, e))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(host).map_err(|e| BuildError::host(host, e))?;
            return self.symlink(dest, &target.to_string_lossy());
        }
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            self.dir(dest, mode)?;
            let mut children: Vec<_> = std::fs::read_dir(host)
                .map_err(|e| BuildError::host(host, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| BuildError::host(host, e))?;
            children.sort_by_key(|c| c.file_name());
            for child in children {
                let path = child.path();
                if keep(&path) {
                    let name = child.file_name();
                    self.host_tree(&path, &format!("{dest}/{}", name.to_string_lossy()), keep)?;
                }
            }
            Ok(self)
        } else {
            self.host_file(dest, mode, host)
        }
    }

    /// Whether an entry exists at `path`.
    pub fn contains(&self, path: &str) -> bool {
        normalize(path).is_ok_and(|p| self.entries.contains_key(&p))
    }

    /// Writes the tar stream and gzips it.
    pub fn build(&self) -> Result<Layer, BuildError> {
        let mut entries = self.entries.clone();
        // Every parent directory gets its own entry so that unpackers never invent modes.
        for path in self.entries.keys() {
            let mut parent = path.as_str();
            while let Some((p, _)) = parent.rsplit_once('/') {
                entries.entry(p.to_string()).or_insert(Entry {
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                });
                parent = p;
            }
        }
        let mut tar = tar::Builder::new(Vec::new());
        let mut paths = Vec::with_capacity(entries.len());
        for (path, entry) in &entries {
            append(&mut tar, path, entry)?;
            paths.push(path.clone());
        }
        let tar = tar.into_inner().map_err(BuildError::Tar)?;
        let diff_id = sha256_digest(&tar);
        let mut gz = GzEncoder::new(Vec::new(), Compression::new(6));
        gz.write_all(&tar).map_err(BuildError::Tar)?;
        let blob = gz.finish().map_err(BuildError::Tar)?;
        Ok(Layer {
            digest: sha256_digest(&blob),
            blob,
            diff_id,
            paths,
        })
    }
}

fn append(tar: &mut tar::Builder<Vec<u8>>, path: &str, entry: &Entry) -> Result<(), BuildError> {
    let mut header = tar::Header::new_gnu();
    header.set_mtime(FIXED_MTIME);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mode(entry.mode);
    match &entry.kind {
        Kind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, format!("{path}/"), std::io::empty())
        }
        Kind::Symlink(target) => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            tar.append_link(&mut header, path, target)
        }
        Kind::File(source) => {
            let data = match source {
                Source::Bytes(b) => std::borrow::Cow::Borrowed(b.as_slice()),
                Source::Host(p) => {
                    std::borrow::Cow::Owned(std::fs::read(p).map_err(|e| BuildError::host(p, e))?)
                }
            };
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            tar.append_data(&mut header, path, &*data)
        }
    }
    .map_err(BuildError::Tar)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_tar(layer: &Layer) -> Vec<(String, tar::EntryType, u64, u32, Vec<u8>)> {
        use std::io::Read;
        let gz = flate2::read::GzDecoder::new(layer.blob.as_slice());
        let mut archive = tar::Archive::new(gz);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.entry_type(),
                    h.mtime().unwrap(),
                    h.mode().unwrap(),
                    data,
                )
            })
            .collect()
    }

    #[test]
    fn entries_are_sorted_with_parents_first_and_fixed_mtime() {
        let mut l = LayerBuilder::new();
        l.file("/z/file", 0o644, "z").unwrap();
        l.file("/a/b/c", 0o600, "c").unwrap();
        l.symlink("/bin/sh", "busybox").unwrap();
        let layer = l.build().unwrap();
        let entries = read_tar(&layer);
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["a/", "a/b/", "a/b/c", "bin/", "bin/sh", "z/", "z/file"]
        );
        assert!(entries.iter().all(|e| e.2 == FIXED_MTIME));
        assert_eq!(entries[2].3, 0o600);
        assert_eq!(entries[2].4, b"c");
        assert_eq!(entries[4].1, tar::EntryType::Symlink);
    }

    #[test]
    fn same_entries_give_same_digests_and_different_entries_differ() {
        let build = |content: &str| {
            let mut l = LayerBuilder::new();
            l.file("etc/motd", 0o644, content).unwrap();
            l.dir("tmp", 0o1777).unwrap();
            l.build().unwrap()
        };
        let (a, b, c) = (build("hi"), build("hi"), build("ho"));
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.diff_id, b.diff_id);
        assert_ne!(
            a.digest, c.digest,
            "negative control: content must change the digest"
        );
        assert_ne!(a.diff_id, a.digest);
        assert_eq!(a.digest, sha256_digest(&a.blob));
    }

    #[test]
    fn whiteouts_and_opaque_markers_use_oci_names() {
        let mut l = LayerBuilder::new();
        l.whiteout("/etc/old.conf").unwrap();
        l.whiteout("/toplevel").unwrap();
        l.opaque("/var/cache").unwrap();
        let layer = l.build().unwrap();
        let names: Vec<_> = read_tar(&layer).into_iter().map(|e| e.0).collect();
        assert!(names.contains(&"etc/.wh.old.conf".to_string()), "{names:?}");
        assert!(names.contains(&".wh.toplevel".to_string()), "{names:?}");
        assert!(
            names.contains(&"var/cache/.wh..wh..opq".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn bad_paths_are_rejected_with_the_path_named() {
        let err = LayerBuilder::new()
            .file("/etc/../../x", 0o644, "")
            .unwrap_err();
        assert!(err.to_string().contains("/etc/../../x"), "{err}");
        assert!(LayerBuilder::new().dir("/", 0o755).is_err());
        let err = LayerBuilder::new().owner("/nope", 1, 1).unwrap_err();
        assert!(err.to_string().contains("/nope"), "{err}");
    }

    #[test]
    fn long_paths_and_link_targets_survive() {
        let long = format!("/{}/file", "d".repeat(150));
        let target = "t".repeat(120);
        let mut l = LayerBuilder::new();
        l.file(&long, 0o644, "x").unwrap();
        l.symlink("/link", &target).unwrap();
        let layer = l.build().unwrap();
        let names: Vec<_> = read_tar(&layer).into_iter().map(|e| e.0).collect();
        assert!(names.contains(&long[1..].to_string()));
    }

    #[test]
    fn missing_host_file_names_the_path() {
        let mut l = LayerBuilder::new();
        l.host_file("/bin/x", 0o755, "/nonexistent/drover-fixture-binary")
            .unwrap();
        let err = l.build().unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent/drover-fixture-binary"),
            "{err}"
        );
    }
}
