//! `drover datastore export|import|snapshot` end to end, with real kubectl and a real etcd 3.4:
//! a cluster moves SQLite → etcd → SQLite keeping every object (uids, contents, order of
//! resourceVersions), watches from old resourceVersions get 410 and a relist works; snapshots
//! are taken online under concurrent writes, restore is refused while the server runs, and a
//! restore brings the objects back with old resourceVersions expired.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Etcd, Server};

fn drover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .output()
        .expect("run drover")
}

/// Runs `drover …` that must succeed; returns (stdout, stderr).
fn drover_ok(args: &[&str]) -> (String, String) {
    let out = drover(args);
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "drover {args:?} failed: {e}\n{o}");
    (o, e)
}

/// Runs `drover …` that must fail; returns stderr.
fn drover_err(args: &[&str]) -> String {
    let out = drover(args);
    assert!(
        !out.status.success(),
        "drover {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const OBJECTS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: db-password, namespace: default}
stringData: {password: hunter2}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default}
data: {mode: fast}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27-alpine}]
"#;

const WIDGETS: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: 3}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w2, namespace: default}
spec: {size: 5}
"#;

fn create_objects(s: &Server) {
    s.k_in(&["apply", "-f", "-"], OBJECTS);
    s.k(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    common::eventually("the Widget kind is served", || {
        s.kubectl(&["get", "widgets"]).status.success()
    });
    s.k_in(&["apply", "-f", "-"], WIDGETS);
    // Updates, so resourceVersions are not in creation order.
    s.k(&["label", "secret", "db-password", "rotated=yes"]);
    s.k(&["annotate", "configmap", "settings", "touched=1"]);
}

/// What must survive a migration: per object, its uid and content, and its resourceVersion
/// (which may change, but only in a way that keeps the order).
#[derive(Debug)]
struct Seen {
    uid: String,
    content: String,
    rv: u64,
}

fn snapshot_objects(s: &Server) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    for kind in [
        "secrets",
        "configmaps",
        "deployments",
        "widgets",
        "customresourcedefinitions",
        "namespaces",
    ] {
        let list: serde_json::Value =
            serde_json::from_str(&s.k(&["get", kind, "-A", "-o", "json"])).expect("json");
        for item in list["items"].as_array().expect("items") {
            let meta = &item["metadata"];
            let name = format!(
                "{kind}/{}/{}",
                meta["namespace"].as_str().unwrap_or(""),
                meta["name"].as_str().unwrap()
            );
            let content = serde_json::json!({
                "data": item["data"],
                "spec": item["spec"],
                "labels": meta["labels"],
                "annotations": meta["annotations"],
            });
            out.insert(
                name,
                Seen {
                    uid: meta["uid"].as_str().unwrap().to_owned(),
                    content: content.to_string(),
                    rv: meta["resourceVersion"].as_str().unwrap().parse().unwrap(),
                },
            );
        }
    }
    out
}

/// Objects must be equal (uids, contents) and their resourceVersions in the same order, all
/// above `old_max`.
fn assert_same(before: &BTreeMap<String, Seen>, after: &BTreeMap<String, Seen>, old_max: u64) {
    for (name, b) in before {
        let a = after
            .get(name)
            .unwrap_or_else(|| panic!("{name} is missing after the migration"));
        assert_eq!(a.uid, b.uid, "{name}: uid");
        assert_eq!(a.content, b.content, "{name}: content");
        assert!(
            a.rv > old_max,
            "{name}: resourceVersion {} must be above every old one ({old_max})",
            a.rv
        );
    }
    let order = |m: &BTreeMap<String, Seen>| {
        let mut v: Vec<(&u64, &String)> = before.keys().map(|k| (&m[k].rv, k)).collect();
        v.sort();
        v.into_iter().map(|(_, k)| k.clone()).collect::<Vec<_>>()
    };
    assert_eq!(order(after), order(before), "resourceVersion order kept");
}

