//! OpenAPI 3.0 (our `/openapi/v3` shapes) → Swagger 2.0 (`/openapi/v2`).
//!
//! kubectl reads the v2 document with kube-openapi's `pkg/util/proto` parser, which is stricter
//! than Swagger: a `$ref` must point below `#/definitions/` and carry no `type` or
//! `properties`, an array needs exactly one `items` schema, a schema has at most one `type`,
//! and `allOf`/`oneOf` are not understood at all. One definition it cannot parse fails
//! validation of every object, so the conversion produces only shapes that parser accepts.

use serde_json::{Map, Value};

use crate::defs::REF_PREFIX;

/// Where Swagger 2.0 documents keep their schemas.
pub(super) const V2_REF_PREFIX: &str = "#/definitions/";

/// `apiextensions.v1.JSON` holds any JSON value; v3 calls it an object, which would make
/// kubectl reject a CRD's `default: 5`.
const ANY_JSON: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON";

/// Converts one built-in definition.
pub(super) fn definition(name: &str, def: &Value) -> Value {
    let mut out = schema(def, false);
    if let Value::Object(m) = &mut out {
        if name == ANY_JSON {
            m.remove("type");
        }
        // k8s-openapi requires `metadata` because the Rust field is not optional; upstream's
        // kinds never require it, and kubectl's v2 validation would enforce it.
        if m.contains_key("x-kubernetes-group-version-kind") {
            drop_required(m, "metadata");
        }
    }
    out
}

/// Converts one custom resource definition the way upstream publishes CRD schemas in v2
/// (apiextensions-apiserver `ToStructuralOpenAPIV2`): no junctors, `nullable` and
/// `x-kubernetes-preserve-unknown-fields` make the value untyped, arrays without items lose
/// their type.
pub(super) fn crd_definition(def: &Value) -> Value {
    schema(def, true)
}

