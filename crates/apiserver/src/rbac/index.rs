//! The decoded RBAC view the authorizer reads: roles with their rules, bindings, and which
//! bindings name each subject.
//!
//! The watch cache's single writer keeps it current: every RBAC event the cache applies is
//! applied here under the cache's write lock, so the index and the cache are always at the
//! same revision (a request never sees a binding in one and not the other). A request costs
//! a hash lookup per user and group, not a decode of every binding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use drover_core::selector::Selector;
use parking_lot::RwLock;
use serde_json::Value;

use super::rules::Rule;
use crate::auth::User;
use crate::objects::decode_stored;

/// The storage key prefixes of the four RBAC kinds.
pub(crate) const CLUSTER_ROLES: &str = "/registry/rbac.authorization.k8s.io/clusterroles/";
const ROLES: &str = "/registry/rbac.authorization.k8s.io/roles/";
const CLUSTER_ROLE_BINDINGS: &str = "/registry/rbac.authorization.k8s.io/clusterrolebindings/";
const ROLE_BINDINGS: &str = "/registry/rbac.authorization.k8s.io/rolebindings/";

/// A Role or ClusterRole, decoded.
#[derive(Debug)]
pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) rules: Vec<Rule>,
    pub(crate) labels: BTreeMap<String, String>,
    /// The `aggregationRule.clusterRoleSelectors` of a ClusterRole (`None` without one).
    pub(crate) aggregation: Option<Vec<Selector>>,
}

/// What a binding grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RoleRef {
    Role(String),
    ClusterRole(String),
}

impl RoleRef {
    pub(crate) fn from_value(v: &Value) -> Option<RoleRef> {
        let name = v.get("name").and_then(Value::as_str)?.to_owned();
        match v.get("kind").and_then(Value::as_str)? {
            "Role" => Some(RoleRef::Role(name)),
            "ClusterRole" => Some(RoleRef::ClusterRole(name)),
            _ => None,
        }
    }
}

/// Who a binding subject is, as the authenticator names users and groups.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum SubjectKey {
    User(String),
    Group(String),
}

#[derive(Debug)]
struct Binding {
    kind: &'static str,
    name: String,
    /// `None` for a ClusterRoleBinding.
    namespace: Option<String>,
    role_ref: Option<RoleRef>,
    subjects: Vec<SubjectKey>,
}

#[derive(Default)]
struct Inner {
    cluster_roles: HashMap<String, Arc<Role>>,
    roles: HashMap<(String, String), Arc<Role>>,
    bindings: HashMap<Arc<str>, Arc<Binding>>,
    /// Subject → binding scope (`None`: cluster-wide) → binding keys.
    by_subject: HashMap<SubjectKey, HashMap<Option<String>, BTreeSet<Arc<str>>>>,
}

/// The index. One writer (the watch cache's follower); readers take a short read lock.
#[derive(Default)]
pub(crate) struct Index {
    inner: RwLock<Inner>,
}

