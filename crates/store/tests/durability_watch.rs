//! Watch guarantees under load and restarts: concurrent writers and watchers; each watcher's
//! stream is validated against the store's history (recorded from the writers' acknowledged
//! results) by `drover_durability::watch`: ordered, gap-free, duplicate-free, or an explicit
//! "too old" (`Error::Compacted`, HTTP 410) followed by a relist that matches the history.
//!
//! The run has three phases; between them the store is restarted (SQLite: closed and reopened
//! on the same file; etcd: the Drover side's client dropped and opened again — etcd itself is
//! never killed) and history is compacted, so a watcher that lagged behind resumes into a
//! compacted revision and must get "too old" and relist. Watchers resume from the last revision
//! they covered.
//!
//! Negative controls, in the same run: one watcher's stream has an event dropped, another's an
//! event duplicated (injected between the store and the recorder); the validator must flag
//! both.

mod durability_support;
mod etcd_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_durability::watch::{self, Change, History, Observed, Summary, Violation};
use drover_store::{
    AnyStore, Bytes, Error, EtcdConfig, EtcdStore, Event, MemConfig, MemStore, RangeRequest,
    Revision, SqliteConfig, SqliteStore, Store,
};
use durability_support::{Rng, seed, soak};
use parking_lot::Mutex;
use tokio::sync::watch as channel;

const WRITERS: usize = 6;
const KEYS_PER_WRITER: u64 = 6;
const PHASES: usize = 3;

/// How a watcher behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    /// Sleeps after each batch, so its queue overflows and it is caught up from the database.
    Slow,
    /// Away for the whole first phase, resumes after compaction: must get "too old".
    Lagging,
    /// Negative control: the recorder never sees one event.
    DropOne,
    /// Negative control: the recorder sees one event twice.
    DuplicateOne,
}

struct Watcher {
    prefix: &'static str,
    kind: Kind,
    covered: Revision,
    record: Vec<Observed>,
    delivered: u64,
}

fn change(e: &Event) -> Change {
    match e {
        Event::Put { kv, .. } => Change {
            revision: kv.mod_revision,
            key: kv.key.clone(),
            value: Some(kv.value.to_vec()),
        },
        Event::Delete { revision, prev } => Change {
            revision: *revision,
            key: prev.key.clone(),
            value: None,
        },
    }
}

/// How far a watcher on `prefix` must get: the last change under it.
fn target(changes: &[Change], prefix: &str) -> Revision {
    changes
        .iter()
        .filter(|c| c.key.starts_with(prefix))
        .map(|c| c.revision)
        .max()
        .unwrap_or(0)
}

async fn relist(store: &AnyStore, w: &mut Watcher) {
    let resp = store
        .range(RangeRequest::prefix(w.prefix))
        .await
        .expect("relist after too old");
    w.record.push(Observed::Relist {
        revision: resp.revision,
        items: resp
            .kvs
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.to_vec()))
            .collect(),
    });
    w.covered = resp.revision;
}

/// Runs one watcher for one phase: resumes from what it covered, records everything, and stops
/// once it covered the phase's target (or early, for a lagging watcher in the first phase).
async fn run_watcher(
    store: AnyStore,
    mut w: Watcher,
    phase: usize,
    mut done: channel::Receiver<Option<Arc<Vec<Change>>>>,
) -> Watcher {
    if w.kind == Kind::Lagging && phase == 0 {
        // Disconnected for the whole first phase: it resumes after the compaction that ends
        // it, from a revision that is gone.
        return w;
    }
    'open: loop {
        w.record.push(Observed::Resume { after: w.covered });
        let mut stream = match store.watch(w.prefix, w.covered).await {
            Ok(s) => s,
            Err(Error::Compacted { .. }) => {
                w.record.push(Observed::Gone);
                relist(&store, &mut w).await;
                continue 'open;
            }
            Err(e) => panic!("watch {} after {}: {e}", w.prefix, w.covered),
        };
        loop {
            let reached = |w: &Watcher, done: &channel::Receiver<Option<Arc<Vec<Change>>>>| {
                done.borrow()
                    .as_ref()
                    .is_some_and(|c| w.covered >= target(c, w.prefix))
            };
            if reached(&w, &done) {
                return w;
            }
            tokio::select! {
                msg = stream.recv() => match msg {
                    Some(Ok(batch)) => {
                        let mut events: Vec<Change> = batch.events.iter().map(change).collect();
                        if !events.is_empty() {
                            let before = w.delivered;
                            w.delivered += events.len() as u64;
                            // The fault fires once, on the stream's 20th event.
                            if before < 20 && w.delivered >= 20 {
                                let i = (19 - before) as usize;
                                match w.kind {
                                    Kind::DropOne => { events.remove(i); }
                                    Kind::DuplicateOne => {
                                        let dup = events[i].clone();
                                        events.insert(i + 1, dup);
                                    }
                                    _ => {}
                                }
                            }
                        }
                        w.record.push(Observed::Batch { events, revision: batch.revision });
                        w.covered = w.covered.max(batch.revision);
                        if w.kind == Kind::Slow {
                            tokio::time::sleep(Duration::from_millis(3)).await;
                        }
                    }
                    Some(Err(Error::Compacted { .. })) => {
                        w.record.push(Observed::Gone);
                        relist(&store, &mut w).await;
                        continue 'open;
                    }
                    Some(Err(e)) => panic!("watch {} failed: {e}", w.prefix),
                    None => panic!("watch {} ended without an error", w.prefix),
                },
                _ = done.changed() => {}
            }
        }
    }
}

