//! Runs the conformance suite against every backend.

use std::time::Duration;

use drover_store::{AnyStore, MemConfig, MemStore, SqliteConfig, SqliteStore, conformance};
use tempfile::TempDir;

/// Short progress interval so the progress case is quick; a tiny watch queue so slow watchers
/// overflow and exercise the catch-up path.
fn mem_store() -> MemStore {
    let mut config = MemConfig::default();
    config.progress_interval = Duration::from_millis(100);
    config.watch_queue = 16;
    MemStore::with_config(config)
}

fn sqlite_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let mut config = SqliteConfig::new(dir.path().join("store.db"));
    config.progress_interval = Duration::from_millis(100);
    config.watch_queue = 16;
    let store = SqliteStore::open(config).expect("open a sqlite store in a temp dir");
    (dir, store)
}

macro_rules! conformance_cases {
    ($($case:ident),* $(,)?) => {
        mod mem {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    drover_store::conformance::$case(&super::mem_store()).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (_dir, store) = super::sqlite_store();
                    drover_store::conformance::$case(&store).await;
                }
            )*
        }
        /// Through the enum, so delegation is covered too.
        mod any_mem {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store = drover_store::AnyStore::from(super::mem_store());
                    drover_store::conformance::$case(&store).await;
                }
            )*
        }
    };
}

conformance_cases!(
    create_then_get_returns_the_value,
    create_of_existing_key_fails_with_already_exists,
    update_is_compare_and_swap_on_mod_revision,
    delete_is_compare_and_swap_or_unconditional,
    revisions_strictly_increase_across_keys,
    range_pages_in_key_order_with_limit_and_continuation,
    range_at_old_revision_returns_that_snapshot,
    range_at_future_revision_fails,
    watch_from_past_revision_replays_history_then_streams_live,
    watch_delivers_each_revision_once_in_order_under_concurrent_writers,
    watch_on_prefix_ignores_sibling_prefixes,
    watch_events_carry_previous_values,
    idle_watch_receives_progress_notifications,
    compaction_fails_older_reads_and_watches_but_keeps_newer,
    slow_watcher_gets_every_event_in_order_or_compacted,
);

/// The slow-watcher case must actually overflow the queue, or it proves nothing about catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_case_overflows_the_mem_watch_queue() {
    let store = mem_store();
    conformance::slow_watcher_gets_every_event_in_order_or_compacted(&store).await;
    assert!(
        store.watch_overflows() > 0,
        "the slow watcher never overflowed its queue of 16"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_case_overflows_the_sqlite_watch_queue() {
    let (_dir, store) = sqlite_store();
    conformance::slow_watcher_gets_every_event_in_order_or_compacted(&store).await;
    assert!(
        store.watch_overflows() > 0,
        "the slow watcher never overflowed its queue of 16"
    );
}

/// `AnyStore` wraps the SQLite backend too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_store_delegates_to_sqlite() {
    let (_dir, store) = sqlite_store();
    let store = AnyStore::from(store);
    conformance::watch_from_past_revision_replays_history_then_streams_live(&store).await;
    conformance::range_at_old_revision_returns_that_snapshot(&store).await;
}
