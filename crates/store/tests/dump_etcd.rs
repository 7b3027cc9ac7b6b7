//! Migration both ways against a real etcd 3.4: SQLite → etcd → SQLite keeps every key and
//! value and the old order, each import's revisions pass every old one with the old ones
//! compacted (watches from old revisions end "compacted"), and a non-empty etcd is refused.

mod etcd_support;

use std::path::Path;
use std::time::Duration;

use drover_store::dump::{self, DumpError};
use drover_store::{
    Bytes, Error, EtcdConfig, EtcdStore, KeyValue, RangeRequest, SqliteConfig, SqliteStore, Store,
};
use etcd_support::Etcd;

fn etcd_store(etcd: &Etcd, prefix: &str) -> EtcdStore {
    let mut config = EtcdConfig::parse_endpoint(&etcd.url()).expect("endpoint");
    config.prefix = prefix.to_owned();
    config.request_timeout = Duration::from_secs(5);
    EtcdStore::open(config).expect("open etcd store")
}

async fn all<S: Store>(store: &S) -> Vec<KeyValue> {
    store
        .range(RangeRequest::prefix("/registry/"))
        .await
        .expect("range")
        .kvs
}

fn values(kvs: &[KeyValue]) -> Vec<(String, Bytes)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

fn order(kvs: &[KeyValue]) -> Vec<String> {
    let mut kvs = kvs.to_vec();
    kvs.sort_by_key(|kv| kv.mod_revision);
    kvs.into_iter().map(|kv| kv.key).collect()
}

async fn assert_compacted<S: Store>(store: &S, old: i64) {
    let mut w = store.watch("/registry/", old).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), w.recv())
        .await
        .expect("the watch answers");
    assert!(
        matches!(first, Some(Err(Error::Compacted { .. }))),
        "a watch from old revision {old} must end compacted, got {first:?}"
    );
}

async fn seeded_sqlite(path: &Path) -> SqliteStore {
    let store = SqliteStore::open(SqliteConfig::new(path)).unwrap();
    // Enough writes that the SQLite revision is far ahead of a fresh etcd's.
    for round in 0..5 {
        for i in 0..40 {
            let key = format!("/registry/configmaps/default/c{i:02}");
            match store.get(&key).await.unwrap() {
                None => store.create(&key, Bytes::from(format!("{round}"))).await,
                Some(kv) => {
                    store
                        .update(&key, kv.mod_revision, Bytes::from(format!("{round}")))
                        .await
                }
            }
            .unwrap();
        }
    }
    store
        .delete("/registry/configmaps/default/c05", 0)
        .await
        .unwrap();
    store
        .create(
            "/registry/secrets/default/s",
            Bytes::from_static(b"\x00\xfe secret"),
        )
        .await
        .unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_etcd_and_back_keeps_objects_order_and_expires_old_revisions() {
    let Some(etcd) = Etcd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.db");
    let sqlite = seeded_sqlite(&src).await;
    let before = all(&sqlite).await;
    let sqlite_rev = sqlite.current_revision().await.unwrap();
    let file = dir.path().join("a.jsonl");
    dump::export_sqlite(&src, &file).unwrap();

    let target = etcd_store(&etcd, "");
    let imported = dump::import_etcd(&target, &file)
        .await
        .expect("import into etcd");
    assert!(
        imported.first_revision > sqlite_rev,
        "{imported:?} vs {sqlite_rev}"
    );
    let on_etcd = all(&target).await;
    assert_eq!(values(&on_etcd), values(&before));
    assert_eq!(order(&on_etcd), order(&before));
    assert!(on_etcd.iter().all(|kv| kv.mod_revision > sqlite_rev));
    assert!(target.compacted_revision().await.unwrap() >= imported.revision);
    assert_compacted(&target, sqlite_rev).await;
    assert_compacted(&target, imported.first_revision).await;
    // No bookkeeping left behind but the store's own.
    assert_eq!(target.count("/drover/migrate/").await.unwrap(), 0);

    // A second import into the same etcd is refused; etcd keeps what it had.
    let err = dump::import_etcd(&target, &file).await.unwrap_err();
    assert!(matches!(err, DumpError::NotEmpty { .. }), "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(values(&all(&target).await), values(&before));

    // Writes on etcd, then back to SQLite.
    let rev = target
        .create(
            "/registry/configmaps/default/after",
            Bytes::from_static(b"x"),
        )
        .await
        .unwrap();
    let back_file = dir.path().join("b.jsonl");
    let summary = dump::write_file(&back_file, |w| {
        futures_block(dump::export_store(&target, "etcd", w, &back_file))
    })
    .unwrap();
    assert_eq!(summary.header.source, "etcd");
    assert_eq!(summary.records, before.len() as u64 + 1);
    let back = dir.path().join("b.db");
    let again = dump::import_sqlite(&back, &back_file, false).unwrap();
    assert!(again.first_revision > rev);
    let restored = SqliteStore::open(SqliteConfig::new(&back)).unwrap();
    let on_sqlite = all(&restored).await;
    let mut expected = values(&before);
    expected.push((
        "/registry/configmaps/default/after".into(),
        Bytes::from_static(b"x"),
    ));
    expected.sort();
    assert_eq!(values(&on_sqlite), expected);
    let mut expected_order = order(&before);
    expected_order.push("/registry/configmaps/default/after".into());
    assert_eq!(order(&on_sqlite), expected_order);
    assert_compacted(&restored, rev).await;
}

/// Runs the export future on this runtime from inside the blocking `write_file` closure.
fn futures_block<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(fut))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_import_verifies_the_whole_file_before_writing() {
    let Some(etcd) = Etcd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.db");
    let sqlite = seeded_sqlite(&src).await;
    drop(sqlite);
    let file = dir.path().join("a.jsonl");
    dump::export_sqlite(&src, &file).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    // Damage the last record: everything before it is valid, so only a full check catches it.
    let at = bytes.len() - 200;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, bytes).unwrap();
    let target = etcd_store(&etcd, "/cluster-a");
    let rev_before = target.current_revision().await.unwrap();
    let err = dump::import_etcd(&target, &bad).await.unwrap_err();
    assert!(
        matches!(err, DumpError::Checksum { .. } | DumpError::Corrupt { .. }),
        "{err}"
    );
    assert_eq!(target.count("").await.unwrap(), 0, "nothing was written");
    assert_eq!(target.current_revision().await.unwrap(), rev_before);
}
