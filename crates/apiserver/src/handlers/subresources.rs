//! The scale, binding and eviction subresources.

use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::delete::{DeleteOptions, delete_one};
use super::write::{PatchKind, parse_patch_body, patch_type};
use super::{Ctx, strategy};
use crate::body::Body;
use crate::meta::meta_str;
use crate::negotiate;
use crate::objects::{Decision, conflict};
use crate::status::{ApiError, ApiResult};

/// GET/PUT/PATCH of `…/scale`.
pub(crate) async fn scale(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let storage = ctx.storage_res();
    let ns = ctx.ns().map(str::to_owned);
    let name = ctx.name().to_owned();
    let verb = ctx.rr.verb;
    if verb == crate::route::Verb::Get {
        let (obj, _) = ctx
            .state
            .objects
            .get(&storage, ns.as_deref(), &name)
            .await?
            .ok_or_else(|| ApiError::NotFound(ctx.target()))?;
        return scale_response(&ctx, StatusCode::OK, &strategy::scale_of(&storage, &obj));
    }
    let body = if verb == crate::route::Verb::Patch {
        let kind = patch_type(&ctx)?;
        Some((kind, parse_patch_body(&ctx, kind)?))
    } else {
        None
    };
    let put = if body.is_none() {
        Some(negotiate::decode_object(ctx.content_type(), &ctx.body)?)
    } else {
        None
    };
    let manager = ctx.field_manager();
    let api_version = ctx.res.api_version();
    let (obj, _) = ctx
        .state
        .objects
        .update(&storage, ns.as_deref(), &name, |cur| {
            let cur = cur.ok_or_else(|| ApiError::NotFound(ctx.target()))?;
            let scale = strategy::scale_of(&storage, &cur);
            let new_scale = match (&body, &put) {
                (Some((kind, patch)), _) => {
                    let mut s = scale.clone();
                    match kind {
                        PatchKind::Json => drover_core::patch::json_patch(&mut s, patch)
                            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                        _ => drover_core::patch::merge_patch(&mut s, patch),
                    }
                    s
                }
                (None, Some(p)) => {
                    let rv = meta_str(p, "resourceVersion").unwrap_or("");
                    if !rv.is_empty() && Some(rv) != meta_str(&cur, "resourceVersion") {
                        return Err(conflict(&ctx.res, &name));
                    }
                    p.clone()
                }
                (None, None) => unreachable!("one of body or put is set"),
            };
            let replicas = new_scale
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if replicas < 0 {
                return Err(ApiError::Invalid {
                    target: ctx.target(),
                    kind: "Scale".into(),
                    causes: vec![crate::status::Cause::invalid(
                        "spec.replicas",
                        &json!(replicas),
                        "must be greater than or equal to 0",
                    )],
                });
            }
            let mut new = cur.clone();
            strategy::set_replicas(&storage, &mut new, replicas);
            strategy::prepare_update(&storage, None, &cur, new, &manager, "Update", &api_version)
        })
        .await?;
    scale_response(&ctx, StatusCode::OK, &strategy::scale_of(&storage, &obj))
}

fn scale_response(ctx: &Ctx<'_>, code: StatusCode, scale: &Value) -> ApiResult<Response<Body>> {
    let output = negotiate::choose_output(ctx.accept(), false)?;
    let enc = match output {
        negotiate::Output::Object(e) => e,
        _ => negotiate::Encoding::Json,
    };
    let (bytes, ct) = negotiate::encode(scale, enc);
    let mut r = Response::new(Body::full(bytes));
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ct),
    );
    Ok(r)
}

/// POST `pods/NAME/binding`: assigns the pod to a node (what a scheduler does).
pub(crate) async fn binding(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let binding = negotiate::decode_object(ctx.content_type(), &ctx.body)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if node.is_empty() {
        return Err(ApiError::Invalid {
            target: ctx.target(),
            kind: "Binding".into(),
            causes: vec![crate::status::Cause::required("target.name")],
        });
    }
    let storage = ctx.storage_res();
    let ns = ctx.ns().map(str::to_owned);
    let name = ctx.name().to_owned();
    ctx.state
        .objects
        .update(&storage, ns.as_deref(), &name, |cur| {
            let mut cur = cur.ok_or_else(|| ApiError::NotFound(ctx.target()))?;
            if let Some(existing) = cur.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                return Err(ApiError::Conflict {
                    target: ctx.target(),
                    message: format!("Operation cannot be fulfilled on pods/binding {name:?}: pod {name} is already assigned to node {existing:?}"),
                });
            }
            crate::meta::object_mut(&mut cur, "spec").insert("nodeName".into(), node.clone().into());
            Ok(Decision::Write(cur))
        })
        .await?;
    let status = crate::status::success_status(None);
    super::respond(&ctx, StatusCode::CREATED, &status)
}

/// POST `pods/NAME/eviction`: deletes the pod (PodDisruptionBudgets are checked once a
/// disruption controller maintains their status).
pub(crate) async fn eviction(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let eviction = negotiate::decode_object(ctx.content_type(), &ctx.body)?;
    let opts_body = eviction
        .get("deleteOptions")
        .cloned()
        .unwrap_or(Value::Null);
    let opts = DeleteOptions {
        propagation: opts_body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_owned),
        grace: opts_body.get("gracePeriodSeconds").and_then(Value::as_i64),
        uid: opts_body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: None,
        dry_run: ctx.dry_run()?,
    };
    let name = ctx.name().to_owned();
    delete_one(&ctx, &name, &opts).await?;
    super::respond(
        &ctx,
        StatusCode::CREATED,
        &crate::status::success_status(None),
    )
}
