//! create, update, patch, delete, deletecollection; the scale, binding and eviction
//! subresources.

use http::{Response, StatusCode};
use serde_json::{Value, json};

use drover_store::Store as _;

use super::read::{Selection, list_prefix, respond_objects};
use super::{Ctx, convert, strategy};
use crate::body::Body;
use crate::meta::{self, meta_str, metadata_mut};
use crate::negotiate;
use crate::objects::{Decision, conflict, decode_stored};
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
    strategy::check_namespace_accepts(ctx, ns.as_deref()).await?;
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

fn patch_type(ctx: &Ctx<'_>) -> ApiResult<PatchKind> {
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

fn parse_patch_body(ctx: &Ctx<'_>, kind: PatchKind) -> ApiResult<Value> {
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

/// Options of a delete: from the body (JSON or protobuf `DeleteOptions`) and the query.
pub(crate) struct DeleteOptions {
    pub(crate) propagation: Option<String>,
    pub(crate) grace: Option<i64>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) dry_run: bool,
}

fn delete_options(ctx: &Ctx<'_>) -> ApiResult<DeleteOptions> {
    let body = if ctx.body.is_empty() {
        Value::Null
    } else {
        negotiate::decode_object(ctx.content_type(), &ctx.body)?
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
    if let Some(p) = ctx.query.get("propagationPolicy") {
        propagation = Some(p.to_owned());
    }
    if let Some(p) = &propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::Invalid {
            target: ctx.target(),
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
        .or_else(|| {
            ctx.query
                .get("gracePeriodSeconds")
                .and_then(|g| g.parse().ok())
        });
    let dry_run = ctx.dry_run()?
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

async fn delete_one(ctx: &Ctx<'_>, name: &str, opts: &DeleteOptions) -> ApiResult<Value> {
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
