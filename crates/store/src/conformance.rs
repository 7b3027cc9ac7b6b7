//! The conformance suite: what every backend must do, written against [`Store`] only.
//!
//! Each case is a `pub async fn case<S: Store + Clone>(store: &S)` that panics with a message
//! saying what broke. Cases do not assume an empty store or a starting revision: each works
//! under a prefix of its own, so the suite can run against a shared server (the etcd backend).
//! A backend's test file runs every case (see `tests/conformance.rs`), configured so that idle
//! watches get progress notifications within a second or two.
//!
//! Key-value cases live here, watch and compaction cases in `watch`.

mod watch;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use watch::*;

use crate::{Bytes, Error, RangeRequest, Revision, Store};

/// How long any single step may take before a case calls it a hang.
const WAIT: Duration = Duration::from_secs(30);

/// `store.create(key)` then `get` returns the value with both revisions set to the create's.
pub async fn create_then_get_returns_the_value<S: Store + Clone>(store: &S) {
    let p = unique_prefix("create_then_get");
    let key = format!("{p}a");
    let rev = ok(store.create(&key, val("one")).await, "create a new key");
    let kv = ok(store.get(&key).await, "get the created key")
        .expect("a created key must be readable with get");
    assert_eq!(kv.key, key);
    assert_eq!(kv.value, val("one"));
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (rev, rev),
        "a new key's create and mod revision are the create's"
    );
    let current = ok(store.current_revision().await, "current_revision");
    assert!(
        current >= rev,
        "current revision {current} is older than a write it acknowledged ({rev})"
    );
    let missing = ok(store.get(&format!("{p}missing")).await, "get a missing key");
    assert_eq!(missing, None, "a key never written must read as None");
}

/// Creating a key that exists fails with `AlreadyExists` carrying the current value.
pub async fn create_of_existing_key_fails_with_already_exists<S: Store + Clone>(store: &S) {
    let p = unique_prefix("create_existing");
    let key = format!("{p}a");
    let rev = ok(store.create(&key, val("one")).await, "create");
    match store.create(&key, val("two")).await {
        Err(Error::AlreadyExists { key: k, current }) => {
            assert_eq!(k, key);
            assert_eq!(
                (current.value.clone(), current.mod_revision),
                (val("one"), rev),
                "AlreadyExists must carry the current value"
            );
        }
        other => panic!("second create of {key} must fail with AlreadyExists, got {other:?}"),
    }
    let kv = ok(store.get(&key).await, "get").expect("key exists");
    assert_eq!(
        kv.value,
        val("one"),
        "a failed create must not change the value"
    );
}

/// Update succeeds on the current mod revision, fails with `Conflict` on a stale one and with
/// `NotFound` on a missing key.
pub async fn update_is_compare_and_swap_on_mod_revision<S: Store + Clone>(store: &S) {
    let p = unique_prefix("update_cas");
    let key = format!("{p}a");
    let r1 = ok(store.create(&key, val("one")).await, "create");
    let r2 = ok(
        store.update(&key, r1, val("two")).await,
        "update at the current revision",
    );
    assert!(
        r2 > r1,
        "update revision {r2} must be newer than the create's {r1}"
    );
    let kv = ok(store.get(&key).await, "get").expect("updated key exists");
    assert_eq!(
        (kv.value.clone(), kv.create_revision, kv.mod_revision),
        (val("two"), r1, r2)
    );
    match store.update(&key, r1, val("three")).await {
        Err(Error::Conflict {
            key: k,
            expected,
            current,
        }) => {
            assert_eq!((k.as_str(), expected), (key.as_str(), r1));
            let current =
                current.expect("Conflict on an existing key must carry its current value");
            assert_eq!((current.value, current.mod_revision), (val("two"), r2));
        }
        other => panic!(
            "update with stale revision {r1} (current {r2}) must fail with Conflict, got {other:?}"
        ),
    }
    let missing = format!("{p}missing");
    match store.update(&missing, r2, val("x")).await {
        Err(Error::NotFound { key: k }) => assert_eq!(k, missing),
        other => panic!("update of a missing key must fail with NotFound, got {other:?}"),
    }
    assert_eq!(
        ok(store.get(&missing).await, "get"),
        None,
        "a failed update must not create the key"
    );
}

