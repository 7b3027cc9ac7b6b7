//! Upstream's element ordering for merged lists (`normalizeElementOrder`): the patch's
//! elements in the order the patch (or `$setElementOrder`) gives, the original's other
//! elements in their original order, and the two interleaved by original position.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// How list elements are identified when comparing positions.
#[derive(Clone, Copy)]
pub(super) enum Identity<'k> {
    /// By the value of a merge key (lists of objects).
    Key(&'k str),
    /// By the whole value (lists of primitives).
    Value,
}

impl Identity<'_> {
    pub(super) fn of(self, element: &Value) -> Option<&Value> {
        match self {
            Identity::Key(key) => element.get(key),
            Identity::Value => Some(element),
        }
    }
}

/// Orders a merged list: `in_patch` sorted by `patch_order`, `server_only` sorted by
/// `server_order`, then merged so that a server-only element precedes a patch element
/// exactly when both are in `server_order` and it comes first there.
///
/// The orders are lists of identities (see [`Identity::of`]).
pub(super) fn normalize(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Option<&Value>],
    server_order: &[Option<&Value>],
    identity: Identity<'_>,
) -> Vec<Value> {
    let in_patch = sort_by_order(in_patch, patch_order, identity);
    let server_only = sort_by_order(server_only, server_order, identity);
    merge_sorted(server_only, in_patch, server_order, identity)
}

/// A text that is the same for two values exactly when they compare equal (`==`): compact
/// JSON with object members sorted (`Map` equality ignores their order) and zero unsigned.
/// Lists are merged through sets and maps of these, not by comparing every pair of
/// elements: a patch of n elements against n would otherwise cost n² comparisons.
pub(super) fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Number(n) if n.as_f64() == Some(0.0) && n.is_f64() => out.push_str("0.0"),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                let mut members: Vec<(&String, &Value)> = m.iter().collect();
                members.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, item)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(k.as_str()).to_string());
                    out.push(':');
                    write(item, out);
                }
                out.push('}');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// A set of values, by [`canonical`] text.
#[derive(Default)]
pub(super) struct ValueSet(HashSet<String>);

impl ValueSet {
    pub(super) fn of<'v>(values: impl IntoIterator<Item = &'v Value>) -> ValueSet {
        ValueSet(values.into_iter().map(canonical).collect())
    }

    /// Adds `v`; false if it was there.
    pub(super) fn insert(&mut self, v: &Value) -> bool {
        self.0.insert(canonical(v))
    }

    pub(super) fn contains(&self, v: &Value) -> bool {
        self.0.contains(&canonical(v))
    }
}

/// The first position of each identity in an order list: what
/// `order.iter().position(|o| *o == id)` finds, without the scan.
pub(super) struct Positions(HashMap<Option<String>, usize>);

impl Positions {
    pub(super) fn of(order: &[Option<&Value>]) -> Positions {
        let mut map = HashMap::with_capacity(order.len());
        for (i, id) in order.iter().enumerate() {
            map.entry(id.map(canonical)).or_insert(i);
        }
        Positions(map)
    }

    pub(super) fn get(&self, id: Option<&Value>) -> Option<usize> {
        self.0.get(&id.map(canonical)).copied()
    }
}

/// A stable sort by position in `order`. Elements of an object list that carry
/// `$patch: delete` go last, as upstream.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Option<&Value>],
    identity: Identity<'_>,
) -> Vec<Value> {
    let (items, deletes): (Vec<Value>, Vec<Value>) = match identity {
        Identity::Key(_) => items
            .into_iter()
            .partition(|v| v.get("$patch").and_then(Value::as_str) != Some("delete")),
        Identity::Value => (items, Vec::new()),
    };
    let positions = Positions::of(order);
    let mut keyed: Vec<(Option<usize>, Value)> = items
        .into_iter()
        .map(|v| (positions.get(identity.of(&v)), v))
        .collect();
    if keyed.iter().all(|(p, _)| p.is_some()) {
        keyed.sort_by_key(|(p, _)| *p);
    } else {
        go_insertion_sort(&mut keyed);
    }
    keyed.into_iter().map(|(_, v)| v).chain(deletes).collect()
}

/// Upstream sorts with a comparator that calls an element missing from the order "less"
/// than anything. That is not an ordering, so the result is whatever Go's stable sort
/// does with it; for up to 20 elements that is an insertion sort, replayed here. (Only
/// malformed patches reach this: normally every element is in its order list.)
fn go_insertion_sort(items: &mut [(Option<usize>, Value)]) {
    let less = |a: Option<usize>, b: Option<usize>| match (a, b) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    };
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && less(items[j].0, items[j - 1].0) {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Option<&Value>],
    identity: Identity<'_>,
) -> Vec<Value> {
    let server_positions = Positions::of(server_order);
    let positions = |list: &[Value]| -> Vec<Option<usize>> {
        list.iter()
            .map(|v| server_positions.get(identity.of(v)))
            .collect()
    };
    let (left_pos, right_pos) = (positions(&left), positions(&right));
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().zip(left_pos).peekable();
    let mut right = right.into_iter().zip(right_pos).peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, l)), Some((_, r))) => matches!((l, r), (Some(l), Some(r)) if l < r),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next.map(|(v, _)| v));
    }
    out
}
