//! Watch guarantees through the API across server kills: kube-rs writers create, replace and
//! delete ConfigMaps in phases; between phases the `drover server` is SIGKILLed and restarted
//! (on SQLite and on etcd — the server is killed, never etcd). kube-rs watchers (raw watches
//! with bookmarks) run throughout: when their stream breaks they resume from the last
//! resourceVersion they saw, and on 410 they relist. Each watcher's record is validated against
//! the history of acknowledged writes by the watch validator of `crates/durability` (included by
//! path: a pure module without dependencies): ordered, gap-free, duplicate-free, values equal
//! to the history's, relists equal to the history's state. Writes happen only while the server
//! is up and between kills, so every change is acknowledged and the history is complete.
//!
//! The validator's negative controls (an injected dropped and duplicated event) run in
//! `crates/store/tests/durability_watch.rs` and in its unit tests.

mod common;
mod durability_common;
#[path = "../../../crates/durability/src/watch.rs"]
#[allow(dead_code, unreachable_pub)]
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Etcd, Server};
use durability_common::{Rng, client, seed};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use watch::{Change, History, Observed};

const WRITERS: usize = 3;
const KEYS_PER_WRITER: u64 = 4;
const WATCHERS: usize = 3;

/// Short history, so watchers resuming after a kill may find their revision compacted and must
/// take the 410 → relist path.
const SHORT_HISTORY: &[&str] = &[
    "--datastore-history-retention",
    "1s",
    "--datastore-max-history",
    "50",
];

fn rv_of(cm: &ConfigMap) -> i64 {
    cm.resource_version()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{}: no numeric resourceVersion", cm.name_any()))
}

fn value_of(cm: &ConfigMap) -> Vec<u8> {
    cm.data
        .as_ref()
        .and_then(|d| d.get("v"))
        .cloned()
        .unwrap_or_default()
        .into_bytes()
}

fn ours(cm: &ConfigMap) -> bool {
    cm.name_any().starts_with("wv-")
}

/// One phase of one writer: creates, replaces and deletes its own objects; returns the
/// acknowledged changes.
async fn write_phase(
    api: Api<ConfigMap>,
    w: usize,
    seed: u64,
    ops: u64,
    known: Arc<Mutex<HashMap<String, String>>>,
) -> Vec<Change> {
    let mut rng = Rng::new(seed);
    let mut changes = Vec::new();
    let pp = PostParams::default();
    for n in 0..ops {
        let name = format!("wv-{w}-{}", rng.range(0, KEYS_PER_WRITER));
        let v = format!("{name}@{n}-{}", rng.next() % 1000);
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.clone());
        cm.data = Some(BTreeMap::from([("v".to_owned(), v.clone())]));
        let current = known.lock().expect("known").get(&name).cloned();
        let change = match current {
            None => {
                let got = api.create(&pp, &cm).await.expect("create");
                Change {
                    revision: rv_of(&got),
                    key: name.clone(),
                    value: Some(value_of(&got)),
                }
            }
            Some(_) if rng.next().is_multiple_of(5) => {
                let got = api
                    .delete(&name, &DeleteParams::default())
                    .await
                    .expect("delete");
                let deleted = got.left().expect("a ConfigMap delete returns the object");
                Change {
                    revision: rv_of(&deleted),
                    key: name.clone(),
                    value: None,
                }
            }
            Some(rv) => {
                cm.metadata.resource_version = Some(rv);
                let got = api.replace(&name, &pp, &cm).await.expect("replace");
                Change {
                    revision: rv_of(&got),
                    key: name.clone(),
                    value: Some(value_of(&got)),
                }
            }
        };
        match change.value {
            Some(_) => known
                .lock()
                .expect("known")
                .insert(name, change.revision.to_string()),
            None => known.lock().expect("known").remove(&name),
        };
        changes.push(change);
    }
    changes
}

