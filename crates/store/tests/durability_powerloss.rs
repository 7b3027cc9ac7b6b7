//! Power-loss cycles for the SQLite store, through the power-loss VFS of `drover-durability`
//! (our stand-in for LazyFS): concurrent writers make acknowledged writes, the power is cut at a
//! random moment — a timer in even cycles, a trip wire right after a random write (inside a
//! transaction) in odd ones (data written but not fsynced is dropped, per file, WAL and `-shm`
//! included),
//! the store "boots" again from what was durable, and every acknowledged write must be there,
//! the revision must not have gone back, and every value must be whole.
//!
//! The negative control runs the same harness on the store with syncing turned off
//! (`synchronous_full = false`, i.e. `PRAGMA synchronous = OFF`) and asserts that the harness
//! reports lost acknowledged writes.

mod durability_support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use drover_durability::powerloss;
use drover_store::{Bytes, Error, Revision, SqliteConfig, SqliteStore, Store};
use durability_support::{Rng, make_value, parse_value, seed, soak};
use parking_lot::Mutex;

const WRITERS: usize = 4;
const KEYS_PER_WRITER: usize = 8;

/// What the writers know: per key, the last acknowledged (sequence, revision) and the last
/// attempted sequence (in flight when the power went).
#[derive(Default)]
struct Model {
    acked: HashMap<String, (u64, Revision)>,
    attempted: HashMap<String, u64>,
    max_acked_rev: Revision,
    acks: u64,
}

/// What the check after a boot found.
#[derive(Debug, Default)]
struct Findings {
    lost: Vec<String>,
    corrupt: Vec<String>,
    revision_went_back: Vec<String>,
}

impl Findings {
    fn is_clean(&self) -> bool {
        self.lost.is_empty() && self.corrupt.is_empty() && self.revision_went_back.is_empty()
    }
}

fn open(dir: &Path, synchronous_full: bool) -> SqliteStore {
    let mut config = SqliteConfig::new(dir.join("store.db"));
    config.synchronous_full = synchronous_full;
    // Checkpoints often, so cuts also land during and after checkpoints (DB file writes).
    config.maintenance_interval = Duration::from_millis(30);
    SqliteStore::open(config).expect("open the store after a power cut")
}

/// Checks the booted store against the model; returns the per-key (sequence, revision) found.
async fn verify(
    store: &SqliteStore,
    model: &Model,
    findings: &mut Findings,
) -> HashMap<String, (u64, Revision)> {
    let mut found = HashMap::new();
    let current = store.current_revision().await.expect("current revision");
    if current < model.max_acked_rev {
        findings.revision_went_back.push(format!(
            "current revision {current} < acknowledged revision {}",
            model.max_acked_rev
        ));
    }
    for w in 0..WRITERS {
        for k in 0..KEYS_PER_WRITER {
            let key = format!("/power/{w}/{k}");
            let acked = model.acked.get(&key).copied();
            let attempted = model.attempted.get(&key).copied();
            match store.get(&key).await.expect("read after boot") {
                Some(kv) => match parse_value(&key, &kv.value) {
                    Ok(seq) => {
                        let ok = acked.is_some_and(|(s, _)| s == seq) || attempted == Some(seq);
                        if !ok {
                            findings.lost.push(format!(
                                "{key}: found sequence {seq} at revision {}, acknowledged {acked:?}, in flight {attempted:?}",
                                kv.mod_revision
                            ));
                        }
                        found.insert(key, (seq, kv.mod_revision));
                    }
                    Err(e) => findings.corrupt.push(e),
                },
                None => {
                    if let Some((seq, rev)) = acked {
                        findings.lost.push(format!(
                            "{key}: missing, but sequence {seq} was acknowledged at revision {rev}"
                        ));
                    }
                }
            }
        }
    }
    found
}

async fn writer(
    store: SqliteStore,
    w: usize,
    mut rng: Rng,
    mut known: HashMap<String, (u64, Revision)>,
    mut next_seq: u64,
    model: Arc<Mutex<Model>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let key = format!("/power/{w}/{}", rng.range(0, KEYS_PER_WRITER as u64));
        next_seq += 1;
        let seq = next_seq;
        let value = Bytes::from(make_value(&key, seq));
        model.lock().attempted.insert(key.clone(), seq);
        let result = match known.get(&key) {
            Some((_, rev)) => store.update(&key, *rev, value).await,
            None => store.create(&key, value).await,
        };
        match result {
            Ok(rev) => {
                let mut m = model.lock();
                m.acked.insert(key.clone(), (seq, rev));
                m.max_acked_rev = m.max_acked_rev.max(rev);
                m.acks += 1;
                known.insert(key, (seq, rev));
            }
            // Only this writer writes its keys, so a conflict means the store lost track.
            Err(e @ (Error::Conflict { .. } | Error::AlreadyExists { .. })) => {
                panic!("writer {w}: unexpected {e} on its own key")
            }
            // The power is gone: the write's fate is unknown; stop.
            Err(_) => return,
        }
    }
}

