//! High availability: two `drover server` processes on one datastore, a stream of writes
//! through both, and a SIGKILL of one of them (the controllers' leader) mid-stream. Writes
//! continue through the other; every acknowledged write is in the final state; a watcher that
//! was connected to the killed server resumes on the other from its last resourceVersion
//! (relisting on 410) and, with what it saw before, has seen every change exactly once, in
//! order. The checker is run on doctored copies of the same data as its negative control.
mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Collector, Server};
use serde_json::Value;

const NS: &str = "ha";
const WRITES: usize = 40;

fn list(s: &Server) -> (i64, BTreeSet<String>) {
    let out = s.raw_get(&format!("/api/v1/namespaces/{NS}/configmaps"));
    assert!(out.status.success(), "list via {}", s.port);
    let v: Value = serde_json::from_slice(&out.stdout).expect("list JSON");
    let rv = v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("list resourceVersion");
    let names = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().expect("name").to_owned())
        .collect();
    (rv, names)
}

fn watch(s: &Server, from: i64) -> Collector {
    Collector::new(s.kubectl_child(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/{NS}/configmaps?watch=1&resourceVersion={from}"),
    ]))
}

/// One watch event: (type, name, resourceVersion). A 410 is `("GONE", "", 0)`.
type Ev = (String, String, i64);

/// The complete JSON lines a watch printed.
fn events(text: &str) -> Vec<Ev> {
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| {
            let ty = e["type"].as_str().unwrap_or("").to_owned();
            if ty == "ERROR" && e["object"]["code"] == 410 {
                return ("GONE".into(), String::new(), 0);
            }
            let m = &e["object"]["metadata"];
            (
                ty,
                m["name"].as_str().unwrap_or("").to_owned(),
                m["resourceVersion"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            )
        })
        .collect()
}

/// Checks what the watcher saw against the final state: `initial` (the list it started from)
/// plus every ADDED event is exactly `final_names`, each once, in increasing resourceVersion;
/// and every acknowledged write is in `final_names`.
fn check(
    initial: &BTreeSet<String>,
    seen: &[Ev],
    final_names: &BTreeSet<String>,
    acked: &BTreeSet<String>,
) -> Vec<String> {
    let mut errors = Vec::new();
    for name in acked.difference(final_names) {
        errors.push(format!(
            "acknowledged write {name} is missing from the final state"
        ));
    }
    let mut have = initial.clone();
    let mut last = 0;
    for (ty, name, rv) in seen {
        if *rv <= last {
            errors.push(format!(
                "{ty} {name} at rv {rv} is out of order (after rv {last})"
            ));
        }
        last = *rv;
        if ty == "ADDED" && !have.insert(name.clone()) {
            errors.push(format!("{name} was added twice"));
        }
    }
    for name in final_names.difference(&have) {
        errors.push(format!("the watcher never saw {name} being added"));
    }
    for name in have.difference(final_names) {
        errors.push(format!(
            "the watcher saw {name}, which is not in the final state"
        ));
    }
    errors
}

fn leading(s: &Server) -> bool {
    let out = s.raw_get("/metrics");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("drover_leader{") && l.ends_with(" 1"))
}

const TIMINGS: [&str; 6] = [
    "--leader-elect-lease-duration",
    "2s",
    "--leader-elect-renew-deadline",
    "1s",
    "--leader-elect-retry-period",
    "200ms",
];

/// Two servers on one SQLite file.
#[test]
fn killing_one_of_two_servers_mid_stream_loses_no_write_and_no_watch_event() {
    require_kubectl!();
    let a = Server::start_with(&TIMINGS);
    let token = std::fs::read_to_string(a.data_dir().join("token"))
        .expect("token")
        .trim()
        .to_owned();
    let db = format!("sqlite://{}", a.data_dir().join("db/state.db").display());
    let mut args: Vec<&str> = TIMINGS.to_vec();
    args.extend(["--datastore-endpoint", &db, "--token", &token]);
    let b = Server::start_with(&args);
    survive_a_kill(a, b);
}

/// Two servers on one etcd.
#[test]
fn killing_one_of_two_servers_on_etcd_mid_stream_loses_no_write_and_no_watch_event() {
    require_kubectl!();
    let Some(etcd) = common::Etcd::start() else {
        return;
    };
    let endpoint = etcd.endpoint();
    let mut args: Vec<&str> = TIMINGS.to_vec();
    args.extend(["--datastore-endpoint", &endpoint]);
    let a = Server::start_with(&args);
    let token = std::fs::read_to_string(a.data_dir().join("token"))
        .expect("token")
        .trim()
        .to_owned();
    args.extend(["--token", &token]);
    let b = Server::start_with(&args);
    survive_a_kill(a, b);
    drop(etcd);
}

