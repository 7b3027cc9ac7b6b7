//! Linearizability through the API with server kills: kube-rs clients read, create and
//! compare-and-swap-replace (with `resourceVersion`) a few ConfigMaps while the `drover server`
//! is SIGKILLed and restarted at random moments, on SQLite and on etcd (the Drover server is
//! killed, never etcd). Each key's recorded history is checked by the linearizability checker
//! of `crates/durability` (included by path: a pure module without dependencies), at most 96
//! operations per key. Operations that fail without an API status (connection refused or cut
//! by the kill) have an unknown outcome. The checker's negative controls are its unit tests and
//! the store-level stale-read control (`crates/store/tests/durability_linearizability.rs`).

mod common;
mod durability_common;
#[path = "../../../crates/durability/src/linearizable.rs"]
#[allow(dead_code, unreachable_pub)]
mod linearizable;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Etcd, Server};
use durability_common::{Rng, client, seed};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use linearizable::{Entry, Op, Outcome, Verdict};

const CLIENTS: u64 = 4;
const KEYS: u64 = 4;
const OPS: u64 = 96;

fn token(cm: &ConfigMap) -> u64 {
    cm.data
        .as_ref()
        .and_then(|d| d.get("token"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{} has no token", cm.name_any()))
}

fn configmap(name: &str, token: u64, resource_version: Option<String>) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_owned());
    cm.metadata.resource_version = resource_version;
    cm.data = Some(BTreeMap::from([("token".to_owned(), token.to_string())]));
    cm
}

/// One client's operations, round-robin over the keys.
async fn run_client(
    kubeconfig: std::path::PathBuf,
    prefix: String,
    id: u64,
    seed: u64,
    clock: Arc<AtomicU64>,
) -> Vec<(u64, Entry)> {
    let mut rng = Rng::new(seed);
    let mut api: Api<ConfigMap> =
        Api::default_namespaced(client(&kubeconfig, Some(Duration::from_secs(5))).await);
    let mut known: HashMap<u64, (u64, String)> = HashMap::new();
    let mut out = Vec::new();
    let pp = PostParams::default();
    for n in 0..OPS {
        let key_no = (id + n) % KEYS;
        let name = format!("{prefix}{key_no}");
        let new = id * 1_000_000 + n + 1;
        let choice = rng.range(0, 10);
        let invoke = clock.fetch_add(1, Ordering::SeqCst);
        let (op, outcome) = if choice < 4 {
            let r = api.get_opt(&name).await;
            let complete_ok = match r {
                Ok(Some(cm)) => {
                    known.insert(
                        key_no,
                        (token(&cm), cm.resource_version().unwrap_or_default()),
                    );
                    Some(Some(token(&cm)))
                }
                Ok(None) => {
                    known.remove(&key_no);
                    Some(None)
                }
                Err(_) => None,
            };
            match complete_ok {
                Some(seen) => (Op::Read(seen), Outcome::Ok),
                None => (Op::Read(None), Outcome::Unknown),
            }
        } else {
            let (op, r) = match known.get(&key_no).cloned() {
                Some((expected, rv)) => (
                    Op::Cas { expected, new },
                    api.replace(&name, &pp, &configmap(&name, new, Some(rv)))
                        .await,
                ),
                None => (
                    Op::Create(new),
                    api.create(&pp, &configmap(&name, new, None)).await,
                ),
            };
            match r {
                Ok(cm) => {
                    known.insert(key_no, (new, cm.resource_version().unwrap_or_default()));
                    (op, Outcome::Ok)
                }
                // 409 (conflict / already exists) and 404 are definite refusals.
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                    known.remove(&key_no);
                    (op, Outcome::Failed)
                }
                Err(_) => {
                    known.remove(&key_no);
                    (op, Outcome::Unknown)
                }
            }
        };
        let complete = clock.fetch_add(1, Ordering::SeqCst);
        if outcome == Outcome::Unknown {
            // The server is probably down: wait a little and reconnect.
            tokio::time::sleep(Duration::from_millis(100)).await;
            api = Api::default_namespaced(client(&kubeconfig, Some(Duration::from_secs(5))).await);
        }
        out.push((
            key_no,
            Entry {
                invoke,
                complete,
                op,
                outcome,
            },
        ));
    }
    out
}

/// Runs rounds of clients against `server` (fresh keys per round), killing and restarting the
/// server at a random moment of each round; checks every key of every round.
fn run(mut server: Server, name: &str, seed: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let soak = std::env::var("DROVER_SOAK").as_deref() == Ok("1");
    let rounds = if soak { 60 } else { 8 };
    let kubeconfig = server.kubeconfig();
    let mut rng = Rng::new(seed);
    let (mut kills_mid_round, mut unknown, mut ops) = (0, 0, 0);
    for round in 0..rounds {
        let clock = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|id| {
                rt.spawn(run_client(
                    kubeconfig.clone(),
                    format!("lin-{round}-"),
                    id,
                    rng.next(),
                    Arc::clone(&clock),
                ))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.range(20, 200)));
        if tasks.iter().any(|t| !t.is_finished()) {
            kills_mid_round += 1;
        }
        server.stop_with(9);
        server.restart_stopped();
        let mut per_key: HashMap<u64, Vec<Entry>> = HashMap::new();
        rt.block_on(async {
            for t in tasks {
                for (k, e) in t.await.expect("client task") {
                    per_key.entry(k).or_default().push(e);
                }
            }
        });
        for (k, mut h) in per_key {
            unknown += h.iter().filter(|e| e.outcome == Outcome::Unknown).count();
            ops += h.len();
            h.sort_by_key(|e| e.invoke);
            let v = linearizable::check(None, &h);
            assert_eq!(
                v,
                Verdict::Linearizable,
                "seed {seed}: {name}: round {round}, key lin-{round}-{k} is not linearizable; \
                 history: {h:?}\nlog tail:\n{}",
                common::tail(&server.log(), 30)
            );
        }
    }
    eprintln!(
        "{name}: {rounds} rounds, {ops} operations, {unknown} with unknown outcome, \
         {kills_mid_round} kills while clients ran: every key linearizable"
    );
    assert!(
        kills_mid_round >= 1,
        "seed {seed}: {name}: no kill landed while the clients ran"
    );
}

#[test]
fn api_cas_history_is_linearizable_on_sqlite_with_server_kills() {
    let seed = seed("api_lin_sqlite");
    run(Server::start(), "sqlite", seed);
}

#[test]
fn api_cas_history_is_linearizable_on_etcd_with_server_kills() {
    let Some(etcd) = Etcd::start() else { return };
    let seed = seed("api_lin_etcd");
    let server = Server::start_with(&["--datastore-endpoint", &etcd.endpoint()]);
    run(server, "etcd", seed);
}
