//! The `k8s\0` + `runtime.Unknown` envelope and protobuf watch-stream frames.

use serde_json::{Map, Value};

use crate::desc::{self, Message};
use crate::encode::Path;
use crate::wire::{LEN, Reader, put_bytes};
use crate::{Error, MAGIC, decode, encode};

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const WATCH_EVENT: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent";

/// The parts of a `runtime.Unknown` envelope.
pub(crate) struct Parsed<'a> {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) raw: &'a [u8],
    pub(crate) raw_offset: usize,
}

fn string_at(b: &[u8], at: usize, what: u32) -> Result<String, Error> {
    String::from_utf8(b.to_vec())
        .map_err(|e| Error::decode(UNKNOWN, what, at, format!("string is not UTF-8: {e}")))
}

/// Splits an envelope that starts at absolute offset `base` of the outermost input.
pub(crate) fn parse(bytes: &[u8], base: usize) -> Result<Parsed<'_>, Error> {
    let body = bytes.strip_prefix(&MAGIC).ok_or(Error::MissingMagic)?;
    let mut out = Parsed {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        raw_offset: base + MAGIC.len(),
    };
    let mut r = Reader::new(body, base + MAGIC.len());
    let fail =
        |field, at, e: crate::wire::WireError| Error::decode(UNKNOWN, field, at, e.describe());
    while !r.is_empty() {
        let at = r.offset();
        let (number, wire) = r.key().map_err(|e| fail(0, at, e))?;
        if wire != LEN {
            r.skip(wire).map_err(|e| fail(number, at, e))?;
            continue;
        }
        let (b, start) = r.len_delimited().map_err(|e| fail(number, at, e))?;
        match number {
            1 => {
                let mut tm = Reader::new(b, start);
                while !tm.is_empty() {
                    let at = tm.offset();
                    let (n, w) = tm.key().map_err(|e| fail(1, at, e))?;
                    if w != LEN {
                        tm.skip(w).map_err(|e| fail(1, at, e))?;
                        continue;
                    }
                    let (s, s_at) = tm.len_delimited().map_err(|e| fail(1, at, e))?;
                    match n {
                        1 => out.api_version = string_at(s, s_at, 1)?,
                        2 => out.kind = string_at(s, s_at, 1)?,
                        _ => {}
                    }
                }
            }
            2 => {
                out.raw = b;
                out.raw_offset = start;
            }
            3 if !b.is_empty() => {
                let enc = String::from_utf8_lossy(b).into_owned();
                return Err(Error::decode(
                    UNKNOWN,
                    3,
                    at,
                    format!(
                        "contentEncoding {enc:?} is not supported; send the object uncompressed"
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes an envelope at offset `base`. With `forced` the raw bytes are read as that message
/// whatever the envelope's TypeMeta says (some Go types, e.g. WatchEvent, carry an empty one).
pub(crate) fn decode_at(
    bytes: &[u8],
    base: usize,
    forced: Option<&'static Message>,
    depth: usize,
) -> Result<Value, Error> {
    let env = parse(bytes, base)?;
    let msg = match forced {
        Some(m) => m,
        None => desc::message_for_kind(&env.api_version, &env.kind).ok_or_else(|| {
            Error::UnknownKind {
                api_version: env.api_version.clone(),
                kind: env.kind.clone(),
            }
        })?,
    };
    let body = decode::message(msg, env.raw, env.raw_offset, depth)?;
    Ok(with_type_meta(body, &env.api_version, &env.kind))
}

/// Puts `kind` and `apiVersion` first, as Go's JSON encoder does; leaves them out when empty.
fn with_type_meta(body: Value, api_version: &str, kind: &str) -> Value {
    let Value::Object(fields) = body else {
        return body;
    };
    let mut obj = Map::new();
    if !kind.is_empty() {
        obj.insert("kind".to_owned(), Value::from(kind));
    }
    if !api_version.is_empty() {
        obj.insert("apiVersion".to_owned(), Value::from(api_version));
    }
    obj.extend(fields);
    Value::Object(obj)
}

/// The object's `apiVersion` and `kind` (empty when absent).
pub(crate) fn type_meta(obj: &Value) -> Result<(&str, &str), Error> {
    let get = |key: &str| -> Result<&str, Error> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(""),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(Error::Encode {
                message: UNKNOWN,
                path: format!("$.{key}"),
                reason: "expected a string".to_owned(),
            }),
        }
    };
    if !obj.is_object() {
        return Err(Error::Encode {
            message: UNKNOWN,
            path: "$".to_owned(),
            reason: "expected a JSON object".to_owned(),
        });
    }
    Ok((get("apiVersion")?, get("kind")?))
}

/// Encodes `obj` as `msg` inside an envelope carrying the object's own apiVersion and kind.
pub(crate) fn encode_as(
    msg: &'static Message,
    obj: &Value,
    depth: usize,
) -> Result<Vec<u8>, Error> {
    let (api_version, kind) = type_meta(obj)?;
    let mut raw = Vec::new();
    encode::message(msg, obj, &mut raw, &Path::Root, depth)?;
    let mut tm = Vec::new();
    put_bytes(&mut tm, 1, api_version.as_bytes());
    put_bytes(&mut tm, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + tm.len() + 16);
    out.extend_from_slice(&MAGIC);
    put_bytes(&mut out, 1, &tm);
    put_bytes(&mut out, 2, &raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// Encodes `obj` into an envelope, choosing the message from its apiVersion and kind.
pub(crate) fn encode_object(obj: &Value) -> Result<Vec<u8>, Error> {
    let (api_version, kind) = type_meta(obj)?;
    let msg = desc::message_for_kind(api_version, kind).ok_or_else(|| Error::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    })?;
    encode_as(msg, obj, 0)
}

// === watch frames ===

fn watch_event() -> &'static Message {
    Message::by_name(WATCH_EVENT).expect("the table has meta/v1 WatchEvent")
}

/// One protobuf watch frame for `event` (`{"type": "ADDED", "object": {...}}`): a 4-byte
/// big-endian length, then a bare `WatchEvent` whose object is itself an envelope.
pub(crate) fn encode_watch_frame(event: &Value) -> Result<Vec<u8>, Error> {
    let field_err = |path: &str, reason: &str| Error::Encode {
        message: WATCH_EVENT,
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let event_type = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| field_err("$.type", "a watch event needs a string type"))?;
    let object = event
        .get("object")
        .ok_or_else(|| field_err("$.object", "a watch event needs an object"))?;
    let inner = encode_object(object)?;
    let mut raw_ext = Vec::new();
    put_bytes(&mut raw_ext, 1, &inner);
    let mut body = Vec::new();
    put_bytes(&mut body, 1, event_type.as_bytes());
    put_bytes(&mut body, 2, &raw_ext);
    let len =
        u32::try_from(body.len()).map_err(|_| field_err("$", "watch event larger than 4 GiB"))?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes the payload of one watch frame (without its length prefix).
pub(crate) fn decode_watch_payload(payload: &[u8]) -> Result<Value, Error> {
    decode::message(watch_event(), payload, 4, 0)
}
