//! Datastore size under sustained updates: `--updates` compare-and-swap updates spread over
//! `--keys` keys by `--writers` concurrent writers, on Drover's SQLite store or its etcd backend,
//! with the backend's own compaction (SQLite: `--max-history` rows; etcd: server-driven
//! compaction and defragmentation, as `drover server` runs it). Prints one JSON line per
//! checkpoint with the on-disk size: SQLite's database + WAL, or etcd's `member/snap/db` (give
//! `--etcd-data-dir`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use drover_store::{EtcdConfig, EtcdStore, SqliteConfig, SqliteStore, Store};

#[derive(Parser)]
#[command(about = "Datastore size after many updates to a fixed set of keys")]
struct Cli {
    /// `sqlite` or `etcd`.
    backend: String,
    /// SQLite: the directory for a fresh database.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// etcd: the client URL.
    #[arg(long)]
    endpoint: Option<String>,
    /// etcd: its data dir, to read the size of `member/snap/db`.
    #[arg(long)]
    etcd_data_dir: Option<PathBuf>,
    /// Keys updated round-robin.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Updates in all.
    #[arg(long, default_value_t = 1_000_000)]
    updates: usize,
    /// Concurrent writers (each owns keys `i mod writers`).
    #[arg(long, default_value_t = 32)]
    writers: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 300)]
    value_size: usize,
    /// Revisions of history kept (both backends' `--datastore-max-history`).
    #[arg(long, default_value_t = 100_000)]
    max_history: u64,
    /// History younger than this many seconds is never compacted (the server's default is 300;
    /// shorter here so a run of a few minutes shows the bound).
    #[arg(long, default_value_t = 30)]
    retention_secs: u64,
    /// Print a checkpoint every this many updates.
    #[arg(long, default_value_t = 100_000)]
    every: usize,
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.backend.as_str() {
            "sqlite" => {
                let dir = cli.dir.clone().context("--dir is required for sqlite")?;
                std::fs::create_dir_all(&dir)?;
                let db = dir.join("state.db");
                let mut config = SqliteConfig::new(&db);
                config.max_history_rows = cli.max_history;
                config.retention = Duration::from_secs(cli.retention_secs);
                let store = Arc::new(SqliteStore::open(config)?);
                let size = move || {
                    let wal = PathBuf::from(format!("{}-wal", db.display()));
                    file_size(&db) + file_size(&wal)
                };
                grow(&cli, store, size).await
            }
            "etcd" => {
                let endpoint = cli
                    .endpoint
                    .clone()
                    .context("--endpoint is required for etcd")?;
                let data = cli
                    .etcd_data_dir
                    .clone()
                    .context("--etcd-data-dir is required for etcd")?;
                let mut config: EtcdConfig =
                    EtcdConfig::parse_endpoint(&endpoint).map_err(|e| anyhow::anyhow!(e))?;
                config.max_history = cli.max_history;
                config.retention = Duration::from_secs(cli.retention_secs);
                let store = Arc::new(EtcdStore::open(config)?);
                let db = data.join("member/snap/db");
                grow(&cli, store, move || file_size(&db)).await
            }
            other => anyhow::bail!("unknown backend {other:?}: use sqlite or etcd"),
        }
    })
}

async fn grow<S: Store>(cli: &Cli, store: Arc<S>, size: impl Fn() -> u64) -> anyhow::Result<()> {
    let value = Bytes::from(vec![b'x'; cli.value_size]);
    let prefix = "/registry/configmaps/growth/";
    let mut revs = Vec::with_capacity(cli.keys);
    for k in 0..cli.keys {
        revs.push(
            store
                .create(&format!("{prefix}{k:06}"), value.clone())
                .await?,
        );
    }
    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let per_writer = cli.updates / cli.writers;
    let mut tasks = Vec::new();
    for w in 0..cli.writers {
        let store = Arc::clone(&store);
        let value = value.clone();
        let done = Arc::clone(&done);
        let mut mine: Vec<(String, i64)> = (w..cli.keys)
            .step_by(cli.writers)
            .map(|k| (format!("{prefix}{k:06}"), revs[k]))
            .collect();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let slot = i % mine.len();
                let (key, rev) = &mine[slot];
                let new = store.update(key, *rev, value.clone()).await?;
                mine[slot].1 = new;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let mut next = cli.every;
    let total = per_writer * cli.writers;
    while next <= total {
        while done.load(std::sync::atomic::Ordering::Relaxed) < next {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "{}",
            serde_json::json!({
                "backend": cli.backend, "keys": cli.keys, "updates": next,
                "seconds": started.elapsed().as_secs_f64(),
                "size_mb": size() as f64 / 1e6,
            })
        );
        next += cli.every;
    }
    for t in tasks {
        t.await??;
    }
    // Let background compaction and defragmentation catch up, then measure once more.
    tokio::time::sleep(Duration::from_secs(20)).await;
    println!(
        "{}",
        serde_json::json!({
            "backend": cli.backend, "keys": cli.keys, "updates": total, "after_idle_20s": true,
            "size_mb": size() as f64 / 1e6,
        })
    );
    Ok(())
}
