//! Reads, on a small pool of read connections. WAL mode lets them run beside the writer; each
//! read runs in one transaction, so it sees one consistent snapshot.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Row, Transaction};

use super::schema::{self, sql_error};
use crate::watch::History;
use crate::{Error, Event, KeyValue, RangeRequest, RangeResponse, Revision};

/// The latest row of every key in `[?1, ?2)` as of revision `?3`, skipping deleted keys.
///
/// It walks the `(key, rev)` index in key order and keeps a row only if no newer row of the
/// same key is visible at `?3`, so `LIMIT` stops the walk early: a page costs what it returns,
/// not what is left of the range (the `GROUP BY` form materialized and sorted the whole rest).
const RANGE: &str = "
SELECT l.key, l.value, l.created, l.rev
FROM log l
WHERE l.key >= ?1 AND l.key < ?2 AND l.rev <= ?3 AND l.deleted = 0
  AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key AND n.rev > l.rev AND n.rev <= ?3)
ORDER BY l.key
LIMIT ?4";

const COUNT: &str = "
SELECT count(*)
FROM log l
WHERE l.key >= ?1 AND l.key < ?2 AND l.rev <= ?3 AND l.deleted = 0
  AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key AND n.rev > l.rev AND n.rev <= ?3)";

/// The writes in `(?1, ?2]` on keys in `[?3, ?4)` with the previous value of each update or
/// delete. Rows newer than the compacted revision always have their `prev` row.
const EVENTS: &str = "
SELECT l.rev, l.key, l.created, l.deleted, l.prev, l.value, p.created, p.value
FROM log l LEFT JOIN log p ON p.rev = l.prev
WHERE l.rev > ?1 AND l.rev <= ?2 AND l.key >= ?3 AND l.key < ?4
ORDER BY l.rev
LIMIT ?5";

pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    closed: AtomicBool,
}

// === impl ReadPool ===

