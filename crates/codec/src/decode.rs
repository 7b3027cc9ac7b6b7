//! Protobuf bytes -> Kubernetes JSON, driven by the message table.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use crate::desc::{Field, Label, Message, Special, Ty};
use crate::wire::{FIXED32, FIXED64, LEN, Reader, VARINT, WireError};
use crate::{Error, MAX_DEPTH, time};

/// One field value as read off the wire, before the table gives it meaning.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Len(&'a [u8], usize),
}

impl Raw<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            Raw::Varint(_) => VARINT,
            Raw::Fixed64(_) => FIXED64,
            Raw::Fixed32 => FIXED32,
            Raw::Len(..) => LEN,
        }
    }
}

/// Reads every field of one message: (field number, value, offset of the field's key).
fn scan<'a>(
    message: &'static str,
    buf: &'a [u8],
    base: usize,
) -> impl Iterator<Item = Result<(u32, Raw<'a>, usize), Error>> + 'a {
    let mut r = Reader::new(buf, base);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || r.is_empty() {
            return None;
        }
        let at = r.offset();
        let item = (|| {
            let (number, wire) = r.key().map_err(|e| (0, e))?;
            let raw = match wire {
                VARINT => Raw::Varint(r.varint().map_err(|e| (number, e))?),
                FIXED64 => Raw::Fixed64(r.fixed64().map_err(|e| (number, e))?),
                FIXED32 => {
                    r.bytes(4).map_err(|e| (number, e))?;
                    Raw::Fixed32
                }
                LEN => {
                    let (b, start) = r.len_delimited().map_err(|e| (number, e))?;
                    Raw::Len(b, start)
                }
                other => return Err((number, WireError::UnsupportedWireType(other))),
            };
            Ok((number, raw, at))
        })();
        Some(item.map_err(|(field, e): (u32, WireError)| {
            failed = true;
            Error::decode(message, field, at, e.describe())
        }))
    })
}

fn wire_mismatch(msg: &Message, field: u32, at: usize, raw: Raw<'_>, ty: Ty) -> Error {
    Error::decode(
        msg.name,
        field,
        at,
        format!("wire type {} does not fit a {ty:?} field", raw.wire_type()),
    )
}

/// Decodes the protobuf body of `msg` (no envelope) into its JSON form.
pub(crate) fn message(
    msg: &'static Message,
    buf: &[u8],
    base: usize,
    depth: usize,
) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::decode(
            msg.name,
            0,
            base,
            format!("messages nested deeper than {MAX_DEPTH}"),
        ));
    }
    if msg.special != Special::None {
        return special(msg, buf, base, depth);
    }
    let mut obj = Map::new();
    fields_into(msg, buf, base, depth, &mut obj)?;
    Ok(Value::Object(obj))
}

fn fields_into(
    msg: &'static Message,
    buf: &[u8],
    base: usize,
    depth: usize,
    obj: &mut Map<String, Value>,
) -> Result<(), Error> {
    for item in scan(msg.name, buf, base) {
        let (number, raw, at) = item?;
        let Some(field) = msg.field(number) else {
            continue; // Unknown fields are skipped, as Go does.
        };
        match field.label {
            Label::Optional => {
                let v = value(msg, field, raw, at, depth)?;
                obj.insert(field.json.to_owned(), v);
            }
            Label::Repeated => {
                let slot = obj
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(items) = slot else {
                    unreachable!("just made an array")
                };
                repeated(msg, field, raw, at, depth, items)?;
            }
            Label::Map => {
                let Raw::Len(entry, start) = raw else {
                    return Err(wire_mismatch(msg, number, at, raw, field.ty));
                };
                let (k, v) = map_entry(msg, field, entry, start, depth)?;
                let slot = obj
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(m) = slot {
                    m.insert(k, v);
                }
            }
            Label::Inline => {
                let (Raw::Len(sub, start), Ty::Msg(i)) = (raw, field.ty) else {
                    return Err(wire_mismatch(msg, number, at, raw, field.ty));
                };
                check_depth(msg, number, at, depth)?;
                fields_into(Message::at(i), sub, start, depth + 1, obj)?;
            }
        }
    }
    Ok(())
}

fn check_depth(msg: &Message, field: u32, at: usize, depth: usize) -> Result<(), Error> {
    if depth >= MAX_DEPTH {
        return Err(Error::decode(
            msg.name,
            field,
            at,
            format!("messages nested deeper than {MAX_DEPTH}"),
        ));
    }
    Ok(())
}

