//! `kubectl get`: output formats, watches, selectors, sorting, `get all`, and the table columns.
use serde_json::json;

use crate::common::{self, Collector, Server};
use crate::{cells, cms, configmap, header, names, parse, row};

const WEB_SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: web, labels: {app: web}}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
";

#[test]
fn get_prints_wide_yaml_json_jsonpath_and_name_output() {
    require_kubectl!();
    let s = Server::start();
    s.k(&[
        "create",
        "configmap",
        "colors",
        "--from-literal=red=ff0000",
        "--from-literal=blue=0000ff",
    ]);
    s.k_in(&["apply", "-f", "-"], WEB_SERVICE);

    let wide = s.k(&["get", "svc", "web", "-o", "wide"]);
    assert_eq!(
        header(&wide),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ],
        "{wide}"
    );
    let r = row(&wide, 0, "web");
    assert_eq!(
        (r[1].as_str(), r[4].as_str(), r[6].as_str()),
        ("ClusterIP", "80/TCP", "app=web"),
        "{wide}"
    );
    assert!(r[2].starts_with("10.43."), "cluster IP {:?}", r[2]);

    let yaml = s.k(&["get", "cm", "colors", "-o", "yaml"]);
    for want in [
        "apiVersion: v1",
        "kind: ConfigMap",
        "  name: colors",
        "  red: ff0000",
        "  blue: 0000ff",
        "  resourceVersion: \"",
    ] {
        assert!(yaml.contains(want), "{want:?} missing from:\n{yaml}");
    }

    let one = parse(&s.k(&["get", "cm", "colors", "-o", "json"]));
    assert_eq!(one["kind"], "ConfigMap");
    assert_eq!(one["data"], json!({"red": "ff0000", "blue": "0000ff"}));
    assert!(
        one["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36),
        "{one}"
    );
    let list = parse(&s.k(&["get", "cm", "-o", "json"]));
    assert_eq!(list["kind"], "List");
    let listed: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(listed, ["colors", "kube-root-ca.crt"], "{list}");

    assert_eq!(
        s.k(&["get", "cm", "colors", "-o", "jsonpath={.data.red}"]),
        "ff0000"
    );
    let ranged = s.k(&[
        "get",
        "svc",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}:{.spec.ports[0].port}{"\n"}{end}"#,
    ]);
    assert_eq!(ranged, "kubernetes:443\nweb:80\n");

    let named = names(&s.k(&["get", "cm,svc", "-o", "name"]));
    assert_eq!(
        named,
        [
            "configmap/colors",
            "configmap/kube-root-ca.crt",
            "service/kubernetes",
            "service/web"
        ]
    );
}

#[test]
fn get_watch_prints_a_row_for_each_create_modify_and_delete() {
    require_kubectl!();
    let s = Server::start();
    let plain = Collector::new(s.kubectl_child(&["get", "cm", "-w"]));
    let events = Collector::new(s.kubectl_child(&["get", "cm", "-w", "--output-watch-events"]));
    // Once the initial list is printed the watch is open: every change below arrives as an event.
    common::eventually("both watches to print the initial list", || {
        plain.text().contains("kube-root-ca.crt") && events.text().contains("kube-root-ca.crt")
    });
    s.k(&["create", "cm", "w1", "--from-literal=a=1"]);
    s.k(&[
        "patch",
        "cm",
        "w1",
        "--type=merge",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ]);
    s.k(&["delete", "cm", "w1"]);
    let w1_rows = |text: &str, col: usize| -> Vec<Vec<String>> {
        text.lines()
            .map(cells)
            .filter(|c| c.get(col).map(String::as_str) == Some("w1"))
            .collect()
    };
    common::eventually("the DELETED event for w1", || {
        w1_rows(&events.text(), 1).len() == 3
    });
    common::eventually("three rows for w1 in the plain watch", || {
        w1_rows(&plain.text(), 0).len() == 3
    });
    let events = events.stop();
    let plain = plain.stop();

    assert_eq!(
        header(&events),
        ["EVENT", "NAME", "DATA", "AGE"],
        "{events}"
    );
    let seen: Vec<(String, String)> = w1_rows(&events, 1)
        .into_iter()
        .map(|r| (r[0].clone(), r[2].clone()))
        .collect();
    let want = [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]
        .map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(seen, want, "{events}");
    assert_eq!(header(&plain), ["NAME", "DATA", "AGE"], "{plain}");
    let data: Vec<String> = w1_rows(&plain, 0)
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(data, ["1", "2", "2"], "{plain}");
}

