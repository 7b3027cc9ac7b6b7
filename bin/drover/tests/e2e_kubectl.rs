//! The API server driven by the real kubectl (1.32 unless a test says otherwise), one server per
//! test. Grouped by what kubectl does: reading, writing, lifecycles, allocation, garbage
//! collection, refusing bad input, and other kubectl versions.
#[macro_use]
mod common;

#[path = "kubectl/errors.rs"]
mod errors;
#[path = "kubectl/gc.rs"]
mod gc;
#[path = "kubectl/get.rs"]
mod get;
#[path = "kubectl/lifecycle.rs"]
mod lifecycle;
#[path = "kubectl/seed.rs"]
mod seed;
#[path = "kubectl/services.rs"]
mod services;
#[path = "kubectl/versions.rs"]
mod versions;
#[path = "kubectl/write.rs"]
mod write;

use serde_json::{Value, json};

/// The sorted lines of `kubectl get -o name` output.
pub(crate) fn names(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// `["configmap/a", …]` sorted, from short names.
pub(crate) fn cms(short: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = short.iter().map(|n| format!("configmap/{n}")).collect();
    v.sort();
    v
}

/// The cells of one table line (kubectl separates columns by at least two spaces; a single
/// space may sit inside a header such as `NOMINATED NODE`).
pub(crate) fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The header of a table printed by `kubectl get`.
pub(crate) fn header(out: &str) -> Vec<String> {
    cells(out.lines().next().unwrap_or(""))
}

/// The table row whose first cell (or second, with `-A`/watch events) is `name`.
pub(crate) fn row(out: &str, col: usize, name: &str) -> Vec<String> {
    out.lines()
        .map(cells)
        .find(|c| c.get(col).map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row for {name:?} in:\n{out}"))
}

/// A ConfigMap as JSON, with optional labels, owner references and finalizers.
pub(crate) fn configmap(name: &str, labels: Value, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": data})
}

/// Parses kubectl's JSON output.
pub(crate) fn parse(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("kubectl printed no JSON ({e}):\n{out}"))
}
