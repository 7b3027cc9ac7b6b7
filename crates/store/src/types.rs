//! The values that cross the [`crate::Store`] interface.

pub use bytes::Bytes;

/// A position in the store's history. Strictly increasing, cluster-wide.
pub type Revision = i64;

/// One key's value at some revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (opaque bytes; the API server stores encoded objects).
    pub value: Bytes,
    /// The revision of the write that created this key (its latest incarnation).
    pub create_revision: Revision,
    /// The revision of the last write to this key.
    pub mod_revision: Revision,
}

/// A range read over `[start, end)`. An empty `end` reads the single key `start` (as in etcd);
/// [`RangeRequest::prefix`] builds a prefix read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    /// First key (inclusive).
    pub start: String,
    /// End key (exclusive); empty = only `start`. Use [`prefix_end`] for "every key with this
    /// prefix".
    pub end: String,
    /// Maximum number of keys to return; 0 = all.
    pub limit: u64,
    /// Revision to read at; 0 = latest.
    pub revision: Revision,
    /// When true, `count` in the response is not computed (it is the number of keys
    /// returned); `more` is still exact. Paginated readers set this: counting the rest of a
    /// large range on every page would make a full scan cost quadratic time.
    pub skip_count: bool,
}

impl RangeRequest {
    /// Every key that starts with `prefix`, at the latest revision.
    pub fn prefix(prefix: &str) -> Self {
        Self {
            start: prefix.to_owned(),
            end: prefix_end(prefix),
            limit: 0,
            revision: 0,
            skip_count: false,
        }
    }
}

/// The smallest key greater than every key that starts with `prefix` (etcd's `GetPrefixRangeEnd`).
pub fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).expect("ascii increment keeps utf-8");
        }
    }
    // Every byte was >= 0x7f: there is no end; use the largest key we ever store.
    "\u{10ffff}".to_owned()
}

/// The result of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// The keys, in key order.
    pub kvs: Vec<KeyValue>,
    /// True when `limit` cut the result short.
    pub more: bool,
    /// How many keys the range holds in all (ignoring `limit`).
    pub count: u64,
    /// The revision the read was served at.
    pub revision: Revision,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A key was created or updated. `prev` is the value before, if the key existed.
    Put {
        /// The new value.
        kv: KeyValue,
        /// The value it replaced.
        prev: Option<KeyValue>,
    },
    /// A key was deleted at `revision`. `prev` is the value it had.
    Delete {
        /// The revision of the delete.
        revision: Revision,
        /// The deleted value.
        prev: KeyValue,
    },
}

impl Event {
    /// The revision at which this event happened.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key this event is about.
    pub fn key(&self) -> &str {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// A batch delivered to a watcher: the events (possibly none, for a progress notification) and
/// the revision the watch has seen up to (inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchBatch {
    /// Events in revision order.
    pub events: Vec<Event>,
    /// Every change up to and including this revision has been delivered.
    pub revision: Revision,
}

/// The receiving end of a watch. Dropping it cancels the watch.
pub type WatchStream = tokio::sync::mpsc::Receiver<Result<WatchBatch, crate::Error>>;

/// Counters a backend keeps, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Write operations committed (creates, updates, deletes).
    pub commits: u64,
    /// Durable syncs to disk (0 for memory). With group commit, many commits share one.
    pub fsyncs: u64,
    /// Rows or entries of history currently kept.
    pub history_entries: u64,
    /// The compacted revision.
    pub compacted: Revision,
}
