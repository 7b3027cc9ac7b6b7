//! The database layout, connection settings and error mapping.
//!
//! ```text
//! log(rev PK, key, created, prev, deleted, value)   one row per write; rev is the revision
//! meta(name PK, value)                              'rev', 'compacted', 'compact_cursor'
//! ```
//!
//! A delete is a tombstone row (`deleted = 1`, empty value). `prev` is the revision of the
//! key's previous row (0 for a create), which is how compaction finds superseded rows and how
//! watch replay finds the previous value of an update or delete.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::SqliteConfig;
use crate::{Error, Revision};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    rev     INTEGER PRIMARY KEY,
    key     TEXT    NOT NULL,
    created INTEGER NOT NULL,
    prev    INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    value   BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// How long a connection waits for a lock (readers holding the WAL during a checkpoint).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the writer starts from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start {
    pub(crate) rev: Revision,
    pub(crate) compacted: Revision,
    pub(crate) cursor: Revision,
    pub(crate) rows: u64,
}

/// Opens the write connection and creates the schema.
pub(crate) fn open_writer(config: &SqliteConfig) -> Result<Connection, Error> {
    let path = &config.path;
    let err = |e| sql_error(path, e);
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Backend(format!(
            "{}: cannot switch the database to WAL mode (got {mode:?}); use a local filesystem",
            path.display()
        )));
    }
    let synchronous = if config.synchronous_full {
        "FULL"
    } else {
        "OFF"
    };
    // Checkpoints are run (and counted) by the writer itself, see maintenance.rs.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA wal_autocheckpoint = 0;"
    ))
    .map_err(err)?;
    if let Some(bytes) = config.max_size_bytes {
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(err)?;
        let pages = (bytes / page_size.max(1) as u64).max(1);
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(err)?;
    }
    conn.execute_batch(SCHEMA).map_err(err)?;
    Ok(conn)
}

/// Opens a read connection to an existing database.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, Error> {
    let err = |e| sql_error(path, e);
    // Read-write flags with `query_only`: a read-only connection could not use the WAL index
    // if it ever had to rebuild it.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    conn.execute_batch("PRAGMA query_only = 1").map_err(err)?;
    Ok(conn)
}

/// Reads where the store stands. The revision never goes backwards: it is stored in `meta` by
/// every write transaction, and compaction never removes rows above the compacted revision.
pub(crate) fn load_meta(conn: &Connection, path: &Path) -> Result<Start, Error> {
    let err = |e| sql_error(path, e);
    let rev = meta(conn, "rev").map_err(err)?;
    let compacted = meta(conn, "compacted").map_err(err)?;
    let cursor = meta(conn, "compact_cursor").map_err(err)?;
    let (max_rev, rows): (Option<Revision>, i64) = conn
        .query_row("SELECT max(rev), count(*) FROM log", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(err)?;
    let rev = rev.max(compacted).max(max_rev.unwrap_or(0));
    Ok(Start {
        rev,
        compacted,
        cursor,
        rows: rows as u64,
    })
}

/// One `meta` value, 0 when absent.
pub(crate) fn meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    let value = conn
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(value.unwrap_or(0))
}

/// Sets one `meta` value.
pub(crate) fn set_meta(conn: &Connection, name: &str, value: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2")?
        .execute(rusqlite::params![name, value])?;
    Ok(())
}

/// Whether SQLite ran out of room (disk full or `max_page_count` reached).
pub(crate) fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::DiskFull)
}

/// Maps a SQLite error to the store's error, naming the database.
pub(crate) fn sql_error(path: &Path, e: rusqlite::Error) -> Error {
    error_from(path, is_full(&e), &e.to_string())
}

/// Builds the store error for a failure described by `full` and `message` (used to answer every
/// request of a failed batch, since `rusqlite::Error` cannot be cloned).
pub(crate) fn error_from(path: &Path, full: bool, message: &str) -> Error {
    if full {
        Error::NoSpace {
            detail: format!(
                "database {} is full ({message}); free disk space or raise max_size_bytes, \
                 then retry (compaction frees room for new writes)",
                path.display()
            ),
        }
    } else {
        Error::Backend(format!("database {}: {message}", path.display()))
    }
}
