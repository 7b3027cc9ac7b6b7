//! The shared state every request handler sees.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use drover_core::registry::{self, Resource};
use drover_store::AnyStore;
use parking_lot::RwLock;

use crate::cache::Cache;
use crate::config::Config;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::objects::Objects;

/// The OpenAPI documents of the custom resource group-versions.
pub(crate) type CrdDocs = Arc<Vec<Arc<drover_schema::GroupVersionDoc>>>;

/// Shared server state.
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) store: Arc<AnyStore>,
    pub(crate) objects: Objects,
    pub(crate) cache: Arc<Cache>,
    pub(crate) identity: Identity,
    /// The service-account token signing key (parsed from `identity` once).
    pub(crate) sa_key: ring::signature::EcdsaKeyPair,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) resources: Resources,
    pub(crate) bootstrapped: AtomicBool,
    /// True once the CRD controller has registered every CRD's resources.
    pub(crate) crds_synced: AtomicBool,
    /// OpenAPI documents of custom resource group-versions, rebuilt when CRDs change.
    pub(crate) crd_docs: RwLock<Option<(u64, CrdDocs)>>,
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
    /// Whether this server holds the controllers' Lease.
    pub(crate) leader: crate::leader::LeaderHandle,
    /// `host:port` clients use to reach this server.
    pub(crate) address: String,
}

/// The served resources: the built-ins plus (later) custom resources.
pub(crate) struct Resources {
    all: RwLock<Arc<Vec<Resource>>>,
    /// Bumped whenever the custom resources change.
    generation: std::sync::atomic::AtomicU64,
}

impl Resources {
    pub(crate) fn new() -> Resources {
        Resources {
            all: RwLock::new(Arc::new(registry::builtin().to_vec())),
            generation: 0.into(),
        }
    }

    /// Replaces the custom resources (those CRDs define); returns true if they changed.
    pub(crate) fn set_custom(&self, custom: Vec<Resource>) -> bool {
        let mut all: Vec<Resource> = registry::builtin().to_vec();
        all.extend(custom);
        let mut cur = self.all.write();
        if **cur == all {
            return false;
        }
        *cur = Arc::new(all);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        true
    }

    /// Changes whenever the custom resources change.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every served resource, in discovery order.
    pub(crate) fn all(&self) -> Arc<Vec<Resource>> {
        Arc::clone(&self.all.read())
    }

    /// Finds a resource by group, version and plural.
    pub(crate) fn find(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        self.all
            .read()
            .iter()
            .find(|r| r.gv.group == group && r.gv.version == version && r.plural == plural)
            .cloned()
    }
}

/// Resolves once shutdown has begun (holding no lock across awaits).
pub(crate) async fn shutting_down(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}
