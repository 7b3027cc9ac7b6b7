//! The etcd backend beyond the shared conformance suite: reconnects, outages, the NOSPACE
//! alarm, server-driven compaction, etcd auth and the whole-keyspace watch, each against a
//! real etcd 3.4 started by the test (and stopped by its PID).

mod etcd_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use drover_store::{
    Bytes, Error, EtcdConfig, EtcdStore, Event, RangeRequest, Revision, Store, WatchStream,
};
use etcd_support::Etcd;

fn config(etcd: &Etcd, prefix: &str) -> EtcdConfig {
    let mut config = EtcdConfig::parse_endpoint(&etcd.url()).expect("endpoint");
    config.prefix = prefix.to_owned();
    config.progress_interval = Duration::from_millis(200);
    config.maintenance_interval = Duration::from_millis(200);
    config.request_timeout = Duration::from_secs(2);
    config
}

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Retries `f` until it succeeds or `limit` passes.
async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut f: impl AsyncFnMut() -> Result<T, Error>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f().await {
            Ok(t) => return t,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what} did not succeed within {limit:?}: {e}"),
        }
    }
}

/// `update(key, expected, value)`, retried while etcd is unreachable. A retry after an update
/// that was applied but not acknowledged (the answer was lost) finds a Conflict carrying our
/// own value: that counts as done.
async fn update_retrying(
    store: &EtcdStore,
    key: &str,
    expected: Revision,
    value: &str,
) -> Revision {
    eventually(
        "an update while etcd fails over or restarts",
        Duration::from_secs(20),
        async || match store.update(key, expected, val(value)).await {
            Err(Error::Conflict {
                current: Some(current),
                ..
            }) if current.value == val(value) => Ok(current.mod_revision),
            other => other,
        },
    )
    .await
}

