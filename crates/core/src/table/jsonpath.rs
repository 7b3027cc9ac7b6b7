//! The subset of kubectl's JSONPath that CRD `additionalPrinterColumns` use.
//!
//! Supported: `.field`, `['field']` / `["field"]` (for keys with dots), `\.` inside a field
//! name, `[n]` and `[-n]`, `[*]` / `.*`, and filters `[?(@.path)]` /
//! `[?(@.path OP literal)]` with `==`, `!=`, `<`, `<=`, `>`, `>=` against a quoted string,
//! number or `true`/`false`. An optional `{…}` wrapper and leading `$` are accepted.
//! Missing keys yield no result, as with upstream's `AllowMissingKeys(true)`. Not supported:
//! recursive descent (`..`), slices (`[a:b]`), unions (`[a,b]`) and `range`.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Field(String),
    Index(i64),
    Wildcard,
    Filter(Box<Filter>),
}

#[derive(Clone, Debug, PartialEq)]
struct Filter {
    path: Vec<Segment>,
    test: Option<(Op, Value)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonPath {
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses `path`; the error says what was not understood.
    pub(crate) fn parse(path: &str) -> Result<JsonPath, String> {
        let mut p = path.trim();
        if let Some(inner) = p.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            p = inner.trim();
        }
        p = p.strip_prefix('$').unwrap_or(p);
        let (segments, rest) = parse_segments(p, false)?;
        if !rest.is_empty() {
            return Err(format!("unexpected {rest:?}"));
        }
        Ok(JsonPath { segments })
    }

    /// Every value the path selects, in document order.
    pub(crate) fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.segments, vec![root])
    }
}

/// Parses segments until the input ends (or, inside a filter, until an operator or `)`).
fn parse_segments(mut s: &str, in_filter: bool) -> Result<(Vec<Segment>, &str), String> {
    let mut out = Vec::new();
    loop {
        if let Some(rest) = s.strip_prefix("..") {
            return Err(format!(
                "recursive descent is not supported at {:?}",
                &s[..s.len() - rest.len()]
            ));
        } else if let Some(rest) = s.strip_prefix(".*") {
            out.push(Segment::Wildcard);
            s = rest;
        } else if let Some(rest) = s.strip_prefix('.') {
            let (field, rest) = parse_field(rest);
            if field.is_empty() {
                return Err(format!("empty field name before {rest:?}"));
            }
            out.push(Segment::Field(field));
            s = rest;
        } else if let Some(rest) = s.strip_prefix('[') {
            let close = bracket_end(rest).ok_or_else(|| format!("unclosed '[' in {s:?}"))?;
            out.push(parse_bracket(rest[..close].trim())?);
            s = &rest[close + 1..];
        } else if s.is_empty() || in_filter {
            return Ok((out, s));
        } else {
            return Err(format!("unexpected {s:?}"));
        }
    }
}

/// A field name: up to the next unescaped `.` or `[` (or, in filters, operator/space/`)`).
fn parse_field(s: &str) -> (String, &str) {
    let mut name = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    name.push(next);
                }
            }
            '.' | '[' | ' ' | '=' | '!' | '<' | '>' | ')' => return (name, &s[i..]),
            c => name.push(c),
        }
    }
    (name, "")
}

/// The index of the `]` closing a bracket, skipping quoted strings and nested brackets.
fn bracket_end(s: &str) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') if depth == 0 => return Some(i),
            (None, ']') => depth -= 1,
            _ => {}
        }
    }
    None
}

fn parse_bracket(inner: &str) -> Result<Segment, String> {
    if inner == "*" {
        return Ok(Segment::Wildcard);
    }
    if let Some(key) = unquote(inner) {
        return Ok(Segment::Field(key.to_owned()));
    }
    if let Some(expr) = inner.strip_prefix("?(").and_then(|s| s.strip_suffix(')')) {
        return parse_filter(expr.trim()).map(|f| Segment::Filter(Box::new(f)));
    }
    inner
        .parse()
        .map(Segment::Index)
        .map_err(|_| format!("unsupported subscript [{inner}]"))
}

