//! Runs the committed fuzz seed corpora (`testdata/corpus/<target>/`) through the same entry
//! points as the cargo-fuzz targets, on stable. A panic is a bug; crashing inputs found by
//! fuzzing are added to these directories.

use std::path::PathBuf;

fn run(target: &str, entry: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "corpus {target} has only {} seeds",
        files.len()
    );
    for f in files {
        let data = std::fs::read(&f).expect("read");
        let ok = std::panic::catch_unwind(|| entry(&data)).is_ok();
        assert!(ok, "{target} panicked on {}", f.display());
    }
}

#[test]
fn request_routing_corpus_never_panics() {
    run("request", drover_apiserver::fuzzing::request);
}

#[test]
fn body_decoding_corpus_never_panics() {
    run("body", drover_apiserver::fuzzing::body);
}

#[test]
fn query_parameter_corpus_never_panics() {
    run("query", drover_apiserver::fuzzing::query);
}

#[test]
fn object_write_pipeline_corpus_never_panics() {
    run("object", drover_apiserver::fuzzing::object);
}

#[test]
fn patch_and_apply_corpus_never_panics() {
    run("patch", drover_apiserver::fuzzing::patch);
}

#[test]
fn crd_and_custom_resource_corpus_never_panics() {
    run("crd", drover_apiserver::fuzzing::crd);
}

#[test]
fn bearer_token_corpus_never_panics() {
    run("token", drover_apiserver::fuzzing::token);
}
