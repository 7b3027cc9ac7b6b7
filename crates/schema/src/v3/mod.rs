//! The `/openapi/v3` documents: an index and one OpenAPI 3.0 document per group-version.
//!
//! Built-in documents are generated on first request and cached ([`builtin_doc`]). Custom
//! resources get their document from [`crd_group_version`], which feeds the CRD's
//! `openAPIV3Schema` into the same builder ([`v3_group_version`]) as extra definitions.

mod params;
mod paths;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use drover_core::registry::{self, GroupVersion, Resource};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use crate::defs::{
    API_RESOURCE_LIST, DELETE_OPTIONS, OBJECT_META, PATCH, REF_PREFIX, STATUS, WATCH_EVENT,
    definitions, gvk, ref_to,
};

/// One serialized group-version document, ready to serve.
#[derive(Debug, Clone)]
pub struct GroupVersionDoc {
    /// The group-version it describes.
    pub gv: GroupVersion,
    /// Its path below `/openapi/v3/`: `api/v1` or `apis/apps/v1`.
    pub path: String,
    /// Uppercase hex SHA-512 of `body`: the `hash` query parameter and the ETag.
    pub hash: String,
    /// The JSON document.
    pub body: Arc<[u8]>,
}

impl GroupVersionDoc {
    /// Serializes a document built by [`v3_group_version`].
    pub fn from_value(gv: GroupVersion, doc: &Value) -> GroupVersionDoc {
        let body = serde_json::to_vec(doc).unwrap_or_default();
        let hash = Sha512::digest(&body)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let path = gv.url_prefix().trim_start_matches('/').to_owned();
        GroupVersionDoc {
            gv,
            path,
            hash,
            body: body.into(),
        }
    }

    /// The URL the index advertises: `/openapi/v3/apis/apps/v1?hash=...`.
    pub fn server_relative_url(&self) -> String {
        format!("/openapi/v3/{}?hash={}", self.path, self.hash)
    }
}

/// The `/openapi/v3` index over `docs` (built-in and custom group-versions alike).
pub fn v3_index<'a>(docs: impl IntoIterator<Item = &'a GroupVersionDoc>) -> Value {
    let paths: Map<String, Value> = docs
        .into_iter()
        .map(|d| {
            (
                d.path.clone(),
                json!({ "serverRelativeURL": d.server_relative_url() }),
            )
        })
        .collect();
    json!({ "paths": paths })
}

/// The document of one built-in group-version, built on first use and cached.
pub fn builtin_doc(gv: &GroupVersion) -> Option<Arc<GroupVersionDoc>> {
    let (_, cell) = cache().iter().find(|(g, _)| g == gv)?;
    Some(
        cell.get_or_init(|| {
            let doc = v3_group_version(gv, registry::builtin(), &Map::new());
            Arc::new(GroupVersionDoc::from_value(gv.clone(), &doc))
        })
        .clone(),
    )
}

/// Every built-in group-version document, in discovery order (builds those not yet cached).
pub fn builtin_docs() -> Vec<Arc<GroupVersionDoc>> {
    cache()
        .iter()
        .filter_map(|(gv, _)| builtin_doc(gv))
        .collect()
}

type Cache = Vec<(GroupVersion, OnceLock<Arc<GroupVersionDoc>>)>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| {
        registry::builtin_group_versions()
            .into_iter()
            .map(|gv| (gv, OnceLock::new()))
            .collect()
    })
}

