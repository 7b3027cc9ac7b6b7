//! The on-disk store: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) plus
//! unpacked layer snapshots keyed by chain ID.
//!
//! ```text
//! <root>/oci-layout, index.json     the images (one descriptor per name, ref.name annotation)
//! <root>/blobs/sha256/<hex>         content, only ever renamed in after its digest was verified
//! <root>/ingest/<hex>.partial       downloads in progress
//! <root>/snapshots/<chain-hex>/     one unpacked layer diff (an overlayfs lower dir)
//! <root>/snapshots/.tmp-…           snapshots being unpacked
//! <root>/leases/<name>              manifests kept alive by users (containers) besides names
//! <root>/locks/…                    flock files
//! ```
//!
//! Locking: writers (pull, import, tag) hold `locks/store` shared for their whole run; garbage
//! collection holds it exclusive, so it never sees a half-written image. Each blob and snapshot
//! has its own exclusive lock so two pulls of one image fetch and unpack each piece once; the
//! second waits and then finds it done. `index.json` is rewritten under `locks/index` by
//! write-to-temp + fsync + rename, so a reader sees the old or the new file, never a mix. An
//! image appears in `index.json` only after all its blobs and snapshots are in place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, chain_ids};
use crate::lock::FileLock;
use crate::oci::{self, Descriptor, DocKind, ImageConfig, Index, Manifest, Platform};
use crate::reference::Reference;
use crate::unpack::{UnpackError, open_layer, unpack_layer};

mod blob;
mod gc;

pub use blob::BlobWriter;
pub(crate) use blob::{atomic_write, sync_dir};

/// Annotation carrying the platform manifest chosen for a name (equal to the target for a
/// single-platform image).
pub const ANNOTATION_MANIFEST: &str = "io.drover.image.manifest";
/// Annotation carrying the config digest (the image ID).
pub const ANNOTATION_CONFIG: &str = "io.drover.image.config";

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// No image with that name or ID.
    #[error("image {0:?} not found in the local store (see `drover image ls`)")]
    NotFound(String),
    /// An image ID prefix matches several images.
    #[error("image ID prefix {0:?} is ambiguous; give more digits")]
    Ambiguous(String),
    /// Content does not match its digest or size.
    #[error(
        "{what}: expected digest {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes); the data was discarded"
    )]
    DigestMismatch {
        /// The content being checked.
        what: String,
        /// Expected digest.
        expected: Digest,
        /// Expected size (0 when unknown).
        expected_size: u64,
        /// Actual digest.
        actual: Digest,
        /// Actual size.
        actual_size: u64,
    },
    /// A document in the store cannot be parsed.
    #[error("{what} {digest} is not valid JSON of the expected shape: {reason}")]
    BadDocument {
        /// What kind of document.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// Parser message.
        reason: String,
    },
    /// A required blob is missing.
    #[error("blob {0} is missing from the store")]
    MissingBlob(Digest),
    /// A manifest names something Drover cannot use.
    #[error("{0}")]
    Unsupported(String),
    /// Unpacking a layer failed.
    #[error("unpacking layer {layer}: {source}")]
    Unpack {
        /// Layer digest.
        layer: Digest,
        /// Cause.
        source: UnpackError,
    },
}

/// Result alias of this module.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn ioe<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// One named image in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    /// Full reference (`docker.io/library/nginx:1.27-alpine`).
    pub name: String,
    /// The descriptor the name points at (an index or a manifest): what a registry serves.
    pub target: Descriptor,
    /// The platform manifest used to run the image.
    pub manifest: Digest,
    /// The config digest: the image ID.
    pub config: Digest,
}

impl ImageRecord {
    /// Parses the record's name back into a reference.
    pub fn reference(&self) -> Option<Reference> {
        self.name.parse().ok()
    }
}

/// The ordered overlayfs lower directories of an image (topmost layer first, as the
/// `lowerdir=` mount option wants them).
#[derive(Debug, Clone, PartialEq)]
pub struct MountPlan {
    /// Lower directories, topmost first.
    pub lowerdirs: Vec<PathBuf>,
}

