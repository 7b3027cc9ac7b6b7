//! The `/openapi/v2` document: one Swagger 2.0 document of the whole API.
//!
//! kubectl 1.27 and 1.28 fetch it to validate `apply -f`/`create -f`, and every kubectl
//! validates the items of a `kind: List` file with it, always as gnostic protobuf
//! ([`V2_PROTOBUF`]). The definitions are the v3 ones converted to shapes kube-openapi's
//! parser accepts (`convert`), the paths the v3 paths of every group-version converted to
//! Swagger operations (kubectl's query-parameter verifier looks for a `patch` operation with
//! the kind's `x-kubernetes-group-version-kind` and a `fieldValidation` parameter).
//!
//! The document is built on first request and only its serialized form is kept
//! ([`v2_doc`]); custom resources are included, and the cached document is rebuilt when
//! their definitions change.

mod convert;
mod gnostic;
mod pb;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use drover_core::registry::{self, GroupVersion, Resource};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use crate::defs::definitions;
use crate::v3::{CrdKind, crd_definitions, paths_and_roots};

/// The media type kubectl asks for, and the only one it accepts, on `/openapi/v2`.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The `Content-Type` of the protobuf document. `@` is not a token character, so Go's
/// `mime.ParseMediaType` (and with it kubectl) rejects [`V2_PROTOBUF`] as a response type;
/// upstream answers with this dotted spelling (kube-openapi `pkg/handler`: `subTypeProtobuf`),
/// which it also accepts in `Accept`.
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// How `/openapi/v2` is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Format {
    /// Swagger 2.0 JSON (`application/json`).
    Json,
    /// gnostic `openapi.v2.Document` protobuf ([`V2_PROTOBUF`]).
    Protobuf,
}

impl V2Format {
    /// The format an `Accept` header asks for: protobuf when it names gnostic's v2 media
    /// type (either spelling), JSON otherwise.
    pub fn from_accept(accept: Option<&str>) -> V2Format {
        let proto = |a: &str| a.contains("application/com.github.proto-openapi.spec.v2");
        if accept.is_some_and(proto) {
            V2Format::Protobuf
        } else {
            V2Format::Json
        }
    }

    /// The `Content-Type` of a document in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            V2Format::Json => "application/json",
            V2Format::Protobuf => V2_PROTOBUF_CONTENT_TYPE,
        }
    }
}

/// One serialized `/openapi/v2` document, ready to serve.
#[derive(Debug)]
pub struct V2Doc {
    /// Uppercase hex SHA-512 of `body`: the ETag.
    pub hash: String,
    /// The document.
    pub body: Arc<[u8]>,
}

/// The Swagger 2.0 document of the built-in API plus the custom resources among
/// `resources` (others are ignored, so the server's full resource list can be passed).
pub fn v2_document(resources: &[Resource]) -> Value {
    let sources = Sources::new(resources);
    let mut paths = Map::new();
    sources.paths(&mut |k, v| {
        paths.insert(k.to_owned(), v.clone());
    });
    let mut defs = Map::new();
    sources.definitions(&mut |k, v| {
        defs.insert(k.to_owned(), v.clone());
    });
    let mut doc = top();
    doc["paths"] = Value::Object(paths);
    doc["definitions"] = Value::Object(defs);
    doc
}

/// Encodes a document from [`v2_document`] as gnostic `openapi.v2.Document` protobuf.
pub fn v2_protobuf(doc: &Value) -> Vec<u8> {
    gnostic::document(doc)
}

/// The same bytes as `v2_protobuf(&v2_document(resources))`, but each path item and
/// definition is converted, encoded and dropped in turn: the whole converted document would
/// cost several MB of heap for a moment, which the allocator keeps.
fn protobuf_streamed(resources: &[Resource]) -> Vec<u8> {
    let sources = Sources::new(resources);
    gnostic::document_from(&top(), |f| sources.paths(f), |f| sources.definitions(f))
}

fn top() -> Value {
    json!({ "swagger": "2.0", "info": { "title": "Kubernetes", "version": "v1.33.0" } })
}

