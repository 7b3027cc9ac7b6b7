//! Content negotiation: decoding request bodies (JSON, YAML, protobuf) and choosing the
//! response form (JSON, protobuf, YAML, Table) from `Accept`.

use serde_json::Value;

use crate::status::{ApiError, ApiResult};

pub(crate) const JSON: &str = "application/json";
pub(crate) const YAML: &str = "application/yaml";
pub(crate) const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// One media range of an `Accept` header, with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MediaRange {
    pub(crate) essence: String,
    pub(crate) params: Vec<(String, String)>,
}

impl MediaRange {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `Accept` (or `Content-Type`) into media ranges, in the order given.
pub(crate) fn parse_media_ranges(header: &str) -> Vec<MediaRange> {
    header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let essence = pieces.next()?.to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let params = pieces
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| {
                    (
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_owned(),
                    )
                })
                .collect();
            Some(MediaRange { essence, params })
        })
        .collect()
}

/// The response encodings the server can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Json,
    Yaml,
    Protobuf,
}

/// What form the client wants objects in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// The object itself in an encoding.
    Object(Encoding),
    /// A `meta.k8s.io` Table (v1 or v1beta1).
    Table { v1beta1: bool },
    /// `PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata { v1beta1: bool },
}

/// Chooses the output for an object/list response. Unacceptable → 406.
pub(crate) fn choose_output(accept: Option<&str>, table_ok: bool) -> ApiResult<Output> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Object(Encoding::Json));
    };
    let ranges = parse_media_ranges(accept);
    for r in &ranges {
        let as_ = r.param("as");
        let meta_group = r.param("g") == Some("meta.k8s.io");
        let v1beta1 = r.param("v") == Some("v1beta1");
        match (r.essence.as_str(), as_) {
            (JSON | PROTOBUF, Some("Table")) if meta_group && table_ok => {
                return Ok(Output::Table { v1beta1 });
            }
            (JSON | PROTOBUF, Some("PartialObjectMetadata" | "PartialObjectMetadataList"))
                if meta_group =>
            {
                return Ok(Output::Metadata { v1beta1 });
            }
            (_, Some(_)) => continue,
            (JSON, None) => return Ok(Output::Object(Encoding::Json)),
            (PROTOBUF, None) => return Ok(Output::Object(Encoding::Protobuf)),
            (YAML, None) => return Ok(Output::Object(Encoding::Yaml)),
            ("*/*" | "application/*", None) => return Ok(Output::Object(Encoding::Json)),
            _ => continue,
        }
    }
    Err(ApiError::NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
            .into(),
    ))
}

/// Decodes an object body by its `Content-Type`.
pub(crate) fn decode_object(content_type: Option<&str>, body: &[u8]) -> ApiResult<Value> {
    let v = decode_any(content_type, body)?;
    if !v.is_object() {
        return Err(ApiError::BadRequest(format!(
            "the request body must be an object (e.g. {{\"apiVersion\": …, \"kind\": …}}), not {}",
            match v {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "an object",
            }
        )));
    }
    Ok(v)
}

fn decode_any(content_type: Option<&str>, body: &[u8]) -> ApiResult<Value> {
    let essence = content_type
        .and_then(|c| parse_media_ranges(c).into_iter().next())
        .map(|m| m.essence)
        .unwrap_or_else(|| JSON.to_owned());
    match essence.as_str() {
        JSON => decode_json(body),
        YAML | "application/x-yaml" | "text/yaml" => decode_yaml(body),
        PROTOBUF => {
            let mut obj = drover_codec::decode(body).map_err(|e| {
                ApiError::BadRequest(format!("the protobuf request body is malformed: {e}"))
            })?;
            // Go's marshaller writes every empty string; upstream decodes into structs where
            // "" is unset, so defaulting and `omitempty` treat it so. Do the same.
            drover_codec::omit_empty_strings(&mut obj);
            Ok(obj)
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other:?})"
        ))),
    }
}

/// Decodes JSON, with a 400 naming the position of the problem.
pub(crate) fn decode_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the JSON request body is malformed: {e}")))
}

/// Decodes YAML (one document) into the JSON data model.
pub(crate) fn decode_yaml(body: &[u8]) -> ApiResult<Value> {
    let v: serde_yaml::Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the YAML request body is malformed: {e}")))?;
    serde_json::to_value(v).map_err(|e| {
        ApiError::BadRequest(format!("the YAML request body is not valid JSON data: {e}"))
    })
}

/// Encodes a value in the chosen encoding. Protobuf falls back to JSON for values the codec
/// does not know (upstream does the same for types without protobuf, e.g. custom resources).
pub(crate) fn encode(value: &Value, enc: Encoding) -> (Vec<u8>, &'static str) {
    match enc {
        Encoding::Json => (serde_json::to_vec(value).expect("serializable"), JSON),
        Encoding::Yaml => (
            serde_yaml::to_string(value)
                .expect("serializable")
                .into_bytes(),
            YAML,
        ),
        Encoding::Protobuf => match drover_codec::encode(value) {
            Ok(bytes) => (bytes, PROTOBUF),
            Err(_) => (serde_json::to_vec(value).expect("serializable"), JSON),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            choose_output(Some(accept), true).expect("ok"),
            Output::Table { v1beta1: false }
        );
        assert_eq!(
            choose_output(Some(accept), false).expect("ok"),
            Output::Object(Encoding::Json)
        );
    }

    #[test]
    fn typed_clients_get_protobuf_and_others_json() {
        let pb = "application/vnd.kubernetes.protobuf,application/json";
        assert_eq!(
            choose_output(Some(pb), true).expect("ok"),
            Output::Object(Encoding::Protobuf)
        );
        assert_eq!(
            choose_output(Some("application/json, */*"), true).expect("ok"),
            Output::Object(Encoding::Json)
        );
        assert_eq!(
            choose_output(None, true).expect("ok"),
            Output::Object(Encoding::Json)
        );
        assert!(choose_output(Some("text/html"), true).is_err());
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        let err = decode_object(Some("application/json"), b"{\"a\":").expect_err("truncated");
        assert!(
            matches!(err, ApiError::BadRequest(ref m) if m.contains("JSON")),
            "{err:?}"
        );
        let v = decode_object(Some("application/yaml"), b"a: 1\nb: [x]\n").expect("yaml");
        assert_eq!(v, serde_json::json!({"a": 1, "b": ["x"]}));
        assert!(matches!(
            decode_object(Some("text/csv"), b"x"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }
}
