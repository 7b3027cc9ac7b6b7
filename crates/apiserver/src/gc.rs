//! The garbage collector: ownerReferences with background, foreground and orphan
//! propagation, as upstream's garbage collector controller.
//!
//! It keeps an index of every object's uid and owners, built from the watch cache and kept
//! current from its events, and works level-triggered from that index: each pass finds
//! (1) owners being deleted with the `orphan` finalizer — their dependents lose the owner
//! reference, then the finalizer goes; (2) owners with `foregroundDeletion` — their dependents
//! are deleted (in the foreground too), and once no dependent that blocks owner deletion is
//! left, the finalizer goes; (3) objects all of whose owners are gone — they are deleted in
//! the background. A restart rebuilds the index and finishes any interrupted cascade.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use drover_core::registry::Resource;
use serde_json::Value;

use crate::cache::Change;
use crate::handlers::{DeleteOptions, delete_stored, prepare_update};
use crate::meta::meta_str;
use crate::objects::{Decision, decode_stored};
use crate::state::State;
use crate::status::ApiError;

const MANAGER: &str = "generic-garbage-collector";

#[derive(Clone, Debug)]
struct Owner {
    uid: String,
    block: bool,
}

#[derive(Clone, Debug)]
struct Info {
    uid: String,
    namespace: Option<String>,
    name: String,
    owners: Vec<Owner>,
    deleting: bool,
    finalizers: Vec<String>,
}

#[derive(Default)]
struct Index {
    objects: HashMap<Arc<str>, Info>,
    by_uid: HashMap<String, Arc<str>>,
    /// Owner uid → keys of the objects that name it.
    dependents: HashMap<String, std::collections::HashSet<Arc<str>>>,
    /// Keys the collector must look at: objects with owners or a GC finalizer. Most objects
    /// have neither, so a pass costs what is interesting, not what is stored.
    interesting: std::collections::HashSet<Arc<str>>,
}

