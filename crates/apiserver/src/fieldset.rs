//! Field sets: which fields of an object a manager owns, in the `FieldsV1` form of
//! `metadata.managedFields` (`f:` fields, `k:` associative-list items by key, `v:` set
//! members, `.` for an item itself). Lists are keyed by the kind's schema (list-map keys or
//! the patch merge key), as upstream's structured-merge-diff does.

use std::collections::{BTreeSet, HashMap};

use drover_schema::SchemaNode;
use serde_json::{Map, Value};

/// One path, e.g. `["f:spec", "f:containers", "k:{\"name\":\"web\"}", "f:image"]`.
pub(crate) type Path = Vec<String>;

/// A set of paths (leaves and `.` item markers).
pub(crate) type FieldSet = BTreeSet<Path>;

/// Metadata fields no manager owns (they are the server's).
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The schema of an object's kind (built-ins; `None` for kinds without one).
pub(crate) fn schema_of(obj: &Value) -> Option<SchemaNode<'static>> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    SchemaNode::for_kind(group, version, kind)
}

/// The fields of `obj` a writer sets: everything but `apiVersion`, `kind`, system metadata,
/// and `status` (or only `status`, for the status subresource).
pub(crate) fn fields(obj: &Value, subresource: Option<&str>) -> FieldSet {
    let schema = schema_of(obj);
    let mut out = FieldSet::new();
    let Some(m) = obj.as_object() else { return out };
    for (k, v) in m {
        let status_only = subresource == Some("status");
        if k == "apiVersion" || k == "kind" || (k == "status") != status_only {
            continue;
        }
        let child = schema.as_ref().and_then(|s| child_schema(s, k));
        let path = vec![format!("f:{k}")];
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for (mk, mv) in meta
                    .iter()
                    .filter(|(mk, _)| !SYSTEM_METADATA.contains(&mk.as_str()))
                {
                    let ms = child.as_ref().and_then(|s| child_schema(s, mk));
                    walk(
                        mv,
                        ms.as_ref(),
                        vec![path[0].clone(), format!("f:{mk}")],
                        &mut out,
                    );
                }
            }
            continue;
        }
        walk(v, child.as_ref(), path, &mut out);
    }
    out
}

fn child_schema<'a>(s: &SchemaNode<'a>, field: &str) -> Option<SchemaNode<'a>> {
    s.field(field).or_else(|| s.items())
}

/// How a list is keyed.
enum ListKind {
    Map(Vec<String>),
    Set,
    Atomic,
}

fn list_kind(schema: Option<&SchemaNode<'_>>, items: &[Value]) -> ListKind {
    let Some(s) = schema else {
        return ListKind::Atomic;
    };
    let keys: Vec<String> = s.list_map_keys().into_iter().map(str::to_owned).collect();
    match s.list_type() {
        Some("map") if !keys.is_empty() => return ListKind::Map(keys),
        Some("set") => return ListKind::Set,
        Some("atomic") => return ListKind::Atomic,
        _ => {}
    }
    if s.merges() {
        if let Some(k) = s.merge_key() {
            if items.iter().all(Value::is_object) {
                return ListKind::Map(vec![k.to_owned()]);
            }
        } else if items.iter().all(|i| !i.is_object() && !i.is_array()) {
            return ListKind::Set;
        }
    }
    ListKind::Atomic
}

fn item_key(item: &Value, keys: &[String]) -> String {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    format!("k:{}", Value::Object(m))
}

fn walk(v: &Value, schema: Option<&SchemaNode<'_>>, path: Path, out: &mut FieldSet) {
    match v {
        Value::Object(m)
            if !m.is_empty() && schema.is_none_or(|s| s.map_type() != Some("atomic")) =>
        {
            let free_form = schema.is_some_and(|s| s.preserves_unknown_fields())
                && schema.is_some_and(|s| s.field("x").is_none() && s.items().is_none());
            if free_form {
                out.insert(path);
                return;
            }
            for (k, child) in m {
                let cs = schema.and_then(|s| child_schema(s, k));
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                walk(child, cs.as_ref(), p, out);
            }
        }
        Value::Array(items) if !items.is_empty() => match list_kind(schema, items) {
            ListKind::Map(keys) => {
                let item_schema = schema.and_then(SchemaNode::items);
                for item in items {
                    let mut p = path.clone();
                    p.push(item_key(item, &keys));
                    let mut marker = p.clone();
                    marker.push(".".into());
                    out.insert(marker);
                    if let Some(m) = item.as_object() {
                        for (k, child) in m {
                            let cs = item_schema.as_ref().and_then(|s| child_schema(s, k));
                            let mut cp = p.clone();
                            cp.push(format!("f:{k}"));
                            walk(child, cs.as_ref(), cp, out);
                        }
                    }
                }
            }
            ListKind::Set => {
                for item in items {
                    let mut p = path.clone();
                    p.push(format!("v:{item}"));
                    out.insert(p);
                }
            }
            ListKind::Atomic => {
                out.insert(path);
            }
        },
        _ => {
            out.insert(path);
        }
    }
}

