//! Reading OCI layouts back: resolve a tag, pick the host platform's manifest, and apply its
//! layers to a directory with OCI whiteout semantics. Meant for tests that `chroot` into an
//! image before a container runtime exists; not a hardened extractor for untrusted input
//! (fixtures are made here), though it refuses paths that leave the destination.

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
    let real_dest = dest.canonicalize().map_err(|e| BuildError::out(dest, e))?;
    for path in entry_paths(blob)? {
        let (parent, name) = split(&path);
        let dir = dest.join(&parent);
        if !name.starts_with(".wh.") {
            continue;
        }
        // A lower layer's symlink must not lead a whiteout out of the root.
        match dir.canonicalize() {
            Ok(real) if real.starts_with(&real_dest) => {}
            Ok(_) => {
                return Err(BuildError::BadPath {
                    path: path.display().to_string(),
                    reason: "a whiteout's directory resolves outside the root",
                });
            }
            Err(_) => continue, // nothing there to delete
        }
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

/// The paths of a layer's entries, in order.
fn entry_paths(blob: &[u8]) -> Result<Vec<PathBuf>, BuildError> {
    let gz = flate2::read::GzDecoder::new(blob);
    let mut archive = tar::Archive::new(gz);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(BuildError::Tar)? {
        let path = entry
            .map_err(BuildError::Tar)?
            .path()
            .map_err(BuildError::Tar)?
            .into_owned();
        check_relative(&path)?;
        out.push(path);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::LayerBuilder;

    #[test]
    fn a_whiteout_through_a_symlink_out_of_the_root_is_refused_and_deletes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("precious"), "keep").unwrap();
        let root = tmp.path().join("root");
        let mut lower = LayerBuilder::new();
        lower
            .symlink("/escape", &outside.display().to_string())
            .unwrap();
        std::fs::create_dir(&root).unwrap();
        apply_layer(&lower.build().unwrap().blob, &root).unwrap();
        let mut upper = LayerBuilder::new();
        upper.whiteout("/escape/precious").unwrap();
        let err = apply_layer(&upper.build().unwrap().blob, &root).unwrap_err();
        assert!(err.to_string().contains("outside the root"), "{err}");
        assert_eq!(
            std::fs::read_to_string(outside.join("precious")).unwrap(),
            "keep"
        );

        // Control: the same whiteout inside the root deletes the file.
        let mut lower = LayerBuilder::new();
        lower.file("/inside/precious", 0o644, "x").unwrap();
        apply_layer(&lower.build().unwrap().blob, &root).unwrap();
        let mut upper = LayerBuilder::new();
        upper.whiteout("/inside/precious").unwrap();
        apply_layer(&upper.build().unwrap().blob, &root).unwrap();
        assert!(!root.join("inside/precious").exists());
    }
}
