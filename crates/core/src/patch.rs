//! The three patch formats of `kubectl patch` and the API server's PATCH verb:
//!
//! - [`merge_patch`]: JSON merge patch (RFC 7386, `application/merge-patch+json`).
//! - [`json_patch`]: JSON patch (RFC 6902, `application/json-patch+json`), atomic.
//! - [`strategic_merge`]: strategic merge patch
//!   (`application/strategic-merge-patch+json`), with upstream's
//!   `strategicpatch.StrategicMergePatch` semantics, driven by a [`MergeSchema`] that says
//!   which lists merge by which key.
//!
//! All three operate on `serde_json::Value` documents and never do IO.
//!
//! ```
//! use drover_core::patch::{merge_patch, NoSchema, strategic_merge};
//! use serde_json::json;
//!
//! let mut doc = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
//! merge_patch(&mut doc, &json!({"metadata": {"labels": {"tier": null}}}));
//! assert_eq!(doc, json!({"metadata": {"labels": {"app": "web"}}}));
//!
//! // Without a schema, a strategic merge patch merges maps and replaces lists.
//! let out = strategic_merge(&doc, &json!({"spec": {"ports": [80]}}), None::<&NoSchema>).unwrap();
//! assert_eq!(out["spec"]["ports"], json!([80]));
//! ```

mod json_patch;
mod merge;
mod path;
mod strategic;

use serde_json::Value;

pub use json_patch::{MAX_COPIED_BYTES, json_patch};
pub use merge::merge_patch;
pub use strategic::{MergeSchema, NoSchema, PatchStrategy, strategic_merge};

/// Why a patch could not be applied. Locations are JSON pointers for JSON patch
/// (`/spec/containers/0`) and dotted paths for strategic merge patch
/// (`.spec.containers[0]`, `.` for the top level).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    // --- JSON patch (RFC 6902) ---
    /// The JSON patch document is not a list of operations.
    #[error("a JSON patch must be a list of operations, not {found}")]
    NotAnOperationList {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// An operation is malformed (not an object, unknown `op`, missing `path`, `from` or
    /// `value`, or a pointer that does not start with `/`).
    #[error("JSON patch operation {index}: {reason}")]
    InvalidOperation {
        /// Position of the operation in the patch, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An operation refers to a location that does not exist or cannot be addressed.
    #[error("JSON patch operation {index} ({op} {pointer:?}): {reason}")]
    PathNotFound {
        /// Position of the operation in the patch, from 0.
        index: usize,
        /// The operation (`add`, `remove`, …).
        op: String,
        /// The pointer (`path`, or `from` for move and copy) that could not be resolved.
        pointer: String,
        /// Which part is missing or why it cannot be addressed.
        reason: String,
    },
    /// `move` into a location inside the value being moved.
    #[error(
        "JSON patch operation {index} (move): cannot move {from:?} into its own child {path:?}"
    )]
    MoveIntoChild {
        /// Position of the operation in the patch, from 0.
        index: usize,
        /// The `from` pointer.
        from: String,
        /// The `path` pointer.
        path: String,
    },
    /// `copy` operations together copied more than [`MAX_COPIED_BYTES`]: each copy can
    /// double the document, so a short patch could otherwise build an enormous one.
    #[error(
        "JSON patch operation {index} (copy): the patch copies more than {limit} bytes in total"
    )]
    CopyTooLarge {
        /// Position of the operation in the patch, from 0.
        index: usize,
        /// The limit, [`MAX_COPIED_BYTES`].
        limit: usize,
    },
    /// A `test` operation found a different value.
    #[error("JSON patch operation {index} (test {path:?}) failed: found {}, expected {expected}", .found.as_deref().unwrap_or("nothing"))]
    TestFailed {
        /// Position of the operation in the patch, from 0.
        index: usize,
        /// The tested pointer.
        path: String,
        /// The value the operation expected, as JSON.
        expected: String,
        /// The value found, as JSON (`None` when the location does not exist).
        found: Option<String>,
    },

    // --- strategic merge patch ---
    /// The original document or the patch is not a JSON object.
    #[error("strategic merge patch: the {what} must be a JSON object, not {found}")]
    NotAnObject {
        /// `"original"` or `"patch"`.
        what: &'static str,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A `$patch` directive other than `replace` or `delete` (or `merge`, which lists
    /// do not support yet).
    #[error(
        "strategic merge patch: {path}: unknown patch type {value} (use \"replace\" or \"delete\")"
    )]
    UnknownPatchType {
        /// Where the directive is.
        path: String,
        /// The directive's value, as JSON.
        value: String,
    },
    /// A `$`-prefixed key that is neither a directive nor a field of the schema.
    #[error("strategic merge patch: {path}: unknown directive {key:?}")]
    UnknownDirective {
        /// The map holding the key.
        path: String,
        /// The key.
        key: String,
    },
    /// A directive whose value or key has the wrong shape.
    #[error("strategic merge patch: {path}: invalid {directive}: {reason}")]
    InvalidDirective {
        /// The map holding the directive.
        path: String,
        /// The directive key as written.
        directive: String,
        /// What is wrong.
        reason: String,
    },
    /// A field set by the patch is missing from that map's `$retainKeys` list.
    #[error("strategic merge patch: {path}: field {field:?} is set but not listed in $retainKeys")]
    NotInRetainKeys {
        /// The map holding the directive.
        path: String,
        /// The field.
        field: String,
    },
    /// An element of a list merged by key does not carry the key.
    #[error(
        "strategic merge patch: {path}: element {element} does not contain declared merge key {merge_key:?}"
    )]
    MissingMergeKey {
        /// The list.
        path: String,
        /// The merge key.
        merge_key: String,
        /// The element, as JSON.
        element: String,
    },
    /// A list to merge has a value that does not fit it (a primitive among objects, a list
    /// of lists, or objects in a list with no merge key).
    #[error("strategic merge patch: {path}: {reason}")]
    InvalidList {
        /// The list.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The elements of a list patch are not in the order its `$setElementOrder` gives.
    #[error(
        "strategic merge patch: {path}: the order of the elements in the patch list doesn't match its $setElementOrder list"
    )]
    SetElementOrderMismatch {
        /// The list.
        path: String,
    },
}

/// The JSON type of `v`, with an article, for error messages.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Removes `null` members from objects, recursively (also inside lists; `null` list
/// elements stay). A value a patch introduces never stores explicit nulls.
fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}
