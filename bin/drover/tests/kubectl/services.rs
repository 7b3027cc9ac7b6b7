//! ClusterIP and NodePort allocation through kubectl.
use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::common::{self, Server};

fn cluster_ip(s: &Server, name: &str) -> String {
    s.k(&["get", "svc", name, "-o", "jsonpath={.spec.clusterIP}"])
}

#[test]
fn concurrently_created_services_get_distinct_ips_and_node_ports_in_range() {
    require_kubectl!();
    let s = Server::start();
    std::thread::scope(|scope| {
        for i in 0..16 {
            let s = &s;
            scope.spawn(move || {
                if i % 2 == 0 {
                    s.k(&[
                        "create",
                        "service",
                        "clusterip",
                        &format!("c{i}"),
                        "--tcp=80",
                    ]);
                } else {
                    s.k(&[
                        "create",
                        "service",
                        "nodeport",
                        &format!("n{i}"),
                        "--tcp=80",
                    ]);
                }
            });
        }
    });
    let out = s.k(&["get", "svc", "-o", r#"jsonpath={range .items[*]}{.metadata.name} {.spec.clusterIP} {.spec.ports[0].nodePort}{"\n"}{end}"#]);
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 17, "16 services and `kubernetes`:\n{out}");
    let ips: HashSet<Ipv4Addr> = rows
        .iter()
        .map(|r| r[1].parse().unwrap_or_else(|_| panic!("not an IP: {r:?}")))
        .collect();
    assert_eq!(ips.len(), 17, "every service has its own IP:\n{out}");
    for ip in &ips {
        assert_eq!(ip.octets()[..2], [10, 43], "{ip} outside the service CIDR");
    }
    let ports: Vec<u16> = rows
        .iter()
        .filter(|r| r[0].starts_with('n'))
        .map(|r| r[2].parse().expect("node port"))
        .collect();
    assert_eq!(ports.len(), 8);
    assert_eq!(
        ports.iter().collect::<HashSet<_>>().len(),
        8,
        "distinct node ports: {ports:?}"
    );
    assert!(
        ports.iter().all(|p| (30000..=32767).contains(p)),
        "{ports:?}"
    );
    // The addresses are held by IPAddress objects, as upstream 1.33 does.
    let held = s.k(&["get", "ipaddresses", "-o", "name"]);
    assert_eq!(held.lines().count(), 17, "{held}");
}

#[test]
fn a_taken_cluster_ip_or_node_port_is_refused_until_its_service_is_deleted() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "service", "nodeport", "first", "--tcp=80"]);
    let ip = cluster_ip(&s, "first");
    let port = s.k(&[
        "get",
        "svc",
        "first",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    let err = s.k_err(&[
        "create",
        "service",
        "clusterip",
        "second",
        "--tcp=80",
        &format!("--clusterip={ip}"),
    ]);
    assert!(
        err.contains(&format!(
            "failed to allocate IP {ip}: provided IP is already allocated"
        )),
        "{err}"
    );
    let err = s.k_err(&[
        "create",
        "service",
        "nodeport",
        "third",
        "--tcp=80",
        &format!("--node-port={port}"),
    ]);
    assert!(
        err.contains("spec.ports[0].nodePort") && err.contains("already allocated"),
        "{err}"
    );
    let err = s.k_err(&[
        "create",
        "service",
        "nodeport",
        "fourth",
        "--tcp=80",
        "--node-port=29999",
    ]);
    assert!(err.contains("30000-32767"), "{err}");
    let err = s.k_err(&[
        "create",
        "service",
        "clusterip",
        "fifth",
        "--tcp=80",
        "--clusterip=10.99.0.5",
    ]);
    assert!(err.contains("not in the valid range"), "{err}");
    // A refused create holds nothing.
    assert_eq!(
        s.k(&["get", "svc", "-o", "name"]),
        "service/first\nservice/kubernetes\n"
    );

    s.k(&["delete", "svc", "first"]);
    common::eventually("the deleted service's IP to be released", || {
        s.kubectl(&[
            "create",
            "service",
            "clusterip",
            "second",
            "--tcp=80",
            &format!("--clusterip={ip}"),
        ])
        .status
        .success()
    });
    assert_eq!(cluster_ip(&s, "second"), ip);
    s.k(&[
        "create",
        "service",
        "nodeport",
        "third",
        "--tcp=80",
        &format!("--node-port={port}"),
    ]);
    assert_eq!(
        s.k(&[
            "get",
            "svc",
            "third",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}"
        ]),
        port
    );
    // Headless services take no IP.
    s.k(&[
        "create",
        "service",
        "clusterip",
        "headless",
        "--clusterip=None",
    ]);
    assert_eq!(cluster_ip(&s, "headless"), "None");
}