#[test]
fn get_label_selector_supports_every_operator() {
    require_kubectl!();
    let s = Server::start();
    for (name, labels) in [
        ("a", json!({"env": "prod", "tier": "web"})),
        ("b", json!({"env": "dev", "tier": "web"})),
        ("c", json!({"env": "prod"})),
        ("d", json!({"team": "x"})),
    ] {
        s.k_in(
            &["create", "-f", "-"],
            &configmap(name, labels, json!({})).to_string(),
        );
    }
    // kube-root-ca.crt carries no labels: it matches the negative selectors too.
    for (selector, want) in [
        ("env=prod", vec!["a", "c"]),
        ("env==prod", vec!["a", "c"]),
        ("env!=prod", vec!["b", "d", "kube-root-ca.crt"]),
        ("env in (prod,dev)", vec!["a", "b", "c"]),
        ("env notin (prod)", vec!["b", "d", "kube-root-ca.crt"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c", "d", "kube-root-ca.crt"]),
        ("env=prod,tier=web", vec!["a"]),
        ("env in (prod),!tier", vec!["c"]),
        ("env=staging", vec![]),
    ] {
        let got = names(&s.k(&["get", "cm", "-l", selector, "-o", "name"]));
        assert_eq!(got, cms(&want), "selector {selector:?}");
    }
    let err = s.k_err(&["get", "cm", "-l", "env in prod"]);
    assert!(
        err.contains("env in prod") || err.contains("unable to parse requirement"),
        "{err}"
    );
}

#[test]
fn get_field_selectors_sorting_labels_and_all_namespaces() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "namespace", "other"]);
    for (name, order) in [("a", "3"), ("b", "1"), ("c", "2")] {
        let cm = configmap(
            name,
            json!({"sorted": "yes", "tier": "web"}),
            json!({"order": order}),
        );
        s.k_in(&["create", "-f", "-"], &cm.to_string());
    }
    s.k(&["create", "cm", "x", "-n", "other", "--from-literal=k=v"]);

    assert_eq!(
        names(&s.k(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=b",
            "-o",
            "name"
        ])),
        cms(&["b"])
    );
    assert_eq!(
        names(&s.k(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name!=b",
            "-o",
            "name"
        ])),
        cms(&["a", "c", "kube-root-ca.crt"])
    );
    let err = s.k_err(&["get", "cm", "--field-selector", "data.order=1"]);
    assert!(
        err.contains("data.order"),
        "an unsupported field selector must be named: {err}"
    );

    // Sorting by a field other than the name, as plain names and as a table (which asks for
    // whole objects in the rows).
    assert_eq!(
        s.k(&[
            "get",
            "cm",
            "-l",
            "sorted",
            "--sort-by=.data.order",
            "-o",
            "name"
        ]),
        "configmap/b\nconfigmap/c\nconfigmap/a\n"
    );
    let table = s.k(&["get", "cm", "-l", "sorted", "--sort-by=.data.order"]);
    let order: Vec<String> = table.lines().skip(1).map(|l| cells(l)[0].clone()).collect();
    assert_eq!(order, ["b", "c", "a"], "{table}");

    let labelled = s.k(&["get", "cm", "a", "--show-labels"]);
    assert_eq!(
        header(&labelled),
        ["NAME", "DATA", "AGE", "LABELS"],
        "{labelled}"
    );
    assert_eq!(row(&labelled, 0, "a")[3], "sorted=yes,tier=web");

    let all = s.k(&["get", "cm", "-A"]);
    assert_eq!(header(&all), ["NAMESPACE", "NAME", "DATA", "AGE"], "{all}");
    assert_eq!(row(&all, 1, "x")[0], "other");
    assert_eq!(row(&all, 1, "a")[0], "default");
    let in_other = s.k(&[
        "get",
        "cm",
        "-A",
        "--field-selector",
        "metadata.namespace=other",
    ]);
    let namespaces: Vec<String> = in_other
        .lines()
        .skip(1)
        .map(|l| cells(l)[0].clone())
        .collect();
    assert_eq!(
        namespaces,
        ["other", "other"],
        "x and kube-root-ca.crt of `other` only:\n{in_other}"
    );
}

