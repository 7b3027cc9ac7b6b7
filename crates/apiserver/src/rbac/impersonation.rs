//! Impersonation (`kubectl --as`, `--as-group`, `--as-uid`), as upstream's
//! `WithImpersonation` filter: every `Impersonate-*` header is a separate `impersonate`
//! request the authenticated user must be allowed, on
//!
//! - `users` (core group `""`), named by `Impersonate-User`;
//! - `serviceaccounts` (core group, in the account's namespace) when the user is
//!   `system:serviceaccount:NS:NAME`;
//! - `groups` (core group), one per `Impersonate-Group`;
//! - `userextras/KEY` (`authentication.k8s.io`), one per `Impersonate-Extra-KEY` value;
//! - `uids` (`authentication.k8s.io`), named by `Impersonate-Uid`.
//!
//! The request then runs as the impersonated user. Groups, extras or a uid without a user
//! are refused (upstream answers 500 with `requested ... without impersonating a user`).

use http::HeaderMap;

use super::Attributes;
use crate::auth::User;
use crate::state::State;
use crate::status::ApiError;

const USER: &str = "impersonate-user";
const GROUP_HEADER: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

/// One thing asked to be impersonated.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    User(String),
    ServiceAccount { namespace: String, name: String },
    Group(String),
    Extra { key: String, value: String },
    Uid(String),
}

impl Request {
    fn describe(&self) -> String {
        match self {
            Request::User(n) => format!("User {n:?}"),
            Request::ServiceAccount { namespace, name } => {
                format!("ServiceAccount {namespace:?}/{name:?}")
            }
            Request::Group(n) => format!("Group {n:?}"),
            Request::Extra { key, value } => format!("UserExtra {key:?}={value:?}"),
            Request::Uid(u) => format!("UID {u:?}"),
        }
    }

    /// (group, resource, subresource, namespace, name) of the `impersonate` check.
    fn attributes(&self) -> (&str, &str, Option<&str>, Option<&str>, &str) {
        match self {
            Request::User(n) => ("", "users", None, None, n),
            Request::ServiceAccount { namespace, name } => {
                ("", "serviceaccounts", None, Some(namespace), name)
            }
            Request::Group(n) => ("", "groups", None, None, n),
            Request::Extra { key, value } => (
                "authentication.k8s.io",
                "userextras",
                Some(key),
                None,
                value,
            ),
            Request::Uid(u) => ("authentication.k8s.io", "uids", None, None, u),
        }
    }
}

/// `system:serviceaccount:NS:NAME` → (NS, NAME).
fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The impersonation requests the headers carry, in upstream's order.
fn requests(headers: &HeaderMap) -> Result<Vec<Request>, ApiError> {
    let mut out = Vec::new();
    let user = header_values(headers, USER)
        .first()
        .copied()
        .filter(|u| !u.is_empty());
    if let Some(u) = user {
        out.push(match split_service_account(u) {
            Some((namespace, name)) => Request::ServiceAccount {
                namespace: namespace.into(),
                name: name.into(),
            },
            None => Request::User(u.into()),
        });
    }
    for g in header_values(headers, GROUP_HEADER) {
        out.push(Request::Group(g.into()));
    }
    let mut extra_names: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| n.starts_with(EXTRA_PREFIX))
        .collect();
    extra_names.sort_unstable();
    extra_names.dedup();
    for name in extra_names {
        // Header names are case-insensitive; keys are percent-encoded (upstream's
        // `unescapeExtraKey`).
        let raw = &name[EXTRA_PREFIX.len()..];
        let key = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map(|k| k.to_lowercase())
            .unwrap_or_else(|_| raw.to_owned());
        for value in header_values(headers, name) {
            out.push(Request::Extra {
                key: key.clone(),
                value: value.into(),
            });
        }
    }
    if let Some(uid) = header_values(headers, UID)
        .first()
        .copied()
        .filter(|u| !u.is_empty())
    {
        out.push(Request::Uid(uid.into()));
    }
    if user.is_none() && !out.is_empty() {
        let list: Vec<String> = out.iter().map(Request::describe).collect();
        return Err(ApiError::Internal(format!(
            "requested [{}] without impersonating a user",
            list.join(", ")
        )));
    }
    Ok(out)
}

/// The user the request runs as: `requester` itself without `Impersonate-*` headers, else
/// the impersonated user once `requester` is allowed every part of it.
pub(crate) fn impersonate(
    state: &State,
    requester: User,
    headers: &HeaderMap,
) -> Result<User, ApiError> {
    let wanted = requests(headers)?;
    if wanted.is_empty() {
        return Ok(requester);
    }
    for w in &wanted {
        let (group, resource, subresource, namespace, name) = w.attributes();
        let a = Attributes {
            verb: "impersonate",
            group,
            resource,
            subresource,
            namespace,
            name: Some(name),
            path: None,
        };
        if super::authorize(state, &requester, &a).is_err() {
            return Err(super::forbidden(&requester, &a));
        }
    }
    Ok(build(&wanted, &requester))
}

