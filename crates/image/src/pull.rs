//! Pulling an image from a registry (through its mirrors) into the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::Semaphore;

use crate::auth;
use crate::digest::{Digest, chain_ids};
use crate::mirrors::RegistriesConfig;
use crate::oci::{self, Descriptor, DocKind, ImageConfig, Index, Manifest, Platform};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::registry::{RegistryError, Session, http_client};
use crate::store::{
    ImageRecord, Store, StoreError, check_layers, no_platform_msg, schema1_msg, select_platform,
};

/// Fault injection for tests: when this variable is set, a pull names the image *before* its
/// layers are in place — the bug the crash test must catch (its negative control). Only debug
/// builds (the ones tests run) look at it; a release build has no such switch.
pub const FAULT_NAME_EARLY: &str = "DROVER_IMAGE_FAULT_NAME_EARLY";

/// When to contact a registry (`--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PullPolicy {
    /// Always resolve the reference at the registry (blobs already present are not fetched).
    #[default]
    Always,
    /// Only if the reference is not in the store.
    Missing,
    /// Never; fail if the reference is not in the store.
    Never,
}

/// Settings of a pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Mirrors and per-host settings.
    pub registries: RegistriesConfig,
    /// Whether to fall back to the origin registry after the mirrors.
    pub origin_fallback: bool,
    /// Platform to select from multi-platform indexes.
    pub platform: Platform,
    /// Docker config file with credentials (`None`: none).
    pub docker_config: Option<PathBuf>,
    /// Layers downloaded at once.
    pub concurrency: usize,
    /// Show a progress bar on stderr if it is a terminal.
    pub progress: bool,
    /// Pull policy.
    pub policy: PullPolicy,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            registries: RegistriesConfig::default(),
            origin_fallback: true,
            platform: Platform::host(),
            docker_config: auth::docker_config_path(),
            concurrency: 3,
            progress: false,
            policy: PullPolicy::Always,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The image now in the store.
    pub image: ImageRecord,
    /// Blobs downloaded (digests), in no particular order.
    pub fetched: Vec<Digest>,
    /// Bytes downloaded for blobs.
    pub fetched_bytes: u64,
    /// Blobs that were already present.
    pub present: usize,
    /// Where the image came from (empty when the registry was not contacted).
    pub source: String,
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Bad reference.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Talking to the registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// No endpoint had the image.
    #[error("image {reference} could not be pulled: {}", tried.join("; "))]
    NotFound {
        /// The reference.
        reference: String,
        /// Each endpoint tried and what it answered.
        tried: Vec<String>,
    },
    /// `--pull never` and the image is not local.
    #[error("image {0} is not in the local store and the pull policy is never")]
    NotLocal(String),
    /// The image uses something Drover does not support, or lies about its digests.
    #[error("image {reference}: {reason}")]
    Invalid {
        /// The reference.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// A bad credentials file.
    #[error(transparent)]
    AuthFile(#[from] auth::AuthFileError),
}

/// Pulls `reference` into `store` and returns the image and what was fetched.
pub async fn pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
) -> Result<PullReport, PullError> {
    let r: Reference = reference.parse()?;
    let full = r.to_string();
    if opts.policy != PullPolicy::Always || r.digest.is_some() {
        match store.resolve(&full) {
            Ok(image) => {
                let complete =
                    opts.policy != PullPolicy::Always || store.mount_plan(&image).is_ok();
                if complete {
                    return Ok(PullReport {
                        image,
                        fetched: vec![],
                        fetched_bytes: 0,
                        present: 0,
                        source: String::new(),
                    });
                }
            }
            Err(StoreError::NotFound(_)) if opts.policy == PullPolicy::Never => {
                return Err(PullError::NotLocal(full));
            }
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let endpoints = opts.registries.endpoints(&r.registry, opts.origin_fallback);
    if endpoints.is_empty() {
        return Err(PullError::NotFound {
            reference: full,
            tried: vec![format!(
                "no mirror is configured for {} and falling back to the origin registry is disabled",
                r.registry
            )],
        });
    }
    let mut tried = Vec::new();
    for ep in endpoints {
        let desc = ep.describe();
        let creds = match opts.registries.credentials(&ep.host) {
            Some(c) => Some(c),
            None => match &opts.docker_config {
                Some(p) => auth::lookup(p, if ep.mirror { &ep.host } else { &r.registry })?,
                None => None,
            },
        };
        let http =
            http_client(opts.registries.tls(&ep.host)).map_err(|reason| PullError::Invalid {
                reference: full.clone(),
                reason: format!("{desc}: {reason}"),
            })?;
        let session = match Session::connect(http, ep, &r.repository, creds, "pull").await {
            Ok(s) => s,
            Err(e) => {
                tried.push(e.to_string());
                continue;
            }
        };
        match session.manifest(&r.api_reference()).await {
            Ok((bytes, ct)) => match fetch_image(store, &r, session, bytes, ct, opts).await {
                // What this endpoint served was unusable (missing or corrupt blobs, a bad
                // manifest): the next endpoint may do better. Blobs already verified stay.
                Err(e @ (PullError::Registry(_) | PullError::Invalid { .. }))
                | Err(e @ PullError::Store(StoreError::DigestMismatch { .. })) => {
                    tried.push(e.to_string())
                }
                other => return other,
            },
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(PullError::NotFound {
        reference: full,
        tried,
    })
}

/// What a registry's answer resolves to: the platform manifest and config, verified.
struct Resolved {
    top: Vec<u8>,
    top_digest: Digest,
    top_media_type: String,
    /// The index bytes when `top` is an index.
    index: Option<Vec<u8>>,
    manifest_bytes: Vec<u8>,
    manifest_digest: Digest,
    manifest: Manifest,
    config_bytes: Vec<u8>,
    config: ImageConfig,
}

/// Verifies the top-level document, selects the platform manifest of an index and fetches and
/// checks the config.
async fn resolve(
    store: &Store,
    r: &Reference,
    session: &Session,
    top: Vec<u8>,
    ct: Option<String>,
    opts: &PullOptions,
) -> Result<Resolved, PullError> {
    let invalid = |reason: String| PullError::Invalid {
        reference: r.to_string(),
        reason,
    };
    let top_digest = Digest::of(&top);
    if let Some(d) = &r.digest
        && *d != top_digest
    {
        return Err(invalid(format!(
            "{} served a manifest hashing to {top_digest}, not {d}; refused",
            session.endpoint().describe()
        )));
    }
    let kind = oci::classify(ct.as_deref(), &top);
    let top_media_type = media_type_of(&top, ct.as_deref(), kind);
    let (manifest_bytes, manifest_digest, index) = match kind {
        DocKind::Schema1 => return Err(invalid(schema1_msg("the registry's manifest"))),
        DocKind::Unknown => {
            return Err(invalid(format!(
                "the registry sent an unknown manifest type {ct:?}"
            )));
        }
        DocKind::Manifest => (top.clone(), top_digest.clone(), None),
        DocKind::Index => {
            let idx: Index =
                serde_json::from_slice(&top).map_err(|e| invalid(format!("bad index: {e}")))?;
            let d = select_platform(&idx, &opts.platform)
                .ok_or_else(|| invalid(no_platform_msg(&idx, &opts.platform)))?;
            let (b, ct2) = session.manifest(d.digest.as_str()).await?;
            if Digest::of(&b) != d.digest {
                return Err(invalid(format!(
                    "platform manifest {} does not match its digest; refused",
                    d.digest
                )));
            }
            match oci::classify(ct2.as_deref(), &b) {
                DocKind::Manifest => {}
                DocKind::Schema1 => return Err(invalid(schema1_msg("the platform manifest"))),
                _ => {
                    return Err(invalid(format!(
                        "index entry {} is not an image manifest",
                        d.digest
                    )));
                }
            }
            (b, d.digest.clone(), Some(top.clone()))
        }
    };
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(format!("bad manifest {manifest_digest}: {e}")))?;
    let config_bytes = if store.has_blob(&manifest.config.digest) {
        store.read_blob(&manifest.config.digest)?
    } else {
        let resp = session.blob(&manifest.config.digest).await?;
        let b = resp
            .bytes()
            .await
            .map_err(|e| invalid(format!("reading config: {e}")))?;
        b.to_vec()
    };
    if Digest::of(&config_bytes) != manifest.config.digest {
        return Err(invalid(format!(
            "config blob does not match its digest {}; refused",
            manifest.config.digest
        )));
    }
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| invalid(format!("bad image config: {e}")))?;
    check_layers(&manifest, &config, &manifest_digest)?;
    Ok(Resolved {
        top,
        top_digest,
        top_media_type,
        index,
        manifest_bytes,
        manifest_digest,
        manifest,
        config_bytes,
        config,
    })
}

/// Stores everything an image needs and names it, holding the store's writer lock.
async fn fetch_image(
    store: &Store,
    r: &Reference,
    session: Session,
    top: Vec<u8>,
    ct: Option<String>,
    opts: &PullOptions,
) -> Result<PullReport, PullError> {
    let res = resolve(store, r, &session, top, ct, opts).await?;
    let st = store.clone();
    let guard = tokio::task::spawn_blocking(move || st.writer())
        .await
        .expect("lock task")?;
    let mut counts = Counts::default();
    let small = [
        (&res.config_bytes, &res.manifest.config.digest),
        (&res.manifest_bytes, &res.manifest_digest),
    ];
    for (bytes, d) in small {
        counts.put(store, bytes, d)?;
    }
    let image = ImageRecord {
        name: r.to_string(),
        target: Descriptor {
            media_type: res.top_media_type.clone(),
            digest: res.top_digest.clone(),
            size: res.top.len() as u64,
            platform: None,
            annotations: Default::default(),
        },
        manifest: res.manifest_digest.clone(),
        config: res.manifest.config.digest.clone(),
    };
    if cfg!(debug_assertions) && std::env::var_os(FAULT_NAME_EARLY).is_some() {
        // Deliberately broken variant for the crash test's negative control.
        store.set_image(&image)?;
    }
    let session = Arc::new(session);
    fetch_layers(store, &session, r, &res, opts, &mut counts).await?;
    if let Some(ib) = &res.index {
        counts.put(store, ib, &res.top_digest)?;
    }
    store.set_image(&image)?;
    drop(guard);
    Ok(PullReport {
        image,
        fetched: counts.fetched,
        fetched_bytes: counts.fetched_bytes,
        present: counts.present,
        source: session.endpoint().describe(),
    })
}

/// What was fetched and what was already there.
#[derive(Default)]
struct Counts {
    fetched: Vec<Digest>,
    fetched_bytes: u64,
    present: usize,
}

impl Counts {
    /// Stores a small verified document unless present.
    fn put(&mut self, store: &Store, bytes: &[u8], d: &Digest) -> Result<(), PullError> {
        if store.has_blob(d) {
            self.present += 1;
        } else {
            store.put_blob(bytes, Some(d))?;
            self.fetched.push(d.clone());
            self.fetched_bytes += bytes.len() as u64;
        }
        Ok(())
    }
}

/// Downloads (at most `opts.concurrency` at once) and unpacks every layer.
async fn fetch_layers(
    store: &Store,
    session: &Arc<Session>,
    r: &Reference,
    res: &Resolved,
    opts: &PullOptions,
    counts: &mut Counts,
) -> Result<(), PullError> {
    let layers = &res.manifest.layers;
    let (progress, ticker) = Progress::start(r.familiar(), opts.progress);
    progress
        .layers_total
        .store(layers.len() as u64, Ordering::Relaxed);
    let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let chains = chain_ids(&res.config.rootfs.diff_ids);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, layer) in layers.iter().enumerate() {
        let (store, session, sem, progress) = (
            store.clone(),
            session.clone(),
            sem.clone(),
            progress.clone(),
        );
        let (layer, diff, chain) = (
            layer.clone(),
            res.config.rootfs.diff_ids[i].clone(),
            chains[i].clone(),
        );
        let what = format!("layer {}/{} ({}) of {r}", i + 1, layers.len(), layer.digest);
        progress.total.fetch_add(layer.size, Ordering::Relaxed);
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            let got = fetch_blob(&store, &session, &layer, what, &progress).await?;
            let st = store.clone();
            tokio::task::spawn_blocking(move || st.ensure_snapshot(&chain, &layer, &diff))
                .await
                .expect("unpack task")?;
            progress.layers_done.fetch_add(1, Ordering::Relaxed);
            Ok::<_, PullError>(got)
        });
    }
    let mut first_err = None;
    while let Some(res) = tasks.join_next().await {
        match res.expect("layer task") {
            Ok(Some((d, n))) => {
                counts.fetched.push(d);
                counts.fetched_bytes += n;
            }
            Ok(None) => counts.present += 1,
            // The other layers finish (or fail) on their own: aborting would leave detached
            // unpack threads behind; every task cleans up after itself on error.
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    progress.finish(ticker).await;
    first_err.map_or(Ok(()), Err)
}

/// Downloads one blob unless present; returns its digest and size when it was fetched.
async fn fetch_blob(
    store: &Store,
    session: &Session,
    desc: &Descriptor,
    what: String,
    progress: &Progress,
) -> Result<Option<(Digest, u64)>, PullError> {
    let st = store.clone();
    let (d, size) = (desc.digest.clone(), desc.size);
    let writer = tokio::task::spawn_blocking(move || st.blob_writer(&d, Some(size)))
        .await
        .expect("lock task")?;
    let Some(mut w) = writer else {
        progress.done.fetch_add(desc.size, Ordering::Relaxed);
        return Ok(None);
    };
    w.describe(what.clone());
    let mut resp = session.blob(&desc.digest).await?;
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                w.write(&c)?;
                progress.done.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(RegistryError::Unreachable {
                    endpoint: session.endpoint().describe(),
                    reason: format!("downloading {what}: {e} (after {} bytes)", w.written()),
                }
                .into());
            }
        }
    }
    let n = w.written();
    tokio::task::spawn_blocking(move || w.commit())
        .await
        .expect("commit task")?;
    Ok(Some((desc.digest.clone(), n)))
}

fn media_type_of(bytes: &[u8], ct: Option<&str>, kind: DocKind) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct P {
        media_type: Option<String>,
    }
    if let Some(mt) = serde_json::from_slice::<P>(bytes)
        .ok()
        .and_then(|p| p.media_type)
    {
        return mt;
    }
    match (ct.map(|c| c.split(';').next().unwrap_or("").trim()), kind) {
        (Some(c), _) if c.starts_with("application/vnd.") => c.to_owned(),
        (_, DocKind::Index) => oci::MT_OCI_INDEX.to_owned(),
        _ => oci::MT_OCI_MANIFEST.to_owned(),
    }
}

/// Media type of a manifest-like blob already in the store.
pub(crate) fn stored_media_type(bytes: &[u8]) -> String {
    let kind = oci::classify(None, bytes);
    media_type_of(bytes, None, kind)
}

impl Store {
    /// Pulls `reference` (see [`pull`]) and returns the image ID (its config digest).
    pub async fn pull(
        &self,
        reference: &str,
        opts: &PullOptions,
    ) -> Result<crate::ImageId, PullError> {
        Ok(pull(self, reference, opts).await?.image.config)
    }
}
