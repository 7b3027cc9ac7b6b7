//! JSON merge patch (RFC 7386).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::prune_nulls;

/// Applies a JSON merge patch (RFC 7386) to `target`: objects merge recursively, a `null`
/// member deletes, anything else (lists included) replaces.
///
/// As upstream (`evanphx/json-patch`, which the Kubernetes API server uses), a value the
/// patch introduces is stored without its `null` members, also inside lists of objects;
/// key order is preserved, new keys go last.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        let mut replacement = patch.clone();
        prune_nulls(&mut replacement);
        *target = replacement;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(doc) = target else {
        unreachable!("target was just made an object")
    };
    // Deleted keys go in one pass at the end: removing one key keeps the order of the rest
    // by shifting them all, so a patch deleting n of n keys one by one cost n².
    let mut deleted: HashSet<&str> = HashSet::new();
    for (key, value) in patch {
        if value.is_null() {
            deleted.insert(key);
            continue;
        }
        match doc.get_mut(key) {
            Some(existing) if existing.is_object() && value.is_object() => {
                merge_patch(existing, value);
            }
            Some(existing) => {
                let mut replacement = value.clone();
                prune_nulls(&mut replacement);
                *existing = replacement;
            }
            None => {
                let mut added = value.clone();
                prune_nulls(&mut added);
                doc.insert(key.clone(), added);
            }
        }
    }
    if !deleted.is_empty() {
        doc.retain(|key, _| !deleted.contains(key.as_str()));
    }
}
