//! Background work of the writer thread: automatic compaction and WAL checkpoints.
//!
//! Compaction has two steps. The *logical* step moves the compacted revision forward (one
//! `meta` update): from its commit on, reads and watches before it fail with
//! [`crate::Error::Compacted`]. The *sweep* then deletes the rows nobody can read any more, a
//! bounded slice of revisions per transaction so writers are never stalled for long: for every
//! row in the slice it deletes the row it superseded (`prev`), and it deletes the slice's
//! tombstones. Each row is visited once, ever; the sweep's position is kept in `meta`, so a
//! restart resumes it. SQLite reuses the freed pages for new rows, so the file stops growing
//! once history is at its cap.
//!
//! Checkpoints copy the WAL into the database and truncate the WAL; the writer runs them itself
//! (`wal_autocheckpoint` is off) so they can be counted and so the WAL stays small.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use super::schema::{Start, set_meta, sql_error};
use super::{Shared, SqliteConfig};
use crate::Revision;

/// Automatic compaction moves the compacted revision at least this far at a time (except on a
/// periodic tick), so it costs one `meta` write per this many revisions.
const COMPACT_STEP: i64 = 1024;
/// Revisions the sweep covers per transaction (at most twice as many rows deleted).
const SWEEP_SLICE: i64 = 2048;
/// Checkpoint once the WAL holds this much (it is truncated to 0 by every checkpoint, so its
/// file size is what it holds) or after this many transactions, whichever comes first. Bounds
/// the WAL at about this size plus one batch.
pub(crate) const CHECKPOINT_WAL_BYTES: u64 = 8 * 1024 * 1024;
const CHECKPOINT_TRANSACTIONS: u64 = 256;
/// How often the revision/time samples that drive time-based retention are taken.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Maintenance {
    retention: Duration,
    max_history: i64,
    interval: Duration,
    synced: bool,
    /// The compacted revision (committed).
    compacted: Revision,
    /// Rows up to here have been swept for the compaction at `compacted`.
    cursor: Revision,
    /// `(t, rev)`: every revision up to `rev` was committed by `t`. Oldest first.
    samples: VecDeque<(Instant, Revision)>,
    last_tick: Instant,
    /// After a failed sweep, wait for the next tick instead of retrying at once.
    sweep_failed: bool,
    transactions: u64,
    /// After a checkpoint was blocked by readers, wait for the next tick to try again.
    checkpoint_blocked: bool,
}

// === impl Maintenance ===

impl Maintenance {
    pub(crate) fn new(config: &SqliteConfig, start: Start) -> Self {
        let now = Instant::now();
        Self {
            retention: config.retention,
            max_history: i64::try_from(config.max_history_rows).unwrap_or(i64::MAX),
            interval: config.maintenance_interval,
            synced: config.synchronous_full,
            compacted: start.compacted,
            cursor: start.cursor.min(start.compacted),
            // History written before a restart counts as written now: it is kept a full
            // retention period longer rather than too short.
            samples: VecDeque::from([(now, start.rev)]),
            last_tick: now,
            sweep_failed: false,
            transactions: 0,
            checkpoint_blocked: false,
        }
    }

    pub(crate) fn compacted(&self) -> Revision {
        self.compacted
    }

    /// How long the writer may wait for requests before running [`Maintenance::run`].
    pub(crate) fn wait(&self) -> Duration {
        if self.cursor < self.compacted && !self.sweep_failed {
            Duration::ZERO
        } else {
            self.interval
        }
    }

    /// Records a committed write transaction.
    pub(crate) fn committed(&mut self, rev: Revision, compacted: Revision) {
        self.compacted = compacted;
        self.transactions += 1;
        self.sample(rev, Instant::now());
    }

    fn sample(&mut self, rev: Revision, now: Instant) {
        let due = self
            .samples
            .back()
            .is_none_or(|&(t, r)| r < rev && now.duration_since(t) >= SAMPLE_EVERY);
        if due {
            self.samples.push_back((now, rev));
        }
    }

