//! The OpenAPI definitions of every built-in kind, generated once from the `k8s-openapi` types.

use std::collections::HashMap;
use std::sync::OnceLock;

use drover_core::registry::{self, Verbs};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::{kinds, patch_meta};

/// Where OpenAPI v3 documents keep their schemas; `$ref`s point below it.
pub(crate) const REF_PREFIX: &str = "#/components/schemas/";

/// Definition names of the meta/v1 types every group-version document carries.
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// All OpenAPI definitions of the built-in API, named like upstream
/// (`io.k8s.api.apps.v1.Deployment`), with `$ref`s of the form `#/components/schemas/<name>`.
#[derive(Debug)]
pub struct Definitions {
    schemas: Map<String, Value>,
    /// (group, version, kind) → definition name, for top-level kinds and their lists.
    kinds: HashMap<(String, String, String), String>,
}

impl Definitions {
    /// The definition called `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.schemas.get(name)
    }

    /// Every definition by name.
    pub fn schemas(&self) -> &Map<String, Value> {
        &self.schemas
    }

    /// The definition name of a built-in kind (including `...List` kinds).
    pub fn kind_name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))
            .map(String::as_str)
    }
}

/// The built-in definitions, generated on first use (not at startup: they cost several MB).
pub fn definitions() -> &'static Definitions {
    static DEFS: OnceLock<Definitions> = OnceLock::new();
    DEFS.get_or_init(build)
}

/// The `x-kubernetes-group-version-kind` entry of one kind.
pub(crate) fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// A `$ref` to a definition, wrapped like upstream so a description can sit beside it.
pub(crate) fn ref_to(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

/// Every definition reachable from the built-in kinds and the meta/v1 types, before extensions.
pub(crate) fn generate() -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    for k in kinds::KINDS {
        (k.generate)(&mut generator);
    }
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::APIResourceList>();
    generator.subschema_for::<meta::WatchEvent<()>>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::ListMeta>();
    generator.take_definitions(true)
}

fn build() -> Definitions {
    let mut schemas = generate();
    let mut kind_names = HashMap::new();

    for k in kinds::KINDS {
        let name = (k.name)().into_owned();
        if let Some(Value::Object(def)) = schemas.get_mut(&name) {
            def.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(k.group, k.version, k.kind)]),
            );
        }
        kind_names.insert(
            (k.group.to_owned(), k.version.to_owned(), k.kind.to_owned()),
            name,
        );
    }

    // List kinds: k8s-openapi models them with one generic type that has no schema.
    for r in registry::builtin()
        .iter()
        .filter(|r| r.verbs != Verbs::CreateOnly)
    {
        let Some(item) = kinds::find(&r.gv.group, &r.gv.version, &r.kind) else {
            continue;
        };
        let item_name = (item.name)();
        let list_kind = format!("{}List", r.kind);
        let list_name = format!("{item_name}List");
        schemas.insert(
            list_name.clone(),
            list_schema(&r.gv.group, &r.gv.version, &r.kind, &item_name),
        );
        kind_names.insert(
            (r.gv.group.to_string(), r.gv.version.to_string(), list_kind),
            list_name,
        );
    }

    // Status is core/v1; DeleteOptions and WatchEvent are registered in every group-version.
    if let Some(Value::Object(def)) = schemas.get_mut(STATUS) {
        def.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([gvk("", "v1", "Status")]),
        );
    }
    let gvs = registry::builtin_group_versions();
    for (name, kind) in [
        (DELETE_OPTIONS, "DeleteOptions"),
        (WATCH_EVENT, "WatchEvent"),
    ] {
        let list: Vec<Value> = gvs
            .iter()
            .map(|gv| gvk(&gv.group, &gv.version, kind))
            .collect();
        if let Some(Value::Object(def)) = schemas.get_mut(name) {
            def.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
        }
    }

    apply_patch_meta(&mut schemas);
    Definitions {
        schemas,
        kinds: kind_names,
    }
}

fn list_schema(group: &str, version: &str, kind: &str, item_name: &str) -> Value {
    let api_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": format!("APIVersion of this list: {api_version}."),
                "type": "string",
            },
            "items": {
                "description": format!("The {kind} objects in the list."),
                "type": "array",
                "items": ref_to(item_name),
            },
            "kind": {
                "description": format!("Kind of this list: {kind}List."),
                "type": "string",
            },
            "metadata": {
                "description": "Standard list metadata: resourceVersion and continue token.",
                "allOf": [ref_to(LIST_META)],
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [gvk(group, version, &format!("{kind}List"))],
    })
}

/// Writes the [`patch_meta::TABLE`] entries into the definitions as OpenAPI extensions and
/// returns the entries whose type or field does not exist.
fn apply_patch_meta(schemas: &mut Map<String, Value>) -> Vec<&'static patch_meta::FieldMeta> {
    let mut missing = Vec::new();
    for m in patch_meta::TABLE {
        let Some(Value::Object(def)) = schemas.get_mut(m.ty) else {
            missing.push(m);
            continue;
        };
        let target = if m.field.is_empty() {
            Some(def)
        } else {
            def.get_mut("properties")
                .and_then(|p| p.get_mut(m.field))
                .and_then(Value::as_object_mut)
        };
        let Some(target) = target else {
            missing.push(m);
            continue;
        };
        if let Some(s) = m.strategy {
            target.insert("x-kubernetes-patch-strategy".into(), s.into());
        }
        if let Some(k) = m.merge_key {
            target.insert("x-kubernetes-patch-merge-key".into(), k.into());
        }
        if let Some(t) = m.list_type {
            target.insert("x-kubernetes-list-type".into(), t.into());
        }
        if !m.map_keys.is_empty() {
            target.insert("x-kubernetes-list-map-keys".into(), json!(m.map_keys));
        }
        if let Some(t) = m.map_type {
            target.insert("x-kubernetes-map-type".into(), t.into());
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_patch_meta_entry_names_an_existing_type_and_field() {
        let mut schemas = generate();
        let missing = apply_patch_meta(&mut schemas);
        let missing: Vec<String> = missing
            .iter()
            .map(|m| format!("{}.{}", m.ty, m.field))
            .collect();
        assert!(
            missing.is_empty(),
            "patch_meta entries not found in the definitions: {missing:#?}"
        );
    }

    #[test]
    fn patch_meta_has_no_duplicates() {
        for (i, a) in patch_meta::TABLE.iter().enumerate() {
            for b in &patch_meta::TABLE[i + 1..] {
                assert!(
                    !(a.ty == b.ty && a.field == b.field),
                    "{}.{} listed twice",
                    a.ty,
                    a.field
                );
            }
        }
    }

    #[test]
    fn list_type_map_always_has_keys_and_merge_always_has_a_key_on_lists() {
        for m in patch_meta::TABLE {
            assert_eq!(
                m.list_type == Some("map"),
                !m.map_keys.is_empty(),
                "{}.{}",
                m.ty,
                m.field
            );
            if m.merges() {
                // A merged list of objects needs a merge key; `merge` on scalar sets does not.
                assert!(
                    m.merge_key.is_some() || m.list_type == Some("set"),
                    "{}.{}",
                    m.ty,
                    m.field
                );
            }
        }
    }
}
