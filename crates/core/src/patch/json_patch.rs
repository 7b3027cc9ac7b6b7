//! JSON patch (RFC 6902) with JSON pointers (RFC 6901).

use serde_json::{Map, Value};

use super::{PatchError, json_type};

/// `copy` operations may copy at most this many bytes (of JSON) in one patch, together:
/// each copy can double the document, so without a bound a patch of a few dozen copies
/// builds terabytes. Far above the largest object a store takes (1.5 MiB).
pub const MAX_COPIED_BYTES: usize = 16 << 20;

/// Applies a JSON patch (RFC 6902): a list of `add`, `remove`, `replace`, `move`, `copy`
/// and `test` operations, in order. Atomic: on error `target` is left unchanged.
///
/// Array indices follow upstream (`evanphx/json-patch` as the Kubernetes API server uses
/// it): `-` appends for `add`, and a negative index counts from the end. `copy` operations
/// together may copy at most [`MAX_COPIED_BYTES`] ([`PatchError::CopyTooLarge`] beyond).
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let Value::Array(ops) = ops else {
        return Err(PatchError::NotAnOperationList {
            found: json_type(ops),
        });
    };
    // Work on a copy so a failing operation leaves the target untouched.
    let mut doc = target.clone();
    let mut copy_budget = MAX_COPIED_BYTES;
    for (index, op) in ops.iter().enumerate() {
        let op = Operation::parse(index, op)?;
        op.apply(index, &mut doc, &mut copy_budget)?;
    }
    *target = doc;
    Ok(())
}

/// The length of `v` as compact JSON (strings counted unescaped), or `None` once it exceeds
/// `budget` (it stops there, so measuring a huge value costs no more than the budget).
fn encoded_len_within(v: &Value, budget: usize) -> Option<usize> {
    fn walk(v: &Value, used: &mut usize, budget: usize) -> Option<()> {
        let here = match v {
            Value::Null | Value::Bool(true) => 4,
            Value::Bool(false) => 5,
            Value::Number(n) => n.to_string().len(),
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                *used += 2 + items.len().saturating_sub(1);
                for item in items {
                    walk(item, used, budget)?;
                }
                0
            }
            Value::Object(m) => {
                *used += 2 + m.len().saturating_sub(1);
                for (k, item) in m {
                    *used += k.len() + 3;
                    walk(item, used, budget)?;
                }
                0
            }
        };
        *used += here;
        (*used <= budget).then_some(())
    }
    let mut used = 0;
    walk(v, &mut used, budget)?;
    Some(used)
}

struct Pointer<'a> {
    raw: &'a str,
    tokens: Vec<String>,
}

impl<'a> Pointer<'a> {
    fn parse(index: usize, member: &str, raw: &'a str) -> Result<Self, PatchError> {
        if raw.is_empty() {
            return Ok(Pointer {
                raw,
                tokens: Vec::new(),
            });
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PatchError::InvalidOperation {
                index,
                reason: format!(
                    "{member} {raw:?} is not a JSON pointer: it must be empty or start with \"/\""
                ),
            });
        };
        Ok(Pointer {
            raw,
            tokens: rest.split('/').map(unescape_token).collect(),
        })
    }

    /// The pointer made of the first `n` tokens, for messages.
    fn prefix(&self, n: usize) -> String {
        self.tokens[..n]
            .iter()
            .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
            .collect()
    }
}