/// What a garbage collection removed.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Blobs removed.
    pub blobs: usize,
    /// Snapshots removed.
    pub snapshots: usize,
    /// Leftovers of interrupted work removed (partial downloads, temporary snapshots).
    pub leftovers: usize,
    /// Bytes freed (blobs and partial downloads).
    pub bytes: u64,
}

/// A content-addressed image store in one directory, safe to share between processes.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// The shared (writer) or exclusive (GC) hold on a store.
#[derive(Debug)]
pub struct StoreGuard {
    _lock: FileLock,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for d in ["blobs/sha256", "ingest", "snapshots", "leases", "locks"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(ioe("creating", &p))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            atomic_write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            let _l =
                FileLock::exclusive(&root.join("locks/index")).map_err(ioe("locking", &root))?;
            if !index.exists() {
                atomic_write(&index, &index_bytes(&[])?)?;
            }
        }
        Ok(Store { root })
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the store's shared lock: held by every writer for the duration of its work.
    pub fn writer(&self) -> Result<StoreGuard> {
        let p = self.root.join("locks/store");
        Ok(StoreGuard {
            _lock: FileLock::shared(&p).map_err(ioe("locking", &p))?,
        })
    }

    fn exclusive(&self) -> Result<StoreGuard> {
        let p = self.root.join("locks/store");
        Ok(StoreGuard {
            _lock: FileLock::exclusive(&p).map_err(ioe("locking", &p))?,
        })
    }

    // === blobs ===

