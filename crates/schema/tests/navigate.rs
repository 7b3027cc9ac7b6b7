//! Walking kinds' schemas: strategic-merge-patch navigation and field validation.

use drover_core::patch::MergeSchema;
use drover_schema::{SchemaNode, type_errors, unknown_fields};
use serde_json::{Map, json};

fn deployment() -> SchemaNode<'static> {
    SchemaNode::for_kind("apps", "v1", "Deployment").expect("Deployment")
}

#[test]
fn deployment_containers_merge_on_name() {
    let containers = ["spec", "template", "spec", "containers"]
        .iter()
        .try_fold(deployment(), |n, f| MergeSchema::field(&n, f))
        .expect("spec.template.spec.containers");
    let s = containers.strategy();
    assert!(s.merge && !s.retain_keys);
    assert_eq!(s.merge_key.as_deref(), Some("name"));
    assert_eq!(containers.list_type(), Some("map"));
    let ports = MergeSchema::items(&containers)
        .and_then(|c| MergeSchema::field(&c, "ports"))
        .expect("ports");
    assert_eq!(ports.strategy().merge_key.as_deref(), Some("containerPort"));
    assert!(ports.description().is_some());
}

#[test]
fn volumes_retain_keys_and_deployment_strategy_retains_keys() {
    let pod = SchemaNode::for_kind("", "v1", "Pod").unwrap();
    let volumes = pod.field("spec").and_then(|s| s.field("volumes")).unwrap();
    let s = volumes.strategy();
    assert!(s.merge && s.retain_keys && s.merge_key.as_deref() == Some("name"));
    let strategy = deployment()
        .field("spec")
        .and_then(|s| s.field("strategy"))
        .unwrap();
    let s = strategy.strategy();
    assert!(!s.merge && s.retain_keys);
    let owners = pod
        .field("metadata")
        .and_then(|m| m.field("ownerReferences"))
        .unwrap();
    assert_eq!(owners.strategy().merge_key.as_deref(), Some("uid"));
}

#[test]
fn maps_expose_their_value_schema_and_atomic_lists_do_not_merge() {
    let labels = deployment()
        .field("metadata")
        .and_then(|m| m.field("labels"))
        .unwrap();
    assert_eq!(labels.items().unwrap().schema()["type"], "string");
    let role = SchemaNode::for_kind("rbac.authorization.k8s.io", "v1", "Role").unwrap();
    let rules = role.field("rules").unwrap();
    assert!(!rules.strategy().merge);
    assert_eq!(rules.list_type(), Some("atomic"));
}

#[test]
fn unknown_fields_reports_upstream_paths() {
    let obj = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "bogus": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}, {"name": "d", "imagee": "x"}]}
            }
        }
    });
    assert_eq!(
        unknown_fields(deployment(), &obj),
        vec![
            "metadata.bogus".to_owned(),
            "spec.template.spec.containers[1].imagee".to_owned()
        ]
    );
}

#[test]
fn unknown_fields_ignores_free_form_and_preserved_subtrees() {
    let rev = SchemaNode::for_kind("apps", "v1", "ControllerRevision").unwrap();
    let obj = json!({"revision": 1, "data": {"anything": {"goes": true}}});
    assert!(unknown_fields(rev, &obj).is_empty());

    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "string"}}},
            "blob": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                     "properties": {"known": {"type": "object", "properties": {}}}}
        }
    });
    let defs = Map::new();
    let node = SchemaNode::new(&schema, &defs);
    let obj = json!({"spec": {"a": "x", "b": 1}, "blob": {"free": 1, "known": {}}});
    assert_eq!(unknown_fields(node, &obj), vec!["spec.b".to_owned()]);
}

#[test]
fn type_errors_read_like_go_decode_errors() {
    let obj = json!({
        "spec": {
            "replicas": "three",
            "template": {"spec": {"containers": [{"name": "c", "image": 5, "ports": [{"containerPort": 80}]}]}}
        }
    });
    let errs = type_errors(deployment(), &obj);
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        vec![
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
            "json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.image of type string",
        ]
    );
    assert_eq!(errs[1].path, "spec.template.spec.containers[0].image");
    let bad = json!({"spec": {"template": {"spec": {"containers": "nope"}}}});
    let errs = type_errors(deployment(), &bad);
    assert_eq!(errs[0].expected, "[]v1.Container");
    assert!(
        type_errors(
            deployment(),
            &json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%"}}}})
        )
        .is_empty()
    );
}
