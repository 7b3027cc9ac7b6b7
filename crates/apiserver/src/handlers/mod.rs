//! Resource handlers, generic over the registry: one code path serves every kind.

mod convert;
mod defaults;
mod delete;
mod fields;
pub(crate) mod fuzzing;
mod read;
mod reviews;
mod strategy;
mod subresources;
mod validation;
mod watch;
mod write;

pub(crate) use delete::{DeleteOptions, delete_stored};
pub(crate) use reviews::parse_signing_key;
pub(crate) use strategy::prepare_update;
pub(crate) use watch::Shared as WatchShared;

use std::sync::Arc;

use bytes::Bytes;
use drover_core::registry::{Resource, Verbs};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::Value;

use crate::auth::User;
use crate::body::Body;
use crate::negotiate::{self, Output};
use crate::route::{Query, ResourceRequest, Route, Verb};
use crate::state::State;
use crate::status::{ApiError, ApiResult, Target};

/// Everything a resource handler needs about one request.
pub(crate) struct Ctx<'a> {
    pub(crate) state: &'a Arc<State>,
    pub(crate) user: &'a User,
    /// The resource in the version the URL names.
    pub(crate) res: Resource,
    pub(crate) rr: ResourceRequest,
    pub(crate) query: &'a Query,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Bytes,
}

impl Ctx<'_> {
    pub(crate) fn ns(&self) -> Option<&str> {
        if self.res.namespaced {
            self.rr.namespace.as_deref()
        } else {
            None
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.rr.name.as_deref().unwrap_or("")
    }

    pub(crate) fn accept(&self) -> Option<&str> {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
    }

    pub(crate) fn content_type(&self) -> Option<&str> {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    pub(crate) fn dry_run(&self) -> ApiResult<bool> {
        dry_run(self.query)
    }

    /// The field manager: `fieldManager`, or the user agent's first token as upstream does.
    pub(crate) fn field_manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.to_owned();
        }
        let ua = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        ua.split('/').next().unwrap_or("unknown").to_owned()
    }

    pub(crate) fn target(&self) -> Target {
        crate::objects::target(&self.res, self.name())
    }

    /// The storage-version resource of this resource (itself for most kinds).
    pub(crate) fn storage_res(&self) -> Resource {
        if self.res.is_storage_version() {
            self.res.clone()
        } else {
            self.state
                .resources
                .find(
                    &self.res.storage_group,
                    &self.res.storage_version,
                    &self.res.plural,
                )
                .unwrap_or_else(|| self.res.clone())
        }
    }
}

/// The `dryRun` parameter: absent, or `All` (every time it is given).
fn dry_run(query: &Query) -> ApiResult<bool> {
    let all = query.all("dryRun");
    match all.as_slice() {
        [] => Ok(false),
        values if values.iter().all(|v| *v == "All") => Ok(true),
        other => Err(ApiError::BadRequest(format!(
            "invalid dryRun value {:?}: the only supported value is \"All\"",
            other.iter().find(|v| **v != "All").unwrap_or(&"")
        ))),
    }
}

/// Serves a request for objects.
pub(crate) async fn resource(
    state: &Arc<State>,
    user: &User,
    rr: ResourceRequest,
    parts: &http::request::Parts,
    query: &Query,
    body: Bytes,
) -> Response<Body> {
    let result = match state.resources.find(&rr.group, &rr.version, &rr.resource) {
        None => Err(ApiError::NotFoundMessage(
            "the server could not find the requested resource".into(),
        )),
        Some(res) => {
            let ctx = Ctx {
                state,
                user,
                res,
                rr,
                query,
                headers: &parts.headers,
                body,
            };
            let rbac_write = ctx.rr.group == crate::rbac::GROUP
                && !matches!(ctx.rr.verb, Verb::Get | Verb::List | Verb::Watch);
            let result = route_verb(ctx).await;
            if rbac_write && result.is_ok() {
                settle_rbac(state).await;
            }
            result
        }
    };
    result.unwrap_or_else(|e| crate::error_response(&e))
}

/// Waits (bounded) until the watch cache, and with it the RBAC index, holds everything written
/// so far: once an RBAC write is answered, the next request is authorized with it.
async fn settle_rbac(state: &State) {
    use drover_store::Store as _;
    if let Ok(rev) = state.store.current_revision().await
        && let Err(e) = state.cache.wait_for(rev).await
    {
        tracing::warn!("RBAC change not yet in the watch cache: {e:?}");
    }
}