/// One writer for one phase: creates, updates and deletes its own keys; records each
/// acknowledged change.
async fn run_writer(
    store: AnyStore,
    w: usize,
    mut rng: Rng,
    ops: usize,
    known: Arc<Mutex<BTreeMap<String, Revision>>>,
    changes: Arc<Mutex<Vec<Change>>>,
) {
    for n in 0..ops {
        let side = if rng.next().is_multiple_of(2) {
            "a"
        } else {
            "b"
        };
        let key = format!("/watch/{side}/{w}-{}", rng.range(0, KEYS_PER_WRITER));
        let value = format!("{key}@{n}-{}", rng.next()).into_bytes();
        let current = known.lock().get(&key).copied();
        let c = match current {
            None => {
                let rev = store
                    .create(&key, Bytes::from(value.clone()))
                    .await
                    .expect("create");
                Change {
                    revision: rev,
                    key: key.clone(),
                    value: Some(value),
                }
            }
            Some(rev) if rng.next().is_multiple_of(5) => {
                let (rev, _) = store.delete(&key, rev).await.expect("delete");
                Change {
                    revision: rev,
                    key: key.clone(),
                    value: None,
                }
            }
            Some(rev) => {
                let rev = store
                    .update(&key, rev, Bytes::from(value.clone()))
                    .await
                    .expect("update");
                Change {
                    revision: rev,
                    key: key.clone(),
                    value: Some(value),
                }
            }
        };
        match c.value {
            Some(_) => known.lock().insert(key, c.revision),
            None => known.lock().remove(&key),
        };
        changes.lock().push(c);
    }
}

enum Backend {
    Mem(MemStore),
    Sqlite(tempfile::TempDir),
    Etcd(String),
}

impl Backend {
    fn open(&self) -> AnyStore {
        match self {
            Backend::Mem(m) => AnyStore::from(m.clone()),
            Backend::Sqlite(dir) => {
                let mut config = SqliteConfig::new(dir.path().join("store.db"));
                config.progress_interval = Duration::from_millis(100);
                config.watch_queue = 8;
                AnyStore::Sqlite(SqliteStore::open(config).expect("open sqlite"))
            }
            Backend::Etcd(url) => {
                let mut config = EtcdConfig::parse_endpoint(url).expect("endpoint");
                config.progress_interval = Duration::from_millis(200);
                AnyStore::from(EtcdStore::open(config).expect("open etcd store"))
            }
        }
    }

    /// Ends this instance of the store (a Drover restart). The memory store is kept (it has no
    /// disk to come back from).
    async fn restart(&self, store: AnyStore) -> AnyStore {
        match (self, store) {
            (Backend::Mem(_), s) => s,
            (_, AnyStore::Sqlite(s)) => {
                s.close().await.expect("close sqlite");
                self.open()
            }
            (_, s) => {
                drop(s);
                self.open()
            }
        }
    }
}

