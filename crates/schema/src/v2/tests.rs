//! The v2 document read back the way kubectl reads it: a small protobuf decoder for the gnostic
//! messages, and kube-openapi's parsing rules (`pkg/util/proto/document.go`) as assertions.

use std::sync::{Arc, OnceLock};

use drover_core::registry::{self, CustomResourceInfo, GroupVersion, Resource};
use serde_json::{Map, Value, json};

use super::*;

// === a tiny protobuf reader ===

#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    I64,
    Len(&'a [u8]),
}

fn varint(b: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*pos];
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn fields(b: &[u8]) -> Vec<(u32, Wire<'_>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos);
        let field = (key >> 3) as u32;
        let w = match key & 7 {
            0 => Wire::Varint(varint(b, &mut pos)),
            1 => {
                pos += 8;
                Wire::I64
            }
            2 => {
                let len = varint(b, &mut pos) as usize;
                let v = &b[pos..pos + len];
                pos += len;
                Wire::Len(v)
            }
            t => panic!("wire type {t} at {pos}"),
        };
        out.push((field, w));
    }
    out
}

fn msgs(b: &[u8], field: u32) -> Vec<&[u8]> {
    fields(b)
        .into_iter()
        .filter(|(f, _)| *f == field)
        .map(|(_, w)| match w {
            Wire::Len(b) => b,
            w => panic!("field {field} is {w:?}, not length-delimited"),
        })
        .collect()
}

fn msg(b: &[u8], field: u32) -> Option<&[u8]> {
    msgs(b, field).pop()
}

fn string(b: &[u8], field: u32) -> Option<String> {
    msg(b, field).map(|s| String::from_utf8(s.to_vec()).expect("UTF-8"))
}

fn strings(b: &[u8], field: u32) -> Vec<String> {
    msgs(b, field)
        .into_iter()
        .map(|s| String::from_utf8(s.to_vec()).expect("UTF-8"))
        .collect()
}

/// `repeated Named*{name = 1, value = 2}` as (name, value bytes).
fn named(b: &[u8], field: u32) -> Vec<(String, &[u8])> {
    msgs(b, field)
        .into_iter()
        .map(|n| (string(n, 1).unwrap_or_default(), msg(n, 2).unwrap_or(&[])))
        .collect()
}

/// `Any{yaml = 2}` (we write JSON, which is YAML).
fn any(b: &[u8]) -> Value {
    serde_json::from_str(&string(b, 2).expect("yaml")).expect("JSON yaml")
}

/// The fields of a gnostic `Schema` that our built-in definitions use, back as JSON.
fn schema_json(b: &[u8]) -> Value {
    let mut m = Map::new();
    for (field, key) in [(1, "$ref"), (2, "format"), (4, "description")] {
        if let Some(s) = string(b, field) {
            m.insert(key.into(), s.into());
        }
    }
    let req = strings(b, 19);
    if !req.is_empty() {
        m.insert("required".into(), json!(req));
    }
    if let Some(ap) = msg(b, 21) {
        let v = match fields(ap).as_slice() {
            [(1, Wire::Len(s))] => schema_json(s),
            [(2, Wire::Varint(v))] => Value::Bool(*v != 0),
            other => panic!("AdditionalPropertiesItem {other:?}"),
        };
        m.insert("additionalProperties".into(), v);
    }
    if let Some(t) = msg(b, 22) {
        let [one] = strings(t, 1).try_into().expect("one type");
        m.insert("type".into(), one.into());
    }
    if let Some(items) = msg(b, 23) {
        let [one] = msgs(items, 1).try_into().expect("one items schema");
        m.insert("items".into(), schema_json(one));
    }
    if let Some(p) = msg(b, 25) {
        let props: Map<String, Value> = named(p, 1)
            .into_iter()
            .map(|(k, s)| (k, schema_json(s)))
            .collect();
        m.insert("properties".into(), props.into());
    }
    for (name, v) in named(b, 31) {
        m.insert(name, any(v));
    }
    let known = [1, 2, 4, 19, 21, 22, 23, 25, 31];
    for (f, _) in fields(b) {
        assert!(known.contains(&f), "unexpected Schema field {f}");
    }
    Value::Object(m)
}

