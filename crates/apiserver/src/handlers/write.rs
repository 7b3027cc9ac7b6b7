//! create, update (PUT) and patch, on objects and their status subresource.

use http::{Response, StatusCode};
use serde_json::Value;

use super::read::respond_objects;
use super::{Ctx, convert, strategy};
use crate::body::Body;
use crate::meta::{self, meta_str, metadata_mut};
use crate::negotiate;
use crate::objects::{Decision, conflict};
use crate::status::{ApiError, ApiResult};

/// Decodes the request body as an object of this resource, checking `apiVersion`/`kind`.
fn decode_body_object(ctx: &Ctx<'_>) -> ApiResult<Value> {
    if ctx.body.is_empty() {
        return Err(ApiError::BadRequest(
            "the request body is empty: send the object to write".into(),
        ));
    }
    let obj = negotiate::decode_object(ctx.content_type(), &ctx.body)?;
    check_type(ctx, &obj)?;
    strategy::type_check(&ctx.res, &obj)?;
    Ok(obj)
}

/// The kind a body must carry (the subresource's, for status it is the parent's).
fn expected_kind(ctx: &Ctx<'_>) -> (String, String) {
    (ctx.res.api_version(), ctx.res.kind.to_string())
}

fn check_type(ctx: &Ctx<'_>, obj: &Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::BadRequest(format!(
            "the request body must be a JSON object (a {}), not {}",
            ctx.res.kind,
            json_type(obj)
        )));
    }
    let (api_version, kind) = expected_kind(ctx);
    if let Some(v) = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        && v != api_version
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({v}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(k) = obj
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        && k != kind
    {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({k}) does not match the expected kind ({kind}) for {}",
            ctx.res.plural
        )));
    }
    Ok(())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Fills `apiVersion` and `kind` and checks the namespace against the URL.
fn normalize(ctx: &Ctx<'_>, obj: &mut Value) -> ApiResult<()> {
    let (api_version, kind) = expected_kind(ctx);
    obj["apiVersion"] = api_version.into();
    obj["kind"] = kind.into();
    let url_ns = ctx.ns().map(str::to_owned);
    let m = metadata_mut(obj);
    match (
        m.get("namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty()),
        &url_ns,
    ) {
        (Some(body_ns), Some(url)) if body_ns != url => {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        (_, Some(url)) => {
            m.insert("namespace".into(), url.clone().into());
        }
        (_, None) => {
            m.remove("namespace");
        }
    }
    Ok(())
}

/// `fieldValidation` handling: Strict fails on unknown fields, Warn (the default) reports
/// them in `Warning` headers, Ignore drops them silently.
fn field_validation(ctx: &Ctx<'_>, obj: &Value) -> ApiResult<Vec<String>> {
    let mode = ctx.query.get("fieldValidation").unwrap_or("Warn");
    if !matches!(mode, "Strict" | "Warn" | "Ignore") {
        return Err(ApiError::BadRequest(format!(
            "fieldValidation must be one of Ignore, Warn or Strict, not {mode:?}"
        )));
    }
    if mode == "Ignore" {
        return Ok(Vec::new());
    }
    let unknown = strategy::unknown_fields(&ctx.res, obj);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    if mode == "Strict" {
        return Err(ApiError::BadRequest(format!(
            "strict decoding error: {}",
            messages.join(", ")
        )));
    }
    Ok(messages)
}

fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let v = format!("299 - {:?}", w);
        if let Ok(h) = http::HeaderValue::from_str(&v) {
            r.headers_mut().append(http::header::WARNING, h);
        }
    }
    r
}

/// POST.
pub(crate) async fn create(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let dry_run = ctx.dry_run()?;
    let mut obj = decode_body_object(&ctx)?;
    let warnings = field_validation(&ctx, &obj)?;
    normalize(&ctx, &mut obj)?;
    let manager = ctx.field_manager();
    let created = create_object(&ctx, obj, &manager, "Update", dry_run).await?;
    let created = convert::from_storage(&ctx.res, created);
    Ok(with_warnings(
        respond_objects(&ctx, StatusCode::CREATED, vec![created], None)?,
        &warnings,
    ))
}