/// The impersonated user's info from its (authorized) parts.
fn build(wanted: &[Request], requester: &User) -> User {
    let groups_given = wanted.iter().any(|w| matches!(w, Request::Group(_)));
    let mut user = User {
        name: String::new(),
        groups: Vec::new(),
        uid: String::new(),
        extra: Vec::new(),
    };
    for w in wanted {
        match w {
            Request::User(n) => user.name = n.clone(),
            Request::ServiceAccount { namespace, name } => {
                user.name = format!("system:serviceaccount:{namespace}:{name}");
                if !groups_given {
                    user.groups = vec![
                        "system:serviceaccounts".into(),
                        format!("system:serviceaccounts:{namespace}"),
                    ];
                }
            }
            Request::Group(g) => user.groups.push(g.clone()),
            Request::Extra { key, value } => match user.extra.iter_mut().find(|(k, _)| k == key) {
                Some((_, values)) => values.push(value.clone()),
                None => user.extra.push((key.clone(), vec![value.clone()])),
            },
            Request::Uid(u) => user.uid = u.clone(),
        }
    }
    // Upstream adds the virtual group unless the caller named one of the two explicitly.
    let explicit = user
        .groups
        .iter()
        .any(|g| g == "system:authenticated" || g == "system:unauthenticated");
    if !explicit {
        user.groups.push(if user.name == "system:anonymous" {
            "system:unauthenticated".into()
        } else {
            "system:authenticated".into()
        });
    }
    tracing::debug!("{} is acting as {}", requester.name, user.name);
    user
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn someone() -> User {
        User {
            name: "admin".into(),
            groups: vec!["system:masters".into()],
            uid: String::new(),
            extra: Vec::new(),
        }
    }

    #[test]
    fn headers_become_requests_in_upstreams_order() {
        let h = headers(&[
            ("Impersonate-Uid", "u-1"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Group", "ops"),
            ("Impersonate-User", "ann"),
            ("Impersonate-Extra-Scopes%2Fx", "view"),
            ("Impersonate-Extra-Scopes%2Fx", "edit"),
        ]);
        let r = requests(&h).expect("valid");
        assert_eq!(
            r,
            vec![
                Request::User("ann".into()),
                Request::Group("devs".into()),
                Request::Group("ops".into()),
                Request::Extra {
                    key: "scopes/x".into(),
                    value: "view".into()
                },
                Request::Extra {
                    key: "scopes/x".into(),
                    value: "edit".into()
                },
                Request::Uid("u-1".into()),
            ]
        );
        let u = build(&r, &someone());
        assert_eq!(u.name, "ann");
        assert_eq!(u.groups, ["devs", "ops", "system:authenticated"]);
        assert_eq!(u.uid, "u-1");
        assert_eq!(
            u.extra,
            vec![(
                "scopes/x".to_owned(),
                vec!["view".to_owned(), "edit".to_owned()]
            )]
        );
    }

    #[test]
    fn service_accounts_get_their_groups_and_a_user_alone_gets_authenticated() {
        let h = headers(&[("Impersonate-User", "system:serviceaccount:dev:builder")]);
        let r = requests(&h).expect("valid");
        assert_eq!(
            r[0],
            Request::ServiceAccount {
                namespace: "dev".into(),
                name: "builder".into()
            }
        );
        assert_eq!(
            r[0].attributes(),
            ("", "serviceaccounts", None, Some("dev"), "builder")
        );
        let u = build(&r, &someone());
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:dev",
                "system:authenticated"
            ]
        );
        let plain = build(&[Request::User("bob".into())], &someone());
        assert_eq!(plain.groups, ["system:authenticated"]);
        let anon = build(&[Request::User("system:anonymous".into())], &someone());
        assert_eq!(anon.groups, ["system:unauthenticated"]);
        let explicit = build(
            &[
                Request::User("bob".into()),
                Request::Group("system:authenticated".into()),
            ],
            &someone(),
        );
        assert_eq!(explicit.groups, ["system:authenticated"]);
    }

    #[test]
    fn groups_without_a_user_are_refused_and_no_headers_mean_no_impersonation() {
        let err = requests(&headers(&[("Impersonate-Group", "devs")])).expect_err("no user");
        assert!(
            err.to_status()["message"]
                .as_str()
                .unwrap_or("")
                .ends_with("without impersonating a user"),
            "{:?}",
            err.to_status()
        );
        assert!(requests(&HeaderMap::new()).expect("none").is_empty());
    }
}
