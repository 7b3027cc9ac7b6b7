//! Watch and compaction cases.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{ok, unique_prefix, val, within};
use crate::{Error, Event, RangeRequest, Revision, Store, WatchBatch, WatchStream};

/// A watch from a past revision first replays every change after it, then streams new ones,
/// with no gap and no duplicate at the switch.
pub async fn watch_from_past_revision_replays_history_then_streams_live<S: Store + Clone>(
    store: &S,
) {
    let p = unique_prefix("watch_replay");
    let a = format!("{p}a");
    let r1 = ok(store.create(&a, val("1")).await, "create a");
    let r2 = ok(store.update(&a, r1, val("2")).await, "update a");
    let r3 = ok(store.create(&format!("{p}b"), val("b")).await, "create b");
    let mut stream = ok(store.watch(&p, r1).await, "watch from a past revision");
    let replayed = next_events(&mut stream, 2, "replayed history").await;
    assert_eq!(
        revisions(&replayed),
        vec![r2, r3],
        "a watch after {r1} replays exactly the later writes"
    );
    let r4 = ok(store.update(&a, r2, val("3")).await, "update a again");
    let live = next_events(&mut stream, 1, "a live event after the replay").await;
    assert_eq!(
        revisions(&live),
        vec![r4],
        "the live event follows the replay without gap or duplicate"
    );
    expect_no_events(&mut stream, "after the live event").await;
}

/// With many concurrent writers on different keys, a watch sees every acknowledged revision
/// exactly once, in ascending order.
pub async fn watch_delivers_each_revision_once_in_order_under_concurrent_writers<
    S: Store + Clone,
>(
    store: &S,
) {
    let p = unique_prefix("watch_concurrent");
    let start = ok(store.current_revision().await, "current_revision");
    let mut stream = ok(store.watch(&p, start).await, "watch");
    let acked = write_concurrently(store, &p, 8, 50).await;
    let events = next_events(&mut stream, acked.len(), "every concurrent write").await;
    let seen = revisions(&events);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "watch revisions must strictly ascend: {seen:?}"
    );
    assert_eq!(
        seen.into_iter().collect::<BTreeSet<_>>(),
        acked,
        "the watch must see exactly the acknowledged writes"
    );
    expect_no_events(&mut stream, "after every write was seen").await;
}

/// A watch on `/a/` does not see `/ab/x`.
pub async fn watch_on_prefix_ignores_sibling_prefixes<S: Store + Clone>(store: &S) {
    let p = unique_prefix("watch_prefix");
    let start = ok(store.current_revision().await, "current_revision");
    let mut stream = ok(store.watch(&format!("{p}a/"), start).await, "watch");
    ok(
        store.create(&format!("{p}ab/x"), val("sibling")).await,
        "create in the sibling prefix",
    );
    ok(
        store.create(&format!("{p}a"), val("parent")).await,
        "create the prefix without its slash",
    );
    let mine = ok(
        store.create(&format!("{p}a/x"), val("mine")).await,
        "create in the watched prefix",
    );
    let events = next_events(&mut stream, 1, "the event in the watched prefix").await;
    assert_eq!(
        revisions(&events),
        vec![mine],
        "a watch on {p}a/ must see only {p}a/x, got {events:?}"
    );
}

/// Update events carry the value they replaced; delete events carry the deleted value; a
/// create has none. Both live and replayed.
pub async fn watch_events_carry_previous_values<S: Store + Clone>(store: &S) {
    let p = unique_prefix("watch_prev");
    let a = format!("{p}a");
    let start = ok(store.current_revision().await, "current_revision");
    let mut live = ok(store.watch(&p, start).await, "watch");
    let r1 = ok(store.create(&a, val("1")).await, "create");
    let r2 = ok(store.update(&a, r1, val("2")).await, "update");
    let (r3, _) = ok(store.delete(&a, r2).await, "delete");
    let live_events = next_events(&mut live, 3, "create, update and delete events").await;
    let mut replay = ok(
        store.watch(&p, start).await,
        "watch replaying the same writes",
    );
    let replayed = next_events(&mut replay, 3, "replayed create, update and delete events").await;
    for (how, events) in [("live", live_events), ("replayed", replayed)] {
        match &events[..] {
            [
                Event::Put {
                    kv: created,
                    prev: None,
                },
                Event::Put {
                    kv: updated,
                    prev: Some(before_update),
                },
                Event::Delete {
                    revision,
                    prev: deleted,
                },
            ] => {
                assert_eq!(
                    (created.mod_revision, created.value.clone()),
                    (r1, val("1")),
                    "{how} create"
                );
                assert_eq!(
                    (updated.mod_revision, updated.create_revision),
                    (r2, r1),
                    "{how} update"
                );
                assert_eq!(
                    (before_update.mod_revision, before_update.value.clone()),
                    (r1, val("1")),
                    "{how} update prev"
                );
                assert_eq!(*revision, r3, "{how} delete revision");
                assert_eq!(
                    (deleted.mod_revision, deleted.create_revision),
                    (r2, r1),
                    "{how} delete prev"
                );
                assert_eq!(deleted.value, val("2"), "{how} delete prev value");
            }
            other => panic!(
                "{how}: expected create (no prev), update (prev), delete (prev); got {other:?}"
            ),
        }
    }
}