fn list_rv(s: &Server, path: &str) -> u64 {
    let list: serde_json::Value =
        serde_json::from_str(&s.k(&["get", "--raw", path])).expect("list json");
    list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A watch from `rv` must end with 410 Expired; a relist and a watch from its revision work.
fn assert_old_rv_expires_and_relist_works(s: &Server, rv: u64) {
    let out = s.kubectl(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=5"
        ),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("410") && (text.contains("Expired") || text.contains("Gone")),
        "a watch from the old resourceVersion {rv} must get 410 Expired, got: {text}"
    );
    let fresh = list_rv(s, "/api/v1/namespaces/default/configmaps");
    assert!(fresh > rv);
    let out = s.k(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={fresh}&timeoutSeconds=2"
        ),
    ]);
    assert!(
        !out.contains("\"ERROR\""),
        "a watch from the relist works: {out}"
    );
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn kubectl_objects_move_sqlite_to_etcd_and_back_with_old_resource_versions_expired() {
    require_kubectl!();
    let Some(etcd) = Etcd::start() else { return };
    let work = tempfile::tempdir().unwrap();

    // 1. A cluster on SQLite.
    let mut a = Server::start();
    create_objects(&a);
    let before = snapshot_objects(&a);
    let old_rv = list_rv(&a, "/api/v1/namespaces/default/configmaps");
    let token = std::fs::read_to_string(a.data_dir().join("token")).expect("token");
    let token = token.trim().to_owned();
    a.stop_with(15);

    // 2. SQLite → file → etcd.
    let file = work.path().join("from-sqlite.jsonl");
    let data_dir = a.data_dir();
    let (out, err) = drover_ok(&[
        "datastore",
        "export",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.contains("exported"), "{out}");
    assert!(
        err.contains("Secrets"),
        "the Secrets warning goes to stderr: {err}"
    );
    assert_eq!(mode(&file), 0o600);
    let endpoint = etcd.endpoint();
    let etcd_target = [
        "--datastore-endpoint",
        endpoint.as_str(),
        "--datastore-prefix",
        "/drover-test",
    ];
    let mut args = vec!["datastore", "import"];
    args.extend_from_slice(&etcd_target);
    args.push(file.to_str().unwrap());
    drover_ok(&args);
    // Importing again: the target is not empty.
    let err = drover_err(&args);
    assert!(err.contains("not empty"), "{err}");

    // 3. A server on etcd sees the same objects.
    let mut server_args = etcd_target.to_vec();
    server_args.extend_from_slice(&["--token", &token]);
    let mut b = Server::start_with(&server_args);
    let on_etcd = snapshot_objects(&b);
    assert_same(&before, &on_etcd, old_rv);
    assert_old_rv_expires_and_relist_works(&b, old_rv);
    b.k(&["create", "configmap", "made-on-etcd", "--from-literal=k=v"]);
    let etcd_rv = list_rv(&b, "/api/v1/namespaces/default/configmaps");
    let before_back = snapshot_objects(&b);
    b.stop_with(15);

    // 4. etcd → file → a new SQLite file.
    let file2 = work.path().join("from-etcd.jsonl");
    let mut args = vec!["datastore", "export"];
    args.extend_from_slice(&etcd_target);
    args.extend_from_slice(&["-o", file2.to_str().unwrap()]);
    drover_ok(&args);
    let db = work.path().join("back").join("state.db");
    let sqlite_endpoint = format!("sqlite://{}", db.display());
    drover_ok(&[
        "datastore",
        "import",
        "--datastore-endpoint",
        &sqlite_endpoint,
        file2.to_str().unwrap(),
    ]);
    let c = Server::start_with(&["--datastore-endpoint", &sqlite_endpoint, "--token", &token]);
    let back = snapshot_objects(&c);
    assert_same(&before_back, &back, etcd_rv);
    assert!(back.contains_key("configmaps/default/made-on-etcd"));
    assert_old_rv_expires_and_relist_works(&c, etcd_rv);
}

fn configmap_keys(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["key"].as_str().map(str::to_owned))
        .filter_map(|k| {
            k.strip_prefix("/registry/configmaps/default/w-")
                .map(str::to_owned)
        })
        .collect()
}

fn snapshots_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("drover-snapshot-") && n.ends_with(".jsonl"))
    });
    v.sort();
    v
}

