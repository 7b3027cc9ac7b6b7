//! get, list, and the object/list/Table response forms; OpenAPI documents.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use drover_core::registry::Resource;
use drover_core::selector::{FieldSelector, Selector};
use drover_core::table;
use drover_store::{RangeRequest, Revision, Store, prefix_end};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use super::{Ctx, convert, fields};
use crate::body::Body;
use crate::negotiate::{self, Encoding, Output};
use crate::objects::{decode_stored, parse_rv};
use crate::route::{Query, Route};
use crate::state::State;
use crate::status::{ApiError, ApiResult};

/// Label and field selection for lists and watches.
pub(crate) struct Selection {
    pub(crate) labels: Option<Selector>,
    pub(crate) fields: Option<FieldSelector>,
}

impl Selection {
    pub(crate) fn from_query(ctx: &Ctx<'_>) -> ApiResult<Selection> {
        Selection::parse(ctx.query, &ctx.res)
    }

    /// Parses `labelSelector` and `fieldSelector`; fields must be ones `res` can select on.
    pub(crate) fn parse(query: &Query, res: &Resource) -> ApiResult<Selection> {
        let labels =
            match query.get("labelSelector").filter(|s| !s.trim().is_empty()) {
                Some(s) => Some(s.parse::<Selector>().map_err(|e| {
                    ApiError::BadRequest(format!("unable to parse requirement: {e}"))
                })?),
                None => None,
            };
        let fields = match query.get("fieldSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let sel =
                    FieldSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                let supported = fields::supported(&res.gv.group, &res.kind);
                let custom: &[String] = res.custom.as_ref().map_or(&[], |c| &c.selectable_fields);
                for req in sel.requirements() {
                    let f = req.field.as_str();
                    if f != "metadata.name"
                        && f != "metadata.namespace"
                        && !supported.contains(&f)
                        && !custom.iter().any(|c| c == f)
                    {
                        return Err(ApiError::BadRequest(format!(
                            "field label not supported: {f}"
                        )));
                    }
                }
                Some(sel)
            }
            None => None,
        };
        Ok(Selection { labels, fields })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    /// True when the (storage-form) object matches.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            let labels = obj.pointer("/metadata/labels").unwrap_or(&Value::Null);
            if !l.matches(labels) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            let values: Vec<(String, Option<String>)> = f
                .requirements()
                .iter()
                .map(|r| (r.field.clone(), fields::value(obj, &r.field)))
                .collect();
            return f.matches(|path| {
                values
                    .iter()
                    .find(|(p, _)| p == path)
                    .and_then(|(_, v)| v.as_deref())
            });
        }
        true
    }
}

/// GET of one object (also `/status`).
pub(crate) async fn get(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let storage = ctx.storage_res();
    let obj = if ctx.query.get("resourceVersion") == Some("0") {
        let key = storage.key(ctx.ns(), ctx.name());
        ctx.state
            .cache
            .get(&key)
            .map(|e| decode_stored(&e.value, e.mod_revision))
            .transpose()?
    } else {
        ctx.state
            .objects
            .get(&storage, ctx.ns(), ctx.name())
            .await?
            .map(|(o, _)| o)
    };
    let obj = obj.ok_or_else(|| ApiError::NotFound(ctx.target()))?;
    let obj = convert::from_storage(&ctx.res, obj);
    respond_objects(&ctx, StatusCode::OK, vec![obj], None)
}

/// A position in a paginated list.
pub(super) struct ContinueToken {
    pub(super) revision: Revision,
    /// The last key returned.
    pub(super) after: String,
}

pub(super) fn encode_continue(revision: Revision, after: &str) -> String {
    B64.encode(json!({"v": "meta.k8s.io/v1", "rv": revision, "start": after}).to_string())
}

pub(super) fn decode_continue(token: &str) -> ApiResult<ContinueToken> {
    let bad = || {
        ApiError::BadRequest("invalid value for continue: the continue token is malformed; restart the list without it".into())
    };
    let raw = B64.decode(token.trim_end_matches('=')).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let revision = v["rv"].as_i64().ok_or_else(bad)?;
    let after = v["start"].as_str().ok_or_else(bad)?.to_owned();
    Ok(ContinueToken { revision, after })
}