impl ReadPool {
    pub(crate) fn new(path: PathBuf, max_idle: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle,
            closed: AtomicBool::new(false),
        }
    }

    /// Closes the idle connections and stops pooling new ones.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.idle.lock().clear();
    }

    /// Runs `f` in a read transaction that sees the database's `(current, compacted)` revisions.
    fn snapshot<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, Revision, Revision) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(super::closed());
        }
        let pooled = self.idle.lock().pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => schema::open_reader(&self.path)?,
        };
        let out = (|| {
            let tx = conn.transaction().map_err(|e| self.err(e))?;
            let current = schema::meta(&tx, "rev").map_err(|e| self.err(e))?;
            let compacted = schema::meta(&tx, "compacted").map_err(|e| self.err(e))?;
            f(&tx, current, compacted)
        })();
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle && !self.closed.load(Ordering::SeqCst) {
            idle.push(conn);
        }
        out
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        sql_error(&self.path, e)
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<KeyValue>, Error> {
        self.snapshot(|tx, _, _| {
            tx.prepare_cached(
                "SELECT key, value, created, rev, deleted FROM log WHERE key = ?1 ORDER BY rev DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([key], |r| Ok(if r.get::<_, bool>(4)? { None } else { Some(key_value(r)?) }))
                    .optional()
            })
            .map(Option::flatten)
            .map_err(|e| self.err(e))
        })
    }

    pub(crate) fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        self.snapshot(|tx, current, compacted| {
            let at = revision_to_read(req.revision, current, compacted)?;
            let mut resp = RangeResponse {
                revision: at,
                ..RangeResponse::default()
            };
            let Some((start, end)) = bounds(req) else {
                return Ok(resp);
            };
            // One row beyond the limit tells whether there is more.
            let limit = if req.limit == 0 {
                -1
            } else {
                i64::try_from(req.limit).unwrap_or(i64::MAX - 1) + 1
            };
            let mut run = || -> rusqlite::Result<()> {
                let mut stmt = tx.prepare_cached(RANGE)?;
                let rows = stmt.query_map(rusqlite::params![start, end, at, limit], key_value)?;
                resp.kvs = rows.collect::<rusqlite::Result<_>>()?;
                if req.limit != 0 && resp.kvs.len() as u64 > req.limit {
                    resp.kvs.truncate(req.limit as usize);
                    resp.more = true;
                }
                resp.count = resp.kvs.len() as u64;
                if resp.more && !req.skip_count {
                    resp.count = tx
                        .prepare_cached(COUNT)?
                        .query_row(rusqlite::params![start, end, at], |r| r.get::<_, i64>(0))?
                        as u64;
                }
                Ok(())
            };
            run().map_err(|e| self.err(e))?;
            Ok(resp)
        })
    }

    /// The revision of the last write committed to the file (by any process).
    pub(crate) fn current(&self) -> Result<Revision, Error> {
        self.snapshot(|_, current, _| Ok(current))
    }

    pub(crate) fn count(&self, req: &RangeRequest) -> Result<u64, Error> {
        self.snapshot(|tx, current, _| {
            let Some((start, end)) = bounds(req) else {
                return Ok(0);
            };
            tx.prepare_cached(COUNT)
                .and_then(|mut stmt| {
                    stmt.query_row(rusqlite::params![start, end, current], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .map(|n| n as u64)
                .map_err(|e| self.err(e))
        })
    }
}

impl History for ReadPool {
    fn events(
        &self,
        prefix: &str,
        after: Revision,
        upto: Revision,
        limit: usize,
    ) -> Result<(Vec<Event>, Revision), Error> {
        self.snapshot(|tx, _, compacted| {
            if after < compacted {
                return Err(Error::Compacted {
                    requested: after,
                    compacted,
                });
            }
            let end = crate::prefix_end(prefix);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let run = || -> rusqlite::Result<Vec<Event>> {
                let mut stmt = tx.prepare_cached(EVENTS)?;
                let rows =
                    stmt.query_map(rusqlite::params![after, upto, prefix, end, limit], event)?;
                rows.collect()
            };
            let events = run().map_err(|e| self.err(e))?;
            let covered = match events.last() {
                Some(last) if events.len() as i64 >= limit => last.revision(),
                _ => upto,
            };
            Ok((events, covered))
        })
    }
}

/// The revision a range reads at, or why it cannot.
fn revision_to_read(
    requested: Revision,
    current: Revision,
    compacted: Revision,
) -> Result<Revision, Error> {
    match requested {
        0 => Ok(current),
        r if r > current => Err(Error::FutureRevision {
            requested: r,
            current,
        }),
        r if r < compacted => Err(Error::Compacted {
            requested: r,
            compacted,
        }),
        r => Ok(r),
    }
}

/// The key interval `[start, end)` a request covers, or `None` when it is empty. An empty `end`
/// means the single key `start`.
fn bounds(req: &RangeRequest) -> Option<(String, String)> {
    let end = if req.end.is_empty() {
        format!("{}\0", req.start)
    } else {
        req.end.clone()
    };
    (req.start < end).then(|| (req.start.clone(), end))
}

/// Reads `key, value, created, rev` columns.
fn key_value(r: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: r.get(0)?,
        value: r.get::<_, Vec<u8>>(1)?.into(),
        create_revision: r.get(2)?,
        mod_revision: r.get(3)?,
    })
}

/// Reads one row of [`EVENTS`].
fn event(r: &Row<'_>) -> rusqlite::Result<Event> {
    let rev: Revision = r.get(0)?;
    let key: String = r.get(1)?;
    let created: Revision = r.get(2)?;
    let deleted: bool = r.get(3)?;
    let prev_rev: Revision = r.get(4)?;
    let prev = match r.get::<_, Option<Revision>>(6)? {
        Some(prev_created) => Some(KeyValue {
            key: key.clone(),
            value: r.get::<_, Vec<u8>>(7)?.into(),
            create_revision: prev_created,
            mod_revision: prev_rev,
        }),
        None => None,
    };
    if deleted {
        let prev = prev.ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(
                6,
                format!("deleted value of {key} at revision {prev_rev}"),
                rusqlite::types::Type::Null,
            )
        })?;
        return Ok(Event::Delete {
            revision: rev,
            prev,
        });
    }
    let kv = KeyValue {
        key,
        value: r.get::<_, Vec<u8>>(5)?.into(),
        create_revision: created,
        mod_revision: rev,
    };
    Ok(Event::Put { kv, prev })
}

/// Every write in `(after, upto]` on any key, read on `conn` (the writer's connection): how the
/// writer learns about writes another process committed to the same database file.
pub(crate) fn events_between(
    conn: &Connection,
    after: Revision,
    upto: Revision,
) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(EVENTS)?;
    let rows = stmt.query_map(rusqlite::params![after, upto, "", "\u{10ffff}", -1], event)?;
    rows.collect()
}
