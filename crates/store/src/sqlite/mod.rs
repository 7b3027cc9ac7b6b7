//! The SQLite backend, Drover's embedded default.
//!
//! The database is a log: one row per write, the row id is the revision, deletes are tombstone
//! rows ([`schema`]). One writer thread owns the only write connection and commits every queued
//! request in one transaction (group commit, [`writer`]); it also compacts old history in small
//! batches and checkpoints the WAL ([`maintenance`]). Reads run on a small pool of read
//! connections, each in its own snapshot ([`read`]). Watches fan out in process ([`crate::watch`]).

pub(crate) mod dump;
mod maintenance;
mod read;
mod schema;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::watch::Hub;
use crate::{
    Bytes, Error, KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreStats, WatchStream,
};
use read::ReadPool;
use writer::{Applied, Msg, Op};

/// How many requests may wait for the writer before callers wait to enqueue.
const REQUEST_QUEUE: usize = 4096;

/// Settings of a [`SqliteStore`]. Start from [`SqliteConfig::new`] and change fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file. Its directory must exist; `-wal` and `-shm` files live next to it.
    pub path: PathBuf,
    /// History younger than this is never compacted automatically (unless `max_history_rows`
    /// forces it), so watchers that reconnect within it do not get "too old" (410). Default 5
    /// minutes.
    pub retention: Duration,
    /// At most this many revisions of history are kept behind the current one. Bounds the file
    /// size under any write rate; at more than `max_history_rows / retention` writes per second
    /// history covers less than `retention`. Default 100 000.
    pub max_history_rows: u64,
    /// How often idle watches get a progress notification. Default 5 seconds.
    pub progress_interval: Duration,
    /// How many batches a watcher's queue holds before it falls back to catching up from the
    /// database. Default 1024.
    pub watch_queue: usize,
    /// How often the writer runs background work (compaction, WAL checkpoint) when no writes
    /// arrive. Default 1 second.
    pub maintenance_interval: Duration,
    /// A hard quota on the database size; writes beyond it fail with [`Error::NoSpace`].
    /// Default none (the disk is the limit).
    pub max_size_bytes: Option<u64>,
    /// Commit with `synchronous=FULL` (true, the default): a write is acknowledged only after
    /// its transaction reached the disk. `false` turns syncing off; it exists only so a
    /// durability test can show that it catches a store that loses acknowledged writes.
    pub synchronous_full: bool,
    /// How many idle read connections are kept open. Default 4.
    pub read_connections: usize,
}

impl SqliteConfig {
    /// The default settings for a database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            retention: Duration::from_secs(5 * 60),
            max_history_rows: 100_000,
            progress_interval: Duration::from_secs(5),
            watch_queue: 1024,
            maintenance_interval: Duration::from_secs(1),
            max_size_bytes: None,
            synchronous_full: true,
            read_connections: 4,
        }
    }
}

/// A store in one SQLite file. Cloning gives another handle to the same store; the store closes
/// when [`SqliteStore::close`] is called or the last handle is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    requests: mpsc::Sender<Msg>,
    reads: Arc<ReadPool>,
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    /// A shared lock on `<db>.lock` while the store is open, so `drover datastore import` and
    /// `snapshot restore` (which take it exclusively) refuse to run under a server ([`dump`]).
    _lock: std::fs::File,
}

/// State the writer publishes for everyone else.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) current: AtomicI64,
    pub(crate) compacted: AtomicI64,
    pub(crate) commits: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) history_rows: AtomicU64,
}

// === impl SqliteStore ===