/// The `FieldsV1` JSON of a set.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for el in path {
            node = node
                .entry(el.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("nodes are objects");
        }
    }
    Value::Object(root)
}

/// Parses `FieldsV1` JSON.
pub(crate) fn from_fields_v1(v: &Value) -> FieldSet {
    fn rec(v: &Value, path: &mut Path, out: &mut FieldSet) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    path.push(k.clone());
                    rec(child, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut Vec::new(), &mut out);
    out
}

/// What a path element selects in a list: the item with these key values (`k:`), or the
/// member equal to a value (`v:`).
enum Selector {
    Key(Map<String, Value>),
    Member(Value),
}

impl Selector {
    fn parse(el: &str) -> Option<Selector> {
        if let Some(k) = el.strip_prefix("k:") {
            return serde_json::from_str(k).ok().map(Selector::Key);
        }
        let v = el.strip_prefix("v:")?;
        serde_json::from_str(v).ok().map(Selector::Member)
    }

    fn matches(&self, item: &Value) -> bool {
        match self {
            Selector::Key(key) => key.iter().all(|(kk, kv)| item.get(kk) == Some(kv)),
            Selector::Member(want) => item == want,
        }
    }

    /// Which index a list is looked up in (the key's field names, or the whole value), and
    /// the text to find there.
    fn index_and_text(&self) -> (String, String) {
        match self {
            Selector::Key(key) => {
                let mut names: Vec<&String> = key.keys().collect();
                names.sort();
                let values: Vec<&Value> = names.iter().map(|n| &key[n.as_str()]).collect();
                let text: Vec<String> = values.iter().map(|v| canonical(v)).collect();
                (format!("k{names:?}"), text.join("\0"))
            }
            Selector::Member(v) => ("v".to_owned(), canonical(v)),
        }
    }
}

/// A text equal for two values exactly when they are `==` (object members sorted, zero
/// unsigned).
pub(crate) fn canonical(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() && n.as_f64() == Some(0.0) => "0.0".to_owned(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        Value::Object(m) => {
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = members
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        scalar => scalar.to_string(),
    }
}

/// Path lookups in one object, with each list indexed (on first use) by the item keys or
/// values paths select by, so looking up every path of an object is not quadratic in its
/// list lengths (a list of n keyed items was scanned once per path: n² for a big object).
pub(crate) struct Lookup<'a> {
    root: &'a Value,
    /// (list address, index name) → item text → first position.
    lists: std::cell::RefCell<HashMap<(usize, String), HashMap<String, usize>>>,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(root: &'a Value) -> Lookup<'a> {
        Lookup {
            root,
            lists: Default::default(),
        }
    }

    /// The value a path points at.
    pub(crate) fn value_at(&self, path: &[String]) -> Option<&'a Value> {
        let mut cur = self.root;
        for el in path {
            cur = self.step(cur, el)?;
        }
        Some(cur)
    }

    fn step(&self, cur: &'a Value, el: &str) -> Option<&'a Value> {
        if el == "." {
            return Some(cur);
        }
        if let Some(f) = el.strip_prefix("f:") {
            return cur.get(f);
        }
        let items = cur.as_array()?;
        let selector = Selector::parse(el)?;
        let (index, text) = selector.index_and_text();
        let list = (std::ptr::from_ref(items) as usize, index);
        let mut lists = self.lists.borrow_mut();
        let positions = lists.entry(list).or_insert_with_key(|(_, index)| {
            let mut positions = HashMap::new();
            for (at, item) in items.iter().enumerate() {
                let text = match &selector {
                    Selector::Member(_) => Some(canonical(item)),
                    Selector::Key(key) => {
                        debug_assert!(index.starts_with('k'));
                        let mut names: Vec<&String> = key.keys().collect();
                        names.sort();
                        names
                            .iter()
                            .map(|n| item.get(n.as_str()).map(canonical))
                            .collect::<Option<Vec<String>>>()
                            .map(|texts| texts.join("\0"))
                    }
                };
                if let Some(text) = text {
                    positions.entry(text).or_insert(at);
                }
            }
            positions
        });
        let at = *positions.get(&text)?;
        let item = &items[at];
        debug_assert!(selector.matches(item));
        Some(item)
    }
}

/// Removes what a path points at (a field, a list item, a set member).
pub(crate) fn remove_path(obj: &mut Value, path: &[String]) {
    let (path, last) = match path.split_last() {
        Some((last, rest)) if last == "." => match rest.split_last() {
            Some((item, parent)) => (parent, item.as_str()),
            None => return,
        },
        Some((last, rest)) => (rest, last.as_str()),
        None => return,
    };
    let mut cur = obj;
    for el in path {
        let next = match step_mut(cur, el) {
            Some(n) => n,
            None => return,
        };
        cur = next;
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(selector) = Selector::parse(last)
        && let Some(arr) = cur.as_array_mut()
        && let Some(pos) = arr.iter().position(|item| selector.matches(item))
    {
        arr.remove(pos);
    }
}

fn step_mut<'a>(cur: &'a mut Value, el: &str) -> Option<&'a mut Value> {
    if let Some(f) = el.strip_prefix("f:") {
        return cur.get_mut(f);
    }
    let selector = Selector::parse(el)?;
    cur.as_array_mut()?
        .iter_mut()
        .find(|item| selector.matches(item))
}

