//! Server-side printing: the `meta.k8s.io/v1` Table columns and cells kubectl shows per kind.
//!
//! `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever
//! columns the server defines, so these tables are what users see. Every built-in kind gets
//! upstream Kubernetes 1.33's columns and cell values:
//!
//! - [`columns`] — the column definitions of a built-in (group, kind);
//! - [`row_cells`] — one object's cells, computed from its JSON exactly as upstream's printer
//!   (pods' READY/STATUS/RESTARTS, services' EXTERNAL-IP and PORT(S), AGE, …);
//! - [`table`] — the whole Table object for a GET, LIST or one watch event;
//! - [`CustomPrinter`] — the same for custom resources, from a CRD's
//!   `additionalPrinterColumns`;
//! - [`human_duration`] — upstream's `duration.HumanDuration` (`5s`, `3m2s`, `2d3h`, `95d`).
//!
//! The server prints all columns (upstream generates tables with `Wide: true`); columns with
//! `priority: 1` are hidden by kubectl unless `-o wide`. Kinds without an upstream printer
//! (Role, ClusterRole, LimitRange, CustomResourceDefinition, …) get upstream's default table
//! convertor: NAME and CREATED AT.
//!
//! Everything is a pure function of the object and `now`, the current time in Unix seconds.

mod custom;
mod descriptions;
mod json;
mod jsonpath;
mod printers;
mod time;

use std::borrow::{Borrow, Cow};

use serde::Serialize;
use serde_json::{Map, Value, json};

pub use custom::CustomPrinter;
pub use time::human_duration;

/// One column definition, serialized as kubectl expects:
/// `{"name", "type", "format", "description", "priority"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Column title; kubectl upper-cases it for the header (`Nominated Node` → `NOMINATED NODE`).
    pub name: Cow<'static, str>,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub r#type: Cow<'static, str>,
    /// OpenAPI format hint; `name` marks the column holding the object name, else usually `""`.
    pub format: Cow<'static, str>,
    /// Human-readable description of the column.
    pub description: Cow<'static, str>,
    /// 0 for columns always shown; 1 (or more) for columns shown only with `-o wide`.
    pub priority: i32,
}

/// What each row's `object` holds (the `includeObject` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object (`"object": null`).
    None,
    /// A `meta.k8s.io/v1` PartialObjectMetadata carrying the object's full metadata (the
    /// default; kubectl reads namespaces and labels from it).
    #[default]
    Metadata,
    /// The full object (kubectl asks for this for `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query value (`None`, `Metadata`, `Object`); an empty value
    /// means the default.
    pub fn parse(value: &str) -> Result<IncludeObject, TableError> {
        match value {
            "None" => Ok(IncludeObject::None),
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "Object" => Ok(IncludeObject::Object),
            other => Err(TableError::InvalidIncludeObject(other.to_owned())),
        }
    }
}

/// Errors building tables.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The `includeObject` parameter had an unknown value.
    #[error("invalid includeObject {0:?}: use None, Metadata or Object")]
    InvalidIncludeObject(String),
    /// An `additionalPrinterColumns` entry lacks a string `name` or `jsonPath`.
    #[error("additionalPrinterColumns[{index}] must have a string \"name\" and \"jsonPath\"")]
    InvalidColumn {
        /// Position of the entry.
        index: usize,
    },
    /// An `additionalPrinterColumns` JSONPath could not be parsed.
    #[error(
        "additionalPrinterColumns[{index}] ({column:?}) has an unsupported jsonPath {path:?}: {reason}; \
         use a simple path such as .spec.replicas or .status.conditions[?(@.type==\"Ready\")].status"
    )]
    InvalidJsonPath {
        /// Position of the entry.
        index: usize,
        /// The column's name.
        column: String,
        /// The path as written.
        path: String,
        /// What the parser did not understand.
        reason: String,
    },
}

/// The column definitions upstream's server sends for a built-in (group, kind); `""` is the
/// core group. Kinds without a dedicated printer get NAME and CREATED AT.
pub fn columns(group: &str, kind: &str) -> &'static [Column] {
    printers::lookup(group, kind).columns
}

/// The cells of one object of a built-in (group, kind), in [`columns`] order, with all
/// (wide) cells included; `now` is the current time in Unix seconds.
pub fn row_cells(group: &str, kind: &str, obj: &Value, now: i64) -> Vec<Value> {
    (printers::lookup(group, kind).cells)(obj, now)
}

/// Whether upstream's list printer for a built-in (group, kind) sorts the rows of a list
/// before printing them. Only FlowSchema does (`printFlowSchemaList`: by
/// `spec.matchingPrecedence`, then name); every other kind, PriorityLevelConfiguration
/// included, prints its rows in list order.
pub fn sorts_rows(group: &str, kind: &str) -> bool {
    printers::sorts_rows(group, kind)
}

/// The key rows of a built-in (group, kind) are sorted by within one list's Table (see
/// [`sorts_rows`]); `None` for kinds printed in list order. Compare keys with `Ord` and sort
/// stably, as [`table`] does.
pub fn row_sort_key(group: &str, kind: &str, obj: &Value) -> Option<RowSortKey> {
    printers::sort_key(group, kind, obj).map(|(precedence, name)| RowSortKey(precedence, name))
}

/// A row's place in a sorted Table: for FlowSchemas, (matching precedence, name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowSortKey(i64, String);

/// The `meta.k8s.io/v1` Table for `objects` of a built-in (group, kind).
///
/// Rows follow `objects`' order, except for kinds whose upstream list printer sorts them
/// ([`sorts_rows`]): those are sorted within `objects`, which is one list response (one page
/// of a paginated list), as upstream sorts the items of the list it prints.
///
/// `list_meta` is the list's (or, for a single GET, the object's) metadata: its
/// `resourceVersion`, `continue` and `remainingItemCount` are copied into the Table's metadata.
/// Pass `Value::Null` when there is none.
pub fn table<T: Borrow<Value>>(
    group: &str,
    kind: &str,
    objects: &[T],
    now: i64,
    include_object: IncludeObject,
    list_meta: &Value,
) -> Value {
    let printer = printers::lookup(group, kind);
    let mut items: Vec<&Value> = objects.iter().map(Borrow::borrow).collect();
    // Stable: kinds without a sort key keep the given order.
    items.sort_by_key(|o| printers::sort_key(group, kind, o));
    let rows = items.into_iter().map(|obj| {
        (
            obj,
            (printer.cells)(obj, now),
            printers::row_conditions(group, kind, obj),
        )
    });
    build_table(printer.columns, rows, include_object, list_meta)
}

/// Assembles the Table JSON from already computed rows: (object, cells, row conditions).
fn build_table<'a>(
    columns: &[Column],
    rows: impl Iterator<Item = (&'a Value, Vec<Value>, Option<Value>)>,
    include_object: IncludeObject,
    list_meta: &Value,
) -> Value {
    let mut metadata = Map::new();
    for key in ["resourceVersion", "continue", "remainingItemCount"] {
        if let Some(v) = list_meta.get(key).filter(|v| !v.is_null() && *v != "") {
            metadata.insert(key.to_owned(), v.clone());
        }
    }
    let rows: Vec<Value> = rows
        .map(|(obj, cells, conditions)| {
            let object = match include_object {
                IncludeObject::None => Value::Null,
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
                IncludeObject::Object => obj.clone(),
            };
            let mut row = Map::new();
            row.insert("cells".to_owned(), Value::Array(cells));
            if let Some(conditions) = conditions {
                row.insert("conditions".to_owned(), conditions);
            }
            row.insert("object".to_owned(), object);
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}
