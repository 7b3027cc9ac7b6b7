//! The watch cache: every object's encoded bytes plus a bounded window of recent events,
//! following the store through one watch. One writer task (the follower) applies store
//! events; readers clone `Arc`s under a short read lock.
//!
//! Lists are served from here after waiting until the cache has caught up with the store's
//! current revision (a consistent read without a store range), and watches are served from
//! the event window. A watch older than the window falls back to a store watch, so clients
//! only get 410 Gone when the store itself compacted their revision.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use drover_store::{AnyStore, Event, RangeRequest, Revision, Store};
use parking_lot::RwLock;
use tokio::sync::{broadcast, watch};

use crate::status::{ApiError, ApiResult};

/// The prefix of every object key.
pub(crate) const REGISTRY_PREFIX: &str = "/registry/";

/// How many events the window keeps (older watches fall back to the store).
const WINDOW: usize = 10_000;

/// One stored object as the cache holds it: its encoded bytes and revision.
///
/// The bytes are a boxed slice of exactly their length, owned by the entry alone: `Bytes`
/// would cost 16 bytes more per entry, and a `Bytes` the store also handed elsewhere (or that
/// a response cloned) carries a 32-byte shared header for as long as the cache holds it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) value: Box<[u8]>,
    pub(crate) mod_revision: Revision,
}

/// An entry's bytes as a `Bytes` owner (responses take objects without copying them).
struct EntryBytes(Arc<Entry>);

impl AsRef<[u8]> for EntryBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0.value
    }
}

impl Entry {
    /// An entry for a store value: reuses its buffer when the value is the only reference to
    /// it, copies it (to its exact length) otherwise.
    pub(crate) fn new(value: Bytes, mod_revision: Revision) -> Entry {
        Entry {
            value: Vec::from(value).into_boxed_slice(),
            mod_revision,
        }
    }

    /// The encoded object as `Bytes` for a response, without copying it (the `Bytes` keeps
    /// the entry alive and leaves it as it was).
    pub(crate) fn bytes(entry: &Arc<Entry>) -> Bytes {
        Bytes::from_owner(EntryBytes(Arc::clone(entry)))
    }
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Put,
    Delete,
}

/// One event in the window.
#[derive(Debug)]
pub(crate) struct CacheEvent {
    pub(crate) revision: Revision,
    pub(crate) key: Arc<str>,
    pub(crate) change: Change,
    /// The new value (for a delete: the last value).
    pub(crate) entry: Arc<Entry>,
    /// The previous value, if any (selectors need it to tell a key leaving a selection).
    pub(crate) prev: Option<Arc<Entry>>,
}

/// An event as live subscribers get it: the window's event plus what its watchers share (the
/// decoded object and encoded frames, computed once by the first watcher that needs them and
/// dropped with the last subscriber's copy, so the window never holds them).
pub(crate) struct LiveEvent {
    pub(crate) event: Arc<CacheEvent>,
    pub(crate) shared: crate::handlers::WatchShared,
}

impl LiveEvent {
    /// `event` with nothing computed yet (also how watchers replay the window's backlog).
    pub(crate) fn new(event: Arc<CacheEvent>) -> Arc<LiveEvent> {
        Arc::new(LiveEvent {
            event,
            shared: Default::default(),
        })
    }
}

struct Inner {
    objects: BTreeMap<Arc<str>, Arc<Entry>>,
    window: VecDeque<Arc<CacheEvent>>,
    /// Everything up to this revision is applied.
    revision: Revision,
    /// The window holds every object event after this revision.
    floor: Revision,
}

/// The cache. Cheap to share (`Arc`).
pub(crate) struct Cache {
    inner: RwLock<Inner>,
    revision_tx: watch::Sender<Revision>,
    events_tx: broadcast::Sender<Arc<LiveEvent>>,
    /// The decoded RBAC view, applied under the same lock as the objects it derives from.
    rbac: crate::rbac::Index,
}

/// A snapshot of some keys at one revision.
pub(crate) struct Snapshot {
    pub(crate) revision: Revision,
    pub(crate) items: Vec<(Arc<str>, Arc<Entry>)>,
}

/// A subscription: events after a revision, replayed from the window then live.
pub(crate) struct Subscription {
    pub(crate) backlog: Vec<Arc<CacheEvent>>,
    pub(crate) live: broadcast::Receiver<Arc<LiveEvent>>,
}

