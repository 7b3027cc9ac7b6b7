//! The writer thread: the only connection that writes, and group commit.
//!
//! The thread takes every request that is queued (up to [`MAX_BATCH`]), applies them in order
//! in one transaction — each successful write gets the next revision — commits once, and only
//! then answers the requests and publishes their events. Concurrent writers therefore share one
//! WAL sync, and a write is acknowledged only once its transaction is durable.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::maintenance::Maintenance;
use super::schema::{self, Start, error_from, is_full, set_meta};
use super::{Shared, SqliteConfig};
use crate::watch::Hub;
use crate::{Bytes, Error, Event, KeyValue, Revision};

/// The most requests one transaction takes; bounds how long one commit holds the writer.
const MAX_BATCH: usize = 1024;

/// A message to the writer thread.
pub(crate) enum Msg {
    Write {
        op: Op,
        reply: oneshot::Sender<Result<Applied, Error>>,
    },
    Close(oneshot::Sender<()>),
}

pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        expected: Revision,
        value: Bytes,
    },
    Delete {
        key: String,
        expected: Revision,
    },
    Compact(Revision),
}

pub(crate) enum Applied {
    Written(Revision),
    Deleted(Revision, KeyValue),
    Compacted,
}

type Reply = oneshot::Sender<Result<Applied, Error>>;

/// How often an idle writer checks the file for writes of other processes.
const FOREIGN_POLL: std::time::Duration = std::time::Duration::from_millis(200);

struct Writer {
    conn: Connection,
    path: PathBuf,
    synced: bool,
    /// The last committed revision.
    rev: Revision,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    maintenance: Maintenance,
}

/// Starts the writer thread. It stops after a [`Msg::Close`] or when every sender is gone.
pub(crate) fn spawn(
    conn: Connection,
    config: SqliteConfig,
    start: Start,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    rx: mpsc::Receiver<Msg>,
) -> Result<(), Error> {
    let writer = Writer {
        conn,
        path: config.path.clone(),
        synced: config.synchronous_full,
        rev: start.rev,
        shared,
        hub,
        maintenance: Maintenance::new(&config, start),
    };
    std::thread::Builder::new()
        .name("drover-store-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| Error::Backend(format!("cannot start the sqlite writer thread: {e}")))?;
    Ok(())
}

// === impl Writer ===

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                return tracing::error!(error = %e, "sqlite writer cannot build its timer runtime");
            }
        };
        loop {
            // Wake at least every FOREIGN_POLL to pick up writes of other processes sharing the
            // file (several servers on one datastore).
            let wait = self.maintenance.wait().min(FOREIGN_POLL);
            let first = runtime.block_on(async { tokio::time::timeout(wait, rx.recv()).await });
            let first = match first {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(_elapsed) => {
                    self.sync_foreign();
                    self.maintain();
                    continue;
                }
            };
            let mut batch = Vec::new();
            let mut close = None;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Write { op, reply } => batch.push((op, reply)),
                    Msg::Close(done) => close = Some(done),
                }
                if batch.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            self.maintain();
            if let Some(done) = close {
                self.maintenance
                    .checkpoint(&self.conn, &self.path, &self.shared);
                // Close the connection before answering, so the caller may reopen the file.
                drop(self);
                let _ = done.send(());
                return;
            }
        }
        self.maintenance
            .checkpoint(&self.conn, &self.path, &self.shared);
    }

    /// Publishes writes another process committed since our last revision (read from the
    /// shared `meta` row), so watchers on this process see every write to the file.
    fn sync_foreign(&mut self) {
        let Ok(db_rev) = schema::meta(&self.conn, "rev") else {
            return;
        };
        if db_rev > self.rev {
            self.publish_foreign(self.rev, db_rev);
        }
    }

    fn publish_foreign(&mut self, after: Revision, upto: Revision) {
        match super::read::events_between(&self.conn, after, upto) {
            Ok(events) => {
                self.rev = self.rev.max(upto);
                self.shared.current.store(self.rev, Ordering::SeqCst);
                if let Ok(compacted) = schema::meta(&self.conn, "compacted") {
                    self.shared.compacted.fetch_max(compacted, Ordering::SeqCst);
                }
                self.hub.publish(&events, upto);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read writes of another process"),
        }
    }

    fn maintain(&mut self) {
        self.maintenance
            .run(&self.conn, &self.path, self.rev, &self.shared);
    }

    /// Applies `batch` in one transaction and answers every request.
    fn commit(&mut self, batch: Vec<(Op, Reply)>) {
        let mut pending = Pending {
            rev: self.rev,
            compacted: self.maintenance.compacted(),
            ..Pending::default()
        };
        let ops = batch.len() as u64;
        // The revision the file had when this transaction began: above ours when another
        // process wrote meanwhile; its writes are published before ours.
        let mut base = self.rev;
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            base = base.max(schema::meta(&tx, "rev")?);
            pending.rev = base;
            pending.compacted = pending.compacted.max(schema::meta(&tx, "compacted")?);
            let compacted_at_start = pending.compacted;
            for (op, _) in &batch {
                let outcome = apply(&tx, op, &mut pending)?;
                pending.outcomes.push(outcome);
            }
            if pending.rev == base && pending.compacted == compacted_at_start {
                return Ok(false); // nothing changed: dropping the transaction rolls it back
            }
            set_meta(&tx, "rev", pending.rev)?;
            set_meta(&tx, "compacted", pending.compacted)?;
            tx.commit()?;
            Ok(true)
        })();
        let wrote = match result {
            Ok(wrote) => wrote,
            Err(e) => {
                let (full, message) = (is_full(&e), e.to_string());
                tracing::warn!(error = %message, ops, "sqlite write batch failed; nothing was applied");
                for (_, reply) in batch {
                    let _ = reply.send(Err(error_from(&self.path, full, &message)));
                }
                return;
            }
        };
        if base > self.rev {
            self.publish_foreign(self.rev, base);
        }
        if wrote {
            let written = pending.events.len() as u64;
            self.rev = pending.rev;
            self.maintenance.committed(pending.rev, pending.compacted);
            let shared = &self.shared;
            shared.commits.fetch_add(written, Ordering::Relaxed);
            shared.history_rows.fetch_add(written, Ordering::Relaxed);
            if self.synced {
                shared.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            shared.compacted.store(pending.compacted, Ordering::SeqCst);
            shared.current.store(pending.rev, Ordering::SeqCst);
            if !pending.events.is_empty() {
                self.hub.publish(&pending.events, pending.rev);
            }
        }
        for ((_, reply), outcome) in batch.into_iter().zip(pending.outcomes) {
            let _ = reply.send(outcome);
        }
    }
}

