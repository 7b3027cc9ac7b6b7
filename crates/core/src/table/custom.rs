//! Tables for custom resources, from a CRD version's `additionalPrinterColumns` — upstream's
//! `apiextensions-apiserver/pkg/registry/customresource/tableconvertor`.

use std::borrow::{Borrow, Cow};

use serde_json::Value;

use super::descriptions::{OM_CREATED, OM_NAME};
use super::jsonpath::JsonPath;
use super::time::{human_duration, parse_rfc3339, seconds_between};
use super::{Column, IncludeObject, TableError, build_table};

/// Columns and cells for one served version of a custom resource.
///
/// The first column is always NAME; then one column per `additionalPrinterColumns` entry, or
/// AGE (a `date` column over `.metadata.creationTimestamp`) when the CRD declares none.
#[derive(Clone, Debug)]
pub struct CustomPrinter {
    columns: Vec<Column>,
    paths: Vec<JsonPath>,
}

impl CustomPrinter {
    /// Builds the printer from a CRD version's `additionalPrinterColumns` (the JSON array; pass
    /// an empty slice when the field is absent).
    pub fn new(additional_printer_columns: &[Value]) -> Result<CustomPrinter, TableError> {
        let mut columns = vec![Column::new_static("Name", "string", "name", OM_NAME, 0)];
        let mut paths = Vec::new();
        if additional_printer_columns.is_empty() {
            columns.push(Column::new_static("Age", "date", "", OM_CREATED, 0));
            paths.push(
                JsonPath::parse(".metadata.creationTimestamp").map_err(|reason| {
                    TableError::InvalidJsonPath {
                        index: 0,
                        column: "Age".into(),
                        path: String::new(),
                        reason,
                    }
                })?,
            );
        }
        for (index, def) in additional_printer_columns.iter().enumerate() {
            let text = |key: &str| def.get(key).and_then(Value::as_str);
            let (Some(name), Some(json_path)) = (text("name"), text("jsonPath")) else {
                return Err(TableError::InvalidColumn { index });
            };
            let path =
                JsonPath::parse(json_path).map_err(|reason| TableError::InvalidJsonPath {
                    index,
                    column: name.to_owned(),
                    path: json_path.to_owned(),
                    reason,
                })?;
            let description = match text("description") {
                Some(d) if !d.is_empty() => d.to_owned(),
                _ => format!("Custom resource definition column (in JSONPath format): {json_path}"),
            };
            columns.push(Column {
                name: Cow::Owned(name.to_owned()),
                r#type: Cow::Owned(text("type").unwrap_or("string").to_owned()),
                format: Cow::Owned(text("format").unwrap_or("").to_owned()),
                description: Cow::Owned(description),
                priority: def.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
            });
            paths.push(path);
        }
        Ok(CustomPrinter { columns, paths })
    }

    /// The column definitions, NAME first.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The cells of one object: its name, then each column's value (`null` when the path
    /// selects nothing or the value does not fit the column type).
    pub fn row_cells(&self, obj: &Value, now: i64) -> Vec<Value> {
        let mut cells = vec![Value::from(super::json::str_at(obj, &["metadata", "name"]))];
        for (column, path) in self.columns[1..].iter().zip(&self.paths) {
            // Only simple paths are expected, so only the first result is used (as upstream).
            let cell = match path.find(obj).first() {
                None => Value::Null,
                Some(v) => cell_for(&column.r#type, v, now),
            };
            cells.push(cell);
        }
        cells
    }

    /// The full `meta.k8s.io/v1` Table for `objects`; see [`super::table`].
    pub fn table<T: Borrow<Value>>(
        &self,
        objects: &[T],
        now: i64,
        include_object: IncludeObject,
        list_meta: &Value,
    ) -> Value {
        let rows = objects.iter().map(|o| {
            let obj = o.borrow();
            (obj, self.row_cells(obj, now), None)
        });
        build_table(&self.columns, rows, include_object, list_meta)
    }
}

/// Upstream's `cellForJSONValue`, plus its string case (the JSONPath printer's text).
fn cell_for(ty: &str, v: &Value, now: i64) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(s)) => Value::from(s.as_str()),
        ("string", Value::Number(n)) => Value::from(n.to_string()),
        ("string", Value::Bool(b)) => Value::from(b.to_string()),
        // Maps and lists print as compact JSON with sorted keys, like Go's json.Marshal.
        ("string", other) => Value::from(sorted_keys(other).to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(b)) => Value::from(*b),
        ("date", Value::String(s)) => Value::from(date_cell(s, now)),
        _ => Value::Null,
    }
}

fn date_cell(s: &str, now: i64) -> String {
    if s.is_empty() || s == "null" {
        return "<unknown>".to_owned();
    }
    match parse_rfc3339(s) {
        Some(t) => human_duration(seconds_between(t, now * 1_000_000)),
        // Go's zero time parses but prints as unknown; anything else is invalid.
        None if s.starts_with("0001-01-01T00:00:00") => "<unknown>".to_owned(),
        None => "<invalid>".to_owned(),
    }
}

fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}
