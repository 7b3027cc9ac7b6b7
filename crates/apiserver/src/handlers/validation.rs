//! Validation of built-in kinds (names, labels, required and immutable fields, size limits),
//! with upstream-shaped causes.

use drover_core::registry::Resource;
use serde_json::{Value, json};

use crate::meta::{self, meta_str};
use crate::status::Cause;

/// Validation of a new or updated object; `Err` carries upstream-shaped causes.
pub(crate) fn validate(res: &Resource, obj: &Value, old: Option<&Value>) -> Result<(), Vec<Cause>> {
    let mut causes = Vec::new();
    let name = meta_str(obj, "name").unwrap_or("");
    let name_check = match (res.gv.group.as_ref(), res.kind.as_ref()) {
        ("", "Namespace" | "Service") => meta::check_dns_label(name),
        ("rbac.authorization.k8s.io", _) | ("", "ServiceAccount") | ("", "Node") => {
            meta::check_path_segment(name)
        }
        _ => meta::check_dns_subdomain(name),
    };
    if let Some(why) = name_check {
        causes.push(Cause::invalid(
            "metadata.name",
            &Value::String(name.to_owned()),
            &why,
        ));
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            for e in drover_core::selector::validation::qualified_name_errors(k) {
                causes.push(Cause::invalid(
                    "metadata.labels",
                    &Value::String(k.clone()),
                    &e,
                ));
            }
            match v.as_str() {
                Some(s) => {
                    for e in drover_core::selector::validation::label_value_errors(s) {
                        causes.push(Cause::invalid("metadata.labels", v, &e));
                    }
                }
                None => causes.push(Cause::invalid(
                    "metadata.labels",
                    v,
                    "label values must be strings",
                )),
            }
        }
    }
    validate_kind(res, obj, old, &mut causes);
    for c in missing_required(res, obj) {
        if !causes.iter().any(|x| x.field == c.field) {
            causes.push(c);
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

const DATA_LIMIT: usize = 1_048_576;

fn validate_kind(res: &Resource, obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    match (res.gv.group.as_ref(), res.kind.as_ref()) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            crate::crd::validate(obj, old, causes)
        }
        ("", "ConfigMap" | "Secret") => {
            let mut total = 0usize;
            for field in ["data", "binaryData", "stringData"] {
                if let Some(m) = obj.get(field).and_then(Value::as_object) {
                    for (k, v) in m {
                        total += k.len();
                        total += match v {
                            Value::String(s) if field == "data" && res.kind == "Secret" => {
                                s.len() * 3 / 4
                            }
                            Value::String(s) => s.len(),
                            other => other.to_string().len(),
                        };
                    }
                }
            }
            if total > DATA_LIMIT {
                causes.push(Cause::new(
                    "FieldValueTooLong",
                    "data",
                    format!("Too long: may not be more than {DATA_LIMIT} bytes"),
                ));
            }
        }
        ("", "Pod") => {
            let containers = obj.pointer("/spec/containers").and_then(Value::as_array);
            match containers {
                None => causes.push(Cause::required("spec.containers")),
                Some(cs) if cs.is_empty() => causes.push(Cause::required("spec.containers")),
                Some(cs) => validate_containers(cs, "spec.containers", causes),
            }
            if let Some(old) = old {
                let strip = |v: &Value| {
                    let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
                    for f in ["activeDeadlineSeconds", "tolerations", "nodeName"] {
                        if let Some(m) = s.as_object_mut() {
                            m.remove(f);
                        }
                    }
                    if let Some(cs) = s.get_mut("containers").and_then(Value::as_array_mut) {
                        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                            c.remove("image");
                        }
                    }
                    s
                };
                if strip(obj) != strip(old) {
                    causes.push(Cause::new(
                        "FieldValueForbidden",
                        "spec",
                        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                    ));
                }
            }
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            let selector = obj.pointer("/spec/selector");
            match selector {
                None => causes.push(Cause::required("spec.selector")),
                Some(sel) => {
                    let labels = obj
                        .pointer("/spec/template/metadata/labels")
                        .cloned()
                        .unwrap_or(json!({}));
                    match drover_core::selector::Selector::from_label_selector(sel) {
                        Ok(s) if s.is_empty() => causes.push(Cause::invalid(
                            "spec.selector",
                            sel,
                            "empty selector is invalid for deployment",
                        )),
                        Ok(s) if !s.matches(&labels) => causes.push(Cause::invalid(
                            "spec.template.metadata.labels",
                            &labels,
                            "`selector` does not match template `labels`",
                        )),
                        Ok(_) => {}
                        Err(e) => causes.push(Cause::invalid("spec.selector", sel, &e.to_string())),
                    }
                    if let Some(old_sel) = old.and_then(|o| o.pointer("/spec/selector"))
                        && old_sel != sel
                    {
                        causes.push(Cause::invalid("spec.selector", sel, "field is immutable"));
                    }
                }
            }
            match obj
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
            {
                Some(cs) if !cs.is_empty() => {
                    validate_containers(cs, "spec.template.spec.containers", causes)
                }
                _ => causes.push(Cause::required("spec.template.spec.containers")),
            }
            if let Some(r) = obj.pointer("/spec/replicas").and_then(Value::as_i64)
                && r < 0
            {
                causes.push(Cause::invalid(
                    "spec.replicas",
                    &json!(r),
                    "must be greater than or equal to 0",
                ));
            }
        }
        ("", "Service") => {
            let ty = obj
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            if !matches!(
                ty,
                "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
            ) {
                causes.push(Cause::new(
                    "FieldValueNotSupported",
                    "spec.type",
                    format!("Unsupported value: {ty:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""),
                ));
            }
            if let Some(old) = old {
                let old_ip = old.pointer("/spec/clusterIP");
                let new_ip = obj.pointer("/spec/clusterIP");
                if old_ip.is_some() && new_ip.is_some() && old_ip != new_ip && ty != "ExternalName"
                {
                    causes.push(Cause::invalid(
                        "spec.clusterIPs[0]",
                        new_ip.unwrap_or(&Value::Null),
                        "may not change once set",
                    ));
                }
            }
        }
        _ => {}
    }
}