/// The key prefix a request lists: one namespace or all.
pub(crate) fn list_prefix(ctx: &Ctx<'_>) -> String {
    let storage = ctx.storage_res();
    match ctx.ns() {
        Some(ns) => format!("{}{ns}/", storage.key_prefix()),
        None => storage.key_prefix(),
    }
}

/// The `limit` parameter: 0 (unset) means no limit.
pub(super) fn parse_limit(query: &Query) -> ApiResult<usize> {
    match query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "invalid limit {l:?}: must be a non-negative integer"
            ))
        }),
        None => Ok(0),
    }
}

/// LIST.
pub(crate) async fn list(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let selection = Selection::from_query(&ctx)?;
    let limit = parse_limit(ctx.query)?;
    let prefix = list_prefix(&ctx);
    let rv = ctx.query.get("resourceVersion").filter(|r| !r.is_empty());
    let rv_match = ctx
        .query
        .get("resourceVersionMatch")
        .filter(|r| !r.is_empty());
    let token = ctx.query.get("continue").filter(|c| !c.is_empty());
    if token.is_some() && rv.is_some_and(|r| r != "0") {
        return Err(ApiError::BadRequest(
            "specifying resource version is not allowed when using continue".into(),
        ));
    }
    if rv_match.is_some() && rv.is_none() {
        return Err(ApiError::BadRequest(
            "resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
        ));
    }

    // Matching objects as their stored bytes; decoded again one at a time on output, so a
    // large list never holds every object decoded at once.
    let mut items: Vec<(Bytes, Revision)> = Vec::new();
    let mut next: Option<String> = None;
    let revision;
    if let Some(token) = token {
        let t = decode_continue(token)?;
        revision = t.revision;
        next = from_store(
            &ctx,
            &prefix,
            Some(&t.after),
            t.revision,
            &selection,
            limit,
            &mut items,
        )
        .await?;
    } else if rv_match == Some("Exact") {
        let r = parse_rv(rv.unwrap_or("0"))?;
        revision = r;
        next = from_store(&ctx, &prefix, None, r, &selection, limit, &mut items).await?;
    } else {
        // Served from the watch cache: "0" = any state; N = at least N; unset = the latest.
        match rv {
            Some("0") => {}
            Some(r) => ctx.state.cache.wait_for(parse_rv(r)?).await?,
            None => {
                let current = ctx.state.store.current_revision().await?;
                ctx.state.cache.wait_for(current).await?;
            }
        }
        let snap = ctx.state.cache.snapshot(&prefix, None);
        revision = snap.revision;
        let mut last_key = None;
        for (key, entry) in snap.items {
            if !selection.is_empty()
                && !selection.matches(&decode_stored(&entry.value, entry.mod_revision)?)
            {
                continue;
            }
            if limit > 0 && items.len() == limit {
                next = last_key.map(|k: Arc<str>| encode_continue(revision, &k));
                break;
            }
            items.push((crate::cache::Entry::bytes(&entry), entry.mod_revision));
            last_key = Some(key);
        }
    }
    let mut list_meta = json!({"resourceVersion": revision.to_string()});
    if let Some(c) = next {
        list_meta["continue"] = c.into();
    }
    match negotiate::choose_output(ctx.accept(), true)? {
        Output::Object(Encoding::Json) => return stream_json_list(&ctx, &items, &list_meta),
        Output::Table { v1beta1 } => {
            let include = ctx.query.get("includeObject").unwrap_or("Metadata");
            return stream_table_list(&ctx, &items, &list_meta, include, v1beta1);
        }
        _ => {}
    }
    let items: Vec<Value> = items
        .iter()
        .map(|(bytes, rev)| decode_stored(bytes, *rev).map(|o| convert::from_storage(&ctx.res, o)))
        .collect::<ApiResult<_>>()?;
    respond_objects(&ctx, StatusCode::OK, items, Some(list_meta))
}

