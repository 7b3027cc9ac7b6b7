//! RBAC: the authorizer, the bootstrap policy, ClusterRole aggregation, escalation
//! prevention and impersonation.
//!
//! `system:masters` is allowed everything before RBAC is consulted (as upstream's
//! `AlwaysAllowGroups`). Everyone else is allowed what a binding grants them: a rule matches
//! when its verbs, API groups, resources (`pods`, `pods/log`, `*`, `*/scale`) and resource names
//! match the request; `nonResourceURLs` rules match paths. Rules are read from a decoded
//! [`Index`] that the watch cache keeps current, so a request costs a lookup per subject.
//!
//! - [`defaults`]: the bootstrap ClusterRoles and bindings (`cluster-admin`, `admin`, `edit`,
//!   `view`, the `system:aggregate-to-*` roles, discovery and basic-user roles).
//! - [`aggregation`]: the controller that fills aggregated ClusterRoles' rules.
//! - [`escalation`]: role and binding writes may not grant what the writer does not hold.
//! - [`impersonation`]: `Impersonate-*` headers.

pub(crate) mod aggregation;
pub(crate) mod defaults;
pub(crate) mod escalation;
pub(crate) mod impersonation;
mod index;
mod rules;

pub(crate) use index::Index;

use serde_json::{Value, json};

use crate::auth::User;
use crate::state::State;
use crate::status::{ApiError, Target};

/// The RBAC API group.
pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";

/// What is being asked for.
pub(crate) struct Attributes<'a> {
    pub(crate) verb: &'a str,
    pub(crate) group: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) subresource: Option<&'a str>,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    /// For non-resource requests (`/healthz`, `/version`): the path.
    pub(crate) path: Option<&'a str>,
}

/// Decides a request; `Ok(reason)` when allowed.
pub(crate) fn authorize(state: &State, user: &User, a: &Attributes<'_>) -> Result<String, String> {
    if user.is_master() {
        return Ok("member of system:masters".into());
    }
    let mut reason = String::new();
    let allowed = state.cache.rbac().find_grant(user, a.namespace, |g| {
        if !g.rules.iter().any(|r| r.allows(a)) {
            return false;
        }
        reason = match g.namespace {
            Some(ns) => format!(
                "RBAC: allowed by {} {:?} in {ns:?}",
                g.binding_kind, g.binding_name
            ),
            None => format!("RBAC: allowed by {} {:?}", g.binding_kind, g.binding_name),
        };
        true
    });
    if allowed {
        Ok(reason)
    } else {
        Err(String::new())
    }
}

/// Upstream's 403 for a denied request (`responsewriters.Forbidden`): e.g. `pods "web" is
/// forbidden: User "ann" cannot delete resource "pods" in API group "" in the namespace "dev"`.
pub(crate) fn forbidden(user: &User, a: &Attributes<'_>) -> ApiError {
    let Some(path) = a.path else {
        let resource = match a.subresource {
            Some(s) => format!("{}/{s}", a.resource),
            None => a.resource.to_owned(),
        };
        let scope = match a.namespace {
            Some(ns) => format!("in the namespace {ns:?}"),
            None => "at the cluster scope".to_owned(),
        };
        let why = format!(
            "User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            user.name, a.verb, a.group
        );
        let target = Target::new(a.group, a.resource, a.name.unwrap_or(""));
        let message = match a.name {
            Some(n) => format!("{} {n:?} is forbidden: {why}", target.qualified()),
            None => format!("{} is forbidden: {why}", target.qualified()),
        };
        return ApiError::Forbidden { message, target };
    };
    ApiError::Forbidden {
        message: format!(
            "forbidden: User {:?} cannot {} path {path:?}",
            user.name, a.verb
        ),
        target: Target::default(),
    }
}

/// The status of a SelfSubjectRulesReview: what `user` may do in `namespace`.
pub(crate) fn rules_review(state: &State, user: &User, namespace: &str) -> Value {
    if user.is_master() {
        return json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        });
    }
    let ns = Some(namespace).filter(|n| !n.is_empty());
    let rules = state.cache.rbac().rules_for(user, ns);
    let (urls, resources): (Vec<_>, Vec<_>) =
        rules.iter().partition(|r| !r.non_resource_urls.is_empty());
    let resource_rules: Vec<Value> = resources
        .iter()
        .map(|r| {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            v
        })
        .collect();
    let non_resource_rules: Vec<Value> = urls
        .iter()
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    })
}
