//! Field validation for `fieldValidation=Strict|Warn`: unknown fields and gross type errors,
//! reported with upstream's path shapes (`spec.template.spec.containers[0].imagee`).

use serde_json::Value;

use crate::SchemaNode;

/// The paths of fields in `value` that `node`'s schema does not declare, e.g.
/// `spec.template.spec.containers[0].imagee`. Upstream reports each as
/// `unknown field "<path>"`.
///
/// Subtrees marked `x-kubernetes-preserve-unknown-fields`, free-form objects (no properties
/// and no `additionalProperties`, such as `RawExtension`) and int-or-string values are not
/// searched; map values are checked against `additionalProperties`.
pub fn unknown_fields(node: SchemaNode<'_>, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(node, value, &mut String::new(), &mut out);
    out
}

fn walk_unknown(node: SchemaNode<'_>, value: &Value, path: &mut String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let preserve = node.preserves_unknown_fields();
            let schema = node.schema();
            let has_props = schema.get("properties").is_some_and(Value::is_object);
            let values = node
                .items()
                .filter(|_| schema.get("additionalProperties").is_some());
            if !has_props && values.is_none() {
                return; // free-form object
            }
            for (k, v) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match node.field(k).or(values) {
                    Some(child) => walk_unknown(child, v, path, out),
                    None if !preserve => out.push(path.clone()),
                    None => {}
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            let Some(child) = node
                .items()
                .filter(|_| node.schema().get("items").is_some())
            else {
                return;
            };
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk_unknown(child, v, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// A value whose JSON type does not fit its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "json: cannot unmarshal {found} into Go struct field {owner}.{field_path} of type {expected}"
)]
pub struct TypeError {
    /// Path with list indices, e.g. `spec.template.spec.containers[0].image`.
    pub path: String,
    /// Go-style type owning the field, e.g. `Container` (the kind at the top level).
    pub owner: String,
    /// Dotted path without indices, as Go's decoder prints it.
    pub field_path: String,
    /// The JSON type found: `string`, `number`, `bool`, `array`, `object`.
    pub found: &'static str,
    /// The Go type expected, e.g. `int32`, `[]v1.Container`, `map[string]string`.
    pub expected: String,
}

/// Gross type mismatches in `value` (a string where an object is expected and the like),
/// with messages shaped like upstream's decode errors. `null` is accepted anywhere.
pub fn type_errors(node: SchemaNode<'_>, value: &Value) -> Vec<TypeError> {
    let mut out = Vec::new();
    let owner = node
        .type_name()
        .map(short_type)
        .unwrap_or("Object")
        .to_owned();
    let mut cx = TypeCx {
        path: String::new(),
        field_path: String::new(),
        owner,
        out: &mut out,
    };
    cx.walk(node, value);
    out
}

struct TypeCx<'o> {
    path: String,
    field_path: String,
    owner: String,
    out: &'o mut Vec<TypeError>,
}

impl TypeCx<'_> {
    fn walk(&mut self, node: SchemaNode<'_>, value: &Value) {
        if value.is_null() {
            return;
        }
        let schema = node.schema();
        if schema
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            == Some(true)
        {
            // Quantity shares this marker and accepts fractions (`cpu: 0.5`), so any number fits.
            if !(value.is_string() || value.is_number()) {
                self.mismatch(value, "intstr.IntOrString".to_owned());
            }
            return;
        }
        let Some(ty) = schema.get("type").and_then(Value::as_str) else {
            return;
        };
        let fits = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => true,
        };
        if !fits {
            self.mismatch(value, go_type(node));
            return;
        }
        match value {
            Value::Object(map) => {
                let owner = node.type_name().map(short_type).map(str::to_owned);
                let saved_owner = owner.map(|o| std::mem::replace(&mut self.owner, o));
                for (k, v) in map {
                    let child = node.field(k).or_else(|| {
                        node.items()
                            .filter(|_| schema.get("additionalProperties").is_some())
                    });
                    let Some(child) = child else { continue };
                    let (len, flen) = (self.path.len(), self.field_path.len());
                    for p in [&mut self.path, &mut self.field_path] {
                        if !p.is_empty() {
                            p.push('.');
                        }
                        p.push_str(k);
                    }
                    self.walk(child, v);
                    self.path.truncate(len);
                    self.field_path.truncate(flen);
                }
                if let Some(o) = saved_owner {
                    self.owner = o;
                }
            }
            Value::Array(items) => {
                let Some(child) = node.items() else { return };
                for (i, v) in items.iter().enumerate() {
                    let len = self.path.len();
                    self.path.push_str(&format!("[{i}]"));
                    self.walk(child, v);
                    self.path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn mismatch(&mut self, value: &Value, expected: String) {
        let found = match value {
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Null => "null",
        };
        self.out.push(TypeError {
            path: self.path.clone(),
            owner: self.owner.clone(),
            field_path: self.field_path.clone(),
            found,
            expected,
        });
    }
}

/// `io.k8s.api.core.v1.Container` → `Container`.
fn short_type(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// `io.k8s.api.core.v1.Container` → `v1.Container` (Go's package-qualified name).
fn qualified_type(name: &str) -> String {
    let mut parts = name.rsplit('.');
    match (parts.next(), parts.next()) {
        (Some(t), Some(pkg)) => format!("{pkg}.{t}"),
        _ => name.to_owned(),
    }
}

fn go_type(node: SchemaNode<'_>) -> String {
    if let Some(name) = node.type_name() {
        return qualified_type(name);
    }
    let schema = node.schema();
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "string".into(),
        Some("boolean") => "bool".into(),
        Some("integer") => schema
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("int64")
            .into(),
        Some("number") => "float64".into(),
        Some("array") => format!(
            "[]{}",
            node.items()
                .map(go_type)
                .unwrap_or_else(|| "interface {}".into())
        ),
        Some("object") => match node.items() {
            Some(v) => format!("map[string]{}", go_type(v)),
            None => "map[string]interface {}".into(),
        },
        _ => "interface {}".into(),
    }
}
