//! The store conformance suite, unchanged, against a real etcd 3.4 started by each test.

mod etcd_support;

use std::time::Duration;

use drover_store::{AnyStore, EtcdConfig, EtcdStore};
use etcd_support::Etcd;

/// A store on `etcd` under a key prefix of its own (so the prefix mapping is exercised), with
/// quick progress notifications for the progress case.
fn store(etcd: &Etcd, prefix: &str) -> EtcdStore {
    let mut config = EtcdConfig::parse_endpoint(&etcd.url()).expect("endpoint");
    config.prefix = prefix.to_owned();
    config.progress_interval = Duration::from_millis(200);
    EtcdStore::open(config).expect("open the etcd store")
}

macro_rules! conformance_cases {
    ($($case:ident),* $(,)?) => {
        /// Under the key prefix `/drover-test-cluster`.
        mod prefixed {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(etcd) = super::Etcd::start() else { return };
                    let store = super::store(&etcd, "/drover-test-cluster");
                    drover_store::conformance::$case(&store).await;
                }
            )*
        }
        /// With no key prefix (the default), through `AnyStore`.
        mod unprefixed_any {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(etcd) = super::Etcd::start() else { return };
                    let store = super::AnyStore::from(super::store(&etcd, ""));
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
