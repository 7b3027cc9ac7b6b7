//! cache_memory: the watch cache's own heap per object, against the objects' encoded size.
//!
//! A counting global allocator tracks live heap. The run opens a fresh SQLite store, starts the
//! API server's real watch cache on it (`drover_apiserver::cache_probe`), creates N ConfigMaps
//! shaped like `api_bench`'s through the store (the cache follows them as it follows API
//! writes), then starts a second cache on the full store ("after a restart": primed from one
//! range). What a cache costs is what the heap gives back when it is dropped, so nothing the
//! store or the runtime holds is counted; the window's share is what emptying it gives back.
//!
//! Two figures per measurement: `requested` (the sizes the program asked for) and `footprint`
//! (glibc's `malloc_usable_size` + its 8-byte chunk header, i.e. what the allocations occupy
//! in the heap, without free-list slack).
//!
//!     cache_memory --dir /var/tmp/cm --count 100000

// The counting allocator is the one place that needs `unsafe` (GlobalAlloc is an unsafe trait).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use drover_apiserver::cache_probe::Probe;
use drover_store::{AnyStore, SqliteConfig, SqliteStore, Store};
use serde_json::json;

struct Counting;

static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static FOOTPRINT: AtomicIsize = AtomicIsize::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The highest `FOOTPRINT` since the last `reset_peak`.
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn reset_peak() {
    PEAK.store(FOOTPRINT.load(Ordering::Relaxed), Ordering::Relaxed);
}

fn grow(bytes: isize) {
    let now = FOOTPRINT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// Heap bytes an allocation occupies: usable size plus glibc's chunk header.
fn footprint(ptr: *mut u8) -> isize {
    // SAFETY: `ptr` is a live allocation from the system allocator (glibc malloc).
    (unsafe { libc::malloc_usable_size(ptr.cast()) } + 8) as isize
}

// SAFETY: every call is forwarded to `System`; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            REQUESTED.fetch_add(layout.size() as isize, Ordering::Relaxed);
            grow(footprint(p));
            LIVE.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        FOOTPRINT.fetch_sub(footprint(ptr), Ordering::Relaxed);
        LIVE.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            REQUESTED.fetch_add(layout.size() as isize, Ordering::Relaxed);
            grow(footprint(p));
            LIVE.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = footprint(ptr);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            REQUESTED.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            grow(footprint(p) - old);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Clone, Copy, Debug)]
struct Heap {
    requested: isize,
    footprint: isize,
    allocations: isize,
}

fn heap() -> Heap {
    Heap {
        requested: REQUESTED.load(Ordering::Relaxed),
        footprint: FOOTPRINT.load(Ordering::Relaxed),
        allocations: LIVE.load(Ordering::Relaxed),
    }
}

/// Live heap once it stops moving (background tasks settle).
async fn settled() -> Heap {
    let mut last = heap();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = heap();
        if now.requested == last.requested && now.allocations == last.allocations {
            return now;
        }
        last = now;
    }
    last
}

/// `before - after` as a JSON object with per-object figures and ratios to `encoded`.
fn freed(before: Heap, after: Heap, objects: usize, encoded: usize) -> serde_json::Value {
    let req = before.requested - after.requested;
    let fp = before.footprint - after.footprint;
    let n = objects.max(1) as f64;
    json!({
        "requested_bytes": req,
        "footprint_bytes": fp,
        "allocations": before.allocations - after.allocations,
        "requested_per_object": round1(req as f64 / n),
        "footprint_per_object": round1(fp as f64 / n),
        "ratio_requested": round3(req as f64 / encoded.max(1) as f64),
        "ratio_footprint": round3(fp as f64 / encoded.max(1) as f64),
    })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Parser)]
#[command(about = "Heap the API server's watch cache holds per object, vs the encoded size")]
struct Cli {
    /// Directory for the SQLite store (created; must not hold a store already).
    #[arg(long)]
    dir: PathBuf,
    /// ConfigMaps to create.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 32)]
    writers: usize,
    /// Size of each ConfigMap's one data value (api_bench's default is 200).
    #[arg(long, default_value_t = 200)]
    value_size: usize,
}

