//! Custom resources against their CRD's structural schema: unknown fields are pruned (or
//! reported, for `fieldValidation=Strict`), defaults applied, and values validated (types,
//! required, enum, bounds, lengths, patterns, list types, int-or-string, embedded resources),
//! with upstream's messages.

use serde_json::{Map, Value, json};

use crate::status::Cause;

/// What admission found.
#[derive(Default)]
pub(crate) struct Admission {
    /// Paths of fields the schema does not know (already pruned).
    pub(crate) unknown: Vec<String>,
    /// Validation failures.
    pub(crate) causes: Vec<Cause>,
}

/// Prunes, defaults and validates `obj` (a whole custom resource) against `schema`.
pub(crate) fn admit(schema: &Value, obj: &mut Value) -> Admission {
    let mut a = Admission::default();
    let Some(m) = obj.as_object_mut() else {
        a.causes.push(Cause::invalid("", obj, "must be an object"));
        return a;
    };
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match props.get(&k) {
            Some(child) => {
                let mut v = m.remove(&k).expect("present");
                if v.is_null() && child.get("nullable") != Some(&Value::Bool(true)) {
                    continue; // nulls of non-nullable fields are pruned
                }
                walk(child, &mut v, &k, &mut a);
                m.insert(k, v);
            }
            None if preserve => {}
            None => {
                m.remove(&k);
                a.unknown.push(k);
            }
        }
    }
    apply_defaults(&props, m, "", &mut a);
    check_required(schema, m, "", &mut a);
    a
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn apply_defaults(
    props: &Map<String, Value>,
    m: &mut Map<String, Value>,
    path: &str,
    a: &mut Admission,
) {
    for (k, child) in props {
        if m.contains_key(k) {
            continue;
        }
        if let Some(d) = child.get("default") {
            let mut v = d.clone();
            walk(child, &mut v, &join(path, k), a);
            m.insert(k.clone(), v);
        }
    }
}

fn check_required(schema: &Value, m: &Map<String, Value>, path: &str, a: &mut Admission) {
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = r.as_str()
            && !m.contains_key(r)
        {
            a.causes.push(Cause::required(join(path, r)));
        }
    }
}

