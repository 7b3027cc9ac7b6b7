//! Virtual (create-only) resources: token and access reviews, TokenRequest, and the
//! service-account token issuer (ES256 JWTs, published at `/openid/v1/jwks`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use http::{Response, StatusCode};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use super::{Ctx, respond};
use crate::auth::User;
use crate::body::Body;
use crate::meta::{self, meta_str};
use crate::negotiate;
use crate::route::Route;
use crate::state::State;
use crate::status::{ApiError, ApiResult};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Parses the service-account signing key of the cluster identity (once, at start-up).
pub(crate) fn parse_signing_key(
    identity: &crate::identity::Identity,
) -> Result<EcdsaKeyPair, String> {
    let der = rustls_pemfile::private_key(&mut identity.sa_key_pem.as_bytes())
        .ok()
        .flatten()
        .ok_or_else(|| {
            "the service-account signing key in the cluster identity is unreadable".to_owned()
        })?;
    EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        der.secret_der(),
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| format!("the service-account signing key in the cluster identity is invalid: {e}"))
}

fn key_id(public: &[u8]) -> String {
    use sha2::Digest as _;
    B64URL.encode(sha2::Sha256::digest(public))
}

/// Issues a signed token.
fn sign(state: &State, claims: &Value) -> ApiResult<String> {
    sign_with(&state.sa_key, claims)
}

/// Issues a token signed with `key`.
pub(super) fn sign_with(key: &EcdsaKeyPair, claims: &Value) -> ApiResult<String> {
    let header = json!({"alg": "ES256", "kid": key_id(key.public_key().as_ref())});
    let signing_input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let sig = key
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
        .map_err(|_| ApiError::Internal("signing the token failed".into()))?;
    Ok(format!("{signing_input}.{}", B64URL.encode(sig.as_ref())))
}

/// Verifies a token issued by [`sign`] and returns its user.
pub(crate) fn verify_token(state: &State, token: &str) -> Result<User, String> {
    verify_with(&state.sa_key, token)
}

