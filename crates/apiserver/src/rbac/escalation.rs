//! Escalation prevention, as upstream's RBAC registry (`pkg/registry/rbac/*/policybased`):
//!
//! - creating or changing the rules of a Role/ClusterRole needs the `escalate` verb on it, or
//!   every permission in its rules already (in that namespace, or cluster-wide);
//! - setting an `aggregationRule` (which can gather anything) needs full authority;
//! - creating or changing a RoleBinding/ClusterRoleBinding needs the `bind` verb on the role
//!   it references, or every permission in that role already.
//!
//! `system:masters` bypass all of it. Refusals are 403s worded like upstream's, listing the
//! missing rules in upstream's compact form.

use serde_json::Value;

use super::index::{Index, RoleRef};
use super::rules::{Rule, describe_missing, go_list, missing};
use super::{Attributes, GROUP};
use crate::auth::User;
use crate::meta::meta_str;
use crate::status::{ApiError, Target};

/// One write of an RBAC object, as the handler sees it.
pub(crate) struct Write<'a> {
    /// `roles`, `clusterroles`, `rolebindings` or `clusterrolebindings`.
    pub(crate) plural: &'a str,
    /// The namespace of the request (`None` for the cluster-scoped kinds).
    pub(crate) namespace: Option<&'a str>,
    /// The name in the URL (none on a create by POST).
    pub(crate) url_name: Option<&'a str>,
    /// The stored object an update replaces.
    pub(crate) old: Option<&'a Value>,
    pub(crate) new: &'a Value,
}

fn allowed(index: &Index, user: &User, a: &Attributes<'_>) -> bool {
    index.find_grant(user, a.namespace, |g| g.rules.iter().any(|r| r.allows(a)))
}

fn forbidden(w: &Write<'_>, why: String) -> ApiError {
    let name = meta_str(w.new, "name").unwrap_or("");
    let target = Target::new(GROUP, w.plural, name);
    ApiError::Forbidden {
        message: format!("{} {name:?} is forbidden: {why}", target.qualified()),
        target,
    }
}

fn not_held(user: &User, gap: &[Rule]) -> String {
    format!(
        "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        go_list(&user.groups),
        describe_missing(gap).join("\n")
    )
}

/// Refuses a write that would grant more than its author holds.
pub(crate) fn check(index: &Index, user: &User, w: &Write<'_>) -> Result<(), ApiError> {
    if user.is_master() {
        return Ok(());
    }
    match w.plural {
        "roles" | "clusterroles" => check_role(index, user, w),
        "rolebindings" | "clusterrolebindings" => check_binding(index, user, w),
        _ => Ok(()),
    }
}

fn check_role(index: &Index, user: &User, w: &Write<'_>) -> Result<(), ApiError> {
    let rules = Rule::list_of(w.new);
    let rules_changed = w.old.is_none_or(|o| Rule::list_of(o) != rules);
    let aggregation = w.new.get("aggregationRule").filter(|a| !a.is_null());
    let aggregation_changed = w.plural == "clusterroles"
        && aggregation.is_some()
        && w.old
            .is_none_or(|o| o.get("aggregationRule") != aggregation);
    if !rules_changed && !aggregation_changed {
        return Ok(());
    }
    let escalate = Attributes {
        verb: "escalate",
        group: GROUP,
        resource: w.plural,
        subresource: None,
        namespace: w.namespace,
        name: w.url_name,
        path: None,
    };
    if allowed(index, user, &escalate) {
        return Ok(());
    }
    let owner = index.rules_for(user, w.namespace);
    let gap = missing(&owner, &rules);
    if !gap.is_empty() {
        return Err(forbidden(w, not_held(user, &gap)));
    }
    if aggregation_changed {
        let everything = [
            Rule::from_value(
                &serde_json::json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
            ),
            Rule::from_value(&serde_json::json!({"nonResourceURLs": ["*"], "verbs": ["*"]})),
        ];
        if !missing(&owner, &everything).is_empty() {
            return Err(forbidden(
                w,
                "must have cluster-admin privileges to use the aggregationRule".into(),
            ));
        }
    }
    Ok(())
}

