//! The `kubernetes` Service's endpoints list every live API server of a cluster: two real
//! `drover server` processes on one datastore both appear (in Endpoints and EndpointSlices, as
//! kubectl shows them); one stopped with SIGTERM leaves at once; one killed with SIGKILL
//! leaves when its identity Lease expires.
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

/// `(ip, port)` of every address in the `kubernetes` Endpoints, read through `s`.
fn endpoints(s: &Server) -> BTreeSet<(String, u16)> {
    let v: Value = serde_json::from_str(&s.k(&["get", "endpoints", "kubernetes", "-o", "json"]))
        .expect("Endpoints JSON");
    let mut out = BTreeSet::new();
    for subset in v["subsets"].as_array().into_iter().flatten() {
        for port in subset["ports"].as_array().into_iter().flatten() {
            for a in subset["addresses"].as_array().into_iter().flatten() {
                out.insert((
                    a["ip"].as_str().unwrap_or_default().to_owned(),
                    port["port"].as_u64().unwrap_or_default() as u16,
                ));
            }
        }
    }
    out
}

/// The same from the EndpointSlices labelled for the `kubernetes` Service.
fn slices(s: &Server) -> BTreeSet<(String, u16)> {
    let v: Value = serde_json::from_str(&s.k(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=kubernetes",
        "-o",
        "json",
    ]))
    .expect("EndpointSlice list JSON");
    let mut out = BTreeSet::new();
    for slice in v["items"].as_array().into_iter().flatten() {
        for port in slice["ports"].as_array().into_iter().flatten() {
            for e in slice["endpoints"].as_array().into_iter().flatten() {
                for a in e["addresses"].as_array().into_iter().flatten() {
                    out.insert((
                        a.as_str().unwrap_or_default().to_owned(),
                        port["port"].as_u64().unwrap_or_default() as u16,
                    ));
                }
            }
        }
    }
    out
}

fn members(ports: &[u16]) -> BTreeSet<(String, u16)> {
    ports.iter().map(|p| ("127.0.0.1".to_owned(), *p)).collect()
}

/// Polls until both views equal `want` (bounded by `limit`).
fn wait_for(s: &Server, want: &BTreeSet<(String, u16)>, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        let (e, sl) = (endpoints(s), slices(s));
        if &e == want && &sl == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: after {limit:?} the endpoints are {e:?} and the slices {sl:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_kubernetes_service_lists_every_live_server_and_only_those() {
    require_kubectl!();
    let a = Server::start();
    wait_for(
        &a,
        &members(&[a.port]),
        Duration::from_secs(30),
        "one server",
    );
    let token = std::fs::read_to_string(a.data_dir().join("token"))
        .expect("token")
        .trim()
        .to_owned();
    let db = format!("sqlite://{}", a.data_dir().join("db/state.db").display());
    let mut b = Server::start_with(&["--datastore-endpoint", &db, "--token", &token]);

    // Both servers, seen through either of them; each has its identity Lease.
    let both = members(&[a.port, b.port]);
    wait_for(&a, &both, Duration::from_secs(30), "two servers, via a");
    wait_for(&b, &both, Duration::from_secs(30), "two servers, via b");
    let leases = a.k(&[
        "get",
        "leases",
        "-n",
        "kube-system",
        "-l",
        "apiserver.kubernetes.io/identity=kube-apiserver",
        "-o",
        "name",
    ]);
    for port in [a.port, b.port] {
        assert!(
            leases.contains(&format!(
                "lease.coordination.k8s.io/apiserver-127-0-0-1-{port}"
            )),
            "{leases}"
        );
    }

    // SIGTERM: b removes itself on the way out (no waiting for its Lease to expire).
    let b_lease = format!("apiserver-127-0-0-1-{}", b.port);
    let status = b.stop_with(15);
    assert!(status.success(), "b exited with {status}");
    let gone = a.k_err(&["get", "lease", "-n", "kube-system", &b_lease]);
    assert!(
        gone.contains("NotFound"),
        "b's Lease after a clean stop: {gone}"
    );
    let only_a = members(&[a.port]);
    wait_for(&a, &only_a, Duration::from_secs(30), "b's clean stop");

    // Back again, then SIGKILL: b drops out when its 15 s Lease expires.
    b.restart_stopped();
    wait_for(&a, &both, Duration::from_secs(30), "b back");
    b.stop_with(9);
    // Nobody deletes a killed server's Lease (for an hour); the endpoints drop it on expiry.
    wait_for(
        &a,
        &only_a,
        Duration::from_secs(60),
        "the killed server's Lease to expire",
    );
    let kept = a.k(&["get", "lease", "-n", "kube-system", &b_lease, "-o", "name"]);
    assert_eq!(kept.trim(), format!("lease.coordination.k8s.io/{b_lease}"));
}