/// Creates `obj` (already normalized, in the URL's version); returns the stored object.
async fn create_object(
    ctx: &Ctx<'_>,
    mut obj: Value,
    manager: &str,
    operation: &str,
    dry_run: bool,
) -> ApiResult<Value> {
    {
        let m = metadata_mut(&mut obj);
        if m.get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::BadRequest(
                "resourceVersion should not be set on objects to be created".into(),
            ));
        }
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if name.is_empty() {
            match m
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|g| !g.is_empty())
            {
                Some(prefix) => {
                    let name = format!("{prefix}{}", meta::random_suffix());
                    m.insert("name".into(), name.into());
                }
                None => {
                    return Err(ApiError::Invalid {
                        target: ctx.target(),
                        kind: ctx.res.kind.to_string(),
                        causes: vec![
                            crate::status::Cause::required("metadata.name")
                                .with_message("name or generateName is required"),
                        ],
                    });
                }
            }
        }
        m.insert("uid".into(), meta::new_uid().into());
        m.insert(
            "creationTimestamp".into(),
            meta::rfc3339(meta::now_secs()).into(),
        );
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("selfLink");
    }
    strategy::admit_custom(&ctx.res, &mut obj)?;
    let storage = ctx.storage_res();
    let mut obj = convert::to_storage(&ctx.res, obj);
    let name = meta_str(&obj, "name").unwrap_or("").to_owned();
    let ns = ctx.ns().map(str::to_owned);
    strategy::prepare_create(ctx.state, &storage, &mut obj).await?;
    strategy::validate(&storage, &obj, None).map_err(|causes| ApiError::Invalid {
        target: crate::objects::target(&ctx.res, &name),
        kind: ctx.res.kind.to_string(),
        causes,
    })?;
    strategy::check_namespace_accepts(ctx, ns.as_deref(), &name).await?;
    check_escalation(ctx, None, &obj)?;
    strategy::track_managed_fields(
        &mut obj,
        None,
        manager,
        "Update",
        &ctx.res.api_version(),
        None,
    );
    // An apply that creates the object owns what it applied as an Apply manager.
    if operation == "Apply"
        && let Some(mf) = obj.pointer_mut("/metadata/managedFields/0/operation")
    {
        *mf = "Apply".into();
    }
    if dry_run {
        return Ok(obj);
    }
    strategy::allocate(ctx.state, &storage, &mut obj).await?;
    match ctx
        .state
        .objects
        .create(&storage, ns.as_deref(), &name, obj.clone())
        .await
    {
        Ok(o) => Ok(o),
        Err(e) => {
            strategy::release_now(ctx.state, &storage, &obj).await;
            Err(e)
        }
    }
}

/// RBAC writes may not grant more than their author holds (see [`crate::rbac::escalation`]).
fn check_escalation(ctx: &Ctx<'_>, old: Option<&Value>, new: &Value) -> ApiResult<()> {
    if ctx.res.gv.group != crate::rbac::GROUP {
        return Ok(());
    }
    let write = crate::rbac::escalation::Write {
        plural: &ctx.res.plural,
        namespace: ctx.ns(),
        url_name: ctx.rr.name.as_deref(),
        old,
        new,
    };
    crate::rbac::escalation::check(ctx.state.cache.rbac(), ctx.user, &write)
}