/// Verifies a token signed with `key` and returns its user.
pub(super) fn verify_with(key: &EcdsaKeyPair, token: &str) -> Result<User, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT".into());
    };
    let sig = B64URL.decode(s).map_err(|_| "bad signature encoding")?;
    signature::UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_FIXED,
        key.public_key().as_ref(),
    )
    .verify(format!("{h}.{c}").as_bytes(), &sig)
    .map_err(|_| "invalid signature")?;
    let claims: Value =
        serde_json::from_slice(&B64URL.decode(c).map_err(|_| "bad claims encoding")?)
            .map_err(|_| "bad claims")?;
    let now = meta::now_secs();
    if claims["exp"].as_i64().is_some_and(|exp| exp < now) {
        return Err("token has expired".into());
    }
    if claims["iss"] != ISSUER {
        return Err("wrong issuer".into());
    }
    let ns = claims["kubernetes.io"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let sa = claims["kubernetes.io"]["serviceaccount"]["name"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    if ns.is_empty() || sa.is_empty() {
        return Err("not a service-account token".into());
    }
    Ok(User {
        name: format!("system:serviceaccount:{ns}:{sa}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
        uid: claims["kubernetes.io"]["serviceaccount"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        extra: Vec::new(),
    })
}

fn user_info(user: &User) -> Value {
    let mut u = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        u["uid"] = user.uid.clone().into();
    }
    if !user.extra.is_empty() {
        u["extra"] = user
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    u
}

/// Answers what the authorizer (system:masters, then RBAC) decides for `spec`'s attributes.
fn decide(state: &crate::state::State, user: &User, spec: &Value) -> Value {
    let ra = spec.get("resourceAttributes");
    let nra = spec.get("nonResourceAttributes");
    let s = |v: Option<&Value>, f: &str| {
        v.and_then(|v| v.get(f))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (verb, group, resource, sub, ns, name, path) = match (ra, nra) {
        (Some(_), _) => (
            s(ra, "verb"),
            s(ra, "group"),
            s(ra, "resource"),
            s(ra, "subresource"),
            s(ra, "namespace"),
            s(ra, "name"),
            None,
        ),
        (None, Some(_)) => (
            s(nra, "verb"),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            Some(s(nra, "path")),
        ),
        (None, None) => {
            return json!({"allowed": false, "reason": "spec has neither resourceAttributes nor nonResourceAttributes"});
        }
    };
    let attrs = crate::rbac::Attributes {
        verb: &verb,
        group: &group,
        resource: &resource,
        subresource: Some(sub.as_str()).filter(|x| !x.is_empty()),
        namespace: Some(ns.as_str()).filter(|x| !x.is_empty()),
        name: Some(name.as_str()).filter(|x| !x.is_empty()),
        path: path.as_deref(),
    };
    match crate::rbac::authorize(state, user, &attrs) {
        Ok(reason) => json!({"allowed": true, "reason": reason}),
        Err(_) => json!({"allowed": false}),
    }
}

/// POST of a review kind.
pub(crate) async fn create(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let mut obj = negotiate::decode_object(ctx.content_type(), &ctx.body)?;
    obj["apiVersion"] = ctx.res.api_version().into();
    obj["kind"] = ctx.res.kind.to_string().into();
    match ctx.res.kind.as_ref() {
        "SelfSubjectReview" => {
            obj["status"] = json!({"userInfo": user_info(ctx.user)});
        }
        "TokenReview" => {
            let token = obj
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            obj["status"] = match verify_token(ctx.state, &token) {
                Ok(u) => {
                    json!({"authenticated": true, "user": user_info(&u), "audiences": obj.pointer("/spec/audiences").cloned().unwrap_or(json!([]))})
                }
                Err(e) => json!({"authenticated": false, "error": e}),
            };
        }
        "SelfSubjectAccessReview" | "SelfSubjectRulesReview" => {
            let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
            obj["status"] = if ctx.res.kind == "SelfSubjectRulesReview" {
                let ns = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
                crate::rbac::rules_review(ctx.state, ctx.user, ns)
            } else {
                decide(ctx.state, ctx.user, &spec)
            };
        }
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
            let list = |f: &str| -> Vec<String> {
                spec.get(f)
                    .and_then(Value::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let subject = User {
                name: spec
                    .get("user")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                groups: list("groups"),
                uid: spec
                    .get("uid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                extra: Vec::new(),
            };
            let mut spec = spec.clone();
            if ctx.res.kind == "LocalSubjectAccessReview"
                && let (Some(ra), Some(ns)) = (spec.get_mut("resourceAttributes"), ctx.ns())
            {
                ra["namespace"] = ns.into();
            }
            obj["status"] = decide(ctx.state, &subject, &spec);
        }
        other => {
            return Err(ApiError::MethodNotAllowed(format!(
                "{other} cannot be created"
            )));
        }
    }
    if obj.get("metadata").is_none() {
        obj["metadata"] = json!({});
    }
    crate::meta::object_mut(&mut obj, "metadata").insert("creationTimestamp".into(), Value::Null);
    respond(&ctx, StatusCode::CREATED, &obj)
}

/// POST `serviceaccounts/NAME/token` (`kubectl create token`).
pub(crate) async fn token_request(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let mut req = if ctx.body.is_empty() {
        json!({})
    } else {
        negotiate::decode_object(ctx.content_type(), &ctx.body)?
    };
    let ns = ctx.ns().unwrap_or("default").to_owned();
    let name = ctx.name().to_owned();
    let sa_res = ctx.storage_res();
    let (sa, _) = ctx
        .state
        .objects
        .get(&sa_res, Some(&ns), &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(ctx.target()))?;
    let expiration = req
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    if expiration < 600 {
        return Err(ApiError::Invalid {
            target: ctx.target(),
            kind: "TokenRequest".into(),
            causes: vec![crate::status::Cause::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration less than 10 minutes",
            )],
        });
    }
    let audiences = req
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .cloned()
        .unwrap_or_else(|| vec![json!(ISSUER)]);
    let now = meta::now_secs();
    let claims = json!({
        "aud": audiences,
        "exp": now + expiration,
        "iat": now,
        "nbf": now,
        "iss": ISSUER,
        "jti": meta::new_uid(),
        "sub": format!("system:serviceaccount:{ns}:{name}"),
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": meta_str(&sa, "uid").unwrap_or("")}},
    });
    let token = sign(ctx.state, &claims)?;
    req["apiVersion"] = "authentication.k8s.io/v1".into();
    req["kind"] = "TokenRequest".into();
    req["metadata"] =
        json!({"name": name, "namespace": ns, "creationTimestamp": meta::rfc3339(now)});
    let spec = crate::meta::object_mut(&mut req, "spec");
    spec.insert("audiences".into(), Value::Array(audiences));
    spec.insert("expirationSeconds".into(), json!(expiration));
    req["status"] = json!({"token": token, "expirationTimestamp": meta::rfc3339(now + expiration)});
    respond(&ctx, StatusCode::CREATED, &req)
}

/// The OIDC discovery document and the key set that verifies service-account tokens.
pub(crate) fn oidc(state: &State, route: &Route) -> Response<Body> {
    let key = &state.sa_key;
    let public = key.public_key().as_ref();
    let doc = match route {
        Route::OidcConfig => json!({
            "issuer": ISSUER,
            "jwks_uri": format!("https://{}/openid/v1/jwks", state.address),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }),
        _ => json!({"keys": [{
            "use": "sig", "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": key_id(public),
            "x": B64URL.encode(&public[1..33]), "y": B64URL.encode(&public[33..65]),
        }]}),
    };
    let mut r = crate::json_response(StatusCode::OK, &doc);
    if matches!(route, Route::Jwks) {
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/jwk-set+json"),
        );
    }
    r
}