fn validate_containers(cs: &[Value], path: &str, causes: &mut Vec<Cause>) {
    let mut names = std::collections::HashSet::new();
    for (i, c) in cs.iter().enumerate() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            causes.push(Cause::required(format!("{path}[{i}].name")));
        } else if let Some(why) = meta::check_dns_label(name) {
            causes.push(Cause::invalid(
                format!("{path}[{i}].name"),
                &json!(name),
                &why,
            ));
        } else if !names.insert(name.to_owned()) {
            causes.push(Cause::new(
                "FieldValueDuplicate",
                format!("{path}[{i}].name"),
                format!("Duplicate value: {name:?}"),
            ));
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(Cause::required(format!("{path}[{i}].image")));
        }
    }
}

/// Fields the kind's schema marks required that `obj` lacks (`spec.template.spec.containers`,
/// `spec.ports[0].port`, …), as upstream's validation reports them. `metadata` and `status`
/// are not checked: metadata has its own rules, and status belongs to controllers.
pub(crate) fn missing_required(res: &Resource, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if res.custom.is_some() {
        return causes;
    }
    let Some(node) = drover_schema::SchemaNode::for_kind(&res.gv.group, &res.gv.version, &res.kind)
    else {
        return causes;
    };
    let Some(m) = obj.as_object() else {
        return causes;
    };
    for (k, v) in m {
        if matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind") {
            continue;
        }
        if let Some(child) = node.field(k) {
            walk_required(child, v, k.clone(), &mut causes);
        }
    }
    if let Some(req) = node.schema().get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if !matches!(r, "metadata" | "status" | "apiVersion" | "kind") && !m.contains_key(r) {
                causes.push(Cause::required(r));
            }
        }
    }
    causes
}

fn walk_required(
    node: drover_schema::SchemaNode<'_>,
    v: &Value,
    path: String,
    causes: &mut Vec<Cause>,
) {
    match v {
        Value::Object(m) => {
            let schema = node.schema();
            if schema.get("properties").is_some_and(Value::is_object) {
                for r in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if m.get(r).is_none_or(Value::is_null) {
                        causes.push(Cause::required(format!("{path}.{r}")));
                    }
                }
                for (k, child) in m {
                    if let Some(cn) = node.field(k) {
                        walk_required(cn, child, format!("{path}.{k}"), causes);
                    }
                }
            } else if let Some(values) = node
                .items()
                .filter(|_| schema.get("additionalProperties").is_some())
            {
                for (k, child) in m {
                    walk_required(values, child, format!("{path}.{k}"), causes);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.items() {
                for (i, child) in items.iter().enumerate() {
                    walk_required(item, child, format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}
