//! The in-memory backend: full MVCC history in a `BTreeMap`, for tests.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::watch::{History, Hub};
use crate::{
    Bytes, Error, Event, KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreStats,
    WatchStream,
};

/// Settings of a [`MemStore`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MemConfig {
    /// How often idle watches get a progress notification.
    pub progress_interval: Duration,
    /// How many batches a watcher's queue holds before it falls back to catching up.
    pub watch_queue: usize,
}

impl Default for MemConfig {
    fn default() -> Self {
        Self {
            progress_interval: Duration::from_secs(5),
            watch_queue: 1024,
        }
    }
}

/// A store that keeps everything in memory: every version of every key until it is compacted
/// away (there is no automatic compaction). Cloning gives another handle to the same store.
#[derive(Clone)]
pub struct MemStore {
    state: Arc<Mutex<MemState>>,
    hub: Arc<Hub>,
    commits: Arc<AtomicU64>,
}

#[derive(Default)]
struct MemState {
    rev: Revision,
    compacted: Revision,
    /// Every kept version of every key, oldest first; `None` is a delete.
    keys: BTreeMap<String, Vec<Version>>,
    /// Every event after `compacted`, in revision order.
    log: VecDeque<Event>,
    versions: u64,
}

struct Version {
    rev: Revision,
    kv: Option<KeyValue>,
}

/// The history view that catching-up watchers read.
struct MemHistory(Arc<Mutex<MemState>>);

// === impl MemStore ===

impl MemStore {
    /// An empty store with default settings.
    pub fn new() -> Self {
        Self::with_config(MemConfig::default())
    }

