//! DELETE and deletecollection: preconditions, propagation policies, finalizers, graceful pod
//! termination.

use drover_store::Store as _;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::read::{Selection, list_prefix, respond_objects};
use super::{Ctx, convert, strategy};
use crate::body::Body;
use crate::meta::meta_str;
use crate::negotiate;
use crate::objects::decode_stored;
use crate::route::Query;
use crate::status::{ApiError, ApiResult, Target};

/// Options of a delete: from the body (JSON or protobuf `DeleteOptions`) and the query.
pub(crate) struct DeleteOptions {
    pub(crate) propagation: Option<String>,
    pub(crate) grace: Option<i64>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) dry_run: bool,
}

fn delete_options(ctx: &Ctx<'_>) -> ApiResult<DeleteOptions> {
    parse_delete_options(ctx.content_type(), &ctx.body, ctx.query, &|| ctx.target())
}

/// `DeleteOptions` from a request body (empty: none) and the query; `target` names the
/// object in errors.
pub(super) fn parse_delete_options(
    content_type: Option<&str>,
    raw: &[u8],
    query: &Query,
    target: &dyn Fn() -> Target,
) -> ApiResult<DeleteOptions> {
    let body = if raw.is_empty() {
        Value::Null
    } else {
        negotiate::decode_object(content_type, raw)?
    };
    let mut propagation = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if propagation.is_none()
        && let Some(orphan) = body.get("orphanDependents").and_then(Value::as_bool)
    {
        propagation = Some(if orphan { "Orphan" } else { "Background" }.to_owned());
    }
    if let Some(p) = query.get("propagationPolicy") {
        propagation = Some(p.to_owned());
    }
    if let Some(p) = &propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::Invalid {
            target: target(),
            kind: "DeleteOptions".into(),
            causes: vec![crate::status::Cause::new(
                "FieldValueNotSupported",
                "propagationPolicy",
                format!(
                    "Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                ),
            )],
        });
    }
    let grace = body
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    let dry_run = super::dry_run(query)?
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        propagation,
        grace,
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
        dry_run,
    })
}

/// DELETE of one object.
pub(crate) async fn delete(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let opts = delete_options(&ctx)?;
    let name = ctx.name().to_owned();
    let obj = delete_one(&ctx, &name, &opts).await?;
    let obj = convert::from_storage(&ctx.res, obj);
    respond_objects(&ctx, StatusCode::OK, vec![obj], None)
}

pub(super) async fn delete_one(
    ctx: &Ctx<'_>,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    let storage = ctx.storage_res();
    delete_stored(ctx.state, &ctx.res, &storage, ctx.ns(), name, opts).await
}

/// Deletes (or marks for deletion) one stored object: preconditions, finalizers, graceful
/// pod termination, and freeing what it held once it is gone.
pub(crate) async fn delete_stored(
    state: &std::sync::Arc<crate::state::State>,
    res: &drover_core::registry::Resource,
    storage: &drover_core::registry::Resource,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    let target = || crate::objects::target(res, name);
    if opts.dry_run {
        let (cur, _) = state
            .objects
            .get(storage, ns, name)
            .await?
            .ok_or_else(|| ApiError::NotFound(target()))?;
        return Ok(cur);
    }
    let (obj, _) = state
        .objects
        .update(storage, ns, name, |cur| {
            let cur = cur.ok_or_else(|| ApiError::NotFound(target()))?;
            if let Some(uid) = &opts.uid
                && meta_str(&cur, "uid") != Some(uid.as_str()) {
                    return Err(ApiError::Conflict {
                        target: target(),
                        message: format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta_str(&cur, "uid").unwrap_or("")
                        ),
                    });
                }
            if let Some(rv) = &opts.resource_version
                && meta_str(&cur, "resourceVersion") != Some(rv.as_str()) {
                    return Err(ApiError::Conflict {
                        target: target(),
                        message: format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            meta_str(&cur, "resourceVersion").unwrap_or("")
                        ),
                    });
                }
            Ok(strategy::plan_delete(storage, cur, opts))
        })
        .await?;
    strategy::release(state, storage, &obj).await;
    Ok(obj)
}

/// DELETE of a collection: every object matching the selectors.
pub(crate) async fn delete_collection(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let opts = delete_options(&ctx)?;
    let selection = Selection::from_query(&ctx)?;
    let prefix = list_prefix(&ctx);
    let current = ctx
        .state
        .store
        .current_revision()
        .await
        .map_err(ApiError::from)?;
    ctx.state.cache.wait_for(current).await?;
    let snap = ctx.state.cache.snapshot(&prefix, None);
    let mut deleted = Vec::new();
    for (_, entry) in snap.items {
        let obj = decode_stored(&entry.value, entry.mod_revision)?;
        if !selection.matches(&obj) {
            continue;
        }
        let name = meta_str(&obj, "name").unwrap_or("").to_owned();
        match delete_one(&ctx, &name, &opts).await {
            Ok(o) => deleted.push(convert::from_storage(&ctx.res, o)),
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let meta = json!({"resourceVersion": ctx.state.cache.revision().to_string()});
    respond_objects(&ctx, StatusCode::OK, deleted, Some(meta))
}