    /// The revision automatic compaction may go up to: everything older than `retention`, or
    /// more if history exceeds `max_history` revisions.
    fn target(&mut self, rev: Revision, now: Instant) -> Revision {
        let old_enough = |t: Instant| {
            now.checked_duration_since(t)
                .is_some_and(|age| age >= self.retention)
        };
        while self.samples.len() > 1 && old_enough(self.samples[1].0) {
            self.samples.pop_front();
        }
        let by_time = match self.samples.front() {
            Some(&(t, r)) if old_enough(t) => r,
            _ => 0,
        };
        by_time.max(rev - self.max_history).min(rev)
    }

    /// Runs one round: moves the compacted revision if due, sweeps one slice, checkpoints if due.
    pub(crate) fn run(&mut self, conn: &Connection, path: &Path, rev: Revision, shared: &Shared) {
        let now = Instant::now();
        let tick = now.duration_since(self.last_tick) >= self.interval;
        if tick {
            self.last_tick = now;
            self.sweep_failed = false;
            self.checkpoint_blocked = false;
            self.sample(rev, now);
        }
        let target = self.target(rev, now);
        if target > self.compacted && (tick || target - self.compacted >= COMPACT_STEP) {
            match set_compacted(conn, target) {
                Ok(()) => {
                    self.compacted = target;
                    shared.compacted.store(target, Ordering::SeqCst);
                    self.count_sync(shared);
                }
                Err(e) => {
                    tracing::warn!(error = %sql_error(path, e), "automatic compaction failed; retrying later")
                }
            }
        }
        if self.cursor < self.compacted && !self.sweep_failed {
            match sweep(conn, self.cursor, self.compacted) {
                Ok((cursor, deleted)) => {
                    self.cursor = cursor;
                    shared.history_rows.fetch_sub(deleted, Ordering::Relaxed);
                    self.count_sync(shared);
                }
                Err(e) => {
                    self.sweep_failed = true;
                    tracing::warn!(error = %sql_error(path, e), "compaction sweep failed; retrying later");
                }
            }
        }
        let due =
            self.transactions >= CHECKPOINT_TRANSACTIONS || wal_size(path) >= CHECKPOINT_WAL_BYTES;
        if (due && !self.checkpoint_blocked) || (tick && self.transactions > 0) {
            self.checkpoint(conn, path, shared);
        }
    }

    /// Copies the WAL into the database and truncates it.
    pub(crate) fn checkpoint(&mut self, conn: &Connection, path: &Path, shared: &Shared) {
        self.transactions = 0;
        let result = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        });
        match result {
            Ok(0) => self.count_sync(shared),
            // Readers kept part of the WAL in use past the busy timeout; try again next tick.
            Ok(_) => {
                self.checkpoint_blocked = true;
                tracing::debug!("wal checkpoint blocked by readers; retrying later");
            }
            Err(e) => {
                self.checkpoint_blocked = true;
                tracing::warn!(error = %sql_error(path, e), "wal checkpoint failed; retrying later");
            }
        }
    }

    fn count_sync(&self, shared: &Shared) {
        if self.synced {
            shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The size of the database's WAL file (0 if it does not exist).
fn wal_size(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

fn set_compacted(conn: &Connection, target: Revision) -> rusqlite::Result<()> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    set_meta(&tx, "compacted", target)?;
    tx.commit()
}

/// Deletes the rows made unreadable by compacting to `compacted`, for one slice of revisions
/// after `cursor`. Returns the new cursor and how many rows went.
fn sweep(
    conn: &Connection,
    cursor: Revision,
    compacted: Revision,
) -> rusqlite::Result<(Revision, u64)> {
    let end = (cursor + SWEEP_SLICE).min(compacted);
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    // Every row at or before `compacted` that has a successor at or before it is superseded.
    // A create after a delete has prev = 0; the tombstone before it goes by the second rule.
    let superseded = tx
        .prepare_cached("DELETE FROM log WHERE rev IN (SELECT prev FROM log WHERE rev > ?1 AND rev <= ?2 AND prev > 0)")?
        .execute([cursor, end])?;
    let tombstones = tx
        .prepare_cached("DELETE FROM log WHERE rev > ?1 AND rev <= ?2 AND deleted = 1")?
        .execute([cursor, end])?;
    set_meta(&tx, "compact_cursor", end)?;
    tx.commit()?;
    Ok((end, (superseded + tombstones) as u64))
}