/// A watcher that runs until `stop`, resuming after broken streams and relisting after 410.
async fn watcher(
    kubeconfig: std::path::PathBuf,
    start: i64,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicI64>,
) -> Vec<Observed> {
    let mut record = Vec::new();
    let mut covered = start;
    while !stop.load(Ordering::SeqCst) {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&kubeconfig, None).await);
        record.push(Observed::Resume { after: covered });
        let wp = WatchParams::default().timeout(10);
        let stream = match api.watch(&wp, &covered.to_string()).await {
            Ok(s) => s,
            Err(_) => {
                record.pop();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        loop {
            progress.store(covered, Ordering::SeqCst);
            let next = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
            if stop.load(Ordering::SeqCst) {
                return record;
            }
            let item = match next {
                Err(_elapsed) => continue,
                Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(item))) => item,
            };
            match item {
                WatchEvent::Added(cm) | WatchEvent::Modified(cm) if ours(&cm) => {
                    covered = rv_of(&cm);
                    record.push(Observed::Batch {
                        events: vec![Change {
                            revision: covered,
                            key: cm.name_any(),
                            value: Some(value_of(&cm)),
                        }],
                        revision: covered,
                    });
                }
                WatchEvent::Deleted(cm) if ours(&cm) => {
                    covered = rv_of(&cm);
                    record.push(Observed::Batch {
                        events: vec![Change {
                            revision: covered,
                            key: cm.name_any(),
                            value: None,
                        }],
                        revision: covered,
                    });
                }
                WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_) => {}
                WatchEvent::Bookmark(b) => {
                    if let Ok(rv) = b.metadata.resource_version.parse::<i64>()
                        && rv > covered
                    {
                        covered = rv;
                        record.push(Observed::Batch {
                            events: vec![],
                            revision: rv,
                        });
                    }
                }
                WatchEvent::Error(e) if e.code == 410 => {
                    record.push(Observed::Gone);
                    let list = api.list(&ListParams::default()).await;
                    let Ok(list) = list else { break };
                    let rv = list
                        .metadata
                        .resource_version
                        .as_deref()
                        .and_then(|r| r.parse().ok())
                        .expect("list resourceVersion");
                    record.push(Observed::Relist {
                        revision: rv,
                        items: list
                            .items
                            .iter()
                            .filter(|cm| ours(cm))
                            .map(|cm| (cm.name_any(), value_of(cm)))
                            .collect(),
                    });
                    covered = rv;
                    break;
                }
                WatchEvent::Error(e) => panic!("watch error: {e:?}"),
            }
        }
    }
    record
}

fn run(mut server: Server, name: &str, seed: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let soak = std::env::var("DROVER_SOAK").as_deref() == Ok("1");
    let phases = if soak { 30 } else { 5 };
    let ops = 25;
    let mut rng = Rng::new(seed);
    let kubeconfig = server.kubeconfig();
    let start: i64 = rt.block_on(async {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&kubeconfig, None).await);
        let list = api.list(&ListParams::default()).await.expect("list");
        list.metadata
            .resource_version
            .as_deref()
            .and_then(|r| r.parse().ok())
            .expect("list resourceVersion")
    });
    let stop = Arc::new(AtomicBool::new(false));
    let progress: Vec<Arc<AtomicI64>> = (0..WATCHERS).map(|_| Arc::default()).collect();
    let watchers: Vec<_> = progress
        .iter()
        .map(|p| {
            rt.spawn(watcher(
                kubeconfig.clone(),
                start,
                Arc::clone(&stop),
                Arc::clone(p),
            ))
        })
        .collect();
    let known = Arc::new(Mutex::new(HashMap::new()));
    let mut changes = Vec::new();
    for phase in 0..phases {
        let got: Vec<Change> = rt.block_on(async {
            let api: Api<ConfigMap> = Api::default_namespaced(client(&kubeconfig, None).await);
            let tasks: Vec<_> = (0..WRITERS)
                .map(|w| {
                    tokio::spawn(write_phase(
                        api.clone(),
                        w,
                        rng.next(),
                        ops,
                        Arc::clone(&known),
                    ))
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.expect("writer"));
            }
            all
        });
        changes.extend(got);
        // Let the watchers catch up a little (or not), then kill the server.
        std::thread::sleep(Duration::from_millis(rng.range(0, 300)));
        if phase + 1 < phases {
            server.stop_with(9);
            server.restart_stopped();
        }
    }
    // Wait until every watcher covered the last change (at most 60 s), then stop them.
    let last = changes.iter().map(|c| c.revision).max().unwrap_or(start);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while progress.iter().any(|p| p.load(Ordering::SeqCst) < last)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    let records: Vec<Vec<Observed>> = rt.block_on(async {
        let mut out = Vec::new();
        for w in watchers {
            out.push(w.await.expect("watcher"));
        }
        out
    });
    let history = History::new(changes.clone()).expect("unique revisions");
    let until = history.last_revision();
    for (i, record) in records.iter().enumerate() {
        let result = watch::validate(&history, "wv-", start, record, until);
        eprintln!("{name}: watcher {i}: {result:?}");
        let summary = result.unwrap_or_else(|v| {
            panic!(
                "seed {seed}: {name}: watcher {i} broke the watch guarantees: {v}; log tail:\n{}",
                common::tail(&server.log(), 30)
            )
        });
        assert!(
            summary.resumes as usize >= phases,
            "{name}: watcher {i} did not resume across kills: {summary:?}"
        );
    }
    eprintln!(
        "{name}: {phases} phases, {} acknowledged changes, {} kills",
        changes.len(),
        phases - 1
    );
}

#[test]
fn api_watches_are_exact_across_server_kills_on_sqlite() {
    let seed = seed("api_watch_sqlite");
    run(Server::start_with(SHORT_HISTORY), "sqlite", seed);
}

#[test]
fn api_watches_are_exact_across_server_kills_on_etcd() {
    let Some(etcd) = Etcd::start() else { return };
    let seed = seed("api_watch_etcd");
    let endpoint = etcd.endpoint();
    let mut args = vec!["--datastore-endpoint", &endpoint];
    args.extend_from_slice(SHORT_HISTORY);
    let server = Server::start_with(&args);
    run(server, "etcd", seed);
}
