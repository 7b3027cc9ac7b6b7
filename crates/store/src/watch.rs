//! Watch fan-out shared by the backends.
//!
//! The writer calls [`Hub::publish`] after every commit, in revision order. `publish` never
//! blocks: it `try_send`s into each watcher's bounded queue. A watcher whose queue is full is
//! switched to *catching up* (etcd's "unsynced" watchers): a task of its own reads the missed
//! history from the backend ([`History`]) and sends it with back-pressure, then flips the watcher
//! back to *live* under the hub lock once it has delivered everything published so far. A new
//! watch on an old revision starts out catching up the same way. Because live delivery and the
//! switch both happen under one lock and `delivered` only moves forward, no revision is skipped
//! or sent twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::{Error, Event, Revision, WatchBatch, WatchStream};

/// How many events a catching-up watcher reads from history per step.
const CATCH_UP_CHUNK: usize = 512;

/// Where catching-up watchers read missed events from.
pub(crate) trait History: Send + Sync + 'static {
    /// The events on keys starting with `prefix` with revisions in `(after, upto]`, ascending,
    /// at most `limit` of them, and the revision they cover up to (`upto`, or the last event's
    /// revision when `limit` cut the list short). Fails with [`Error::Compacted`] when `after`
    /// is older than the compacted revision.
    fn events(
        &self,
        prefix: &str,
        after: Revision,
        upto: Revision,
        limit: usize,
    ) -> Result<(Vec<Event>, Revision), Error>;
}

/// The set of watchers of one store.
pub(crate) struct Hub {
    history: Arc<dyn History>,
    queue: usize,
    state: Mutex<HubState>,
    overflows: AtomicU64,
}

struct HubState {
    /// Every revision up to here has been offered to the live watchers.
    published: Revision,
    next_id: u64,
    watchers: HashMap<u64, Watcher>,
}

struct Watcher {
    prefix: String,
    tx: mpsc::Sender<Result<WatchBatch, Error>>,
    /// Every matching event up to this revision has been sent.
    delivered: Revision,
    /// True while a catch-up task owns delivery (the queue overflowed or the watch started in
    /// the past); `publish` skips the watcher then.
    catching_up: bool,
    /// Nothing was sent since the last progress tick.
    idle: bool,
    runtime: Handle,
}

// === impl Hub ===

impl Hub {
    /// A hub whose live watchers have seen everything up to `published`. Starts a thread that
    /// sends progress notifications every `progress_interval` until the hub is dropped.
    pub(crate) fn new(
        history: Arc<dyn History>,
        queue: usize,
        published: Revision,
        progress_interval: Duration,
    ) -> Arc<Self> {
        let hub = Arc::new(Hub {
            history,
            queue: queue.max(1),
            state: Mutex::new(HubState {
                published,
                next_id: 0,
                watchers: HashMap::new(),
            }),
            overflows: AtomicU64::new(0),
        });
        spawn_progress(Arc::downgrade(&hub), progress_interval);
        hub
    }