    /// Path of a blob (present or not).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Whether a blob is present.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Reads a whole blob (manifests, configs).
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        match fs::read(&p) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::MissingBlob(d.clone()))
            }
            Err(e) => Err(ioe("reading", &p)(e)),
        }
    }

    /// Starts writing a blob. Returns `None` when the blob is already present (checked after
    /// taking the blob's lock, so a concurrent writer of the same blob is waited for).
    /// Hold [`Store::writer`] from here until the blob is named (or leased), or a concurrent
    /// [`Store::gc`] may collect it.
    pub fn blob_writer(&self, expected: &Digest, size: Option<u64>) -> Result<Option<BlobWriter>> {
        let lp = self
            .root
            .join("locks")
            .join(format!("blob-{}", expected.hex()));
        let lock = FileLock::exclusive(&lp).map_err(ioe("locking", &lp))?;
        if self.has_blob(expected) {
            return Ok(None);
        }
        let tmp = self
            .root
            .join("ingest")
            .join(format!("{}.partial", expected.hex()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(ioe("creating", &tmp))?;
        Ok(Some(BlobWriter {
            file: Some(file),
            tmp,
            dest: self.blob_path(expected),
            hasher: Sha256::new(),
            count: 0,
            expected: expected.clone(),
            expected_size: size,
            what: format!("blob {expected}"),
            _lock: lock,
        }))
    }

    /// Stores `bytes`, verifying them against `expected` when given; returns their digest.
    pub fn put_blob(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let d = Digest::of(bytes);
        if let Some(e) = expected
            && *e != d
        {
            return Err(StoreError::DigestMismatch {
                what: "blob".into(),
                expected: e.clone(),
                expected_size: 0,
                actual: d,
                actual_size: bytes.len() as u64,
            });
        }
        if let Some(mut w) = self.blob_writer(&d, Some(bytes.len() as u64))? {
            w.write(bytes)?;
            w.commit()?;
        }
        Ok(d)
    }

    /// Copies a blob from a reader (import), verifying its digest and size.
    pub fn put_blob_from(
        &self,
        r: &mut dyn Read,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<()> {
        if let Some(mut w) = self.blob_writer(expected, size)? {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = r
                    .read(&mut buf)
                    .map_err(ioe("reading source of", &w.dest))?;
                if n == 0 {
                    break;
                }
                w.write(&buf[..n])?;
            }
            w.commit()?;
        }
        Ok(())
    }

    // === documents ===

    /// Reads and parses a manifest blob.
    pub fn manifest(&self, d: &Digest) -> Result<Manifest> {
        let b = self.read_blob(d)?;
        serde_json::from_slice(&b).map_err(|e| StoreError::BadDocument {
            what: "manifest",
            digest: d.clone(),
            reason: e.to_string(),
        })
    }

    /// Reads and parses an index blob.
    pub fn index(&self, d: &Digest) -> Result<Index> {
        let b = self.read_blob(d)?;
        serde_json::from_slice(&b).map_err(|e| StoreError::BadDocument {
            what: "index",
            digest: d.clone(),
            reason: e.to_string(),
        })
    }

    /// The OCI image config of an image (Entrypoint, Cmd, Env, WorkingDir, User, …).
    pub fn config(&self, image: &ImageRecord) -> Result<ImageConfig> {
        self.config_blob(&image.config)
    }

    pub(crate) fn config_blob(&self, d: &Digest) -> Result<ImageConfig> {
        let b = self.read_blob(d)?;
        serde_json::from_slice(&b).map_err(|e| StoreError::BadDocument {
            what: "image config",
            digest: d.clone(),
            reason: e.to_string(),
        })
    }

    /// Chooses the platform manifest of an index present in the store.
    pub fn select_manifest(&self, target: &Descriptor, platform: &Platform) -> Result<Digest> {
        let kind = oci::classify(Some(&target.media_type), &self.read_blob(&target.digest)?);
        match kind {
            DocKind::Manifest => Ok(target.digest.clone()),
            DocKind::Index => {
                let idx = self.index(&target.digest)?;
                select_platform(&idx, platform)
                    .map(|d| d.digest.clone())
                    .ok_or_else(|| StoreError::Unsupported(no_platform_msg(&idx, platform)))
            }
            DocKind::Schema1 => Err(StoreError::Unsupported(schema1_msg(
                &target.digest.to_string(),
            ))),
            DocKind::Unknown => Err(StoreError::Unsupported(format!(
                "{} is neither an image manifest nor an index (media type {:?})",
                target.digest, target.media_type
            ))),
        }
    }

    // === snapshots ===

    /// Path of a snapshot.
    pub fn snapshot_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain_id.hex())
    }

    /// Unpacks a layer into the snapshot of `chain_id` unless it exists. The layer blob must be
    /// in the store. The snapshot appears under its final name only when complete. Like blob
    /// writes, call it while holding [`Store::writer`].
    pub fn ensure_snapshot(
        &self,
        chain_id: &Digest,
        layer: &Descriptor,
        diff_id: &Digest,
    ) -> Result<PathBuf> {
        let dest = self.snapshot_path(chain_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        let lp = self
            .root
            .join("locks")
            .join(format!("snap-{}", chain_id.hex()));
        let _lock = FileLock::exclusive(&lp).map_err(ioe("locking", &lp))?;
        if dest.is_dir() {
            return Ok(dest);
        }
        // Leftovers of a writer that died while holding this lock.
        let prefix = format!(".tmp-{}-", chain_id.hex());
        let snaps = self.root.join("snapshots");
        for e in fs::read_dir(&snaps)
            .map_err(ioe("listing", &snaps))?
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let tmp = snaps.join(format!(
            "{prefix}{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir(&tmp).map_err(ioe("creating", &tmp))?;
        let res = (|| {
            let bp = self.blob_path(&layer.digest);
            let (f, comp) = open_layer(&bp).map_err(ioe("opening", &bp))?;
            unpack_layer(
                io::BufReader::with_capacity(1 << 20, f),
                comp,
                &tmp,
                Some(diff_id),
            )
            .map_err(|source| StoreError::Unpack {
                layer: layer.digest.clone(),
                source,
            })?;
            let d = File::open(&tmp).map_err(ioe("opening", &tmp))?;
            rustix::fs::syncfs(&d).map_err(|e| ioe("syncing", &tmp)(e.into()))?;
            fs::rename(&tmp, &dest).map_err(ioe("committing snapshot", &dest))
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res.map(|()| dest)
    }

    /// Chain IDs of an image's layers, base first.
    pub fn chain_ids(&self, image: &ImageRecord) -> Result<Vec<Digest>> {
        Ok(chain_ids(&self.config(image)?.rootfs.diff_ids))
    }

    /// The overlayfs lower directories of an image, topmost first. Every snapshot must exist
    /// (they do for every listed image).
    pub fn mount_plan(&self, image: &ImageRecord) -> Result<MountPlan> {
        let mut lowerdirs = Vec::new();
        for c in self.chain_ids(image)?.iter().rev() {
            let p = self.snapshot_path(c);
            if !p.is_dir() {
                return Err(StoreError::Unsupported(format!(
                    "snapshot {c} of image {} is missing; pull the image again",
                    image.name
                )));
            }
            lowerdirs.push(p);
        }
        Ok(MountPlan { lowerdirs })
    }

    /// Unpacks every layer of a manifest (present in the store) and returns the chain IDs.
    pub fn unpack_image(&self, manifest: &Digest) -> Result<Vec<Digest>> {
        let m = self.manifest(manifest)?;
        let cfg = self.config_blob(&m.config.digest)?;
        check_layers(&m, &cfg, manifest)?;
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        for ((layer, diff), chain) in m.layers.iter().zip(&cfg.rootfs.diff_ids).zip(&chains) {
            self.ensure_snapshot(chain, layer, diff)?;
        }
        Ok(chains)
    }

    // === names ===

    /// Every named image.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let p = self.root.join("index.json");
        let b = fs::read(&p).map_err(ioe("reading", &p))?;
        let idx: Index = serde_json::from_slice(&b).map_err(|e| StoreError::Io {
            op: "parsing",
            path: p.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        Ok(idx.manifests.into_iter().filter_map(record_of).collect())
    }

    /// Adds or replaces a name. All of the image's content must already be in the store.
    pub fn set_image(&self, rec: &ImageRecord) -> Result<()> {
        self.update_index(|list| {
            list.retain(|r| r.name != rec.name);
            list.push(rec.clone());
        })
    }

    /// Removes a name; returns whether it existed.
    pub fn remove_name(&self, name: &str) -> Result<bool> {
        let mut found = false;
        self.update_index(|list| {
            let before = list.len();
            list.retain(|r| r.name != name);
            found = list.len() != before;
        })?;
        Ok(found)
    }

    fn update_index(&self, f: impl FnOnce(&mut Vec<ImageRecord>)) -> Result<()> {
        let lp = self.root.join("locks/index");
        let _l = FileLock::exclusive(&lp).map_err(ioe("locking", &lp))?;
        // Renames of blobs and snapshots become durable before a name that refers to them.
        sync_dir(&self.root.join("blobs/sha256"))?;
        sync_dir(&self.root.join("snapshots"))?;
        let mut list = self.images()?;
        f(&mut list);
        list.sort_by(|a, b| a.name.cmp(&b.name));
        atomic_write(&self.root.join("index.json"), &index_bytes(&list)?)
    }

    /// Finds an image by reference (`nginx:1.27-alpine`, `name@sha256:…`) or by image ID
    /// (config digest, or a prefix of its hex of at least 4 digits).
    pub fn resolve(&self, s: &str) -> Result<ImageRecord> {
        let images = self.images()?;
        if let Ok(r) = s.parse::<Reference>() {
            let full = r.to_string();
            if let Some(rec) = images.iter().find(|i| i.name == full) {
                return Ok(rec.clone());
            }
            // `name@digest` also finds a tagged image with that manifest or index digest.
            if let Some(d) = &r.digest
                && let Some(rec) = images.iter().find(|i| {
                    i.name.starts_with(&format!("{}:", r.name()))
                        && (i.target.digest == *d || i.manifest == *d)
                })
            {
                return Ok(rec.clone());
            }
        }
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<&ImageRecord> = images
                .iter()
                .filter(|i| i.config.hex().starts_with(hex))
                .collect();
            let ids: BTreeSet<&Digest> = hits.iter().map(|i| &i.config).collect();
            match ids.len() {
                0 => {}
                1 => return Ok(hits[0].clone()),
                _ => return Err(StoreError::Ambiguous(s.to_owned())),
            }
        }
        Err(StoreError::NotFound(s.to_owned()))
    }

    // === leases ===

    /// Keeps an image's content alive under `name` (e.g. a container ID) even if its names
    /// are removed.
    pub fn add_lease(&self, name: &str, image: &ImageRecord) -> Result<()> {
        let p = self.lease_path(name)?;
        atomic_write(&p, image.manifest.as_str().as_bytes())
    }

    /// Drops a lease.
    pub fn remove_lease(&self, name: &str) -> Result<()> {
        let p = self.lease_path(name)?;
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ioe("removing", &p)(e)),
            _ => Ok(()),
        }
    }

    fn lease_path(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            || name.starts_with('.')
        {
            return Err(StoreError::Unsupported(format!(
                "invalid lease name {name:?}"
            )));
        }
        Ok(self.root.join("leases").join(name))
    }
}

/// Checks that a manifest's layers and its config's diff IDs line up and are unpackable.
pub(crate) fn check_layers(m: &Manifest, cfg: &ImageConfig, manifest: &Digest) -> Result<()> {
    if m.layers.len() != cfg.rootfs.diff_ids.len() {
        return Err(StoreError::Unsupported(format!(
            "manifest {manifest} has {} layers but its config lists {} diff IDs",
            m.layers.len(),
            cfg.rootfs.diff_ids.len()
        )));
    }
    for l in &m.layers {
        if !oci::is_layer_media_type(&l.media_type) {
            return Err(StoreError::Unsupported(format!(
                "manifest {manifest}: layer {} has media type {:?}, which is not an image layer",
                l.digest, l.media_type
            )));
        }
    }
    Ok(())
}

/// Picks the index entry for a platform.
pub fn select_platform<'a>(idx: &'a Index, p: &Platform) -> Option<&'a Descriptor> {
    let fits = |d: &&Descriptor| d.platform.as_ref().is_some_and(|dp| p.matches(dp));
    // Prefer an exact variant match, then any compatible one.
    idx.manifests
        .iter()
        .filter(fits)
        .find(|d| d.platform.as_ref().and_then(|x| x.variant.as_ref()) == p.variant.as_ref())
        .or_else(|| idx.manifests.iter().find(fits))
}

