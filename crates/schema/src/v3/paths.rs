//! The `paths` of a group-version document: one path item per collection, object and
//! subresource, with the operations kubectl and helm look for.

use drover_core::registry::{Resource, Subresource, Verbs};
use serde_json::{Map, Value, json};

use super::params::{
    connect_params, delete_params, list_params, log_params, path_param, query, write_params,
};
use crate::defs::{API_RESOURCE_LIST, DELETE_OPTIONS, PATCH, STATUS, gvk, ref_to};

/// How a kind in a group-version document is found: the definition name for (g, v, kind).
pub(super) type KindLookup<'a> = dyn Fn(&str, &str, &str) -> Option<String> + 'a;

/// Builds the `paths` object of one group-version and returns the definition names used.
pub(super) fn paths(
    prefix: &str,
    resources: &[&Resource],
    lookup: &KindLookup<'_>,
    strategic: bool,
    roots: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let tag = tag(resources);
    out.insert(
        format!("{prefix}/"),
        json!({ "get": {
            "description": "get available resources",
            "operationId": format!("get{}APIResources", op_prefix(resources)),
            "tags": [tag],
            "responses": responses(&[("200", Some(API_RESOURCE_LIST))]),
        }}),
    );
    roots.push(API_RESOURCE_LIST.to_owned());
    for r in resources {
        let Some(kind_def) = lookup(&r.gv.group, &r.gv.version, &r.kind) else {
            continue;
        };
        roots.push(kind_def.clone());
        let cx = Cx {
            r,
            prefix,
            tag: &tag,
            kind_def: &kind_def,
            strategic,
        };
        cx.collection(&mut out, lookup, roots);
        if r.verbs != Verbs::CreateOnly {
            out.insert(cx.item_path(), cx.item());
        }
        for sub in r.subresources.iter() {
            out.insert(
                format!("{}/{}", cx.item_path(), sub.name),
                cx.subresource(sub, lookup, roots),
            );
        }
    }
    out
}

fn tag(resources: &[&Resource]) -> String {
    let Some(r) = resources.first() else {
        return String::new();
    };
    let group = if r.gv.group.is_empty() {
        "core".to_owned()
    } else {
        lower_first(&group_camel(&r.gv.group))
    };
    format!("{group}_{}", r.gv.version)
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// `rbac.authorization.k8s.io` → `RbacAuthorization`, `""` → `Core` (upstream's operation ids).
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_owned();
    }
    let g = group.strip_suffix(".k8s.io").unwrap_or(group);
    g.split('.').map(upper_first).collect()
}

fn op_prefix(resources: &[&Resource]) -> String {
    resources
        .first()
        .map(|r| format!("{}{}", group_camel(&r.gv.group), upper_first(&r.gv.version)))
        .unwrap_or_default()
}

/// Context for one resource's path items.
struct Cx<'a> {
    r: &'a Resource,
    prefix: &'a str,
    tag: &'a str,
    kind_def: &'a str,
    strategic: bool,
}

