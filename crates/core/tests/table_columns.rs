//! The column definitions of every built-in kind equal upstream's printer columns, as recorded
//! in `testdata/printer-columns.txt` (the headers `kubectl get -o wide` shows).

use std::collections::BTreeMap;

use drover_core::registry::builtin;
use drover_core::table::{Column, columns, row_cells};
use serde_json::json;

/// (group, kind) → the header line as written in the checked-in table.
fn checked_in_headers() -> BTreeMap<(String, String), String> {
    let text = include_str!("../testdata/printer-columns.txt");
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (key, headers) = line.split_once(": ").expect("`<group> <Kind>: headers`");
        let (group, kind) = key.split_once(' ').expect("`<group> <Kind>`");
        let group = if group == "core" { "" } else { group };
        let previous = out.insert((group.to_owned(), kind.to_owned()), headers.to_owned());
        assert!(
            previous.is_none(),
            "{key} listed twice in printer-columns.txt"
        );
    }
    out
}

/// How kubectl titles the columns: upper-cased, `*` marking wide-only ones.
fn headers_of(cols: &[Column]) -> String {
    cols.iter()
        .map(|c| {
            let wide = if c.priority > 0 { "*" } else { "" };
            format!("{}{wide}", c.name.to_uppercase())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn every_builtin_kind_prints_upstreams_wide_headers() {
    let expected = checked_in_headers();
    let mut mismatches = Vec::new();
    for r in builtin() {
        let key = (r.gv.group.to_string(), r.kind.to_string());
        let Some(want) = expected.get(&key) else {
            mismatches.push(format!(
                "{} {}: missing from printer-columns.txt",
                key.0, key.1
            ));
            continue;
        };
        let got = headers_of(columns(&r.gv.group, &r.kind));
        if &got != want {
            mismatches.push(format!("{} {}:\n  want {want}\n  got  {got}", key.0, key.1));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn checked_in_table_lists_only_served_kinds() {
    for (group, kind) in checked_in_headers().keys() {
        assert!(
            builtin()
                .iter()
                .any(|r| r.gv.group == *group && r.kind == *kind),
            "printer-columns.txt lists {group} {kind}, which the registry does not serve"
        );
    }
}

#[test]
fn every_row_has_one_cell_per_column_even_for_an_empty_object() {
    let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T10:00:00Z"}});
    for r in builtin() {
        let cols = columns(&r.gv.group, &r.kind);
        let cells = row_cells(&r.gv.group, &r.kind, &obj, 1_714_557_600);
        // Upstream's IPAddress printer sends an AGE cell it has no column for; kubectl ignores it.
        let extra = usize::from(r.kind == "IPAddress");
        assert_eq!(cells.len(), cols.len() + extra, "{} {}", r.gv.group, r.kind);
    }
}

#[test]
fn name_columns_carry_the_name_format() {
    for r in builtin() {
        let cols = columns(&r.gv.group, &r.kind);
        let name = cols
            .iter()
            .find(|c| c.name == "Name")
            .expect("every table has a Name column");
        assert_eq!(name.format, "name", "{} {}", r.gv.group, r.kind);
        assert!(
            cols.iter().all(|c| !c.r#type.is_empty()),
            "{} {}",
            r.gv.group,
            r.kind
        );
    }
}

#[test]
fn column_definitions_serialize_in_the_shape_kubectl_reads() {
    let pod = columns("", "Pod");
    let json = serde_json::to_value(&pod[8]).unwrap();
    assert_eq!(json["name"], "Readiness Gates");
    assert_eq!(json["type"], "string");
    assert_eq!(json["format"], "");
    assert_eq!(json["priority"], 1);
    assert!(
        json["description"]
            .as_str()
            .unwrap()
            .starts_with("If specified, all readiness gates")
    );
    assert_eq!(json.as_object().unwrap().len(), 5);
    let name = serde_json::to_value(&pod[0]).unwrap();
    assert_eq!(name["format"], "name");
    assert_eq!(name["priority"], 0);
}

#[test]
fn kinds_without_a_printer_get_upstreams_default_convertor() {
    let cols = columns("rbac.authorization.k8s.io", "ClusterRole");
    assert_eq!(cols[1].name, "Created At");
    assert_eq!(cols[1].r#type, "date");
    let role = json!({"metadata": {"name": "admin", "creationTimestamp": "2024-05-01T10:00:00Z"}});
    let cells = row_cells(
        "rbac.authorization.k8s.io",
        "ClusterRole",
        &role,
        1_714_600_000,
    );
    assert_eq!(cells, vec![json!("admin"), json!("2024-05-01T10:00:00Z")]);
    let unknown = row_cells(
        "example.com",
        "Widget",
        &json!({"metadata": {"name": "w"}}),
        0,
    );
    assert_eq!(unknown, vec![json!("w"), json!("0001-01-01T00:00:00Z")]);
}
