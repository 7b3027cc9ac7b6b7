//! Fuzz entry points for `drover-core`'s selector parsers and patch engines.
//!
//! The cargo-fuzz targets in `fuzz_targets/` call these, and so does the stable test
//! `tests/corpus.rs` (which includes this file) over the committed seed corpora. Each
//! entry point must never panic on any input; the assertions inside are the invariants a
//! fuzzer should try to break.
// Included as a private module by tests/corpus.rs, where `pub` items are unreachable.
#![allow(unreachable_pub)]

#[path = "schema.rs"]
pub mod schema;

use drover_core::patch::{self, NoSchema};
use drover_core::registry;
use drover_core::selector::{FieldSelector, Selector};
use drover_core::table::{self, CustomPrinter, IncludeObject};
use drover_core::time;
use serde_json::{Map, Value, json};

/// Label selector string: a parse that succeeds prints a canonical string that parses to
/// an equal selector and prints the same.
pub fn label_selector(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(selector) = Selector::parse(text) {
        let printed = selector.to_string();
        let reparsed = Selector::parse(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not re-parse: {e}"));
        assert_eq!(reparsed, selector, "{text:?} printed as {printed:?}");
        assert_eq!(reparsed.to_string(), printed);
        for labels in sample_labels(&selector) {
            let _ = selector.matches(&labels);
        }
    }
    if let Ok(structured) = serde_json::from_slice::<Value>(data)
        && let Ok(selector) = Selector::from_label_selector(&structured)
    {
        let printed = selector.to_string();
        if !selector.is_empty() && !printed.is_empty() {
            let reparsed = Selector::parse(&printed)
                .unwrap_or_else(|e| panic!("{printed:?} does not re-parse: {e}"));
            for labels in sample_labels(&selector) {
                assert_eq!(
                    reparsed.matches(&labels),
                    selector.matches(&labels),
                    "{printed:?}"
                );
            }
        }
    }
}

/// Label sets built from a selector's own keys and values, so matching hits every branch.
fn sample_labels(selector: &Selector) -> Vec<Map<String, Value>> {
    let mut sets = vec![Map::new()];
    let mut all = Map::new();
    for r in selector.requirements() {
        for v in r.values() {
            let mut one = Map::new();
            one.insert(r.key().to_string(), json!(v));
            sets.push(one);
            all.insert(r.key().to_string(), json!(v));
        }
        all.entry(r.key().to_string()).or_insert_with(|| json!("7"));
    }
    sets.push(all);
    sets
}

/// Field selector string: a parse that succeeds prints a string that parses to the same
/// terms, and both select alike.
pub fn field_selector(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(selector) = FieldSelector::parse(text) else {
        return;
    };
    let printed = selector.to_string();
    let reparsed = FieldSelector::parse(&printed)
        .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not re-parse: {e}"));
    let sorted = |s: &FieldSelector| {
        let mut terms: Vec<String> = s.requirements().iter().map(|r| format!("{r:?}")).collect();
        terms.sort();
        terms
    };
    assert_eq!(
        sorted(&reparsed),
        sorted(&selector),
        "{text:?} printed as {printed:?}"
    );
    for r in selector.requirements() {
        let lookup = |field: &str| (field == r.field).then_some(r.value.as_str());
        assert_eq!(selector.matches(lookup), reparsed.matches(lookup));
    }
    let _ = selector.exact_name();
    let _ = selector.check_supported(|f| f.starts_with("metadata."));
}

/// `[target, patch]`: a JSON merge patch is idempotent.
pub fn merge_patch(data: &[u8]) {
    let Some((mut target, patch)) = pair(data) else {
        return;
    };
    patch::merge_patch(&mut target, &patch);
    let once = target.clone();
    patch::merge_patch(&mut target, &patch);
    assert_eq!(target, once, "merge patch {patch} is not idempotent");
}

/// `[target, operations]`: a failing JSON patch leaves the target untouched.
pub fn json_patch(data: &[u8]) {
    let Some((mut target, ops)) = pair(data) else {
        return;
    };
    let before = target.clone();
    if let Err(e) = patch::json_patch(&mut target, &ops) {
        assert_eq!(target, before, "failed JSON patch ({e}) changed the target");
        assert!(!e.to_string().is_empty());
    }
}

/// `[original, patch]`: strategic merge with a workload schema never panics, returns an
/// object; without a schema and without directives it equals a JSON merge patch.
pub fn strategic_merge(data: &[u8]) {
    let Some((original, patch)) = pair(data) else {
        return;
    };
    let schema = schema::workload();
    if let Ok(merged) = patch::strategic_merge(&original, &patch, Some(&schema)) {
        assert!(merged.is_object(), "strategic merge returned {merged}");
    }
    let plain = patch::strategic_merge(&original, &patch, None::<&NoSchema>);
    if patch.is_object() && (original.is_object() || original.is_null()) && !has_dollar_key(&patch)
    {
        let mut expected = original.clone();
        patch::merge_patch(&mut expected, &patch);
        assert_eq!(
            plain.ok(),
            Some(expected),
            "schemaless strategic merge differs from merge patch"
        );
    }
}

fn has_dollar_key(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.starts_with('$') || has_dollar_key(v)),
        Value::Array(items) => items.iter().any(has_dollar_key),
        _ => false,
    }
}

