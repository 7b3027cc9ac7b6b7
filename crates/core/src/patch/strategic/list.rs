//! Merging lists: by merge key, as primitive sets, and under `$setElementOrder`.

use serde_json::{Map, Value};

use super::order::{self, Identity, ValueSet, canonical};
use super::{
    DIRECTIVE, MergeSchema, SET_ELEMENT_ORDER, child, directive_field, merge_map, new_list,
    new_value, strategy_of,
};
use crate::patch::path::Path;
use crate::patch::{PatchError, json_type};

/// The element type of a merging list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Elements {
    Objects,
    Primitives,
}

/// The element type shared by every element of `lists`: lists of lists and mixed element
/// types are errors, as upstream. `None` when there are no elements at all.
fn element_kind(lists: [&[Value]; 2], path: &Path<'_>) -> Result<Option<Elements>, PatchError> {
    let tag = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    let mut first: Option<(u8, &Value)> = None;
    for v in lists.into_iter().flatten() {
        match first {
            None if v.is_array() => {
                return Err(invalid_list(path, "lists of lists are not supported"));
            }
            None => first = Some((tag(v), v)),
            Some((t, f)) if t != tag(v) => {
                return Err(invalid_list(
                    path,
                    &format!(
                        "list element types are not identical: {} and {}",
                        json_type(f),
                        json_type(v)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(first.map(|(_, v)| {
        if v.is_object() {
            Elements::Objects
        } else {
            Elements::Primitives
        }
    }))
}

fn invalid_list(path: &Path<'_>, reason: &str) -> PatchError {
    PatchError::InvalidList {
        path: path.render(),
        reason: reason.to_string(),
    }
}

fn missing_merge_key(path: &Path<'_>, key: &str, element: &Value) -> PatchError {
    PatchError::MissingMergeKey {
        path: path.render(),
        merge_key: key.to_string(),
        element: element.to_string(),
    }
}

/// The merge key value of a list element, which must be an object carrying the key.
fn key_of<'v>(element: &'v Value, key: &str, path: &Path<'_>) -> Result<&'v Value, PatchError> {
    match element {
        Value::Object(map) => map
            .get(key)
            .ok_or_else(|| missing_merge_key(path, key, element)),
        other => Err(invalid_list(
            path,
            &format!("expected a list of objects, found {}", json_type(other)),
        )),
    }
}

/// The patch elements that are not directives, with their indices in the patch list.
type PlainElements<'p> = Vec<(usize, &'p Value)>;

/// A merge of one list field.
pub(super) struct ListMerge<'a, S> {
    /// Schema of the elements.
    pub(super) items: Option<&'a S>,
    /// The merge key, for lists of objects.
    pub(super) merge_key: Option<&'a str>,
    /// The patch list is a `$deleteFromPrimitiveList`.
    pub(super) delete_list: bool,
    pub(super) path: &'a Path<'a>,
}

impl<S: MergeSchema> ListMerge<'_, S> {
    pub(super) fn apply(
        &self,
        original: Vec<Value>,
        patch: &[Value],
    ) -> Result<Vec<Value>, PatchError> {
        match element_kind([&original, patch], self.path)? {
            None => Ok(original),
            Some(Elements::Primitives) if self.delete_list => {
                let deleted = ValueSet::of(patch);
                Ok(original
                    .into_iter()
                    .filter(|v| !deleted.contains(v))
                    .collect())
            }
            Some(Elements::Primitives) => Ok(self.merge_primitives(original, patch)),
            Some(Elements::Objects) if self.delete_list => Err(invalid_list(
                self.path,
                "$deleteFromPrimitiveList applies to lists of primitives only",
            )),
            Some(Elements::Objects) => self.merge_objects(original, patch),
        }
    }

    /// A set union, ordered as upstream orders it.
    fn merge_primitives(&self, original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        let mut seen = ValueSet::default();
        for v in original.iter().chain(patch) {
            if seen.insert(v) {
                merged.push(v.clone());
            }
        }
        let in_patch_set = ValueSet::of(patch);
        let (in_patch, server_only) = merged.into_iter().partition(|v| in_patch_set.contains(v));
        let patch_order: Vec<Option<&Value>> = patch.iter().map(Some).collect();
        let server_order: Vec<Option<&Value>> = original.iter().map(Some).collect();
        order::normalize(
            in_patch,
            server_only,
            &patch_order,
            &server_order,
            Identity::Value,
        )
    }

    fn merge_objects(
        &self,
        original: Vec<Value>,
        patch: &[Value],
    ) -> Result<Vec<Value>, PatchError> {
        let key = self.merge_key.ok_or_else(|| {
            invalid_list(
                self.path,
                "cannot merge a list of objects without a merge key in the schema",
            )
        })?;
        let (original, plain, replace) = self.apply_directive_elements(original, patch, key)?;
        if replace {
            // The plain elements become the list, in patch order; they still need the key.
            let mut list = Vec::with_capacity(plain.len());
            for (i, element) in plain {
                let element_path = self.path.index(i);
                key_of(element, key, &element_path)?;
                list.extend(new_value(element, self.items, &element_path)?);
            }
            return Ok(list);
        }
        self.merge_by_key(original, &plain, key)
    }

    /// Applies `$patch: delete` elements to `original` and spots `$patch: replace`; returns
    /// the original, the other (plain) patch elements with their indices, and whether the
    /// list is replaced.
    fn apply_directive_elements<'p>(
        &self,
        mut original: Vec<Value>,
        patch: &'p [Value],
        key: &str,
    ) -> Result<(Vec<Value>, PlainElements<'p>, bool), PatchError> {
        let mut plain = Vec::new();
        let mut replace = false;
        let mut deleted = ValueSet::default();
        for (i, element) in patch.iter().enumerate() {
            let Some(directive) = element.get(DIRECTIVE) else {
                plain.push((i, element));
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    deleted.insert(key_of(element, key, &self.path.index(i))?);
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(invalid_list(
                        &self.path.index(i),
                        "merging lists cannot yet be specified in the patch",
                    ));
                }
                _ => {
                    return Err(PatchError::UnknownPatchType {
                        path: self.path.index(i).render(),
                        value: directive.to_string(),
                    });
                }
            }
        }
        original.retain(|o| o.get(key).is_none_or(|v| !deleted.contains(v)));
        Ok((original, plain, replace))
    }

    /// Merges each plain patch element into the original element with the same key, or
    /// appends it, then orders the result.
    fn merge_by_key(
        &self,
        mut original: Vec<Value>,
        plain: &[(usize, &Value)],
        key: &str,
    ) -> Result<Vec<Value>, PatchError> {
        // Merging never changes an element's key, so the original order is its keys now.
        let server_keys: Vec<Option<Value>> =
            original.iter().map(|o| o.get(key).cloned()).collect();
        // The first element with each key value, kept up to date as elements are appended.
        let mut first_with_key: std::collections::HashMap<String, usize> =
            std::collections::HashMap::with_capacity(original.len());
        for (at, o) in original.iter().enumerate() {
            if let Some(v) = o.get(key) {
                first_with_key.entry(canonical(v)).or_insert(at);
            }
        }
        for &(i, element) in plain {
            let element_path = self.path.index(i);
            let value = key_of(element, key, &element_path)?;
            let (Some(&at), Value::Object(patch_map)) =
                (first_with_key.get(&canonical(value)), element)
            else {
                let before = original.len();
                original.extend(new_value(element, self.items, &element_path)?);
                for (at, o) in original.iter().enumerate().skip(before) {
                    if let Some(v) = o.get(key) {
                        first_with_key.entry(canonical(v)).or_insert(at);
                    }
                }
                continue;
            };
            let Value::Object(existing) = std::mem::take(&mut original[at]) else {
                unreachable!("element kind checked")
            };
            original[at] =
                Value::Object(merge_map(existing, patch_map, self.items, &element_path)?);
        }

        let patch_order: Vec<Option<&Value>> = plain.iter().map(|(_, e)| e.get(key)).collect();
        let server_order: Vec<Option<&Value>> = server_keys.iter().map(Option::as_ref).collect();
        let in_patch_keys = ValueSet::of(patch_order.iter().flatten().copied());
        let mut in_patch = Vec::new();
        let mut server_only = Vec::new();
        for element in original {
            let value = key_of(&element, key, self.path)?;
            if in_patch_keys.contains(value) {
                in_patch.push(element);
            } else {
                server_only.push(element);
            }
        }
        Ok(order::normalize(
            in_patch,
            server_only,
            &patch_order,
            &server_order,
            Identity::Key(key),
        ))
    }
}

/// Handles `$setElementOrder/<field>`: merges the field's list (if the patch has one) and
/// puts the result in the given order, with the original's other elements slotted in by
/// their original neighbours. Returns the field when the list was handled.
pub(super) fn merge_with_element_order<'p, S: MergeSchema>(
    original: &mut Map<String, Value>,
    patch: &'p Map<String, Value>,
    directive: &'p str,
    order_value: &Value,
    schema: Option<&S>,
    path: &Path<'_>,
) -> Result<Option<&'p str>, PatchError> {
    let field = directive_field(directive, SET_ELEMENT_ORDER, path)?;
    let invalid = |reason: String| PatchError::InvalidDirective {
        path: path.render(),
        directive: directive.to_string(),
        reason,
    };
    let Value::Array(order_list) = order_value else {
        return Err(invalid(format!(
            "must be a list, not {}",
            json_type(order_value)
        )));
    };
    let field_path = path.field(field);
    let original_list = match original.get(field) {
        None => None,
        Some(Value::Array(items)) => Some(items.clone()),
        Some(other) => {
            return Err(invalid(format!(
                "{field:?} in the original is {}, not a list",
                json_type(other)
            )));
        }
    };
    let patch_list = match patch.get(field) {
        None => None,
        Some(Value::Array(items)) => Some(items.as_slice()),
        Some(other) => {
            return Err(invalid(format!(
                "{field:?} in the patch is {}, not a list",
                json_type(other)
            )));
        }
    };
    let sub = child(schema, field);
    let strategy = strategy_of(sub.as_ref());
    let merge_key = strategy.merge_key.as_deref().filter(|k| !k.is_empty());
    validate_order(
        patch_list.unwrap_or_default(),
        order_list,
        merge_key,
        &field_path,
    )?;

    let items = sub.as_ref().and_then(S::items);
    let merged = match (&original_list, patch_list) {
        (None, None) => return Ok(None),
        (Some(list), None) => list.clone(),
        (Some(list), Some(p)) if strategy.merge => ListMerge {
            items: items.as_ref(),
            merge_key,
            delete_list: false,
            path: &field_path,
        }
        .apply(list.clone(), p)?,
        (_, Some(p)) => new_list(p, sub.as_ref(), &field_path)?,
    };
    let original_list = original_list.unwrap_or_default();
    let patch_list = patch_list.unwrap_or_default();
    let ordered = enforce_order(
        merged,
        order_list,
        [&original_list, patch_list],
        merge_key,
        &field_path,
    )?;
    original.insert(field.to_string(), Value::Array(ordered));
    Ok(Some(field))
}

