//! Runs every committed seed input in `testdata/corpus/<target>/` through the same entry
//! points the cargo-fuzz targets use (`fuzz/src/lib.rs`), on stable. A panic is a bug;
//! crash inputs found by fuzzing belong in these directories.

#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use std::fs;
use std::path::PathBuf;

fn run_corpus(target: &str, entry: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {} is missing: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "corpus {target} has only {} seeds",
        files.len()
    );
    for file in files {
        let data = fs::read(&file).expect("readable corpus file");
        let result = std::panic::catch_unwind(|| entry(&data));
        assert!(
            result.is_ok(),
            "{target} panicked on {} ({:?})",
            file.display(),
            String::from_utf8_lossy(&data)
        );
    }
}

#[test]
fn label_selector_corpus_never_panics_and_round_trips() {
    run_corpus("label_selector", fuzz::label_selector);
}

#[test]
fn field_selector_corpus_never_panics_and_round_trips() {
    run_corpus("field_selector", fuzz::field_selector);
}

#[test]
fn merge_patch_corpus_never_panics_and_is_idempotent() {
    run_corpus("merge_patch", fuzz::merge_patch);
}

#[test]
fn json_patch_corpus_never_panics_and_failures_are_atomic() {
    run_corpus("json_patch", fuzz::json_patch);
}

#[test]
fn strategic_merge_corpus_never_panics_and_matches_merge_patch_without_schema() {
    run_corpus("strategic_merge", fuzz::strategic_merge);
}

#[test]
fn table_corpus_never_panics_and_rows_fit_the_columns() {
    run_corpus("table", fuzz::table);
}
