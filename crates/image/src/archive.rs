//! Import and export of OCI image layouts (a directory or a tar of one) and docker-archive
//! tarballs (`docker save`: `manifest.json`, `repositories`, config and layer tars).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::digest::{Digest, HashingWriter};
use crate::oci::{self, Compression, Descriptor, DocKind, ImageConfig, Index, Manifest, Platform};
use crate::pull::stored_media_type;
use crate::reference::Reference;
use crate::store::{ImageRecord, Store, StoreError, check_layers, ioe, select_platform};

/// Why an import or export failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The input is not a usable archive; names the file and the problem.
    #[error("{path}: {reason}")]
    Bad {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading the images to export failed.
    #[error(transparent)]
    Export(StoreError),
    /// The store failed (a digest mismatch in the archive shows up here).
    #[error("{path}: {source}")]
    Store {
        /// The archive.
        path: PathBuf,
        /// Cause.
        source: StoreError,
    },
}

/// Archive formats for export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// OCI image layout in a tar.
    Oci,
    /// `docker save` format.
    Docker,
}

/// Imports every image of an OCI layout (dir or tar) or docker-archive tar. `name` names the
/// image when the archive has one image; it is required when the archive carries no full name.
pub fn import(
    store: &Store,
    path: &Path,
    name: Option<&str>,
    platform: &Platform,
) -> Result<Vec<ImageRecord>, ArchiveError> {
    let bad = |reason: String| ArchiveError::Bad {
        path: path.to_owned(),
        reason,
    };
    let st = |source| ArchiveError::Store {
        path: path.to_owned(),
        source,
    };
    let _guard = store.writer().map_err(st)?;
    let (dir, _tmp) = if path.is_dir() {
        (path.to_owned(), None)
    } else {
        let tmp = store.root().join("ingest").join(format!(
            "import-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let guard = TempDir(tmp.clone());
        fs::create_dir(&tmp).map_err(|e| bad(format!("creating {}: {e}", tmp.display())))?;
        let f = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        untar_plain(f, &tmp).map_err(|e| bad(format!("not a valid tar archive: {e}")))?;
        (tmp, Some(guard))
    };
    let recs = if dir.join("manifest.json").is_file() {
        import_docker(store, &dir, name).map_err(|e| relabel(e, path))?
    } else if dir.join("index.json").is_file() {
        import_oci(store, &dir, name, platform).map_err(|e| relabel(e, path))?
    } else {
        return Err(bad(
            "neither an OCI image layout (index.json) nor a docker archive (manifest.json)".into(),
        ));
    };
    for r in &recs {
        store.set_image(r).map_err(st)?;
    }
    Ok(recs)
}

fn relabel(e: ArchiveError, path: &Path) -> ArchiveError {
    match e {
        ArchiveError::Bad { reason, .. } => ArchiveError::Bad {
            path: path.to_owned(),
            reason,
        },
        ArchiveError::Store { source, .. } => ArchiveError::Store {
            path: path.to_owned(),
            source,
        },
        other => other,
    }
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Extracts only directories and regular files, refusing paths that leave `dest`.
fn untar_plain(r: impl Read, dest: &Path) -> io::Result<()> {
    let mut ar = tar::Archive::new(r);
    for e in ar.entries()? {
        let mut e = e?;
        let p = e.path()?.into_owned();
        let mut out = dest.to_path_buf();
        for c in p.components() {
            match c {
                Component::Normal(s) => out.push(s),
                Component::CurDir => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("entry {} leaves the archive", p.display()),
                    ));
                }
            }
        }
        match e.header().entry_type() {
            tar::EntryType::Directory => fs::create_dir_all(&out)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = out.parent() {
                    fs::create_dir_all(parent)?;
                }
                let mut f = File::create(&out)?;
                let n = io::copy(&mut e, &mut f)?;
                if n != e.header().size()? {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("entry {} is truncated", p.display()),
                    ));
                }
            }
            _ => {} // links and the like are not part of either format
        }
    }
    Ok(())
}

