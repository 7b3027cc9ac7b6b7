//! OCI image layouts: image configs, manifests, indexes and the `index.json` that names them.
//!
//! A [`LayoutWriter`] writes `oci-layout`, `blobs/sha256/<hex>` and, on
//! [`LayoutWriter::finish`], `index.json` with one entry per tag carrying the
//! `org.opencontainers.image.ref.name` annotation, so `skopeo copy oci:DIR:TAG …` finds it.
//! JSON is written with a fixed key order and no timestamps taken from the clock, so a fixture
//! has the same manifest digest on every run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::BuildError;
use crate::layer::{LAYER_MEDIA_TYPE, Layer, sha256_digest};

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The annotation that carries the tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The `created` time of every fixture config (fixed, for stable digests).
pub const CREATED: &str = "2024-01-01T00:00:00Z";

/// The platform an image is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v8` for arm64, usually absent otherwise.
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/<architecture>`.
    pub fn linux(architecture: &str) -> Self {
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: (architecture == "arm64").then(|| "v8".to_string()),
        }
    }

    /// The platform of the machine running this code (amd64 or arm64 naming).
    pub fn host() -> Self {
        Self::linux(match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        })
    }

    fn to_json(&self) -> Value {
        let mut v = json!({ "architecture": self.architecture, "os": self.os });
        if let Some(variant) = &self.variant {
            v["variant"] = json!(variant);
        }
        v
    }
}

/// A Docker-style health check in the image config (`config.Healthcheck`).
#[derive(Clone, Debug)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Nanoseconds between checks.
    pub interval_ns: u64,
    /// Nanoseconds before a check counts as failed.
    pub timeout_ns: u64,
    /// Nanoseconds of start-up grace.
    pub start_period_ns: u64,
    /// Consecutive failures before unhealthy.
    pub retries: u32,
}

/// The runtime part of an image config (`config` in the OCI image config).
#[derive(Clone, Debug, Default)]
pub struct ImageConfig {
    /// `User`: `name`, `uid`, `uid:gid` or `name:group`.
    pub user: Option<String>,
    /// `Env`: `KEY=value` entries.
    pub env: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `ExposedPorts` keys such as `80/tcp`.
    pub exposed_ports: Vec<String>,
    /// `Volumes` paths.
    pub volumes: Vec<String>,
    /// `StopSignal`, e.g. `SIGQUIT`.
    pub stop_signal: Option<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `Healthcheck` (a Docker extension that the OCI spec leaves out; Docker and podman read it).
    pub healthcheck: Option<Healthcheck>,
}

impl ImageConfig {
    fn to_json(&self) -> Value {
        let mut c = serde_json::Map::new();
        let strings = |v: &[String]| json!(v);
        if let Some(user) = &self.user {
            c.insert("User".into(), json!(user));
        }
        if !self.exposed_ports.is_empty() {
            let ports: serde_json::Map<_, _> = self
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            c.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if !self.env.is_empty() {
            c.insert("Env".into(), strings(&self.env));
        }
        if let Some(ep) = &self.entrypoint {
            c.insert("Entrypoint".into(), strings(ep));
        }
        if let Some(cmd) = &self.cmd {
            c.insert("Cmd".into(), strings(cmd));
        }
        if !self.volumes.is_empty() {
            let vols: serde_json::Map<_, _> = self
                .volumes
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            c.insert("Volumes".into(), Value::Object(vols));
        }
        if let Some(wd) = &self.working_dir {
            c.insert("WorkingDir".into(), json!(wd));
        }
        if !self.labels.is_empty() {
            c.insert("Labels".into(), json!(self.labels));
        }
        if let Some(sig) = &self.stop_signal {
            c.insert("StopSignal".into(), json!(sig));
        }
        if let Some(h) = &self.healthcheck {
            c.insert(
                "Healthcheck".into(),
                json!({
                    "Test": h.test,
                    "Interval": h.interval_ns,
                    "Timeout": h.timeout_ns,
                    "StartPeriod": h.start_period_ns,
                    "Retries": h.retries,
                }),
            );
        }
        Value::Object(c)
    }
}

/// One single-platform image: its layers (bottom first) and config.
#[derive(Clone, Debug)]
pub struct Image {
    /// The platform recorded in the config (and in an index entry).
    pub platform: Platform,
    /// Runtime config.
    pub config: ImageConfig,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
    /// One `history` comment per layer (`created_by`), same length as `layers`.
    pub history: Vec<String>,
}

impl Image {
    /// The config blob (JSON bytes) of this image.
    pub fn config_blob(&self) -> Vec<u8> {
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|h| json!({ "created": CREATED, "created_by": h }))
            .collect();
        let mut v = json!({
            "created": CREATED,
            "architecture": self.platform.architecture,
            "os": self.platform.os,
        });
        if let Some(variant) = &self.platform.variant {
            v["variant"] = json!(variant);
        }
        v["config"] = self.config.to_json();
        v["rootfs"] = json!({
            "type": "layers",
            "diff_ids": self.layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>(),
        });
        v["history"] = Value::Array(history);
        to_bytes(&v)
    }
}

/// What a tag points at.
#[derive(Clone, Debug)]
pub enum Content {
    /// A single-platform image manifest.
    Image(Box<Image>),
    /// An image index with one manifest per platform.
    Index(Vec<Image>),
}

/// A descriptor as written into a manifest or index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type of the blob.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// What [`LayoutWriter::add`] wrote for one tag.
#[derive(Clone, Debug)]
pub struct Written {
    /// The tag (`org.opencontainers.image.ref.name`).
    pub tag: String,
    /// The manifest or index `index.json` points at.
    pub top: Descriptor,
    /// Per platform: the manifest, its config and its layers.
    pub manifests: Vec<WrittenManifest>,
}

/// One image manifest written into a layout.
#[derive(Clone, Debug)]
pub struct WrittenManifest {
    /// The platform.
    pub platform: Platform,
    /// The manifest blob.
    pub manifest: Descriptor,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
    /// The layers' diff IDs, bottom first.
    pub diff_ids: Vec<String>,
}

/// Writes an OCI image layout directory.
#[derive(Debug)]
pub struct LayoutWriter {
    dir: PathBuf,
    index: Vec<Value>,
    written: Vec<Written>,
}

impl LayoutWriter {
    /// Creates `dir` (which must not exist or be empty) with its `oci-layout` file.
    pub fn create(dir: &Path) -> Result<Self, BuildError> {
        if dir.exists() {
            let mut it = std::fs::read_dir(dir).map_err(|e| BuildError::out(dir, e))?;
            if it.next().is_some() {
                return Err(BuildError::OutNotEmpty(dir.to_path_buf()));
            }
        }
        std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| BuildError::out(dir, e))?;
        write(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            index: Vec::new(),
            written: Vec::new(),
        })
    }

    /// Writes a blob (once per digest) and returns its descriptor.
    pub fn blob(&mut self, media_type: &str, bytes: &[u8]) -> Result<Descriptor, BuildError> {
        let digest = sha256_digest(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            write(&path, bytes)?;
        }
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest,
            size: bytes.len() as u64,
        })
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.dir, digest)
    }

    fn image(&mut self, image: &Image) -> Result<WrittenManifest, BuildError> {
        if image.history.len() != image.layers.len() {
            return Err(BuildError::Inconsistent(format!(
                "{} history entries for {} layers",
                image.history.len(),
                image.layers.len()
            )));
        }
        let config = self.blob(CONFIG_MEDIA_TYPE, &image.config_blob())?;
        let mut layers = Vec::new();
        for layer in &image.layers {
            layers.push(self.blob(LAYER_MEDIA_TYPE, &layer.blob)?);
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": descriptor_json(&config),
            "layers": layers.iter().map(descriptor_json).collect::<Vec<_>>(),
        });
        let manifest = self.blob(MANIFEST_MEDIA_TYPE, &to_bytes(&manifest))?;
        Ok(WrittenManifest {
            platform: image.platform.clone(),
            manifest,
            config,
            layers,
            diff_ids: image.layers.iter().map(|l| l.diff_id.clone()).collect(),
        })
    }

    /// Writes `content` and records `tag` for `index.json`.
    pub fn add(&mut self, tag: &str, content: &Content) -> Result<Written, BuildError> {
        if tag.is_empty() || self.written.iter().any(|w| w.tag == tag) {
            return Err(BuildError::Inconsistent(format!(
                "tag {tag:?} is empty or already in layout {}",
                self.dir.display()
            )));
        }
        let (top, manifests) = match content {
            Content::Image(image) => {
                let m = self.image(image)?;
                (m.manifest.clone(), vec![m])
            }
            Content::Index(images) => {
                let mut manifests = Vec::new();
                for image in images {
                    manifests.push(self.image(image)?);
                }
                let index = json!({
                    "schemaVersion": 2,
                    "mediaType": INDEX_MEDIA_TYPE,
                    "manifests": manifests.iter().map(|m| {
                        let mut d = descriptor_json(&m.manifest);
                        d["platform"] = m.platform.to_json();
                        d
                    }).collect::<Vec<_>>(),
                });
                (self.blob(INDEX_MEDIA_TYPE, &to_bytes(&index))?, manifests)
            }
        };
        let mut entry = descriptor_json(&top);
        entry["annotations"] = json!({ REF_NAME: tag });
        self.index.push(entry);
        let written = Written {
            tag: tag.to_string(),
            top,
            manifests,
        };
        self.written.push(written.clone());
        Ok(written)
    }

    /// Writes `index.json` and returns what was written, in the order added.
    pub fn finish(self) -> Result<Vec<Written>, BuildError> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": self.index,
        });
        write(&self.dir.join("index.json"), &to_bytes(&index))?;
        Ok(self.written)
    }
}

/// Path of blob `digest` (`sha256:<hex>`) inside layout `dir`.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    dir.join("blobs").join(alg).join(hex)
}

fn descriptor_json(d: &Descriptor) -> Value {
    json!({ "mediaType": d.media_type, "digest": d.digest, "size": d.size })
}

fn to_bytes(v: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail (string keys only).
    serde_json::to_vec(v).unwrap_or_default()
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    std::fs::write(path, bytes).map_err(|e| BuildError::out(path, e))
}