impl Cache {
    /// Loads every object and starts following the store. Returns once primed.
    pub(crate) async fn start(store: Arc<AnyStore>) -> Result<Arc<Cache>, drover_store::Error> {
        Ok(Self::start_with_follower(store).await?.0)
    }

    /// [`Cache::start`], also returning the follower task (the memory benchmark stops it to
    /// drop the cache).
    pub(crate) async fn start_with_follower(
        store: Arc<AnyStore>,
    ) -> Result<(Arc<Cache>, tokio::task::JoinHandle<()>), drover_store::Error> {
        let (revision_tx, _) = watch::channel(0);
        let (events_tx, _) = broadcast::channel(4096);
        let cache = Arc::new(Cache {
            inner: RwLock::new(Inner {
                objects: BTreeMap::new(),
                window: VecDeque::new(),
                revision: 0,
                floor: 0,
            }),
            revision_tx,
            events_tx,
            rbac: crate::rbac::Index::default(),
        });
        let start = cache.prime(&store).await?;
        let follower = Arc::clone(&cache);
        let task = tokio::spawn(async move { follower.follow(store, start).await });
        Ok((cache, task))
    }

    async fn prime(&self, store: &AnyStore) -> Result<Revision, drover_store::Error> {
        let resp = store.range(RangeRequest::prefix(REGISTRY_PREFIX)).await?;
        let mut inner = self.inner.write();
        inner.objects = resp
            .kvs
            .into_iter()
            .map(|kv| {
                (
                    Arc::from(kv.key.as_str()),
                    Arc::new(Entry::new(kv.value, kv.mod_revision)),
                )
            })
            .collect();
        self.rbac
            .rebuild(inner.objects.iter().map(|(k, e)| (k, e.value.as_ref())));
        inner.window.clear();
        inner.revision = resp.revision;
        inner.floor = resp.revision;
        drop(inner);
        self.revision_tx.send_replace(resp.revision);
        Ok(resp.revision)
    }