/// Writes a Table row by row, each object decoded only while its row is made (a Table of a
/// large list must not hold every object decoded at once). Rows come in [`row_order`].
fn stream_table_list(
    ctx: &Ctx<'_>,
    items: &[(Bytes, Revision)],
    list_meta: &Value,
    include: &str,
    v1beta1: bool,
) -> ApiResult<Response<Body>> {
    let mut head = super::write::table_for(&ctx.res, &[], list_meta.clone(), include, v1beta1);
    if let Some(m) = head.as_object_mut() {
        m.remove("rows");
    }
    let mut out = serde_json::to_vec(&head).map_err(ApiError::internal)?;
    out.pop(); // the closing brace; rows follow
    out.extend_from_slice(b",\"rows\":[");
    let mut written = 0usize;
    for i in row_order(&ctx.res, items)? {
        let (bytes, rev) = &items[i];
        let obj = convert::from_storage(&ctx.res, decode_stored(bytes, *rev)?);
        let mut one = super::write::table_for(&ctx.res, &[obj], json!({}), include, v1beta1);
        if let Some(row) = one
            .get_mut("rows")
            .and_then(|r| r.get_mut(0))
            .map(Value::take)
        {
            if written > 0 {
                out.push(b',');
            }
            written += 1;
            serde_json::to_writer(&mut out, &row).map_err(ApiError::internal)?;
        }
    }
    out.extend_from_slice(b"]}");
    Ok(json_bytes_response(out))
}

/// The order a list's Table prints `items` in: their list (store) order, except for kinds
/// whose upstream list printer sorts the rows (FlowSchema: by matchingPrecedence, then name;
/// see [`table::sorts_rows`]). Like upstream, which sorts the items of the one list response
/// it prints, the sort covers `items` only: with `limit`/`continue` each page is sorted on its
/// own, and the pages themselves follow store (name) order. Only the small sort keys are held,
/// not the decoded objects.
fn row_order(res: &Resource, items: &[(Bytes, Revision)]) -> ApiResult<Vec<usize>> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    if res.custom.is_some() || !table::sorts_rows(&res.gv.group, &res.kind) {
        return Ok(order);
    }
    let mut keys = Vec::with_capacity(items.len());
    for (bytes, rev) in items {
        let obj = convert::from_storage(res, decode_stored(bytes, *rev)?);
        keys.push(table::row_sort_key(&res.gv.group, &res.kind, &obj));
    }
    // Stable, as the one-shot table::table sorts.
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    Ok(order)
}

/// A 200 answer with an already encoded JSON body.
fn json_bytes_response(body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(negotiate::JSON),
    );
    r
}

/// Writes a JSON list object by object: each item is decoded, given its resource version,
/// converted and written, then dropped.
fn stream_json_list(
    ctx: &Ctx<'_>,
    items: &[(Bytes, Revision)],
    list_meta: &Value,
) -> ApiResult<Response<Body>> {
    let mut out = Vec::with_capacity(items.iter().map(|(b, _)| b.len() + 40).sum::<usize>() + 256);
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut out, &format!("{}List", ctx.res.kind))
        .map_err(ApiError::internal)?;
    out.extend_from_slice(b",\"apiVersion\":");
    serde_json::to_writer(&mut out, &ctx.res.api_version()).map_err(ApiError::internal)?;
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut out, list_meta).map_err(ApiError::internal)?;
    out.extend_from_slice(b",\"items\":[");
    for (i, (bytes, rev)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let obj = convert::from_storage(&ctx.res, decode_stored(bytes, *rev)?);
        serde_json::to_writer(&mut out, &obj).map_err(ApiError::internal)?;
    }
    out.extend_from_slice(b"]}");
    Ok(json_bytes_response(out))
}

/// Reads a page from the store at a revision (continuations and exact reads).
async fn from_store(
    ctx: &Ctx<'_>,
    prefix: &str,
    after: Option<&str>,
    revision: Revision,
    selection: &Selection,
    limit: usize,
    items: &mut Vec<(Bytes, Revision)>,
) -> ApiResult<Option<String>> {
    let mut start = match after {
        Some(k) => format!("{k}\0"),
        None => prefix.to_owned(),
    };
    // The last key looked at, across store pages: a continuation resumes right after it.
    let mut last: Option<String> = None;
    loop {
        let request = RangeRequest {
            start: start.clone(),
            end: prefix_end(prefix),
            limit: 500,
            revision,
            skip_count: true,
        };
        let page = ctx.state.store.range(request).await.map_err(|e| match e {
            drover_store::Error::Compacted { .. } => ApiError::Gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."
                    .into(),
            ),
            other => other.into(),
        })?;
        for kv in &page.kvs {
            if selection.is_empty()
                || selection.matches(&decode_stored(&kv.value, kv.mod_revision)?)
            {
                if limit > 0 && items.len() == limit {
                    return Ok(last.map(|k| encode_continue(revision, &k)));
                }
                items.push((kv.value.clone(), kv.mod_revision));
            }
            last = Some(kv.key.clone());
        }
        if !page.more {
            return Ok(None);
        }
        start = format!("{}\0", last.as_deref().unwrap_or(prefix));
    }
}

