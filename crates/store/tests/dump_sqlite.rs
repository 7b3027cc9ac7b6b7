//! Export/import and snapshots on the SQLite store: round trips keep every key and value and
//! the old order, revisions move past the old ones with the old ones compacted (so watches from
//! old revisions end with "compacted"), bad files are refused with the target untouched, the
//! lock keeps imports away from open stores, and an export of a store under writes is a
//! consistent prefix of them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_store::dump::{self, DumpError};
use drover_store::{Bytes, Error, KeyValue, RangeRequest, SqliteConfig, SqliteStore, Store};

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(path)).expect("open the sqlite store")
}

async fn all(store: &SqliteStore) -> Vec<KeyValue> {
    store
        .range(RangeRequest::prefix("/"))
        .await
        .expect("range")
        .kvs
}

/// A store with creates, updates and deletes, so the live keys' revisions interleave.
async fn seeded(path: &Path) -> SqliteStore {
    let store = open(path);
    for i in 0..20 {
        store
            .create(&format!("/registry/k{i:02}"), Bytes::from(format!("v{i}")))
            .await
            .expect("create");
    }
    for i in (0..20).step_by(3) {
        let key = format!("/registry/k{i:02}");
        let kv = store.get(&key).await.expect("get").expect("present");
        store
            .update(&key, kv.mod_revision, Bytes::from(format!("v{i}-updated")))
            .await
            .expect("update");
    }
    for i in [1, 7, 13] {
        store
            .delete(&format!("/registry/k{i:02}"), 0)
            .await
            .expect("delete");
    }
    store
        .create(
            "/registry/secrets/default/s",
            Bytes::from_static(b"\x00\xffbinary"),
        )
        .await
        .expect("create a binary value");
    store
}

/// Keys in old `mod_revision` order.
fn by_revision(mut kvs: Vec<KeyValue>) -> Vec<String> {
    kvs.sort_by_key(|kv| kv.mod_revision);
    kvs.into_iter().map(|kv| kv.key).collect()
}

fn values(kvs: &[KeyValue]) -> Vec<(String, Bytes)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

#[tokio::test]
async fn sqlite_round_trip_keeps_values_and_order_and_compacts_every_old_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, file) = (
        dir.path().join("a.db"),
        dir.path().join("b.db"),
        dir.path().join("x.jsonl"),
    );
    let source = seeded(&src).await;
    let before = all(&source).await;
    let source_rev = source.current_revision().await.unwrap();

    let summary = dump::export_sqlite(&src, &file).expect("export");
    assert_eq!(summary.records, before.len() as u64);
    assert_eq!(summary.header.revision, source_rev);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "an export holds Secrets: it must be 0600");

    let imported = dump::import_sqlite(&dst, &file, false).expect("import");
    assert_eq!(imported.records, before.len() as u64);
    assert!(
        imported.first_revision > source_rev,
        "{imported:?} must start after {source_rev}"
    );

    let target = open(&dst);
    let after = all(&target).await;
    assert_eq!(values(&after), values(&before), "same keys and values");
    assert_eq!(
        by_revision(after.clone()),
        by_revision(before.clone()),
        "old order kept"
    );
    assert!(after.iter().all(|kv| kv.mod_revision > source_rev));
    assert_eq!(target.current_revision().await.unwrap(), imported.revision);
    assert_eq!(
        target.compacted_revision().await.unwrap(),
        imported.revision
    );

    // A client holding any old revision must be told to relist.
    for old in [1, source_rev, imported.revision - 1] {
        let mut w = target.watch("/registry/", old).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), w.recv())
            .await
            .expect("watch answers");
        assert!(
            matches!(first, Some(Err(Error::Compacted { .. }))),
            "watch from old revision {old} must end compacted, got {first:?}"
        );
    }
    // From the new revision on, watches and writes work as usual.
    let mut w = target.watch("/registry/", imported.revision).await.unwrap();
    let rev = target
        .create("/registry/new", Bytes::from_static(b"n"))
        .await
        .unwrap();
    assert_eq!(rev, imported.revision + 1);
    let batch = tokio::time::timeout(Duration::from_secs(5), w.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(batch.events.len(), 1);

    // Back again: the second import's revisions pass the first's.
    let file2 = dir.path().join("y.jsonl");
    let again = dump::export_sqlite(&dst, &file2).expect("export again");
    assert_eq!(again.records, before.len() as u64 + 1);
    target.close().await.unwrap();
    let third = dir.path().join("c.db");
    let imported2 = dump::import_sqlite(&third, &file2, false).unwrap();
    assert!(imported2.first_revision > imported.revision + 1);
    source.close().await.unwrap();
}