    /// Follows the whole keyspace (so revisions of non-object keys advance the cache too).
    async fn follow(self: Arc<Self>, store: Arc<AnyStore>, mut from: Revision) {
        loop {
            match store.watch("", from).await {
                Ok(mut stream) => {
                    while let Some(batch) = stream.recv().await {
                        match batch {
                            Ok(batch) => {
                                for ev in batch.events {
                                    self.apply(ev);
                                }
                                self.advance(batch.revision);
                                from = batch.revision;
                            }
                            Err(drover_store::Error::Compacted { .. }) => {
                                tracing::warn!("watch cache fell behind compaction; reloading");
                                match self.prime(&store).await {
                                    Ok(r) => from = r,
                                    Err(e) => tracing::error!("watch cache reload failed: {e}"),
                                }
                                break;
                            }
                            Err(e) => {
                                tracing::warn!("watch cache stream error: {e}");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!("watch cache cannot watch the store: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn apply(&self, ev: Event) {
        let revision = ev.revision();
        if !ev.key().starts_with(REGISTRY_PREFIX) {
            return;
        }
        // The new entry is made before taking the lock: it may copy the value (when the store
        // still shares its buffer), and readers should not wait for that.
        enum Op {
            Put(Arc<Entry>),
            Delete(drover_store::KeyValue),
        }
        let (key, op): (Arc<str>, Op) = match ev {
            Event::Put { kv, .. } => (
                Arc::from(kv.key.as_str()),
                Op::Put(Arc::new(Entry::new(kv.value, kv.mod_revision))),
            ),
            Event::Delete { prev, .. } => (Arc::from(prev.key.as_str()), Op::Delete(prev)),
        };
        let mut inner = self.inner.write();
        if revision <= inner.revision {
            return; // already seen (replay after a reconnect)
        }
        let event = match op {
            Op::Put(entry) => {
                let prev = inner.objects.insert(Arc::clone(&key), Arc::clone(&entry));
                self.rbac.apply(&key, Some(&entry.value));
                CacheEvent {
                    revision,
                    key,
                    change: Change::Put,
                    entry,
                    prev,
                }
            }
            Op::Delete(prev) => {
                let old = inner.objects.remove(&key);
                self.rbac.apply(&key, None);
                let entry = old
                    .clone()
                    .unwrap_or_else(|| Arc::new(Entry::new(prev.value, prev.mod_revision)));
                CacheEvent {
                    revision,
                    key,
                    change: Change::Delete,
                    entry,
                    prev: old,
                }
            }
        };
        let event = Arc::new(event);
        inner.window.push_back(Arc::clone(&event));
        if inner.window.len() > WINDOW
            && let Some(old) = inner.window.pop_front()
        {
            inner.floor = old.revision;
        }
        inner.revision = revision;
        // Sent under the lock so a subscriber sees each event either in its backlog or live.
        if self.events_tx.receiver_count() > 0 {
            let _ = self.events_tx.send(LiveEvent::new(event));
        }
    }

    fn advance(&self, revision: Revision) {
        let mut inner = self.inner.write();
        if revision > inner.revision {
            inner.revision = revision;
        }
        let r = inner.revision;
        drop(inner);
        self.revision_tx.send_if_modified(|cur| {
            let changed = *cur != r;
            *cur = r;
            changed
        });
    }

    /// The revision the cache has applied.
    pub(crate) fn revision(&self) -> Revision {
        self.inner.read().revision
    }

    /// Waits until the cache has applied `revision` (bounded; a slow store gives 504).
    pub(crate) async fn wait_for(&self, revision: Revision) -> ApiResult<()> {
        let mut rx = self.revision_tx.subscribe();
        let wait = rx.wait_for(|r| *r >= revision);
        match tokio::time::timeout(Duration::from_secs(3), wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::Timeout(format!(
                "Too large resource version: {revision}, current resource version: {}",
                self.revision()
            ))),
        }
    }

    /// Every object whose key starts with `prefix`, starting after `after_key` if given.
    pub(crate) fn snapshot(&self, prefix: &str, after_key: Option<&str>) -> Snapshot {
        use std::ops::Bound;
        let inner = self.inner.read();
        let start: Bound<&str> = match after_key {
            Some(k) => Bound::Excluded(k),
            None => Bound::Included(prefix),
        };
        let items = inner
            .objects
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (Arc::clone(k), Arc::clone(v)))
            .collect();
        Snapshot {
            revision: inner.revision,
            items,
        }
    }

    /// The RBAC index, as current as the cache.
    pub(crate) fn rbac(&self) -> &crate::rbac::Index {
        &self.rbac
    }

    /// One object.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Entry>> {
        self.inner.read().objects.get(key).cloned()
    }

    /// Events after `revision`, or `None` if the window no longer reaches back that far.
    pub(crate) fn subscribe(&self, revision: Revision) -> Option<Subscription> {
        let inner = self.inner.read();
        if revision < inner.floor {
            return None;
        }
        let backlog = inner
            .window
            .iter()
            .filter(|e| e.revision > revision)
            .cloned()
            .collect();
        let live = self.events_tx.subscribe();
        Some(Subscription { backlog, live })
    }

    /// Number of events in the window (for the memory benchmark).
    pub(crate) fn window_len(&self) -> usize {
        self.inner.read().window.len()
    }

    /// Empties the event window, as if it had been primed (for the memory benchmark, which
    /// measures what the window costs on its own).
    pub(crate) fn clear_window(&self) {
        let mut inner = self.inner.write();
        inner.window = VecDeque::new();
        inner.floor = inner.revision;
    }

    /// Number of objects and their encoded bytes (for metrics and the memory benchmark).
    pub(crate) fn size(&self) -> (usize, usize) {
        let inner = self.inner.read();
        (
            inner.objects.len(),
            inner.objects.values().map(|e| e.value.len()).sum(),
        )
    }
}

/// Waits until `sub` delivers an event `wanted` accepts, the subscription lags or closes, or
/// (without a subscription) a short pause passed: how the server's controllers sleep between
/// level-triggered passes.
pub(crate) async fn next_change(sub: Option<Subscription>, wanted: impl Fn(&CacheEvent) -> bool) {
    match sub {
        Some(mut s) => loop {
            match s.live.recv().await {
                Ok(ev) if wanted(&ev.event) => return,
                Ok(_) => continue,
                Err(_) => return,
            }
        },
        None => tokio::time::sleep(Duration::from_millis(200)).await,
    }
}
