//! Export and import of a SQLite store's file, and the lock that keeps an import or restore
//! away from running servers (see [`crate::dump`] for the file format).
//!
//! - **Export** opens its own read connection and reads everything in one read transaction:
//!   WAL mode gives it one snapshot of the file while servers keep writing, so an export of a
//!   live store is consistent (every key at one revision) without stopping anything.
//! - **Import** writes a *new* file beside the database in one transaction, with the revisions
//!   [`crate::dump`] describes, and renames it over the database only once it is complete and
//!   synced; a bad file leaves the old database untouched.
//! - **The lock**: every [`super::SqliteStore`] holds a shared `flock` on `<db>.lock` while it
//!   is open (servers sharing one file all hold it); import and restore take it exclusively and
//!   fail at once if anyone holds it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::SqliteConfig;
use super::schema::{self, set_meta};
use crate::dump::{DumpError, DumpReader, DumpWriter, FORMAT, Header, Imported, Summary, VERSION};
use crate::{Error, Revision};

/// The lock file of the database at `db`.
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn open_lock(db: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path(db))
}

/// Takes the shared lock an open store holds (released when the file is closed).
pub(crate) fn lock_shared(db: &Path) -> Result<File, Error> {
    let lock = lock_path(db);
    let file = open_lock(db).map_err(|e| {
        Error::Backend(format!("cannot open the lock file {}: {e}", lock.display()))
    })?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Unavailable(format!(
            "{} is locked by `drover datastore import` or `snapshot restore`; wait for it to finish",
            lock.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Backend(format!(
            "cannot lock {}: {e}",
            lock.display()
        ))),
    }
}

/// Takes the lock exclusively: no store may be open on `db`.
fn lock_exclusive(db: &Path) -> Result<File, DumpError> {
    let lock = lock_path(db);
    let file = open_lock(db).map_err(|source| DumpError::Io {
        path: lock.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(DumpError::InUse { path: lock }),
        Err(std::fs::TryLockError::Error(source)) => Err(DumpError::Io { path: lock, source }),
    }
}

fn sql(db: &Path) -> impl Fn(rusqlite::Error) -> DumpError + '_ {
    move |e| DumpError::Store {
        target: format!("the SQLite datastore {}", db.display()),
        source: schema::sql_error(db, e),
    }
}

/// Every live key at the file's current revision, oldest write first, in one read transaction.
const LIVE: &str = "
SELECT l.key, l.value, l.created, l.rev
FROM log l
WHERE l.rev <= ?1 AND l.deleted = 0
  AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key AND n.rev > l.rev AND n.rev <= ?1)
ORDER BY l.rev";

/// Exports the database at `db` (which may be in use by servers) into `out`.
pub(crate) fn export(db: &Path, out: impl Write, path: &Path) -> Result<Summary, DumpError> {
    if !db.is_file() {
        return Err(DumpError::Io {
            path: db.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no datastore here (is --data-dir or --datastore-endpoint right?)",
            ),
        });
    }
    let mut conn = schema::open_reader(db).map_err(|source| DumpError::Store {
        target: format!("the SQLite datastore {}", db.display()),
        source,
    })?;
    let tx = conn.transaction().map_err(sql(db))?;
    let revision = schema::meta(&tx, "rev").map_err(sql(db))?;
    let compacted = schema::meta(&tx, "compacted").map_err(sql(db))?;
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        source: "sqlite".into(),
        revision,
        compacted,
    };
    let mut w = DumpWriter::new(out, path, header)?;
    let mut stmt = tx.prepare(LIVE).map_err(sql(db))?;
    let mut rows = stmt.query([revision]).map_err(sql(db))?;
    while let Some(row) = rows.next().map_err(sql(db))? {
        let kv = crate::KeyValue {
            key: row.get(0).map_err(sql(db))?,
            value: row.get::<_, Vec<u8>>(1).map_err(sql(db))?.into(),
            create_revision: row.get(2).map_err(sql(db))?,
            mod_revision: row.get(3).map_err(sql(db))?,
        };
        if !kv.key.starts_with(crate::dump::INTERNAL_PREFIX) {
            w.record(&kv)?;
        }
    }
    w.finish()
}

