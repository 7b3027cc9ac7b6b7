//! Tables of custom resources from a CRD's `additionalPrinterColumns`.

use drover_core::table::{CustomPrinter, IncludeObject, TableError};
use serde_json::{Value, json};

/// 2024-05-01T10:00:00Z.
const NOW: i64 = 1_714_557_600;

fn widget() -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default", "creationTimestamp": "2024-05-01T07:00:00Z"},
        "spec": {"replicas": 3, "size": 1.5, "paused": false, "tags": ["b", "a"], "selector": {"z": "1", "a": "2"}},
        "status": {"conditions": [
            {"type": "Synced", "status": "True", "lastTransitionTime": "2024-05-01T09:59:00Z"},
            {"type": "Ready", "status": "False", "lastTransitionTime": "2024-05-01T09:58:00Z"}
        ]},
    })
}

#[test]
fn crd_without_printer_columns_shows_name_and_age() {
    let p = CustomPrinter::new(&[]).unwrap();
    let names: Vec<&str> = p.columns().iter().map(|c| c.name.as_ref()).collect();
    assert_eq!(names, ["Name", "Age"]);
    assert_eq!(p.columns()[1].r#type, "date");
    assert_eq!(p.row_cells(&widget(), NOW), vec![json!("w1"), json!("3h")]);
}

#[test]
fn printer_columns_evaluate_json_paths_by_type() {
    let defs = json!([
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "description": "Readiness"},
        {"name": "Size", "type": "number", "jsonPath": ".spec.size", "priority": 1},
        {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
        {"name": "Tags", "type": "string", "jsonPath": ".spec.tags"},
        {"name": "Selector", "type": "string", "jsonPath": ".spec.selector"},
        {"name": "Synced", "type": "date", "jsonPath": ".status.conditions[0].lastTransitionTime"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Mistyped", "type": "integer", "jsonPath": ".metadata.name"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]);
    let p = CustomPrinter::new(defs.as_array().unwrap()).unwrap();
    let cols = p.columns();
    assert_eq!(cols.len(), 11);
    assert_eq!(cols[2].description, "Readiness");
    assert_eq!(
        cols[1].description,
        "Custom resource definition column (in JSONPath format): .spec.replicas"
    );
    assert_eq!((cols[3].priority, cols[0].format.as_ref()), (1, "name"));
    assert_eq!(
        p.row_cells(&widget(), NOW),
        vec![
            json!("w1"),
            json!(3),
            json!("False"),
            json!(1.5),
            json!(false),
            json!(r#"["b","a"]"#),
            json!(r#"{"a":"2","z":"1"}"#),
            json!("60s"),
            Value::Null,
            Value::Null,
            json!("3h"),
        ]
    );

    let t = p.table(
        &[widget()],
        NOW,
        IncludeObject::Metadata,
        &json!({"resourceVersion": "9"}),
    );
    assert_eq!(
        t["columnDefinitions"][1],
        json!({
            "name": "Replicas", "type": "integer", "format": "",
            "description": "Custom resource definition column (in JSONPath format): .spec.replicas", "priority": 0
        })
    );
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(t["metadata"]["resourceVersion"], "9");
}

#[test]
fn invalid_printer_columns_are_reported_with_their_position() {
    let bad_path = json!([{"name": "Deep", "type": "string", "jsonPath": "..spec"}]);
    let err = CustomPrinter::new(bad_path.as_array().unwrap()).unwrap_err();
    assert!(
        matches!(err, TableError::InvalidJsonPath { index: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("\"Deep\""), "{err}");

    let no_path = json!([{"name": "A", "type": "string"}]);
    assert!(matches!(
        CustomPrinter::new(no_path.as_array().unwrap()),
        Err(TableError::InvalidColumn { index: 0 })
    ));
}