    /// How many times a watcher's queue was full and it fell back to catching up from history.
    pub(crate) fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }

    /// Registers a watch on `prefix` for events after `after`. `compacted` is the backend's
    /// compacted revision; older starts get [`Error::Compacted`] as the only item.
    pub(crate) fn watch(
        self: &Arc<Self>,
        prefix: &str,
        after: Revision,
        compacted: Revision,
    ) -> Result<WatchStream, Error> {
        let runtime = Handle::try_current().map_err(|_| {
            Error::Unavailable(
                "watch was called outside a tokio runtime; call it from async code".into(),
            )
        })?;
        let (tx, rx) = mpsc::channel(self.queue);
        if after < compacted {
            let _ = tx.try_send(Err(Error::Compacted {
                requested: after,
                compacted,
            }));
            return Ok(rx);
        }
        let mut state = self.state.lock();
        let id = state.next_id;
        state.next_id += 1;
        let catching_up = after < state.published;
        let watcher = Watcher {
            prefix: prefix.to_owned(),
            tx,
            delivered: after,
            catching_up,
            idle: true,
            runtime: runtime.clone(),
        };
        state.watchers.insert(id, watcher);
        drop(state);
        if catching_up {
            runtime.spawn(Arc::clone(self).catch_up(id));
        }
        Ok(rx)
    }

    /// Offers the events of one commit (ascending, all newer than anything published before)
    /// to the live watchers; `upto` is the commit's last revision. Never blocks on a watcher.
    pub(crate) fn publish(self: &Arc<Self>, events: &[Event], upto: Revision) {
        let mut lagging = Vec::new();
        let mut state = self.state.lock();
        state.published = state.published.max(upto);
        state.watchers.retain(|id, w| {
            if w.catching_up {
                return true;
            }
            let matching: Vec<Event> = events
                .iter()
                .filter(|e| e.revision() > w.delivered && e.key().starts_with(&w.prefix))
                .cloned()
                .collect();
            if matching.is_empty() {
                w.delivered = w.delivered.max(upto);
                return true;
            }
            match w.tx.try_send(Ok(WatchBatch {
                events: matching,
                revision: upto,
            })) {
                Ok(()) => {
                    w.delivered = upto;
                    w.idle = false;
                    true
                }
                Err(TrySendError::Full(_)) => {
                    w.catching_up = true;
                    lagging.push((*id, w.runtime.clone()));
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
        drop(state);
        for (id, runtime) in lagging {
            self.overflows.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(watcher = id, "watch queue full; catching up from history");
            runtime.spawn(Arc::clone(self).catch_up(id));
        }
    }

    /// Sends an empty batch to every live watcher that got nothing since the last tick, and
    /// forgets watchers whose stream was dropped.
    fn progress(&self) {
        let mut state = self.state.lock();
        let published = state.published;
        state.watchers.retain(|_, w| {
            if w.tx.is_closed() {
                return false;
            }
            // A watch that starts in the future has nothing true to report yet.
            if !w.catching_up && w.idle && w.delivered <= published {
                let batch = WatchBatch {
                    events: Vec::new(),
                    revision: published,
                };
                if let Err(TrySendError::Closed(_)) = w.tx.try_send(Ok(batch)) {
                    return false;
                }
            }
            w.idle = true;
            true
        });
    }

    /// Delivers history to watcher `id` until it has everything published, then makes it live.
    async fn catch_up(self: Arc<Self>, id: u64) {
        loop {
            let (prefix, tx, from, target) = {
                let mut state = self.state.lock();
                let published = state.published;
                let Some(w) = state.watchers.get_mut(&id) else {
                    return;
                };
                if w.delivered >= published {
                    w.catching_up = false;
                    return;
                }
                (w.prefix.clone(), w.tx.clone(), w.delivered, published)
            };
            let history = Arc::clone(&self.history);
            let fetched = tokio::task::spawn_blocking(move || {
                history.events(&prefix, from, target, CATCH_UP_CHUNK)
            })
            .await
            .unwrap_or_else(|e| Err(Error::Backend(format!("watch catch-up read failed: {e}"))));
            let (events, covered) = match fetched {
                Ok(fetched) => fetched,
                Err(e) => {
                    self.state.lock().watchers.remove(&id);
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if !events.is_empty()
                && tx
                    .send(Ok(WatchBatch {
                        events,
                        revision: covered,
                    }))
                    .await
                    .is_err()
            {
                self.state.lock().watchers.remove(&id);
                return;
            }
            if let Some(w) = self.state.lock().watchers.get_mut(&id) {
                w.delivered = covered;
                w.idle = false;
            }
        }
    }
}

fn spawn_progress(hub: Weak<Hub>, interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("drover-store-progress".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                match hub.upgrade() {
                    Some(hub) => hub.progress(),
                    None => return,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the watch progress thread; idle watches get no progress notifications");
    }
}
