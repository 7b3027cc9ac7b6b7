//! Reading OCI layouts back: resolve a tag, pick the host platform's manifest, and apply its
//! layers to a directory with OCI whiteout semantics. Meant for tests that `chroot` into an
//! image before a container runtime exists; not a hardened extractor for untrusted input
//! (fixtures are made here), though it refuses paths that leave the destination.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::BuildError;
use crate::layout::{Descriptor, INDEX_MEDIA_TYPE, Platform, REF_NAME, blob_path};

/// The descriptor `index.json` of `layout` has for `tag`.
pub fn resolve_tag(layout: &Path, tag: &str) -> Result<Descriptor, BuildError> {
    let index = read_json(&layout.join("index.json"))?;
    let entry = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"][REF_NAME] == tag)
        .ok_or_else(|| bad(layout, format!("no manifest tagged {tag:?} in index.json")))?;
    descriptor(layout, entry)
}

/// The image manifest (JSON) for `tag` and `platform`: the tagged manifest itself, or the
/// matching entry of a tagged index.
pub fn manifest_for(layout: &Path, tag: &str, platform: &Platform) -> Result<Value, BuildError> {
    let top = resolve_tag(layout, tag)?;
    let blob = read_json(&blob_path(layout, &top.digest))?;
    if top.media_type != INDEX_MEDIA_TYPE {
        return Ok(blob);
    }
    let entry = blob["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| {
            m["platform"]["os"] == platform.os.as_str()
                && m["platform"]["architecture"] == platform.architecture.as_str()
        })
        .ok_or_else(|| {
            bad(
                layout,
                format!(
                    "index for {tag:?} has no {}/{} manifest",
                    platform.os, platform.architecture
                ),
            )
        })?;
    let d = descriptor(layout, entry)?;
    read_json(&blob_path(layout, &d.digest))
}

/// The image config (JSON) for `tag` and `platform`.
pub fn config_for(layout: &Path, tag: &str, platform: &Platform) -> Result<Value, BuildError> {
    let manifest = manifest_for(layout, tag, platform)?;
    let digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| bad(layout, format!("manifest of {tag:?} has no config digest")))?;
    read_json(&blob_path(layout, digest))
}

/// Applies the layers of `tag` (host platform) to `dest`, bottom first. Whiteouts delete what
/// lower layers made; an opaque marker empties its directory of lower layers' entries. Owners
/// and modes are kept (run as root to keep owners).
pub fn unpack(layout: &Path, tag: &str, dest: &Path) -> Result<(), BuildError> {
    let manifest = manifest_for(layout, tag, &Platform::host())?;
    std::fs::create_dir_all(dest).map_err(|e| BuildError::out(dest, e))?;
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let d = descriptor(layout, layer)?;
        let blob = std::fs::read(blob_path(layout, &d.digest))
            .map_err(|e| BuildError::host(&blob_path(layout, &d.digest), e))?;
        apply_layer(&blob, dest).map_err(|e| match e {
            BuildError::Tar(io) => bad(layout, format!("layer {}: {io}", d.digest)),
            other => other,
        })?;
    }
    Ok(())
}

/// Applies one gzip layer blob to `dest`.
pub fn apply_layer(blob: &[u8], dest: &Path) -> Result<(), BuildError> {
    // Pass 1: whiteouts, so that they only hit what lower layers made.
    for entry in entries(blob)? {
        let (path, _) = entry?;
        let (parent, name) = split(&path);
        let dir = dest.join(parent);
        if name == ".wh..wh..opq" {
            if let Ok(children) = std::fs::read_dir(&dir) {
                for child in children.flatten() {
                    remove(&child.path())?;
                }
            }
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            remove(&dir.join(hidden))?;
        }
    }
    // Pass 2: everything else.
    let gz = flate2::read::GzDecoder::new(blob);
    let mut archive = tar::Archive::new(gz);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(crate::is_root());
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(BuildError::Tar)? {
        let mut entry = entry.map_err(BuildError::Tar)?;
        let path = entry.path().map_err(BuildError::Tar)?.into_owned();
        check_relative(&path)?;
        let (_, name) = split(&path);
        if name.starts_with(".wh.") {
            continue;
        }
        let target = dest.join(&path);
        // A lower layer's file where this layer wants a directory (or the reverse) goes away.
        if let Ok(meta) = std::fs::symlink_metadata(&target) {
            let is_dir = entry.header().entry_type().is_dir();
            if meta.is_dir() != is_dir || meta.file_type().is_symlink() {
                remove(&target)?;
            }
        }
        entry.unpack_in(dest).map_err(BuildError::Tar)?;
    }
    Ok(())
}

type Entries = Vec<Result<(PathBuf, u64), BuildError>>;

fn entries(blob: &[u8]) -> Result<Entries, BuildError> {
    let gz = flate2::read::GzDecoder::new(blob);
    let mut archive = tar::Archive::new(gz);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(BuildError::Tar)? {
        out.push(entry.map_err(BuildError::Tar).and_then(|mut e| {
            let path = e.path().map_err(BuildError::Tar)?.into_owned();
            check_relative(&path)?;
            let mut sink = std::io::sink();
            let n = std::io::copy(&mut e.by_ref().take(u64::MAX), &mut sink)
                .map_err(BuildError::Tar)?;
            Ok((path, n))
        }));
    }
    Ok(out)
}

fn check_relative(path: &Path) -> Result<(), BuildError> {
    if path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(())
    } else {
        Err(BuildError::BadPath {
            path: path.display().to_string(),
            reason: "a layer entry must stay inside the root",
        })
    }
}

fn split(path: &Path) -> (PathBuf, String) {
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (parent, name)
}

fn remove(path: &Path) -> Result<(), BuildError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| BuildError::out(path, e))
}

fn descriptor(layout: &Path, v: &Value) -> Result<Descriptor, BuildError> {
    let field = |name: &str| {
        v[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(layout, format!("descriptor without {name}: {v}")))
    };
    Ok(Descriptor {
        media_type: field("mediaType")?,
        digest: field("digest")?,
        size: v["size"]
            .as_u64()
            .ok_or_else(|| bad(layout, format!("descriptor without size: {v}")))?,
    })
}

/// Reads and parses a JSON file of a layout.
pub fn read_json(path: &Path) -> Result<Value, BuildError> {
    let bytes = std::fs::read(path).map_err(|e| BuildError::host(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("invalid JSON: {e}")))
}

fn bad(path: &Path, reason: String) -> BuildError {
    BuildError::BadLayout {
        path: path.to_path_buf(),
        reason,
    }
}
