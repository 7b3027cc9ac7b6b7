//! Leader election between real `drover server` processes sharing one datastore: one of them
//! holds `kube-system/drover-controllers` and runs the controllers; after a SIGKILL of the
//! holder the other takes over (2 s test Lease) and its garbage collector and namespace
//! controller do the work; on SIGTERM the holder releases the Lease, so the takeover does not
//! wait for expiry.
mod common;

use std::time::{Duration, Instant};

use common::Server;

const TIMINGS: [&str; 6] = [
    "--leader-elect-lease-duration",
    "2s",
    "--leader-elect-renew-deadline",
    "1s",
    "--leader-elect-retry-period",
    "200ms",
];

/// `drover_leader` from the server's `/metrics` (None if the server does not answer).
fn leading(s: &Server) -> Option<bool> {
    let out = s.raw_get("/metrics");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("drover_leader{"))
        .unwrap_or_else(|| panic!("no drover_leader metric in /metrics:\n{text}"));
    assert!(
        line.contains("lease=\"kube-system/drover-controllers\""),
        "{line}"
    );
    Some(line.ends_with(" 1"))
}

fn holder(s: &Server) -> String {
    s.k(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        "drover-controllers",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

/// Waits until exactly `s` of the given servers leads; returns how long that took.
fn wait_for_leader(s: &Server, others: &[&Server]) -> Duration {
    let start = Instant::now();
    common::eventually("the server to lead the controllers' Lease", || {
        leading(s) == Some(true) && others.iter().all(|o| leading(o) == Some(false))
    });
    start.elapsed()
}

#[test]
fn controllers_move_to_the_surviving_server_when_the_leader_is_killed_or_stopped() {
    require_kubectl!();
    let mut a = Server::start_with(&TIMINGS);
    let token = std::fs::read_to_string(a.data_dir().join("token"))
        .expect("token")
        .trim()
        .to_owned();
    let db = format!("sqlite://{}", a.data_dir().join("db/state.db").display());
    let mut args: Vec<&str> = TIMINGS.to_vec();
    args.extend(["--datastore-endpoint", &db, "--token", &token]);
    let mut b = Server::start_with(&args);

    // Exactly one leads; the Lease shows it.
    common::eventually("exactly one of the two servers to lead", || {
        matches!(
            (leading(&a), leading(&b)),
            (Some(true), Some(false)) | (Some(false), Some(true))
        )
    });
    let table = a.k(&["get", "lease", "-n", "kube-system"]);
    let first = holder(&a);
    assert!(
        table.contains("drover-controllers") && table.contains(&first),
        "{table}"
    );
    assert_eq!(
        a.k(&[
            "get",
            "lease",
            "-n",
            "kube-system",
            "drover-controllers",
            "-o",
            "jsonpath={.spec.leaseDurationSeconds}"
        ]),
        "2"
    );
    let (leader, follower) = if leading(&a) == Some(true) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };

    // SIGKILL: no release, the follower takes over once the 2 s Lease expires.
    leader.stop_with(9);
    let took = wait_for_leader(follower, &[]);
    let second = holder(follower);
    assert_ne!(second, first, "the Lease still names the killed server");
    println!("SIGKILL of the leader: the other server led after {took:?} (Lease 2 s)");

    // The survivor's controllers do the work: namespace deletion and garbage collection.
    follower.k(&["create", "namespace", "doomed"]);
    follower.k(&["-n", "doomed", "create", "configmap", "inside"]);
    follower.k(&["create", "configmap", "owner"]);
    let uid = follower.k(&[
        "get",
        "configmap",
        "owner",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    follower.k_in(
        &["create", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dependent\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: owner, uid: {uid}}}\n"
        ),
    );
    follower.k(&["delete", "namespace", "doomed", "--wait=false"]);
    follower.k(&["delete", "configmap", "owner"]);
    common::eventually(
        "the namespace controller to finish deleting `doomed`",
        || {
            !follower
                .k(&["get", "namespaces", "-o", "name"])
                .contains("namespace/doomed")
        },
    );
    common::eventually("the garbage collector to delete the dependent", || {
        !follower
            .k(&["get", "configmaps", "-o", "name"])
            .contains("configmap/dependent")
    });

    // The killed server comes back as a follower.
    leader.restart_stopped();
    assert_eq!(leading(leader), Some(false), "two leaders after a restart");
    assert_eq!(holder(leader), second);

    // SIGTERM: the holder releases the Lease on the way out, so when its process has exited
    // the Lease no longer names it (without a release it would for 2 more seconds).
    let start = Instant::now();
    let status = follower.stop_with(15);
    assert!(status.success(), "SIGTERM exit: {status}");
    let after_exit = holder(leader);
    assert_ne!(
        after_exit, second,
        "the stopped server did not release the Lease on SIGTERM"
    );
    wait_for_leader(leader, &[]);
    println!(
        "SIGTERM of the leader: the other server led {:?} after the signal (Lease 2 s)",
        start.elapsed()
    );
    assert_ne!(holder(leader), second);
}

#[test]
fn the_leaders_allocator_repair_releases_leaked_cluster_ips_and_keeps_used_ones() {
    require_kubectl!();
    let s = Server::start_with(&TIMINGS);
    s.k(&["create", "service", "clusterip", "web", "--tcp=80:80"]);
    let used = s.k(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    // A leaked allocation (as a server crashing between allocating and storing its Service
    // leaves behind), and an IPAddress someone made by hand (not the allocator's).
    let ipaddress = |ip: &str, managed: bool| {
        let labels = if managed {
            "  labels: {ipaddress.kubernetes.io/managed-by: ipallocator.k8s.io}\n"
        } else {
            ""
        };
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: IPAddress\nmetadata:\n  name: {ip}\n{labels}spec:\n  parentRef: {{group: \"\", resource: services, namespace: default, name: gone}}\n"
        )
    };
    s.k_in(&["create", "-f", "-"], &ipaddress("10.43.255.7", true));
    s.k_in(&["create", "-f", "-"], &ipaddress("10.43.255.8", false));
    common::eventually("the repair to release the leaked 10.43.255.7", || {
        !s.k(&["get", "ipaddresses", "-o", "name"])
            .contains("ipaddress.networking.k8s.io/10.43.255.7")
    });
    let left = s.k(&["get", "ipaddresses", "-o", "name"]);
    assert!(
        left.contains(&format!("ipaddress.networking.k8s.io/{used}")),
        "the repair released a ClusterIP in use: {left}"
    );
    assert!(
        left.contains("ipaddress.networking.k8s.io/10.43.255.8"),
        "the repair released an IPAddress the allocator does not manage: {left}"
    );
}
