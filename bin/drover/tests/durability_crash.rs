//! Crash safety through the API: writers make acknowledged ConfigMap writes (creates and
//! compare-and-swap replaces with `resourceVersion`) through kube-rs while the `drover server`
//! is killed with SIGKILL at random moments, 30 times (300 with `DROVER_SOAK=1`). After every
//! restart: every acknowledged write is present (the object holds the acknowledged value, or
//! the one write that was in flight when the server died), every object is whole (its data
//! carries a checksum), and revisions never go backwards (the list's resourceVersion is at least
//! every acknowledged one and every earlier list's).
//!
//! The negative control runs the same checker on a history with an injected fault (an
//! acknowledged object deleted behind the writers' back, and a claimed revision from the future)
//! and asserts that it reports both.

mod common;
mod durability_common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Server;
use durability_common::{Rng, client, seed};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::sync::Mutex;

const WRITERS: usize = 4;
const KEYS_PER_WRITER: u64 = 5;

fn fnv(data: &str) -> String {
    let h = data.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

fn configmap(name: &str, seq: u64, resource_version: Option<String>) -> ConfigMap {
    let pad = "x".repeat(100 + (seq % 400) as usize);
    let sum = fnv(&format!("{name}|{seq}|{pad}"));
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_owned());
    cm.metadata.resource_version = resource_version;
    cm.data = Some(BTreeMap::from([
        ("seq".to_owned(), seq.to_string()),
        ("pad".to_owned(), pad),
        ("sum".to_owned(), sum),
    ]));
    cm
}

/// The sequence number of a whole object, or why it is not whole.
fn parse(cm: &ConfigMap) -> Result<u64, String> {
    let name = cm.name_any();
    let data = cm.data.clone().unwrap_or_default();
    let (Some(seq), Some(pad), Some(sum)) = (data.get("seq"), data.get("pad"), data.get("sum"))
    else {
        return Err(format!("{name}: data is missing fields: {data:?}"));
    };
    if fnv(&format!("{name}|{seq}|{pad}")) != *sum {
        return Err(format!("{name}: checksum mismatch (half-written object?)"));
    }
    seq.parse()
        .map_err(|_| format!("{name}: seq {seq:?} is not a number"))
}

fn rv(cm: &ConfigMap) -> u64 {
    cm.resource_version()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{}: no numeric resourceVersion", cm.name_any()))
}

/// What the writers know.
#[derive(Default)]
struct Model {
    /// Last acknowledged (sequence, resourceVersion) per object.
    acked: HashMap<String, (u64, u64)>,
    /// Last attempted sequence per object (possibly in flight when the server died).
    attempted: HashMap<String, u64>,
    /// The highest resourceVersion acknowledged or listed so far.
    max_rv: u64,
    acks: u64,
}

#[derive(Debug, Default)]
struct Findings {
    lost: Vec<String>,
    corrupt: Vec<String>,
    backwards: Vec<String>,
}

impl Findings {
    fn is_clean(&self) -> bool {
        self.lost.is_empty() && self.corrupt.is_empty() && self.backwards.is_empty()
    }
}

/// Checks a list taken after a restart against the model; returns the state found.
fn verify(
    model: &Model,
    list_rv: u64,
    items: &[ConfigMap],
    f: &mut Findings,
) -> HashMap<String, (u64, u64)> {
    if list_rv < model.max_rv {
        f.backwards.push(format!(
            "list resourceVersion {list_rv} < {} acknowledged or listed before",
            model.max_rv
        ));
    }
    let mut found = HashMap::new();
    for cm in items {
        let name = cm.name_any();
        match parse(cm) {
            Ok(seq) => {
                let ok = model.acked.get(&name).is_some_and(|(s, _)| *s == seq)
                    || model.attempted.get(&name) == Some(&seq);
                if !ok {
                    f.lost.push(format!(
                        "{name}: holds sequence {seq}, acknowledged {:?}, in flight {:?}",
                        model.acked.get(&name),
                        model.attempted.get(&name)
                    ));
                }
                if rv(cm) > list_rv {
                    f.backwards
                        .push(format!("{name}: resourceVersion above the list's"));
                }
                found.insert(name, (seq, rv(cm)));
            }
            Err(e) => f.corrupt.push(e),
        }
    }
    for (name, (seq, rv)) in &model.acked {
        if !found.contains_key(name) {
            f.lost.push(format!(
                "{name}: missing, but sequence {seq} was acknowledged at resourceVersion {rv}"
            ));
        }
    }
    found
}

async fn list(api: &Api<ConfigMap>) -> (u64, Vec<ConfigMap>) {
    let list = api.list(&ListParams::default()).await.expect("list");
    let rv = list
        .metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("list resourceVersion");
    let items = list
        .items
        .into_iter()
        .filter(|cm| cm.name_any().starts_with("dur-"))
        .collect();
    (rv, items)
}

async fn writer(
    api: Api<ConfigMap>,
    w: usize,
    mut rng: Rng,
    mut known: HashMap<String, (u64, u64)>,
    mut seq: u64,
    model: Arc<Mutex<Model>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let name = format!("dur-{w}-{}", rng.range(0, KEYS_PER_WRITER));
        seq += 1;
        model
            .lock()
            .expect("model")
            .attempted
            .insert(name.clone(), seq);
        let pp = PostParams::default();
        let result = match known.get(&name) {
            Some((_, rv)) => {
                api.replace(&name, &pp, &configmap(&name, seq, Some(rv.to_string())))
                    .await
            }
            None => api.create(&pp, &configmap(&name, seq, None)).await,
        };
        match result {
            Ok(cm) => {
                let rv = rv(&cm);
                let mut m = model.lock().expect("model");
                m.acked.insert(name.clone(), (seq, rv));
                m.max_rv = m.max_rv.max(rv);
                m.acks += 1;
                known.insert(name, (seq, rv));
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                panic!(
                    "writer {w}: conflict on its own object {name}: {}",
                    s.message
                )
            }
            // The server died under this write: its outcome is unknown; stop.
            Err(_) => return,
        }
    }
}

