//! Strategic merge patch, the server side of upstream's
//! `strategicpatch.StrategicMergePatch`.
//!
//! Maps merge recursively (except a field declaring the `replace` strategy, whose object the
//! patch replaces whole) and `null` deletes a key. Lists whose schema declares the
//! `merge` strategy merge: by the merge key for lists of objects, as a set union for
//! primitives; every other list is replaced. The patch can carry directives:
//!
//! - `$patch: replace` / `$patch: delete` in a map replaces it with the rest of the patch
//!   map / empties it; in a merging list, `{"$patch": "replace"}` replaces the whole list
//!   and `{"<key>": v, "$patch": "delete"}` deletes the elements with that key.
//! - `$retainKeys: [..]` clears the map's keys not listed.
//! - `$deleteFromPrimitiveList/<field>: [..]` removes values from a primitive list.
//! - `$setElementOrder/<field>: [..]` gives the final order of a list, as `kubectl apply`
//!   sends it.
//!
//! Element order follows upstream exactly, including its surprise: a merged list puts
//! the patch's elements in patch order and slots the original's other elements in by
//! their original neighbours, so a new element comes *before* original elements that
//! the patch does not mention (the Kubernetes docs show a new container listed first).
//!
//! Values the patch introduces where the original has nothing to merge with are stored
//! without `null` members and without directives, as upstream's `removeDirectives` does
//! (a map carrying `$patch` there is dropped).

mod list;
mod order;

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::path::Path;
use super::{PatchError, json_type};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// What a strategic merge patch needs to know about a document's shape: for each field,
/// whether its list merges, and by which key.
///
/// For an object, the engine asks [`field`](MergeSchema::field) first and falls back to
/// [`items`](MergeSchema::items), so a schema for a map type (such as `metadata.labels`)
/// answers through `items`. Where the schema has no answer (no schema at all, or an
/// unknown field), the subtree merges like a JSON merge patch: maps merge, lists are
/// replaced.
pub trait MergeSchema: Sized {
    /// Schema of an object's field.
    fn field(&self, name: &str) -> Option<Self>;
    /// Schema of a list's items or a map's values.
    fn items(&self) -> Option<Self>;
    /// The patch strategy and merge key declared on this (list or map) field.
    fn strategy(&self) -> PatchStrategy;
}

/// The `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` of a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PatchStrategy {
    /// The list merges (`merge`) instead of being replaced.
    pub merge: bool,
    /// The field declares `retainKeys` (as `strategy` of a Deployment does). Informational:
    /// as upstream, a `$retainKeys` directive is honoured wherever the patch carries one.
    pub retain_keys: bool,
    /// For a merging list of objects, the key identifying elements (`name` for containers).
    pub merge_key: Option<String>,
    /// The field declares `replace` (policy/v1 `PodDisruptionBudgetSpec.selector`): a patch
    /// object replaces the original object instead of merging into it, as upstream's
    /// `mergeMapHandler` does. (Lists without `merge` are replaced anyway.)
    pub replace: bool,
}

/// A schema that knows nothing: every list is replaced. Use it as `None::<&NoSchema>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSchema {}

impl MergeSchema for NoSchema {
    fn field(&self, _name: &str) -> Option<Self> {
        match *self {}
    }

    fn items(&self) -> Option<Self> {
        match *self {}
    }

    fn strategy(&self) -> PatchStrategy {
        match *self {}
    }
}

/// Applies a strategic merge patch to `original` and returns the result, as the API server
/// does for `application/strategic-merge-patch+json`. Both documents must be JSON objects
/// (`null` counts as `{}` for the original and as "no change" for the patch).
pub fn strategic_merge<S: MergeSchema>(
    original: &Value,
    patch: &Value,
    schema: Option<&S>,
) -> Result<Value, PatchError> {
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::NotAnObject {
                what: "original",
                found: json_type(other),
            });
        }
    };
    let patch = match patch {
        Value::Object(map) => map,
        Value::Null => return Ok(Value::Object(original)),
        other => {
            return Err(PatchError::NotAnObject {
                what: "patch",
                found: json_type(other),
            });
        }
    };
    merge_map(original, patch, schema, &Path::Root).map(Value::Object)
}