/// Renders objects (one object when `list_meta` is `None`, else a list) in the negotiated form.
pub(crate) fn respond_objects(
    ctx: &Ctx<'_>,
    code: StatusCode,
    items: Vec<Value>,
    list_meta: Option<Value>,
) -> ApiResult<Response<Body>> {
    let output = negotiate::choose_output(ctx.accept(), true)?;
    let value = match output {
        Output::Table { v1beta1 } => {
            let include = ctx.query.get("includeObject").unwrap_or("Metadata");
            super::write::table(
                ctx,
                &items,
                list_meta.clone().unwrap_or_else(|| json!({})),
                include,
                v1beta1,
            )
        }
        Output::Metadata { v1beta1 } => {
            let api = if v1beta1 {
                "meta.k8s.io/v1beta1"
            } else {
                "meta.k8s.io/v1"
            };
            let partial: Vec<Value> = items.iter().map(|o| partial_metadata(o, api)).collect();
            match list_meta {
                Some(meta) => {
                    json!({"kind": "PartialObjectMetadataList", "apiVersion": api, "metadata": meta, "items": partial})
                }
                None => partial.into_iter().next().unwrap_or(Value::Null),
            }
        }
        Output::Object(_) => match list_meta {
            Some(meta) => json!({
                "kind": format!("{}List", ctx.res.kind),
                "apiVersion": ctx.res.api_version(),
                "metadata": meta,
                "items": items,
            }),
            None => items.into_iter().next().unwrap_or(Value::Null),
        },
    };
    let enc = match output {
        Output::Object(e) => e,
        _ => Encoding::Json,
    };
    let (bytes, ct) = negotiate::encode(&value, enc);
    let mut r = Response::new(Body::full(bytes));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

/// The `PartialObjectMetadata` form of an object.
pub(crate) fn partial_metadata(obj: &Value, api_version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": api_version,
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| Value::Object(Map::new())),
    })
}

/// The OpenAPI documents of the custom resource group-versions (cached until CRDs change).
fn crd_docs(state: &State) -> Arc<Vec<Arc<drover_schema::GroupVersionDoc>>> {
    let generation = state.resources.generation();
    if let Some((g, docs)) = state.crd_docs.read().as_ref()
        && *g == generation
    {
        return Arc::clone(docs);
    }
    let all = state.resources.all();
    let mut gvs: Vec<drover_core::registry::GroupVersion> = Vec::new();
    for r in all.iter().filter(|r| r.custom.is_some()) {
        if !gvs.contains(&r.gv) {
            gvs.push(r.gv.clone());
        }
    }
    let docs: Vec<Arc<drover_schema::GroupVersionDoc>> = gvs
        .iter()
        .map(|gv| {
            let rs: Vec<drover_core::registry::Resource> = all
                .iter()
                .filter(|r| r.gv == *gv && r.custom.is_some())
                .cloned()
                .collect();
            let kinds: Vec<drover_schema::CrdKind<'_>> = rs
                .iter()
                .map(|r| drover_schema::CrdKind {
                    kind: &r.kind,
                    schema: &r.custom.as_ref().expect("custom").schema,
                })
                .collect();
            Arc::new(drover_schema::crd_group_version(gv, &rs, &kinds))
        })
        .collect();
    let docs = Arc::new(docs);
    *state.crd_docs.write() = Some((generation, Arc::clone(&docs)));
    docs
}

