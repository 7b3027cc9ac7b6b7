//! Drover's image store (being written): content-addressed blobs in OCI image layout, layer
//! snapshots keyed by chain ID, a registry client, import and export.

pub mod cli;