/// The outcome per watcher kind.
struct Outcome {
    results: Vec<(Kind, &'static str, Result<Summary, Violation>)>,
    writes: usize,
}

async fn run(backend: Backend, seed: u64) -> Outcome {
    let mut rng = Rng::new(seed);
    let ops = if soak() { 400 } else { 60 };
    let mut watchers: Vec<Watcher> = [
        ("/watch/", Kind::Normal),
        ("/watch/a/", Kind::Normal),
        ("/watch/", Kind::Slow),
        ("/watch/b/", Kind::Lagging),
        ("/watch/", Kind::DropOne),
        ("/watch/", Kind::DuplicateOne),
    ]
    .into_iter()
    .map(|(prefix, kind)| Watcher {
        prefix,
        kind,
        covered: 0,
        record: Vec::new(),
        delivered: 0,
    })
    .collect();
    let mut store = backend.open();
    let start = store.current_revision().await.expect("current revision");
    for w in &mut watchers {
        w.covered = start;
    }
    let known = Arc::new(Mutex::new(BTreeMap::new()));
    let changes = Arc::new(Mutex::new(Vec::new()));
    for phase in 0..PHASES {
        let (done_tx, done_rx) = channel::channel(None);
        let mut watcher_tasks = Vec::new();
        for w in watchers.drain(..) {
            watcher_tasks.push(tokio::spawn(run_watcher(
                store.clone(),
                w,
                phase,
                done_rx.clone(),
            )));
        }
        let mut writer_tasks = Vec::new();
        for w in 0..WRITERS {
            writer_tasks.push(tokio::spawn(run_writer(
                store.clone(),
                w,
                rng.fork(),
                ops,
                Arc::clone(&known),
                Arc::clone(&changes),
            )));
        }
        for t in writer_tasks {
            t.await.expect("writer");
        }
        let snapshot = Arc::new(changes.lock().clone());
        let _ = done_tx.send(Some(Arc::clone(&snapshot)));
        for t in watcher_tasks {
            let w = tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a watcher did not reach the end of the phase within 60 s")
                .expect("watcher task");
            watchers.push(w);
        }
        let last = snapshot.iter().map(|c| c.revision).max().unwrap_or(0);
        eprintln!(
            "phase {phase}: {} changes so far, last revision {last}",
            snapshot.len()
        );
        if phase + 1 < PHASES {
            // Compact everything before the last revision, then restart the store.
            store.compact(last).await.expect("compact");
            store = backend.restart(store).await;
        }
    }
    let changes = changes.lock().clone();
    let history = History::new(changes.clone()).expect("revisions are unique");
    let results = watchers
        .iter()
        .map(|w| {
            let until = target(&changes, w.prefix);
            (
                w.kind,
                w.prefix,
                watch::validate(&history, w.prefix, start, &w.record, until),
            )
        })
        .collect();
    if let (Backend::Sqlite(_), AnyStore::Sqlite(s)) = (&backend, store) {
        s.close().await.expect("close");
    }
    Outcome {
        results,
        writes: changes.len(),
    }
}

fn assert_outcome(name: &str, seed: u64, outcome: &Outcome) {
    eprintln!("{name}: {} acknowledged writes", outcome.writes);
    for (kind, prefix, result) in &outcome.results {
        eprintln!("{name}: {kind:?} watcher on {prefix}: {result:?}");
        match kind {
            Kind::Normal | Kind::Slow => {
                let s = result.as_ref().unwrap_or_else(|v| {
                    panic!("seed {seed}: {name}: {kind:?} watcher on {prefix}: {v}")
                });
                assert!(s.events > 0, "{name}: watcher saw no events");
            }
            Kind::Lagging => {
                let s = result
                    .as_ref()
                    .unwrap_or_else(|v| panic!("seed {seed}: {name}: lagging watcher: {v}"));
                assert!(
                    s.gone >= 1 && s.relists >= 1,
                    "{name}: the lagging watcher never got 'too old' ({s:?}): the relist path was not exercised"
                );
            }
            Kind::DropOne => assert!(
                matches!(result, Err(Violation::Gap { .. })),
                "seed {seed}: {name}: the validator missed an injected dropped event: {result:?}"
            ),
            Kind::DuplicateOne => assert!(
                matches!(result, Err(Violation::DuplicateOrOutOfOrder { .. })),
                "seed {seed}: {name}: the validator missed an injected duplicate: {result:?}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_ordered_gap_free_and_exact_on_sqlite_across_restarts() {
    let seed = seed("watch_sqlite");
    let dir = tempfile::Builder::new()
        .prefix("drover-test-watch-")
        .tempdir()
        .expect("temp dir");
    let outcome = run(Backend::Sqlite(dir), seed).await;
    assert_outcome("sqlite", seed, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_ordered_gap_free_and_exact_on_memory() {
    let seed = seed("watch_mem");
    let mut config = MemConfig::default();
    config.progress_interval = Duration::from_millis(100);
    config.watch_queue = 8;
    let outcome = run(Backend::Mem(MemStore::with_config(config)), seed).await;
    assert_outcome("mem", seed, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_ordered_gap_free_and_exact_on_etcd_across_drover_restarts() {
    let Some(etcd) = etcd_support::Etcd::start() else {
        return;
    };
    let seed = seed("watch_etcd");
    let outcome = run(Backend::Etcd(etcd.url()), seed).await;
    assert_outcome("etcd", seed, &outcome);
}
