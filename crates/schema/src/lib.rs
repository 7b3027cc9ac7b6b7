//! OpenAPI schemas of every built-in kind, generated from the `k8s-openapi` types.
//!
//! - [`definitions`]: all OpenAPI definitions, named like upstream, built lazily once.
//! - `patch_meta` (crate-private table): merge keys, patch strategies and list types of every
//!   built-in list field; both the OpenAPI extensions and [`SchemaNode`]'s merge navigation come
//!   from it.
//! - [`v3_group_version`], [`builtin_docs`], [`v3_index`]: the `/openapi/v3` documents.
//! - [`v2_doc`], [`v2_document`]: the `/openapi/v2` document (Swagger 2.0, served as gnostic
//!   protobuf to kubectl), built from the same definitions.
//! - [`SchemaNode`]: walks a kind's schema (strategic merge patch, validation).
//! - [`unknown_fields`], [`type_errors`]: `fieldValidation=Strict|Warn` checks.

mod defs;
mod kinds;
mod node;
mod patch_meta;
mod v2;
mod v3;
mod validate;

pub use defs::{Definitions, definitions};
pub use node::SchemaNode;
pub use v2::{
    V2_PROTOBUF, V2_PROTOBUF_CONTENT_TYPE, V2Doc, V2Format, v2_doc, v2_document, v2_protobuf,
};
pub use v3::{
    CrdKind, GroupVersionDoc, builtin_doc, builtin_docs, crd_group_version, v3_group_version,
    v3_index,
};
pub use validate::{TypeError, type_errors, unknown_fields};