/// Builds the OpenAPI 3.0 document of group-version `gv` from the `resources` served in it
/// (others in the slice are skipped).
///
/// Kinds are looked up by their `x-kubernetes-group-version-kind` first in `extra` (custom
/// resources' definitions, keyed by definition name), then among the built-in definitions.
/// When `extra` is empty the kinds are built-ins and patch operations also accept
/// `application/strategic-merge-patch+json`. `components.schemas` holds every definition
/// reachable from the paths, so all `$ref`s resolve inside the document.
pub fn v3_group_version(
    gv: &GroupVersion,
    resources: &[Resource],
    extra: &Map<String, Value>,
) -> Value {
    let (paths, roots) = paths_and_roots(gv, resources, extra);
    let schemas = closure(roots, extra);
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

/// The `paths` of group-version `gv` (as in [`v3_group_version`]) and the definition names
/// they reference, for the `/openapi/v2` document too.
pub(crate) fn paths_and_roots(
    gv: &GroupVersion,
    resources: &[Resource],
    extra: &Map<String, Value>,
) -> (Map<String, Value>, Vec<String>) {
    let served: Vec<&Resource> = resources.iter().filter(|r| &r.gv == gv).collect();
    let lookup = |g: &str, v: &str, k: &str| -> Option<String> {
        let wanted = gvk(g, v, k);
        let in_extra = extra.iter().find(|(_, d)| {
            d.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|l| l.contains(&wanted))
        });
        match in_extra {
            Some((name, _)) => Some(name.clone()),
            None => definitions().kind_name(g, v, k).map(str::to_owned),
        }
    };
    let mut roots = vec![
        STATUS.to_owned(),
        DELETE_OPTIONS.to_owned(),
        PATCH.to_owned(),
        WATCH_EVENT.to_owned(),
        API_RESOURCE_LIST.to_owned(),
    ];
    let paths = paths::paths(
        &gv.url_prefix(),
        &served,
        &lookup,
        extra.is_empty(),
        &mut roots,
    );
    (paths, roots)
}

/// Every definition reachable from `roots`, sorted by name.
fn closure(roots: Vec<String>, extra: &Map<String, Value>) -> Map<String, Value> {
    let builtin = definitions();
    let get = |n: &str| extra.get(n).or_else(|| builtin.get(n));
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo = roots;
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        if let Some(def) = get(&name) {
            collect_refs(def, &mut todo);
            seen.insert(name);
        }
    }
    seen.into_iter()
        .filter_map(|n| get(&n).map(|d| (n.clone(), d.clone())))
        .collect()
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
            {
                out.push(r.to_owned());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// One served version of a custom resource: its kind and `openAPIV3Schema`.
#[derive(Debug, Clone, Copy)]
pub struct CrdKind<'a> {
    /// The kind, e.g. `CronTab`.
    pub kind: &'a str,
    /// The version's `schema.openAPIV3Schema` from the CustomResourceDefinition.
    pub schema: &'a Value,
}

/// The document of a custom resource group-version: `resources` are the CRD resources served
/// in `gv` (as registered in discovery), `kinds` their schemas. Definitions are named like
/// upstream (group reversed: `com.example.stable.v1.CronTab`); `metadata` is pointed at
/// `ObjectMeta` and `apiVersion`/`kind` are added when the CRD schema leaves them out.
pub fn crd_group_version(
    gv: &GroupVersion,
    resources: &[Resource],
    kinds: &[CrdKind<'_>],
) -> GroupVersionDoc {
    let extra = crd_definitions(gv, kinds);
    let doc = v3_group_version(gv, resources, &extra);
    GroupVersionDoc::from_value(gv.clone(), &doc)
}

/// The definitions of custom resource kinds in `gv` and of their lists, named like upstream.
pub(crate) fn crd_definitions(gv: &GroupVersion, kinds: &[CrdKind<'_>]) -> Map<String, Value> {
    let mut extra = Map::new();
    let reversed: Vec<&str> = gv.group.split('.').rev().collect();
    let prefix = format!("{}.{}", reversed.join("."), gv.version);
    for k in kinds {
        let name = format!("{prefix}.{}", k.kind);
        let mut schema = k.schema.clone();
        if let Value::Object(s) = &mut schema {
            let props = s.entry("properties").or_insert_with(|| json!({}));
            if let Value::Object(p) = props {
                for f in ["apiVersion", "kind"] {
                    p.entry(f).or_insert_with(|| json!({ "type": "string" }));
                }
                p.insert(
                    "metadata".into(),
                    json!({ "description": "Standard object's metadata.", "allOf": [ref_to(OBJECT_META)] }),
                );
            }
            s.entry("type").or_insert_with(|| "object".into());
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(&gv.group, &gv.version, k.kind)]),
            );
        }
        let list = json!({
            "description": format!("{}List is a list of {}", k.kind, k.kind),
            "type": "object",
            "properties": {
                "apiVersion": { "type": "string" },
                "items": { "type": "array", "items": ref_to(&name) },
                "kind": { "type": "string" },
                "metadata": { "allOf": [ref_to(crate::defs::LIST_META)] },
            },
            "required": ["items"],
            "x-kubernetes-group-version-kind": [gvk(&gv.group, &gv.version, &format!("{}List", k.kind))],
        });
        extra.insert(name.clone(), schema);
        extra.insert(format!("{name}List"), list);
    }
    extra
}
