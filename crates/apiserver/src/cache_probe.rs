//! Hooks for the watch-cache memory benchmark (`cache_memory` in `crates/bench`, see
//! docs/benchmarks.md). Not part of the API.

use std::sync::Arc;

use drover_store::{AnyStore, Revision};

use crate::cache::Cache;

/// A watch cache following a store, as the server runs one, that can be stopped and dropped.
pub struct Probe {
    cache: Arc<Cache>,
    follower: tokio::task::JoinHandle<()>,
}

impl Probe {
    /// Primes a cache from `store` (one range of every object) and starts following it.
    pub async fn start(store: Arc<AnyStore>) -> Result<Probe, drover_store::Error> {
        let (cache, follower) = Cache::start_with_follower(store).await?;
        Ok(Probe { cache, follower })
    }

    /// Waits until the cache has applied `revision`; false after the cache's 3 s bound.
    pub async fn wait_for(&self, revision: Revision) -> bool {
        self.cache.wait_for(revision).await.is_ok()
    }

    /// Objects held and the sum of their encoded sizes.
    pub fn objects(&self) -> (usize, usize) {
        self.cache.size()
    }

    /// Events in the window.
    pub fn window_len(&self) -> usize {
        self.cache.window_len()
    }

    /// Empties the event window.
    pub fn clear_window(&self) {
        self.cache.clear_window();
    }

    /// What a LIST of every object does to the cache: takes each object's bytes the way the
    /// list handler does, then drops them (a LIST must not leave the cache bigger).
    pub fn list_all(&self) -> usize {
        let snap = self.cache.snapshot(crate::cache::REGISTRY_PREFIX, None);
        let items: Vec<bytes::Bytes> = snap
            .items
            .iter()
            .map(|(_, e)| crate::cache::Entry::bytes(e))
            .collect();
        items.len()
    }

    /// Stops the follower and drops the cache; returns once both are gone.
    pub async fn stop(self) {
        self.follower.abort();
        let _ = self.follower.await;
        drop(self.cache);
    }
}