/// An idle watch gets progress notifications: empty batches whose revision is at least the
/// watch's start.
pub async fn idle_watch_receives_progress_notifications<S: Store + Clone>(store: &S) {
    let p = unique_prefix("watch_progress");
    ok(store.create(&format!("{p}a"), val("a")).await, "create");
    let start = ok(store.current_revision().await, "current_revision");
    let mut stream = ok(store.watch(&p, start).await, "watch");
    let batch = next_batch(&mut stream, "a progress notification on an idle watch").await;
    assert!(
        batch.events.is_empty(),
        "nothing was written under {p}, yet the watch got {:?}",
        batch.events
    );
    assert!(
        batch.revision >= start,
        "progress revision {} is older than the watch start {start}",
        batch.revision
    );
}

/// After compacting at `r`, reads and watches before `r` fail with `Compacted`; reads at `r` and
/// later, and watches from `r`, keep working with full previous values.
pub async fn compaction_fails_older_reads_and_watches_but_keeps_newer<S: Store + Clone>(store: &S) {
    let p = unique_prefix("compaction");
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let r1 = ok(store.create(&a, val("a1")).await, "create a");
    let r2 = ok(store.update(&a, r1, val("a2")).await, "update a");
    let r3 = ok(store.create(&b, val("b")).await, "create b");
    let (r4, _) = ok(store.delete(&b, r3).await, "delete b");
    ok(store.compact(r4).await, "compact");
    let r5 = ok(
        store.update(&a, r2, val("a3")).await,
        "update a after compaction",
    );
    let compacted = ok(store.compacted_revision().await, "compacted_revision");
    assert!(
        compacted >= r4,
        "compacted revision {compacted} is older than the compaction at {r4}"
    );

    match store
        .range(RangeRequest {
            revision: r3,
            ..RangeRequest::prefix(&p)
        })
        .await
    {
        Err(Error::Compacted { requested, .. }) => assert_eq!(requested, r3),
        other => panic!(
            "range at {r3}, before the compaction at {r4}, must fail with Compacted, got {other:?}"
        ),
    }
    let at = ok(
        store
            .range(RangeRequest {
                revision: r4,
                ..RangeRequest::prefix(&p)
            })
            .await,
        "range at the compaction",
    );
    let values: Vec<_> = at
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![(a.clone(), val("a2"))],
        "snapshot at the compacted revision {r4}"
    );
    let kv = ok(store.get(&a).await, "get").expect("a exists");
    assert_eq!(kv.mod_revision, r5);

    let mut old = ok(
        store.watch(&p, r3).await,
        "watch from before the compaction",
    );
    match within(
        "the Compacted error of a watch from a compacted revision",
        old.recv(),
    )
    .await
    {
        Some(Err(Error::Compacted {
            requested,
            compacted,
        })) => assert!(requested < compacted),
        other => panic!("watch from {r3} (compacted at {r4}) must yield Compacted, got {other:?}"),
    }
    assert!(
        within("the end of a compacted watch", old.recv())
            .await
            .is_none(),
        "a watch ends after Compacted"
    );

    let mut from_compaction = ok(
        store.watch(&p, r4).await,
        "watch from the compacted revision",
    );
    match &next_events(&mut from_compaction, 1, "the write after the compaction").await[..] {
        [
            Event::Put {
                kv,
                prev: Some(prev),
            },
        ] => {
            assert_eq!(
                (kv.mod_revision, prev.mod_revision, prev.value.clone()),
                (r5, r2, val("a2"))
            );
        }
        other => panic!(
            "watch from {r4} must replay the update at {r5} with its previous value, got {other:?}"
        ),
    }
}