#[test]
fn snapshots_are_online_and_consistent_and_restore_needs_a_stopped_server() {
    require_kubectl!();
    let mut s = Server::start_with(&[
        "--datastore-snapshot-interval",
        "1s",
        "--datastore-snapshot-retention",
        "2",
    ]);
    s.k_in(&["apply", "-f", "-"], OBJECTS);
    s.k(&["create", "configmap", "before", "--from-literal=k=v"]);

    // A writer creates w-000, w-001, … one after another while snapshots are taken.
    let kubeconfig = s.kubeconfig();
    let writer = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for i in 0..30 {
            let name = format!("w-{i:03}");
            let out = Command::new(common::kubectl_binary("1.32").unwrap())
                .args(["create", "configmap", &name, "--from-literal=k=v"])
                .env("KUBECONFIG", &kubeconfig)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            acked.push(format!("{i:03}"));
        }
        acked
    });
    let data_dir = s.data_dir();
    let mut files = Vec::new();
    for n in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        let f = s.dir.path().join(format!("manual-{n}.jsonl"));
        let (_, err) = drover_ok(&[
            "datastore",
            "snapshot",
            "save",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "-o",
            f.to_str().unwrap(),
        ]);
        assert!(err.contains("Secrets"), "{err}");
        assert_eq!(mode(&f), 0o600);
        files.push(f);
    }
    let acked = writer.join().unwrap();
    for f in &files {
        let keys = configmap_keys(f);
        assert_eq!(
            keys,
            acked[..keys.len()].to_vec(),
            "{}: a snapshot holds a prefix of the acknowledged writes",
            f.display()
        );
    }

    // Scheduled snapshots: at most `retention` kept, 0600.
    let dir = data_dir.join("snapshots");
    common::eventually("two scheduled snapshots", || snapshots_in(&dir).len() == 2);
    let first = snapshots_in(&dir);
    std::thread::sleep(Duration::from_millis(2500));
    // A new snapshot and the deletion of the oldest follow each other: between them three may
    // exist for an instant, so look again until the pruning is seen. Without retention the
    // count would only grow.
    common::eventually("retention to keep the 2 newest of new snapshots", || {
        let now = snapshots_in(&dir);
        now.len() == 2 && now != first
    });
    let scheduled = snapshots_in(&dir);
    assert!(
        scheduled.iter().all(|p| p > &first[1]),
        "{scheduled:?} newer than {first:?}"
    );
    assert!(scheduled.iter().all(|p| mode(p) == 0o600));
    assert!(
        s.log().contains("Secrets"),
        "the server warns that snapshots hold Secrets"
    );

    // Restore is refused while the server runs, and changes nothing.
    let snap = files.last().unwrap().clone();
    let err = drover_err(&[
        "datastore",
        "snapshot",
        "restore",
        "--data-dir",
        data_dir.to_str().unwrap(),
        snap.to_str().unwrap(),
    ]);
    assert!(err.contains("running drover server"), "{err}");

    // Changes after the snapshot, then stop, restore, start.
    s.k(&["delete", "configmap", "before"]);
    s.k(&[
        "create",
        "configmap",
        "after-snapshot",
        "--from-literal=k=v",
    ]);
    let old_rv = list_rv(&s, "/api/v1/namespaces/default/configmaps");
    s.stop_with(15);
    let (out, _) = drover_ok(&[
        "datastore",
        "snapshot",
        "restore",
        "--data-dir",
        data_dir.to_str().unwrap(),
        snap.to_str().unwrap(),
    ]);
    assert!(out.contains("restored"), "{out}");
    s.restart_stopped();
    let names = s.k(&["get", "configmaps", "-o", "name"]);
    assert!(names.contains("configmap/before"), "{names}");
    assert!(!names.contains("after-snapshot"), "{names}");
    let secret = s.k(&[
        "get",
        "secret",
        "db-password",
        "-o",
        "jsonpath={.data.password}",
    ]);
    assert_eq!(secret, "aHVudGVyMg==", "the Secret is back");
    assert_old_rv_expires_and_relist_works(&s, old_rv);
}

#[test]
fn bad_export_files_are_refused_and_the_target_is_untouched() {
    let Some(etcd) = Etcd::start() else { return };
    let work = tempfile::tempdir().unwrap();
    let mut s = Server::start();
    let data_dir = s.data_dir();
    s.stop_with(15);
    let good = work.path().join("good.jsonl");
    drover_ok(&[
        "datastore",
        "export",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "-o",
        good.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&good).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let write = |name: &str, content: String| {
        let p = work.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let truncated = write("truncated", lines[..lines.len() - 1].join("\n") + "\n");
    let corrupted = write(
        "corrupted",
        text.replacen("\"value\":\"", "\"value\":\"AAAA", 1),
    );
    let version = write(
        "version",
        text.replacen("\"version\":1", "\"version\":7", 1),
    );
    let endpoint = etcd.endpoint();
    for (file, expect) in [
        (&truncated, "truncated"),
        (&corrupted, "checksum mismatch"),
        (&version, "version 7 is not supported"),
    ] {
        let db = work.path().join("t").join("state.db");
        let err = drover_err(&[
            "datastore",
            "import",
            "--datastore-endpoint",
            &format!("sqlite://{}", db.display()),
            file.to_str().unwrap(),
        ]);
        assert!(err.contains(expect), "{expect}: {err}");
        assert!(!db.exists(), "nothing written for {expect}");
        let err = drover_err(&[
            "datastore",
            "import",
            "--datastore-endpoint",
            &endpoint,
            file.to_str().unwrap(),
        ]);
        assert!(err.contains(expect), "etcd, {expect}: {err}");
    }
    // etcd still empty: the good file imports.
    drover_ok(&[
        "datastore",
        "import",
        "--datastore-endpoint",
        &endpoint,
        good.to_str().unwrap(),
    ]);
    // Non-empty SQLite target: the server's own data dir.
    let err = drover_err(&[
        "datastore",
        "import",
        "--data-dir",
        data_dir.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert!(err.contains("not empty"), "{err}");

    // Snapshots are of the embedded store: a sqlite:// endpoint works, etcd is refused clearly.
    let db = format!(
        "sqlite://{}",
        data_dir.join("db").join("state.db").display()
    );
    let snap = work.path().join("snap.jsonl");
    drover_ok(&[
        "datastore",
        "snapshot",
        "save",
        "--datastore-endpoint",
        &db,
        "-o",
        snap.to_str().unwrap(),
    ]);
    drover_ok(&["datastore", "verify", snap.to_str().unwrap()]);
    let err = drover_err(&[
        "datastore",
        "snapshot",
        "save",
        "--datastore-endpoint",
        &endpoint,
        "-o",
        work.path().join("x").to_str().unwrap(),
    ]);
    assert!(err.contains("embedded SQLite datastore"), "{err}");
    // An existing output file is never overwritten.
    let err = drover_err(&[
        "datastore",
        "snapshot",
        "save",
        "--datastore-endpoint",
        &db,
        "-o",
        snap.to_str().unwrap(),
    ]);
    assert!(err.contains("exists"), "{err}");
}