/// Delete is compare-and-swap on mod revision, or unconditional with 0; a deleted key can be
/// created again as a new incarnation.
pub async fn delete_is_compare_and_swap_or_unconditional<S: Store + Clone>(store: &S) {
    let p = unique_prefix("delete_cas");
    let key = format!("{p}a");
    let r1 = ok(store.create(&key, val("one")).await, "create");
    let r2 = ok(store.update(&key, r1, val("two")).await, "update");
    match store.delete(&key, r1).await {
        Err(Error::Conflict {
            current: Some(current),
            ..
        }) => assert_eq!(current.mod_revision, r2),
        other => panic!(
            "delete with stale revision must fail with Conflict carrying the current value, got {other:?}"
        ),
    }
    let (r3, prev) = ok(
        store.delete(&key, r2).await,
        "delete at the current revision",
    );
    assert!(r3 > r2, "delete revision {r3} must be newer than {r2}");
    assert_eq!(
        (prev.value, prev.create_revision, prev.mod_revision),
        (val("two"), r1, r2),
        "delete returns the deleted value"
    );
    assert_eq!(
        ok(store.get(&key).await, "get after delete"),
        None,
        "a deleted key must read as None"
    );
    match store.delete(&key, 0).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("deleting a deleted key must fail with NotFound, got {other:?}"),
    }
    let other = format!("{p}b");
    let rb = ok(store.create(&other, val("b")).await, "create b");
    let (rd, prev) = ok(store.delete(&other, 0).await, "unconditional delete");
    assert!(rd > rb);
    assert_eq!(prev.mod_revision, rb);
    let r4 = ok(
        store.create(&key, val("again")).await,
        "create after delete",
    );
    let kv = ok(store.get(&key).await, "get").expect("recreated key exists");
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (r4, r4),
        "a recreated key is a new incarnation"
    );
}

/// Every write gets a revision newer than every earlier one, whatever the key.
pub async fn revisions_strictly_increase_across_keys<S: Store + Clone>(store: &S) {
    let p = unique_prefix("revisions");
    let mut last: Revision = ok(store.current_revision().await, "current_revision");
    let mut mods: [Revision; 3] = [0; 3];
    for i in 0..30 {
        let k = i % 3;
        let key = format!("{p}{k}");
        let rev = if mods[k] == 0 {
            ok(store.create(&key, val("v")).await, "create")
        } else if i % 7 == 0 {
            ok(store.delete(&key, mods[k]).await, "delete").0
        } else {
            ok(store.update(&key, mods[k], val("v")).await, "update")
        };
        assert!(
            rev > last,
            "write {i} got revision {rev}, not newer than the previous {last}"
        );
        mods[k] = if i % 7 == 0 && mods[k] != 0 { 0 } else { rev };
        last = rev;
    }
}

