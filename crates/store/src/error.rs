//! Store errors.

use crate::{KeyValue, Revision};

/// What can go wrong in a store call. Variants carry what the API server needs to answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `create` found the key already present.
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
        /// Its current value.
        current: Box<KeyValue>,
    },
    /// The key does not exist.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// A compare-and-swap saw a different `mod_revision`.
    #[error("key {key:?} was modified: expected revision {expected}, found {}", current.as_ref().map_or(0, |c| c.mod_revision))]
    Conflict {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The current value, if the key still exists.
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision has been compacted.
    #[error("required revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The compacted revision.
        compacted: Revision,
    },
    /// The requested revision is newer than the store's current one.
    #[error("required revision {requested} is a future revision (current is {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The current revision.
        current: Revision,
    },
    /// The disk is full; the write was not applied.
    #[error("no space left on device: {detail}")]
    NoSpace {
        /// Where and what.
        detail: String,
    },
    /// The store is closed or its worker died.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else from the backend (I/O, corruption).
    #[error("store backend error: {0}")]
    Backend(String),
}
