//! `drover datastore …`: export/import between datastores (SQLite ⇄ etcd), snapshots of the
//! embedded store, and the server's scheduled snapshots. The work is in
//! `drover_store::dump`; this is the command line around it (docs/backup-and-migration.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use drover_apiserver::Datastore;
use drover_store::dump;
use drover_store::{EtcdConfig, EtcdStore};

/// `drover datastore …`.
#[derive(Subcommand)]
pub(crate) enum DatastoreCommand {
    /// Write every object of a datastore to a file (consistent: one revision; servers may run).
    Export {
        #[command(flatten)]
        target: Target,
        /// The file to write (must not exist; created 0600).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Load an export into an empty datastore (a new SQLite file or an unused etcd prefix).
    Import {
        #[command(flatten)]
        target: Target,
        /// The export file.
        file: PathBuf,
    },
    /// Check an export or snapshot file (format, order, record count, checksum).
    Verify {
        /// The file.
        file: PathBuf,
    },
    /// Back up and restore the embedded (SQLite) datastore.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

/// `drover datastore snapshot …`.
#[derive(Subcommand)]
pub(crate) enum SnapshotCommand {
    /// Take a snapshot now, while servers keep running.
    Save {
        /// The server's data directory.
        #[arg(long, default_value = "/var/lib/drover", env = "DROVER_DATA_DIR")]
        data_dir: PathBuf,
        /// The file to write (default: <data-dir>/snapshots/drover-snapshot-<ms since epoch>.jsonl).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// `sqlite://PATH` when the server runs with that --datastore-endpoint.
        #[arg(long, value_parser = parse_sqlite_endpoint)]
        datastore_endpoint: Option<PathBuf>,
    },
    /// Replace the embedded datastore with a snapshot (refused while a server runs on it).
    Restore {
        /// The server's data directory.
        #[arg(long, default_value = "/var/lib/drover", env = "DROVER_DATA_DIR")]
        data_dir: PathBuf,
        /// The snapshot file.
        file: PathBuf,
        /// `sqlite://PATH` when the server runs with that --datastore-endpoint.
        #[arg(long, value_parser = parse_sqlite_endpoint)]
        datastore_endpoint: Option<PathBuf>,
    },
}

/// Snapshots are of the embedded store: only `sqlite://PATH` (or a path) is accepted.
fn parse_sqlite_endpoint(s: &str) -> Result<PathBuf, String> {
    match drover_apiserver::parse_datastore_endpoint(s)? {
        Datastore::Sqlite(path) => Ok(path),
        Datastore::Etcd(_) => Err(format!(
            "{s:?}: snapshots are of the embedded SQLite datastore; for etcd use \
             `drover datastore export` / `import` (or etcdctl snapshot save)"
        )),
    }
}

/// Which datastore an export reads or an import writes (the server's flags of the same names).
#[derive(Args)]
pub(crate) struct Target {
    /// The server's data directory (the SQLite datastore is <data-dir>/db/state.db).
    #[arg(long, default_value = "/var/lib/drover", env = "DROVER_DATA_DIR")]
    data_dir: PathBuf,
    /// `sqlite://PATH` or `etcd://host:2379[,…]`, as for `drover server`.
    #[arg(long, value_parser = drover_apiserver::parse_datastore_endpoint)]
    datastore_endpoint: Option<Datastore>,
    /// Key prefix in etcd (as `drover server --datastore-prefix`).
    #[arg(long, default_value = "")]
    datastore_prefix: String,
    /// CA bundle of the etcd members.
    #[arg(long)]
    datastore_cafile: Option<PathBuf>,
    /// Client certificate for etcd.
    #[arg(long)]
    datastore_certfile: Option<PathBuf>,
    /// Key of --datastore-certfile.
    #[arg(long)]
    datastore_keyfile: Option<PathBuf>,
}

/// The SQLite file of a data dir.
pub(crate) fn default_db(data_dir: &Path) -> PathBuf {
    data_dir.join("db").join("state.db")
}

enum Resolved {
    Sqlite(PathBuf),
    Etcd(Box<EtcdConfig>),
}

impl Target {
    fn resolve(&self) -> anyhow::Result<Resolved> {
        match &self.datastore_endpoint {
            None => Ok(Resolved::Sqlite(default_db(&self.data_dir))),
            Some(Datastore::Sqlite(path)) => Ok(Resolved::Sqlite(path.clone())),
            Some(Datastore::Etcd(config)) => {
                let mut config = (**config).clone();
                let prefix = &self.datastore_prefix;
                if !prefix.is_empty() && !prefix.starts_with('/') {
                    bail!("--datastore-prefix {prefix:?} must start with '/', e.g. /cluster-a");
                }
                config.prefix = prefix.trim_end_matches('/').to_owned();
                config.ca_file = self.datastore_cafile.clone();
                config.cert_file = self.datastore_certfile.clone();
                config.key_file = self.datastore_keyfile.clone();
                // A one-shot command: no compaction or defragmentation rounds of its own.
                config.maintenance = false;
                config.resolve_schemes().map_err(anyhow::Error::msg)?;
                Ok(Resolved::Etcd(Box::new(config)))
            }
        }
    }
}

/// Runs a `drover datastore` command.
pub(crate) fn run(cmd: DatastoreCommand) -> ExitCode {
    match execute(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drover datastore: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn execute(cmd: DatastoreCommand) -> anyhow::Result<()> {
    match cmd {
        DatastoreCommand::Export { target, output } => {
            let summary = match target.resolve()? {
                Resolved::Sqlite(db) => dump::export_sqlite(&db, &output)?,
                Resolved::Etcd(config) => {
                    let rt = runtime()?;
                    let _guard = rt.enter();
                    let store = EtcdStore::open(*config)?;
                    dump::write_file(&output, |w| {
                        rt.block_on(dump::export_store(&store, "etcd", w, &output))
                    })?
                }
            };
            eprintln!("{}", dump::SECRETS_WARNING);
            println!(
                "exported {} keys at revision {} to {}",
                summary.records,
                summary.header.revision,
                output.display()
            );
        }
        DatastoreCommand::Import { target, file } => {
            let imported = match target.resolve()? {
                Resolved::Sqlite(db) => {
                    make_private_dir(db.parent().unwrap_or(Path::new(".")))?;
                    dump::import_sqlite(&db, &file, false)?
                }
                Resolved::Etcd(config) => {
                    let rt = runtime()?;
                    let _guard = rt.enter();
                    let store = EtcdStore::open(*config)?;
                    rt.block_on(dump::import_etcd(&store, &file))?
                }
            };
            println!(
                "imported {} keys from {}; the datastore is at revision {} (older revisions are \
                 compacted: clients relist)",
                imported.records,
                file.display(),
                imported.revision
            );
        }
        DatastoreCommand::Verify { file } => {
            let summary = dump::verify(&file)?;
            println!(
                "{}: {} keys exported from {} at revision {}; checksum ok",
                file.display(),
                summary.records,
                summary.header.source,
                summary.header.revision
            );
        }
        DatastoreCommand::Snapshot(SnapshotCommand::Save {
            data_dir,
            output,
            datastore_endpoint,
        }) => {
            let output = match output {
                Some(o) => o,
                None => {
                    let dir = data_dir.join("snapshots");
                    make_private_dir(&dir)?;
                    dir.join(snapshot_name(SystemTime::now()))
                }
            };
            let db = datastore_endpoint.unwrap_or_else(|| default_db(&data_dir));
            let summary = dump::export_sqlite(&db, &output)?;
            eprintln!("{}", dump::SECRETS_WARNING);
            println!(
                "snapshot of {} keys at revision {} saved to {}",
                summary.records,
                summary.header.revision,
                output.display()
            );
        }
        DatastoreCommand::Snapshot(SnapshotCommand::Restore {
            data_dir,
            file,
            datastore_endpoint,
        }) => {
            let db = datastore_endpoint.unwrap_or_else(|| default_db(&data_dir));
            make_private_dir(db.parent().unwrap_or(Path::new(".")))?;
            let imported = dump::import_sqlite(&db, &file, true)?;
            println!(
                "restored {} keys from {} into {}; the datastore is at revision {} (older \
                 revisions are compacted: clients relist)",
                imported.records,
                file.display(),
                db.display(),
                imported.revision
            );
        }
    }
    Ok(())
}

fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

// === scheduled snapshots ===

const SNAPSHOT_PREFIX: &str = "drover-snapshot-";
const SNAPSHOT_SUFFIX: &str = ".jsonl";

/// A snapshot file name that sorts by time (milliseconds since the epoch, zero-padded).
fn snapshot_name(at: SystemTime) -> String {
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{SNAPSHOT_PREFIX}{ms:015}{SNAPSHOT_SUFFIX}")
}

/// `drover server` flags for scheduled snapshots of the embedded datastore.
#[derive(Args, Clone)]
pub(crate) struct ScheduleArgs {
    /// Take a snapshot of the embedded datastore this often (e.g. 6h, 30m; off when unset).
    #[arg(long, value_parser = crate::parse_duration)]
    datastore_snapshot_interval: Option<Duration>,
    /// Keep this many of the newest scheduled snapshots; older ones are deleted.
    #[arg(long, default_value_t = 5)]
    datastore_snapshot_retention: usize,
    /// Where scheduled snapshots go (default: <data-dir>/snapshots).
    #[arg(long)]
    datastore_snapshot_dir: Option<PathBuf>,
}

/// Starts the scheduled snapshots, if configured, as a task on the current runtime. `db` is
/// the SQLite datastore (`None` for etcd, which has its own `etcdctl snapshot`).
pub(crate) fn spawn_schedule(
    args: &ScheduleArgs,
    data_dir: &Path,
    db: Option<PathBuf>,
) -> anyhow::Result<()> {
    let Some(interval) = args.datastore_snapshot_interval else {
        return Ok(());
    };
    let Some(db) = db else {
        bail!(
            "--datastore-snapshot-interval applies to the embedded SQLite datastore; back up etcd \
             with `drover datastore export` or etcdctl snapshot save"
        );
    };
    if args.datastore_snapshot_retention == 0 {
        bail!("--datastore-snapshot-retention must keep at least 1 snapshot");
    }
    if interval.is_zero() {
        bail!("--datastore-snapshot-interval must be positive");
    }
    let dir = args
        .datastore_snapshot_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("snapshots"));
    make_private_dir(&dir)?;
    let keep = args.datastore_snapshot_retention;
    tracing::warn!(dir = %dir.display(), "{}", dump::SECRETS_WARNING);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; the first snapshot comes after one interval
        loop {
            tick.tick().await;
            let (db, dir) = (db.clone(), dir.clone());
            let done =
                tokio::task::spawn_blocking(move || snapshot_and_prune(&db, &dir, keep)).await;
            match done {
                Ok(Ok(path)) => tracing::info!(path = %path.display(), "datastore snapshot saved"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "scheduled datastore snapshot failed")
                }
                Err(e) => tracing::warn!(error = %e, "scheduled datastore snapshot task failed"),
            }
        }
    });
    Ok(())
}