fn survive_a_kill(a: Server, b: Server) {
    common::eventually("one of the servers to lead", || leading(&a) || leading(&b));
    // The watcher and the kill go to the leader, so the controllers move too.
    let (mut victim, survivor) = if leading(&a) { (a, b) } else { (b, a) };
    victim.k(&["create", "namespace", NS]);
    common::eventually("the namespace to be visible through both servers", || {
        survivor
            .k(&["get", "namespaces", "-o", "name"])
            .contains(&format!("namespace/{NS}"))
    });

    let (initial_rv, initial) = list(&victim);
    let first_watch = watch(&victim, initial_rv);

    // The writer: alternates between the servers; a write that fails on one is retried on
    // the other. Only a successful create (or AlreadyExists on a retry, meaning the first
    // attempt did commit) counts as acknowledged.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let done = Arc::new(Mutex::new(0usize));
    let servers = Arc::new([victim.kubeconfig(), survivor.kubeconfig()]);
    let writer = {
        let (acked, done, servers) = (Arc::clone(&acked), Arc::clone(&done), Arc::clone(&servers));
        let kubectl = common::kubectl_binary("1.32").expect("kubectl");
        std::thread::spawn(move || {
            for i in 0..WRITES {
                let name = format!("w-{i:03}");
                for attempt in 0..2 {
                    let kc = &servers[(i + attempt) % 2];
                    let out = std::process::Command::new(&kubectl)
                        .args([
                            "--request-timeout=5s",
                            "-n",
                            NS,
                            "create",
                            "configmap",
                            &name,
                        ])
                        .env("KUBECONFIG", kc)
                        .output()
                        .expect("kubectl");
                    let err = String::from_utf8_lossy(&out.stderr);
                    if out.status.success() || (attempt > 0 && err.contains("AlreadyExists")) {
                        acked.lock().expect("lock").insert(name.clone());
                        break;
                    }
                }
                *done.lock().expect("lock") = i + 1;
            }
        })
    };
    common::eventually("a third of the writes to be done", || {
        *done.lock().expect("lock") >= WRITES / 3
    });
    victim.stop_with(9);
    writer.join().expect("writer");
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= WRITES - 2,
        "writes must continue through the survivor: only {} of {WRITES} acknowledged",
        acked.len()
    );

    // The watcher's connection died with the server: resume on the survivor.
    std::thread::sleep(Duration::from_millis(200));
    let mut seen = events(&first_watch.stop());
    let resume_from = seen.last().map_or(initial_rv, |e| e.2);
    let mut second = watch(&survivor, resume_from);
    let mut base = initial.clone();
    let (_, final_names) = list(&survivor);
    let mut tail: Vec<Ev>;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tail = events(&second.text());
        if tail.first().is_some_and(|e| e.0 == "GONE") {
            // Too old: relist and watch from the list (the client-go reflector's way).
            let (rv, names) = list(&survivor);
            base = names;
            seen.clear();
            drop(std::mem::replace(&mut second, watch(&survivor, rv)));
            continue;
        }
        let all = [seen.clone(), tail.clone()].concat();
        if check(&base, &all, &final_names, &acked).is_empty()
            || std::time::Instant::now() > deadline
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    second.stop();
    seen.extend(tail);
    println!(
        "{} acknowledged writes, {} events before the kill (resumed at rv {resume_from}), {} in total",
        acked.len(),
        seen.iter().filter(|e| e.2 <= resume_from).count(),
        seen.len()
    );
    let errors = check(&base, &seen, &final_names, &acked);
    assert!(errors.is_empty(), "HA violations:\n{}", errors.join("\n"));
    assert!(
        seen.iter()
            .any(|e| e.2 <= resume_from && e.1.starts_with("w-"))
            && seen
                .iter()
                .any(|e| e.2 > resume_from && e.1.starts_with("w-")),
        "the watcher must have seen writes both before and after the kill: {seen:?}"
    );

    // Negative controls: the checker flags a missed event, a lost acknowledged write, and a
    // duplicated (replayed) event.
    let mid = seen
        .iter()
        .position(|e| e.2 > resume_from)
        .unwrap_or(seen.len() / 2);
    let mut missed = seen.clone();
    missed.remove(mid);
    assert!(
        check(&base, &missed, &final_names, &acked)
            .iter()
            .any(|e| e.contains("never saw"))
    );
    let mut lost = final_names.clone();
    let gone = acked.iter().next().expect("acked").clone();
    lost.remove(&gone);
    assert!(
        check(&base, &seen, &lost, &acked)
            .iter()
            .any(|e| e.contains("acknowledged"))
    );
    let mut replayed = seen.clone();
    let mid = mid.max(1);
    replayed.insert(mid, seen[mid - 1].clone());
    assert!(!check(&base, &replayed, &final_names, &acked).is_empty());

    // The controllers moved to the survivor: a namespace deletion completes.
    common::eventually("the survivor to lead", || leading(&survivor));
    survivor.k(&["delete", "namespace", NS, "--wait=false"]);
    common::eventually("the namespace deletion to complete on the survivor", || {
        !survivor
            .k(&["get", "namespaces", "-o", "name"])
            .contains(&format!("namespace/{NS}"))
    });
}
