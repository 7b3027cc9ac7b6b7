//! Test support (being written): fixture OCI images and a local registry in a test network
//! namespace.