/// A prefix range returns keys in key order; `limit` pages it with `more`, `count` is the
/// total, and continuing from the last key plus `"\0"` at the first page's revision yields
/// every key exactly once. An empty `end` reads the single key `start`.
pub async fn range_pages_in_key_order_with_limit_and_continuation<S: Store + Clone>(store: &S) {
    let p = unique_prefix("range_pages");
    let order = [7, 2, 9, 0, 5, 1, 8, 3, 6, 4];
    for i in order {
        ok(
            store
                .create(&format!("{p}k{i:02}"), val(&i.to_string()))
                .await,
            "create",
        );
    }
    // Keys just outside the prefix must not show up.
    let outside = format!("{}x", p.trim_end_matches('/'));
    ok(
        store.create(&outside, val("outside")).await,
        "create outside the prefix",
    );
    let expected: Vec<String> = (0..10).map(|i| format!("{p}k{i:02}")).collect();

    let all = ok(
        store.range(RangeRequest::prefix(&p)).await,
        "range without limit",
    );
    assert_eq!(
        keys(&all.kvs),
        expected,
        "range must return the prefix's keys in key order"
    );
    assert_eq!((all.count, all.more), (10, false));
    assert_eq!(ok(store.count(&p).await, "count"), 10);

    let mut req = RangeRequest {
        limit: 3,
        ..RangeRequest::prefix(&p)
    };
    let mut seen = Vec::new();
    for page in 0.. {
        assert!(page < 10, "paging with limit 3 over 10 keys did not finish");
        let resp = ok(store.range(req.clone()).await, "range page");
        assert!(resp.kvs.len() <= 3, "a page holds at most limit keys");
        if page == 0 {
            assert_eq!(
                (resp.count, resp.more),
                (10, true),
                "first page: count is the total, more is set"
            );
            req.revision = resp.revision;
        }
        seen.extend(keys(&resp.kvs));
        if !resp.more {
            break;
        }
        req.start = format!(
            "{}\0",
            resp.kvs.last().expect("a page with more has keys").key
        );
    }
    assert_eq!(
        seen, expected,
        "continuation must yield every key once, in order"
    );

    let single = RangeRequest {
        start: expected[4].clone(),
        ..RangeRequest::default()
    };
    let one = ok(store.range(single).await, "single-key range");
    assert_eq!(
        keys(&one.kvs),
        vec![expected[4].clone()],
        "an empty end reads the single key start"
    );
}

/// A range at an older revision returns the snapshot of that revision, including keys deleted
/// and values replaced since.
pub async fn range_at_old_revision_returns_that_snapshot<S: Store + Clone>(store: &S) {
    let p = unique_prefix("range_old");
    let (a, b, c) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    let ra = ok(store.create(&a, val("a1")).await, "create a");
    let rb = ok(store.create(&b, val("b1")).await, "create b");
    ok(store.update(&a, ra, val("a2")).await, "update a");
    ok(store.delete(&b, rb).await, "delete b");
    ok(store.create(&c, val("c1")).await, "create c");

    let old = ok(
        store
            .range(RangeRequest {
                revision: rb,
                ..RangeRequest::prefix(&p)
            })
            .await,
        "range at old revision",
    );
    assert_eq!(old.revision, rb);
    let values: Vec<_> = old
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone(), kv.mod_revision))
        .collect();
    assert_eq!(
        values,
        vec![(a.clone(), val("a1"), ra), (b.clone(), val("b1"), rb)],
        "snapshot at {rb}"
    );
    assert_eq!(old.count, 2);

    let now = ok(
        store.range(RangeRequest::prefix(&p)).await,
        "range at latest",
    );
    let values: Vec<_> = now
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![(a, val("a2")), (c, val("c1"))],
        "latest snapshot"
    );
    assert_eq!(ok(store.count(&p).await, "count"), 2);
}

/// A range at a revision newer than the store's fails with `FutureRevision`.
pub async fn range_at_future_revision_fails<S: Store + Clone>(store: &S) {
    let p = unique_prefix("range_future");
    let rev = ok(store.create(&format!("{p}a"), val("a")).await, "create");
    let future = rev + 1_000_000;
    match store
        .range(RangeRequest {
            revision: future,
            ..RangeRequest::prefix(&p)
        })
        .await
    {
        Err(Error::FutureRevision { requested, current }) => {
            assert_eq!(requested, future);
            assert!(current >= rev && current < future);
        }
        other => panic!(
            "range at revision {future} (current about {rev}) must fail with FutureRevision, got {other:?}"
        ),
    }
}

// === helpers ===

/// A prefix no other case or run uses.
fn unique_prefix(case: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/conformance/{case}/{}-{nanos}-{n}/", std::process::id())
}

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn keys(kvs: &[crate::KeyValue]) -> Vec<String> {
    kvs.iter().map(|kv| kv.key.clone()).collect()
}

#[track_caller]
fn ok<T>(result: Result<T, Error>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

/// Awaits `fut`, panicking if it takes longer than [`WAIT`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| {
        panic!(
            "timed out after {WAIT:?} waiting for {what}; the backend probably deadlocked \
             (writer thread, watch fan-out or catch-up task) or lost an event"
        )
    })
}
