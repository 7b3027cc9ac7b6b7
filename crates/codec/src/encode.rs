//! Kubernetes JSON -> protobuf bytes, driven by the message table, byte-compatible with Go's
//! generated (gogo-protobuf) marshallers: fields in number order, map keys sorted, repeated
//! scalars unpacked, int32 sign-extended.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::desc::{Field, Label, Message, Special, Ty};
use crate::wire::{FIXED64, put_bytes, put_int, put_key};
use crate::{Error, MAX_DEPTH, time};

/// Where in the JSON document a value sits; rendered only for error messages.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn err(msg: &Message, path: &Path<'_>, reason: impl Into<String>) -> Error {
    Error::Encode {
        message: msg.name,
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Appends the protobuf body of `msg` for the JSON `value` to `out`.
pub(crate) fn message(
    msg: &'static Message,
    value: &Value,
    out: &mut Vec<u8>,
    path: &Path<'_>,
    depth: usize,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(err(
            msg,
            path,
            format!("objects nested deeper than {MAX_DEPTH}"),
        ));
    }
    if msg.special != Special::None {
        return special(msg, value, out, path, depth);
    }
    let Value::Object(obj) = value else {
        return Err(err(
            msg,
            path,
            format!("expected an object, found {}", type_name(value)),
        ));
    };
    for field in msg.fields {
        if field.label == Label::Inline {
            // Embedded Go structs are values, so Go always writes them, even when empty.
            nested(msg, field, field.number, value, out, path, depth)?;
            continue;
        }
        // Unknown JSON keys are ignored and null means absent, as in Go's JSON decoder.
        let Some(v) = obj.get(field.json).filter(|v| !v.is_null()) else {
            continue;
        };
        let path = Path::Key(path, field.json);
        match field.label {
            Label::Optional | Label::Inline => {
                single(msg, field, field.number, v, out, &path, depth)?
            }
            Label::Repeated => {
                let Value::Array(items) = v else {
                    return Err(err(
                        msg,
                        &path,
                        format!("expected an array, found {}", type_name(v)),
                    ));
                };
                for (i, item) in items.iter().enumerate() {
                    single(
                        msg,
                        field,
                        field.number,
                        item,
                        out,
                        &Path::Index(&path, i),
                        depth,
                    )?;
                }
            }
            Label::Map => {
                let Value::Object(m) = v else {
                    return Err(err(
                        msg,
                        &path,
                        format!("expected an object, found {}", type_name(v)),
                    ));
                };
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut entry = Vec::new();
                for k in keys {
                    entry.clear();
                    put_bytes(&mut entry, 1, k.as_bytes());
                    single(
                        msg,
                        field,
                        2,
                        &m[k],
                        &mut entry,
                        &Path::Key(&path, k),
                        depth,
                    )?;
                    put_bytes(out, field.number, &entry);
                }
            }
        }
    }
    Ok(())
}

fn nested(
    msg: &'static Message,
    field: &Field,
    number: u32,
    v: &Value,
    out: &mut Vec<u8>,
    path: &Path<'_>,
    depth: usize,
) -> Result<(), Error> {
    let Ty::Msg(i) = field.ty else {
        return Err(err(msg, path, "table error: inline field is not a message"));
    };
    let mut buf = Vec::new();
    message(Message::at(i), v, &mut buf, path, depth + 1)?;
    put_bytes(out, number, &buf);
    Ok(())
}

/// Writes one value of `field` under field number `number`.
fn single(
    msg: &'static Message,
    field: &Field,
    number: u32,
    v: &Value,
    out: &mut Vec<u8>,
    path: &Path<'_>,
    depth: usize,
) -> Result<(), Error> {
    let mismatch = |want: &str| {
        err(
            msg,
            path,
            format!("expected {want}, found {}", type_name(v)),
        )
    };
    if v.is_null() {
        // A null map value or list item is Go's zero value, which Go writes out.
        match field.ty {
            Ty::Str | Ty::Bytes | Ty::Msg(_) => put_bytes(out, number, b""),
            Ty::Int32 | Ty::Int64 | Ty::Bool => put_int(out, number, 0),
            Ty::Double => {
                put_key(out, number, FIXED64);
                out.extend_from_slice(&0f64.to_le_bytes());
            }
        }
        return Ok(());
    }
    match field.ty {
        Ty::Str => put_bytes(
            out,
            number,
            v.as_str().ok_or_else(|| mismatch("a string"))?.as_bytes(),
        ),
        Ty::Bytes => {
            let s = v.as_str().ok_or_else(|| mismatch("a base64 string"))?;
            let b = BASE64
                .decode(s)
                .map_err(|e| err(msg, path, format!("invalid base64: {e}")))?;
            put_bytes(out, number, &b);
        }
        Ty::Int32 => {
            let n = integer(v)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| mismatch("a 32-bit integer"))?;
            put_int(out, number, i64::from(n));
        }
        Ty::Int64 => put_int(
            out,
            number,
            integer(v).ok_or_else(|| mismatch("a 64-bit integer"))?,
        ),
        Ty::Bool => put_int(
            out,
            number,
            i64::from(v.as_bool().ok_or_else(|| mismatch("a boolean"))?),
        ),
        Ty::Double => {
            let d = v.as_f64().ok_or_else(|| mismatch("a number"))?;
            put_key(out, number, FIXED64);
            out.extend_from_slice(&d.to_le_bytes());
        }
        Ty::Msg(_) => nested(msg, field, number, v, out, path, depth)?,
    }
    Ok(())
}