/// Converts a schema and everything nested in it.
pub(super) fn schema(v: &Value, crd: bool) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let v = match k.as_str() {
            "$ref" => match v.as_str().and_then(|r| r.strip_prefix(REF_PREFIX)) {
                Some(name) => Value::String(format!("{V2_REF_PREFIX}{name}")),
                None => v.clone(),
            },
            "properties" => Value::Object(
                v.as_object()
                    .map(|p| p.iter().map(|(k, s)| (k.clone(), schema(s, crd))).collect())
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" => schema(v, crd),
            "allOf" | "oneOf" | "anyOf" => Value::Array(
                v.as_array()
                    .map(|a| a.iter().map(|s| schema(s, crd)).collect())
                    .unwrap_or_default(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    flatten_all_of(&mut out);
    // Swagger 2.0 has no oneOf/anyOf/not; upstream publishes JSONSchemaPropsOrBool & co untyped.
    for k in ["oneOf", "anyOf", "not"] {
        out.remove(k);
    }
    if crd {
        structural_v2(&mut out);
        // Children were converted above (their `nullable` is gone): look at the input.
        let nullable = |s: &Value| s.get("nullable") == Some(&Value::Bool(true));
        if let Some(Value::Object(props)) = m.get("properties") {
            for (f, _) in props.iter().filter(|(_, s)| nullable(s)) {
                drop_required(&mut out, f);
            }
        }
        if m.get("additionalProperties").is_some_and(nullable) {
            out.remove("required");
        }
    } else if out.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        && !out.contains_key("type")
    {
        // Upstream's v2 spelling of IntOrString (and of Quantity, as a string).
        out.remove("x-kubernetes-int-or-string");
        out.insert("type".into(), "string".into());
        out.entry("format")
            .or_insert_with(|| "int-or-string".into());
    }
    Value::Object(out)
}

/// `{"description": d, "allOf": [{"$ref": r}]}` → `{"description": d, "$ref": r}`: v3 wraps
/// references so a description can sit beside them; kube-openapi reads a bare `allOf` as "any
/// value" and would stop validating below it.
fn flatten_all_of(m: &mut Map<String, Value>) {
    let Some(Value::Array(all)) = m.get("allOf") else {
        return;
    };
    let [Value::Object(only)] = all.as_slice() else {
        return;
    };
    if only.len() != 1 || m.contains_key("type") || m.contains_key("properties") {
        return;
    }
    let Some(r) = only.get("$ref").cloned() else {
        return;
    };
    m.remove("allOf");
    m.insert("$ref".into(), r);
}

fn structural_v2(m: &mut Map<String, Value>) {
    m.remove("allOf");
    let truthy = |m: &Map<String, Value>, k: &str| m.get(k) == Some(&Value::Bool(true));
    if truthy(m, "nullable") {
        // kubectl would reject the null the schema allows.
        for k in ["type", "items", "properties"] {
            m.remove(k);
        }
    }
    m.remove("nullable");
    if truthy(m, "x-kubernetes-preserve-unknown-fields") {
        // kubectl would report the unknown fields the schema allows.
        m.remove("items");
        m.remove("properties");
    }
    if m.get("type").and_then(Value::as_str) == Some("array") && !m.contains_key("items") {
        m.remove("type");
    }
}

fn drop_required(m: &mut Map<String, Value>, field: &str) {
    if let Some(Value::Array(req)) = m.get_mut("required") {
        req.retain(|r| r.as_str() != Some(field));
        if req.is_empty() {
            m.remove("required");
        }
    }
}

/// Converts one v3 path item: path-level parameters and each operation.
pub(super) fn path_item(item: &Value) -> Value {
    let Value::Object(m) = item else {
        return item.clone();
    };
    m.iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "parameters" => parameters(v),
                "get" | "put" | "post" | "delete" | "options" | "head" | "patch" => operation(v),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect::<Map<_, _>>()
        .into()
}

fn parameters(v: &Value) -> Value {
    v.as_array()
        .map(|a| a.iter().map(parameter).collect())
        .unwrap_or_default()
}

/// `{name, in, schema: {type, uniqueItems}}` → `{name, in, type, uniqueItems}`.
fn parameter(p: &Value) -> Value {
    let Value::Object(m) = p else {
        return p.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        match (k.as_str(), v) {
            ("schema", Value::Object(s)) => {
                out.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Moves `requestBody` into a `body` parameter and `consumes`, and response `content` into
/// `schema` and `produces`.
fn operation(op: &Value) -> Value {
    let Value::Object(m) = op else {
        return op.clone();
    };
    let mut out = Map::new();
    let mut params = Vec::new();
    let mut consumes = Vec::new();
    if let Some(body) = m.get("requestBody") {
        let (media, body_schema) = content(body);
        consumes = media;
        params.push(serde_json::json!({
            "name": "body",
            "in": "body",
            "required": body.get("required").cloned().unwrap_or(Value::Bool(true)),
            "schema": body_schema.unwrap_or_default(),
        }));
    }
    if let Some(Value::Array(ps)) = m.get("parameters") {
        params.extend(ps.iter().map(parameter));
    }
    let mut produces: Vec<Value> = Vec::new();
    let mut responses = Map::new();
    if let Some(Value::Object(rs)) = m.get("responses") {
        for (code, r) in rs {
            let (media, s) = content(r);
            for t in media {
                if !produces.contains(&t) {
                    produces.push(t);
                }
            }
            let mut resp = Map::new();
            resp.insert(
                "description".into(),
                r.get("description").cloned().unwrap_or_default(),
            );
            if let Some(s) = s {
                resp.insert("schema".into(), s);
            }
            responses.insert(code.clone(), Value::Object(resp));
        }
    }
    for (k, v) in m {
        match k.as_str() {
            "requestBody" | "parameters" | "responses" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if !consumes.is_empty() {
        out.insert("consumes".into(), Value::Array(consumes));
    }
    if !produces.is_empty() {
        out.insert("produces".into(), Value::Array(produces));
    }
    out.insert("schemes".into(), serde_json::json!(["https"]));
    out.insert("parameters".into(), Value::Array(params));
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}

/// The media types of a v3 `content` map and the (converted) schema of the first one.
fn content(v: &Value) -> (Vec<Value>, Option<Value>) {
    let Some(Value::Object(c)) = v.get("content") else {
        return (Vec::new(), None);
    };
    let media = c.keys().map(|k| Value::String(k.clone())).collect();
    let s = c
        .values()
        .find_map(|m| m.get("schema"))
        .map(|s| schema(s, false));
    (media, s)
}
