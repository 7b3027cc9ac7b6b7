//! Proof of the leader elector with contenders in separate processes.
//!
//! Each contender is this test binary re-executed (env `DROVER_LEADER_CONTENDER`): it opens
//! the shared SQLite datastore (as `drover server` processes sharing `--datastore-endpoint`
//! do), runs the real [`Elector`] with a 2 s Lease, and while it leads performs *fenced
//! writes*: updates of the Lease conditional on the resourceVersion of its own last write
//! (so a write is accepted only while its term is current — the next holder's acquisition
//! changes the resourceVersion). The parent kills (SIGKILL), stops (SIGTERM) and freezes
//! (SIGSTOP for longer than the Lease, then SIGCONT) contenders at random, then reads every
//! version of the Lease from the datastore's history and [`check`]s it:
//!
//! - every change of holder is an acquisition (transitions + 1, a fresh acquireTime) made
//!   only after the previous term ended: released, or expired (acquireTime ≥ last renewTime
//!   + leaseDurationSeconds) — so no two terms overlap;
//! - every other version is a write of the current term (same holder, acquireTime and
//!   transitions) — so no write from a deposed leader was accepted.
//!
//! Negative controls run the deliberately broken electors ([`Fault`]) and require the checker
//! to flag them. The random seed is printed (`DROVER_TEST_SEED` replays it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_apiserver::leader::{
    ElectionConfig, Elector, Fault, LeaseRecord, new_identity, now_micros,
};
use drover_store::{AnyStore, Event, Revision, SqliteConfig, SqliteStore, Store};
use rand::{Rng as _, SeedableRng as _};

const ENV: &str = "DROVER_LEADER_CONTENDER";
const LEASE: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_secs(1);
const RETRY: Duration = Duration::from_millis(200);
const NAME: &str = "proof";

fn election(fault: Fault, identity: String) -> ElectionConfig {
    let mut c = ElectionConfig::new("kube-system", NAME);
    c.identity = identity;
    c.lease_duration = LEASE;
    c.renew_deadline = RENEW;
    c.retry_period = RETRY;
    c.fault = fault;
    c
}

fn open(db: &Path) -> Arc<AnyStore> {
    let store = SqliteStore::open(SqliteConfig::new(db)).expect("open the shared datastore");
    Arc::new(AnyStore::from(store))
}

// === contender process ===