/// The stored encoding of a ConfigMap as `api_bench create` makes it and the API server
/// stores it (compact JSON without resourceVersion; uid, creationTimestamp and managedFields
/// set by the server; 642 bytes with the default 200-byte value), in an exact-size buffer as
/// `encode_stored` gives it.
fn stored_configmap(ns: &str, name: &str, value_size: usize, i: usize) -> Bytes {
    let data: String = (0..value_size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let time = "2026-11-26T12:17:06Z";
    let uid = format!("7b02fd25-2b8b-488c-b24e-{i:012}");
    let text = format!(
        concat!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"bench"}},"#,
            r#""creationTimestamp":"{time}","namespace":"{ns}","uid":"{uid}","managedFields":[{{"manager":"unknown","#,
            r#""operation":"Update","apiVersion":"v1","time":"{time}","fieldsV1":{{"f:data":{{"f:payload":{{}}}},"#,
            r#""f:metadata":{{"f:labels":{{"f:app":{{}}}}}}}},"fieldsType":"FieldsV1"}}]}},"data":{{"payload":"{data}"}}}}"#
        ),
        name = name,
        time = time,
        ns = ns,
        uid = uid,
        data = data,
    );
    debug_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
    Bytes::from(text.into_bytes().into_boxed_slice())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cli.dir)
        .with_context(|| format!("cannot create {}", cli.dir.display()))?;
    let db = cli.dir.join("cache-memory.db");
    anyhow::ensure!(!db.exists(), "{} exists; use a fresh --dir", db.display());
    let config = SqliteConfig::new(&db);
    let store = Arc::new(AnyStore::Sqlite(
        tokio::task::spawn_blocking(move || SqliteStore::open(config)).await??,
    ));

    // Cache A follows the creates, as the server's cache follows API writes.
    let a = Probe::start(Arc::clone(&store)).await?;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..cli.writers.max(1) {
        let (store, next) = (Arc::clone(&store), Arc::clone(&next));
        let (count, value_size) = (cli.count, cli.value_size);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(());
                }
                let name = format!("cm-{i:07}");
                let value = stored_configmap("bench-list", &name, value_size, i);
                store
                    .create(
                        &format!("/registry/core/configmaps/bench-list/{name}"),
                        value,
                    )
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let load_secs = started.elapsed().as_secs_f64();
    let rev = store.current_revision().await?;
    anyhow::ensure!(a.wait_for(rev).await, "cache A did not catch up");
    let (objects_a, encoded_a) = a.objects();
    let window_a = a.window_len();
    let m_loaded = settled().await;

    // Cache B: primed from a full range of the store, as after a restart.
    reset_peak();
    let b = Probe::start(Arc::clone(&store)).await?;
    let priming_peak = PEAK.load(Ordering::Relaxed) - m_loaded.footprint;
    let (objects_b, encoded_b) = b.objects();
    let m_unlisted = settled().await;
    // A LIST of everything from each cache (the handler's way of taking the bytes).
    anyhow::ensure!(a.list_all() == objects_a && b.list_all() == objects_b);
    let m_listed = settled().await;

    // What each part gives back when dropped.
    let m_both = m_listed;
    a.clear_window();
    let m_a_no_window = settled().await;
    a.stop().await;
    let m_b_only = settled().await;
    b.stop().await;
    let m_none = settled().await;

    let line = json!({
        "bench": "cache-memory",
        "objects": objects_a,
        "encoded_bytes": encoded_a,
        "encoded_per_object": round1(encoded_a as f64 / objects_a.max(1) as f64),
        "load_secs": round3(load_secs),
        "after_creates": freed(m_both, m_b_only, objects_a, encoded_a),
        "after_creates_without_window": freed(m_a_no_window, m_b_only, objects_a, encoded_a),
        "window": {
            "events": window_a,
            "freed": freed(m_both, m_a_no_window, window_a, encoded_a),
        },
        "after_restart": freed(m_b_only, m_none, objects_b, encoded_b),
        "after_restart_priming_delta": freed(m_unlisted, m_loaded, objects_b, encoded_b),
        "priming_peak_footprint_bytes": priming_peak,
        "growth_from_one_list_of_both": freed(m_listed, m_unlisted, objects_a + objects_b, encoded_a + encoded_b),
        "heap_left_after_both_dropped": {"requested": m_none.requested, "allocations": m_none.allocations},
    });
    println!("{line}");
    Ok(())
}