#[tokio::test]
async fn import_refuses_a_non_empty_target_and_a_store_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let (src, file) = (dir.path().join("a.db"), dir.path().join("x.jsonl"));
    let source = seeded(&src).await;
    dump::export_sqlite(&src, &file).unwrap();

    // In use: the open store holds the lock.
    let err = dump::import_sqlite(&src, &file, true).unwrap_err();
    assert!(matches!(err, DumpError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("running drover server"), "{err}");
    let before = all(&source).await;
    source.close().await.unwrap();

    // Not empty: refused unless replacing (a restore).
    let err = dump::import_sqlite(&src, &file, false).unwrap_err();
    assert!(
        matches!(err, DumpError::NotEmpty { keys, .. } if keys == before.len() as u64),
        "{err}"
    );
    assert!(err.to_string().contains("not empty"), "{err}");
    let store = open(&src);
    assert_eq!(
        values(&all(&store).await),
        values(&before),
        "target untouched"
    );
    let old_rev = store.current_revision().await.unwrap();
    store.close().await.unwrap();

    // Replace (restore) bumps past the replaced database's revisions too.
    let restored = dump::import_sqlite(&src, &file, true).unwrap();
    assert!(restored.first_revision > old_rev);
    let store = open(&src);
    assert_eq!(values(&all(&store).await), values(&before));
}

#[tokio::test]
async fn a_store_cannot_open_while_an_import_holds_the_lock() {
    // The negative control of the lock: an exclusive holder makes open fail, so the lock is
    // really taken (not just a file that exists).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let lock = std::fs::File::create(dir.path().join("a.db.lock")).unwrap();
    lock.lock().unwrap();
    let err = SqliteStore::open(SqliteConfig::new(&db))
        .err()
        .expect("open must fail");
    assert!(
        matches!(err, Error::Unavailable(ref m) if m.contains("snapshot restore")),
        "{err}"
    );
    lock.unlock().unwrap();
    open(&db);
}

/// Writes a valid export and returns its lines.
async fn lines(dir: &Path) -> (PathBuf, Vec<String>) {
    let src = dir.join("a.db");
    let file = dir.join("good.jsonl");
    let store = seeded(&src).await;
    dump::export_sqlite(&src, &file).unwrap();
    store.close().await.unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    (file, text.lines().map(str::to_owned).collect())
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    path
}