fn repeated(
    msg: &'static Message,
    field: &Field,
    raw: Raw<'_>,
    at: usize,
    depth: usize,
    items: &mut Vec<Value>,
) -> Result<(), Error> {
    let packable = matches!(field.ty, Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Double);
    match raw {
        Raw::Len(packed, start) if packable => {
            // Go writes these unpacked, but proto2 parsers must accept the packed form too.
            let mut r = Reader::new(packed, start);
            while !r.is_empty() {
                let at = r.offset();
                let one = if field.ty == Ty::Double {
                    r.fixed64().map(Raw::Fixed64)
                } else {
                    r.varint().map(Raw::Varint)
                };
                let one =
                    one.map_err(|e| Error::decode(msg.name, field.number, at, e.describe()))?;
                items.push(value(msg, field, one, at, depth)?);
            }
        }
        _ => items.push(value(msg, field, raw, at, depth)?),
    }
    Ok(())
}

fn map_entry(
    msg: &'static Message,
    field: &Field,
    entry: &[u8],
    base: usize,
    depth: usize,
) -> Result<(String, Value), Error> {
    let mut key = String::new();
    let mut val = None;
    for item in scan(msg.name, entry, base) {
        let (number, raw, at) = item?;
        match number {
            1 => match raw {
                Raw::Len(b, _) => key = utf8(msg, field.number, at, b)?,
                _ => return Err(wire_mismatch(msg, field.number, at, raw, Ty::Str)),
            },
            2 => val = Some(value(msg, field, raw, at, depth)?),
            _ => {}
        }
    }
    let val = match val {
        Some(v) => v,
        None => value(msg, field, zero_of(field.ty), base, depth)?,
    };
    Ok((key, val))
}

/// The wire value that decodes to a type's zero value (a map entry may leave out its value).
fn zero_of(ty: Ty) -> Raw<'static> {
    match ty {
        Ty::Double => Raw::Fixed64(0),
        Ty::Int32 | Ty::Int64 | Ty::Bool => Raw::Varint(0),
        Ty::Str | Ty::Bytes | Ty::Msg(_) => Raw::Len(&[], 0),
    }
}

fn utf8(msg: &Message, field: u32, at: usize, b: &[u8]) -> Result<String, Error> {
    String::from_utf8(b.to_vec())
        .map_err(|e| Error::decode(msg.name, field, at, format!("string is not UTF-8: {e}")))
}

fn value(
    msg: &'static Message,
    field: &Field,
    raw: Raw<'_>,
    at: usize,
    depth: usize,
) -> Result<Value, Error> {
    let n = field.number;
    Ok(match (field.ty, raw) {
        (Ty::Str, Raw::Len(b, _)) => Value::String(utf8(msg, n, at, b)?),
        (Ty::Bytes, Raw::Len(b, _)) => Value::String(BASE64.encode(b)),
        // Go truncates an over-wide varint to the field's width.
        (Ty::Int32, Raw::Varint(v)) => Value::from(v as i32),
        (Ty::Int64, Raw::Varint(v)) => Value::from(v as i64),
        (Ty::Bool, Raw::Varint(v)) => Value::Bool(v != 0),
        (Ty::Double, Raw::Fixed64(bits)) => double(f64::from_bits(bits)).ok_or_else(|| {
            Error::decode(
                msg.name,
                n,
                at,
                "double is NaN or infinite, which JSON cannot hold".to_owned(),
            )
        })?,
        (Ty::Msg(i), Raw::Len(b, start)) => {
            check_depth(msg, n, at, depth)?;
            message(Message::at(i), b, start, depth + 1)?
        }
        (ty, raw) => return Err(wire_mismatch(msg, n, at, raw, ty)),
    })
}

/// JSON for a double the way Go prints it: integral values without a fraction.
fn double(d: f64) -> Option<Value> {
    if d.fract() == 0.0 && d.abs() < 9_007_199_254_740_992.0 {
        return Some(Value::from(d as i64));
    }
    Number::from_f64(d).map(Value::Number)
}

// === special messages ===