fn pair(data: &[u8]) -> Option<(Value, Value)> {
    match serde_json::from_slice::<Value>(data).ok()? {
        Value::Array(mut items) if items.len() == 2 => {
            let second = items.pop()?;
            let first = items.pop()?;
            Some((first, second))
        }
        _ => None,
    }
}

/// Server-side printing: the first byte picks a built-in resource, the rest is JSON: one
/// object or a list of them, printed with the kind's columns; a list whose first element is
/// a list is `[additionalPrinterColumns, object…]` for a custom resource (JSONPath columns).
/// Every row has one cell per column. Strings in the objects also go through the time
/// parsers the printers use.
pub fn table(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let all = registry::builtin();
    let res = &all[usize::from(pick) % all.len()];
    let now = 1_700_000_000;
    let list_meta = json!({"resourceVersion": "7", "continue": "c"});
    let mut objects = match &value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let custom = match objects.first() {
        Some(Value::Array(columns)) => Some(columns.clone()),
        _ => None,
    };
    if let Some(columns) = custom {
        objects.remove(0);
        if let Ok(printer) = CustomPrinter::new(&columns) {
            let t = printer.table(&objects, now, IncludeObject::Object, &list_meta);
            check_shape(&t, objects.len(), 0);
        }
    }
    // Upstream's IPAddress printer sends an AGE cell it has no column for (kubectl ignores
    // it); Drover does the same (see tests/table_columns.rs).
    let extra = usize::from(res.kind == "IPAddress");
    for include in [IncludeObject::None, IncludeObject::Metadata] {
        let t = table::table(&res.gv.group, &res.kind, &objects, now, include, &list_meta);
        check_shape(&t, objects.len(), extra);
    }
    for obj in &objects {
        for_each_string(obj, &mut |s| {
            if let Some((secs, nanos)) = time::parse_rfc3339(s) {
                let _ = time::format_rfc3339(secs, Some(nanos / 1000));
                let _ = time::format_rfc3339_nanos(secs, nanos);
            }
            if let Some(d) = time::parse_duration(s) {
                let _ = time::format_duration(d);
            }
        });
    }
}

fn check_shape(t: &Value, n: usize, extra_cells: usize) {
    let columns = t["columnDefinitions"].as_array().map_or(0, Vec::len);
    let rows = t["rows"].as_array().expect("a Table has rows");
    assert_eq!(rows.len(), n, "one row per object");
    for row in rows {
        let cells = row["cells"].as_array().map_or(0, Vec::len);
        assert_eq!(
            cells,
            columns + extra_cells,
            "a row has one cell per column: {row}"
        );
    }
}

fn for_each_string(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| for_each_string(i, f)),
        Value::Object(m) => m.values().for_each(|i| for_each_string(i, f)),
        _ => {}
    }
}
