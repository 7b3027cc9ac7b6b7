//! The ClusterRole aggregation controller (upstream's `clusterrole-aggregation-controller`).
//!
//! A ClusterRole with an `aggregationRule` gets as `rules` the union of the rules of every
//! other ClusterRole that any of its `clusterRoleSelectors` matches: matched roles in name
//! order, each rule once, first occurrence first. Level-triggered: every pass recomputes every
//! aggregated role from the index, woken by any ClusterRole change (and a slow resync).

use std::sync::Arc;
use std::time::Duration;

use drover_core::registry::Resource;
use serde_json::Value;

use super::index::{CLUSTER_ROLES, Role};
use super::rules::{Rule, union};
use crate::objects::Decision;
use crate::state::State;
use crate::status::{ApiError, ApiResult, Target};

const MANAGER: &str = "clusterrole-aggregation-controller";

/// The rules one aggregated ClusterRole should have.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Op {
    pub(crate) name: String,
    pub(crate) rules: Vec<Rule>,
}

/// For every aggregated role whose rules differ from the union it should hold: that union.
/// `roles` must be sorted by name (the order the union is taken in).
pub(crate) fn plan(roles: &[Arc<Role>]) -> Vec<Op> {
    let mut ops = Vec::new();
    for role in roles {
        let Some(selectors) = &role.aggregation else {
            continue;
        };
        let matched = roles.iter().filter(|other| {
            other.name != role.name && selectors.iter().any(|s| s.matches(&other.labels))
        });
        let want = union(matched.map(|r| r.rules.as_slice()));
        if want != role.rules {
            ops.push(Op {
                name: role.name.clone(),
                rules: want,
            });
        }
    }
    ops
}

/// Writes one op (compare-and-swap; a role changed meanwhile is simply read again).
async fn apply(state: &State, res: &Resource, op: &Op) -> ApiResult<()> {
    let rules = Value::Array(op.rules.iter().map(Rule::to_value).collect());
    state
        .objects
        .update(res, None, &op.name, |cur| {
            let cur = cur.ok_or_else(|| {
                ApiError::NotFound(Target::new(super::GROUP, "clusterroles", &op.name))
            })?;
            if cur.get("aggregationRule").is_none() || Rule::list_of(&cur) == op.rules {
                return Ok(Decision::Unchanged(cur));
            }
            let mut new = cur.clone();
            new["rules"] = rules.clone();
            crate::handlers::prepare_update(
                res,
                None,
                &cur,
                new,
                MANAGER,
                "Update",
                "rbac.authorization.k8s.io/v1",
            )
        })
        .await
        .map(|_| ())
}

/// One pass over every aggregated ClusterRole.
pub(crate) async fn reconcile(state: &State) {
    let Some(res) = state.resources.find(super::GROUP, "v1", "clusterroles") else {
        return;
    };
    for op in plan(&state.cache.rbac().cluster_roles()) {
        match apply(state, &res, &op).await {
            Ok(()) | Err(ApiError::NotFound(_)) => {}
            Err(e) => tracing::warn!("{MANAGER}: cannot update ClusterRole {}: {e:?}", op.name),
        }
    }
}

/// Runs until shutdown (or until aborted when this server stops leading).
pub(crate) async fn run(state: Arc<State>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        let sub = state.cache.subscribe(state.cache.revision());
        reconcile(&state).await;
        let wait = crate::cache::next_change(sub, |ev| ev.key.starts_with(CLUSTER_ROLES));
        tokio::select! {
            _ = wait => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = crate::state::shutting_down(&mut shutdown) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::Index;
    use serde_json::json;

    fn index_of(objs: &[Value]) -> Index {
        let index = Index::default();
        for o in objs {
            let name = o["metadata"]["name"].as_str().expect("name");
            let key: Arc<str> = Arc::from(format!("{CLUSTER_ROLES}{name}"));
            index.apply(&key, Some(&serde_json::to_vec(o).expect("json")));
        }
        index
    }

    fn role(name: &str, labels: Value, rules: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "rules": rules})
    }

    fn agg(name: &str, label: &str, rules: Value) -> Value {
        json!({"metadata": {"name": name},
               "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]},
               "rules": rules})
    }

    #[test]
    fn aggregated_rules_are_the_deduplicated_union_in_name_order() {
        let get_pods = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]});
        let get_cm = json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]});
        let list_deps =
            json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]});
        let index = index_of(&[
            agg("view", "to-view", json!([])),
            role(
                "b-extra",
                json!({"to-view": "true"}),
                json!([get_cm, get_pods]),
            ),
            role(
                "a-base",
                json!({"to-view": "true"}),
                json!([get_pods, list_deps]),
            ),
            role(
                "unrelated",
                json!({"to-view": "false"}),
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
            ),
        ]);
        let ops = plan(&index.cluster_roles());
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].name, "view");
        let want: Vec<Rule> = [get_pods, list_deps, get_cm]
            .iter()
            .map(Rule::from_value)
            .collect();
        assert_eq!(ops[0].rules, want);
    }

    #[test]
    fn a_role_already_holding_its_union_needs_no_write_and_a_stale_one_does() {
        let get_pods = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]});
        let settled = index_of(&[
            agg("view", "to-view", json!([get_pods])),
            role("a", json!({"to-view": "true"}), json!([get_pods])),
        ]);
        assert!(plan(&settled.cluster_roles()).is_empty());
        // Negative control: the aggregated role lost a verb the selected role holds.
        let broken = index_of(&[
            agg(
                "view",
                "to-view",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": []}]),
            ),
            role("a", json!({"to-view": "true"}), json!([get_pods])),
        ]);
        assert_eq!(plan(&broken.cluster_roles()).len(), 1);
        // A role selected by nothing any more is dropped from the union.
        let gone = index_of(&[
            agg("view", "to-view", json!([get_pods])),
            role("a", json!({}), json!([get_pods])),
        ]);
        assert_eq!(plan(&gone.cluster_roles())[0].rules, Vec::<Rule>::new());
    }

    #[test]
    fn nested_aggregation_follows_labels_and_never_selects_itself() {
        // `edit` is itself labelled aggregate-to-admin, like upstream's defaults.
        let index = index_of(&[
            json!({"metadata": {"name": "admin"},
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-admin": "true"}}]}}),
            json!({"metadata": {"name": "edit", "labels": {"to-admin": "true", "to-edit": "true"}},
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-edit": "true"}}]},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        ]);
        let ops = plan(&index.cluster_roles());
        let admin = ops.iter().find(|o| o.name == "admin").expect("admin op");
        assert_eq!(admin.rules[0].resources, ["secrets"]);
        let edit = ops.iter().find(|o| o.name == "edit").expect("edit op");
        assert!(edit.rules.is_empty(), "edit must not select itself");
    }
}
