//! PolicyRules, decoded once: matching a request, and "covers" (does one set of rules grant
//! everything another does), the question escalation prevention asks.
//!
//! The covers semantics follow upstream's `pkg/registry/rbac/validation` (`Covers`,
//! `BreakdownRule`, `CompactRules`, `CompactString`): a requested rule is broken down into
//! one rule per (group, resource, verb[, name]) and per (URL, verb), and each piece must be
//! granted by one owner rule on its own.

use serde_json::{Map, Value, json};

use super::Attributes;

/// One PolicyRule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Rule {
    pub(crate) verbs: Vec<String>,
    pub(crate) api_groups: Vec<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) resource_names: Vec<String>,
    pub(crate) non_resource_urls: Vec<String>,
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

/// Go's `%q` of a `[]string`: `["a" "b"]` (what upstream's messages print).
pub(crate) fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

// === impl Rule ===

impl Rule {
    /// Decodes a PolicyRule (missing fields are empty).
    pub(crate) fn from_value(v: &Value) -> Rule {
        Rule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The rules of a Role or ClusterRole object.
    pub(crate) fn list_of(obj: &Value) -> Vec<Rule> {
        obj.get("rules")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Rule::from_value).collect())
            .unwrap_or_default()
    }

    /// The PolicyRule JSON (empty lists other than `verbs` omitted, as upstream's `omitempty`).
    pub(crate) fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        for (k, v) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }

    /// True when this rule allows the request.
    pub(crate) fn allows(&self, a: &Attributes<'_>) -> bool {
        if !has(&self.verbs, a.verb) {
            return false;
        }
        if let Some(path) = a.path {
            return self.non_resource_urls.iter().any(|u| url_covers(u, path));
        }
        if !has(&self.api_groups, a.group) {
            return false;
        }
        let wanted = match a.subresource {
            Some(s) => format!("{}/{s}", a.resource),
            None => a.resource.to_owned(),
        };
        if !resource_covers(&self.resources, &wanted) {
            return false;
        }
        self.resource_names.is_empty()
            || a.name
                .is_some_and(|n| self.resource_names.iter().any(|x| x == n))
    }

    /// Upstream's `ruleCovers`: this owner rule grants everything `sub` does.
    pub(crate) fn covers(&self, sub: &Rule) -> bool {
        let all = |owner: &[String], wanted: &[String]| {
            owner.iter().any(|x| x == "*") || wanted.iter().all(|w| owner.contains(w))
        };
        let names = if sub.resource_names.is_empty() {
            self.resource_names.is_empty()
        } else {
            self.resource_names.is_empty()
                || sub
                    .resource_names
                    .iter()
                    .all(|n| self.resource_names.contains(n))
        };
        all(&self.verbs, &sub.verbs)
            && all(&self.api_groups, &sub.api_groups)
            && sub
                .resources
                .iter()
                .all(|r| resource_covers(&self.resources, r))
            && sub
                .non_resource_urls
                .iter()
                .all(|u| self.non_resource_urls.iter().any(|o| url_covers(o, u)))
            && names
    }

    /// Upstream's `BreakdownRule`: one rule per group × resource × verb (× name), and per
    /// URL × verb.
    pub(crate) fn breakdown(&self) -> Vec<Rule> {
        let mut out = Vec::new();
        for g in &self.api_groups {
            for r in &self.resources {
                for v in &self.verbs {
                    let one = |names: Vec<String>| Rule {
                        verbs: vec![v.clone()],
                        api_groups: vec![g.clone()],
                        resources: vec![r.clone()],
                        resource_names: names,
                        non_resource_urls: Vec::new(),
                    };
                    if self.resource_names.is_empty() {
                        out.push(one(Vec::new()));
                    } else {
                        out.extend(self.resource_names.iter().map(|n| one(vec![n.clone()])));
                    }
                }
            }
        }
        for u in &self.non_resource_urls {
            for v in &self.verbs {
                out.push(Rule {
                    verbs: vec![v.clone()],
                    non_resource_urls: vec![u.clone()],
                    ..Rule::default()
                });
            }
        }
        out
    }

    /// Upstream's `CompactString`, e.g. `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
    pub(crate) fn compact_string(&self) -> String {
        let parts: Vec<String> = [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}:{}", go_list(v)))
        .collect();
        format!("{{{}}}", parts.join(", "))
    }
}

/// `*`, the resource itself, or `*/sub` for `resource/sub`.
fn resource_covers(owner: &[String], wanted: &str) -> bool {
    owner.iter().any(|r| {
        r == "*"
            || r == wanted
            || wanted
                .split_once('/')
                .is_some_and(|(_, sub)| r.strip_prefix("*/") == Some(sub))
    })
}

/// A path matches itself, `*`, or a `prefix*` it starts with.
fn url_covers(owner: &str, path: &str) -> bool {
    owner == path
        || owner == "*"
        || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

/// The pieces of `requested` that no rule of `owner` grants (empty: owner covers it all).
pub(crate) fn missing(owner: &[Rule], requested: &[Rule]) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for piece in requested.iter().flat_map(Rule::breakdown) {
        if !owner.iter().any(|o| o.covers(&piece)) && !out.contains(&piece) {
            out.push(piece);
        }
    }
    out
}