/// A watcher that does not read while 10 000 writes happen still gets every event in order —
/// or, if the history it needs was compacted meanwhile, the events it got and then `Compacted`.
/// Never a gap, a duplicate or a silent end.
pub async fn slow_watcher_gets_every_event_in_order_or_compacted<S: Store + Clone>(store: &S) {
    let p = unique_prefix("watch_slow");
    let start = ok(store.current_revision().await, "current_revision");
    let mut stream = ok(store.watch(&p, start).await, "watch");
    let acked = write_concurrently(store, &p, 16, 625).await;
    let mut seen = Vec::with_capacity(acked.len());
    let mut compacted = false;
    let read_all = async {
        while seen.len() < acked.len() {
            match stream.recv().await {
                Some(Ok(batch)) => {
                    check_batch(&batch, &p);
                    seen.extend(revisions(&batch.events));
                }
                Some(Err(Error::Compacted { .. })) => {
                    compacted = true;
                    break;
                }
                Some(Err(e)) => panic!("slow watcher got an unexpected error: {e}"),
                None => panic!(
                    "slow watcher's stream ended after {} of {} events without an error",
                    seen.len(),
                    acked.len()
                ),
            }
        }
    };
    within("a slow watcher to catch up on 10 000 writes", read_all).await;
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "slow watcher's revisions must strictly ascend"
    );
    let seen: BTreeSet<Revision> = seen.into_iter().collect();
    if compacted {
        assert!(
            seen.is_subset(&acked),
            "slow watcher saw revisions nobody wrote"
        );
        let expected_prefix: BTreeSet<Revision> = acked.iter().copied().take(seen.len()).collect();
        assert_eq!(
            seen, expected_prefix,
            "before Compacted, the slow watcher must have seen a gap-free prefix"
        );
    } else {
        assert_eq!(
            seen, acked,
            "the slow watcher must see exactly the acknowledged writes"
        );
    }
}

// === helpers ===

/// `writers` tasks each create one key and update it `writes - 1` times. Returns every
/// acknowledged revision.
async fn write_concurrently<S: Store + Clone>(
    store: &S,
    p: &str,
    writers: usize,
    writes: usize,
) -> BTreeSet<Revision> {
    let mut tasks = JoinSet::new();
    for w in 0..writers {
        let (store, key) = (store.clone(), format!("{p}w{w:02}"));
        tasks.spawn(async move {
            let mut revs = Vec::with_capacity(writes);
            let mut rev = ok(store.create(&key, val("0")).await, "concurrent create");
            revs.push(rev);
            for i in 1..writes {
                rev = ok(
                    store.update(&key, rev, val(&i.to_string())).await,
                    "concurrent update",
                );
                revs.push(rev);
            }
            revs
        });
    }
    let mut acked = BTreeSet::new();
    let joined = within("concurrent writers to finish", tasks.join_all()).await;
    for revs in joined {
        for rev in revs {
            assert!(acked.insert(rev), "revision {rev} was handed out twice");
        }
    }
    acked
}

/// The next batch (events or progress), or a panic naming `what` on error, end or timeout.
async fn next_batch(stream: &mut WatchStream, what: &str) -> WatchBatch {
    match within(what, stream.recv()).await {
        Some(Ok(batch)) => batch,
        Some(Err(e)) => panic!("watch failed while waiting for {what}: {e}"),
        None => panic!("watch ended while waiting for {what}"),
    }
}

/// Exactly `n` events, skipping progress notifications.
async fn next_events(stream: &mut WatchStream, n: usize, what: &str) -> Vec<Event> {
    let mut events = Vec::new();
    while events.len() < n {
        let batch = next_batch(stream, what).await;
        check_batch(&batch, "");
        events.extend(batch.events);
    }
    assert_eq!(
        events.len(),
        n,
        "expected {n} events for {what}, got more: {events:?}"
    );
    events
}

/// Waits a moment and asserts that only progress notifications arrive.
async fn expect_no_events(stream: &mut WatchStream, when: &str) {
    let quiet = async {
        while let Some(item) = stream.recv().await {
            match item {
                Ok(batch) if batch.events.is_empty() => {}
                other => panic!("no more events expected {when}, got {other:?}"),
            }
        }
        panic!("watch ended {when}");
    };
    let _ = tokio::time::timeout(Duration::from_millis(300), quiet).await;
}

/// A batch is ascending, within its revision, and inside the watched prefix.
fn check_batch(batch: &WatchBatch, prefix: &str) {
    let revs = revisions(&batch.events);
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "events in a batch must ascend: {revs:?}"
    );
    if let Some(&last) = revs.last() {
        assert!(
            last <= batch.revision,
            "batch revision {} is older than its last event {last}",
            batch.revision
        );
    }
    for event in &batch.events {
        assert!(
            event.key().starts_with(prefix),
            "event on {} outside the watched prefix {prefix}",
            event.key()
        );
    }
}

fn revisions(events: &[Event]) -> Vec<Revision> {
    events.iter().map(Event::revision).collect()
}
