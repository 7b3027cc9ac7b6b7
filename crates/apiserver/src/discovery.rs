//! Discovery: legacy (`APIVersions`, `APIGroupList`, `APIResourceList`) and aggregated
//! (`apidiscovery.k8s.io` v2 and v2beta1), generated from the resource registry.

use drover_core::registry::{GroupVersion, Resource};
use serde_json::{Value, json};

use crate::negotiate::parse_media_ranges;

/// Which discovery document form a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    Legacy,
    Aggregated(&'static str),
}

/// Picks the form from `Accept`, honouring the client's order (kubectl ≤ 1.29 asks only for
/// v2beta1; a v2 body would break it).
pub(crate) fn form(accept: Option<&str>) -> Form {
    for r in parse_media_ranges(accept.unwrap_or("")) {
        if r.param("as") == Some("APIGroupDiscoveryList")
            && r.param("g") == Some("apidiscovery.k8s.io")
        {
            match r.param("v") {
                Some("v2") => return Form::Aggregated("v2"),
                Some("v2beta1") => return Form::Aggregated("v2beta1"),
                _ => continue,
            }
        }
        if r.param("as").is_none() {
            return Form::Legacy;
        }
    }
    Form::Legacy
}

/// The exact Content-Type of an aggregated discovery response.
pub(crate) fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// Groups in discovery order with their versions (preferred first).
fn groups(resources: &[Resource]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for r in resources {
        let g = r.gv.group.to_string();
        let v = r.gv.version.to_string();
        match out.iter_mut().find(|(name, _)| *name == g) {
            Some((_, versions)) => {
                if !versions.contains(&v) {
                    versions.push(v);
                }
            }
            None => out.push((g, vec![v])),
        }
    }
    out
}

/// `GET /api` (legacy).
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0].clone()})
}

/// `GET /apis` (legacy).
pub(crate) fn api_group_list(resources: &[Resource]) -> Value {
    let groups: Vec<Value> = groups(resources)
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| api_group(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/G` (legacy); `None` if the group is unknown.
pub(crate) fn api_group_doc(resources: &[Resource], group: &str) -> Option<Value> {
    let (name, versions) = groups(resources)
        .into_iter()
        .find(|(g, _)| g == group && !g.is_empty())?;
    let mut doc = api_group(&name, &versions);
    doc["kind"] = "APIGroup".into();
    doc["apiVersion"] = "v1".into();
    Some(doc)
}

/// `GET /api/v1` or `/apis/G/V` (legacy); `None` if the group-version is unknown.
pub(crate) fn api_resource_list(resources: &[Resource], gv: &GroupVersion) -> Option<Value> {
    let mut list = Vec::new();
    for r in resources.iter().filter(|r| r.gv == *gv) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs.names(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        for s in r.subresources.iter() {
            let mut sub = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind.map_or(r.kind.as_ref(), |k| k.2),
                "verbs": s.verbs,
            });
            if let Some((g, v, _)) = s.kind {
                sub["group"] = g.into();
                sub["version"] = v.into();
            }
            list.push(sub);
        }
    }
    if list.is_empty() {
        return None;
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv.api_version(), "resources": list}),
    )
}

fn aggregated_resource(r: &Resource) -> Value {
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": {"group": r.gv.group, "version": r.gv.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs.names(),
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                let (g, v, k) = s.kind.unwrap_or((&r.gv.group, &r.gv.version, &r.kind));
                json!({"subresource": s.name, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": s.verbs})
            })
            .collect();
        entry["subresources"] = Value::Array(subs);
    }
    entry
}

/// Aggregated discovery for the core group (`legacy = true`, `/api`) or the named groups
/// (`/apis`).
pub(crate) fn aggregated(resources: &[Resource], legacy: bool, version: &str) -> Value {
    let items: Vec<Value> = groups(resources)
        .iter()
        .filter(|(g, _)| g.is_empty() == legacy)
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| {
                    let rs: Vec<Value> = resources
                        .iter()
                        .filter(|r| r.gv.group == g.as_str() && r.gv.version == v.as_str())
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": rs, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_core::registry::builtin;

    #[test]
    fn accept_order_picks_the_form() {
        let new = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(form(Some(new)), Form::Aggregated("v2"));
        let old = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(form(Some(old)), Form::Aggregated("v2beta1"));
        assert_eq!(form(Some("application/json, */*")), Form::Legacy);
    }

    #[test]
    fn aggregated_lists_deployments_with_scale() {
        let doc = aggregated(builtin(), false, "v2");
        let apps = doc["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .expect("apps");
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["resource"] == "deployments")
            .expect("deployments");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["categories"], json!(["all"]));
        let scale = deploy["subresources"]
            .as_array()
            .expect("subs")
            .iter()
            .find(|s| s["subresource"] == "scale")
            .expect("scale");
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        let core = aggregated(builtin(), true, "v2");
        assert_eq!(core["items"].as_array().expect("items").len(), 1);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
    }

    #[test]
    fn autoscaling_prefers_v2() {
        let g = api_group_doc(builtin(), "autoscaling").expect("autoscaling");
        assert_eq!(g["preferredVersion"]["version"], "v2");
        assert_eq!(g["versions"].as_array().expect("versions").len(), 2);
    }
}
