//! Prometheus metrics in the text exposition format, kept by hand (a few counters and
//! histograms do not justify a metrics framework).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;

const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The server's metrics.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    store_latency: Mutex<BTreeMap<&'static str, Histogram>>,
    pub(crate) in_flight: AtomicI64,
    pub(crate) watches: AtomicI64,
    pub(crate) rejected: AtomicI64,
}

impl Metrics {
    /// Records one finished request.
    pub(crate) fn request(&self, verb: &str, resource: &str, code: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .entry((verb.to_owned(), resource.to_owned(), code))
            .or_default() += 1;
        self.latency
            .lock()
            .entry((verb.to_owned(), resource.to_owned()))
            .or_default()
            .observe(seconds);
    }

    /// Records one store call.
    pub(crate) fn store_call(&self, op: &'static str, seconds: f64) {
        self.store_latency
            .lock()
            .entry(op)
            .or_default()
            .observe(seconds);
    }

    /// Renders every metric; `store` adds the datastore's counters.
    pub(crate) fn render(
        &self,
        store: drover_store::StoreStats,
        cache_objects: usize,
        cache_bytes: usize,
    ) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Requests by verb, resource and HTTP code.\n# TYPE apiserver_request_total counter\n");
        for ((verb, res, code), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{res}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Request latency by verb and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, res), h) in self.latency.lock().iter() {
            h.render(
                &mut out,
                "apiserver_request_duration_seconds",
                &format!("verb=\"{verb}\",resource=\"{res}\""),
            );
        }
        out.push_str("# HELP drover_store_request_duration_seconds Datastore call latency by operation.\n# TYPE drover_store_request_duration_seconds histogram\n");
        for (op, h) in self.store_latency.lock().iter() {
            h.render(
                &mut out,
                "drover_store_request_duration_seconds",
                &format!("operation=\"{op}\""),
            );
        }
        let gauges: [(&str, &str, i64); 7] = [
            (
                "apiserver_current_inflight_requests",
                "Requests being served.",
                self.in_flight.load(Ordering::Relaxed),
            ),
            (
                "apiserver_registered_watchers",
                "Open watches.",
                self.watches.load(Ordering::Relaxed),
            ),
            (
                "apiserver_rejected_requests_total",
                "Requests answered 429 because too many were in flight.",
                self.rejected.load(Ordering::Relaxed),
            ),
            (
                "drover_store_commits_total",
                "Write operations committed by the datastore.",
                store.commits as i64,
            ),
            (
                "drover_store_fsyncs_total",
                "Durable syncs (group commit shares one among many commits).",
                store.fsyncs as i64,
            ),
            (
                "drover_watch_cache_objects",
                "Objects held by the watch cache.",
                cache_objects as i64,
            ),
            (
                "drover_watch_cache_bytes",
                "Encoded bytes held by the watch cache.",
                cache_bytes as i64,
            ),
        ];
        for (name, help, v) in gauges {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}
