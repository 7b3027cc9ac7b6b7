//! Drover's image store and registry client.
//!
//! The model: a [`Store`] is one directory in OCI image-layout form (content-addressed blobs
//! plus an `index.json` of names), and beside it the unpacked layers, one snapshot per layer
//! keyed by chain ID so every image and container sharing a layer prefix shares the files. A
//! runtime mounts an image as overlayfs over [`Store::mount_plan`]'s lower directories.
//!
//! Entry points: [`Store::open`], [`pull::pull`] (registry → store), [`push::push`],
//! [`archive::import`] / [`archive::export`], [`Store::resolve`], [`Store::config`],
//! [`Store::gc`]. Several processes may use one store at once: coordination is by file locks
//! (see `store`), and every step is crash safe (content is verified before it is renamed into
//! place; an image is named only once complete).

pub mod archive;
pub mod auth;
pub mod cli;
mod decompress;
pub mod digest;
mod lock;
pub mod mirrors;
pub mod oci;
mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use oci::{ContainerConfig, ImageConfig, Platform};
pub use pull::{PullOptions, PullPolicy, PullReport};
pub use reference::Reference;
pub use store::{GcReport, ImageRecord, MountPlan, Store, StoreError};

/// An image ID: the digest of its config, as Docker shows it.
pub type ImageId = Digest;