#[tokio::test]
async fn bad_files_are_refused_with_a_clear_error_and_nothing_imported() {
    let dir = tempfile::tempdir().unwrap();
    let (good, lines) = lines(dir.path()).await;
    dump::verify(&good).expect("the good file verifies (the control)");
    let n = lines.len();

    let truncated = write(dir.path(), "truncated", &lines[..n - 1]);
    let mut half = std::fs::read(&good).unwrap();
    half.truncate(half.len() / 2);
    let cut = dir.path().join("cut");
    std::fs::write(&cut, half).unwrap();
    let mut edited = lines.clone();
    edited[3] = edited[3].replacen("\"value\":\"", "\"value\":\"AAAA", 1);
    let edited = write(dir.path(), "edited", &edited);
    let mut dropped = lines.clone();
    dropped.remove(2);
    let dropped = write(dir.path(), "dropped", &dropped);
    let mut version = lines.clone();
    version[0] = version[0].replace("\"version\":1", "\"version\":99");
    let version = write(dir.path(), "version", &version);
    let not_a_dump = write(dir.path(), "yaml", &["apiVersion: v1".to_owned()]);
    let empty = write(dir.path(), "empty", &[]);

    let cases: [(&Path, &str); 7] = [
        (&truncated, "truncated"),
        (&cut, "truncated"),
        (&edited, "checksum mismatch"),
        (&dropped, "checksum mismatch"),
        (&version, "version 99 is not supported"),
        (&not_a_dump, "not a Drover datastore export"),
        (&empty, "empty"),
    ];
    for (file, expect) in cases {
        let target = dir.path().join("target.db");
        let err = dump::import_sqlite(&target, file, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(expect),
            "{}: expected {expect:?} in {err:?}",
            file.display()
        );
        assert!(
            err.contains(&file.display().to_string()),
            "the error names the file: {err}"
        );
        assert!(
            !target.exists(),
            "{}: nothing may be written",
            file.display()
        );
        let err = dump::verify(file).unwrap_err().to_string();
        assert!(err.contains(expect), "verify: {err}");
    }
}

#[tokio::test]
async fn an_export_under_concurrent_writes_is_a_prefix_of_the_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let store = open(&db);
    // The writer runs until every snapshot is taken, so each one is taken mid-stream.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (store, stop, count) = (store.clone(), stop.clone(), count.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let rev = store
                    .create(&format!("/registry/w{i:05}"), Bytes::from(i.to_string()))
                    .await
                    .expect("write");
                acked.push((i, rev));
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                i += 1;
            }
            acked
        })
    };
    let mut snapshots = Vec::new();
    for n in 0..5 {
        let seen = count.load(std::sync::atomic::Ordering::SeqCst);
        while count.load(std::sync::atomic::Ordering::SeqCst) < seen + 5 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let file = dir.path().join(format!("snap{n}"));
        let db = db.clone();
        let f = file.clone();
        tokio::task::spawn_blocking(move || dump::export_sqlite(&db, &f))
            .await
            .unwrap()
            .expect("online export");
        snapshots.push(file);
    }
    let during = count.load(std::sync::atomic::Ordering::SeqCst);
    while count.load(std::sync::atomic::Ordering::SeqCst) < during + 5 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked = writer.await.unwrap();
    for file in snapshots {
        let mut reader = dump::open(&file).unwrap();
        let at = reader.header().revision;
        let mut keys = Vec::new();
        while let Some(kv) = reader.next_record().unwrap() {
            keys.push(kv.key);
        }
        let expected: Vec<String> = acked
            .iter()
            .filter(|(_, rev)| *rev <= at)
            .map(|(i, _)| format!("/registry/w{i:05}"))
            .collect();
        assert_eq!(
            keys,
            expected,
            "{}: the writes up to revision {at}, in order",
            file.display()
        );
        assert!(
            is_prefix(&keys, &acked),
            "{}: a snapshot must be a prefix of the acknowledged writes",
            file.display()
        );
        // Taken mid-stream: some writes before it, some after (so the check had work to do).
        assert!(
            !keys.is_empty() && keys.len() < acked.len(),
            "{}: {} of {} writes",
            file.display(),
            keys.len(),
            acked.len()
        );
    }
    // Negative control: a "snapshot" with a gap is caught by the same check.
    let gap = vec!["/registry/w00000".to_owned(), "/registry/w00002".to_owned()];
    assert!(!is_prefix(&gap, &acked));
}

fn is_prefix(keys: &[String], acked: &[(u32, i64)]) -> bool {
    keys.len() <= acked.len()
        && keys
            .iter()
            .zip(acked)
            .all(|(k, (i, _))| *k == format!("/registry/w{i:05}"))
}