impl SqliteStore {
    /// Opens (or creates) the database and starts the writer thread. This does blocking file
    /// IO; from async code call it through `tokio::task::spawn_blocking` or at startup.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore, Error> {
        let lock = dump::lock_shared(&config.path)?;
        let conn = schema::open_writer(&config)?;
        let start = schema::load_meta(&conn, &config.path)?;
        let shared = Arc::new(Shared::default());
        shared.current.store(start.rev, Ordering::SeqCst);
        shared.compacted.store(start.compacted, Ordering::SeqCst);
        shared.history_rows.store(start.rows, Ordering::SeqCst);
        let reads = Arc::new(ReadPool::new(config.path.clone(), config.read_connections));
        let hub = Hub::new(
            reads.clone(),
            config.watch_queue,
            start.rev,
            config.progress_interval,
        );
        let (requests, rx) = mpsc::channel(REQUEST_QUEUE);
        writer::spawn(
            conn,
            config,
            start,
            Arc::clone(&shared),
            Arc::clone(&hub),
            rx,
        )?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                requests,
                reads,
                hub,
                shared,
                _lock: lock,
            }),
        })
    }

    /// Finishes every queued write, checkpoints the WAL into the database and closes the
    /// writer. Other handles to this store fail with [`Error::Unavailable`] afterwards.
    pub async fn close(self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Msg::Close(tx))
            .await
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?;
        self.inner.reads.close();
        Ok(())
    }

    /// How many times a watcher's queue was full and it was caught up from the database.
    pub fn watch_overflows(&self) -> u64 {
        self.inner.hub.overflows()
    }

    async fn write(&self, op: Op) -> Result<Applied, Error> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Msg::Write { op, reply })
            .await
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadPool) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let reads = Arc::clone(&self.inner.reads);
        tokio::task::spawn_blocking(move || f(&reads))
            .await
            .map_err(|e| Error::Backend(format!("sqlite read task failed: {e}")))?
    }
}

fn closed() -> Error {
    Error::Unavailable("the sqlite store is closed (its writer thread has stopped)".into())
}

fn unexpected(what: &str) -> Error {
    Error::Backend(format!(
        "sqlite writer answered {what} with the wrong kind of result"
    ))
}

impl Store for SqliteStore {
    async fn current_revision(&self) -> Result<Revision, Error> {
        // Read from the file, not our writer's counter: another process sharing the file may
        // have written since (several servers on one datastore).
        let known = self.inner.shared.current.load(Ordering::SeqCst);
        let stored = self.read(|reads| reads.current()).await?;
        Ok(known.max(stored))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, Error> {
        let key = key.to_owned();
        self.read(move |reads| reads.get(&key)).await
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, Error> {
        self.read(move |reads| reads.range(&req)).await
    }

    async fn count(&self, prefix: &str) -> Result<u64, Error> {
        let req = RangeRequest::prefix(prefix);
        self.read(move |reads| reads.count(&req)).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, Error> {
        match self
            .write(Op::Create {
                key: key.to_owned(),
                value,
            })
            .await?
        {
            Applied::Written(rev) => Ok(rev),
            _ => Err(unexpected("create")),
        }
    }

    async fn update(&self, key: &str, expected: Revision, value: Bytes) -> Result<Revision, Error> {
        match self
            .write(Op::Update {
                key: key.to_owned(),
                expected,
                value,
            })
            .await?
        {
            Applied::Written(rev) => Ok(rev),
            _ => Err(unexpected("update")),
        }
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue), Error> {
        match self
            .write(Op::Delete {
                key: key.to_owned(),
                expected,
            })
            .await?
        {
            Applied::Deleted(rev, prev) => Ok((rev, prev)),
            _ => Err(unexpected("delete")),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
        // A compaction after this check is caught by the catch-up read, which fails the same way.
        let compacted = self.inner.shared.compacted.load(Ordering::SeqCst);
        self.inner.hub.watch(prefix, after, compacted)
    }

    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        match self.write(Op::Compact(revision)).await? {
            Applied::Compacted => Ok(()),
            _ => Err(unexpected("compact")),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision, Error> {
        Ok(self.inner.shared.compacted.load(Ordering::SeqCst))
    }

    fn stats(&self) -> StoreStats {
        let shared = &self.inner.shared;
        StoreStats {
            commits: shared.commits.load(Ordering::Relaxed),
            fsyncs: shared.fsyncs.load(Ordering::Relaxed),
            history_entries: shared.history_rows.load(Ordering::Relaxed),
            compacted: shared.compacted.load(Ordering::SeqCst),
        }
    }
}