fn walk(schema: &Value, v: &mut Value, path: &str, a: &mut Admission) {
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let embedded = schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
    if v.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            a.causes.push(Cause::invalid(
                path,
                v,
                &format!(
                    "{path} in body must be of type {}: \"null\"",
                    schema
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("object")
                ),
            ));
        }
        return;
    }
    if int_or_string {
        if !matches!(type_name(v), "integer" | "string") {
            a.causes.push(Cause::invalid(
                path,
                v,
                &format!(
                    "{path} in body must be of type integer,string: {}",
                    shown(v)
                ),
            ));
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    if let Some(ty) = ty {
        let actual = type_name(v);
        let ok = actual == ty || (ty == "number" && actual == "integer");
        if !ok {
            a.causes.push(Cause::invalid(
                path,
                v,
                &format!(
                    "{path} in body must be of type {ty}: {}",
                    shown(&json!(actual))
                ),
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        a.causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                v,
                list.join(", ")
            ),
        ));
    }
    match v {
        Value::Object(m) => {
            if embedded {
                for f in ["apiVersion", "kind"] {
                    if m.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                        a.causes.push(Cause::required(join(path, f)));
                    }
                }
            }
            let props = schema
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let additional = schema.get("additionalProperties").cloned();
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let child_path = join(path, &k);
                if embedded
                    && matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                    && !props.contains_key(&k)
                {
                    continue;
                }
                let child = props.get(&k).cloned().or_else(|| match &additional {
                    Some(Value::Object(s)) => Some(Value::Object(s.clone())),
                    Some(Value::Bool(true)) => {
                        Some(json!({"x-kubernetes-preserve-unknown-fields": true}))
                    }
                    _ => None,
                });
                match child {
                    Some(c) => {
                        let mut cv = m.remove(&k).expect("present");
                        if cv.is_null()
                            && c.get("nullable") != Some(&Value::Bool(true))
                            && props.contains_key(&k)
                        {
                            continue;
                        }
                        walk(&c, &mut cv, &child_path, a);
                        m.insert(k, cv);
                    }
                    None if preserve => {}
                    None => {
                        m.remove(&k);
                        a.unknown.push(child_path);
                    }
                }
            }
            apply_defaults(&props, m, path, a);
            check_required(schema, m, path, a);
            bounds(
                schema,
                "minProperties",
                "maxProperties",
                m.len(),
                path,
                "properties",
                a,
            );
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), a);
                }
            }
            bounds(
                schema,
                "minItems",
                "maxItems",
                items.len(),
                path,
                "items",
                a,
            );
            let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
            let unique =
                schema.get("uniqueItems") == Some(&Value::Bool(true)) || list_type == Some("set");
            if unique {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].contains(item) {
                        a.causes.push(Cause::new(
                            "FieldValueDuplicate",
                            format!("{path}[{i}]"),
                            format!("Duplicate value: {item}"),
                        ));
                    }
                }
            }
            if list_type == Some("map") {
                let keys: Vec<&str> = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (i, item) in items.iter().enumerate() {
                    let key: Vec<&Value> = keys
                        .iter()
                        .map(|k| item.get(*k).unwrap_or(&Value::Null))
                        .collect();
                    if items[..i].iter().any(|o| {
                        keys.iter()
                            .map(|k| o.get(*k).unwrap_or(&Value::Null))
                            .collect::<Vec<_>>()
                            == key
                    }) {
                        let shown: Map<String, Value> = keys
                            .iter()
                            .map(|k| {
                                (
                                    (*k).to_owned(),
                                    item.get(*k).cloned().unwrap_or(Value::Null),
                                )
                            })
                            .collect();
                        a.causes.push(Cause::new(
                            "FieldValueDuplicate",
                            format!("{path}[{i}]"),
                            format!("Duplicate value: {}", Value::Object(shown)),
                        ));
                    }
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count();
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && (len as u64) < min
            {
                a.causes.push(Cause::invalid(
                    path,
                    &Value::String(s.clone()),
                    &format!("{path} in body should be at least {min} chars long"),
                ));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && (len as u64) > max
            {
                a.causes.push(Cause::new(
                    "FieldValueTooLong",
                    path,
                    format!("Too long: may not be more than {max} bytes"),
                ));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                match regex_lite::Regex::new(p) {
                    Ok(re) if !re.is_match(s) => {
                        a.causes.push(Cause::invalid(
                            path,
                            &Value::String(s.clone()),
                            &format!("{path} in body should match '{p}'"),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let excl_min = schema.get("exclusiveMinimum") == Some(&Value::Bool(true));
            let excl_max = schema.get("exclusiveMaximum") == Some(&Value::Bool(true));
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && (x < min || (excl_min && x == min))
            {
                let word = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                a.causes.push(Cause::invalid(
                    path,
                    &Value::Number(n.clone()),
                    &format!("{path} in body should be {word} {min}"),
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && (x > max || (excl_max && x == max))
            {
                let word = if excl_max {
                    "less than"
                } else {
                    "less than or equal to"
                };
                a.causes.push(Cause::invalid(
                    path,
                    &Value::Number(n.clone()),
                    &format!("{path} in body should be {word} {max}"),
                ));
            }
            if let Some(m) = schema
                .get("multipleOf")
                .and_then(Value::as_f64)
                .filter(|m| *m > 0.0)
                && (x / m).fract().abs() > 1e-9
            {
                a.causes.push(Cause::invalid(
                    path,
                    &Value::Number(n.clone()),
                    &format!("{path} in body should be a multiple of {m}"),
                ));
            }
        }
        _ => {}
    }
}

fn bounds(
    schema: &Value,
    min_key: &str,
    max_key: &str,
    n: usize,
    path: &str,
    what: &str,
    a: &mut Admission,
) {
    if let Some(min) = schema.get(min_key).and_then(Value::as_u64)
        && (n as u64) < min
    {
        a.causes.push(Cause::invalid(
            path,
            &json!(n),
            &format!("{path} in body should have at least {min} {what}"),
        ));
    }
    if let Some(max) = schema.get(max_key).and_then(Value::as_u64)
        && (n as u64) > max
    {
        a.causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {n}: must have at most {max} {what}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "port": {"x-kubernetes-int-or-string": true},
                "name": {"type": "string", "pattern": "^[a-z]+$"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "tmpl": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}
            }},
            "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}
        }})
    }

    #[test]
    fn prunes_defaults_and_accepts_valid_objects() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "G", "metadata": {"name": "g"},
            "spec": {"size": 3, "port": "http", "free": {"anything": [1]}, "extra": 1, "tmpl": {"apiVersion": "v1", "kind": "Pod", "spec": {}}},
            "bogus": true});
        let a = admit(&schema(), &mut obj);
        assert!(a.causes.is_empty(), "{:?}", a.causes);
        let mut unknown = a.unknown.clone();
        unknown.sort();
        assert_eq!(unknown, vec!["bogus".to_owned(), "spec.extra".to_owned()]);
        assert!(obj.get("bogus").is_none() && obj["spec"].get("extra").is_none());
        assert_eq!(obj["spec"]["mode"], "a");
        assert_eq!(obj["spec"]["free"]["anything"], json!([1]));
    }

    #[test]
    fn reports_upstream_shaped_errors() {
        let mut obj = json!({"spec": {"size": "big", "mode": "c", "name": "A1", "tags": ["x", "x"], "tmpl": {"spec": {}}}});
        let a = admit(&schema(), &mut obj);
        let text: Vec<String> = a
            .causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(
            text.iter()
                .any(|t| t.contains("spec.size in body must be of type integer")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("Unsupported value: \"c\"")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("should match '^[a-z]+$'")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("spec.tags[1]: Duplicate value")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("spec.tmpl.apiVersion: Required value")),
            "{text:?}"
        );
        let mut missing = json!({"spec": {}});
        let a = admit(&schema(), &mut missing);
        assert!(
            a.causes
                .iter()
                .any(|c| c.field == "spec.size" && c.reason == "FieldValueRequired")
        );
        let mut small = json!({"spec": {"size": 0}});
        assert!(
            admit(&schema(), &mut small)
                .causes
                .iter()
                .any(|c| c.message.contains("greater than or equal to 1"))
        );
    }
}