/// What the document is made of before conversion: the built-in definitions and resources,
/// and the definitions of each custom group-version.
struct Sources {
    crds: Vec<(GroupVersion, Vec<Resource>, Map<String, Value>)>,
}

impl Sources {
    fn new(resources: &[Resource]) -> Sources {
        let crds = custom_group_versions(resources)
            .into_iter()
            .map(|(gv, rs)| {
                let kinds: Vec<CrdKind<'_>> = rs
                    .iter()
                    .filter_map(|r| {
                        let c = r.custom.as_ref()?;
                        Some(CrdKind {
                            kind: &r.kind,
                            schema: &c.schema,
                        })
                    })
                    .collect();
                let extra = crd_definitions(&gv, &kinds);
                (gv, rs, extra)
            })
            .collect();
        Sources { crds }
    }

    /// Every path item, converted, built-in group-versions first.
    fn paths(&self, f: &mut dyn FnMut(&str, &Value)) {
        let none = Map::new();
        let builtin = registry::builtin_group_versions();
        let builtin = builtin.iter().map(|gv| (gv, registry::builtin(), &none));
        let custom = self.crds.iter().map(|(gv, rs, extra)| (gv, &rs[..], extra));
        for (gv, rs, extra) in builtin.chain(custom) {
            let (paths, _) = paths_and_roots(gv, rs, extra);
            for (k, v) in &paths {
                f(k, &convert::path_item(v));
            }
        }
    }

    /// Every definition, converted, sorted by name.
    fn definitions(&self, f: &mut dyn FnMut(&str, &Value)) {
        let mut all: BTreeMap<&str, (&Value, bool)> = definitions()
            .schemas()
            .iter()
            .map(|(n, d)| (n.as_str(), (d, false)))
            .collect();
        for (_, _, extra) in &self.crds {
            all.extend(extra.iter().map(|(n, d)| (n.as_str(), (d, true))));
        }
        for (name, (d, crd)) in all {
            let converted = if crd {
                convert::crd_definition(d)
            } else {
                convert::definition(name, d)
            };
            f(name, &converted);
        }
    }
}

/// The custom resources among `resources`, grouped by group-version in first-seen order.
fn custom_group_versions(resources: &[Resource]) -> Vec<(GroupVersion, Vec<Resource>)> {
    let mut out: Vec<(GroupVersion, Vec<Resource>)> = Vec::new();
    for r in resources.iter().filter(|r| r.custom.is_some()) {
        match out.iter_mut().find(|(gv, _)| *gv == r.gv) {
            Some((_, rs)) => rs.push(r.clone()),
            None => out.push((r.gv.clone(), vec![r.clone()])),
        }
    }
    out
}

/// The `/openapi/v2` document in `format`, covering the custom resources among `resources`.
///
/// Built on first use and cached (one document per format); rebuilt when the custom
/// resources differ from those the cached one was built from.
pub fn v2_doc(format: V2Format, resources: &[Resource]) -> Arc<V2Doc> {
    type Slot = Mutex<Option<(Vec<u8>, Arc<V2Doc>)>>;
    static JSON: Slot = Mutex::new(None);
    static PROTOBUF: Slot = Mutex::new(None);
    let slot = match format {
        V2Format::Json => &JSON,
        V2Format::Protobuf => &PROTOBUF,
    };
    let key = custom_fingerprint(resources);
    // Held while building: concurrent first requests wait for one build instead of racing.
    let mut cached = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, doc)) = cached.as_ref()
        && *k == key
    {
        return Arc::clone(doc);
    }
    let body = match format {
        V2Format::Json => serde_json::to_vec(&v2_document(resources)).unwrap_or_default(),
        V2Format::Protobuf => protobuf_streamed(resources),
    };
    let doc = Arc::new(V2Doc {
        hash: hex(&Sha512::digest(&body)),
        body: body.into(),
    });
    *cached = Some((key, Arc::clone(&doc)));
    doc
}

/// A digest of everything about the custom resources that shapes the document.
fn custom_fingerprint(resources: &[Resource]) -> Vec<u8> {
    let mut h = Sha512::new();
    for r in resources.iter().filter(|r| r.custom.is_some()) {
        h.update(format!("{r:?}").as_bytes());
    }
    h.finalize().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02X}")).collect()
}
