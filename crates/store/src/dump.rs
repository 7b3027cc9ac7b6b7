//! Export, import and snapshots: moving a cluster's keys between stores (SQLite ⇄ etcd) and
//! backing up the embedded store.
//!
//! # The file
//!
//! A dump is JSON lines, written and read as a stream:
//!
//! ```text
//! {"format":"drover-datastore-export","version":1,"source":"sqlite","revision":812,"compacted":300}
//! {"key":"/registry/…","value":"<base64>","create_revision":17,"mod_revision":805}
//! …
//! {"end":{"records":431,"sha256":"<hex of every byte before this line>"}}
//! ```
//!
//! The header names the source's current and compacted revision at the moment of the export
//! (every record is the key's value *at that revision*: an export is one consistent read). The
//! records come in old `mod_revision` order. The trailer counts them and holds the SHA-256 of
//! every byte before it, so a truncated, edited or corrupted file is refused before anything is
//! imported (SQLite: the import is one transaction into a new file; etcd: the whole file is
//! verified before the first write).
//!
//! # Revisions after an import
//!
//! The records get new revisions: strictly increasing in the old order, and all of them
//! greater than every revision of the source *and* of the target (`base + i` for the `i`-th
//! record, `base = max(source revision, target revision)`). Every revision before the last
//! imported one is then compacted, so a client holding an old resourceVersion gets
//! "410 Gone" and relists instead of silently missing changes. `create_revision` becomes the
//! new `mod_revision` (the old one may name a revision that no longer exists). On SQLite the
//! revisions are simply written; on etcd, whose revisions are its own, the importer first
//! advances etcd's revision with no-op writes until it passes the source's
//! (`docs/decisions/0006-datastore-migration.md` explains the choice).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Bytes, EtcdStore, KeyValue, RangeRequest, Revision, Store};

/// The `format` field of every dump's header.
pub const FORMAT: &str = "drover-datastore-export";
/// The version of the file format this build writes and reads.
pub const VERSION: u32 = 1;
/// Keys under this prefix are the store's own bookkeeping (etcd's compaction record, the
/// watch fence, the importer's revision bumps); they are neither exported nor imported.
pub const INTERNAL_PREFIX: &str = "/drover/";
/// Printed to stderr by every command that writes a dump or snapshot.
pub const SECRETS_WARNING: &str = "warning: this file holds every object of the cluster, \
    Secrets included, unencrypted; it was created readable by its owner only (0600): keep it \
    that way and store it like a password";

/// What a dump's first line says about its source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The file format version ([`VERSION`]).
    pub version: u32,
    /// The kind of store it came from (`sqlite`, `etcd`, …), for people reading the file.
    pub source: String,
    /// The source's revision the export was read at.
    pub revision: Revision,
    /// The source's compacted revision at that moment.
    pub compacted: Revision,
}

/// One key in the file.
#[derive(Serialize, Deserialize)]
struct Record {
    key: String,
    value: String,
    create_revision: Revision,
    mod_revision: Revision,
}

/// The last line.
#[derive(Serialize, Deserialize)]
struct Trailer {
    end: End,
}

#[derive(Serialize, Deserialize)]
struct End {
    records: u64,
    sha256: String,
}

/// What an export wrote or an import read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The file's header.
    pub header: Header,
    /// How many keys it holds.
    pub records: u64,
}

/// What an import did to the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Imported {
    /// How many keys were written.
    pub records: u64,
    /// The revision of the first imported key (every older revision is compacted).
    pub first_revision: Revision,
    /// The target's revision after the import; also its compacted revision.
    pub revision: Revision,
}

/// What can go wrong exporting or importing. Every variant names the file or store.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a dump of a format this build reads.
    #[error("{}: not a Drover datastore export: {what}", path.display())]
    NotADump {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        what: String,
    },
    /// The file was written by a format version this build does not read.
    #[error("{}: export format version {found} is not supported (this drover reads version {VERSION}); use the drover release that wrote it", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// A line in the middle is not what it must be.
    #[error("{}: line {line}: {what}; the file is corrupted, nothing was imported", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: u64,
        /// What is wrong with it.
        what: String,
    },
    /// The file ends before its trailer.
    #[error("{}: truncated after {records} records (no end line with the checksum); nothing was imported", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// How many records were read.
        records: u64,
    },
    /// The checksum or record count in the trailer does not match the content.
    #[error("{}: checksum mismatch: the end line says {expected}, the content hashes to {found}; the file was changed or damaged, nothing was imported", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// What the trailer claims.
        expected: String,
        /// What the content gives.
        found: String,
    },
    /// The target already holds data.
    #[error(
        "the target {target} is not empty (it holds {keys} keys, e.g. {example:?}); import only into an empty datastore (a new SQLite file or an unused etcd / --datastore-prefix), or use `drover datastore snapshot restore` to replace an embedded store"
    )]
    NotEmpty {
        /// The target store.
        target: String,
        /// How many keys it holds.
        keys: u64,
        /// One of them.
        example: String,
    },
    /// A server (or another import) has the SQLite store open.
    #[error("{}: the datastore is in use by a running drover server (it holds a lock on this file); stop the server(s) using it first", path.display())]
    InUse {
        /// The lock file.
        path: PathBuf,
    },
    /// The store failed.
    #[error("{target}: {source}")]
    Store {
        /// The store.
        target: String,
        /// The error.
        source: crate::Error,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DumpError + '_ {
    move |source| DumpError::Io {
        path: path.to_owned(),
        source,
    }
}