/// The schema of `name` inside the object described by `schema`.
fn child<S: MergeSchema>(schema: Option<&S>, name: &str) -> Option<S> {
    schema.and_then(|s| s.field(name).or_else(|| s.items()))
}

fn strategy_of<S: MergeSchema>(schema: Option<&S>) -> PatchStrategy {
    schema.map(S::strategy).unwrap_or_default()
}

/// The field a `$setElementOrder/<field>` or `$deleteFromPrimitiveList/<field>` key names.
fn directive_field<'k>(key: &'k str, prefix: &str, path: &Path<'_>) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix && !field.is_empty() => Ok(field),
        _ => Err(PatchError::InvalidDirective {
            path: path.render(),
            directive: key.to_string(),
            reason: format!("expected \"{prefix}/<field>\""),
        }),
    }
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// `$`-prefixed keys are directives unless the schema declares them as fields.
fn check_unknown_directive<S>(
    key: &str,
    sub: Option<&S>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    if key.starts_with('$') && sub.is_none() {
        return Err(PatchError::UnknownDirective {
            path: path.render(),
            key: key.to_string(),
        });
    }
    Ok(())
}

fn merge_map<S: MergeSchema>(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Option<&S>,
    path: &Path<'_>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => clean_members(patch, schema, path),
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::UnknownPatchType {
                path: path.render(),
                value: directive.to_string(),
            }),
        };
    }
    apply_retain_keys(&mut original, patch, path)?;

    // Lists with a $setElementOrder are merged and ordered first; the main loop then skips
    // them (but still applies their $deleteFromPrimitiveList).
    let mut ordered: Vec<&str> = Vec::new();
    for (key, order) in patch
        .iter()
        .filter(|(k, _)| k.starts_with(SET_ELEMENT_ORDER))
    {
        if let Some(field) =
            list::merge_with_element_order(&mut original, patch, key, order, schema, path)?
        {
            ordered.push(field);
        }
    }

    // Fields the patch deletes go in one pass at the end (removing one field shifts all the
    // others to keep their order, so deleting them one by one cost n² for n fields).
    let mut deleted: HashSet<&str> = HashSet::new();
    for (key, patch_value) in patch {
        if key == RETAIN_KEYS || key.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        if let Some(field) = merge_member(
            &mut original,
            key,
            patch_value,
            &ordered,
            &deleted,
            schema,
            path,
        )? {
            deleted.insert(field);
        }
    }
    if !deleted.is_empty() {
        original.retain(|k, _| !deleted.contains(k.as_str()));
    }
    Ok(original)
}