impl Index {
    fn put(&mut self, key: Arc<str>, obj: &Value) {
        self.remove(&key);
        let owners = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| {
                        Some(Owner {
                            uid: r.get("uid")?.as_str()?.to_owned(),
                            block: r
                                .get("blockOwnerDeletion")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let info = Info {
            uid: meta_str(obj, "uid").unwrap_or("").to_owned(),
            namespace: meta_str(obj, "namespace").map(str::to_owned),
            name: meta_str(obj, "name").unwrap_or("").to_owned(),
            owners,
            deleting: meta_str(obj, "deletionTimestamp").is_some(),
            finalizers: obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        };
        if !info.uid.is_empty() {
            self.by_uid.insert(info.uid.clone(), Arc::clone(&key));
        }
        for o in &info.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(Arc::clone(&key));
        }
        let gc_finalizer = info
            .finalizers
            .iter()
            .any(|f| f == "orphan" || f == "foregroundDeletion");
        if !info.owners.is_empty() || gc_finalizer {
            self.interesting.insert(Arc::clone(&key));
        }
        self.objects.insert(key, info);
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.objects.remove(key)
            && self.by_uid.get(&old.uid).is_some_and(|k| &**k == key)
        {
            self.by_uid.remove(&old.uid);
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<(Arc<str>, Info)> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|k| self.objects.get(k).map(|i| (Arc::clone(k), i.clone())))
            .collect()
    }
}

/// Which resource a storage key belongs to.
fn resource_of(resources: &[Resource], key: &str) -> Option<Resource> {
    resources
        .iter()
        .filter(|r| r.is_storage_version() && r.verbs.stored())
        .find(|r| key.starts_with(&r.key_prefix()))
        .cloned()
}

/// Runs the collector until shutdown (or until aborted when this server stops leading).
pub(crate) async fn run(state: Arc<State>) {
    {
        let mut shutdown = state.shutdown.clone();
        loop {
            let mut index = Index::default();
            let Some(mut sub) = state.cache.subscribe(state.cache.revision()) else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let snap = state.cache.snapshot(crate::cache::REGISTRY_PREFIX, None);
            for (key, entry) in snap.items {
                if let Ok(obj) = decode_stored(&entry.value, entry.mod_revision) {
                    index.put(key, &obj);
                }
            }
            for ev in sub.backlog.drain(..) {
                apply_event(&mut index, &ev);
            }
            loop {
                collect(&state, &index).await;
                let ev = tokio::select! {
                    ev = sub.live.recv() => ev,
                    _ = tokio::time::sleep(Duration::from_secs(10)) => continue,
                    _ = crate::state::shutting_down(&mut shutdown) => return,
                };
                match ev {
                    Ok(ev) => {
                        apply_event(&mut index, &ev.event);
                        // Take whatever else is queued before the next pass.
                        while let Ok(ev) = sub.live.try_recv() {
                            apply_event(&mut index, &ev.event);
                        }
                    }
                    Err(_) => break, // lagged or closed: rebuild the index
                }
            }
        }
    }
}

fn apply_event(index: &mut Index, ev: &crate::cache::CacheEvent) {
    match ev.change {
        Change::Put => {
            if let Ok(obj) = decode_stored(&ev.entry.value, ev.entry.mod_revision) {
                index.put(Arc::clone(&ev.key), &obj);
            }
        }
        Change::Delete => index.remove(&ev.key),
    }
}

/// One level-triggered pass over the index.
async fn collect(state: &Arc<State>, index: &Index) {
    let resources = state.resources.all();
    for key in &index.interesting {
        let Some(info) = index.objects.get(key) else {
            continue;
        };
        let Some(res) = resource_of(&resources, key) else {
            continue;
        };
        if info.deleting && info.finalizers.iter().any(|f| f == "orphan") {
            orphan_dependents(state, &resources, index, &res, info).await;
        }
        if info.deleting && info.finalizers.iter().any(|f| f == "foregroundDeletion") {
            delete_in_foreground(state, &resources, index, &res, info).await;
        }
        if !info.owners.is_empty()
            && !info.deleting
            && info
                .owners
                .iter()
                .all(|o| !index.by_uid.contains_key(&o.uid))
        {
            let opts = DeleteOptions {
                propagation: Some("Background".into()),
                grace: None,
                uid: Some(info.uid.clone()),
                resource_version: None,
                dry_run: false,
            };
            log_err(
                delete_stored(
                    state,
                    &res,
                    &res,
                    info.namespace.as_deref(),
                    &info.name,
                    &opts,
                )
                .await,
                key,
            );
        }
    }
}

fn log_err<T>(r: Result<T, ApiError>, key: &str) {
    if let Err(e) = r
        && !matches!(e, ApiError::NotFound(_) | ApiError::Conflict { .. })
    {
        tracing::warn!("garbage collector: {key}: {e:?}");
    }
}

async fn orphan_dependents(
    state: &Arc<State>,
    resources: &[Resource],
    index: &Index,
    res: &Resource,
    owner: &Info,
) {
    for (dkey, dep) in index.dependents_of(&owner.uid) {
        let Some(dres) = resource_of(resources, &dkey) else {
            continue;
        };
        let uid = owner.uid.clone();
        let r = state
            .objects
            .update(&dres, dep.namespace.as_deref(), &dep.name, |cur| {
                let Some(cur) = cur else {
                    return Err(ApiError::NotFound(crate::objects::target(&dres, &dep.name)));
                };
                let mut new = cur.clone();
                if let Some(refs) = new
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                    if refs.is_empty()
                        && let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
                    {
                        m.remove("ownerReferences");
                    }
                }
                let api = dres.api_version();
                prepare_update(&dres, None, &cur, new, MANAGER, "Update", &api)
            })
            .await;
        log_err(r, &dkey);
    }
    remove_finalizer(state, res, owner, "orphan").await;
}

async fn delete_in_foreground(
    state: &Arc<State>,
    resources: &[Resource],
    index: &Index,
    res: &Resource,
    owner: &Info,
) {
    let mut blocking = 0;
    for (dkey, dep) in index.dependents_of(&owner.uid) {
        let Some(dres) = resource_of(resources, &dkey) else {
            continue;
        };
        if dep.owners.iter().any(|o| o.uid == owner.uid && o.block) {
            blocking += 1;
        }
        if !dep.deleting {
            let opts = DeleteOptions {
                propagation: Some("Foreground".into()),
                grace: None,
                uid: Some(dep.uid.clone()),
                resource_version: None,
                dry_run: false,
            };
            log_err(
                delete_stored(
                    state,
                    &dres,
                    &dres,
                    dep.namespace.as_deref(),
                    &dep.name,
                    &opts,
                )
                .await,
                &dkey,
            );
        }
    }
    if blocking == 0 {
        remove_finalizer(state, res, owner, "foregroundDeletion").await;
    }
}

async fn remove_finalizer(state: &Arc<State>, res: &Resource, info: &Info, finalizer: &str) {
    let r = state
        .objects
        .update(res, info.namespace.as_deref(), &info.name, |cur| {
            let Some(cur) = cur else {
                return Err(ApiError::NotFound(crate::objects::target(res, &info.name)));
            };
            if meta_str(&cur, "uid") != Some(info.uid.as_str()) {
                return Ok(Decision::Unchanged(cur));
            }
            let mut new = cur.clone();
            if let Some(fs) = new
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
            {
                fs.retain(|f| f != finalizer);
            }
            let api = res.api_version();
            prepare_update(res, None, &cur, new, MANAGER, "Update", &api)
        })
        .await;
    log_err(r, &info.name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn index_tracks_owners_and_uids() {
        let mut idx = Index::default();
        let owner = json!({"metadata": {"name": "o", "uid": "u1"}});
        let dep = json!({"metadata": {"name": "d", "uid": "u2", "ownerReferences": [{"uid": "u1", "blockOwnerDeletion": true}]}});
        idx.put(Arc::from("/registry/apps/deployments/ns/o"), &owner);
        idx.put(Arc::from("/registry/apps/replicasets/ns/d"), &dep);
        let deps = idx.dependents_of("u1");
        assert_eq!(deps.len(), 1);
        assert!(deps[0].1.owners[0].block);
        idx.remove("/registry/apps/deployments/ns/o");
        assert!(!idx.by_uid.contains_key("u1"));
    }
}
