//! Turning a request path and method into what it asks for (upstream's `RequestInfo`).

/// What a request path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Version,
    /// `/healthz`, `/livez`, `/readyz`, optionally one check (`/readyz/etcd`).
    Health {
        endpoint: &'static str,
        check: Option<String>,
    },
    Metrics,
    /// `/api`.
    LegacyApis,
    /// `/apis`.
    Apis,
    /// `/apis/G`.
    Group(String),
    /// `/api/v1` or `/apis/G/V`.
    GroupVersion {
        group: String,
        version: String,
    },
    OpenApiV3Index,
    OpenApiV3 {
        group: String,
        version: String,
    },
    OpenApiV2,
    OidcConfig,
    Jwks,
    Resource(ResourceRequest),
    NotFound,
}

/// A request for objects of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceRequest {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) namespace: Option<String>,
    pub(crate) resource: String,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
    pub(crate) verb: Verb,
}

/// Upstream's verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// Routes a request.
pub(crate) fn route(method: &http::Method, path: &str, query: &Query) -> Route {
    let trimmed = path.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').skip(1).collect();
    match parts.as_slice() {
        ["version"] => Route::Version,
        ["healthz", rest @ ..] => health("healthz", rest),
        ["livez", rest @ ..] => health("livez", rest),
        ["readyz", rest @ ..] => health("readyz", rest),
        ["metrics"] => Route::Metrics,
        ["api"] => Route::LegacyApis,
        ["apis"] => Route::Apis,
        ["apis", g] => Route::Group((*g).to_owned()),
        ["api", v] => Route::GroupVersion {
            group: String::new(),
            version: (*v).to_owned(),
        },
        ["apis", g, v] => Route::GroupVersion {
            group: (*g).to_owned(),
            version: (*v).to_owned(),
        },
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", "api", v] => Route::OpenApiV3 {
            group: String::new(),
            version: (*v).to_owned(),
        },
        ["openapi", "v3", "apis", g, v] => Route::OpenApiV3 {
            group: (*g).to_owned(),
            version: (*v).to_owned(),
        },
        ["openapi", "v2"] => Route::OpenApiV2,
        [".well-known", "openid-configuration"] => Route::OidcConfig,
        ["openid", "v1", "jwks"] => Route::Jwks,
        ["api", v, rest @ ..] => resource("", v, rest, method, query),
        ["apis", g, v, rest @ ..] => resource(g, v, rest, method, query),
        _ => Route::NotFound,
    }
}

fn health(endpoint: &'static str, rest: &[&str]) -> Route {
    match rest {
        [] => Route::Health {
            endpoint,
            check: None,
        },
        [check] => Route::Health {
            endpoint,
            check: Some((*check).to_owned()),
        },
        _ => Route::NotFound,
    }
}

/// Subresources of namespaces (so `/namespaces/x/status` is not "resource status in x").
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

fn resource(
    group: &str,
    version: &str,
    rest: &[&str],
    method: &http::Method,
    query: &Query,
) -> Route {
    let mut parts: Vec<String> = rest.iter().map(|p| decode_segment(p)).collect();
    let mut legacy_watch = false;
    if parts.first().map(String::as_str) == Some("watch") {
        legacy_watch = true;
        parts.remove(0);
    }
    let mut namespace = None;
    if parts.first().map(String::as_str) == Some("namespaces") && parts.len() > 1 {
        namespace = Some(parts[1].clone());
        if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2].as_str()) {
            parts.drain(..2);
        }
    }
    let (resource, name, subresource) = match parts.as_slice() {
        [r] => (r.clone(), None, None),
        [r, n] => (r.clone(), Some(n.clone()), None),
        [r, n, s] => (r.clone(), Some(n.clone()), Some(s.clone())),
        _ => return Route::NotFound,
    };
    // `/api/v1/namespaces/x` addresses the namespace object itself.
    if resource == "namespaces" {
        namespace = None;
    }
    if name.as_deref() == Some("") || resource.is_empty() {
        return Route::NotFound;
    }
    let watch_param = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (method.as_str(), name.is_some()) {
        ("GET" | "HEAD", _) if legacy_watch || watch_param => Verb::Watch,
        ("GET" | "HEAD", true) => Verb::Get,
        ("GET" | "HEAD", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", _) => Verb::Update,
        ("PATCH", _) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return Route::NotFound,
    };
    Route::Resource(ResourceRequest {
        group: group.to_owned(),
        version: version.to_owned(),
        namespace,
        resource,
        name,
        subresource,
        verb,
    })
}