/// The current revision and number of live keys of an existing database, `(0, 0)` if none.
fn existing(db: &Path) -> Result<(Revision, u64, String), DumpError> {
    if !db.exists() {
        return Ok((0, 0, String::new()));
    }
    let conn =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(sql(db))?;
    let start = schema::load_meta(&conn, db).map_err(|source| DumpError::Store {
        target: format!("the SQLite datastore {}", db.display()),
        source,
    })?;
    let (live, example): (i64, Option<String>) = conn
        .query_row(
            "SELECT count(*), min(key) FROM log l WHERE deleted = 0 AND NOT EXISTS \
             (SELECT 1 FROM log n WHERE n.key = l.key AND n.rev > l.rev)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql(db))?;
    Ok((start.rev, live as u64, example.unwrap_or_default()))
}

/// Imports the dump read by `reader` into the database at `db`. With `replace` (a restore) an
/// existing database is replaced; without it, a database holding keys is refused. Either way
/// the new revisions start above the dump's and the old database's.
pub(crate) fn import(
    db: &Path,
    mut reader: DumpReader<impl std::io::BufRead>,
    replace: bool,
) -> Result<Imported, DumpError> {
    let _lock = lock_exclusive(db)?;
    let (old_rev, live, example) = existing(db)?;
    if live > 0 && !replace {
        return Err(DumpError::NotEmpty {
            target: format!("SQLite datastore {}", db.display()),
            keys: live,
            example,
        });
    }
    let header = reader.header().clone();
    let base = header.revision.max(header.compacted).max(old_rev);
    let mut tmp = db.as_os_str().to_owned();
    tmp.push(".import");
    let tmp = PathBuf::from(tmp);
    remove_db_files(&tmp)?;
    let result = write_new(&tmp, &mut reader, base);
    let imported = match result {
        Ok(imported) => imported,
        Err(e) => {
            let _ = remove_db_files(&tmp);
            return Err(e);
        }
    };
    // The old database's WAL belongs to it: remove it with it, then move the new file in.
    for suffix in ["-wal", "-shm"] {
        remove(&with_suffix(db, suffix))?;
    }
    std::fs::rename(&tmp, db).map_err(|source| DumpError::Io {
        path: db.to_owned(),
        source,
    })?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| DumpError::Io {
                path: dir.to_owned(),
                source,
            })?;
    }
    Ok(imported)
}

fn write_new(
    tmp: &Path,
    reader: &mut DumpReader<impl std::io::BufRead>,
    base: Revision,
) -> Result<Imported, DumpError> {
    let store_err = |source| DumpError::Store {
        target: format!("the SQLite datastore {}", tmp.display()),
        source,
    };
    let mut conn = schema::open_writer(&SqliteConfig::new(tmp)).map_err(store_err)?;
    let tx = conn.transaction().map_err(sql(tmp))?;
    let mut rev = base;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO log (rev, key, created, prev, deleted, value) VALUES (?1, ?2, ?1, 0, 0, ?3)",
            )
            .map_err(sql(tmp))?;
        while let Some(kv) = reader.next_record()? {
            rev += 1;
            insert
                .execute(rusqlite::params![rev, kv.key, &kv.value[..]])
                .map_err(sql(tmp))?;
        }
    }
    // Everything before the last imported revision is history nobody may read: it either
    // belonged to the source or is a half-imported state.
    for name in ["rev", "compacted", "compact_cursor"] {
        set_meta(&tx, name, rev).map_err(sql(tmp))?;
    }
    tx.commit().map_err(sql(tmp))?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(sql(tmp))?;
    drop(conn);
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|source| DumpError::Io {
            path: tmp.to_owned(),
            source,
        })?;
    let records = reader.records();
    Ok(Imported {
        records,
        first_revision: if records == 0 { 0 } else { base + 1 },
        revision: rev,
    })
}

fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn remove(path: &Path) -> Result<(), DumpError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DumpError::Io {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn remove_db_files(db: &Path) -> Result<(), DumpError> {
    remove(db)?;
    remove(&with_suffix(db, "-wal"))?;
    remove(&with_suffix(db, "-shm"))
}