/// PUT and PATCH, on the object or its `status`/`finalize` subresource.
pub(crate) async fn write(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let dry_run = ctx.dry_run()?;
    let is_patch = ctx.rr.verb == crate::route::Verb::Patch;
    let manager = ctx.field_manager();
    let sub = ctx.rr.subresource.clone();
    let storage = ctx.storage_res();
    let patch_kind = if is_patch {
        Some(patch_type(&ctx)?)
    } else {
        None
    };
    let (body, mut warnings) = if is_patch {
        (
            parse_patch_body(&ctx, patch_kind.expect("patch"))?,
            Vec::new(),
        )
    } else {
        let mut o = decode_body_object(&ctx)?;
        let w = field_validation(&ctx, &o)?;
        normalize(&ctx, &mut o)?;
        let body_name = meta_str(&o, "name").unwrap_or("");
        if body_name != ctx.name() {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                ctx.name()
            )));
        }
        (o, w)
    };

    // Apply patches may create the object (server-side apply); PUT may create some kinds.
    let ns = ctx.ns().map(str::to_owned);
    let name = ctx.name().to_owned();
    let current = ctx
        .state
        .objects
        .get(&storage, ns.as_deref(), &name)
        .await?;
    if current.is_none() {
        let creates = match patch_kind {
            Some(PatchKind::Apply) => sub.is_none(),
            Some(_) => false,
            None => sub.is_none() && strategy::allow_create_on_update(&storage),
        };
        if !creates {
            return Err(ApiError::NotFound(ctx.target()));
        }
        let mut obj = body.clone();
        normalize(&ctx, &mut obj)?;
        metadata_mut(&mut obj).insert("name".into(), name.clone().into());
        if let Some(PatchKind::Apply) = patch_kind {
            warnings.extend(field_validation(&ctx, &obj)?);
        }
        let operation = if patch_kind == Some(PatchKind::Apply) {
            "Apply"
        } else {
            "Update"
        };
        let mut o = create_object(&ctx, obj, &manager, operation, dry_run).await?;
        o = convert::from_storage(&ctx.res, o);
        let r = respond_objects(&ctx, StatusCode::CREATED, vec![o], None)?;
        return Ok(with_warnings(r, &warnings));
    }

    let api_version = ctx.res.api_version();
    let mut validation_warnings = Vec::new();
    let decide = |cur: Option<Value>| {
        let cur = cur.ok_or_else(|| ApiError::NotFound(ctx.target()))?;
        let cur_v = convert::from_storage(&ctx.res, cur.clone());
        let mut new = match patch_kind {
            Some(kind) => {
                let patched = apply_patch(&ctx, kind, &cur_v, &body, &manager)?;
                strategy::type_check(&ctx.res, &patched)?;
                validation_warnings = field_validation(&ctx, &patched)?;
                patched
            }
            None => {
                let rv = meta_str(&body, "resourceVersion").unwrap_or("");
                if !rv.is_empty() && Some(rv) != meta_str(&cur_v, "resourceVersion") {
                    return Err(conflict(&ctx.res, &name));
                }
                body.clone()
            }
        };
        check_type(&ctx, &new)?;
        normalize(&ctx, &mut new)?;
        if meta_str(&new, "name") != Some(name.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&new, "name").unwrap_or("")
            )));
        }
        // A patch that names a resourceVersion is a precondition.
        if patch_kind.is_some()
            && let Some(rv) = meta_str(&new, "resourceVersion").filter(|r| !r.is_empty())
            && Some(rv) != meta_str(&cur_v, "resourceVersion")
        {
            return Err(conflict(&ctx.res, &name));
        }
        strategy::admit_custom(&ctx.res, &mut new)?;
        let new = convert::to_storage(&ctx.res, new);
        if sub.is_none() {
            check_escalation(&ctx, Some(&cur), &new)?;
        }
        let operation = if patch_kind == Some(PatchKind::Apply) {
            "Apply"
        } else {
            "Update"
        };
        strategy::prepare_update(
            &storage,
            sub.as_deref(),
            &cur,
            new,
            &manager,
            operation,
            &api_version,
        )
    };
    let obj = if dry_run {
        // Everything a write does except storing it.
        let mut decide = decide;
        let cur = current.map(|(o, _)| o);
        match decide(cur)? {
            Decision::Write(o) | Decision::Unchanged(o) | Decision::Delete(o) => o,
        }
    } else {
        ctx.state
            .objects
            .update(&storage, ns.as_deref(), &name, decide)
            .await?
            .0
    };
    let obj = convert::from_storage(&ctx.res, obj);
    warnings.extend(validation_warnings);
    Ok(with_warnings(
        respond_objects(&ctx, StatusCode::OK, vec![obj], None)?,
        &warnings,
    ))
}

