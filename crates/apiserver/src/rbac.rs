//! RBAC authorization: Roles, ClusterRoles and their bindings, read from the watch cache.
//!
//! `system:masters` is allowed everything before this is consulted (as upstream's
//! `AlwaysAllowGroups`). Everyone else is allowed what a binding grants them: a rule matches
//! when its verbs, API groups, resources (`pods`, `pods/log`, `*`, `*/scale`) and resource names
//! match the request; `nonResourceURLs` rules match paths. Aggregated ClusterRoles and
//! escalation checks are not implemented yet.

use serde_json::Value;

use crate::auth::User;
use crate::meta::meta_str;
use crate::objects::decode_stored;
use crate::state::State;

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

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

/// True when one PolicyRule allows the request.
fn rule_allows(rule: &Value, a: &Attributes<'_>) -> bool {
    let verbs = strings(rule, "verbs");
    if !has(&verbs, a.verb) {
        return false;
    }
    if let Some(path) = a.path {
        return strings(rule, "nonResourceURLs").iter().any(|u| {
            u == path || u == "*" || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
        });
    }
    if !has(&strings(rule, "apiGroups"), a.group) {
        return false;
    }
    let wanted = match a.subresource {
        Some(s) => format!("{}/{s}", a.resource),
        None => a.resource.to_owned(),
    };
    let resources = strings(rule, "resources");
    let resource_ok = resources.iter().any(|r| {
        r == "*"
            || *r == wanted
            || (a.subresource.is_some() && *r == format!("*/{}", a.subresource.unwrap_or("")))
    });
    if !resource_ok {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || a.name.is_some_and(|n| names.iter().any(|x| x == n))
}

fn subject_matches(subject: &Value, user: &User, binding_ns: Option<&str>) -> bool {
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    match subject.get("kind").and_then(Value::as_str).unwrap_or("") {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject
                .get("namespace")
                .and_then(Value::as_str)
                .or(binding_ns)
                .unwrap_or("");
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn objects(state: &State, group: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
    let Some(res) = state.resources.find(group, "v1", plural) else {
        return Vec::new();
    };
    let prefix = match ns {
        Some(ns) => format!("{}{ns}/", res.key_prefix()),
        None => res.key_prefix(),
    };
    state
        .cache
        .snapshot(&prefix, None)
        .items
        .iter()
        .filter_map(|(_, e)| decode_stored(&e.value, e.mod_revision).ok())
        .collect()
}

/// The rules a role reference names (`Role` in the binding's namespace, or a `ClusterRole`).
fn role_rules(state: &State, role_ref: &Value, ns: Option<&str>) -> Vec<Value> {
    const RBAC: &str = "rbac.authorization.k8s.io";
    let name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
    let (plural, key_ns) = match role_ref.get("kind").and_then(Value::as_str) {
        Some("Role") => ("roles", ns),
        _ => ("clusterroles", None),
    };
    let Some(res) = state.resources.find(RBAC, "v1", plural) else {
        return Vec::new();
    };
    state
        .cache
        .get(&res.key(key_ns, name))
        .and_then(|e| decode_stored(&e.value, e.mod_revision).ok())
        .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// Decides a request; `Ok(reason)` when allowed.
pub(crate) fn authorize(state: &State, user: &User, a: &Attributes<'_>) -> Result<String, String> {
    if user.is_master() {
        return Ok("member of system:masters".into());
    }
    const RBAC: &str = "rbac.authorization.k8s.io";
    for binding in objects(state, RBAC, "clusterrolebindings", None) {
        let subjects = binding
            .get("subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !subjects.iter().any(|s| subject_matches(s, user, None)) {
            continue;
        }
        let role_ref = binding.get("roleRef").cloned().unwrap_or(Value::Null);
        if role_rules(state, &role_ref, None)
            .iter()
            .any(|r| rule_allows(r, a))
        {
            return Ok(format!(
                "RBAC: allowed by ClusterRoleBinding {:?}",
                meta_str(&binding, "name").unwrap_or("")
            ));
        }
    }
    if let Some(ns) = a.namespace {
        for binding in objects(state, RBAC, "rolebindings", Some(ns)) {
            let subjects = binding
                .get("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !subjects.iter().any(|s| subject_matches(s, user, Some(ns))) {
                continue;
            }
            let role_ref = binding.get("roleRef").cloned().unwrap_or(Value::Null);
            if role_rules(state, &role_ref, Some(ns))
                .iter()
                .any(|r| rule_allows(r, a))
            {
                return Ok(format!(
                    "RBAC: allowed by RoleBinding {:?} in {ns:?}",
                    meta_str(&binding, "name").unwrap_or("")
                ));
            }
        }
    }
    Err(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs<'a>(verb: &'a str, resource: &'a str, sub: Option<&'a str>) -> Attributes<'a> {
        Attributes {
            verb,
            group: "",
            resource,
            subresource: sub,
            namespace: Some("default"),
            name: Some("x"),
            path: None,
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let rule = json!({"apiGroups": [""], "resources": ["configmaps", "pods/log"], "verbs": ["get", "list"]});
        assert!(rule_allows(&rule, &attrs("get", "configmaps", None)));
        assert!(!rule_allows(&rule, &attrs("delete", "configmaps", None)));
        assert!(!rule_allows(&rule, &attrs("get", "secrets", None)));
        assert!(rule_allows(&rule, &attrs("get", "pods", Some("log"))));
        assert!(!rule_allows(&rule, &attrs("get", "pods", None)));
        let named =
            json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"], "resourceNames": ["y"]});
        assert!(!rule_allows(&named, &attrs("get", "configmaps", None)));
        let scale = json!({"apiGroups": [""], "resources": ["*/scale"], "verbs": ["update"]});
        assert!(rule_allows(
            &scale,
            &attrs("update", "replicationcontrollers", Some("scale"))
        ));
        let urls = json!({"nonResourceURLs": ["/healthz*"], "verbs": ["get"]});
        let a = Attributes {
            verb: "get",
            group: "",
            resource: "",
            subresource: None,
            namespace: None,
            name: None,
            path: Some("/healthz/etcd"),
        };
        assert!(rule_allows(&urls, &a));
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let user = User {
            name: "system:serviceaccount:ns1:sa".into(),
            groups: vec!["system:serviceaccounts".into()],
            uid: String::new(),
            extra: Vec::new(),
        };
        assert!(subject_matches(
            &json!({"kind": "ServiceAccount", "name": "sa"}),
            &user,
            Some("ns1")
        ));
        assert!(!subject_matches(
            &json!({"kind": "ServiceAccount", "name": "sa"}),
            &user,
            Some("ns2")
        ));
        assert!(subject_matches(
            &json!({"kind": "Group", "name": "system:serviceaccounts"}),
            &user,
            None
        ));
        assert!(!subject_matches(
            &json!({"kind": "User", "name": "sa"}),
            &user,
            None
        ));
    }
}