fn builtin_pb() -> &'static [u8] {
    static PB: OnceLock<Arc<V2Doc>> = OnceLock::new();
    &PB.get_or_init(|| v2_doc(V2Format::Protobuf, &[])).body
}

fn definition<'a>(doc: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let defs = msg(doc, 9).expect("definitions");
    named(defs, 1)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
}

// === kube-openapi's parser, as assertions ===

/// The checks `proto.NewOpenAPIData` makes; any failure makes kubectl give up validating.
fn parses_like_kube_openapi(s: &Value, path: &str, defs: &Map<String, Value>) {
    let m = s
        .as_object()
        .unwrap_or_else(|| panic!("{path}: not an object"));
    if let Some(r) = m.get("$ref") {
        let r = r.as_str().expect("string $ref");
        let name = r
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("{path}: reference outside definitions: {r}"));
        assert!(defs.contains_key(name), "{path}: unknown model {name}");
        assert!(!m.contains_key("type"), "{path}: reference with a type");
        assert!(
            !m.contains_key("properties"),
            "{path}: reference with properties"
        );
        return;
    }
    let ty = match m.get("type") {
        None => None,
        Some(Value::String(t)) => Some(t.as_str()),
        Some(t) => panic!("{path}: type {t}"),
    };
    match (ty, m.get("properties")) {
        (_, Some(p)) if !p.is_object() => panic!("{path}: properties {p}"),
        (None | Some("object"), Some(Value::Object(props))) => {
            for (k, v) in props {
                parses_like_kube_openapi(v, &format!("{path}.{k}"), defs);
            }
        }
        (Some("object"), None) => {
            if let Some(ap @ Value::Object(_)) = m.get("additionalProperties") {
                parses_like_kube_openapi(ap, &format!("{path}[*]"), defs);
            }
        }
        (Some("array"), _) => {
            let items = m
                .get("items")
                .unwrap_or_else(|| panic!("{path}: array without items"));
            assert!(items.is_object(), "{path}: items must be one schema");
            parses_like_kube_openapi(items, &format!("{path}[]"), defs);
        }
        (Some("string" | "integer" | "number" | "boolean"), _) => {}
        (None, _) => {}
        (Some(t), _) => panic!("{path}: unknown primitive type {t}"),
    }
    for k in ["allOf", "oneOf", "anyOf", "nullable"] {
        assert!(!m.contains_key(k), "{path}: {k} in a v2 schema");
    }
}

// === tests ===

#[test]
fn deployment_definition_carries_its_gvk_and_a_plain_ref_to_its_spec() {
    let pb = builtin_pb();
    assert_eq!(string(pb, 1).as_deref(), Some("2.0"));
    let d = definition(pb, "io.k8s.api.apps.v1.Deployment").expect("Deployment");
    let exts = named(d, 31);
    let (_, gvk) = exts
        .iter()
        .find(|(n, _)| n == "x-kubernetes-group-version-kind")
        .expect("GVK extension");
    assert_eq!(
        any(gvk),
        json!([{ "group": "apps", "kind": "Deployment", "version": "v1" }])
    );
    let props = named(msg(d, 25).expect("properties"), 1);
    let (_, spec) = props.iter().find(|(n, _)| n == "spec").expect("spec");
    assert_eq!(
        string(spec, 1).as_deref(),
        Some("#/definitions/io.k8s.api.apps.v1.DeploymentSpec")
    );
    assert!(msg(spec, 24).is_none(), "allOf wrapper should be flattened");
    assert!(strings(d, 19).is_empty(), "metadata is not required");
}

