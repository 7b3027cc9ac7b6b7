//! Watch semantics on the wire: the watch-list protocol (`sendInitialEvents`) and selector
//! transitions, read from the raw event stream.
mod common;

use common::Server;

fn events(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a watch event ({e}): {l}")))
        .collect()
}

fn create_cm(s: &Server, name: &str, labels: &str) {
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{labels}}}}}"#
    );
    let r = s.curl(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        Some(body.as_bytes()),
    );
    assert_eq!(r.code, 201, "{}", r.body);
}

#[test]
fn send_initial_events_streams_the_state_then_an_initial_events_end_bookmark() {
    let s = Server::start();
    create_cm(&s, "a", r#"{"w":"1"}"#);
    create_cm(&s, "b", r#"{"w":"1"}"#);
    let r = s.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&labelSelector=w%3D1&timeoutSeconds=1",
        "application/json",
        None,
    );
    assert_eq!(r.code, 200, "{}", r.body);
    let evs = events(&r.body);
    let kinds: Vec<&str> = evs
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(&kinds[..3], &["ADDED", "ADDED", "BOOKMARK"], "{}", r.body);
    let names: Vec<&str> = evs[..2]
        .iter()
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(
        evs[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true",
        "{}",
        r.body
    );
    // Without the required companions the request is refused, as upstream does.
    let bad = s.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true",
        "application/json",
        None,
    );
    assert_eq!(bad.code, 422, "{}", bad.body);
}

#[test]
fn an_object_that_stops_matching_a_selector_is_deleted_from_the_watch() {
    let s = Server::start();
    create_cm(&s, "c", r#"{"tier":"web"}"#);
    let list = s.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps?labelSelector=tier%3Dweb",
        "application/json",
        None,
    );
    let rv = list.json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    // Relabel out of the selection, back in, then delete.
    let patch = |tier: &str| {
        let body = format!(r#"{{"metadata":{{"labels":{{"tier":"{tier}"}}}}}}"#);
        let r = s.curl(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/merge-patch+json",
            Some(body.as_bytes()),
        );
        assert_eq!(r.code, 200, "{}", r.body);
    };
    patch("db");
    patch("web");
    assert_eq!(
        s.curl(
            "DELETE",
            "/api/v1/namespaces/default/configmaps/c",
            "application/json",
            None
        )
        .code,
        200
    );
    let r = s.curl(
        "GET",
        &format!("/api/v1/namespaces/default/configmaps?watch=true&labelSelector=tier%3Dweb&resourceVersion={rv}&timeoutSeconds=1"),
        "application/json",
        None,
    );
    let evs = events(&r.body);
    let seen: Vec<(String, String)> = evs
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_owned(),
                e["object"]["metadata"]["labels"]["tier"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("DELETED".into(), "db".into()),
            ("ADDED".into(), "web".into()),
            ("DELETED".into(), "web".into())
        ],
        "{}",
        r.body
    );
    // Events carry increasing resource versions.
    let rvs: Vec<i64> = evs
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0)
        })
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
}

#[test]
fn typed_clients_get_protobuf_watch_frames() {
    let s = Server::start();
    create_cm(&s, "p1", r#"{"w":"1"}"#);
    let (cert, key) = s.client_cert_files();
    let out = std::process::Command::new("curl")
        .args(["-sk", "-D", "-", "-H", "Accept: application/vnd.kubernetes.protobuf, application/json"])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg(format!("https://127.0.0.1:{}/api/v1/namespaces/default/configmaps?watch=true&labelSelector=w%3D1&timeoutSeconds=1", s.port))
        .output()
        .expect("curl");
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    let headers = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(
        headers.contains("content-type: application/vnd.kubernetes.protobuf;stream=watch"),
        "{headers}"
    );
    let mut buf = &raw[split..];
    let mut events = Vec::new();
    while let Some((payload, used)) = drover_codec::next_watch_frame(buf).expect("frame") {
        events.push(drover_codec::decode_watch_frame(payload).expect("decodes"));
        buf = &buf[used..];
    }
    assert!(buf.is_empty(), "{} trailing bytes", buf.len());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["kind"], "ConfigMap");
    assert_eq!(events[0]["object"]["metadata"]["name"], "p1");
}

/// Watchers of one live event share its decoded object and encoded frames; each must still
/// get the event its own selector and output form call for. Four concurrent watches (two
/// identical with a selector, one without, one asking for Tables) see one object go in and
/// out of the selection.
#[test]
fn concurrent_watchers_with_different_selectors_and_outputs_each_get_their_own_events() {
    let s = Server::start();
    let list = s.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        None,
    );
    let rv = list.json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    let (cert, key) = s.client_cert_files();
    let watch = |query: &str, accept: &str| {
        std::process::Command::new("curl")
            .args(["-sk", "-H", &format!("Accept: {accept}")])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg(format!(
                "https://127.0.0.1:{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=5{query}",
                s.port
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("curl")
    };
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let watchers = [
        watch("&labelSelector=tier%3Dweb", "application/json"),
        watch("&labelSelector=tier%3Dweb", "application/json"),
        watch("", "application/json"),
        watch("", table),
    ];
    // Give the watches time to subscribe, so the writes reach them live (they started at
    // `rv`, so a late one replays the same events from the window instead).
    std::thread::sleep(std::time::Duration::from_secs(1));
    create_cm(&s, "c", r#"{"tier":"web"}"#);
    for tier in ["db", "web"] {
        let body = format!(r#"{{"metadata":{{"labels":{{"tier":"{tier}"}}}}}}"#);
        let r = s.curl(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/merge-patch+json",
            Some(body.as_bytes()),
        );
        assert_eq!(r.code, 200, "{}", r.body);
    }
    let r = s.curl(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/c",
        "application/json",
        None,
    );
    assert_eq!(r.code, 200, "{}", r.body);
    let seen: Vec<Vec<(String, String)>> = watchers
        .into_iter()
        .map(|w| {
            let out = common::wait_with_timeout(w, std::time::Duration::from_secs(60), "watch");
            events(&String::from_utf8_lossy(&out.stdout))
                .iter()
                .map(|e| {
                    let obj = &e["object"];
                    let what = if obj["kind"] == "Table" {
                        let row = &obj["rows"][0];
                        format!("Table {}", row["cells"][0].as_str().unwrap_or(""))
                    } else {
                        obj["metadata"]["labels"]["tier"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned()
                    };
                    (e["type"].as_str().unwrap_or("").to_owned(), what)
                })
                .collect()
        })
        .collect();
    let ev = |t: &str, w: &str| (t.to_owned(), w.to_owned());
    let selected = vec![
        ev("ADDED", "web"),
        ev("DELETED", "db"),
        ev("ADDED", "web"),
        ev("DELETED", "web"),
    ];
    assert_eq!(seen[0], selected);
    assert_eq!(seen[1], selected);
    assert_eq!(
        seen[2],
        vec![
            ev("ADDED", "web"),
            ev("MODIFIED", "db"),
            ev("MODIFIED", "web"),
            ev("DELETED", "web"),
        ]
    );
    assert_eq!(
        seen[3],
        vec![
            ev("ADDED", "Table c"),
            ev("MODIFIED", "Table c"),
            ev("MODIFIED", "Table c"),
            ev("DELETED", "Table c"),
        ]
    );
}
