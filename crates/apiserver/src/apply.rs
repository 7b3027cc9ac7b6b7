//! Server-side apply and field ownership (`metadata.managedFields`).
//!
//! Each manager owns a set of fields. An *apply* declares the complete set of fields a
//! manager wants: fields it owned before and no longer applies are removed (unless another
//! manager also owns them), fields another manager owns with a different value are conflicts
//! (409 unless `force=true`, which takes them over). An *update* (PUT, non-apply PATCH, POST)
//! makes its manager the owner of every field it changed, taking them from other managers.

use drover_core::registry::Resource;
use serde_json::{Map, Value, json};

use crate::fieldset::{self, FieldSet, Path};
use crate::handlers::Ctx;
use crate::meta;
use crate::status::{ApiError, ApiResult, Target};

struct Entry {
    raw: Value,
    set: FieldSet,
}

impl Entry {
    fn manager(&self) -> &str {
        self.raw["manager"].as_str().unwrap_or("")
    }
    fn operation(&self) -> &str {
        self.raw["operation"].as_str().unwrap_or("")
    }
    fn subresource(&self) -> Option<&str> {
        self.raw.get("subresource").and_then(Value::as_str)
    }
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|raw| Entry {
                    set: fieldset::from_fields_v1(raw.get("fieldsV1").unwrap_or(&Value::Null)),
                    raw: raw.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn store_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.set.is_empty())
        .map(|mut e| {
            e.raw["fieldsV1"] = fieldset::to_fields_v1(&e.set);
            e.raw["fieldsType"] = "FieldsV1".into();
            e.raw
        })
        .collect();
    meta::metadata_mut(obj).insert("managedFields".into(), Value::Array(list));
}

fn new_entry(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: Option<&str>,
    set: FieldSet,
) -> Entry {
    let mut raw = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": meta::rfc3339(meta::now_secs()),
    });
    if let Some(s) = subresource {
        raw["subresource"] = s.into();
    }
    Entry { raw, set }
}