/// The four patch types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

pub(super) fn patch_type(ctx: &Ctx<'_>) -> ApiResult<PatchKind> {
    let ct = ctx.content_type().unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let kind = match essence.as_str() {
        "application/json-patch+json" => PatchKind::Json,
        "application/merge-patch+json" => PatchKind::Merge,
        "application/strategic-merge-patch+json" => PatchKind::Strategic,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchKind::Apply,
        _ => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
            )));
        }
    };
    if kind == PatchKind::Strategic && !strategy::supports_strategic_merge(&ctx.res) {
        return Err(ApiError::UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
        ));
    }
    if kind == PatchKind::Apply && ctx.query.get("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::BadRequest(
            "PATCH with an apply patch requires the fieldManager query parameter".into(),
        ));
    }
    Ok(kind)
}

pub(super) fn parse_patch_body(ctx: &Ctx<'_>, kind: PatchKind) -> ApiResult<Value> {
    if ctx.body.is_empty() {
        return Err(ApiError::BadRequest("the patch body is empty".into()));
    }
    let v = match kind {
        PatchKind::Apply => negotiate::decode_yaml(&ctx.body)?,
        _ => negotiate::decode_json(&ctx.body)?,
    };
    match (kind, &v) {
        (PatchKind::Json, Value::Array(_)) => Ok(v),
        (PatchKind::Json, _) => Err(ApiError::BadRequest(
            "a JSON patch must be a list of operations, e.g. [{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":3}]".into(),
        )),
        (_, Value::Object(_)) => Ok(v),
        _ => Err(ApiError::BadRequest(format!("the patch must be a JSON object, not {}", json_type(&v)))),
    }
}

fn apply_patch(
    ctx: &Ctx<'_>,
    kind: PatchKind,
    current: &Value,
    patch: &Value,
    manager: &str,
) -> ApiResult<Value> {
    use drover_core::patch;
    let bad = |e: patch::PatchError| ApiError::Invalid {
        target: ctx.target(),
        kind: ctx.res.kind.to_string(),
        causes: vec![crate::status::Cause::new(
            "FieldValueInvalid",
            "",
            e.to_string(),
        )],
    };
    match kind {
        PatchKind::Merge => {
            let mut v = current.clone();
            patch::merge_patch(&mut v, patch);
            Ok(v)
        }
        PatchKind::Json => {
            let mut v = current.clone();
            patch::json_patch(&mut v, patch).map_err(|e| ApiError::Invalid {
                target: ctx.target(),
                kind: ctx.res.kind.to_string(),
                causes: vec![crate::status::Cause::new(
                    "FieldValueInvalid",
                    "",
                    e.to_string(),
                )],
            })?;
            Ok(v)
        }
        PatchKind::Strategic => {
            let schema = drover_schema::SchemaNode::for_kind(
                &ctx.res.gv.group,
                &ctx.res.gv.version,
                &ctx.res.kind,
            );
            patch::strategic_merge(current, patch, schema.as_ref()).map_err(bad)
        }
        PatchKind::Apply => strategy::server_side_apply(ctx, current, patch, manager),
    }
}

/// Builds a `meta.k8s.io` Table for objects of this resource.
pub(crate) fn table(
    ctx: &Ctx<'_>,
    items: &[Value],
    list_meta: Value,
    include: &str,
    v1beta1: bool,
) -> Value {
    table_for(&ctx.res, items, list_meta, include, v1beta1)
}

/// Builds a `meta.k8s.io` Table for objects of a resource.
pub(crate) fn table_for(
    res: &drover_core::registry::Resource,
    items: &[Value],
    list_meta: Value,
    include: &str,
    v1beta1: bool,
) -> Value {
    strategy::table(res, items, list_meta, include, v1beta1)
}