impl Cx<'_> {
    fn collection_path(&self) -> String {
        if self.r.namespaced {
            format!("{}/namespaces/{{namespace}}/{}", self.prefix, self.r.plural)
        } else {
            format!("{}/{}", self.prefix, self.r.plural)
        }
    }

    fn item_path(&self) -> String {
        format!("{}/{{name}}", self.collection_path())
    }

    /// `AppsV1NamespacedDeployment`.
    fn op_name(&self) -> String {
        let ns = if self.r.namespaced { "Namespaced" } else { "" };
        format!(
            "{}{}{ns}{}",
            group_camel(&self.r.gv.group),
            upper_first(&self.r.gv.version),
            self.r.kind
        )
    }

    fn gvk(&self) -> Value {
        gvk(&self.r.gv.group, &self.r.gv.version, &self.r.kind)
    }

    fn op(
        &self,
        action: &str,
        op_id: String,
        gvk: Value,
        params: Vec<Value>,
        responses: Value,
    ) -> Value {
        json!({
            "operationId": op_id,
            "tags": [self.tag],
            "parameters": params,
            "responses": responses,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        })
    }

    fn path_params(&self, item: bool) -> Vec<Value> {
        let mut p = Vec::new();
        if item {
            p.push(path_param("name", "name of the object"));
        }
        if self.r.namespaced {
            p.push(path_param(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            ));
        }
        p.push(query(
            "pretty",
            "If 'true', the output is pretty printed.",
            "string",
        ));
        p
    }

    fn collection(
        &self,
        out: &mut Map<String, Value>,
        lookup: &KindLookup<'_>,
        roots: &mut Vec<String>,
    ) {
        let name = self.op_name();
        let mut item = Map::new();
        let list_def = lookup(
            &self.r.gv.group,
            &self.r.gv.version,
            &format!("{}List", self.r.kind),
        );
        if let Some(list_def) = &list_def {
            roots.push(list_def.clone());
            item.insert(
                "get".into(),
                self.op(
                    "list",
                    format!("list{name}"),
                    self.gvk(),
                    list_params(),
                    responses(&[("200", Some(list_def))]),
                ),
            );
        }
        let mut post = self.op(
            "post",
            format!("create{name}"),
            self.gvk(),
            write_params(false),
            responses(&[
                ("200", Some(self.kind_def)),
                ("201", Some(self.kind_def)),
                ("202", Some(self.kind_def)),
            ]),
        );
        post["requestBody"] = body(self.kind_def);
        if self.r.verbs != Verbs::ReadOnly {
            item.insert("post".into(), post);
        }
        if self.r.verbs.names().contains(&"deletecollection") {
            let ns = if self.r.namespaced { "Namespaced" } else { "" };
            let op_id = format!(
                "delete{}{}Collection{ns}{}",
                group_camel(&self.r.gv.group),
                upper_first(&self.r.gv.version),
                self.r.kind
            );
            let mut params = delete_params();
            params.extend(list_params());
            let mut del = self.op(
                "deletecollection",
                op_id,
                self.gvk(),
                params,
                responses(&[("200", Some(STATUS))]),
            );
            del["requestBody"] = body(DELETE_OPTIONS);
            item.insert("delete".into(), del);
        }
        item.insert("parameters".into(), Value::Array(self.path_params(false)));
        out.insert(self.collection_path(), Value::Object(item));

        // List kinds exist only for listable resources, so this skips reviews and bindings.
        if let (true, Some(list_def)) = (self.r.namespaced, &list_def) {
            let op_id = format!(
                "list{}{}{}ForAllNamespaces",
                group_camel(&self.r.gv.group),
                upper_first(&self.r.gv.version),
                self.r.kind
            );
            let mut params = list_params();
            params.push(query(
                "pretty",
                "If 'true', the output is pretty printed.",
                "string",
            ));
            out.insert(
                format!("{}/{}", self.prefix, self.r.plural),
                json!({ "get": self.op("list", op_id, self.gvk(), params, responses(&[("200", Some(list_def))])) }),
            );
        }
    }

    fn item(&self) -> Value {
        let name = self.op_name();
        let def = self.kind_def;
        let mut item = Map::new();
        item.insert(
            "get".into(),
            self.op(
                "get",
                format!("read{name}"),
                self.gvk(),
                vec![],
                responses(&[("200", Some(def))]),
            ),
        );
        if self.r.verbs.names().contains(&"update") {
            item.insert(
                "put".into(),
                self.put(format!("replace{name}"), self.gvk(), def),
            );
            item.insert(
                "patch".into(),
                self.patch(format!("patch{name}"), self.gvk(), def),
            );
            let mut del = self.op(
                "delete",
                format!("delete{name}"),
                self.gvk(),
                delete_params(),
                responses(&[("200", Some(STATUS)), ("202", Some(STATUS))]),
            );
            del["requestBody"] = body(DELETE_OPTIONS);
            item.insert("delete".into(), del);
        }
        item.insert("parameters".into(), Value::Array(self.path_params(true)));
        Value::Object(item)
    }

    fn put(&self, op_id: String, gvk: Value, def: &str) -> Value {
        let mut put = self.op(
            "put",
            op_id,
            gvk,
            write_params(false),
            responses(&[("200", Some(def)), ("201", Some(def))]),
        );
        put["requestBody"] = body(def);
        put
    }

    fn patch(&self, op_id: String, gvk: Value, def: &str) -> Value {
        let mut patch = self.op(
            "patch",
            op_id,
            gvk,
            write_params(true),
            responses(&[("200", Some(def)), ("201", Some(def))]),
        );
        let mut types = vec![
            "application/json-patch+json",
            "application/merge-patch+json",
        ];
        if self.strategic {
            types.push("application/strategic-merge-patch+json");
        }
        types.push("application/apply-patch+yaml");
        let content: Map<String, Value> = types
            .into_iter()
            .map(|t| (t.to_owned(), json!({ "schema": ref_to(PATCH) })))
            .collect();
        patch["requestBody"] = json!({ "content": content, "required": true });
        patch
    }

    fn subresource(
        &self,
        sub: &Subresource,
        lookup: &KindLookup<'_>,
        roots: &mut Vec<String>,
    ) -> Value {
        let op_name = format!("{}{}", self.op_name(), upper_first(sub.name));
        // The kind this subresource answers with; `None` for connect-style and log endpoints.
        let target = match sub.kind {
            _ if sub.name == "log" => None,
            None => Some((self.gvk(), self.kind_def.to_owned())),
            Some((g, v, k)) => lookup(g, v, k).map(|d| (gvk(g, v, k), d)),
        };
        if let Some((_, d)) = &target {
            roots.push(d.clone());
        }
        let mut item = Map::new();
        for verb in sub.verbs {
            let (method, op) = match (&target, *verb) {
                (Some((gvk, def)), "get") => (
                    "get",
                    self.op(
                        "get",
                        format!("read{op_name}"),
                        gvk.clone(),
                        vec![],
                        responses(&[("200", Some(def))]),
                    ),
                ),
                (Some((gvk, def)), "update") => (
                    "put",
                    self.put(format!("replace{op_name}"), gvk.clone(), def),
                ),
                (Some((gvk, def)), "patch") => (
                    "patch",
                    self.patch(format!("patch{op_name}"), gvk.clone(), def),
                ),
                (Some((gvk, def)), "create") => {
                    let mut post = self.op(
                        "post",
                        format!("create{op_name}"),
                        gvk.clone(),
                        write_params(false),
                        responses(&[("200", Some(def)), ("201", Some(def)), ("202", Some(def))]),
                    );
                    post["requestBody"] = body(def);
                    ("post", post)
                }
                (None, "get") if sub.name == "log" => {
                    let op = self.op(
                        "get",
                        format!("read{op_name}"),
                        self.gvk(),
                        log_params(),
                        string_response(),
                    );
                    ("get", op)
                }
                (None, v @ ("get" | "create")) => {
                    let method = if v == "get" { "get" } else { "post" };
                    let ns = if self.r.namespaced { "Namespaced" } else { "" };
                    let op_id = format!(
                        "connect{}{}{}{ns}{}{}",
                        group_camel(&self.r.gv.group),
                        upper_first(&self.r.gv.version),
                        upper_first(method),
                        self.r.kind,
                        upper_first(sub.name)
                    );
                    let mut op = self.op(
                        "connect",
                        op_id,
                        self.gvk(),
                        connect_params(sub.name),
                        string_response(),
                    );
                    if let Some(k) = sub.kind {
                        op["x-kubernetes-group-version-kind"] = gvk(k.0, k.1, k.2);
                    }
                    (method, op)
                }
                _ => continue,
            };
            item.insert(method.into(), op);
        }
        item.insert("parameters".into(), Value::Array(self.path_params(true)));
        Value::Object(item)
    }
}

fn media() -> [&'static str; 3] {
    [
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    ]
}

fn responses(codes: &[(&str, Option<&str>)]) -> Value {
    let mut out = Map::new();
    for (code, def) in codes {
        let description = match *code {
            "200" => "OK",
            "201" => "Created",
            "202" => "Accepted",
            _ => "",
        };
        let mut resp = json!({ "description": description });
        if let Some(def) = def {
            let content: Map<String, Value> = media()
                .iter()
                .map(|m| ((*m).to_owned(), json!({ "schema": ref_to(def) })))
                .collect();
            resp["content"] = Value::Object(content);
        }
        out.insert((*code).to_owned(), resp);
    }
    out.insert("401".into(), json!({ "description": "Unauthorized" }));
    Value::Object(out)
}

fn string_response() -> Value {
    json!({
        "200": { "description": "OK", "content": { "*/*": { "schema": { "type": "string" } } } },
        "401": { "description": "Unauthorized" },
    })
}

fn body(def: &str) -> Value {
    json!({ "content": { "*/*": { "schema": ref_to(def) } }, "required": true })
}