/// The contender's main: runs when the test binary was re-executed with `ENV` set
/// (`<db path>|<fault>|<identity>`).
fn contender_main(spec: &str) -> ! {
    let mut parts = spec.splitn(3, '|');
    let (db, fault, identity) = (
        PathBuf::from(parts.next().expect("db")),
        parts.next().expect("fault"),
        parts.next().expect("identity").to_owned(),
    );
    let fault = match fault {
        "none" => Fault::None,
        "ignore-expiry" => Fault::IgnoreExpiry,
        "skip-precondition" => Fault::SkipPrecondition,
        other => panic!("unknown fault {other:?}"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = open(&db);
        let elector = Elector::new(store, election(fault, identity.clone())).expect("elector");
        let handle = elector.handle();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let writer = elector.clone();
        let refused_log = db.with_file_name("refused.log");
        tokio::spawn(async move {
            let mut seq = 0u64;
            loop {
                if handle.is_leader() {
                    match writer.write_fenced(&format!("{identity}/{seq}")).await {
                        Ok(_) => seq += 1,
                        // The fence at work: note it for the parent's report.
                        Err(e) if e.to_string().contains("another candidate") => {
                            use std::io::Write as _;
                            if let Ok(mut f) = std::fs::OpenOptions::new()
                                .create(true)
                                .append(true)
                                .open(&refused_log)
                            {
                                let _ = writeln!(f, "{identity}: {e}");
                            }
                        }
                        Err(_) => {}
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let run = tokio::spawn(elector.run(rx));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        term.recv().await;
        let _ = tx.send(true);
        let _ = run.await;
    });
    std::process::exit(0)
}

/// Re-executes this test binary as a contender (only the test `test_name`, which sees `ENV`).
fn spawn_contender(test_name: &str, db: &Path, fault: &str, identity: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(ENV, format!("{}|{fault}|{identity}", db.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a contender")
}

/// Becomes a contender when re-executed; returns otherwise.
fn maybe_contender() {
    if let Ok(spec) = std::env::var(ENV) {
        contender_main(&spec);
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

// === the test's own plumbing ===

/// The contenders and the temporary directory; both go away on drop (also on failure).
struct Cluster {
    dir: PathBuf,
    db: PathBuf,
    test: &'static str,
    contenders: Vec<(String, Child)>,
}

impl Cluster {
    fn new(test: &'static str) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "drover-test-leader-{}-{}",
            std::process::id(),
            rand::rng().random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = dir.join("state.db");
        Cluster {
            dir,
            db,
            test,
            contenders: Vec::new(),
        }
    }

    fn add(&mut self, fault: &str) -> String {
        let id = format!("{}-{}", new_identity(), self.contenders.len());
        let child = spawn_contender(self.test, &self.db, fault, &id);
        self.contenders.push((id.clone(), child));
        id
    }

    fn pid_of(&self, id: &str) -> Option<u32> {
        self.contenders
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, c)| c.id())
    }

    /// SIGKILL (`KILL`) or SIGTERM (`TERM`) one contender and reap it.
    fn stop(&mut self, id: &str, sig: &str) {
        let pos = self
            .contenders
            .iter()
            .position(|(i, _)| i == id)
            .expect("known contender");
        let (_, mut child) = self.contenders.remove(pos);
        signal(child.id(), sig);
        let _ = child.wait();
    }

    fn stop_all(&mut self) {
        for (_, mut child) in self.contenders.drain(..) {
            signal(child.id(), "TERM");
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.contenders {
            signal(child.id(), "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn key() -> String {
    election(Fault::None, "x".into()).key()
}

async fn current(store: &AnyStore) -> Option<(Revision, LeaseRecord)> {
    let kv = store.get(&key()).await.expect("read the lease")?;
    Some((
        kv.mod_revision,
        LeaseRecord::from_stored(&kv.key, &kv.value).expect("lease"),
    ))
}

/// Waits until someone other than `not` holds the Lease; returns the holder's record.
async fn try_wait_for_holder(store: &AnyStore, not: &str, within: Duration) -> Option<LeaseRecord> {
    let deadline = Instant::now() + within;
    loop {
        if let Some((_, r)) = current(store).await
            && !r.holder.is_empty()
            && r.holder != not
        {
            return Some(r);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_holder(store: &AnyStore, not: &str, within: Duration) -> LeaseRecord {
    match try_wait_for_holder(store, not, within).await {
        Some(r) => r,
        None => panic!(
            "no new holder of the Lease within {within:?} (old holder {not:?}): elector stuck?"
        ),
    }
}

/// SIGSTOPs `pid` (the holder) until another contender holds the Lease; returns that record
/// and how many times the freeze had to be retried. A process frozen inside a SQLite write
/// transaction keeps the file's write lock, and then no process can write at all (a property
/// of a shared SQLite file, not of the elector): only when a probe write by this process fails
/// too is the holder thawed briefly and frozen again. The caller sends SIGCONT.
async fn freeze_until_taken_over(store: &AnyStore, pid: u32, holder: &str) -> (LeaseRecord, u32) {
    for attempt in 0..5 {
        signal(pid, "STOP");
        if let Some(next) = try_wait_for_holder(store, holder, LEASE * 3).await {
            return (next, attempt);
        }
        let probe = tokio::time::timeout(
            Duration::from_secs(2),
            store.create(
                &format!("/drover-test/probe/{attempt}-{}", now_micros()),
                bytes::Bytes::from_static(b"1"),
            ),
        )
        .await;
        assert!(
            !matches!(probe, Ok(Ok(_))),
            "the datastore is writable, yet no contender took the Lease over from the frozen {holder:?} within {:?}: elector stuck",
            LEASE * 3
        );
        println!("  {holder} was frozen holding the SQLite write lock; thawing and freezing again");
        signal(pid, "CONT");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("could not freeze {holder:?} outside a write transaction in 5 tries");
}

/// Every version of the Lease, in revision order, from the datastore's history.
async fn history(store: &AnyStore) -> Vec<(Revision, LeaseRecord)> {
    let end = store.current_revision().await.expect("revision");
    let mut w = store
        .watch(&key(), 0)
        .await
        .expect("watch the lease history");
    let mut out = Vec::new();
    loop {
        let batch = tokio::time::timeout(Duration::from_secs(30), w.recv())
            .await
            .expect("the history watch stalled")
            .expect("watch open")
            .expect("history not compacted");
        for ev in batch.events {
            if let Event::Put { kv, .. } = ev {
                let rec = LeaseRecord::from_stored(&kv.key, &kv.value).expect("lease");
                out.push((kv.mod_revision, rec));
            }
        }
        if batch.revision >= end {
            return out;
        }
    }
}

// === the checker ===

/// One holder's term, as reconstructed from the history.
#[derive(Debug)]
struct Term {
    holder: String,
    transitions: i64,
    acquired: i64,
    /// When it ended: released, or expired (last renewTime + leaseDurationSeconds).
    ended: i64,
    released: bool,
    writes: usize,
}

/// Reconstructs the terms and checks that no two overlap and that every write was made in
/// the current term. Returns the terms, or every violation found.
fn check(history: &[(Revision, LeaseRecord)]) -> Result<Vec<Term>, Vec<String>> {
    let mut errors = Vec::new();
    let mut terms: Vec<Term> = Vec::new();
    let mut prev: Option<&(Revision, LeaseRecord)> = None;
    for item in history {
        let (rv, v) = item;
        let end_of = |r: &LeaseRecord| r.renew_micros + r.lease_duration_seconds * 1_000_000;
        match prev {
            None => {
                if v.holder.is_empty() || v.acquire_micros != v.renew_micros {
                    errors.push(format!(
                        "rv {rv}: the first version is not an acquisition: {v:?}"
                    ));
                }
            }
            Some((_, p)) if v.holder.is_empty() => {
                // A release: made by the holder of the previous version (it is conditional).
                if p.holder.is_empty() || v.transitions != p.transitions {
                    errors.push(format!(
                        "rv {rv}: a release that ends no term: {v:?} after {p:?}"
                    ));
                }
                if let Some(t) = terms.last_mut() {
                    t.ended = v.renew_micros;
                    t.released = true;
                }
                prev = Some(item);
                continue;
            }
            Some((_, p))
                if v.holder == p.holder
                    && v.transitions == p.transitions
                    && v.acquire_micros == p.acquire_micros =>
            {
                // A renewal or fenced write of the current term.
                if v.renew_micros < p.renew_micros {
                    errors.push(format!(
                        "rv {rv}: renewTime went backwards: {v:?} after {p:?}"
                    ));
                }
                if let Some(t) = terms.last_mut() {
                    t.ended = end_of(v);
                    if v.write != p.write {
                        t.writes += 1;
                    }
                }
                prev = Some(item);
                continue;
            }
            Some((_, p)) => {
                let fresh =
                    v.transitions == p.transitions + 1 && v.acquire_micros == v.renew_micros;
                if !fresh {
                    errors.push(format!(
                        "rv {rv}: a write from deposed leader {:?} (its term began at {} µs, transition {}) was accepted while {:?} held the Lease",
                        v.holder, v.acquire_micros, v.transitions, p.holder
                    ));
                } else if !p.holder.is_empty() && v.acquire_micros < end_of(p) {
                    errors.push(format!(
                        "rv {rv}: terms overlap: {:?} acquired at {} µs while {:?}'s term ran until {} µs ({} ms early)",
                        v.holder,
                        v.acquire_micros,
                        p.holder,
                        end_of(p),
                        (end_of(p) - v.acquire_micros) / 1000
                    ));
                }
            }
        }
        terms.push(Term {
            holder: v.holder.clone(),
            transitions: v.transitions,
            acquired: v.acquire_micros,
            ended: end_of(v),
            released: false,
            writes: usize::from(v.write.is_some()),
        });
        prev = Some(item);
    }
    if errors.is_empty() {
        Ok(terms)
    } else {
        Err(errors)
    }
}

fn seed() -> u64 {
    let seed = std::env::var("DROVER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("leader proof: seed {seed} (replay with DROVER_TEST_SEED={seed})");
    seed
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

// === the tests ===

#[test]
fn contenders_in_separate_processes_never_overlap_and_deposed_writes_fail() {
    maybe_contender();
    let seed = seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut cluster =
        Cluster::new("contenders_in_separate_processes_never_overlap_and_deposed_writes_fail");
    let store = open(&cluster.db);
    runtime().block_on(async {
        for _ in 0..3 {
            cluster.add("none");
        }
        let mut holder = wait_for_holder(&store, "", Duration::from_secs(20)).await;
        let (mut kills, mut terms, mut freezes) = (0, 0, 0);
        let mut handovers: Vec<(String, i64)> = Vec::new();
        for round in 0..10 {
            // Let the leader write for a while.
            tokio::time::sleep(Duration::from_millis(rng.random_range(300..1200))).await;
            let Some(pid) = cluster.pid_of(&holder.holder) else {
                panic!("round {round}: the holder {:?} is not a live contender", holder.holder);
            };
            match rng.random_range(0..3) {
                0 => {
                    let t0 = now_micros();
                    cluster.stop(&holder.holder.clone(), "KILL");
                    let next = wait_for_holder(&store, &holder.holder, LEASE * 5).await;
                    println!(
                        "round {round}: SIGKILL of {} → {} took over after {} ms",
                        holder.holder,
                        next.holder,
                        (next.acquire_micros - t0) / 1000
                    );
                    holder = next;
                    kills += 1;
                }
                1 => {
                    let old = holder.holder.clone();
                    let t0 = now_micros();
                    cluster.stop(&old, "TERM");
                    // The next holder must not wait for expiry: the Lease was released.
                    let next = wait_for_holder(&store, &old, LEASE * 5).await;
                    let after = next.acquire_micros - t0;
                    println!(
                        "round {round}: SIGTERM of {old} → {} took over {} ms after the signal",
                        next.holder,
                        after / 1000
                    );
                    assert!(
                        after < LEASE.as_micros() as i64,
                        "round {round}: the takeover after SIGTERM took {after} µs, as long as an expiry"
                    );
                    handovers.push((next.holder.clone(), next.transitions));
                    holder = next;
                    terms += 1;
                }
                _ => {
                    // A long pause (GC, swap, SIGSTOP): the others take over; on resume the
                    // frozen leader's renewals and fenced writes must all be refused.
                    let (next, _) = freeze_until_taken_over(&store, pid, &holder.holder).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    signal(pid, "CONT");
                    println!(
                        "round {round}: SIGSTOP of {} → {} took over; resumed the old leader",
                        holder.holder, next.holder
                    );
                    holder = next;
                    freezes += 1;
                }
            }
            while cluster.contenders.len() < 3 {
                cluster.add("none");
            }
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        cluster.stop_all();
        let history = history(&store).await;
        let terms_seen = match check(&history) {
            Ok(t) => t,
            Err(errors) => panic!("seed {seed}: the checker found violations:\n{}", errors.join("\n")),
        };
        for (h, t) in &handovers {
            let i = history
                .iter()
                .position(|(_, r)| &r.holder == h && r.transitions == *t)
                .expect("the acquisition after a SIGTERM is in the history");
            assert!(
                i > 0 && history[i - 1].1.holder.is_empty(),
                "the version before {h}'s acquisition after a SIGTERM is not a release: {:?}",
                history.get(i.wrapping_sub(1))
            );
        }
        let refused = std::fs::read_to_string(cluster.dir.join("refused.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        println!("leader proof: {refused} fenced writes of deposed leaders were refused");
        let writes: usize = terms_seen.iter().map(|t| t.writes).sum();
        println!(
            "leader proof: {} Lease versions, {} terms, {writes} fenced writes, {kills} SIGKILLs, {terms} SIGTERMs, {freezes} freezes",
            history.len(),
            terms_seen.len()
        );
        for t in &terms_seen {
            println!(
                "  term {}: {} from {} for {} ms ({}), {} writes",
                t.transitions,
                t.holder,
                t.acquired,
                (t.ended - t.acquired) / 1000,
                if t.released { "released" } else { "expired or last" },
                t.writes
            );
        }
        assert!(terms_seen.len() >= 11, "every fault must have produced a new term");
        assert!(writes >= 10, "the leaders must have written (got {writes} fenced writes)");
        let holders: std::collections::HashSet<_> = terms_seen.iter().map(|t| &t.holder).collect();
        assert!(holders.len() >= 4, "the Lease must have changed hands between processes");
    });
}

#[test]
fn negative_control_an_elector_that_ignores_expiry_is_flagged() {
    maybe_contender();
    let mut cluster = Cluster::new("negative_control_an_elector_that_ignores_expiry_is_flagged");
    let store = open(&cluster.db);
    runtime().block_on(async {
        for _ in 0..2 {
            cluster.add("ignore-expiry");
        }
        wait_for_holder(&store, "", Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.stop_all();
        let errors = check(&history(&store).await)
            .expect_err("the checker must flag an elector that takes over unexpired Leases");
        println!("flagged as expected:\n{}", errors.join("\n"));
        assert!(
            errors.iter().any(|e| e.contains("terms overlap")),
            "{errors:?}"
        );
    });
}

#[test]
fn negative_control_writes_without_the_precondition_are_flagged() {
    maybe_contender();
    let mut cluster = Cluster::new("negative_control_writes_without_the_precondition_are_flagged");
    let store = open(&cluster.db);
    runtime().block_on(async {
        for _ in 0..2 {
            cluster.add("skip-precondition");
        }
        let holder = wait_for_holder(&store, "", Duration::from_secs(20)).await;
        let pid = cluster.pid_of(&holder.holder).expect("holder is ours");
        freeze_until_taken_over(&store, pid, &holder.holder).await;
        signal(pid, "CONT");
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.stop_all();
        let errors = check(&history(&store).await)
            .expect_err("the checker must flag a deposed leader whose blind writes were accepted");
        println!("flagged as expected:\n{}", errors.join("\n"));
        assert!(
            errors.iter().any(|e| e.contains("deposed leader")),
            "{errors:?}"
        );
    });
}

#[test]
fn the_checker_accepts_a_clean_handover_and_rejects_doctored_histories() {
    maybe_contender();
    let rec = |holder: &str, acquire: i64, renew: i64, transitions: i64| LeaseRecord {
        holder: holder.into(),
        lease_duration_seconds: 2,
        acquire_micros: acquire,
        renew_micros: renew,
        transitions,
        write: None,
    };
    let s = 1_000_000;
    let clean = vec![
        (1, rec("a", 0, 0, 0)),
        (2, rec("a", 0, s, 0)),
        (3, rec("b", 3 * s, 3 * s, 1)), // a expired at 3 s
        (4, rec("", 4 * s, 4 * s, 1)),  // b released
        (5, rec("a", 4 * s + 1, 4 * s + 1, 2)),
    ];
    let terms = check(&clean).expect("a clean history passes");
    assert_eq!(terms.len(), 3);
    let mut early = clean.clone();
    early[2].1 = rec("b", 3 * s - 1, 3 * s - 1, 1);
    assert!(check(&early).unwrap_err()[0].contains("terms overlap"));
    let mut deposed = clean.clone();
    deposed.insert(3, (9, rec("a", 0, 3 * s + 5, 0)));
    assert!(check(&deposed).unwrap_err()[0].contains("deposed leader \"a\""));
}