/// Runs `cycles` boot → write → power cut cycles; returns what the checks found and how many
/// writes were acknowledged in all.
async fn run(synchronous_full: bool, cycles: usize, seed: u64) -> (Findings, u64, usize) {
    powerloss::install().expect("install the power-loss VFS");
    let mut rng = Rng::new(seed);
    let base = tempfile::Builder::new()
        .prefix("drover-test-powerloss-")
        .tempdir()
        .expect("temp dir");
    let mut findings = Findings::default();
    let mut model = Model::default();
    let mut dir = base.path().join("boot-0");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut total_acks = 0;
    let mut cuts_with_unsynced_data = 0;
    let mut next_seq = 0u64;
    for cycle in 0..cycles {
        let store = open(&dir, synchronous_full);
        let known = verify(&store, &model, &mut findings).await;
        next_seq = next_seq.max(known.values().map(|(s, _)| *s).max().unwrap_or(0));
        next_seq = next_seq.max(model.attempted.values().copied().max().unwrap_or(0));
        // The survivors are the new truth: acknowledged state is what the store holds now.
        model = Model {
            acked: known.clone(),
            attempted: HashMap::new(),
            max_acked_rev: model.max_acked_rev,
            acks: 0,
        };
        let shared = Arc::new(Mutex::new(std::mem::take(&mut model)));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let mine = known
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("/power/{w}/")))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            // Each writer draws its sequence numbers from its own block, so tokens stay unique.
            let start = next_seq + (w as u64) * 1_000_000;
            tasks.push(tokio::spawn(writer(
                store.clone(),
                w,
                rng.fork(),
                mine,
                start,
                Arc::clone(&shared),
                Arc::clone(&stop),
            )));
        }
        next_seq += WRITERS as u64 * 1_000_000;
        let next = base.path().join(format!("boot-{}", cycle + 1));
        let report = if cycle % 2 == 1 {
            // A trip wire: the power goes right after a random write, inside a transaction.
            powerloss::arm_cut_after_writes(&dir, &next, rng.range(1, 80));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(fired) = powerloss::fired(&dir) {
                    break fired.expect("trip-wire power cut");
                }
                if Instant::now() > deadline {
                    // Writers too slow to reach the wire: cut now (returns the wire's cut if
                    // it fired meanwhile).
                    break powerloss::power_cut(&dir, &next).expect("power cut");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(rng.range(10, 120))).await;
            powerloss::power_cut(&dir, &next).expect("power cut")
        };
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("a writer hung after the power cut")
                .expect("writer task");
        }
        drop(store);
        model = Arc::try_unwrap(shared)
            .map_err(|_| "writers still hold the model")
            .expect("model")
            .into_inner();
        total_acks += model.acks;
        if report.dropped_changes > 0 {
            cuts_with_unsynced_data += 1;
        }
        eprintln!(
            "cycle {cycle}: {} acknowledged writes, cut dropped {} unsynced changes ({} bytes)",
            model.acks, report.dropped_changes, report.dropped_bytes
        );
        let _ = std::fs::remove_dir_all(&dir);
        dir = next;
    }
    // The last boot, checked like every other.
    let store = open(&dir, synchronous_full);
    verify(&store, &model, &mut findings).await;
    store.close().await.expect("close");
    (findings, total_acks, cuts_with_unsynced_data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_power_cuts() {
    let seed = seed("acknowledged_writes_survive_power_cuts");
    let cycles = if soak() { 200 } else { 20 };
    let (findings, acks, torn) = run(true, cycles, seed).await;
    eprintln!(
        "{cycles} power cuts ({torn} dropped unsynced data), {acks} acknowledged writes, \
         findings: {findings:?}"
    );
    assert!(
        findings.is_clean(),
        "seed {seed}: power cuts broke durability: {findings:#?}"
    );
    assert!(
        acks > cycles as u64,
        "seed {seed}: too few writes to prove anything ({acks})"
    );
    // Every trip-wire cut (half the cycles) lands right after an unsynced write, so it drops
    // data; allow some wires to time out on a very slow machine, but not most of them.
    assert!(
        torn >= cycles / 4,
        "seed {seed}: only {torn} of {cycles} cuts dropped unsynced data"
    );
}

/// Negative control: the same harness on a store that does not fsync must report lost
/// acknowledged writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_control_unsynced_store_loses_acknowledged_writes() {
    let seed = seed("negative_control_unsynced_store_loses_acknowledged_writes");
    let (findings, acks, _) = run(false, 5, seed).await;
    eprintln!(
        "unsynced store: {acks} acknowledged writes; {} lost, {} revision regressions; first: {:?}",
        findings.lost.len(),
        findings.revision_went_back.len(),
        findings.lost.first()
    );
    assert!(acks > 0, "seed {seed}: no write was acknowledged");
    assert!(
        !findings.lost.is_empty(),
        "seed {seed}: the harness did not catch a store that acknowledges before fsync"
    );
}