/// Puts a merged list in `$setElementOrder` order, slotting the elements the order does
/// not list in by their position in the original (`sources[0]`).
fn enforce_order(
    merged: Vec<Value>,
    order_list: &[Value],
    sources: [&[Value]; 2],
    merge_key: Option<&str>,
    field_path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let original_list = sources[0];
    let kind = element_kind(sources, field_path)?;
    let identity = match (kind, merge_key) {
        (Some(Elements::Objects), Some(key)) => {
            for element in order_list.iter().chain(original_list) {
                key_of(element, key, field_path)?;
            }
            Identity::Key(key)
        }
        _ => Identity::Value,
    };
    let listed_keys =
        merge_key.map(|key| ValueSet::of(order_list.iter().filter_map(|o| o.get(key))));
    let listed_values = ValueSet::of(order_list);
    let mut in_order = Vec::new();
    let mut server_only = Vec::new();
    for element in merged {
        let listed = match (merge_key, &listed_keys) {
            (Some(key), Some(keys)) => keys.contains(key_of(&element, key, field_path)?),
            _ => listed_values.contains(&element),
        };
        if listed {
            in_order.push(element);
        } else {
            server_only.push(element);
        }
    }
    let order_ids: Vec<Option<&Value>> = order_list.iter().map(|v| identity.of(v)).collect();
    let server_ids: Vec<Option<&Value>> = original_list.iter().map(|v| identity.of(v)).collect();
    Ok(order::normalize(
        in_order,
        server_only,
        &order_ids,
        &server_ids,
        identity,
    ))
}

/// The patch list's elements must appear in the `$setElementOrder` list, in its order
/// (deletions and other directive elements aside).
fn validate_order(
    patch: &[Value],
    order_list: &[Value],
    merge_key: Option<&str>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    if patch.is_empty() || order_list.is_empty() {
        return Ok(());
    }
    let mut elements: Vec<&Value> = Vec::with_capacity(patch.len());
    for element in patch {
        let is_delete = element.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
        if merge_key.is_some() && !element.is_object() {
            return Err(invalid_list(
                path,
                &format!("expected a list of objects, found {}", json_type(element)),
            ));
        }
        if merge_key.is_none() || !is_delete {
            elements.push(element);
        }
    }
    let (mut p, mut o) = (0, 0);
    while p < elements.len() && o < order_list.len() {
        if elements[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        let equal = match merge_key {
            None => elements[p] == &order_list[o],
            Some(key) => key_of(elements[p], key, path)? == key_of(&order_list[o], key, path)?,
        };
        if equal {
            p += 1;
        }
        o += 1;
    }
    if p < elements.len() {
        return Err(PatchError::SetElementOrderMismatch {
            path: path.render(),
        });
    }
    Ok(())
}