fn decode_segment(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Query parameters, form-decoded (`+` is a space), last value wins except where all are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        let mut pairs = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((form_decode(k), form_decode(v)));
        }
        Query { pairs }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | ""))
    }
}

fn form_decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: &str, path: &str) -> Route {
        let (p, q) = path
            .split_once('?')
            .map_or((path, None), |(p, q)| (p, Some(q)));
        route(&method.parse().expect("method"), p, &Query::parse(q))
    }

    fn res(method: &str, path: &str) -> ResourceRequest {
        match r(method, path) {
            Route::Resource(rr) => rr,
            other => panic!("{path} routed to {other:?}"),
        }
    }

    #[test]
    fn namespaced_item_and_subresource() {
        let rr = res(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        );
        assert_eq!(
            (
                rr.group.as_str(),
                rr.namespace.as_deref(),
                rr.resource.as_str()
            ),
            ("apps", Some("default"), "deployments")
        );
        assert_eq!(
            (rr.name.as_deref(), rr.subresource.as_deref()),
            (Some("web"), Some("scale"))
        );
        assert_eq!(rr.verb, Verb::Get);
    }

    #[test]
    fn namespace_object_and_its_subresources() {
        let rr = res("GET", "/api/v1/namespaces/prod");
        assert_eq!(
            (rr.resource.as_str(), rr.name.as_deref(), rr.namespace),
            ("namespaces", Some("prod"), None)
        );
        let rr = res("PUT", "/api/v1/namespaces/prod/finalize");
        assert_eq!(
            (rr.resource.as_str(), rr.subresource.as_deref()),
            ("namespaces", Some("finalize"))
        );
        let rr = res("GET", "/api/v1/namespaces/prod/pods");
        assert_eq!(
            (rr.resource.as_str(), rr.namespace.as_deref(), rr.verb),
            ("pods", Some("prod"), Verb::List)
        );
    }

    #[test]
    fn verbs_follow_method_and_watch() {
        assert_eq!(res("GET", "/api/v1/pods?watch=true").verb, Verb::Watch);
        assert_eq!(
            res("GET", "/api/v1/watch/namespaces/a/pods").verb,
            Verb::Watch
        );
        assert_eq!(
            res("DELETE", "/api/v1/namespaces/a/pods").verb,
            Verb::DeleteCollection
        );
        assert_eq!(
            res("DELETE", "/api/v1/namespaces/a/pods/x").verb,
            Verb::Delete
        );
        assert_eq!(res("PATCH", "/api/v1/nodes/n1").verb, Verb::Patch);
    }

    #[test]
    fn non_resource_paths() {
        assert_eq!(
            r("GET", "/readyz/etcd"),
            Route::Health {
                endpoint: "readyz",
                check: Some("etcd".into())
            }
        );
        assert_eq!(
            r("GET", "/apis/apps/v1"),
            Route::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(
            r("GET", "/openapi/v3/api/v1"),
            Route::OpenApiV3 {
                group: "".into(),
                version: "v1".into()
            }
        );
        assert_eq!(r("GET", "/nope"), Route::NotFound);
    }

    #[test]
    fn query_is_form_decoded() {
        let q = Query::parse(Some("labelSelector=app+in+(a%2Cb)&limit=500&limit=5"));
        assert_eq!(q.get("labelSelector"), Some("app in (a,b)"));
        assert_eq!(q.get("limit"), Some("5"));
    }
}
