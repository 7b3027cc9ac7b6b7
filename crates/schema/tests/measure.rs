//! Cost of the documents: run with `cargo test --release -p drover-schema --test measure -- --ignored --nocapture`.

use std::time::Instant;

#[test]
#[ignore = "measurement, prints timings"]
fn measure_definitions_and_documents() {
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS"))
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    println!("start: {}", rss());
    let t = Instant::now();
    let defs = drover_schema::definitions();
    println!(
        "definitions: {} in {:?}; {}",
        defs.schemas().len(),
        t.elapsed(),
        rss()
    );
    let t = Instant::now();
    let one =
        drover_schema::builtin_doc(&drover_core::registry::GroupVersion::parse("apps/v1")).unwrap();
    println!(
        "apps/v1 doc: {} bytes in {:?}; {}",
        one.body.len(),
        t.elapsed(),
        rss()
    );
    let t = Instant::now();
    let docs = drover_schema::builtin_docs();
    let total: usize = docs.iter().map(|d| d.body.len()).sum();
    let largest = docs.iter().max_by_key(|d| d.body.len()).unwrap();
    println!(
        "all {} docs: {total} bytes in {:?}; largest {} = {} bytes; {}",
        docs.len(),
        t.elapsed(),
        largest.path,
        largest.body.len(),
        rss()
    );
}

#[test]
#[ignore = "measurement, prints timings"]
fn measure_openapi_v2() {
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS"))
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    let t = Instant::now();
    drover_schema::definitions();
    println!("definitions in {:?}; {}", t.elapsed(), rss());
    for format in [
        drover_schema::V2Format::Protobuf,
        drover_schema::V2Format::Json,
    ] {
        let t = Instant::now();
        let doc = drover_schema::v2_doc(format, &[]);
        println!(
            "/openapi/v2 {format:?}: {} bytes in {:?}; {}",
            doc.body.len(),
            t.elapsed(),
            rss()
        );
    }
}

#[test]
#[ignore = "writes /tmp/apps_v1.json for inspection"]
fn dump_apps_v1() {
    let d =
        drover_schema::builtin_doc(&drover_core::registry::GroupVersion::parse("apps/v1")).unwrap();
    std::fs::write("/tmp/apps_v1.json", &*d.body).unwrap();
}