fn special(msg: &'static Message, buf: &[u8], base: usize, depth: usize) -> Result<Value, Error> {
    let mut ints = [0u64; 4];
    let mut lens: [Option<(&[u8], usize)>; 4] = [None; 4];
    let mut repeated: Vec<(u32, &[u8], usize)> = Vec::new();
    for item in scan(msg.name, buf, base) {
        let (number, raw, at) = item?;
        let slot = number as usize;
        match raw {
            Raw::Varint(v) if slot < 4 => ints[slot] = v,
            Raw::Len(b, start) if slot < 4 => {
                lens[slot] = Some((b, start));
                repeated.push((number, b, start));
            }
            _ if slot < 4 => return Err(wire_mismatch(msg, number, at, raw, Ty::Bytes)),
            _ => {}
        }
    }
    let bad = |reason: String| Error::decode(msg.name, 0, base, reason);
    let sub = |number: u32, (b, start): (&[u8], usize)| -> Result<Value, Error> {
        let m = msg
            .field_msg(number)
            .ok_or_else(|| bad(format!("table has no message field {number}")))?;
        check_depth(msg, number, start, depth)?;
        message(m, b, start, depth + 1)
    };
    let string = |slot: usize| -> Result<String, Error> {
        lens[slot].map_or(Ok(String::new()), |(b, start)| {
            utf8(msg, slot as u32, start, b)
        })
    };
    Ok(match msg.special {
        Special::None => unreachable!("special() is only called for special messages"),
        Special::Time | Special::MicroTime => {
            if buf.is_empty() {
                return Ok(Value::Null); // Go writes the zero time as an empty message.
            }
            let total = i128::from(ints[1] as i64) * 1_000_000_000 + i128::from(ints[2] as i32);
            let secs = i64::try_from(total.div_euclid(1_000_000_000))
                .map_err(|_| bad("timestamp out of range".to_owned()))?;
            let nanos = total.rem_euclid(1_000_000_000) as u32;
            let micros = (msg.special == Special::MicroTime).then_some(nanos / 1000);
            let text = time::format_rfc3339(secs, micros)
                .ok_or_else(|| bad(format!("timestamp {secs}s is outside years 0-9999")))?;
            Value::String(text)
        }
        Special::Duration => Value::String(time::format_duration(ints[1] as i64)),
        Special::Quantity => {
            let s = string(1)?;
            Value::String(if s.is_empty() { "0".to_owned() } else { s })
        }
        Special::IntOrString => match ints[1] {
            0 => Value::from(ints[2] as i32),
            1 => Value::String(string(3)?),
            t => {
                return Err(bad(format!(
                    "IntOrString type {t} is neither 0 (int) nor 1 (string)"
                )));
            }
        },
        Special::RawExtension | Special::FieldsV1 | Special::Json => match lens[1] {
            None => Value::Null,
            Some((raw, start)) => embedded(msg, raw, start, depth)?,
        },
        Special::SchemaOrArray => {
            let items: Vec<_> = repeated.iter().filter(|r| r.0 == 2).collect();
            if !items.is_empty() {
                Value::Array(
                    items
                        .into_iter()
                        .map(|&(_, b, s)| sub(2, (b, s)))
                        .collect::<Result<_, _>>()?,
                )
            } else if let Some(schema) = lens[1] {
                sub(1, schema)?
            } else {
                Value::Null
            }
        }
        Special::SchemaOrBool => match lens[2] {
            Some(schema) => sub(2, schema)?,
            None => Value::Bool(ints[1] != 0),
        },
        Special::SchemaOrStringArray => {
            let props: Vec<_> = repeated.iter().filter(|r| r.0 == 2).collect();
            if !props.is_empty() {
                Value::Array(
                    props
                        .into_iter()
                        .map(|&(n, b, s)| utf8(msg, n, s, b).map(Value::String))
                        .collect::<Result<_, _>>()?,
                )
            } else if let Some(schema) = lens[1] {
                sub(1, schema)?
            } else {
                Value::Null
            }
        }
        Special::StringList => Value::Array(
            repeated
                .iter()
                .filter(|r| r.0 == 1)
                .map(|&(n, b, s)| utf8(msg, n, s, b).map(Value::String))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Embedded raw bytes: JSON, or (inside protobuf watch events and lists) a nested envelope.
fn embedded(msg: &Message, raw: &[u8], start: usize, depth: usize) -> Result<Value, Error> {
    if raw.starts_with(&crate::MAGIC) {
        check_depth(msg, 1, start, depth)?;
        return crate::envelope::decode_at(raw, start, None, depth + 1);
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw).map_err(|e| {
        Error::decode(
            msg.name,
            1,
            start,
            format!("embedded object is neither JSON nor a k8s protobuf envelope: {e}"),
        )
    })
}