async fn route_verb(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let verb = ctx.rr.verb;
    if ctx.res.namespaced && ctx.rr.namespace.is_none() && !matches!(verb, Verb::List | Verb::Watch)
    {
        return Err(ApiError::NotFoundMessage(
            "the server could not find the requested resource".into(),
        ));
    }
    if let Some(sub) = ctx.rr.subresource.clone() {
        if ctx.res.subresource(&sub).is_none() {
            return Err(ApiError::NotFoundMessage(
                "the server could not find the requested resource".into(),
            ));
        }
        return match (verb, sub.as_str()) {
            (Verb::Get, "status") => read::get(ctx).await,
            (Verb::Update | Verb::Patch, "status") => write::write(ctx).await,
            (Verb::Get | Verb::Update | Verb::Patch, "scale") => subresources::scale(ctx).await,
            (Verb::Update, "finalize") => write::write(ctx).await,
            (Verb::Create, "binding") => subresources::binding(ctx).await,
            (Verb::Create, "eviction") => subresources::eviction(ctx).await,
            (Verb::Create, "token") => reviews::token_request(ctx).await,
            _ => Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({} on {}/{sub})",
                verb.as_str(),
                ctx.res.plural
            ))),
        };
    }
    if ctx.res.verbs == Verbs::CreateOnly {
        return match verb {
            Verb::Create => reviews::create(ctx).await,
            _ => Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({} on {})",
                verb.as_str(),
                ctx.res.plural
            ))),
        };
    }
    // The verbs discovery advertises are exactly the verbs served.
    if !ctx.res.verbs.names().contains(&verb.as_str()) {
        return Err(ApiError::MethodNotAllowed(
            "the server does not allow this method on the requested resource".into(),
        ));
    }
    match verb {
        Verb::Get => read::get(ctx).await,
        Verb::List => read::list(ctx).await,
        Verb::Watch => watch::watch(ctx).await,
        Verb::Create => write::create(ctx).await,
        Verb::Update | Verb::Patch => write::write(ctx).await,
        Verb::Delete => delete::delete(ctx).await,
        Verb::DeleteCollection => delete::delete_collection(ctx).await,
    }
}

/// Answers with an object (or list) in the negotiated form.
pub(crate) fn respond(ctx: &Ctx<'_>, code: StatusCode, obj: &Value) -> ApiResult<Response<Body>> {
    let output = negotiate::choose_output(ctx.accept(), false)?;
    let (bytes, ct) = match output {
        Output::Object(enc) => negotiate::encode(obj, enc),
        Output::Table { .. } | Output::Metadata { .. } => {
            negotiate::encode(obj, negotiate::Encoding::Json)
        }
    };
    let mut r = Response::new(Body::full(bytes));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

/// Authenticates a bearer token (service-account tokens issued by this cluster).
pub(crate) fn bearer_user(state: &State, headers: &HeaderMap) -> Option<User> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))?;
    reviews::verify_token(state, token.trim()).ok()
}

/// Routes any authenticated user may use whatever the RBAC objects say (what upstream's
/// `system:discovery`, `system:basic-user` and `system:public-info-viewer` bindings grant
/// `system:authenticated`); everything else is decided by RBAC.
pub(crate) fn allowed_for_non_masters(route: &Route) -> bool {
    match route {
        Route::LegacyApis
        | Route::Apis
        | Route::Group(_)
        | Route::GroupVersion { .. }
        | Route::OpenApiV3Index
        | Route::OpenApiV3 { .. }
        | Route::OpenApiV2
        | Route::OidcConfig
        | Route::Jwks => true,
        Route::Resource(r) => {
            (r.group == "authentication.k8s.io" && r.resource == "selfsubjectreviews")
                || (r.group == "authorization.k8s.io"
                    && matches!(
                        r.resource.as_str(),
                        "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
                    ))
        }
        _ => false,
    }
}

/// Asks RBAC about a request of a user outside `system:masters`; the 403 upstream gives when
/// it is not allowed.
pub(crate) fn authorize_route(
    state: &State,
    user: &User,
    route: &Route,
    path: &str,
) -> Result<(), ApiError> {
    let attrs = match route {
        Route::Resource(r) => crate::rbac::Attributes {
            verb: r.verb.as_str(),
            group: &r.group,
            resource: &r.resource,
            subresource: r.subresource.as_deref(),
            namespace: if r.resource == "namespaces" {
                r.name.as_deref()
            } else {
                r.namespace.as_deref()
            },
            name: r.name.as_deref(),
            path: None,
        },
        _ => crate::rbac::Attributes {
            verb: "get",
            group: "",
            resource: "",
            subresource: None,
            namespace: None,
            name: None,
            path: Some(path),
        },
    };
    crate::rbac::authorize(state, user, &attrs)
        .map(|_| ())
        .map_err(|_| crate::rbac::forbidden(user, &attrs))
}

/// `/openapi/v3…` and `/openapi/v2`.
pub(crate) fn openapi(state: &State, route: &Route, headers: &HeaderMap) -> Response<Body> {
    crate::handlers::read::openapi(state, route, headers)
}

/// `/.well-known/openid-configuration` and `/openid/v1/jwks`.
pub(crate) fn oidc(state: &State, route: &Route) -> Response<Body> {
    reviews::oidc(state, route)
}