#[test]
fn get_all_lists_the_kinds_in_the_all_category_only() {
    require_kubectl!();
    let s = Server::start();
    s.k_in(&["apply", "-f", "-"], WEB_SERVICE);
    s.k(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=0",
    ]);
    s.k(&["create", "job", "once", "--image=busybox:1.36"]);
    s.k(&["create", "cm", "not-in-all", "--from-literal=k=v"]);
    let all = s.k(&["get", "all"]);
    for want in [
        "service/kubernetes",
        "service/web",
        "deployment.apps/web",
        "job.batch/once",
    ] {
        assert!(
            all.lines().any(|l| l.starts_with(want)),
            "{want} missing from `get all`:\n{all}"
        );
    }
    assert!(
        !all.contains("configmap/"),
        "ConfigMaps are not in the `all` category:\n{all}"
    );
    let names = s.k(&["get", "all", "-o", "name"]);
    assert!(
        names.contains("deployment.apps/web\n") && names.contains("service/web\n"),
        "{names}"
    );
}

/// `<group> <Kind>` → columns (with `*` for priority-1) from the checked-in upstream table.
fn upstream_columns() -> std::collections::HashMap<String, Vec<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/core/testdata/printer-columns.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(": "))
        .map(|(k, cols)| (k.to_owned(), cols.split(", ").map(str::to_owned).collect()))
        .collect()
}

#[test]
fn get_headers_match_upstream_printer_columns_for_many_kinds() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "namespace", "kinds"]);
    s.k(&[
        "apply",
        "-n",
        "kinds",
        "-f",
        &common::fixture("manifests/many-kinds.yaml"),
    ]);
    let upstream = upstream_columns();
    let kinds = [
        ("pods", "core Pod"),
        ("services", "core Service"),
        ("configmaps", "core ConfigMap"),
        ("secrets", "core Secret"),
        ("serviceaccounts", "core ServiceAccount"),
        ("namespaces", "core Namespace"),
        ("endpoints", "core Endpoints"),
        ("resourcequotas", "core ResourceQuota"),
        ("limitranges", "core LimitRange"),
        ("persistentvolumes", "core PersistentVolume"),
        ("persistentvolumeclaims", "core PersistentVolumeClaim"),
        ("replicationcontrollers", "core ReplicationController"),
        ("podtemplates", "core PodTemplate"),
        ("deployments", "apps Deployment"),
        ("replicasets", "apps ReplicaSet"),
        ("statefulsets", "apps StatefulSet"),
        ("daemonsets", "apps DaemonSet"),
        ("jobs", "batch Job"),
        ("cronjobs", "batch CronJob"),
        (
            "horizontalpodautoscalers",
            "autoscaling HorizontalPodAutoscaler",
        ),
        ("poddisruptionbudgets", "policy PodDisruptionBudget"),
        ("ingresses", "networking.k8s.io Ingress"),
        ("ingressclasses", "networking.k8s.io IngressClass"),
        ("networkpolicies", "networking.k8s.io NetworkPolicy"),
        ("storageclasses", "storage.k8s.io StorageClass"),
        ("roles", "rbac.authorization.k8s.io Role"),
        ("rolebindings", "rbac.authorization.k8s.io RoleBinding"),
        ("clusterroles", "rbac.authorization.k8s.io ClusterRole"),
        ("priorityclasses", "scheduling.k8s.io PriorityClass"),
        ("leases", "coordination.k8s.io Lease"),
        ("runtimeclasses", "node.k8s.io RuntimeClass"),
        ("endpointslices", "discovery.k8s.io EndpointSlice"),
    ];
    let mut wrong = Vec::new();
    for (resource, key) in kinds {
        let cols = upstream
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not in printer-columns.txt"));
        let wide_want: Vec<String> = cols
            .iter()
            .map(|c| c.trim_end_matches('*').to_owned())
            .collect();
        let narrow_want: Vec<String> = cols.iter().filter(|c| !c.ends_with('*')).cloned().collect();
        let ns = if resource == "endpoints" || resource == "endpointslices" {
            "default"
        } else {
            "kinds"
        };
        let wide = s.k(&["get", resource, "-n", ns, "-o", "wide"]);
        let narrow = s.k(&["get", resource, "-n", ns]);
        if header(&wide) != wide_want {
            wrong.push(format!(
                "{key} -o wide: got {:?}, upstream {wide_want:?}",
                header(&wide)
            ));
        }
        if header(&narrow) != narrow_want {
            wrong.push(format!(
                "{key}: got {:?}, upstream {narrow_want:?}",
                header(&narrow)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "table headers differ from upstream:\n{}",
        wrong.join("\n")
    );
}