// === writing ===

/// Writes a dump line by line, hashing as it goes.
pub struct DumpWriter<W: Write> {
    out: W,
    path: PathBuf,
    hasher: Sha256,
    records: u64,
    header: Header,
    last: Revision,
}

impl<W: Write> DumpWriter<W> {
    /// Starts a dump into `out` (`path` names it in errors) and writes the header.
    pub fn new(out: W, path: &Path, header: Header) -> Result<Self, DumpError> {
        let mut w = DumpWriter {
            out,
            path: path.to_owned(),
            hasher: Sha256::new(),
            records: 0,
            header,
            last: 0,
        };
        let line = serde_json::to_vec(&w.header).expect("a header serializes");
        w.line(&line)?;
        Ok(w)
    }

    fn line(&mut self, line: &[u8]) -> Result<(), DumpError> {
        self.hasher.update(line);
        self.hasher.update(b"\n");
        self.out.write_all(line).map_err(io(&self.path))?;
        self.out.write_all(b"\n").map_err(io(&self.path))
    }

    /// Writes one key. Keys must come in `mod_revision` order.
    pub fn record(&mut self, kv: &KeyValue) -> Result<(), DumpError> {
        assert!(
            kv.mod_revision >= self.last,
            "dump records must be written in mod_revision order"
        );
        self.last = kv.mod_revision;
        let record = Record {
            key: kv.key.clone(),
            value: BASE64.encode(&kv.value),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
        };
        let line = serde_json::to_vec(&record).expect("a record serializes");
        self.line(&line)?;
        self.records += 1;
        Ok(())
    }

