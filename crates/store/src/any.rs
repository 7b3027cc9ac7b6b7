//! The closed set of backends, as one type.

use crate::{
    Bytes, Error, EtcdStore, KeyValue, MemStore, RangeRequest, RangeResponse, Revision,
    SqliteStore, Store, StoreStats, WatchStream,
};

/// Any of Drover's store backends. The API server holds this, so choosing a backend is a
/// configuration value rather than a type parameter.
#[derive(Clone)]
pub enum AnyStore {
    /// Everything in memory; for tests.
    Mem(MemStore),
    /// One SQLite file; the embedded default.
    Sqlite(SqliteStore),
    /// An external etcd cluster.
    Etcd(EtcdStore),
}

impl AnyStore {
    /// Whether the backend can serve requests now; `Err` says why (for `/readyz/etcd`). The
    /// embedded backends are always ready while open.
    pub fn health(&self) -> Result<(), String> {
        match self {
            AnyStore::Mem(_) | AnyStore::Sqlite(_) => Ok(()),
            AnyStore::Etcd(s) => s.health(),
        }
    }
}

impl From<EtcdStore> for AnyStore {
    fn from(store: EtcdStore) -> Self {
        AnyStore::Etcd(store)
    }
}

impl From<MemStore> for AnyStore {
    fn from(store: MemStore) -> Self {
        AnyStore::Mem(store)
    }
}

impl From<SqliteStore> for AnyStore {
    fn from(store: SqliteStore) -> Self {
        AnyStore::Sqlite(store)
    }
}

/// Calls the same method on whichever backend this is.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Mem($store) => $call,
            AnyStore::Sqlite($store) => $call,
            AnyStore::Etcd($store) => $call,
        }
    };
}

impl Store for AnyStore {
    async fn current_revision(&self) -> Result<Revision, Error> {
        delegate!(self, s => s.current_revision().await)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, Error> {
        delegate!(self, s => s.get(key).await)
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, Error> {
        delegate!(self, s => s.range(req).await)
    }

    async fn count(&self, prefix: &str) -> Result<u64, Error> {
        delegate!(self, s => s.count(prefix).await)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, Error> {
        delegate!(self, s => s.create(key, value).await)
    }

    async fn update(&self, key: &str, expected: Revision, value: Bytes) -> Result<Revision, Error> {
        delegate!(self, s => s.update(key, expected, value).await)
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue), Error> {
        delegate!(self, s => s.delete(key, expected).await)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
        delegate!(self, s => s.watch(prefix, after).await)
    }

    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        delegate!(self, s => s.compact(revision).await)
    }

    async fn compacted_revision(&self) -> Result<Revision, Error> {
        delegate!(self, s => s.compacted_revision().await)
    }

    fn stats(&self) -> StoreStats {
        delegate!(self, s => s.stats())
    }
}