/// `/openapi/v3` (index), `/openapi/v3/<gv>`, and `/openapi/v2` (protobuf for kubectl, which
/// validates with it in 1.27/1.28 and for `kind: List` files; JSON for everyone else).
pub(crate) fn openapi(state: &State, route: &Route, headers: &HeaderMap) -> Response<Body> {
    match route {
        Route::OpenApiV3Index => {
            let docs = drover_schema::builtin_docs();
            let custom = crd_docs(state);
            let index =
                drover_schema::v3_index(docs.iter().chain(custom.iter()).map(|d| d.as_ref()));
            crate::json_response(StatusCode::OK, &index)
        }
        Route::OpenApiV3 { group, version } => {
            let gv = drover_core::registry::GroupVersion {
                group: group.clone().into(),
                version: version.clone().into(),
            };
            let doc = drover_schema::builtin_doc(&gv)
                .or_else(|| crd_docs(state).iter().find(|d| d.gv == gv).cloned());
            match doc {
                Some(doc) => {
                    let etag = format!("\"{}\"", doc.hash);
                    let inm = headers
                        .get(header::IF_NONE_MATCH)
                        .and_then(|v| v.to_str().ok());
                    let mut r = if inm == Some(etag.as_str()) {
                        let mut r = Response::new(Body::empty());
                        *r.status_mut() = StatusCode::NOT_MODIFIED;
                        r
                    } else {
                        let mut r =
                            Response::new(Body::full(bytes::Bytes::copy_from_slice(&doc.body)));
                        r.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                        r
                    };
                    r.headers_mut()
                        .insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
                    r.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, immutable"),
                    );
                    r
                }
                None => crate::error_response(&ApiError::NotFoundMessage(
                    "the server could not find the requested resource".into(),
                )),
            }
        }
        _ => {
            // /openapi/v2: kubectl accepts only gnostic protobuf; everyone else gets JSON.
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
            let format = drover_schema::V2Format::from_accept(accept);
            let doc = drover_schema::v2_doc(format, &state.resources.all());
            let etag = format!("\"{}\"", doc.hash);
            let inm = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok());
            let mut r = if inm == Some(etag.as_str()) {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::NOT_MODIFIED;
                r
            } else {
                let mut r = Response::new(Body::full(bytes::Bytes::copy_from_slice(&doc.body)));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(format.content_type()),
                );
                r
            };
            r.headers_mut()
                .insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
            r.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(group: &str, kind: &str) -> &'static Resource {
        drover_core::registry::builtin()
            .iter()
            .find(|r| r.gv.group == group && r.kind == kind && r.gv.version == "v1")
            .expect("built-in resource")
    }

    fn stored(objects: &[Value]) -> Vec<(Bytes, Revision)> {
        objects
            .iter()
            .zip(1..)
            .map(|(o, rev)| (Bytes::from(serde_json::to_vec(o).unwrap()), rev))
            .collect()
    }

    fn names(items: &[(Bytes, Revision)], order: &[usize]) -> Vec<String> {
        order
            .iter()
            .map(|&i| {
                decode_stored(&items[i].0, items[i].1).unwrap()["metadata"]["name"].to_string()
            })
            .map(|n| n.trim_matches('"').to_owned())
            .collect()
    }

    #[test]
    fn streamed_flow_schema_tables_sort_by_precedence_then_name_like_the_one_shot_table() {
        let fs = |name: &str, precedence: i64| {
            json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
                   "metadata": {"name": name},
                   "spec": {"matchingPrecedence": precedence,
                            "priorityLevelConfiguration": {"name": "global-default"}}})
        };
        // Store order is key (name) order.
        let objects = [
            fs("catch-all", 10000),
            fs("exempt", 1),
            fs("global-default", 9900),
            fs("leader-election", 100),
            fs("probes", 2),
            fs("system-nodes", 500),
            fs("system-leader-election", 100),
        ];
        let items = stored(&objects);
        let res = resource("flowcontrol.apiserver.k8s.io", "FlowSchema");
        let order = row_order(res, &items).unwrap();
        assert_eq!(
            names(&items, &order),
            [
                "exempt",
                "probes",
                "leader-election",
                "system-leader-election",
                "system-nodes",
                "global-default",
                "catch-all",
            ]
        );
        // The streamed order is the one-shot table's order.
        let t = table::table(
            &res.gv.group,
            &res.kind,
            &objects,
            0,
            table::IncludeObject::None,
            &Value::Null,
        );
        let one_shot: Vec<&str> = t["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cells"][0].as_str().unwrap())
            .collect();
        assert_eq!(names(&items, &order), one_shot);
    }

    #[test]
    fn priority_level_tables_keep_list_order_as_upstream_prints_them() {
        let plc = |name: &str| {
            json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1",
                   "kind": "PriorityLevelConfiguration", "metadata": {"name": name},
                   "spec": {"type": "Limited"}})
        };
        let items = stored(&[plc("workload-low"), plc("exempt"), plc("catch-all")]);
        let res = resource("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration");
        assert_eq!(row_order(res, &items).unwrap(), [0, 1, 2]);
        assert!(!table::sorts_rows(&res.gv.group, &res.kind));
    }
}
