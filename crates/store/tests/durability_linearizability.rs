//! Linearizability of concurrent reads, creates and compare-and-swap updates, checked per key by
//! `drover_durability::linearizable` over a bounded history (at most 96 operations per key).
//!
//! Faults are injected while the clients run: on SQLite, power cuts through the power-loss VFS
//! (the store instance dies with its unsynced data and a new one boots from what was durable);
//! on etcd, the Drover side is "killed" (its client dropped, operations in flight abandoned, a
//! new one opened — etcd itself is never killed). Operations cut short have an unknown outcome,
//! which the checker allows to take effect at any later time or never.
//!
//! Negative control: the same workload on a store that serves reads from a stale cache must be
//! flagged as not linearizable.

mod durability_support;
mod etcd_support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use drover_durability::linearizable::{self, Entry, Op, Outcome, Verdict};
use drover_durability::powerloss;
use drover_store::{
    AnyStore, Bytes, Error, EtcdConfig, EtcdStore, KeyValue, MemStore, RangeRequest, RangeResponse,
    Revision, SqliteConfig, SqliteStore, Store, StoreStats, WatchStream,
};
use durability_support::{Rng, seed, soak};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch as channel;

const CLIENTS: u64 = 6;
const KEYS: u64 = 6;

/// Per key: how many reads the cached value has served, and the value.
type StaleCache = HashMap<String, (u32, Option<KeyValue>)>;

/// A store that answers `get` from a cache refreshed only every fourth read of a key: the
/// deliberately stale-read variant of the negative control.
#[derive(Clone)]
struct StaleReads<S> {
    inner: S,
    cache: Arc<Mutex<StaleCache>>,
}

impl<S: Store + Clone> Store for StaleReads<S> {
    async fn current_revision(&self) -> Result<Revision, Error> {
        self.inner.current_revision().await
    }
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, Error> {
        if let Some((age, kv)) = self.cache.lock().get_mut(key)
            && *age < 3
        {
            *age += 1;
            return Ok(kv.clone());
        }
        let kv = self.inner.get(key).await?;
        self.cache.lock().insert(key.to_owned(), (0, kv.clone()));
        Ok(kv)
    }
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, Error> {
        self.inner.range(req).await
    }
    async fn count(&self, prefix: &str) -> Result<u64, Error> {
        self.inner.count(prefix).await
    }
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, Error> {
        self.inner.create(key, value).await
    }
    async fn update(&self, key: &str, expected: Revision, value: Bytes) -> Result<Revision, Error> {
        self.inner.update(key, expected, value).await
    }
    async fn delete(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue), Error> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
        self.inner.watch(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        self.inner.compact(revision).await
    }
    async fn compacted_revision(&self) -> Result<Revision, Error> {
        self.inner.compacted_revision().await
    }
    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}

/// The store the clients use now, and a counter of kills: an operation in flight when the
/// counter moves is abandoned (unknown outcome).
struct Target<S> {
    store: RwLock<S>,
    /// Keys live under this prefix (one per round, so rounds cannot disturb each other).
    prefix: String,
    kills: channel::Sender<u64>,
}

fn token_of(kv: &KeyValue) -> u64 {
    std::str::from_utf8(&kv.value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("value of {} is not a token: {:?}", kv.key, kv.value))
}