/// `~1` is `/` and `~0` is `~`; like upstream, any other `~` is kept literally.
fn unescape_token(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.peek() {
                Some('0') => {
                    chars.next();
                    out.push('~');
                    continue;
                }
                Some('1') => {
                    chars.next();
                    out.push('/');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

enum Kind {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

struct Operation<'a> {
    kind: Kind,
    name: &'a str,
    path: Pointer<'a>,
    from: Option<Pointer<'a>>,
    value: Option<&'a Value>,
}

// === impl Operation ===

impl<'a> Operation<'a> {
    fn parse(index: usize, op: &'a Value) -> Result<Self, PatchError> {
        let invalid = |reason: String| PatchError::InvalidOperation { index, reason };
        let Value::Object(obj) = op else {
            return Err(invalid(format!("must be an object, not {}", json_type(op))));
        };
        let name = match obj.get("op") {
            Some(Value::String(name)) => name.as_str(),
            Some(other) => {
                return Err(invalid(format!(
                    "\"op\" must be a string, not {}",
                    json_type(other)
                )));
            }
            None => return Err(invalid("missing \"op\"".to_string())),
        };
        let kind = match name {
            "add" => Kind::Add,
            "remove" => Kind::Remove,
            "replace" => Kind::Replace,
            "move" => Kind::Move,
            "copy" => Kind::Copy,
            "test" => Kind::Test,
            other => {
                return Err(invalid(format!(
                    "unknown op {other:?} (expected add, remove, replace, move, copy or test)"
                )));
            }
        };
        let pointer = |member: &str| -> Result<Pointer<'a>, PatchError> {
            match obj.get(member) {
                Some(Value::String(raw)) => Pointer::parse(index, member, raw),
                Some(other) => Err(PatchError::InvalidOperation {
                    index,
                    reason: format!("{member:?} must be a string, not {}", json_type(other)),
                }),
                None => Err(PatchError::InvalidOperation {
                    index,
                    reason: format!("{name} operation is missing {member:?}"),
                }),
            }
        };
        let path = pointer("path")?;
        let from = match kind {
            Kind::Move | Kind::Copy => Some(pointer("from")?),
            _ => None,
        };
        let value = match kind {
            Kind::Add | Kind::Replace | Kind::Test => Some(
                obj.get("value")
                    .ok_or_else(|| invalid(format!("{name} operation is missing \"value\"")))?,
            ),
            _ => None,
        };
        Ok(Operation {
            kind,
            name,
            path,
            from,
            value,
        })
    }

    fn apply(
        &self,
        index: usize,
        doc: &mut Value,
        copy_budget: &mut usize,
    ) -> Result<(), PatchError> {
        let not_found = |pointer: &Pointer<'_>, reason: String| PatchError::PathNotFound {
            index,
            op: self.name.to_string(),
            pointer: pointer.raw.to_string(),
            reason,
        };
        let path = &self.path;
        let value = || self.value.cloned().unwrap_or(Value::Null);
        match self.kind {
            Kind::Add => add(doc, path, value()).map_err(|r| not_found(path, r)),
            Kind::Remove => remove(doc, path).map(drop).map_err(|r| not_found(path, r)),
            Kind::Replace => {
                let slot =
                    resolve_mut(doc, path, path.tokens.len()).map_err(|r| not_found(path, r))?;
                *slot = value();
                Ok(())
            }
            Kind::Move => {
                let from = self.from.as_ref().expect("move has from");
                if from.tokens == path.tokens {
                    return resolve(doc, from).map(drop).map_err(|r| not_found(from, r));
                }
                if path.tokens.len() > from.tokens.len() && path.tokens.starts_with(&from.tokens) {
                    return Err(PatchError::MoveIntoChild {
                        index,
                        from: from.raw.to_string(),
                        path: path.raw.to_string(),
                    });
                }
                let moved = remove(doc, from).map_err(|r| not_found(from, r))?;
                add(doc, path, moved).map_err(|r| not_found(path, r))
            }
            Kind::Copy => {
                let from = self.from.as_ref().expect("copy has from");
                let source = resolve(doc, from).map_err(|r| not_found(from, r))?;
                *copy_budget = copy_budget
                    .checked_sub(encoded_len_within(source, *copy_budget).ok_or(
                        PatchError::CopyTooLarge {
                            index,
                            limit: MAX_COPIED_BYTES,
                        },
                    )?)
                    .expect("within the budget");
                let copied = source.clone();
                add(doc, path, copied).map_err(|r| not_found(path, r))
            }
            Kind::Test => self.test(index, doc),
        }
    }

    fn test(&self, index: usize, doc: &Value) -> Result<(), PatchError> {
        let expected = self.value.expect("test has value");
        let failed = |found: Option<&Value>| PatchError::TestFailed {
            index,
            path: self.path.raw.to_string(),
            expected: expected.to_string(),
            found: found.map(Value::to_string),
        };
        match resolve(doc, &self.path) {
            Ok(found) if json_equal(found, expected) => Ok(()),
            Ok(found) => Err(failed(Some(found))),
            // Upstream treats an absent member as null, so testing it against null passes
            // (when its parent exists).
            Err(_)
                if expected.is_null()
                    && !self.path.tokens.is_empty()
                    && resolve_prefix(doc, &self.path, self.path.tokens.len() - 1)
                        .is_ok_and(Value::is_object) =>
            {
                Ok(())
            }
            Err(_) => Err(failed(None)),
        }
    }
}

fn add(doc: &mut Value, ptr: &Pointer<'_>, value: Value) -> Result<(), String> {
    let Some((last, _)) = ptr.tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let depth = ptr.tokens.len() - 1;
    match resolve_mut(doc, ptr, depth)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let at = insert_index(last, items.len())?;
            items.insert(at, value);
            Ok(())
        }
        other => Err(cannot_address(ptr, depth, other)),
    }
}