/// An integer from JSON; also integral floats such as `3.0`, which YAML tooling produces.
fn integer(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let d = v.as_f64()?;
    (d.fract() == 0.0 && d.abs() < 9.2e18).then_some(d as i64)
}

// === special messages ===

fn special(
    msg: &'static Message,
    v: &Value,
    out: &mut Vec<u8>,
    path: &Path<'_>,
    depth: usize,
) -> Result<(), Error> {
    let mismatch = |want: &str| {
        err(
            msg,
            path,
            format!("expected {want}, found {}", type_name(v)),
        )
    };
    let sub = |number: u32, v: &Value, out: &mut Vec<u8>, path: &Path<'_>| -> Result<(), Error> {
        let m = msg
            .field_msg(number)
            .ok_or_else(|| err(msg, path, "table error: missing schema field"))?;
        let mut buf = Vec::new();
        message(m, v, &mut buf, path, depth + 1)?;
        put_bytes(out, number, &buf);
        Ok(())
    };
    match msg.special {
        Special::None => unreachable!("special() is only called for special messages"),
        Special::Time | Special::MicroTime => {
            let s = v
                .as_str()
                .ok_or_else(|| mismatch("an RFC 3339 time string"))?;
            let (secs, nanos) = time::parse_rfc3339(s).ok_or_else(|| {
                err(
                    msg,
                    path,
                    format!("{s:?} is not an RFC 3339 time like 2006-01-02T15:04:05Z"),
                )
            })?;
            put_int(out, 1, secs);
            put_int(out, 2, i64::from(nanos));
        }
        Special::Duration => {
            let s = v.as_str().ok_or_else(|| mismatch("a duration string"))?;
            let nanos = time::parse_duration(s).ok_or_else(|| {
                err(
                    msg,
                    path,
                    format!("{s:?} is not a Go duration like 1h2m3.5s"),
                )
            })?;
            put_int(out, 1, nanos);
        }
        Special::Quantity => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(mismatch("a quantity string")),
            };
            put_bytes(out, 1, s.as_bytes());
        }
        Special::IntOrString => match v {
            Value::String(s) => {
                put_int(out, 1, 1);
                put_int(out, 2, 0);
                put_bytes(out, 3, s.as_bytes());
            }
            _ => {
                let n = integer(v)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| mismatch("a 32-bit integer or a string"))?;
                put_int(out, 1, 0);
                put_int(out, 2, i64::from(n));
                put_bytes(out, 3, b"");
            }
        },
        Special::RawExtension | Special::FieldsV1 | Special::Json => {
            let raw = serde_json::to_vec(v).map_err(|e| err(msg, path, e.to_string()))?;
            put_bytes(out, 1, &raw);
        }
        Special::SchemaOrArray => match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    sub(2, item, out, &Path::Index(path, i))?;
                }
            }
            _ => sub(1, v, out, path)?,
        },
        Special::SchemaOrBool => match v {
            Value::Bool(b) => put_int(out, 1, i64::from(*b)),
            _ => {
                put_int(out, 1, 1);
                sub(2, v, out, path)?;
            }
        },
        Special::SchemaOrStringArray => match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let s = item
                        .as_str()
                        .ok_or_else(|| err(msg, &Path::Index(path, i), "expected a string"))?;
                    put_bytes(out, 2, s.as_bytes());
                }
            }
            _ => sub(1, v, out, path)?,
        },
        Special::StringList => {
            let Value::Array(items) = v else {
                return Err(mismatch("an array of strings"));
            };
            for (i, item) in items.iter().enumerate() {
                let s = item
                    .as_str()
                    .ok_or_else(|| err(msg, &Path::Index(path, i), "expected a string"))?;
                put_bytes(out, 1, s.as_bytes());
            }
        }
    }
    Ok(())
}