/// Merges one member of a patch map into the original map; returns the field when the
/// patch deletes it (the caller removes it).
fn merge_member<'k, S: MergeSchema>(
    original: &mut Map<String, Value>,
    key: &'k str,
    patch_value: &Value,
    ordered: &[&str],
    deleted: &HashSet<&str>,
    schema: Option<&S>,
    path: &Path<'_>,
) -> Result<Option<&'k str>, PatchError> {
    let delete_list = key.starts_with(DELETE_FROM_PRIMITIVE_LIST);
    let field = if delete_list {
        directive_field(key, DELETE_FROM_PRIMITIVE_LIST, path)?
    } else {
        key
    };
    if !delete_list && ordered.contains(&field) {
        return Ok(None);
    }
    let sub = child(schema, field);
    if !delete_list {
        check_unknown_directive(field, sub.as_ref(), path)?;
    } else if !matches!(patch_value, Value::Array(_) | Value::Null) {
        return Err(PatchError::InvalidDirective {
            path: path.render(),
            directive: key.to_string(),
            reason: format!("must be a list of values, not {}", json_type(patch_value)),
        });
    }
    let field_path = path.field(field);
    let strategy = strategy_of(sub.as_ref());

    // A field an earlier member deleted is gone (it is removed after the loop).
    let current = original.get_mut(field).filter(|_| !deleted.contains(field));
    match (current, patch_value) {
        (_, Value::Null) => return Ok(Some(field)),
        (Some(Value::Array(slot)), Value::Array(patch_list)) if strategy.merge || delete_list => {
            let items = sub.as_ref().and_then(S::items);
            let merge = list::ListMerge {
                items: items.as_ref(),
                merge_key: strategy.merge_key.as_deref().filter(|k| !k.is_empty()),
                delete_list,
                path: &field_path,
            };
            *slot = merge.apply(std::mem::take(slot), patch_list)?;
        }
        // Nothing to delete from.
        _ if delete_list => {}
        (Some(Value::Object(slot)), Value::Object(patch_map)) if !strategy.replace => {
            *slot = merge_map(std::mem::take(slot), patch_map, sub.as_ref(), &field_path)?;
        }
        // Absent, a different type, a scalar, a list that is replaced, or an object whose
        // field declares the `replace` strategy.
        _ => match new_value(patch_value, sub.as_ref(), &field_path)? {
            Some(value) => {
                original.insert(field.to_string(), value);
            }
            None => return Ok(Some(field)),
        },
    }
    Ok(None)
}

/// Applies `$retainKeys`: every field the patch sets must be listed, and the original's
/// unlisted fields are cleared.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::InvalidDirective {
            path: path.render(),
            directive: RETAIN_KEYS.to_string(),
            reason: format!("must be a list of field names, not {}", json_type(retain)),
        });
    };
    let retain: std::collections::HashSet<&str> = retain.iter().filter_map(Value::as_str).collect();
    let listed = |key: &str| retain.contains(key);
    for (key, value) in patch {
        let directive = key == RETAIN_KEYS
            || key.starts_with(SET_ELEMENT_ORDER)
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST);
        if !value.is_null() && !directive && !listed(key) {
            return Err(PatchError::NotInRetainKeys {
                path: path.render(),
                field: key.clone(),
            });
        }
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// A patch value with nothing in the original to merge with, cleaned: `null` members and
/// directives removed, and `None` for a map carrying `$patch` (upstream drops it).
fn new_value<S: MergeSchema>(
    value: &Value,
    schema: Option<&S>,
    path: &Path<'_>,
) -> Result<Option<Value>, PatchError> {
    Ok(match value {
        Value::Object(map) if map.contains_key(DIRECTIVE) => None,
        Value::Object(map) => Some(Value::Object(clean_members(map, schema, path)?)),
        Value::Array(items) => Some(Value::Array(new_list(items, schema, path)?)),
        other => Some(other.clone()),
    })
}

/// [`new_value`] for each element of a list; `schema` describes the list itself.
fn new_list<S: MergeSchema>(
    items: &[Value],
    schema: Option<&S>,
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let item_schema = schema.and_then(S::items);
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(v) = new_value(item, item_schema.as_ref(), &path.index(i))? {
            out.push(v);
        }
    }
    Ok(out)
}

/// The members of a patch map without nulls and directives, each cleaned.
fn clean_members<S: MergeSchema>(
    map: &Map<String, Value>,
    schema: Option<&S>,
    path: &Path<'_>,
) -> Result<Map<String, Value>, PatchError> {
    let mut out = Map::new();
    for (key, value) in map {
        if value.is_null() || is_directive_key(key) {
            continue;
        }
        let sub = child(schema, key);
        check_unknown_directive(key, sub.as_ref(), path)?;
        if let Some(v) = new_value(value, sub.as_ref(), &path.field(key))? {
            out.insert(key.clone(), v);
        }
    }
    Ok(out)
}