/// Upstream's `CompactRules`: single-group, single-resource rules (with at most one name) are
/// merged by collecting their verbs; returns the sorted `CompactString`s.
pub(crate) fn describe_missing(missing: &[Rule]) -> Vec<String> {
    let mut merged: Vec<Rule> = Vec::new();
    for r in missing {
        let simple = r.api_groups.len() == 1
            && r.resources.len() == 1
            && r.resource_names.len() <= 1
            && r.non_resource_urls.is_empty();
        let same = merged.iter_mut().find(|m| {
            simple
                && m.api_groups == r.api_groups
                && m.resources == r.resources
                && m.resource_names == r.resource_names
                && m.non_resource_urls.is_empty()
        });
        match same {
            Some(m) => m.verbs.extend(r.verbs.iter().cloned()),
            None => merged.push(r.clone()),
        }
    }
    let mut lines: Vec<String> = merged.iter().map(Rule::compact_string).collect();
    lines.sort();
    lines.dedup();
    lines
}

/// The union of several rule lists: first occurrence wins, duplicates dropped (what the
/// ClusterRole aggregation controller writes).
pub(crate) fn union<'a>(lists: impl IntoIterator<Item = &'a [Rule]>) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for list in lists {
        for r in list {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Rule {
        Rule::from_value(&v)
    }

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
        let r = rule(
            json!({"apiGroups": [""], "resources": ["configmaps", "pods/log"], "verbs": ["get", "list"]}),
        );
        assert!(r.allows(&attrs("get", "configmaps", None)));
        assert!(!r.allows(&attrs("delete", "configmaps", None)));
        assert!(!r.allows(&attrs("get", "secrets", None)));
        assert!(r.allows(&attrs("get", "pods", Some("log"))));
        assert!(!r.allows(&attrs("get", "pods", None)));
        let named = rule(
            json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"], "resourceNames": ["y"]}),
        );
        assert!(!named.allows(&attrs("get", "configmaps", None)));
        let scale = rule(json!({"apiGroups": [""], "resources": ["*/scale"], "verbs": ["update"]}));
        assert!(scale.allows(&attrs("update", "replicationcontrollers", Some("scale"))));
        let urls = rule(json!({"nonResourceURLs": ["/healthz*"], "verbs": ["get"]}));
        let a = Attributes {
            verb: "get",
            group: "",
            resource: "",
            subresource: None,
            namespace: None,
            name: None,
            path: Some("/healthz/etcd"),
        };
        assert!(urls.allows(&a));
    }

    #[test]
    fn owner_rules_cover_exactly_what_they_grant() {
        let owner = vec![
            rule(
                json!({"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list", "watch"]}),
            ),
            rule(json!({"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]})),
            rule(json!({"apiGroups": [""], "resources": ["*/scale"], "verbs": ["update"]})),
            rule(json!({"nonResourceURLs": ["/logs/*"], "verbs": ["get"]})),
        ];
        let held = [
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}),
            json!({"apiGroups": ["apps"], "resources": ["deployments", "statefulsets/scale"], "verbs": ["delete", "patch"]}),
            json!({"apiGroups": [""], "resources": ["replicationcontrollers/scale"], "verbs": ["update"]}),
            json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "b"], "verbs": ["get"]}),
            json!({"nonResourceURLs": ["/logs/kube.log"], "verbs": ["get"]}),
        ];
        for h in held {
            let r = rule(h.clone());
            assert!(missing(&owner, &[r]).is_empty(), "owner should cover {h}");
        }
    }

    #[test]
    fn a_rule_missing_one_verb_is_not_covered_and_the_gap_is_named() {
        // Negative control: the owner holds get/list on pods but not delete.
        let owner = vec![rule(
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}),
        )];
        let wanted = [rule(
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]}),
        )];
        let gap = missing(&owner, &wanted);
        assert_eq!(
            describe_missing(&gap),
            vec![r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#.to_owned()]
        );
        // A name-restricted owner rule does not cover the unrestricted request.
        let named = vec![rule(
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["p"]}),
        )];
        let any = [rule(
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}),
        )];
        assert_eq!(missing(&named, &any).len(), 1);
        // A resource rule never covers a URL, nor the other way round.
        let url = [rule(
            json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}),
        )];
        assert_eq!(missing(&owner, &url).len(), 1);
        let star_url = vec![rule(json!({"nonResourceURLs": ["*"], "verbs": ["*"]}))];
        assert_eq!(missing(&star_url, &wanted).len(), 3);
    }

    #[test]
    fn missing_pieces_are_compacted_per_resource_like_upstream() {
        let gap = missing(
            &[],
            &[
                rule(
                    json!({"apiGroups": ["", "apps"], "resources": ["pods"], "verbs": ["get", "list"]}),
                ),
                rule(json!({"nonResourceURLs": ["/a", "/b"], "verbs": ["get"]})),
            ],
        );
        assert_eq!(
            describe_missing(&gap),
            vec![
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}"#.to_owned(),
                r#"{APIGroups:["apps"], Resources:["pods"], Verbs:["get" "list"]}"#.to_owned(),
                r#"{NonResourceURLs:["/a"], Verbs:["get"]}"#.to_owned(),
                r#"{NonResourceURLs:["/b"], Verbs:["get"]}"#.to_owned(),
            ]
        );
    }

    #[test]
    fn union_keeps_first_occurrence_order_and_drops_duplicates() {
        let a = vec![
            rule(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]})),
            rule(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})),
        ];
        let b = vec![
            rule(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})),
            rule(json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]})),
        ];
        let u = union([a.as_slice(), b.as_slice()]);
        let names: Vec<&str> = u.iter().map(|r| r.resources[0].as_str()).collect();
        assert_eq!(names, ["pods", "secrets", "deployments"]);
        // PolicyRule JSON round-trips.
        assert_eq!(Rule::from_value(&u[2].to_value()), u[2]);
    }
}
