//! Store-level load generator: the same create workload against Drover's `SqliteStore` (in
//! process) and against etcd 3.4 (over gRPC), so the two can be compared as a ratio in one run.
//!
//! Each writer creates its own keys (create-if-absent: `SqliteStore::create`, and for etcd a
//! transaction comparing `create_revision == 0`, which is what the Kubernetes API server sends
//! for a create). `--serialize` lets only one write be in flight at a time, so every write is
//! its own transaction and sync: the "no group commit" variant. After the writes, `--range-repeat`
//! reads the whole prefix back in pages of 500 (as Drover's paged LIST does) and times it.
//!
//! For the store-backed targets (`sqlite`, `drover-etcd`) a watch on the prefix runs during the
//! measured writes, and `watch_delivery` is each event's receipt time minus its write's
//! acknowledgement time.
//!
//! Every run prints one JSON line; `scripts/bench/store.sh` drives the runs and
//! `docs/benchmarks.md` records the results.

#[path = "../stats.rs"]
mod stats;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use drover_store::{
    EtcdConfig, EtcdStore, RangeRequest, Revision, SqliteConfig, SqliteStore, Store, prefix_end,
};
#[cfg(feature = "etcd")]
use etcd_client::{Client, Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp};
use serde_json::json;
use stats::{Samples, round3};
use tokio::sync::Mutex;

#[derive(Parser)]
#[command(about = "Store benchmark: SqliteStore vs etcd, same workload")]
struct Cli {
    #[command(subcommand)]
    backend: Backend,
}

#[derive(Subcommand)]
enum Backend {
    /// Drover's SqliteStore, opened in this process on a fresh file in `--dir`.
    Sqlite {
        /// Directory for the database (must be empty or absent; on the disk you measure).
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Turn syncing off (`synchronous_full = false`): shows what the sync costs.
        #[arg(long)]
        no_sync: bool,
        #[command(flatten)]
        load: Load,
    },
    /// Drover's etcd backend (`EtcdStore`, the store `drover server --datastore-endpoint
    /// etcd://…` uses), with watch delivery latency.
    DroverEtcd {
        /// Client URL, e.g. http://127.0.0.1:23790.
        #[arg(long)]
        endpoint: String,
        #[command(flatten)]
        load: Load,
    },
    /// etcd over gRPC with the bare client (built with `--features etcd`).
    #[cfg(feature = "etcd")]
    Etcd {
        /// Client URL, e.g. http://127.0.0.1:23790.
        #[arg(long)]
        endpoint: String,
        #[command(flatten)]
        load: Load,
    },
}

#[derive(Args, Clone)]
struct Load {
    /// Concurrent writers.
    #[arg(long, default_value_t = 1)]
    writers: usize,
    /// Measured writes in all (split evenly over the writers).
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Unmeasured writes first.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Bytes per value (a small ConfigMap encodes to about 300).
    #[arg(long, default_value_t = 300)]
    value_size: usize,
    /// Allow one write in flight at a time (each write its own commit: no group commit).
    #[arg(long)]
    serialize: bool,
    /// Key prefix (each run should use its own).
    #[arg(long, default_value = "/registry/configmaps/bench/")]
    prefix: String,
    /// After the writes, read the whole prefix back this many times (paged by 500).
    #[arg(long, default_value_t = 0)]
    range_repeat: usize,
}

/// One backend, as the writers see it.
#[derive(Clone)]
enum Target {
    Sqlite(Arc<SqliteStore>),
    DroverEtcd(Arc<EtcdStore>),
    #[cfg(feature = "etcd")]
    Etcd(KvClient),
}