fn unquote(s: &str) -> Option<&str> {
    let q = s.chars().next().filter(|c| matches!(c, '\'' | '"'))?;
    s.strip_prefix(q)?.strip_suffix(q)
}

fn parse_filter(expr: &str) -> Result<Filter, String> {
    let rest = expr
        .strip_prefix('@')
        .ok_or_else(|| format!("filter must start with '@': {expr:?}"))?;
    let (path, rest) = parse_segments(rest, true)?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(Filter { path, test: None });
    }
    let ops = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (op, literal) = ops
        .iter()
        .find_map(|(text, op)| rest.strip_prefix(text).map(|lit| (*op, lit.trim())))
        .ok_or_else(|| format!("unsupported filter operator in {rest:?}"))?;
    let value = match unquote(literal) {
        Some(s) => Value::from(s),
        None => serde_json::from_str::<Value>(literal)
            .ok()
            .filter(|v| v.is_number() || v.is_boolean())
            .ok_or_else(|| format!("unsupported filter literal {literal:?}"))?,
    };
    Ok(Filter {
        path,
        test: Some((op, value)),
    })
}

fn eval<'a>(segments: &[Segment], mut cur: Vec<&'a Value>) -> Vec<&'a Value> {
    for seg in segments {
        let mut next = Vec::new();
        for v in cur {
            match seg {
                Segment::Field(name) => next.extend(v.get(name.as_str())),
                Segment::Index(i) => {
                    if let Some(items) = v.as_array() {
                        let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(idx).ok().and_then(|i| items.get(i)));
                    }
                }
                Segment::Wildcard => match v {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(map) => next.extend(map.values()),
                    _ => {}
                },
                Segment::Filter(f) => {
                    if let Some(items) = v.as_array() {
                        next.extend(items.iter().filter(|item| f.matches(item)));
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        let found = eval(&self.path, vec![item]);
        let Some((op, literal)) = &self.test else {
            return !found.is_empty();
        };
        found.iter().any(|v| compare(v, *op, literal))
    }
}

fn compare(v: &Value, op: Op, literal: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (v, literal) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ord) {
        (Op::Ne, None) => true,
        (_, None) => false,
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path)
            .unwrap()
            .find(v)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn fields_indexes_wildcards_and_filters() {
        let obj = json!({
            "metadata": {"annotations": {"example.com/owner": "team-a"}},
            "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}]},
            "status": {"conditions": [
                {"type": "Synced", "status": "False"},
                {"type": "Ready", "status": "True"}
            ]}
        });
        assert_eq!(find(".spec.replicas", &obj), vec![json!(3)]);
        assert_eq!(find("{.spec.ports[1].port}", &obj), vec![json!(443)]);
        assert_eq!(find("$.spec.ports[-1].port", &obj), vec![json!(443)]);
        assert_eq!(
            find(".spec.ports[*].port", &obj),
            vec![json!(80), json!(443)]
        );
        assert_eq!(
            find(r#".status.conditions[?(@.type=="Ready")].status"#, &obj),
            vec![json!("True")]
        );
        assert_eq!(
            find(".status.conditions[?(@.type != 'Ready')].type", &obj),
            vec![json!("Synced")]
        );
        assert_eq!(
            find(".spec.ports[?(@.port > 100)].port", &obj),
            vec![json!(443)]
        );
        assert_eq!(
            find(r".metadata.annotations.example\.com/owner", &obj),
            vec![json!("team-a")]
        );
        assert_eq!(
            find(".metadata.annotations['example.com/owner']", &obj),
            vec![json!("team-a")]
        );
        assert!(find(".spec.missing.deeper", &obj).is_empty());
        assert!(find(".spec.ports[7]", &obj).is_empty());
    }

    #[test]
    fn unsupported_syntax_is_rejected_with_a_reason() {
        for bad in [
            "..spec",
            ".spec.ports[0:1]",
            ".spec[?(@.a ~ 1)]",
            "spec",
            ".spec.ports[",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} should not parse");
        }
    }
}
