//! [`SchemaNode`]: a cursor into a schema, following `$ref`s, for strategic merge patch and
//! field validation.

use serde_json::{Map, Value};

use crate::defs::{REF_PREFIX, definitions};

/// One place in a schema: the schema as written where it is used (carrying field-level
/// extensions such as the patch strategy) and the schema it resolves to after `$ref`s.
#[derive(Clone, Copy, Debug)]
pub struct SchemaNode<'a> {
    defs: &'a Map<String, Value>,
    /// The schema at the use site (a property, the items of a list, a map's values).
    site: &'a Value,
    /// `site` with `$ref` / single-`allOf` indirections followed.
    resolved: &'a Value,
}

impl SchemaNode<'static> {
    /// The schema of a built-in kind (`apps`, `v1`, `Deployment`), or `None` for unknown kinds.
    pub fn for_kind(group: &str, version: &str, kind: &str) -> Option<SchemaNode<'static>> {
        let defs = definitions();
        let schema = defs.get(defs.kind_name(group, version, kind)?)?;
        Some(SchemaNode::new(schema, defs.schemas()))
    }
}

impl<'a> SchemaNode<'a> {
    /// A node over `schema`, resolving `#/components/schemas/<name>` references in `defs`.
    /// Custom resources pass their (reference-free) `openAPIV3Schema` and any map.
    pub fn new(schema: &'a Value, defs: &'a Map<String, Value>) -> SchemaNode<'a> {
        SchemaNode {
            defs,
            site: schema,
            resolved: resolve(defs, schema),
        }
    }

    fn child(&self, site: &'a Value) -> SchemaNode<'a> {
        SchemaNode {
            defs: self.defs,
            site,
            resolved: resolve(self.defs, site),
        }
    }

    /// The schema (after references) this node stands for.
    pub fn schema(&self) -> &'a Value {
        self.resolved
    }

    /// The definition name this node refers to, if it is a reference.
    pub fn type_name(&self) -> Option<&'a str> {
        ref_name(self.site)
    }

    /// The field's description, falling back to the referenced type's description.
    pub fn description(&self) -> Option<&'a str> {
        self.site
            .get("description")
            .or_else(|| self.resolved.get("description"))
            .and_then(Value::as_str)
    }

    /// The schema of object field `name`.
    pub fn field(&self, name: &str) -> Option<SchemaNode<'a>> {
        self.resolved
            .get("properties")?
            .get(name)
            .map(|s| self.child(s))
    }

    /// The schema of list items, or of a map's values.
    pub fn items(&self) -> Option<SchemaNode<'a>> {
        if let Some(items) = self.resolved.get("items") {
            return Some(self.child(items));
        }
        match self.resolved.get("additionalProperties") {
            Some(v @ Value::Object(_)) => Some(self.child(v)),
            _ => None,
        }
    }

    /// A string extension declared at the use site or on the resolved type.
    fn extension(&self, name: &str) -> Option<&'a Value> {
        self.site.get(name).or_else(|| self.resolved.get(name))
    }

    /// `x-kubernetes-patch-strategy` split into parts (`merge`, `retainKeys`).
    pub fn patch_strategy(&self) -> impl Iterator<Item = &'a str> {
        self.extension("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
    }

    /// True when the patch strategy includes `merge`.
    pub fn merges(&self) -> bool {
        self.patch_strategy().any(|s| s == "merge")
    }

    /// True when the patch strategy includes `retainKeys`.
    pub fn retains_keys(&self) -> bool {
        self.patch_strategy().any(|s| s == "retainKeys")
    }

    /// True when the patch strategy is `replace` (a patch object replaces the original one).
    pub fn replaces(&self) -> bool {
        self.patch_strategy().any(|s| s == "replace")
    }

    /// `x-kubernetes-patch-merge-key`.
    pub fn merge_key(&self) -> Option<&'a str> {
        self.extension("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
    }

    /// `x-kubernetes-list-type` (`atomic`, `set`, `map`).
    pub fn list_type(&self) -> Option<&'a str> {
        self.extension("x-kubernetes-list-type")
            .and_then(Value::as_str)
    }

    /// `x-kubernetes-list-map-keys`.
    pub fn list_map_keys(&self) -> Vec<&'a str> {
        self.extension("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// `x-kubernetes-map-type` (`atomic`, `granular`).
    pub fn map_type(&self) -> Option<&'a str> {
        self.extension("x-kubernetes-map-type")
            .and_then(Value::as_str)
    }

    /// True when unknown fields below this node are kept (`x-kubernetes-preserve-unknown-fields`).
    pub fn preserves_unknown_fields(&self) -> bool {
        self.extension("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true)
    }
}

fn ref_name(schema: &Value) -> Option<&str> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.strip_prefix(REF_PREFIX);
    }
    match schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([only]) => ref_name(only),
        _ => None,
    }
}

fn resolve<'a>(defs: &'a Map<String, Value>, mut schema: &'a Value) -> &'a Value {
    // Bounded so a cyclic pair of bare references cannot loop forever.
    for _ in 0..8 {
        match ref_name(schema).and_then(|n| defs.get(n)) {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

// === impl MergeSchema ===

impl drover_core::patch::MergeSchema for SchemaNode<'_> {
    fn field(&self, name: &str) -> Option<Self> {
        SchemaNode::field(self, name)
    }

    fn items(&self) -> Option<Self> {
        SchemaNode::items(self)
    }

    fn strategy(&self) -> drover_core::patch::PatchStrategy {
        drover_core::patch::PatchStrategy {
            merge: self.merges(),
            retain_keys: self.retains_keys(),
            merge_key: self.merge_key().map(str::to_owned),
            replace: self.replaces(),
        }
    }
}