/// What a batch has done so far inside its transaction.
#[derive(Default)]
struct Pending {
    rev: Revision,
    compacted: Revision,
    events: Vec<Event>,
    outcomes: Vec<Result<Applied, Error>>,
}

/// Applies one request. The outer error aborts the whole batch (SQLite failed); the inner one
/// is this request's answer (a conflict, a missing key) and changes nothing.
fn apply(
    tx: &Transaction<'_>,
    op: &Op,
    pending: &mut Pending,
) -> rusqlite::Result<Result<Applied, Error>> {
    match op {
        Op::Create { key, value } => {
            if let Some(current) = latest(tx, key)? {
                return Ok(Err(Error::AlreadyExists {
                    key: key.clone(),
                    current: Box::new(current),
                }));
            }
            let rev = pending.rev + 1;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: rev,
                mod_revision: rev,
            };
            insert(tx, &kv, 0, false)?;
            pending.rev = rev;
            pending.events.push(Event::Put { kv, prev: None });
            Ok(Ok(Applied::Written(rev)))
        }
        Op::Update {
            key,
            expected,
            value,
        } => {
            let current = match check(key, *expected, latest(tx, key)?) {
                Ok(current) => current,
                Err(e) => return Ok(Err(e)),
            };
            let rev = pending.rev + 1;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: current.create_revision,
                mod_revision: rev,
            };
            insert(tx, &kv, current.mod_revision, false)?;
            pending.rev = rev;
            pending.events.push(Event::Put {
                kv,
                prev: Some(current),
            });
            Ok(Ok(Applied::Written(rev)))
        }
        Op::Delete { key, expected } => {
            let current = match (expected, latest(tx, key)?) {
                (0, Some(current)) => current,
                (_, current) => match check(key, *expected, current) {
                    Ok(current) => current,
                    Err(e) => return Ok(Err(e)),
                },
            };
            let rev = pending.rev + 1;
            // The tombstone's value stays empty (so a full disk can still take deletes): the
            // deleted row it points to lives as long as the tombstone is newer than the
            // compacted revision, which is as long as anyone can ask for the delete event.
            let tombstone = KeyValue {
                mod_revision: rev,
                value: Bytes::new(),
                ..current.clone()
            };
            insert(tx, &tombstone, current.mod_revision, true)?;
            pending.rev = rev;
            pending.events.push(Event::Delete {
                revision: rev,
                prev: current.clone(),
            });
            Ok(Ok(Applied::Deleted(rev, current)))
        }
        Op::Compact(revision) => Ok(compact(*revision, pending)),
    }
}

fn compact(revision: Revision, pending: &mut Pending) -> Result<Applied, Error> {
    if revision > pending.rev {
        return Err(Error::FutureRevision {
            requested: revision,
            current: pending.rev,
        });
    }
    // The rows go in the background (maintenance.rs); from the commit on, reads and watches
    // before `revision` fail, so the rows are never needed again.
    pending.compacted = pending.compacted.max(revision);
    Ok(Applied::Compacted)
}

fn check(key: &str, expected: Revision, current: Option<KeyValue>) -> Result<KeyValue, Error> {
    match current {
        None => Err(Error::NotFound {
            key: key.to_owned(),
        }),
        Some(current) if current.mod_revision != expected => Err(Error::Conflict {
            key: key.to_owned(),
            expected,
            current: Some(Box::new(current)),
        }),
        Some(current) => Ok(current),
    }
}

/// The key's current value, `None` if it does not exist (never written or deleted).
fn latest(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    let mut stmt = tx.prepare_cached(
        "SELECT value, created, rev, deleted FROM log WHERE key = ?1 ORDER BY rev DESC LIMIT 1",
    )?;
    let row = stmt
        .query_row([key], |r| {
            let kv = KeyValue {
                key: key.to_owned(),
                value: r.get::<_, Vec<u8>>(0)?.into(),
                create_revision: r.get(1)?,
                mod_revision: r.get(2)?,
            };
            Ok((kv, r.get::<_, bool>(3)?))
        })
        .optional()?;
    Ok(row.and_then(|(kv, deleted)| (!deleted).then_some(kv)))
}

fn insert(
    tx: &Transaction<'_>,
    kv: &KeyValue,
    prev: Revision,
    deleted: bool,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO log (rev, key, created, prev, deleted, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![
        kv.mod_revision,
        kv.key,
        kv.create_revision,
        prev,
        deleted,
        &kv.value[..]
    ])?;
    Ok(())
}