/// Runs `cycles` write → SIGKILL → restart → verify cycles; returns the findings and acks.
fn run(cycles: usize, seed: u64) -> (Findings, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rng = Rng::new(seed);
    let mut server = Server::start();
    let mut findings = Findings::default();
    let mut model = Model::default();
    let mut known = HashMap::new();
    let mut acks = 0;
    let mut next_seq = 0;
    for cycle in 0..cycles {
        let api: Api<ConfigMap> = rt.block_on(async {
            Api::default_namespaced(
                client(&server.kubeconfig(), Some(Duration::from_secs(5))).await,
            )
        });
        let shared = Arc::new(Mutex::new(std::mem::take(&mut model)));
        {
            let m = shared.lock().expect("model");
            next_seq = next_seq.max(m.attempted.values().copied().max().unwrap_or(0));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let mine: HashMap<_, _> = known
                    .iter()
                    .filter(|(k, _): &(&String, _)| k.starts_with(&format!("dur-{w}-")))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                let start = next_seq + w as u64 * 1_000_000;
                rt.spawn(writer(
                    api.clone(),
                    w,
                    Rng::new(rng.next()),
                    mine,
                    start,
                    Arc::clone(&shared),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        next_seq += WRITERS as u64 * 1_000_000;
        std::thread::sleep(Duration::from_millis(rng.range(150, 900)));
        server.stop_with(9);
        stop.store(true, Ordering::SeqCst);
        rt.block_on(async {
            for t in tasks {
                tokio::time::timeout(Duration::from_secs(30), t)
                    .await
                    .expect("a writer hung after the kill")
                    .expect("writer task");
            }
        });
        model = Arc::try_unwrap(shared)
            .map_err(|_| "writers still hold the model")
            .expect("model")
            .into_inner()
            .expect("model");
        acks += model.acks;
        server.restart_stopped();
        let (list_rv, items) = rt.block_on(async {
            let api: Api<ConfigMap> = Api::default_namespaced(
                client(&server.kubeconfig(), Some(Duration::from_secs(5))).await,
            );
            list(&api).await
        });
        known = verify(&model, list_rv, &items, &mut findings);
        eprintln!(
            "cycle {cycle}: {} acknowledged writes, list at resourceVersion {list_rv}, {} objects",
            model.acks,
            items.len()
        );
        model = Model {
            acked: known.clone(),
            attempted: HashMap::new(),
            max_rv: model.max_rv.max(list_rv),
            acks: 0,
        };
        if !findings.is_clean() {
            eprintln!("server log tail:\n{}", common::tail(&server.log(), 40));
            break;
        }
    }
    (findings, acks)
}

#[test]
fn acknowledged_writes_survive_sigkill_of_the_server() {
    let seed = seed("acknowledged_writes_survive_sigkill_of_the_server");
    let soak = std::env::var("DROVER_SOAK").as_deref() == Ok("1");
    let cycles = if soak { 300 } else { 30 };
    let (findings, acks) = run(cycles, seed);
    eprintln!("{cycles} kills, {acks} acknowledged writes, findings: {findings:?}");
    assert!(
        findings.is_clean(),
        "seed {seed}: SIGKILL broke crash safety: {findings:#?}"
    );
    assert!(
        acks >= cycles as u64,
        "seed {seed}: too few acknowledged writes to prove anything ({acks})"
    );
}

/// Negative control: the checker must report an acknowledged object that disappeared, an
/// object whose data fails its checksum, and a list whose revision is below an acknowledged one.
#[test]
fn negative_control_checker_reports_lost_write_and_revision_going_back() {
    let server = Server::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let api: Api<ConfigMap> = Api::default_namespaced(
            client(&server.kubeconfig(), Some(Duration::from_secs(5))).await,
        );
        let mut model = Model::default();
        for n in 0..3 {
            let name = format!("dur-0-{n}");
            let cm = api
                .create(&PostParams::default(), &configmap(&name, n + 1, None))
                .await
                .expect("create");
            model.acked.insert(name, (n + 1, rv(&cm)));
            model.max_rv = model.max_rv.max(rv(&cm));
        }
        let (list_rv, items) = list(&api).await;
        let mut clean = Findings::default();
        verify(&model, list_rv, &items, &mut clean);
        assert!(clean.is_clean(), "unexpected findings: {clean:?}");
        // Fault 1: an acknowledged write disappears.
        api.delete("dur-0-1", &DeleteParams::default())
            .await
            .expect("delete");
        // Fault 2: an object whose data does not match its checksum (half-written).
        let mut torn = api.get("dur-0-2").await.expect("get");
        torn.data
            .as_mut()
            .expect("data")
            .insert("pad".into(), "torn".into());
        api.replace("dur-0-2", &PostParams::default(), &torn)
            .await
            .expect("replace");
        // Fault 3: a revision was acknowledged that the store no longer reaches.
        model.max_rv += 1_000;
        let (list_rv, items) = list(&api).await;
        let mut f = Findings::default();
        verify(&model, list_rv, &items, &mut f);
        assert!(
            f.lost.iter().any(|l| l.contains("dur-0-1")),
            "the checker missed a lost acknowledged write: {f:?}"
        );
        assert!(
            !f.backwards.is_empty(),
            "the checker missed a revision going backwards: {f:?}"
        );
        assert!(
            f.corrupt.iter().any(|c| c.contains("dur-0-2")),
            "the checker missed a half-written object: {f:?}"
        );
    });
}