fn snapshot_and_prune(db: &Path, dir: &Path, keep: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join(snapshot_name(SystemTime::now()));
    dump::export_sqlite(db, &path)?;
    prune(dir, keep)?;
    Ok(path)
}

/// Deletes all but the `keep` newest scheduled snapshots in `dir` (other files are left alone).
fn prune(dir: &Path, keep: usize) -> anyhow::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(SNAPSHOT_PREFIX) && n.ends_with(SNAPSHOT_SUFFIX))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for name in &names[..excess] {
        let path = dir.join(name);
        std::fs::remove_file(&path).with_context(|| format!("cannot delete {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(interval: Option<u64>, retention: usize) -> ScheduleArgs {
        ScheduleArgs {
            datastore_snapshot_interval: interval.map(Duration::from_secs),
            datastore_snapshot_retention: retention,
            datastore_snapshot_dir: None,
        }
    }

    #[test]
    fn schedule_flags_are_refused_clearly_where_they_cannot_work() {
        let dir = tempfile::tempdir().unwrap();
        let db = Some(dir.path().join("state.db"));
        // Unset: nothing to do, for any datastore.
        spawn_schedule(&schedule(None, 5), dir.path(), None).unwrap();
        let err = spawn_schedule(&schedule(Some(60), 5), dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("embedded SQLite"), "{err}");
        let err = spawn_schedule(&schedule(Some(60), 0), dir.path(), db.clone()).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        let err = spawn_schedule(&schedule(Some(0), 5), dir.path(), db).unwrap_err();
        assert!(err.to_string().contains("positive"), "{err}");
    }

    #[test]
    fn prune_keeps_the_newest_snapshots_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for ms in [5u64, 1, 3, 2, 4] {
            let at = UNIX_EPOCH + Duration::from_millis(ms * 1000);
            std::fs::write(dir.path().join(snapshot_name(at)), b"x").unwrap();
        }
        std::fs::write(dir.path().join("manual.jsonl"), b"x").unwrap();
        prune(dir.path(), 2).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                snapshot_name(UNIX_EPOCH + Duration::from_secs(4)),
                snapshot_name(UNIX_EPOCH + Duration::from_secs(5)),
                "manual.jsonl".to_owned(),
            ]
        );
        // Names sort like times even across a change in digit count.
        assert!(
            snapshot_name(UNIX_EPOCH + Duration::from_millis(999))
                < snapshot_name(UNIX_EPOCH + Duration::from_millis(1000))
        );
    }
}