#[test]
fn protobuf_definitions_decode_back_to_the_json_document() {
    let doc = v2_document(&[]);
    let pb = v2_protobuf(&doc);
    let want = doc["definitions"].as_object().unwrap();
    let got = named(msg(&pb, 9).unwrap(), 1);
    assert_eq!(got.len(), want.len());
    for (name, s) in got {
        assert_eq!(schema_json(s), want[&name], "{name}");
    }
}

#[test]
fn every_definition_parses_under_kube_openapi_rules() {
    let doc = v2_document(&[]);
    let defs = doc["definitions"].as_object().unwrap();
    for (name, d) in defs {
        parses_like_kube_openapi(d, name, defs);
    }
    // And every schema in the paths (bodies, responses).
    for (path, item) in doc["paths"].as_object().unwrap() {
        for op in item.as_object().unwrap().values().filter(|v| v.is_object()) {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if let Some(s) = p.get("schema") {
                    parses_like_kube_openapi(s, path, defs);
                }
            }
            for r in op["responses"]
                .as_object()
                .into_iter()
                .flat_map(|r| r.values())
            {
                if let Some(s) = r.get("schema") {
                    parses_like_kube_openapi(s, path, defs);
                }
            }
        }
    }
}

#[test]
fn int_or_string_and_json_are_published_like_upstream() {
    let doc = v2_document(&[]);
    let defs = &doc["definitions"];
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"],
        "string"
    );
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
        "int-or-string"
    );
    assert!(
        defs["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON"]
            .get("type")
            .is_none()
    );
}

/// kubectl's `supportsQueryParam` (cli-runtime `query_param_verifier.go`): a `patch`
/// operation whose GVK extension is the kind's, with a `fieldValidation` query parameter.
fn supports_field_validation(pb: &[u8], g: &str, v: &str, k: &str) -> bool {
    let want = json!({ "group": g, "kind": k, "version": v });
    let paths = msg(pb, 8).expect("paths");
    for (_, item) in named(paths, 2) {
        let Some(patch) = msg(item, 8) else { continue };
        let gvk = named(patch, 13)
            .into_iter()
            .find(|(n, _)| n == "x-kubernetes-group-version-kind");
        if gvk.is_none_or(|(_, v)| any(v) != want) {
            continue;
        }
        return msgs(patch, 8).into_iter().any(|item| {
            let query = msg(item, 1)
                .and_then(|p| msg(p, 2))
                .and_then(|nb| msg(nb, 3));
            query.and_then(|q| string(q, 4)).as_deref() == Some("fieldValidation")
        });
    }
    false
}

#[test]
fn every_patchable_kind_advertises_field_validation_on_its_patch_operation() {
    let pb = builtin_pb();
    for r in registry::builtin()
        .iter()
        .filter(|r| r.verbs.names().contains(&"patch"))
    {
        assert!(
            supports_field_validation(pb, &r.gv.group, &r.gv.version, &r.kind),
            "{}/{} {}",
            r.gv.group,
            r.gv.version,
            r.kind
        );
    }
    assert!(!supports_field_validation(pb, "", "v1", "List"));
}

#[test]
fn body_parameters_and_path_parameters_use_their_own_messages() {
    let pb = builtin_pb();
    let paths = named(msg(pb, 8).unwrap(), 2);
    let (_, item) = paths
        .iter()
        .find(|(n, _)| n == "/api/v1/namespaces/{namespace}/configmaps/{name}")
        .expect("configmap path");
    // PathItem.parameters: name and namespace are PathParameterSubSchema (4), required.
    let path_params: Vec<&[u8]> = msgs(item, 9)
        .into_iter()
        .filter_map(|i| msg(msg(msg(i, 1)?, 2)?, 4))
        .collect();
    assert_eq!(path_params.len(), 2);
    assert!(path_params.iter().all(|p| fields(p)[0].0 == 1));
    // PUT carries a BodyParameter whose schema references ConfigMap.
    let put = msg(item, 3).expect("put");
    let body = msgs(put, 8)
        .into_iter()
        .find_map(|i| msg(msg(i, 1)?, 1))
        .expect("body parameter");
    assert_eq!(string(body, 3).as_deref(), Some("body"));
    assert_eq!(
        string(msg(body, 5).unwrap(), 1).as_deref(),
        Some("#/definitions/io.k8s.api.core.v1.ConfigMap")
    );
}