/// A rule a binding grants, with where it came from (for the allow reason).
pub(crate) struct Grant<'a> {
    pub(crate) binding_kind: &'static str,
    pub(crate) binding_name: &'a str,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) rules: &'a [Rule],
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn decode_role(obj: &Value) -> Role {
    let aggregation = obj.get("aggregationRule").map(|agg| {
        agg.get("clusterRoleSelectors")
            .and_then(Value::as_array)
            .map(|sels| {
                sels.iter()
                    // A selector that does not parse selects nothing (validation refuses it).
                    .map(|s| {
                        Selector::from_label_selector(s).unwrap_or_else(|_| Selector::nothing())
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    Role {
        name: crate::meta::meta_str(obj, "name").unwrap_or("").to_owned(),
        rules: Rule::list_of(obj),
        labels: labels_of(obj),
        aggregation,
    }
}

fn subject_key(subject: &Value, binding_ns: Option<&str>) -> Option<SubjectKey> {
    let name = subject.get("name").and_then(Value::as_str)?.to_owned();
    match subject.get("kind").and_then(Value::as_str)? {
        "User" => Some(SubjectKey::User(name)),
        "Group" => Some(SubjectKey::Group(name)),
        "ServiceAccount" => {
            let ns = subject
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .or(binding_ns)?;
            Some(SubjectKey::User(format!(
                "system:serviceaccount:{ns}:{name}"
            )))
        }
        _ => None,
    }
}

fn decode_binding(obj: &Value, kind: &'static str, namespace: Option<String>) -> Binding {
    let subjects = obj
        .get("subjects")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| subject_key(s, namespace.as_deref()))
                .collect()
        })
        .unwrap_or_default();
    Binding {
        kind,
        name: crate::meta::meta_str(obj, "name").unwrap_or("").to_owned(),
        namespace,
        role_ref: obj.get("roleRef").and_then(RoleRef::from_value),
        subjects,
    }
}

/// `ns/name` after a prefix.
fn split_ns(rest: &str) -> Option<(&str, &str)> {
    rest.split_once('/')
}

// === impl Inner ===

impl Inner {
    fn remove(&mut self, key: &str) {
        if let Some(rest) = key.strip_prefix(CLUSTER_ROLES) {
            self.cluster_roles.remove(rest);
        } else if let Some(rest) = key.strip_prefix(ROLES) {
            if let Some((ns, name)) = split_ns(rest) {
                self.roles.remove(&(ns.to_owned(), name.to_owned()));
            }
        } else if let Some(old) = self.bindings.remove(key) {
            for s in &old.subjects {
                if let Some(scopes) = self.by_subject.get_mut(s) {
                    if let Some(keys) = scopes.get_mut(&old.namespace) {
                        keys.remove(key);
                        if keys.is_empty() {
                            scopes.remove(&old.namespace);
                        }
                    }
                    if scopes.is_empty() {
                        self.by_subject.remove(s);
                    }
                }
            }
        }
    }

    fn put(&mut self, key: &Arc<str>, obj: &Value) {
        self.remove(key);
        if let Some(rest) = key.strip_prefix(CLUSTER_ROLES) {
            self.cluster_roles
                .insert(rest.to_owned(), Arc::new(decode_role(obj)));
        } else if let Some(rest) = key.strip_prefix(ROLES) {
            if let Some((ns, name)) = split_ns(rest) {
                self.roles
                    .insert((ns.to_owned(), name.to_owned()), Arc::new(decode_role(obj)));
            }
        } else {
            let binding = if key.starts_with(CLUSTER_ROLE_BINDINGS) {
                decode_binding(obj, "ClusterRoleBinding", None)
            } else if let Some(rest) = key.strip_prefix(ROLE_BINDINGS) {
                let Some((ns, _)) = split_ns(rest) else {
                    return;
                };
                decode_binding(obj, "RoleBinding", Some(ns.to_owned()))
            } else {
                return;
            };
            for s in &binding.subjects {
                self.by_subject
                    .entry(s.clone())
                    .or_default()
                    .entry(binding.namespace.clone())
                    .or_default()
                    .insert(Arc::clone(key));
            }
            self.bindings.insert(Arc::clone(key), Arc::new(binding));
        }
    }

    fn resolve(&self, role_ref: &RoleRef, ns: Option<&str>) -> Option<&Arc<Role>> {
        match (role_ref, ns) {
            (RoleRef::ClusterRole(name), _) => self.cluster_roles.get(name),
            (RoleRef::Role(name), Some(ns)) => self.roles.get(&(ns.to_owned(), name.clone())),
            (RoleRef::Role(_), None) => None,
        }
    }
}

// === impl Index ===

/// True for the keys the index follows.
pub(crate) fn is_rbac_key(key: &str) -> bool {
    key.starts_with("/registry/rbac.authorization.k8s.io/")
}

impl Index {
    /// Replaces everything with the RBAC objects among `objects` (a cache prime or reload).
    pub(crate) fn rebuild<'a>(&self, objects: impl Iterator<Item = (&'a Arc<str>, &'a [u8])>) {
        let mut fresh = Inner::default();
        for (key, value) in objects.filter(|(k, _)| is_rbac_key(k)) {
            if let Ok(obj) = decode_stored(value, 0) {
                fresh.put(key, &obj);
            }
        }
        *self.inner.write() = fresh;
    }

    /// Applies one put (`Some(bytes)`) or delete (`None`) of `key`.
    pub(crate) fn apply(&self, key: &Arc<str>, value: Option<&[u8]>) {
        if !is_rbac_key(key) {
            return;
        }
        let decoded = value.and_then(|v| decode_stored(v, 0).ok());
        let mut inner = self.inner.write();
        match decoded {
            Some(obj) => inner.put(key, &obj),
            None => inner.remove(key),
        }
    }

    /// Calls `f` with every rule set bound to `user` that applies in `namespace` (cluster
    /// bindings always; role bindings of that namespace), until `f` returns true.
    pub(crate) fn find_grant(
        &self,
        user: &User,
        namespace: Option<&str>,
        mut f: impl FnMut(&Grant<'_>) -> bool,
    ) -> bool {
        let inner = self.inner.read();
        let subjects = std::iter::once(SubjectKey::User(user.name.clone()))
            .chain(user.groups.iter().cloned().map(SubjectKey::Group));
        // Cluster-wide bindings, then those of the request's namespace.
        let mut scopes = vec![None];
        if let Some(ns) = namespace {
            scopes.push(Some(ns.to_owned()));
        }
        for s in subjects {
            let Some(by_scope) = inner.by_subject.get(&s) else {
                continue;
            };
            for scope in &scopes {
                for key in by_scope.get(scope).into_iter().flatten() {
                    let Some(b) = inner.bindings.get(key) else {
                        continue;
                    };
                    let Some(role) = b
                        .role_ref
                        .as_ref()
                        .and_then(|r| inner.resolve(r, b.namespace.as_deref()))
                    else {
                        continue;
                    };
                    let grant = Grant {
                        binding_kind: b.kind,
                        binding_name: &b.name,
                        namespace: b.namespace.as_deref(),
                        rules: &role.rules,
                    };
                    if f(&grant) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Every rule `user` holds in `namespace` (upstream's `RulesFor`), in binding order.
    pub(crate) fn rules_for(&self, user: &User, namespace: Option<&str>) -> Vec<Rule> {
        let mut out = Vec::new();
        self.find_grant(user, namespace, |g| {
            out.extend(g.rules.iter().cloned());
            false
        });
        out
    }

    /// The rules a role reference names, or `None` when the role does not exist.
    pub(crate) fn role_rules(&self, role_ref: &RoleRef, ns: Option<&str>) -> Option<Vec<Rule>> {
        self.inner
            .read()
            .resolve(role_ref, ns)
            .map(|r| r.rules.clone())
    }

    /// Every ClusterRole (for the aggregation controller), sorted by name.
    pub(crate) fn cluster_roles(&self) -> Vec<Arc<Role>> {
        let mut all: Vec<Arc<Role>> = self.inner.read().cluster_roles.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// How many bindings the index holds (for tests).
    #[cfg(test)]
    fn binding_count(&self) -> usize {
        self.inner.read().bindings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            uid: String::new(),
            extra: Vec::new(),
        }
    }

    fn put(index: &Index, key: &str, obj: Value) {
        let bytes = serde_json::to_vec(&obj).expect("json");
        index.apply(&Arc::from(key), Some(&bytes));
    }

    fn can(index: &Index, u: &User, ns: Option<&str>, resource: &str, verb: &str) -> bool {
        let a = super::super::Attributes {
            verb,
            group: "",
            resource,
            subresource: None,
            namespace: ns,
            name: None,
            path: None,
        };
        index.find_grant(u, ns, |g| g.rules.iter().any(|r| r.allows(&a)))
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts_in_their_scope() {
        let index = Index::default();
        put(
            &index,
            "/registry/rbac.authorization.k8s.io/roles/ns1/r",
            json!({"metadata": {"name": "r", "namespace": "ns1"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
        );
        put(
            &index,
            "/registry/rbac.authorization.k8s.io/rolebindings/ns1/b",
            json!({"metadata": {"name": "b", "namespace": "ns1"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                   "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Group", "name": "devs"}]}),
        );
        let sa = user("system:serviceaccount:ns1:sa", &["system:serviceaccounts"]);
        assert!(can(&index, &sa, Some("ns1"), "configmaps", "get"));
        assert!(!can(&index, &sa, Some("ns2"), "configmaps", "get"));
        assert!(!can(&index, &sa, None, "configmaps", "get"));
        let other_sa = user("system:serviceaccount:ns2:sa", &[]);
        assert!(!can(&index, &other_sa, Some("ns1"), "configmaps", "get"));
        assert!(can(
            &index,
            &user("ann", &["devs"]),
            Some("ns1"),
            "configmaps",
            "get"
        ));
        assert!(!can(
            &index,
            &user("devs", &[]),
            Some("ns1"),
            "configmaps",
            "get"
        ));
    }

    #[test]
    fn updates_and_deletes_replace_what_a_binding_grants() {
        let index = Index::default();
        put(
            &index,
            "/registry/rbac.authorization.k8s.io/clusterroles/reader",
            json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
        );
        let key = "/registry/rbac.authorization.k8s.io/clusterrolebindings/b";
        let binding = |who: &str| {
            json!({"metadata": {"name": "b"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
                   "subjects": [{"kind": "User", "name": who}]})
        };
        put(&index, key, binding("ann"));
        let (ann, bob) = (user("ann", &[]), user("bob", &[]));
        assert!(can(&index, &ann, Some("x"), "pods", "list"));
        put(&index, key, binding("bob"));
        assert!(!can(&index, &ann, Some("x"), "pods", "list"));
        assert!(can(&index, &bob, None, "pods", "list"));
        // A role change is seen through every binding at once.
        put(
            &index,
            "/registry/rbac.authorization.k8s.io/clusterroles/reader",
            json!({"metadata": {"name": "reader"}, "rules": []}),
        );
        assert!(!can(&index, &bob, None, "pods", "list"));
        index.apply(&Arc::from(key), None);
        assert_eq!(index.binding_count(), 0);
        assert!(index.inner.read().by_subject.is_empty());
    }

    /// Through the real watch cache: while readers hammer the index, a binding is switched
    /// between two users; once the cache has applied each write, the very next lookup
    /// honours it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cache_keeps_the_index_current_under_concurrent_binding_changes() {
        use drover_store::{AnyStore, MemStore, Store as _};
        let store = Arc::new(AnyStore::from(MemStore::new()));
        let role = json!({"metadata": {"name": "reader"},
                          "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]});
        store
            .create(
                "/registry/rbac.authorization.k8s.io/clusterroles/reader",
                serde_json::to_vec(&role).expect("json").into(),
            )
            .await
            .expect("create role");
        let cache = crate::cache::Cache::start(Arc::clone(&store))
            .await
            .expect("cache");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (cache, stop) = (Arc::clone(&cache), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut lookups = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        for who in ["ann", "bob"] {
                            can(cache.rbac(), &user(who, &[]), Some("ns"), "pods", "list");
                            lookups += 1;
                        }
                        tokio::task::yield_now().await;
                    }
                    lookups
                })
            })
            .collect();
        let key = "/registry/rbac.authorization.k8s.io/rolebindings/ns/b";
        let mut rev = 0;
        for i in 0..200 {
            let who = if i % 2 == 0 { "ann" } else { "bob" };
            let binding = json!({"metadata": {"name": "b", "namespace": "ns"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
                   "subjects": [{"kind": "User", "name": who}]});
            let bytes = serde_json::to_vec(&binding).expect("json").into();
            rev = if i == 0 {
                store.create(key, bytes).await.expect("create")
            } else {
                store.update(key, rev, bytes).await.expect("update")
            };
            cache.wait_for(rev).await.expect("cache catches up");
            let other = if who == "ann" { "bob" } else { "ann" };
            assert!(
                can(cache.rbac(), &user(who, &[]), Some("ns"), "pods", "list"),
                "step {i}: {who} is bound"
            );
            assert!(
                !can(cache.rbac(), &user(other, &[]), Some("ns"), "pods", "list"),
                "step {i}: {other} is no longer bound"
            );
        }
        store.delete(key, rev).await.expect("delete");
        let rev = store.current_revision().await.expect("revision");
        cache.wait_for(rev).await.expect("cache catches up");
        assert!(!can(
            cache.rbac(),
            &user("bob", &[]),
            Some("ns"),
            "pods",
            "list"
        ));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.await.expect("reader") > 0);
        }
    }
}