/// One client: `ops` operations round-robin over the keys, recorded with a shared logical clock.
async fn client<S: Store + Clone>(
    target: Arc<Target<S>>,
    id: u64,
    ops: u64,
    clock: Arc<AtomicU64>,
    mut rng: Rng,
) -> Vec<(u64, Entry)> {
    let mut known: HashMap<u64, (u64, Revision)> = HashMap::new();
    let mut history = Vec::new();
    let mut kills = target.kills.subscribe();
    for n in 0..ops {
        let key_no = (id + n) % KEYS;
        let key = format!("{}{key_no}", target.prefix);
        let token = id * 1_000_000 + n + 1;
        let store = target.store.read().clone();
        kills.borrow_and_update();
        let choice = rng.range(0, 10);
        let (op, fut): (Op, std::pin::Pin<Box<dyn Future<Output = _> + Send>>) =
            match (choice, known.get(&key_no).copied()) {
                (0..4, _) => {
                    let s = store.clone();
                    let k = key.clone();
                    (
                        Op::Read(None),
                        Box::pin(async move { s.get(&k).await.map(|kv| (kv, 0)) }),
                    )
                }
                (_, Some((expected, rev))) => {
                    let s = store.clone();
                    let k = key.clone();
                    (
                        Op::Cas {
                            expected,
                            new: token,
                        },
                        Box::pin(async move {
                            s.update(&k, rev, Bytes::from(token.to_string()))
                                .await
                                .map(|r| (None, r))
                        }),
                    )
                }
                (_, None) => {
                    let s = store.clone();
                    let k = key.clone();
                    (
                        Op::Create(token),
                        Box::pin(async move {
                            s.create(&k, Bytes::from(token.to_string()))
                                .await
                                .map(|r| (None, r))
                        }),
                    )
                }
            };
        let invoke = clock.fetch_add(1, Ordering::SeqCst);
        let result = tokio::select! {
            r = fut => Some(r),
            _ = kills.changed() => None,
        };
        let complete = clock.fetch_add(1, Ordering::SeqCst);
        let (op, outcome) = match (op, result) {
            (Op::Read(_), Some(Ok((kv, _)))) => {
                let seen = kv.as_ref().map(token_of);
                match &kv {
                    Some(kv) => known.insert(key_no, (token_of(kv), kv.mod_revision)),
                    None => known.remove(&key_no),
                };
                (Op::Read(seen), Outcome::Ok)
            }
            (op @ (Op::Cas { .. } | Op::Create(_)), Some(Ok((_, rev)))) => {
                known.insert(key_no, (token, rev));
                (op, Outcome::Ok)
            }
            (op, Some(Err(Error::Conflict { current, .. }))) => {
                match current {
                    Some(kv) => known.insert(key_no, (token_of(&kv), kv.mod_revision)),
                    None => known.remove(&key_no),
                };
                (op, Outcome::Failed)
            }
            (op, Some(Err(Error::AlreadyExists { current, .. }))) => {
                known.insert(key_no, (token_of(&current), current.mod_revision));
                (op, Outcome::Failed)
            }
            (op, Some(Err(Error::NotFound { .. }))) => {
                known.remove(&key_no);
                (op, Outcome::Failed)
            }
            (op, _) => {
                // Unknown: the next operation on this key reads first.
                known.remove(&key_no);
                (op, Outcome::Unknown)
            }
        };
        history.push((
            key_no,
            Entry {
                invoke,
                complete,
                op,
                outcome,
            },
        ));
        if outcome == Outcome::Unknown {
            // Give the killer time to bring the next store up.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    history
}

/// Runs the clients (and `kill` every few tens of milliseconds, if given), then checks every
/// key. Returns the verdicts and how many operations had an unknown outcome.
async fn run<S, K, F>(
    store: S,
    prefix: &str,
    seed: u64,
    kill: Option<K>,
) -> (Vec<(u64, Verdict)>, usize)
where
    S: Store + Clone,
    K: FnMut() -> F + Send + 'static,
    F: Future<Output = S> + Send,
{
    let mut rng = Rng::new(seed);
    let ops = 96;
    let (kills, _) = channel::channel(0u64);
    let target = Arc::new(Target {
        store: RwLock::new(store),
        prefix: prefix.to_owned(),
        kills,
    });
    let clock = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        tasks.push(tokio::spawn(client(
            Arc::clone(&target),
            id,
            ops,
            Arc::clone(&clock),
            rng.fork(),
        )));
    }
    let killer = kill.map(|mut kill| {
        let target = Arc::clone(&target);
        let mut rng = rng.fork();
        tokio::spawn(async move {
            let mut n = 0u64;
            while Arc::strong_count(&target) > 2 {
                tokio::time::sleep(Duration::from_millis(rng.range(10, 60))).await;
                let next = kill().await;
                *target.store.write() = next;
                n += 1;
                target.kills.send_replace(n);
            }
            n
        })
    });
    let mut per_key: HashMap<u64, Vec<Entry>> = HashMap::new();
    for t in tasks {
        for (k, e) in t.await.expect("client") {
            per_key.entry(k).or_default().push(e);
        }
    }
    drop(target);
    if let Some(k) = killer {
        let kills = k.await.expect("killer");
        eprintln!("{kills} kills during the run");
    }
    let unknown = per_key
        .values()
        .flatten()
        .filter(|e| e.outcome == Outcome::Unknown)
        .count();
    let mut verdicts: Vec<(u64, Verdict)> = per_key
        .into_iter()
        .map(|(k, mut h)| {
            h.sort_by_key(|e| e.invoke);
            (k, linearizable::check(None, &h))
        })
        .collect();
    verdicts.sort_by_key(|(k, _)| *k);
    (verdicts, unknown)
}

fn assert_linearizable(name: &str, seed: u64, verdicts: &[(u64, Verdict)], unknown: usize) {
    eprintln!("{name}: {unknown} operations with unknown outcome; verdicts: {verdicts:?}");
    assert_eq!(verdicts.len() as u64, KEYS);
    for (k, v) in verdicts {
        assert_eq!(
            *v,
            Verdict::Linearizable,
            "seed {seed}: {name}: key number {k} is not linearizable"
        );
    }
}

fn rounds() -> u64 {
    if soak() { 50 } else { 5 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_histories_are_linearizable_on_memory() {
    for _ in 0..rounds() {
        let seed = seed("lin_mem");
        let kill: Option<fn() -> std::future::Ready<MemStore>> = None;
        let (v, u) = run(MemStore::new(), "/lin/", seed, kill).await;
        assert_linearizable("mem", seed, &v, u);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_histories_are_linearizable_on_sqlite_with_power_cuts() {
    powerloss::install().expect("install the power-loss VFS");
    for _ in 0..rounds() {
        let seed = seed("lin_sqlite");
        let base = tempfile::Builder::new()
            .prefix("drover-test-lin-")
            .tempdir()
            .expect("temp dir");
        let open = |dir: PathBuf| {
            std::fs::create_dir_all(&dir).expect("mkdir");
            AnyStore::Sqlite(SqliteStore::open(SqliteConfig::new(dir.join("s.db"))).expect("open"))
        };
        let root = base.path().to_path_buf();
        let first = open(root.join("boot-0"));
        let boot = Arc::new(AtomicU64::new(0));
        let kill = move || {
            let (root, boot) = (root.clone(), Arc::clone(&boot));
            async move {
                let n = boot.fetch_add(1, Ordering::SeqCst);
                let (from, to) = (
                    root.join(format!("boot-{n}")),
                    root.join(format!("boot-{}", n + 1)),
                );
                powerloss::power_cut(&from, &to).expect("power cut");
                tokio::task::spawn_blocking(move || open(to))
                    .await
                    .expect("open after the cut")
            }
        };
        let (v, u) = run(first, "/lin/", seed, Some(kill)).await;
        assert_linearizable("sqlite with power cuts", seed, &v, u);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_histories_are_linearizable_on_etcd_with_drover_restarts() {
    let Some(etcd) = etcd_support::Etcd::start() else {
        return;
    };
    let url = etcd.url();
    let open = move || {
        let config = EtcdConfig::parse_endpoint(&url).expect("endpoint");
        AnyStore::from(EtcdStore::open(config).expect("open etcd store"))
    };
    for round in 0..rounds() {
        let seed = seed("lin_etcd");
        let first = open();
        let open = open.clone();
        let kill = move || std::future::ready(open());
        let (v, u) = run(first, &format!("/lin/{round}/"), seed, Some(kill)).await;
        assert_linearizable("etcd with drover restarts", seed, &v, u);
    }
}

/// Negative control: reads served from a stale cache must be flagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_control_stale_reads_are_not_linearizable() {
    let seed = seed("lin_stale");
    let stale = StaleReads {
        inner: MemStore::new(),
        cache: Arc::default(),
    };
    let kill: Option<fn() -> std::future::Ready<StaleReads<MemStore>>> = None;
    let (verdicts, _) = run(stale, "/lin/", seed, kill).await;
    let flagged = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::NotLinearizable { .. }))
        .count();
    eprintln!("stale reads: {flagged} of {KEYS} keys flagged");
    assert!(
        flagged > 0,
        "seed {seed}: the checker did not flag a store that serves stale reads: {verdicts:?}"
    );
}