fn crontab() -> Resource {
    let mut r = registry::builtin()
        .iter()
        .find(|r| r.kind == "ConfigMap")
        .unwrap()
        .clone();
    r.gv = GroupVersion::parse("stable.example.com/v1");
    r.kind = "CronTab".into();
    r.plural = "crontabs".into();
    r.singular = "crontab".into();
    r.subresources = Vec::new().into();
    r.custom = Some(Arc::new(CustomResourceInfo {
        schema: json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["cron", "note"],
                    "properties": {
                        "cron": { "type": "string" },
                        "note": { "type": "string", "nullable": true },
                        "size": { "x-kubernetes-int-or-string": true,
                                  "anyOf": [{ "type": "integer" }, { "type": "string" }] },
                        "blob": { "type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                  "properties": { "a": { "type": "string" } } },
                    },
                },
            },
        }),
        crd_name: "crontabs.stable.example.com".into(),
        ..Default::default()
    }));
    r
}

#[test]
fn custom_resources_are_included_in_the_shapes_upstream_publishes() {
    let doc = v2_document(&[crontab()]);
    let defs = doc["definitions"].as_object().unwrap();
    let ct = &defs["com.example.stable.v1.CronTab"];
    assert_eq!(
        ct["x-kubernetes-group-version-kind"],
        json!([{ "group": "stable.example.com", "kind": "CronTab", "version": "v1" }])
    );
    assert_eq!(
        ct["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    let spec = &ct["properties"]["spec"];
    assert_eq!(
        spec["required"],
        json!(["cron"]),
        "nullable is not required"
    );
    assert!(spec["properties"]["note"].get("type").is_none());
    assert!(spec["properties"]["size"].get("anyOf").is_none());
    assert!(spec["properties"]["blob"].get("properties").is_none());
    for (name, d) in defs {
        parses_like_kube_openapi(d, name, defs);
    }
    let pb = v2_protobuf(&doc);
    assert!(supports_field_validation(
        &pb,
        "stable.example.com",
        "v1",
        "CronTab"
    ));
    assert!(definition(&pb, "com.example.stable.v1.CronTabList").is_some());
}

#[test]
fn the_cached_document_is_rebuilt_only_when_custom_resources_change() {
    let a = v2_doc(V2Format::Json, &[]);
    let b = v2_doc(V2Format::Json, registry::builtin());
    assert!(Arc::ptr_eq(&a, &b), "built-ins alone do not change it");
    let c = v2_doc(V2Format::Json, &[crontab()]);
    assert_ne!(a.hash, c.hash);
    let json: Value = serde_json::from_slice(&c.body).unwrap();
    assert!(json["definitions"]["com.example.stable.v1.CronTab"].is_object());
}

#[test]
fn kubectl_gets_protobuf_with_a_content_type_go_can_parse() {
    assert_eq!(V2Format::from_accept(Some(V2_PROTOBUF)), V2Format::Protobuf);
    assert_eq!(
        V2Format::from_accept(Some(V2_PROTOBUF_CONTENT_TYPE)),
        V2Format::Protobuf
    );
    assert_eq!(
        V2Format::from_accept(Some("application/json, */*")),
        V2Format::Json
    );
    assert_eq!(V2Format::from_accept(None), V2Format::Json);
    // mime.ParseMediaType: the subtype must be a token (RFC 2045), and `@` is a tspecial.
    let ct = V2Format::Protobuf.content_type();
    assert!(!ct.contains('@') && ct.ends_with("+protobuf"), "{ct}");
}

#[test]
fn the_streamed_encoding_equals_encoding_the_whole_document() {
    for resources in [vec![], vec![crontab()]] {
        let whole = v2_protobuf(&v2_document(&resources));
        assert!(whole == protobuf_streamed(&resources));
    }
}