fn path_string(p: &Path) -> String {
    let mut s = String::new();
    for el in p {
        if el == "." {
            continue;
        }
        if let Some(f) = el.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            s.push('[');
            s.push_str(
                &k.trim_start_matches('{')
                    .trim_end_matches('}')
                    .replace('"', ""),
            );
            s.push(']');
        } else if let Some(v) = el.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Records an update's ownership: the manager takes every field whose value it changed.
pub(crate) fn track_update(
    obj: &mut Value,
    old: Option<&Value>,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let new_set = fieldset::fields(obj, subresource);
    let changed: FieldSet = match old {
        None => new_set.clone(),
        Some(old) => {
            let (old, new) = (fieldset::Lookup::new(old), fieldset::Lookup::new(obj));
            new_set
                .iter()
                .filter(|p| old.value_at(p) != new.value_at(p))
                .cloned()
                .collect()
        }
    };
    let all_now = {
        let mut s = fieldset::fields(obj, None);
        s.extend(fieldset::fields(obj, Some("status")));
        s
    };
    // A request that changes managedFields itself (kubectl's client-side → server-side apply
    // migration does) is taken as the new baseline, as upstream does.
    let requested = obj.pointer("/metadata/managedFields");
    let explicit =
        requested.is_some() && requested != old.and_then(|o| o.pointer("/metadata/managedFields"));
    let mut list = if explicit {
        entries(obj)
    } else {
        old.map(entries).unwrap_or_default()
    };
    let mut mine: FieldSet = FieldSet::new();
    list.retain(|e| {
        if e.manager() == manager && e.operation() == "Update" && e.subresource() == subresource {
            mine = e.set.clone();
            false
        } else {
            true
        }
    });
    for e in &mut list {
        e.set
            .retain(|p| !changed.contains(p) && all_now.contains(p));
    }
    mine.retain(|p| all_now.contains(p));
    mine.extend(changed);
    list.push(new_entry(manager, "Update", api_version, subresource, mine));
    store_entries(obj, list);
}

/// Applies `applied` (the manager's full intent) to `current`; returns the new object with
/// its managed fields updated.
pub(crate) fn apply(
    ctx: &Ctx<'_>,
    current: &Value,
    applied: &Value,
    manager: &str,
) -> ApiResult<Value> {
    apply_to(
        &ctx.res,
        ctx.rr.subresource.as_deref(),
        ctx.query.flag("force"),
        &|| ctx.target(),
        current,
        applied,
        manager,
    )
}

/// [`apply`] without a request: `subresource` is the URL's, `target` names the object in a
/// conflict.
pub(crate) fn apply_to(
    res: &Resource,
    subresource: Option<&str>,
    force: bool,
    target: &dyn Fn() -> Target,
    current: &Value,
    applied: &Value,
    manager: &str,
) -> ApiResult<Value> {
    let api_version = res.api_version();
    let subresource = subresource.filter(|s| *s == "status");
    let mut applied = applied.clone();
    applied["apiVersion"] = api_version.clone().into();
    applied["kind"] = res.kind.to_string().into();
    let applied_set = fieldset::fields(&applied, subresource);

    let mut list = entries(current);
    let prev: FieldSet = list
        .iter()
        .find(|e| {
            e.manager() == manager && e.operation() == "Apply" && e.subresource() == subresource
        })
        .map(|e| e.set.clone())
        .unwrap_or_default();
    list.retain(|e| {
        !(e.manager() == manager && e.operation() == "Apply" && e.subresource() == subresource)
    });

    // Conflicts: fields another manager owns, applied with a different value.
    let mut conflicts: Vec<(String, String, Path)> = Vec::new();
    let (applied_values, current_values) = (
        fieldset::Lookup::new(&applied),
        fieldset::Lookup::new(current),
    );
    for e in &list {
        for p in applied_set.intersection(&e.set) {
            if p.last().map(String::as_str) == Some(".") {
                continue;
            }
            if applied_values.value_at(p) != current_values.value_at(p) {
                let v = e.raw["apiVersion"].as_str().unwrap_or("").to_owned();
                conflicts.push((e.manager().to_owned(), v, p.clone()));
            }
        }
    }
    // kubectl's own server-side apply takes over fields that client-side apply set (they are
    // in the last-applied annotation), as upstream's last-applied manager does.
    let csa_takeover = manager == "kubectl"
        && !conflicts.is_empty()
        && current
            .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
            .and_then(Value::as_str)
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .map(|last| fieldset::fields(&last, subresource))
            .is_some_and(|allowed| conflicts.iter().all(|(_, _, p)| allowed.contains(p)));
    if !conflicts.is_empty() {
        if !force && !csa_takeover {
            let parts: Vec<String> = conflicts
                .iter()
                .map(|(m, v, p)| format!("conflict with {m:?} using {v}: {}", path_string(p)))
                .collect();
            let n = conflicts.len();
            let message = format!(
                "Apply failed with {n} conflict{}: {}",
                if n == 1 { "" } else { "s" },
                parts.join("\n")
            );
            return Err(ApiError::Conflict {
                target: target(),
                message,
            });
        }
        let taken: std::collections::HashSet<(&str, &Path)> =
            conflicts.iter().map(|(m, _, p)| (m.as_str(), p)).collect();
        for e in &mut list {
            let manager = e.manager().to_owned();
            e.set.retain(|p| !taken.contains(&(manager.as_str(), p)));
        }
    }

    let mut out = current.clone();
    // Fields this manager stopped applying go, unless someone else still owns them.
    let others: FieldSet = list.iter().flat_map(|e| e.set.iter().cloned()).collect();
    let mut removed: Vec<&Path> = prev
        .difference(&applied_set)
        .filter(|p| !fieldset::any_under(&others, p))
        .collect();
    // Remove deepest paths first so item markers go after their fields.
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in removed {
        let item_prefix: &[String] = if p.last().map(String::as_str) == Some(".") {
            &p[..p.len() - 1]
        } else {
            &p[..]
        };
        if p.last().map(String::as_str) == Some(".") && fieldset::any_under(&others, item_prefix) {
            continue;
        }
        fieldset::remove_path(&mut out, p);
    }
    let schema = fieldset::schema_of(&applied);
    merge(&mut out, &applied, schema.as_ref(), true);
    list.push(new_entry(
        manager,
        "Apply",
        &api_version,
        subresource,
        applied_set,
    ));
    store_entries(&mut out, list);
    Ok(out)
}

/// Sets every field of `applied` on `live`, merging objects and keyed lists.
fn merge(
    live: &mut Value,
    applied: &Value,
    schema: Option<&drover_schema::SchemaNode<'_>>,
    top: bool,
) {
    let (Some(lm), Some(am)) = (live.as_object_mut(), applied.as_object()) else {
        *live = applied.clone();
        return;
    };
    for (k, av) in am {
        if top && k == "metadata" {
            let lmeta = lm
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let (Some(lmeta), Some(ameta)) = (lmeta.as_object_mut(), av.as_object()) {
                for (mk, mv) in ameta {
                    if matches!(
                        mk.as_str(),
                        "managedFields"
                            | "resourceVersion"
                            | "uid"
                            | "creationTimestamp"
                            | "generation"
                    ) {
                        continue;
                    }
                    let ms = schema
                        .and_then(|s| s.field("metadata"))
                        .and_then(|m| m.field(mk));
                    match lmeta.get_mut(mk) {
                        Some(lv) => merge_value(lv, mv, ms.as_ref()),
                        None => {
                            lmeta.insert(mk.clone(), mv.clone());
                        }
                    }
                }
            }
            continue;
        }
        if av.is_null() {
            continue;
        }
        let cs = schema.and_then(|s| s.field(k).or_else(|| s.items()));
        match lm.get_mut(k) {
            Some(lv) => merge_value(lv, av, cs.as_ref()),
            None => {
                lm.insert(k.clone(), av.clone());
            }
        }
    }
}

fn merge_value(lv: &mut Value, av: &Value, schema: Option<&drover_schema::SchemaNode<'_>>) {
    match (lv, av) {
        (lv @ Value::Object(_), Value::Object(_))
            if schema.is_none_or(|s| s.map_type() != Some("atomic")) =>
        {
            merge(lv, av, schema, false);
        }
        (Value::Array(la), Value::Array(aa)) => {
            let s = schema;
            let keys: Vec<String> = match s {
                Some(s) if s.list_type() == Some("map") => {
                    s.list_map_keys().into_iter().map(str::to_owned).collect()
                }
                Some(s) if s.merges() && s.list_type() != Some("atomic") => s
                    .merge_key()
                    .map(|k| vec![k.to_owned()])
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let is_set = s.is_some_and(|s| {
                s.list_type() == Some("set") || (s.merges() && s.merge_key().is_none())
            });
            if !keys.is_empty() && aa.iter().all(Value::is_object) {
                let item_schema = s.and_then(drover_schema::SchemaNode::items);
                // The first live item with each key (merging keeps an item's key); looked
                // up, not scanned for, so long lists do not cost n² comparisons.
                let key_of = |item: &Value| -> String {
                    let values: Vec<String> = keys
                        .iter()
                        .map(|k| {
                            item.get(k)
                                .map_or_else(|| "-".to_owned(), fieldset::canonical)
                        })
                        .collect();
                    values.join("\0")
                };
                let mut first: std::collections::HashMap<String, usize> =
                    std::collections::HashMap::with_capacity(la.len());
                for (at, li) in la.iter().enumerate() {
                    first.entry(key_of(li)).or_insert(at);
                }
                for ai in aa {
                    match first.get(&key_of(ai)) {
                        Some(&i) => merge(&mut la[i], ai, item_schema.as_ref(), false),
                        None => {
                            first.insert(key_of(ai), la.len());
                            la.push(ai.clone());
                        }
                    }
                }
            } else if is_set {
                let mut present: std::collections::HashSet<String> =
                    la.iter().map(fieldset::canonical).collect();
                for ai in aa {
                    if present.insert(fieldset::canonical(ai)) {
                        la.push(ai.clone());
                    }
                }
            } else {
                *la = aa.clone();
            }
        }
        (lv, av) => *lv = av.clone(),
    }
}