impl Target {
    /// Creates `key`; returns its revision (None for the bare etcd client).
    async fn create(&mut self, key: String, value: Bytes) -> anyhow::Result<Option<Revision>> {
        match self {
            Target::Sqlite(s) => return Ok(Some(s.create(&key, value).await?)),
            Target::DroverEtcd(s) => return Ok(Some(s.create(&key, value).await?)),
            #[cfg(feature = "etcd")]
            Target::Etcd(kv) => {
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.clone(), value.to_vec(), None)]);
                let resp = kv.txn(txn).await?;
                anyhow::ensure!(
                    resp.succeeded(),
                    "etcd: key {key} already exists (use a fresh --prefix)"
                );
            }
        }
        #[allow(unreachable_code)]
        Ok(None)
    }

    /// The store behind this target, for the watch-latency measurement.
    fn store(&self) -> Option<drover_store::AnyStore> {
        match self {
            Target::Sqlite(s) => Some((**s).clone().into()),
            Target::DroverEtcd(s) => Some((**s).clone().into()),
            #[cfg(feature = "etcd")]
            Target::Etcd(_) => None,
        }
    }

    /// Reads every key under `prefix` in pages of 500; returns the number of keys.
    async fn range_all(&mut self, prefix: &str) -> anyhow::Result<usize> {
        const PAGE: i64 = 500;
        let end = prefix_end(prefix);
        let mut start = prefix.to_owned();
        let mut n = 0;
        loop {
            let req = RangeRequest {
                start: start.clone(),
                end: end.clone(),
                limit: PAGE as u64,
                revision: 0,
                skip_count: true,
            };
            let (keys, more): (Vec<String>, bool) = match self {
                Target::Sqlite(s) => {
                    let r = s.range(req).await?;
                    (r.kvs.into_iter().map(|kv| kv.key).collect(), r.more)
                }
                Target::DroverEtcd(s) => {
                    let r = s.range(req).await?;
                    (r.kvs.into_iter().map(|kv| kv.key).collect(), r.more)
                }
                #[cfg(feature = "etcd")]
                Target::Etcd(kv) => {
                    let opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
                    let r = kv.get(start.clone(), Some(opts)).await?;
                    let keys = r
                        .kvs()
                        .iter()
                        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
                        .collect();
                    (keys, r.more())
                }
            };
            n += keys.len();
            match keys.last() {
                Some(last) if more => start = format!("{last}\0"),
                _ => return Ok(n),
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.backend {
            Backend::Sqlite { dir, no_sync, load } => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let mut config = SqliteConfig::new(dir.join("bench.db"));
                config.synchronous_full = !no_sync;
                let store = Arc::new(
                    tokio::task::spawn_blocking(move || SqliteStore::open(config)).await??,
                );
                let mode = if no_sync { "sqlite-nosync" } else { "sqlite" };
                run(
                    mode,
                    Target::Sqlite(Arc::clone(&store)),
                    &load,
                    Some(&store),
                )
                .await
            }
            Backend::DroverEtcd { endpoint, load } => {
                let mut config =
                    EtcdConfig::parse_endpoint(&endpoint).map_err(|e| anyhow::anyhow!(e))?;
                // Measure the store, not the server's maintenance.
                config.maintenance = false;
                let store = Arc::new(EtcdStore::open(config)?);
                run("drover-etcd", Target::DroverEtcd(store), &load, None).await
            }
            #[cfg(feature = "etcd")]
            Backend::Etcd { endpoint, load } => {
                let client = Client::connect([endpoint.as_str()], None)
                    .await
                    .with_context(|| format!("cannot connect to etcd at {endpoint}"))?;
                run("etcd", Target::Etcd(client.kv_client()), &load, None).await
            }
        }
    })
}