pub(crate) fn no_platform_msg(idx: &Index, p: &Platform) -> String {
    let have: Vec<String> = idx
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    format!(
        "no image for platform {p} in the index (it has: {})",
        have.join(", ")
    )
}

pub(crate) fn schema1_msg(what: &str) -> String {
    format!(
        "{what} is a Docker schema-1 manifest, which Drover does not support (deprecated since 2017); \
         re-push the image with a current client to get a schema-2 or OCI manifest"
    )
}

fn record_of(d: Descriptor) -> Option<ImageRecord> {
    let name = d.annotations.get(oci::ANNOTATION_REF_NAME)?.clone();
    let manifest = d
        .annotations
        .get(ANNOTATION_MANIFEST)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| d.digest.clone());
    let config = d.annotations.get(ANNOTATION_CONFIG)?.parse().ok()?;
    Some(ImageRecord {
        name,
        target: d,
        manifest,
        config,
    })
}

fn index_bytes(list: &[ImageRecord]) -> Result<Vec<u8>> {
    let manifests = list
        .iter()
        .map(|r| {
            let mut d = r.target.clone();
            let mut a = BTreeMap::new();
            a.insert(oci::ANNOTATION_REF_NAME.to_owned(), r.name.clone());
            a.insert(ANNOTATION_MANIFEST.to_owned(), r.manifest.to_string());
            a.insert(ANNOTATION_CONFIG.to_owned(), r.config.to_string());
            d.annotations = a;
            d
        })
        .collect();
    let idx = Index {
        schema_version: 2,
        media_type: Some(oci::MT_OCI_INDEX.to_owned()),
        manifests,
        annotations: BTreeMap::new(),
    };
    Ok(serde_json::to_vec_pretty(&idx).expect("index serializes"))
}