fn remove(doc: &mut Value, ptr: &Pointer<'_>) -> Result<Value, String> {
    let Some((last, _)) = ptr.tokens.split_last() else {
        return Err("cannot remove the whole document".to_string());
    };
    let depth = ptr.tokens.len() - 1;
    match resolve_mut(doc, ptr, depth)? {
        Value::Object(map) => map
            .shift_remove(last)
            .ok_or_else(|| format!("{:?} does not exist", ptr.prefix(depth + 1))),
        Value::Array(items) => {
            let at = element_index(last, items.len())?;
            Ok(items.remove(at))
        }
        other => Err(cannot_address(ptr, depth, other)),
    }
}

fn resolve<'v>(doc: &'v Value, ptr: &Pointer<'_>) -> Result<&'v Value, String> {
    resolve_prefix(doc, ptr, ptr.tokens.len())
}

/// The value at the first `depth` tokens of `ptr`.
fn resolve_prefix<'v>(
    doc: &'v Value,
    ptr: &Pointer<'_>,
    depth: usize,
) -> Result<&'v Value, String> {
    let mut cur = doc;
    for (i, token) in ptr.tokens[..depth].iter().enumerate() {
        cur = match cur {
            Value::Object(map) => map.get(token).ok_or_else(|| missing(ptr, i))?,
            Value::Array(items) => &items[element_index(token, items.len())?],
            other => return Err(cannot_address(ptr, i, other)),
        };
    }
    Ok(cur)
}

fn resolve_mut<'v>(
    doc: &'v mut Value,
    ptr: &Pointer<'_>,
    depth: usize,
) -> Result<&'v mut Value, String> {
    let mut cur = doc;
    for (i, token) in ptr.tokens[..depth].iter().enumerate() {
        cur = match cur {
            Value::Object(map) => map.get_mut(token).ok_or_else(|| missing(ptr, i))?,
            Value::Array(items) => {
                let at = element_index(token, items.len())?;
                &mut items[at]
            }
            other => return Err(cannot_address(ptr, i, other)),
        };
    }
    Ok(cur)
}

fn missing(ptr: &Pointer<'_>, i: usize) -> String {
    format!("{:?} does not exist", ptr.prefix(i + 1))
}

fn cannot_address(ptr: &Pointer<'_>, i: usize, found: &Value) -> String {
    let at = ptr.prefix(i);
    let at = if at.is_empty() {
        "the document".to_string()
    } else {
        format!("{at:?}")
    };
    format!(
        "{at} is {}, which has no member {:?}",
        json_type(found),
        ptr.tokens[i]
    )
}

/// Parses an array index token like Go's `strconv.Atoi` (an optional sign, then digits).
fn parse_signed(token: &str) -> Option<i64> {
    let digits = token.strip_prefix(['-', '+']).unwrap_or(token);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

/// The index of an existing element (`0..len`, or `-len..0` from the end).
fn element_index(token: &str, len: usize) -> Result<usize, String> {
    if token == "-" {
        return Err(format!(
            "index \"-\" refers past the end of the list ({len} elements)"
        ));
    }
    let i = parse_signed(token).ok_or_else(|| format!("{token:?} is not a valid list index"))?;
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let at = if i < 0 { i + len_i } else { i };
    if (0..len_i).contains(&at) {
        Ok(at as usize)
    } else {
        Err(format!(
            "index {i} is out of bounds (the list has {len} elements)"
        ))
    }
}

/// The position to insert at (`0..=len`, `-` for the end, or negative from the end).
fn insert_index(token: &str, len: usize) -> Result<usize, String> {
    if token == "-" {
        return Ok(len);
    }
    let i = parse_signed(token).ok_or_else(|| format!("{token:?} is not a valid list index"))?;
    let slots = i64::try_from(len).unwrap_or(i64::MAX - 1) + 1;
    let at = if i < 0 { i + slots } else { i };
    if (0..slots).contains(&at) {
        Ok(at as usize)
    } else {
        Err(format!(
            "index {i} is out of bounds for insertion (the list has {len} elements)"
        ))
    }
}

/// Equality where numbers compare by value (`1` equals `1.0`), as RFC 6902 asks.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        _ => a == b,
    }
}

fn objects_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len()
        && x.iter()
            .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::encoded_len_within;

    #[test]
    fn encoded_length_is_the_compact_json_length_and_stops_at_the_budget() {
        for v in [
            json!(null),
            json!(false),
            json!(-12.5),
            json!([]),
            json!({}),
            json!({"a": [1, true, "xy", {"b": null}], "cc": {}}),
        ] {
            let len = v.to_string().len();
            assert_eq!(encoded_len_within(&v, len), Some(len), "{v}");
            assert_eq!(encoded_len_within(&v, len - 1), None, "{v}");
        }
    }
}