fn blob_file(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

fn copy_in(store: &Store, dir: &Path, d: &Digest, size: Option<u64>) -> Result<(), ArchiveError> {
    let p = blob_file(dir, d);
    let mut f = File::open(&p).map_err(|e| ArchiveError::Bad {
        path: dir.to_owned(),
        reason: format!("blob {d}: {e}"),
    })?;
    store
        .put_blob_from(&mut f, d, size)
        .map_err(|source| ArchiveError::Store {
            path: dir.to_owned(),
            source,
        })
}

fn import_oci(
    store: &Store,
    dir: &Path,
    name: Option<&str>,
    platform: &Platform,
) -> Result<Vec<ImageRecord>, ArchiveError> {
    let bad = |reason: String| ArchiveError::Bad {
        path: dir.to_owned(),
        reason,
    };
    let st = |source| ArchiveError::Store {
        path: dir.to_owned(),
        source,
    };
    let idx: Index = serde_json::from_slice(
        &fs::read(dir.join("index.json")).map_err(|e| bad(format!("index.json: {e}")))?,
    )
    .map_err(|e| bad(format!("index.json is not a valid OCI index: {e}")))?;
    if idx.manifests.is_empty() {
        return Err(bad("index.json lists no images".into()));
    }
    if name.is_some() && idx.manifests.len() > 1 {
        return Err(bad(format!(
            "the layout has {} images; a single name cannot be given",
            idx.manifests.len()
        )));
    }
    let mut out = Vec::new();
    for desc in &idx.manifests {
        let ann = desc
            .annotations
            .get(oci::ANNOTATION_REF_NAME)
            .or_else(|| desc.annotations.get("io.containerd.image.name"));
        let full = match (name, ann) {
            (Some(n), _) => n
                .parse::<Reference>()
                .map_err(|e| bad(e.to_string()))?
                .to_string(),
            (None, Some(a)) if a.contains('/') || a.contains(':') || a.contains('@') => a
                .parse::<Reference>()
                .map_err(|e| bad(format!("annotation {a:?}: {e}")))?
                .to_string(),
            (None, Some(a)) => {
                return Err(bad(format!(
                    "image {} is named only {a:?} (a tag); give a full name to import it as",
                    desc.digest
                )));
            }
            (None, None) => {
                return Err(bad(format!("image {} has no name; give one", desc.digest)));
            }
        };
        copy_in(store, dir, &desc.digest, Some(desc.size))?;
        let bytes = store.read_blob(&desc.digest).map_err(st)?;
        let manifest = match oci::classify(Some(&desc.media_type), &bytes) {
            DocKind::Manifest => desc.digest.clone(),
            DocKind::Index => {
                let sub = store.index(&desc.digest).map_err(st)?;
                // Copy every platform present in the layout; pick ours to unpack.
                for m in &sub.manifests {
                    if blob_file(dir, &m.digest).is_file() {
                        copy_manifest(store, dir, &m.digest, m.size)?;
                    }
                }
                let chosen = select_platform(&sub, platform)
                    .filter(|d| store.has_blob(&d.digest))
                    .ok_or_else(|| bad(crate::store::no_platform_msg(&sub, platform)))?;
                chosen.digest.clone()
            }
            _ => {
                return Err(bad(format!(
                    "{} is not an image manifest or index",
                    desc.digest
                )));
            }
        };
        copy_manifest(store, dir, &manifest, 0)?;
        store.unpack_image(&manifest).map_err(st)?;
        let m = store.manifest(&manifest).map_err(st)?;
        let mut target = desc.clone();
        target.annotations = BTreeMap::new();
        out.push(ImageRecord {
            name: full,
            target,
            manifest,
            config: m.config.digest,
        });
    }
    Ok(out)
}

fn copy_manifest(store: &Store, dir: &Path, d: &Digest, size: u64) -> Result<(), ArchiveError> {
    let st = |source| ArchiveError::Store {
        path: dir.to_owned(),
        source,
    };
    copy_in(store, dir, d, (size > 0).then_some(size))?;
    let m = store.manifest(d).map_err(st)?;
    for b in std::iter::once(&m.config).chain(m.layers.iter()) {
        copy_in(store, dir, &b.digest, Some(b.size))?;
    }
    Ok(())
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker(
    store: &Store,
    dir: &Path,
    name: Option<&str>,
) -> Result<Vec<ImageRecord>, ArchiveError> {
    let bad = |reason: String| ArchiveError::Bad {
        path: dir.to_owned(),
        reason,
    };
    let st = |source| ArchiveError::Store {
        path: dir.to_owned(),
        source,
    };
    let entries: Vec<DockerEntry> = serde_json::from_slice(
        &fs::read(dir.join("manifest.json")).map_err(|e| bad(format!("manifest.json: {e}")))?,
    )
    .map_err(|e| {
        bad(format!(
            "manifest.json is not a docker-archive manifest: {e}"
        ))
    })?;
    if entries.is_empty() {
        return Err(bad("manifest.json lists no images".into()));
    }
    if name.is_some() && entries.len() > 1 {
        return Err(bad(format!(
            "the archive has {} images; a single name cannot be given",
            entries.len()
        )));
    }
    let inside = |p: &str| -> Result<PathBuf, ArchiveError> {
        let rel = Path::new(p);
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(bad(format!("path {p:?} leaves the archive")));
        }
        Ok(dir.join(rel))
    };
    let mut out = Vec::new();
    for e in &entries {
        let cfg_bytes = fs::read(inside(&e.config)?)
            .map_err(|err| bad(format!("config {}: {err}", e.config)))?;
        let cfg: ImageConfig = serde_json::from_slice(&cfg_bytes)
            .map_err(|err| bad(format!("config {}: {err}", e.config)))?;
        if cfg.rootfs.diff_ids.len() != e.layers.len() {
            return Err(bad(format!(
                "config lists {} diff IDs but the entry has {} layers",
                cfg.rootfs.diff_ids.len(),
                e.layers.len()
            )));
        }
        let config_digest = store.put_blob(&cfg_bytes, None).map_err(st)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let p = inside(l)?;
            let mut f = File::open(&p).map_err(|err| bad(format!("layer {l}: {err}")))?;
            let mut head = [0u8; 4];
            let n = f
                .read(&mut head)
                .map_err(|err| bad(format!("layer {l}: {err}")))?;
            let mt = match Compression::sniff(&head[..n]) {
                Compression::None => oci::MT_OCI_LAYER,
                Compression::Gzip => oci::MT_OCI_LAYER_GZIP,
                Compression::Zstd => oci::MT_OCI_LAYER_ZSTD,
            };
            let mut f = File::open(&p).map_err(|err| bad(format!("layer {l}: {err}")))?;
            let mut h = HashingWriter::new(io::sink());
            io::copy(&mut f, &mut h).map_err(|err| bad(format!("layer {l}: {err}")))?;
            let d = Digest::from_hasher(h.hasher);
            let mut f = File::open(&p).map_err(|err| bad(format!("layer {l}: {err}")))?;
            store.put_blob_from(&mut f, &d, Some(h.count)).map_err(st)?;
            layers.push(Descriptor {
                media_type: mt.into(),
                digest: d,
                size: h.count,
                platform: None,
                annotations: BTreeMap::new(),
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::MT_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: oci::MT_OCI_CONFIG.into(),
                digest: config_digest.clone(),
                size: cfg_bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            layers,
            annotations: BTreeMap::new(),
        };
        let mbytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        let md = store.put_blob(&mbytes, None).map_err(st)?;
        check_layers(&manifest, &cfg, &md).map_err(st)?;
        store.unpack_image(&md).map_err(st)?;
        let names: Vec<String> = match (name, &e.repo_tags) {
            (Some(n), _) => vec![n.to_owned()],
            (None, Some(t)) if !t.is_empty() => t.clone(),
            _ => {
                return Err(bad(format!(
                    "image {} has no RepoTags; give a name",
                    e.config
                )));
            }
        };
        for n in names {
            let full = n
                .parse::<Reference>()
                .map_err(|err| bad(err.to_string()))?
                .to_string();
            let target = Descriptor {
                media_type: oci::MT_OCI_MANIFEST.into(),
                digest: md.clone(),
                size: mbytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            };
            out.push(ImageRecord {
                name: full,
                target,
                manifest: md.clone(),
                config: config_digest.clone(),
            });
        }
    }
    Ok(out)
}

/// Exports images as a tar in `format` to `out`.
pub fn export(
    store: &Store,
    images: &[String],
    format: Format,
    out: impl Write,
) -> Result<(), ArchiveError> {
    let path = PathBuf::from("the export archive");
    let st = |source| ArchiveError::Store {
        path: PathBuf::from("<export>"),
        source,
    };
    let recs: Vec<ImageRecord> = images
        .iter()
        .map(|i| store.resolve(i))
        .collect::<Result<_, _>>()
        .map_err(st)?;
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let werr = |e: io::Error| ArchiveError::Bad {
        path: path.clone(),
        reason: format!("writing the archive: {e}"),
    };
    let mut written = std::collections::HashSet::new();
    let add_blob = |tar: &mut tar::Builder<_>,
                    written: &mut std::collections::HashSet<Digest>,
                    d: &Digest|
     -> Result<(), ArchiveError> {
        if written.insert(d.clone()) {
            let p = store.blob_path(d);
            let mut f = File::open(&p).map_err(|e| st(ioe("opening", &p)(e)))?;
            tar.append_file(format!("blobs/sha256/{}", d.hex()), &mut f)
                .map_err(werr)?;
        }
        Ok(())
    };
    match format {
        Format::Oci => {
            let mut descs = Vec::new();
            for r in &recs {
                let (manifests, top) = crate::push::plan(store, r).map_err(st)?;
                for m in &manifests {
                    let parsed = store.manifest(m).map_err(st)?;
                    for b in std::iter::once(&parsed.config).chain(parsed.layers.iter()) {
                        add_blob(&mut tar, &mut written, &b.digest)?;
                    }
                    add_blob(&mut tar, &mut written, m)?;
                }
                add_blob(&mut tar, &mut written, &top)?;
                let bytes = store.read_blob(&top).map_err(st)?;
                let mut a = BTreeMap::new();
                a.insert(oci::ANNOTATION_REF_NAME.to_owned(), r.name.clone());
                descs.push(Descriptor {
                    media_type: stored_media_type(&bytes),
                    digest: top,
                    size: bytes.len() as u64,
                    platform: None,
                    annotations: a,
                });
            }
            let idx = Index {
                schema_version: 2,
                media_type: Some(oci::MT_OCI_INDEX.into()),
                manifests: descs,
                annotations: BTreeMap::new(),
            };
            append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(werr)?;
            append_bytes(
                &mut tar,
                "index.json",
                &serde_json::to_vec(&idx).expect("json"),
            )
            .map_err(werr)?;
        }
        Format::Docker => {
            let mut entries = Vec::new();
            let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            for r in &recs {
                let m = store.manifest(&r.manifest).map_err(st)?;
                let cfg = store.config(r).map_err(st)?;
                add_blob(&mut tar, &mut written, &r.config)?;
                let mut layers = Vec::new();
                for (l, diff) in m.layers.iter().zip(&cfg.rootfs.diff_ids) {
                    let name = format!("blobs/sha256/{}", diff.hex());
                    if written.insert(diff.clone()) {
                        append_uncompressed(store, &mut tar, l, diff, &name).map_err(werr)?;
                    }
                    layers.push(name);
                }
                let reference = r.reference();
                let tags: Vec<String> = reference
                    .iter()
                    .filter(|x| x.tag.is_some() && x.digest.is_none())
                    .map(Reference::familiar)
                    .collect();
                if let (Some(x), Some(top)) = (reference.as_ref(), cfg.rootfs.diff_ids.last())
                    && let Some(t) = &x.tag
                {
                    let repo = x.familiar();
                    let repo = repo
                        .rsplit_once(':')
                        .map(|(a, _)| a.to_owned())
                        .unwrap_or(repo);
                    repos
                        .entry(repo)
                        .or_default()
                        .insert(t.clone(), top.hex().to_owned());
                }
                entries.push(DockerEntry {
                    config: format!("blobs/sha256/{}", r.config.hex()),
                    repo_tags: Some(tags),
                    layers,
                });
            }
            append_bytes(
                &mut tar,
                "manifest.json",
                &serde_json::to_vec(&entries).expect("json"),
            )
            .map_err(werr)?;
            append_bytes(
                &mut tar,
                "repositories",
                &serde_json::to_vec(&repos).expect("json"),
            )
            .map_err(werr)?;
        }
    }
    tar.into_inner().and_then(|mut w| w.flush()).map_err(werr)?;
    Ok(())
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, bytes)
}

/// Writes a layer decompressed (docker-archive layers are plain tars named by diff ID).
fn append_uncompressed<W: Write>(
    store: &Store,
    tar: &mut tar::Builder<W>,
    l: &Descriptor,
    diff: &Digest,
    name: &str,
) -> io::Result<()> {
    let (f, comp) = crate::unpack::open_layer(&store.blob_path(&l.digest))?;
    if comp == Compression::None {
        let mut f = f;
        return tar.append_file(name, &mut f);
    }
    // The tar header needs the size first: measure by decompressing once, then stream again.
    let mut counter = HashingWriter::new(io::sink());
    io::copy(&mut crate::decompress::decompressor(comp, f)?, &mut counter)?;
    if Digest::from_hasher(counter.hasher) != *diff {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("layer {} does not match diff ID {diff}", l.digest),
        ));
    }
    let (f, _) = crate::unpack::open_layer(&store.blob_path(&l.digest))?;
    let mut h = tar::Header::new_ustar();
    h.set_size(counter.count);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, crate::decompress::decompressor(comp, f)?)
}