/// True when `prefix` is a prefix of `path`.
pub(crate) fn has_prefix(path: &[String], prefix: &[String]) -> bool {
    path.len() >= prefix.len() && path[..prefix.len()] == *prefix
}

/// True when some path of `set` starts with `prefix` (or is it). The paths that do sort
/// together right from `prefix` on, so this is one ordered lookup, not a scan.
pub(crate) fn any_under(set: &FieldSet, prefix: &[String]) -> bool {
    use std::ops::Bound;
    set.range::<[String], _>((Bound::Included(prefix), Bound::Unbounded))
        .next()
        .is_some_and(|p| has_prefix(p, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn any_under_answers_like_a_scan_of_the_whole_set() {
        let path = |s: &str| -> Path { s.split('/').map(str::to_owned).collect() };
        // Neighbours that a string-prefix or an off-by-one range would confuse.
        let set: FieldSet = [
            "f:a/f:x",
            "f:ab",
            "f:b/k:{\"name\":\"c\"}/.",
            "f:b/k:{\"name\":\"c\"}/f:image",
            "f:c",
        ]
        .iter()
        .map(|s| path(s))
        .collect();
        let scan = |prefix: &[String]| set.iter().any(|p| has_prefix(p, prefix));
        for prefix in [
            "f:a",
            "f:a/f:x",
            "f:a/f:y",
            "f:ab",
            "f:aa",
            "f:b",
            "f:b/k:{\"name\":\"c\"}",
            "f:b/k:{\"name\":\"d\"}",
            "f:c/f:z",
            "f:d",
        ] {
            let prefix = path(prefix);
            assert_eq!(any_under(&set, &prefix), scan(&prefix), "{prefix:?}");
        }
        // Control: the checks above can fail — a path is found under its own prefix only.
        assert!(any_under(&set, &path("f:a")) && !any_under(&set, &path("f:aa")));
    }

    fn deploy() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx", "args": ["-x"]}]}}},
            "status": {"replicas": 2}
        })
    }

    #[test]
    fn containers_are_keyed_by_name_and_status_is_excluded() {
        let set = fields(&deploy(), None);
        let text: Vec<String> = set.iter().map(|p| p.join("/")).collect();
        assert!(
            text.contains(
                &"f:spec/f:template/f:spec/f:containers/k:{\"name\":\"web\"}/f:image".to_owned()
            ),
            "{text:?}"
        );
        assert!(
            text.contains(
                &"f:spec/f:template/f:spec/f:containers/k:{\"name\":\"web\"}/.".to_owned()
            )
        );
        assert!(text.contains(
            &"f:spec/f:template/f:spec/f:containers/k:{\"name\":\"web\"}/f:args".to_owned()
        ));
        assert!(text.contains(&"f:metadata/f:labels/f:app".to_owned()));
        assert!(!text.iter().any(|t| t.starts_with("f:status")
            || t.contains("f:name\"")
            || t == "f:metadata/f:name"));
        let round = from_fields_v1(&to_fields_v1(&set));
        assert_eq!(round, set);
    }

    #[test]
    fn paths_resolve_and_remove() {
        let mut d = deploy();
        let p: Path = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"web\"}",
            "f:image",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(Lookup::new(&d).value_at(&p), Some(&json!("nginx")));
        remove_path(&mut d, &p);
        assert!(
            d.pointer("/spec/template/spec/containers/0/image")
                .is_none()
        );
        let item: Path = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"web\"}",
            ".",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        remove_path(&mut d, &item);
        assert_eq!(
            d.pointer("/spec/template/spec/containers"),
            Some(&json!([]))
        );
    }
}