async fn run(
    backend: &str,
    target: Target,
    load: &Load,
    sqlite: Option<&Arc<SqliteStore>>,
) -> anyhow::Result<()> {
    let value = Bytes::from(
        (0..load.value_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let gate = Arc::new(Mutex::new(()));
    // Warm-up keys live beside the measured prefix, so the range phase reads only measured keys.
    let warmup_prefix = format!("{}-warmup/", load.prefix.trim_end_matches('/'));
    write_phase(
        &target,
        load,
        &warmup_prefix,
        load.warmup,
        &value,
        &gate,
        None,
    )
    .await?;
    let before = sqlite.map(|s| s.stats());
    let acks: Acks = Arc::new(ack_map::Map::default());
    let watcher = match target.store() {
        Some(store) => Some(watch_latency(store, &load.prefix, load.ops, Arc::clone(&acks)).await?),
        None => None,
    };
    let started = Instant::now();
    let mut samples = write_phase(
        &target,
        load,
        &load.prefix,
        load.ops,
        &value,
        &gate,
        Some(&acks),
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let after = sqlite.map(|s| s.stats());
    let mut out = json!({
        "bench": "store-create",
        "backend": backend,
        "writers": load.writers,
        "serialize": load.serialize,
        "value_size": load.value_size,
        "ops": samples.len(),
        "secs": round3(secs),
        "ops_per_s": round3(samples.len() as f64 / secs),
        "latency": samples.summary(),
    });
    if let Some(watcher) = watcher {
        let mut delivery = tokio::time::timeout(std::time::Duration::from_secs(60), watcher)
            .await
            .context("the watch did not deliver every write within 60 s")???;
        out["watch_delivery"] = delivery.summary();
    }
    if let (Some(b), Some(a)) = (before, after) {
        out["commits"] = json!(a.commits - b.commits);
        out["fsyncs"] = json!(a.fsyncs - b.fsyncs);
    }
    if load.range_repeat > 0 {
        let mut t = target.clone();
        let mut times = Samples::default();
        let mut keys = 0;
        for _ in 0..load.range_repeat {
            let s = Instant::now();
            keys = t.range_all(&load.prefix).await?;
            times.push(s.elapsed());
        }
        out["range"] = json!({"keys": keys, "page": 500, "median_ms": round3(times.quantile_ms(0.5)), "min_ms": round3(times.quantile_ms(0.0))});
    }
    println!("{out}");
    Ok(())
}

/// `ops` creates under `prefix`, split over `load.writers` tasks; returns every write's latency.
async fn write_phase(
    target: &Target,
    load: &Load,
    prefix: &str,
    ops: usize,
    value: &Bytes,
    gate: &Arc<Mutex<()>>,
    acks: Option<&Acks>,
) -> anyhow::Result<Samples> {
    let per = ops.div_ceil(load.writers.max(1));
    let mut tasks = Vec::new();
    for w in 0..load.writers.max(1) {
        let (mut t, value, gate, serialize) = (
            target.clone(),
            value.clone(),
            Arc::clone(gate),
            load.serialize,
        );
        let prefix = prefix.to_owned();
        let acks = acks.cloned();
        let n = per.min(ops.saturating_sub(w * per));
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(n);
            for i in 0..n {
                let key = format!("{prefix}w{w:03}-{i:07}");
                let s = Instant::now();
                let guard = if serialize {
                    Some(gate.lock().await)
                } else {
                    None
                };
                let rev = t.create(key, value.clone()).await?;
                drop(guard);
                if let (Some(acks), Some(rev)) = (&acks, rev) {
                    acks.insert(rev, Instant::now());
                }
                samples.push(s.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut all = Samples::with_capacity(ops);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// When each measured write was acknowledged, by revision.
type Acks = Arc<ack_map::Map>;

/// Acknowledgement times shared by the writers and the watch task.
mod ack_map {
    use std::collections::HashMap;
    use std::time::Instant;

    #[derive(Default)]
    pub(crate) struct Map(std::sync::Mutex<HashMap<i64, Instant>>);

    impl Map {
        pub(crate) fn insert(&self, rev: i64, at: Instant) {
            self.0.lock().expect("acks lock").insert(rev, at);
        }
        pub(crate) fn get(&self, rev: i64) -> Option<Instant> {
            self.0.lock().expect("acks lock").get(&rev).copied()
        }
    }
}

/// Starts a watch on `prefix` from now and returns a task that, once `ops` events arrived,
/// yields each event's delivery latency: receipt minus the writer's acknowledgement (0 when
/// the event arrived first).
async fn watch_latency(
    store: drover_store::AnyStore,
    prefix: &str,
    ops: usize,
    acks: Acks,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Samples>>> {
    let from = store.current_revision().await?;
    let mut stream = store.watch(prefix, from).await?;
    Ok(tokio::spawn(async move {
        let mut received = Vec::with_capacity(ops);
        while received.len() < ops {
            match stream.recv().await {
                Some(Ok(batch)) => {
                    let now = Instant::now();
                    received.extend(batch.events.iter().map(|e| (e.revision(), now)));
                }
                Some(Err(e)) => anyhow::bail!("watch failed: {e}"),
                None => anyhow::bail!("watch ended after {} events", received.len()),
            }
        }
        let mut samples = Samples::with_capacity(ops);
        for (rev, at) in received {
            // The writer records its ack just after the call returns; give it a moment.
            let mut ack = acks.get(rev);
            for _ in 0..100 {
                if ack.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                ack = acks.get(rev);
            }
            let ack =
                ack.ok_or_else(|| anyhow::anyhow!("revision {rev} was never acknowledged"))?;
            samples.push(at.saturating_duration_since(ack));
        }
        Ok(samples)
    }))
}