    /// An empty store.
    pub fn with_config(config: MemConfig) -> Self {
        let state = Arc::new(Mutex::new(MemState::default()));
        let history = Arc::new(MemHistory(Arc::clone(&state)));
        let hub = Hub::new(history, config.watch_queue, 0, config.progress_interval);
        Self {
            state,
            hub,
            commits: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many times a watcher's queue was full and it was caught up from history instead.
    pub fn watch_overflows(&self) -> u64 {
        self.hub.overflows()
    }

    /// Applies one write under the lock and publishes its event before releasing it, so
    /// watchers see events in revision order.
    fn write<T>(
        &self,
        key: &str,
        apply: impl FnOnce(Option<&KeyValue>, Revision) -> Result<(T, Event), Error>,
    ) -> Result<T, Error> {
        let mut state = self.state.lock();
        let rev = state.rev + 1;
        let (out, event) = apply(state.latest(key), rev)?;
        let kv = match &event {
            Event::Put { kv, .. } => Some(kv.clone()),
            Event::Delete { .. } => None,
        };
        state.rev = rev;
        state
            .keys
            .entry(key.to_owned())
            .or_default()
            .push(Version { rev, kv });
        state.versions += 1;
        state.log.push_back(event.clone());
        self.hub.publish(std::slice::from_ref(&event), rev);
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Store for MemStore {
    async fn current_revision(&self) -> Result<Revision, Error> {
        Ok(self.state.lock().rev)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, Error> {
        Ok(self.state.lock().latest(key).cloned())
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, Error> {
        self.state.lock().range(&req)
    }

    async fn count(&self, prefix: &str) -> Result<u64, Error> {
        Ok(self
            .state
            .lock()
            .range(&RangeRequest::prefix(prefix))?
            .count)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, Error> {
        self.write(key, |current, rev| {
            if let Some(current) = current {
                return Err(Error::AlreadyExists {
                    key: key.to_owned(),
                    current: Box::new(current.clone()),
                });
            }
            let kv = KeyValue {
                key: key.to_owned(),
                value,
                create_revision: rev,
                mod_revision: rev,
            };
            Ok((rev, Event::Put { kv, prev: None }))
        })
    }

    async fn update(&self, key: &str, expected: Revision, value: Bytes) -> Result<Revision, Error> {
        self.write(key, |current, rev| {
            let current = check(key, expected, current)?;
            let kv = KeyValue {
                key: key.to_owned(),
                value,
                create_revision: current.create_revision,
                mod_revision: rev,
            };
            Ok((
                rev,
                Event::Put {
                    kv,
                    prev: Some(current.clone()),
                },
            ))
        })
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue), Error> {
        self.write(key, |current, rev| {
            let current = match (expected, current) {
                (0, Some(current)) => current,
                _ => check(key, expected, current)?,
            };
            Ok((
                (rev, current.clone()),
                Event::Delete {
                    revision: rev,
                    prev: current.clone(),
                },
            ))
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
        // Holding the state lock orders registration against writes (which publish under it).
        let state = self.state.lock();
        self.hub.watch(prefix, after, state.compacted)
    }

    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        self.state.lock().compact(revision)
    }

    async fn compacted_revision(&self) -> Result<Revision, Error> {
        Ok(self.state.lock().compacted)
    }

    fn stats(&self) -> StoreStats {
        let state = self.state.lock();
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            fsyncs: 0,
            history_entries: state.versions,
            compacted: state.compacted,
        }
    }
}

/// The compare-and-swap check shared by update and delete.
fn check<'a>(
    key: &str,
    expected: Revision,
    current: Option<&'a KeyValue>,
) -> Result<&'a KeyValue, Error> {
    match current {
        None => Err(Error::NotFound {
            key: key.to_owned(),
        }),
        Some(current) if current.mod_revision != expected => Err(Error::Conflict {
            key: key.to_owned(),
            expected,
            current: Some(Box::new(current.clone())),
        }),
        Some(current) => Ok(current),
    }
}

// === impl MemState ===

impl MemState {
    fn latest(&self, key: &str) -> Option<&KeyValue> {
        self.keys.get(key)?.last()?.kv.as_ref()
    }

    fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        let at = match req.revision {
            0 => self.rev,
            r if r > self.rev => {
                return Err(Error::FutureRevision {
                    requested: r,
                    current: self.rev,
                });
            }
            r if r < self.compacted => {
                return Err(Error::Compacted {
                    requested: r,
                    compacted: self.compacted,
                });
            }
            r => r,
        };
        let mut resp = RangeResponse {
            revision: at,
            ..RangeResponse::default()
        };
        let bounds = if req.end.is_empty() {
            (
                Bound::Included(req.start.as_str()),
                Bound::Included(req.start.as_str()),
            )
        } else if req.start >= req.end {
            return Ok(resp);
        } else {
            (
                Bound::Included(req.start.as_str()),
                Bound::Excluded(req.end.as_str()),
            )
        };
        for (_, versions) in self.keys.range::<str, _>(bounds) {
            let visible = versions.partition_point(|v| v.rev <= at);
            let Some(kv) = visible.checked_sub(1).and_then(|i| versions[i].kv.as_ref()) else {
                continue;
            };
            resp.count += 1;
            if req.limit == 0 || (resp.kvs.len() as u64) < req.limit {
                resp.kvs.push(kv.clone());
            } else {
                resp.more = true;
            }
        }
        Ok(resp)
    }

    fn compact(&mut self, revision: Revision) -> Result<(), Error> {
        if revision > self.rev {
            return Err(Error::FutureRevision {
                requested: revision,
                current: self.rev,
            });
        }
        if revision <= self.compacted {
            return Ok(());
        }
        self.compacted = revision;
        while self.log.front().is_some_and(|e| e.revision() <= revision) {
            self.log.pop_front();
        }
        let mut versions = 0;
        self.keys.retain(|_, kept| {
            // Keep the version visible at `revision` (unless it is a delete) and all newer ones.
            let visible = kept.partition_point(|v| v.rev <= revision);
            if visible > 1 {
                kept.drain(..visible - 1);
            }
            if kept
                .first()
                .is_some_and(|v| v.rev <= revision && v.kv.is_none())
            {
                kept.remove(0);
            }
            versions += kept.len() as u64;
            !kept.is_empty()
        });
        self.versions = versions;
        Ok(())
    }
}

impl History for MemHistory {
    fn events(
        &self,
        prefix: &str,
        after: Revision,
        upto: Revision,
        limit: usize,
    ) -> Result<(Vec<Event>, Revision), Error> {
        let state = self.0.lock();
        if after < state.compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted: state.compacted,
            });
        }
        let start = state.log.partition_point(|e| e.revision() <= after);
        let mut events = Vec::new();
        for event in state
            .log
            .range(start..)
            .take_while(|e| e.revision() <= upto)
        {
            if event.key().starts_with(prefix) {
                events.push(event.clone());
                if events.len() >= limit {
                    return Ok((events, event.revision()));
                }
            }
        }
        Ok((events, upto))
    }
}