    /// Writes the trailer and flushes; returns what was written.
    pub fn finish(mut self) -> Result<Summary, DumpError> {
        let trailer = Trailer {
            end: End {
                records: self.records,
                sha256: hex(&self.hasher.clone().finalize()),
            },
        };
        let line = serde_json::to_vec(&trailer).expect("a trailer serializes");
        self.out.write_all(&line).map_err(io(&self.path))?;
        self.out.write_all(b"\n").map_err(io(&self.path))?;
        self.out.flush().map_err(io(&self.path))?;
        Ok(Summary {
            header: self.header,
            records: self.records,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `path` for a dump: new file, mode 0600 (it holds Secrets), fails if it exists.
pub fn create_private(path: &Path) -> Result<std::fs::File, DumpError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))
}

/// Writes a dump to `path` (0600, must not exist) through `fill`, syncing it before it is
/// renamed into place, so a crash never leaves a half-written file under the final name.
pub fn write_file<F>(path: &Path, fill: F) -> Result<Summary, DumpError>
where
    F: FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> Result<Summary, DumpError>,
{
    if path.exists() {
        return Err(DumpError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists; choose a new name (exports never overwrite)",
            ),
        });
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    let file = create_private(&partial)?;
    let result = (|| {
        let summary = {
            let mut out = std::io::BufWriter::new(&file);
            let summary = fill(&mut out)?;
            out.flush().map_err(io(&partial))?;
            summary
        };
        file.sync_all().map_err(io(&partial))?;
        std::fs::rename(&partial, path).map_err(io(path))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Exports every key of `store` (except [`INTERNAL_PREFIX`]) at one revision. The keys are
/// collected in memory to be written in `mod_revision` order (etcd ranges come in key order).
pub async fn export_store<S: Store, W: Write>(
    store: &S,
    source: &str,
    out: W,
    path: &Path,
) -> Result<Summary, DumpError> {
    let target = format!("the {source} datastore");
    let err = |e| DumpError::Store {
        target: target.clone(),
        source: e,
    };
    let revision = store.current_revision().await.map_err(err)?;
    let compacted = store.compacted_revision().await.map_err(err)?;
    let mut kvs = Vec::new();
    let mut start = String::new();
    loop {
        let page = store
            .range(RangeRequest {
                start: start.clone(),
                end: crate::prefix_end(""),
                limit: 1000,
                revision,
                skip_count: true,
            })
            .await
            .map_err(err)?;
        if let Some(last) = page.kvs.last() {
            start = format!("{}\0", last.key);
        }
        kvs.extend(
            page.kvs
                .into_iter()
                .filter(|kv| !kv.key.starts_with(INTERNAL_PREFIX)),
        );
        if !page.more {
            break;
        }
    }
    kvs.sort_by(|a, b| (a.mod_revision, &a.key).cmp(&(b.mod_revision, &b.key)));
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        source: source.into(),
        revision,
        compacted,
    };
    let mut w = DumpWriter::new(out, path, header)?;
    for kv in &kvs {
        w.record(kv)?;
    }
    w.finish()
}

// === reading ===

/// Reads a dump line by line, checking everything: the header, each record, the order, the
/// trailer's count and checksum. A record is only handed out once its line parsed; the caller
/// must not consider anything imported before [`DumpReader::next_record`] returned `Ok(None)` (the
/// trailer checked out).
pub struct DumpReader<R: BufRead> {
    input: R,
    path: PathBuf,
    hasher: Sha256,
    line: u64,
    records: u64,
    last: Revision,
    header: Header,
    done: bool,
}

impl<R: BufRead> DumpReader<R> {
    /// Reads and checks the header.
    pub fn new(mut input: R, path: &Path) -> Result<Self, DumpError> {
        let mut first = Vec::new();
        input.read_until(b'\n', &mut first).map_err(io(path))?;
        let not_a_dump = |what: String| DumpError::NotADump {
            path: path.to_owned(),
            what,
        };
        if first.is_empty() {
            return Err(not_a_dump("the file is empty".into()));
        }
        let value: serde_json::Value = serde_json::from_slice(trim(&first))
            .map_err(|e| not_a_dump(format!("the first line is not JSON ({e})")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(not_a_dump(format!(
                "the first line has no \"format\":\"{FORMAT}\""
            )));
        }
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != u64::from(VERSION) {
            return Err(DumpError::Version {
                path: path.to_owned(),
                found: u32::try_from(version).unwrap_or(u32::MAX),
            });
        }
        let header: Header = serde_json::from_value(value)
            .map_err(|e| not_a_dump(format!("the header is incomplete: {e}")))?;
        let mut hasher = Sha256::new();
        hasher.update(&first);
        if !first.ends_with(b"\n") {
            return Err(DumpError::Truncated {
                path: path.to_owned(),
                records: 0,
            });
        }
        Ok(DumpReader {
            input,
            path: path.to_owned(),
            hasher,
            line: 1,
            records: 0,
            last: 0,
            header,
            done: false,
        })
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How many records were read so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn corrupt(&self, what: impl Into<String>) -> DumpError {
        DumpError::Corrupt {
            path: self.path.clone(),
            line: self.line,
            what: what.into(),
        }
    }

    /// The next record; `Ok(None)` after the trailer was read and verified.
    pub fn next_record(&mut self) -> Result<Option<KeyValue>, DumpError> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::new();
        self.input
            .read_until(b'\n', &mut buf)
            .map_err(io(&self.path))?;
        self.line += 1;
        if buf.is_empty() || !buf.ends_with(b"\n") {
            return Err(DumpError::Truncated {
                path: self.path.clone(),
                records: self.records,
            });
        }
        let line = trim(&buf);
        if line.starts_with(b"{\"end\"") {
            let trailer: Trailer = serde_json::from_slice(line)
                .map_err(|e| self.corrupt(format!("the end line is not valid: {e}")))?;
            let found = hex(&self.hasher.clone().finalize());
            if trailer.end.sha256 != found {
                return Err(DumpError::Checksum {
                    path: self.path.clone(),
                    expected: trailer.end.sha256,
                    found,
                });
            }
            if trailer.end.records != self.records {
                return Err(self.corrupt(format!(
                    "the end line counts {} records but the file holds {}",
                    trailer.end.records, self.records
                )));
            }
            let mut rest = Vec::new();
            self.input
                .read_until(b'\n', &mut rest)
                .map_err(io(&self.path))?;
            if !rest.is_empty() {
                self.line += 1;
                return Err(self.corrupt("content after the end line"));
            }
            self.done = true;
            return Ok(None);
        }
        self.hasher.update(&buf);
        let record: Record =
            serde_json::from_slice(line).map_err(|e| self.corrupt(format!("not a record: {e}")))?;
        let value = BASE64.decode(record.value.as_bytes()).map_err(|e| {
            self.corrupt(format!("the value of {:?} is not base64: {e}", record.key))
        })?;
        if record.mod_revision < self.last || record.mod_revision <= 0 {
            return Err(self.corrupt(format!(
                "record {:?} has mod_revision {} after {}: records must be in revision order",
                record.key, record.mod_revision, self.last
            )));
        }
        if record.key.starts_with(INTERNAL_PREFIX) {
            return Err(self.corrupt(format!(
                "record {:?} is under the store's internal prefix {INTERNAL_PREFIX}",
                record.key
            )));
        }
        self.last = record.mod_revision;
        self.records += 1;
        Ok(Some(KeyValue {
            key: record.key,
            value: Bytes::from(value),
            create_revision: record.create_revision,
            mod_revision: record.mod_revision,
        }))
    }
}

fn trim(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Opens a dump file for reading.
pub fn open(path: &Path) -> Result<DumpReader<std::io::BufReader<std::fs::File>>, DumpError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    DumpReader::new(std::io::BufReader::new(file), path)
}

/// Reads the whole file and checks it (header, records, order, count, checksum).
pub fn verify(path: &Path) -> Result<Summary, DumpError> {
    let mut reader = open(path)?;
    while reader.next_record()?.is_some() {}
    Ok(Summary {
        header: reader.header().clone(),
        records: reader.records(),
    })
}

// === etcd ===

/// How many no-op writes run at once while advancing etcd's revision.
const BUMPERS: usize = 16;

/// Imports the dump at `path` into an empty etcd (under the store's key prefix).
///
/// The file is verified completely first. Then etcd's revision is advanced past the source's
/// with no-op writes (create and delete of keys under `/drover/migrate/`), the keys are
/// created one by one in their old order, and etcd is compacted to the last one.
pub async fn import_etcd(store: &EtcdStore, path: &Path) -> Result<Imported, DumpError> {
    let summary = verify(path)?;
    let target = format!("etcd (key prefix {:?})", store.key_prefix());
    let err = |source| DumpError::Store {
        target: target.clone(),
        source,
    };
    let all = store.count("").await.map_err(err)?;
    let internal = store.count(INTERNAL_PREFIX).await.map_err(err)?;
    if all > internal {
        let first = store
            .range(RangeRequest {
                start: String::new(),
                end: crate::prefix_end(""),
                limit: 1,
                revision: 0,
                skip_count: true,
            })
            .await
            .map_err(err)?;
        return Err(DumpError::NotEmpty {
            target,
            keys: all - internal,
            example: first
                .kvs
                .first()
                .map(|kv| kv.key.clone())
                .unwrap_or_default(),
        });
    }
    bump_etcd(store, summary.header.revision.max(summary.header.compacted))
        .await
        .map_err(err)?;
    let mut reader = open(path)?;
    let mut first_revision = 0;
    let mut last = 0;
    while let Some(kv) = reader.next_record()? {
        let rev = store.create(&kv.key, kv.value).await.map_err(err)?;
        if first_revision == 0 {
            first_revision = rev;
        }
        last = rev;
    }
    if reader.records() != summary.records {
        return Err(reader.corrupt("the file changed while it was being imported"));
    }
    let revision = if last == 0 {
        store.current_revision().await.map_err(err)?
    } else {
        last
    };
    store.compact(revision).await.map_err(err)?;
    Ok(Imported {
        records: summary.records,
        first_revision,
        revision,
    })
}

/// Writes no-ops until etcd's revision is at least `target`. Each of [`BUMPERS`] tasks creates
/// and deletes its own key, so they never conflict; each write is one etcd revision.
async fn bump_etcd(store: &EtcdStore, target: Revision) -> Result<(), crate::Error> {
    if store.current_revision().await? >= target {
        return Ok(());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..BUMPERS {
        let store = store.clone();
        tasks.spawn(async move {
            let key = format!("{INTERNAL_PREFIX}migrate/bump/{i}");
            loop {
                let created = store.create(&key, Bytes::new()).await?;
                let (deleted, _) = store.delete(&key, created).await?;
                if deleted >= target {
                    return Ok::<_, crate::Error>(());
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| crate::Error::Backend(format!("revision bump task failed: {e}")))??;
    }
    Ok(())
}

// === sqlite ===

/// Exports the SQLite database at `db` into a new file at `out` (0600; online: servers may
/// keep running, the export is one read transaction).
pub fn export_sqlite(db: &Path, out: &Path) -> Result<Summary, DumpError> {
    write_file(out, |w| crate::sqlite::dump::export(db, w, out))
}

/// Imports the dump at `path` into the SQLite database at `db`, which must hold no keys unless
/// `replace` (a restore). Fails with [`DumpError::InUse`] while a store is open on `db`.
pub fn import_sqlite(db: &Path, path: &Path, replace: bool) -> Result<Imported, DumpError> {
    crate::sqlite::dump::import(db, open(path)?, replace)
}