/// Receives events until `n` arrived; panics after 30 s naming what is missing.
async fn collect(stream: &mut WatchStream, n: usize, what: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let read = async {
        while events.len() < n {
            match stream.recv().await {
                Some(Ok(batch)) => events.extend(batch.events),
                Some(Err(e)) => panic!("watch failed while waiting for {what}: {e}"),
                None => panic!("watch ended while waiting for {what}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}: got {} of {n}; the watch lost events across the reconnect or never resumed", events.len()));
    events
}

/// Every acknowledged revision exactly once, ascending (the checker the restart test uses).
fn check_exactly_once(events: &[Event], acked: &BTreeSet<Revision>) -> Result<(), String> {
    let seen: Vec<Revision> = events.iter().map(Event::revision).collect();
    if !seen.windows(2).all(|w| w[0] < w[1]) {
        return Err(format!("revisions not strictly ascending: {seen:?}"));
    }
    let set: BTreeSet<Revision> = seen.into_iter().collect();
    if &set != acked {
        return Err(format!("seen {set:?} but acknowledged {acked:?}"));
    }
    Ok(())
}

#[test]
fn exactly_once_checker_catches_duplicates_and_gaps() {
    let put = |r: Revision| Event::Put {
        kv: drover_store::KeyValue {
            key: "k".into(),
            value: Bytes::new(),
            create_revision: 1,
            mod_revision: r,
        },
        prev: None,
    };
    let acked: BTreeSet<Revision> = [2, 3, 4].into();
    assert!(check_exactly_once(&[put(2), put(3), put(4)], &acked).is_ok());
    // A resume from `delivered` instead of `delivered + 1` repeats an event...
    assert!(check_exactly_once(&[put(2), put(3), put(3), put(4)], &acked).is_err());
    // ...and a resume from `delivered + 2` skips one.
    assert!(check_exactly_once(&[put(2), put(4)], &acked).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_after_etcd_restarts_without_gaps_or_duplicates() {
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    let store = EtcdStore::open(config(&etcd, "/drover-test")).expect("open");
    let start = store.current_revision().await.expect("current revision");
    let mut stream = store.watch("/w/", start).await.expect("watch");
    let mut acked = BTreeSet::new();
    let mut rev = store.create("/w/k", val("0")).await.expect("create");
    acked.insert(rev);
    for i in 1..20 {
        rev = store
            .update("/w/k", rev, val(&i.to_string()))
            .await
            .expect("update");
        acked.insert(rev);
    }
    let mut events = collect(&mut stream, 20, "the writes before the restart").await;

    etcd.stop();
    match store.get("/w/k").await {
        Err(Error::Unavailable(m)) => assert!(
            m.contains(&format!("127.0.0.1:{}", etcd.client_port)),
            "the unavailable error must name the endpoint: {m}"
        ),
        other => panic!("a read while etcd is stopped must fail as Unavailable, got {other:?}"),
    }
    etcd.launch();

    for i in 20..40 {
        rev = update_retrying(&store, "/w/k", rev, &i.to_string()).await;
        acked.insert(rev);
    }
    events.extend(collect(&mut stream, 20, "the writes after the restart").await);
    check_exactly_once(&events, &acked).unwrap_or_else(|e| panic!("across the restart: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_a_stopped_etcd_by_endpoint_and_recovers() {
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    let store = EtcdStore::open(config(&etcd, "")).expect("open");
    store.probe().await.expect("etcd is up");
    assert_eq!(store.health(), Ok(()));
    etcd.stop();
    let err = store.probe().await.expect_err("etcd is down");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let health = store.health().expect_err("health must report the outage");
    assert!(
        health.contains(&etcd.url()),
        "health must name the endpoint: {health}"
    );
    etcd.launch();
    eventually(
        "a probe after etcd is back",
        Duration::from_secs(20),
        async || store.probe().await,
    )
    .await;
    assert_eq!(store.health(), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_opens_before_etcd_starts_and_works_once_it_is_up() {
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    etcd.stop();
    let store = EtcdStore::open(config(&etcd, "")).expect("opening never waits for etcd");
    assert!(matches!(store.get("/k").await, Err(Error::Unavailable(_))));
    etcd.launch();
    let rev = eventually(
        "a create once etcd is up",
        Duration::from_secs(20),
        async || store.create("/k", val("v")).await,
    )
    .await;
    assert_eq!(
        store
            .get("/k")
            .await
            .expect("get")
            .map(|kv| kv.mod_revision),
        Some(rev)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_driven_compaction_keeps_max_history_and_fails_older_reads() {
    let Some(etcd) = Etcd::start() else { return };
    let mut c = config(&etcd, "/drover-test");
    c.max_history = 20;
    let store = EtcdStore::open(c).expect("open");
    let first = store.create("/c/k", val("0")).await.expect("create");
    let mut rev = first;
    for i in 1..1200 {
        rev = store
            .update("/c/k", rev, val(&i.to_string()))
            .await
            .expect("update");
    }
    // A target 1 000+ revisions ahead is compacted on the next maintenance round.
    let compacted = eventually(
        "automatic compaction",
        Duration::from_secs(20),
        async || match store.compacted_revision().await? {
            c if c >= rev - 20 - 5 => Ok(c),
            c => Err(Error::Backend(format!("compacted only to {c}"))),
        },
    )
    .await;
    assert!(
        compacted <= rev - 20,
        "compaction went past max_history: {compacted} > {rev} - 20"
    );
    match store
        .range(RangeRequest {
            revision: first,
            ..RangeRequest::prefix("/c/")
        })
        .await
    {
        Err(Error::Compacted {
            requested,
            compacted: c,
        }) => assert!(requested == first && c > first),
        other => {
            panic!("a read at {first}, compacted away, must fail with Compacted, got {other:?}")
        }
    }
    let kept = store
        .range(RangeRequest {
            revision: rev - 1,
            ..RangeRequest::prefix("/c/")
        })
        .await
        .expect("a read within max_history");
    assert_eq!(kept.kvs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nospace_alarm_is_no_space_and_maintenance_recovers() {
    // etcd raises NOSPACE when its file passes the quota (here 2 MiB).
    let Some(etcd) = Etcd::start_with(&["--quota-backend-bytes", "2097152"]) else {
        return;
    };
    let mut c = config(&etcd, "");
    c.max_history = 1;
    c.defrag_ratio = 1.0;
    c.defrag_min_free_bytes = 0;
    // Keep maintenance from recovering until the test has seen the error.
    c.maintenance = false;
    let store = EtcdStore::open(c.clone()).expect("open");
    let big = Bytes::from(vec![b'x'; 256 * 1024]);
    let mut rev = store.create("/big", big.clone()).await.expect("create");
    let mut nospace = None;
    for _ in 0..200 {
        match store.update("/big", rev, big.clone()).await {
            Ok(r) => rev = r,
            Err(e) => {
                nospace = Some(e);
                break;
            }
        }
    }
    match nospace {
        Some(Error::NoSpace { detail }) => assert!(
            detail.contains("NOSPACE") && detail.contains(&etcd.url()),
            "the NoSpace detail must name the alarm and the endpoint: {detail}"
        ),
        other => panic!("writing past etcd's quota must fail with NoSpace, got {other:?}"),
    }
    c.maintenance = true;
    let _maintained = EtcdStore::open(c).expect("open with maintenance");
    let current = store
        .get("/big")
        .await
        .expect("reads work under NOSPACE")
        .expect("exists")
        .mod_revision;
    eventually(
        "a write after compaction, defragmentation and disarm",
        Duration::from_secs(30),
        async || store.update("/big", current, val("small")).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_keyspace_watch_moves_past_foreign_writes() {
    let Some(etcd) = Etcd::start() else { return };
    let ours = EtcdStore::open(config(&etcd, "/drover-test-a")).expect("open ours");
    let theirs = EtcdStore::open(config(&etcd, "/drover-test-a2")).expect("open theirs");
    ours.create("/registry/x", val("x"))
        .await
        .expect("create ours");
    let start = ours.current_revision().await.expect("current");
    let mut stream = ours
        .watch("", start)
        .await
        .expect("watch the whole keyspace");
    let mut last = 0;
    for i in 0..5 {
        last = theirs
            .create(&format!("/registry/{i}"), val("foreign"))
            .await
            .expect("foreign write");
    }
    let reached = async {
        loop {
            match stream.recv().await {
                Some(Ok(batch)) => {
                    for e in &batch.events {
                        assert!(
                            !e.key().starts_with("/registry/"),
                            "another prefix's key leaked into the watch: {}",
                            e.key()
                        );
                    }
                    if batch.revision >= last {
                        return batch.revision;
                    }
                }
                other => panic!("watch ended: {other:?}"),
            }
        }
    };
    let r = tokio::time::timeout(Duration::from_secs(20), reached).await.unwrap_or_else(|_| {
        panic!("an idle whole-keyspace watch never moved past foreign writes at {last}; a consistent LIST would wait for it forever")
    });
    assert!(r >= last);
    // A sibling prefix that starts with ours ("/drover-test-a2") is not ours.
    let all = ours
        .range(RangeRequest::prefix(""))
        .await
        .expect("range everything");
    let keys: Vec<&str> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert!(
        keys.contains(&"/registry/x") && !keys.iter().any(|k| k.starts_with("2/")),
        "the whole-keyspace range must hold only this prefix's keys: {keys:?}"
    );
    assert_eq!(ours.count("/registry/").await.expect("count"), 1);
    assert!(ours.current_revision().await.expect("current") >= r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_auth_with_user_and_password_and_reauth_after_restart() {
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    let admin = etcd_client::Client::connect([etcd.url()], None)
        .await
        .expect("connect as admin");
    admin
        .auth_client()
        .user_add("root", "s3cret", None)
        .await
        .expect("add root");
    admin
        .auth_client()
        .user_grant_role("root", "root")
        .await
        .expect("grant root");
    admin
        .auth_client()
        .auth_enable()
        .await
        .expect("enable auth");

    let mut wrong = config(&etcd, "");
    wrong.user = Some(("root".into(), "wrong".into()));
    let store = EtcdStore::open(wrong).expect("open");
    match store.get("/k").await {
        Err(Error::Backend(m)) => assert!(
            m.contains("refused the user name or password") && m.contains(&etcd.url()),
            "{m}"
        ),
        other => {
            panic!(
                "a wrong password must fail (not as retryable Unavailable) naming the credentials, got {other:?}"
            )
        }
    }

    let url = etcd.url().replace("http://", "etcd://root:s3cret@");
    let mut right = EtcdConfig::parse_endpoint(&url).expect("endpoint with credentials");
    right.request_timeout = Duration::from_secs(2);
    let store = EtcdStore::open(right).expect("open");
    let rev = store
        .create("/k", val("v"))
        .await
        .expect("create with auth");
    etcd.stop();
    etcd.launch();
    // The restarted etcd forgot the token; the store authenticates again.
    eventually(
        "an update after etcd restarted",
        Duration::from_secs(20),
        async || store.update("/k", rev, val("w")).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate_works_and_without_one_is_refused() {
    let certs_dir = tempfile::tempdir().expect("cert dir");
    let Some([ca, server_cert, server_key, client_cert, client_key]) =
        etcd_support::make_certs(certs_dir.path())
    else {
        return;
    };
    let Some(etcd) = Etcd::start_tls(
        [&ca, &server_cert, &server_key],
        [ca.clone(), client_cert.clone(), client_key.clone()],
    ) else {
        return;
    };
    // etcd:// with TLS files means https://.
    let endpoint = format!("etcd://127.0.0.1:{}", etcd.client_port);
    let mut with_cert = EtcdConfig::parse_endpoint(&endpoint).expect("endpoint");
    with_cert.ca_file = Some(ca.clone());
    with_cert.cert_file = Some(client_cert);
    with_cert.key_file = Some(client_key);
    with_cert.request_timeout = Duration::from_secs(3);
    let store = EtcdStore::open(with_cert).expect("open over TLS");
    let rev = store
        .create("/tls", val("v"))
        .await
        .expect("a write over TLS with a client certificate");
    assert_eq!(
        store
            .get("/tls")
            .await
            .expect("get")
            .map(|kv| kv.mod_revision),
        Some(rev)
    );

    // Negative control: the same server without a client certificate refuses the client.
    let mut no_cert = EtcdConfig::parse_endpoint(&endpoint).expect("endpoint");
    no_cert.ca_file = Some(ca);
    no_cert.request_timeout = Duration::from_secs(3);
    let store = EtcdStore::open(no_cert).expect("open");
    match store.get("/tls").await {
        Err(Error::Unavailable(m)) => assert!(m.contains(&etcd.client_port.to_string()), "{m}"),
        other => panic!(
            "etcd with --client-cert-auth must refuse a client without a certificate, got {other:?}"
        ),
    }
    let missing = EtcdConfig::parse_endpoint(&endpoint).map(|mut c| {
        c.ca_file = Some(certs_dir.path().join("nope.crt"));
        c
    });
    match EtcdStore::open(missing.expect("endpoint")) {
        Err(Error::Backend(m)) => assert!(m.contains("nope.crt"), "{m}"),
        Err(other) => panic!("a missing CA file must be named, got {other:?}"),
        Ok(_) => panic!("a missing CA file must fail at open"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_cluster_fails_over_when_a_member_stops() {
    let Some(mut members) = Etcd::start_cluster(3) else {
        return;
    };
    let endpoints: Vec<String> = members.iter().map(Etcd::url).collect();
    let mut c = EtcdConfig::parse_endpoint(&endpoints.join(",")).expect("endpoints");
    c.request_timeout = Duration::from_secs(2);
    c.progress_interval = Duration::from_millis(200);
    let store = EtcdStore::open(c).expect("open");
    let start = store.current_revision().await.expect("current");
    let mut stream = store.watch("/f/", start).await.expect("watch");
    let mut acked = BTreeSet::new();
    let mut rev = store.create("/f/k", val("0")).await.expect("create");
    acked.insert(rev);
    for i in 1..10 {
        rev = store
            .update("/f/k", rev, val(&i.to_string()))
            .await
            .expect("update");
        acked.insert(rev);
    }
    // Stop one member cleanly (SIGTERM by its PID); the other two keep quorum.
    members[0].stop();
    for i in 10..40 {
        rev = update_retrying(&store, "/f/k", rev, &i.to_string()).await;
        acked.insert(rev);
    }
    let events = collect(&mut stream, 40, "every write across the failover").await;
    check_exactly_once(&events, &acked).unwrap_or_else(|e| panic!("across the failover: {e}"));
}
