//! Pushing an image from the store to a registry. Manifests are sent byte for byte, so the
//! pushed digest equals the stored one.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::auth;
use crate::digest::Digest;
use crate::mirrors::{Endpoint, RegistriesConfig};
use crate::oci::{self, DocKind};
use crate::pull::{PullError, stored_media_type};
use crate::reference::Reference;
use crate::registry::{Session, http_client};
use crate::store::{ImageRecord, Store, StoreError};

/// Settings of a push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Per-host TLS and credentials.
    pub registries: RegistriesConfig,
    /// Docker config file with credentials.
    pub docker_config: Option<PathBuf>,
    /// Blobs larger than this are uploaded in PATCH chunks of this size.
    pub chunk_size: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            registries: RegistriesConfig::default(),
            docker_config: auth::docker_config_path(),
            chunk_size: 8 << 20,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// Where it went.
    pub reference: String,
    /// Digest of the pushed top-level manifest or index.
    pub digest: Digest,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
}

/// Pushes the local image `source` to `dest` (default: the image's own name).
pub async fn push(
    store: &Store,
    source: &str,
    dest: Option<&str>,
    opts: &PushOptions,
) -> Result<PushReport, PullError> {
    let image = store.resolve(source)?;
    let dest: Reference = dest.unwrap_or(&image.name).parse()?;
    let ep = Endpoint::origin(&dest.registry);
    let creds = match opts.registries.credentials(&ep.host) {
        Some(c) => Some(c),
        None => match &opts.docker_config {
            Some(p) => auth::lookup(p, &dest.registry)?,
            None => None,
        },
    };
    let http = http_client(opts.registries.tls(&ep.host)).map_err(|reason| PullError::Invalid {
        reference: dest.to_string(),
        reason,
    })?;
    let session = Session::connect(http, ep, &dest.repository, creds, "pull,push").await?;
    let (manifests, top) = plan(store, &image)?;
    let mut rep = PushReport {
        reference: dest.to_string(),
        digest: top.clone(),
        uploaded: 0,
        skipped: 0,
    };
    for m in &manifests {
        let parsed = store.manifest(m)?;
        for b in std::iter::once(&parsed.config).chain(parsed.layers.iter()) {
            if session.has_blob(&b.digest).await? {
                rep.skipped += 1;
                continue;
            }
            let path = store.blob_path(&b.digest);
            let mut f = std::fs::File::open(&path).map_err(crate::store::ioe("opening", &path))?;
            session
                .upload_blob(&b.digest, b.size, opts.chunk_size, |off, n| {
                    f.seek(SeekFrom::Start(off))?;
                    let mut buf = vec![0; n];
                    f.read_exact(&mut buf)?;
                    Ok(buf)
                })
                .await?;
            rep.uploaded += 1;
        }
        if *m != top {
            let bytes = store.read_blob(m)?;
            session
                .put_manifest(m.as_str(), &bytes, &stored_media_type(&bytes))
                .await?;
        }
    }
    let bytes = store.read_blob(&top)?;
    let tag = dest.tag.clone().unwrap_or_else(|| top.to_string());
    session
        .put_manifest(&tag, &bytes, &stored_media_type(&bytes))
        .await?;
    Ok(rep)
}

/// The manifests to push and the top-level document: the whole index when every platform's
/// content is local, else just the platform manifest that was pulled.
pub(crate) fn plan(
    store: &Store,
    image: &ImageRecord,
) -> Result<(Vec<Digest>, Digest), StoreError> {
    let bytes = store.read_blob(&image.target.digest)?;
    if oci::classify(None, &bytes) == DocKind::Index {
        let idx = store.index(&image.target.digest)?;
        let mut all = Vec::new();
        let complete = idx.manifests.iter().all(|d| {
            all.push(d.digest.clone());
            store.manifest(&d.digest).is_ok_and(|m| {
                std::iter::once(&m.config)
                    .chain(m.layers.iter())
                    .all(|b| store.has_blob(&b.digest))
            })
        });
        if complete {
            return Ok((all, image.target.digest.clone()));
        }
    }
    Ok((vec![image.manifest.clone()], image.manifest.clone()))
}
