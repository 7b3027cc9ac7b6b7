//! Drover's datastore: a revisioned key-value store with etcd's contract.
//!
//! Every write gets the next value of one cluster-wide, strictly increasing *revision*. A key
//! remembers the revision that created it (`create_revision`) and the revision of its last write
//! (`mod_revision`); updates and deletes are compare-and-swap on `mod_revision`. Watches deliver
//! every change after a revision, in revision order, without gaps or duplicates, until the history
//! they need has been compacted away, in which case they end with [`Error::Compacted`].
//!
//! The API server is the only client. It maps `metadata.resourceVersion` to `mod_revision`.
//!
//! Backends are a closed set ([`AnyStore`]): [`MemStore`] for tests, [`SqliteStore`] as the
//! embedded default, and [`EtcdStore`] for an external etcd cluster. All of them pass the same
//! conformance suite ([`conformance`]).

mod any;
pub mod conformance;
pub mod dump;
mod error;
mod etcd;
mod mem;
mod sqlite;
mod types;
mod watch;

pub use any::AnyStore;
pub use error::Error;
pub use etcd::{EtcdConfig, EtcdStore};
pub use mem::{MemConfig, MemStore};
pub use sqlite::{SqliteConfig, SqliteStore};
pub use types::*;

/// The contract every backend fulfils. All methods are cancel-safe in the sense that a dropped
/// future either applied its write fully or not at all.
pub trait Store: Send + Sync + 'static {
    /// The current revision of the whole store (the revision of the last write, or 0 when empty
    /// — etcd starts at 1; callers never depend on the starting value).
    fn current_revision(&self) -> impl Future<Output = Result<Revision, Error>> + Send;

    /// Reads one key at the latest revision.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<KeyValue>, Error>> + Send;

    /// Reads the keys in `[req.start, req.end)` (see [`RangeRequest`]) at `req.revision` (0 =
    /// latest), in key order, at most `req.limit` of them (0 = no limit).
    ///
    /// Fails with [`Error::Compacted`] if `req.revision` is older than the compacted revision and
    /// with [`Error::FutureRevision`] if it is newer than the current one.
    fn range(&self, req: RangeRequest)
    -> impl Future<Output = Result<RangeResponse, Error>> + Send;

    /// Counts the keys with this prefix at the latest revision.
    fn count(&self, prefix: &str) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Creates `key` if it does not exist. Returns the new revision, or
    /// [`Error::AlreadyExists`] carrying the current value.
    fn create(
        &self,
        key: &str,
        value: Bytes,
    ) -> impl Future<Output = Result<Revision, Error>> + Send;

    /// Replaces `key` if its `mod_revision` equals `expected`. Returns the new revision, or
    /// [`Error::Conflict`] (carrying the current value, if any) or [`Error::NotFound`].
    fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
    ) -> impl Future<Output = Result<Revision, Error>> + Send;

    /// Deletes `key` if its `mod_revision` equals `expected` (0 = unconditionally). Returns the
    /// revision of the delete and the deleted value.
    fn delete(
        &self,
        key: &str,
        expected: Revision,
    ) -> impl Future<Output = Result<(Revision, KeyValue), Error>> + Send;

    /// Watches every key starting with `prefix` for changes *after* `after` (so `after` =
    /// the revision of a list means "everything since that list"). Events arrive in revision
    /// order, each exactly once. When the backend has nothing to send for a while it sends a
    /// progress notification (an empty batch whose `revision` tells how far the watch has seen).
    ///
    /// If `after` is older than the compacted revision the stream yields [`Error::Compacted`]
    /// and ends.
    fn watch(
        &self,
        prefix: &str,
        after: Revision,
    ) -> impl Future<Output = Result<WatchStream, Error>> + Send;

    /// Discards history before `revision` (values superseded or deleted before it). Reads and
    /// watches at older revisions then fail with [`Error::Compacted`].
    fn compact(&self, revision: Revision) -> impl Future<Output = Result<(), Error>> + Send;

    /// The revision below which history is gone (0 if nothing was ever compacted).
    fn compacted_revision(&self) -> impl Future<Output = Result<Revision, Error>> + Send;

    /// Counters for metrics and for the group-commit proof.
    fn stats(&self) -> StoreStats;
}