fn check_binding(index: &Index, user: &User, w: &Write<'_>) -> Result<(), ApiError> {
    let Some(role_ref_value) = w.new.get("roleRef") else {
        return Ok(()); // validation refuses it
    };
    let Some(role_ref) = RoleRef::from_value(role_ref_value) else {
        return Ok(());
    };
    let unchanged = w.old.is_some_and(|o| {
        o.get("roleRef") == w.new.get("roleRef") && o.get("subjects") == w.new.get("subjects")
    });
    if unchanged {
        return Ok(());
    }
    let (resource, kind, role_name) = match &role_ref {
        RoleRef::Role(n) => ("roles", "role", n.as_str()),
        RoleRef::ClusterRole(n) => ("clusterroles", "clusterrole", n.as_str()),
    };
    // Checked where the binding is made, so `bind` can be delegated per namespace.
    let bind = Attributes {
        verb: "bind",
        group: role_ref_value
            .get("apiGroup")
            .and_then(Value::as_str)
            .unwrap_or(GROUP),
        resource,
        subresource: None,
        namespace: w.namespace,
        name: Some(role_name),
        path: None,
    };
    if allowed(index, user, &bind) {
        return Ok(());
    }
    let Some(rules) = index.role_rules(&role_ref, w.namespace) else {
        return Err(forbidden(
            w,
            format!("{kind}.{GROUP} {role_name:?} not found"),
        ));
    };
    let gap = missing(&index.rules_for(user, w.namespace), &rules);
    if gap.is_empty() {
        Ok(())
    } else {
        Err(forbidden(w, not_held(user, &gap)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    const P: &str = "/registry/rbac.authorization.k8s.io/";

    fn put(index: &Index, key: &str, obj: Value) {
        index.apply(
            &Arc::from(format!("{P}{key}")),
            Some(&serde_json::to_vec(&obj).expect("json")),
        );
    }

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            groups: vec!["system:authenticated".into()],
            uid: String::new(),
            extra: Vec::new(),
        }
    }

    /// `ann` may read and delete pods and manage rolebindings in `dev`.
    fn index() -> Index {
        let index = Index::default();
        put(
            &index,
            "clusterroles/pod-admin",
            json!({"metadata": {"name": "pod-admin"}, "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]},
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "roles"], "verbs": ["create", "update"]}]}),
        );
        put(
            &index,
            "clusterroles/pod-reader",
            json!({"metadata": {"name": "pod-reader"}, "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
        );
        put(
            &index,
            "clusterroles/secret-reader",
            json!({"metadata": {"name": "secret-reader"}, "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        );
        put(
            &index,
            "rolebindings/dev/ann",
            json!({"metadata": {"name": "ann", "namespace": "dev"},
                   "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "pod-admin"},
                   "subjects": [{"kind": "User", "name": "ann"}]}),
        );
        index
    }

    fn role_write<'a>(new: &'a Value, ns: Option<&'a str>) -> Write<'a> {
        Write {
            plural: if ns.is_some() {
                "roles"
            } else {
                "clusterroles"
            },
            namespace: ns,
            url_name: None,
            old: None,
            new,
        }
    }

    #[test]
    fn a_role_within_the_authors_permissions_is_allowed_and_one_verb_more_is_refused() {
        let index = index();
        let ok = json!({"metadata": {"name": "r"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete"]}]});
        check(&index, &user("ann"), &role_write(&ok, Some("dev"))).expect("within ann's rights");
        // Negative control: one verb (watch) ann does not hold.
        let more = json!({"metadata": {"name": "r"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch"]}]});
        let err = check(&index, &user("ann"), &role_write(&more, Some("dev")))
            .expect_err("watch is not held");
        let msg = err.to_status()["message"].as_str().unwrap_or("").to_owned();
        assert_eq!(err.code(), 403);
        assert_eq!(
            msg,
            "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"ann\" (groups=[\"system:authenticated\"]) \
             is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"watch\"]}"
        );
        // The same role in another namespace: ann holds nothing there.
        assert!(check(&index, &user("ann"), &role_write(&ok, Some("prod"))).is_err());
        // system:masters bypass.
        let mut root = user("root");
        root.groups.push("system:masters".into());
        check(&index, &root, &role_write(&more, Some("dev"))).expect("masters bypass");
    }

    #[test]
    fn the_escalate_verb_allows_any_rules_and_aggregation_needs_full_authority() {
        let index = index();
        let wide = json!({"metadata": {"name": "wide"}, "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        assert!(check(&index, &user("eve"), &role_write(&wide, None)).is_err());
        put(
            &index,
            "clusterroles/escalator",
            json!({"metadata": {"name": "escalator"}, "rules": [
                {"apiGroups": [GROUP], "resources": ["clusterroles"], "verbs": ["escalate"]}]}),
        );
        put(
            &index,
            "clusterrolebindings/eve",
            json!({"metadata": {"name": "eve"},
                   "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "escalator"},
                   "subjects": [{"kind": "User", "name": "eve"}]}),
        );
        check(&index, &user("eve"), &role_write(&wide, None)).expect("escalate granted");
        // ann holds her rules only in dev; an aggregationRule needs everything.
        let agg = json!({"metadata": {"name": "agg"}, "rules": [],
                         "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}});
        let err = check(&index, &user("ann"), &role_write(&agg, None)).expect_err("no authority");
        assert!(
            err.to_status()["message"]
                .as_str()
                .unwrap_or("")
                .contains("must have cluster-admin privileges to use the aggregationRule")
        );
        // Unchanged rules (e.g. a label edit) are not re-checked.
        let labelled =
            json!({"metadata": {"name": "wide", "labels": {"x": "y"}}, "rules": wide["rules"]});
        let w = Write {
            old: Some(&wide),
            ..role_write(&labelled, None)
        };
        check(&index, &user("ann"), &w).expect("rules unchanged");
    }

    #[test]
    fn binding_needs_bind_or_every_permission_of_the_role() {
        let index = index();
        let binding = |role: &str| {
            json!({"metadata": {"name": "b", "namespace": "dev"},
                   "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
                   "subjects": [{"kind": "User", "name": "bob"}]})
        };
        let write = |new| Write {
            plural: "rolebindings",
            namespace: Some("dev"),
            url_name: None,
            old: None,
            new,
        };
        let reader = binding("pod-reader");
        check(&index, &user("ann"), &write(&reader)).expect("ann holds pod-reader's rules");
        let secrets = binding("secret-reader");
        let err = check(&index, &user("ann"), &write(&secrets)).expect_err("escalation");
        assert!(
            err.to_status()["message"]
                .as_str()
                .unwrap_or("")
                .ends_with("{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"),
            "{:?}",
            err.to_status()
        );
        let missing_role = binding("nope");
        let err = check(&index, &user("ann"), &write(&missing_role)).expect_err("no such role");
        assert!(
            err.to_status()["message"]
                .as_str()
                .unwrap_or("")
                .ends_with("clusterrole.rbac.authorization.k8s.io \"nope\" not found")
        );
        // `bind` on exactly that role, in that namespace, is enough.
        put(
            &index,
            "roles/dev/binder",
            json!({"metadata": {"name": "binder", "namespace": "dev"}, "rules": [
                {"apiGroups": [GROUP], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["secret-reader"]}]}),
        );
        put(
            &index,
            "rolebindings/dev/ann-binder",
            json!({"metadata": {"name": "ann-binder", "namespace": "dev"},
                   "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "binder"},
                   "subjects": [{"kind": "User", "name": "ann"}]}),
        );
        check(&index, &user("ann"), &write(&secrets)).expect("bind granted");
        let admin = binding("cluster-admin-like");
        assert!(check(&index, &user("ann"), &write(&admin)).is_err());
    }
}
