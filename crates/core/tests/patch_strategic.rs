//! Strategic merge patch, against upstream `strategicpatch` behaviour and the Kubernetes
//! documentation's examples (`kubectl patch`, `kubectl apply`).

#[path = "../fuzz/src/schema.rs"]
mod schema;

use drover_core::patch::{NoSchema, PatchError, strategic_merge};
use schema::TestSchema;
use serde_json::{Value, json};

fn apply(original: Value, patch: Value) -> Value {
    strategic_merge(&original, &patch, Some(&schema::workload()))
        .unwrap_or_else(|e| panic!("{patch}: {e}"))
}

fn apply_err(original: Value, patch: Value) -> PatchError {
    strategic_merge(&original, &patch, Some(&schema::workload())).expect_err("patch should fail")
}

/// A schema like upstream's test `MergeItem`: `mergingList` merges by `name`,
/// `mergingIntList` is a merging primitive list, `nonMergingList` is replaced.
fn merge_item() -> TestSchema {
    fn item(depth: u8) -> TestSchema {
        let s = TestSchema::scalar;
        let mut fields = vec![
            ("name", s()),
            ("value", s()),
            ("other", s()),
            ("mergingIntList", TestSchema::list(s()).merge()),
            ("nonMergingIntList", TestSchema::list(s())),
            ("simpleMap", TestSchema::map(s())),
        ];
        if depth > 0 {
            fields.push((
                "mergingList",
                TestSchema::list(item(depth - 1)).merge_by("name"),
            ));
            fields.push(("nonMergingList", TestSchema::list(item(depth - 1))));
        }
        TestSchema::object(fields)
    }
    item(2)
}

fn apply_item(original: Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge(&original, &patch, Some(&merge_item()))
}

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "patch-demo"},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"spec": {"containers": containers}}
        }
    })
}

#[test]
fn containers_merge_by_name_and_a_new_one_comes_first_as_in_the_kubectl_patch_docs() {
    let original = deployment(json!([{"name": "patch-demo-ctr", "image": "nginx"}]));
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}});
    let out = apply(original, patch);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "patch-demo-ctr-2", "image": "redis"}, {"name": "patch-demo-ctr", "image": "nginx"}])
    );
}

#[test]
fn a_matching_container_is_merged_field_by_field() {
    let original = deployment(json!([
        {"name": "web", "image": "nginx:1.25", "args": ["-a"], "env": [{"name": "A", "value": "1"}]},
        {"name": "sidecar", "image": "envoy"}
    ]));
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.26", "args": ["-b"], "env": [{"name": "B", "value": "2"}]}
    ]}}}});
    let out = apply(original, patch);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([
            {"name": "web", "image": "nginx:1.26", "args": ["-b"], "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "envoy"}
        ])
    );
}

#[test]
fn tolerations_have_no_patch_strategy_so_the_list_is_replaced() {
    let original = json!({"spec": {"tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}]}});
    let patch = json!({"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}});
    let out = apply(original, patch);
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}])
    );
}

#[test]
fn retain_keys_on_deployment_strategy_clears_rolling_update() {
    let original = deployment(json!([]));
    let out = apply(
        original.clone(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // Without the directive the old rollingUpdate survives (the docs' failing example).
    let out = apply(
        original,
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(
        out["spec"]["strategy"],
        json!({"type": "Recreate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
}

#[test]
fn retain_keys_rejects_a_patch_field_it_does_not_list() {
    let err = apply_err(
        deployment(json!([])),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}),
    );
    assert_eq!(
        err.to_string(),
        "strategic merge patch: .spec.strategy: field \"rollingUpdate\" is set but not listed in $retainKeys"
    );
}

#[test]
fn set_element_order_as_kubectl_apply_sends_it_updates_the_image() {
    let original = deployment(json!([
        {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}
    ]));
    let patch = json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"image":"nginx:1.26","name":"web"}]}}}});
    let out = apply(original, patch);
    assert_eq!(
        out["spec"]["template"]["spec"],
        json!({"containers": [{"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]}]})
    );
}

#[test]
fn set_element_order_reorders_and_slots_server_only_elements_in_by_original_position() {
    let original = deployment(json!([{"name": "a"}, {"name": "injected"}, {"name": "b"}]));
    let patch = json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}}});
    let out = apply(original, patch);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        // "injected" was before "b" in the original, so it stays before it.
        json!([{"name": "injected"}, {"name": "b"}, {"name": "a"}])
    );
}

#[test]
fn set_element_order_may_list_elements_that_do_not_exist() {
    // Upstream: "$setElementOrder contains item that is not present in the list to be merged".
    let out = apply_item(
        json!({"mergingList": [{"name": "1"}, {"name": "3"}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
            "mergingList": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]
        }),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"mergingList": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]})
    );
    let out = apply_item(
        json!({"mergingIntList": [1, 3]}),
        json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
    )
    .unwrap();
    assert_eq!(out, json!({"mergingIntList": [3, 1]}));
}

#[test]
fn set_element_order_must_agree_with_the_patch_list() {
    let err = apply_item(
        json!({"mergingList": [{"name": "1"}, {"name": "3"}, {"name": "2"}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
            "mergingList": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]
        }),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::SetElementOrderMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("doesn't match"));
}

#[test]
fn primitive_merge_lists_are_unions_ordered_as_upstream() {
    let cases = [
        // Upstream "unique scalars when merging lists".
        (json!([1, 2]), json!([2, 3]), json!([1, 2, 3])),
        // "preserve the order from the patch in a merging int list".
        (json!([1, 2, 3]), json!([3, 1, 2]), json!([3, 1, 2])),
        (json!([1, 2, 3]), json!([3, 1]), json!([2, 3, 1])),
        // A value the original lacks goes before the original values the patch skips.
        (json!([1, 2]), json!([3]), json!([3, 1, 2])),
        (json!([]), json!([1, 1]), json!([1])),
    ];
    for (original, patch, want) in cases {
        let out = apply_item(
            json!({"mergingIntList": original}),
            json!({"mergingIntList": patch}),
        )
        .unwrap();
        assert_eq!(out["mergingIntList"], want, "{original} + {patch}");
    }
}

#[test]
fn finalizers_merge_and_delete_from_primitive_list() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let out = apply(
        original.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
    // What kubectl apply sends when the list goes from [a, b, c] to [a, c, d].
    let out = apply(
        original,
        json!({"metadata": {
            "$setElementOrder/finalizers": ["a", "c", "d"],
            "$deleteFromPrimitiveList/finalizers": ["b"],
            "finalizers": ["d"]
        }}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c", "d"]));
    // Deleting from a list that does not exist is a no-op.
    let out = apply(
        json!({"metadata": {}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
    );
    assert_eq!(out, json!({"metadata": {}}));
}

#[test]
fn patch_delete_in_a_list_removes_every_element_with_the_key() {
    // Upstream "delete all duplicate entries in a merging list".
    let out = apply_item(
        json!({"mergingList": [{"name": "1"}, {"name": "1"}, {"name": "2", "value": "a"}, {"name": "3"}, {"name": "3"}]}),
        json!({"mergingList": [{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}]}),
    )
    .unwrap();
    assert_eq!(out, json!({"mergingList": [{"name": "2", "value": "a"}]}));
}

#[test]
fn patch_replace_in_a_list_replaces_the_whole_list() {
    let out = apply_item(
        json!({"mergingList": [{"name": "1"}, {"name": "2"}]}),
        json!({"mergingList": [{"$patch": "replace"}]}),
    )
    .unwrap();
    assert_eq!(out, json!({"mergingList": []}));
    let out = apply(
        deployment(json!([{"name": "a"}, {"name": "b"}])),
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "x"}]}}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "c", "image": "x"}])
    );
}

#[test]
fn patch_directives_in_maps_replace_or_empty_the_map() {
    // Upstream "delete map from nested map", "delete all keys from map",
    // "add key and delete all keys from map".
    let original = json!({"name": "1", "value": "1", "simpleMap": {"key1": "1", "key2": "1"}});
    let out = apply_item(original.clone(), json!({"simpleMap": {"$patch": "delete"}})).unwrap();
    assert_eq!(out, json!({"name": "1", "value": "1", "simpleMap": {}}));
    assert_eq!(
        apply_item(original.clone(), json!({"$patch": "replace"})).unwrap(),
        json!({})
    );
    assert_eq!(
        apply_item(original, json!({"other": "a", "$patch": "replace"})).unwrap(),
        json!({"other": "a"})
    );
}

#[test]
fn a_field_with_the_replace_strategy_takes_the_patch_object_whole() {
    // Upstream's mergeMapHandler: a map field whose patchStrategy is `replace` (as
    // policy/v1 PodDisruptionBudgetSpec.selector declares) is replaced by the patch map, not
    // merged into; a field without it merges.
    let s = TestSchema::scalar;
    let selector = || {
        TestSchema::object([
            ("matchLabels", TestSchema::map(s())),
            ("matchExpressions", TestSchema::list(s())),
        ])
    };
    let schema = TestSchema::object([("selector", selector().replace()), ("other", selector())]);
    let original = json!({
        "selector": {"matchLabels": {"app": "web", "tier": "front"}},
        "other": {"matchLabels": {"app": "web", "tier": "front"}}
    });
    let patch = json!({
        "selector": {"matchLabels": {"app": "api"}},
        "other": {"matchLabels": {"app": "api"}}
    });
    let out = strategic_merge(&original, &patch, Some(&schema)).unwrap();
    assert_eq!(out["selector"], json!({"matchLabels": {"app": "api"}}));
    assert_eq!(
        out["other"],
        json!({"matchLabels": {"app": "api", "tier": "front"}})
    );
    // Replacing drops the original's other members too, and null still deletes the field.
    let original =
        json!({"selector": {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "k"}]}});
    let out = strategic_merge(
        &original,
        &json!({"selector": {"matchExpressions": [{"key": "j"}]}}),
        Some(&schema),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"selector": {"matchExpressions": [{"key": "j"}]}})
    );
    let out = strategic_merge(&original, &json!({"selector": null}), Some(&schema)).unwrap();
    assert_eq!(out, json!({}));
}

#[test]
fn preserve_the_patch_order_in_a_merging_list() {
    let original =
        json!({"mergingList": [{"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}]});
    let out = apply_item(
        original.clone(),
        json!({"mergingList": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}, {"name": "2", "other": "x"}]}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"mergingList": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}, {"name": "2", "value": "b", "other": "x"}]})
    );
    let out = apply_item(
        original,
        json!({"mergingList": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}]}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"mergingList": [{"name": "2", "value": "b"}, {"name": "3", "value": "c"}, {"name": "1", "value": "a"}]})
    );
}

#[test]
fn null_deletes_and_unknown_fields_merge_like_a_merge_patch() {
    let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"custom": {"list": [1, 2], "keep": true}}});
    let out = apply(
        original,
        json!({"metadata": {"labels": {"a": null}}, "spec": {"custom": {"list": [3]}}}),
    );
    assert_eq!(
        out,
        json!({"metadata": {"labels": {"b": "2"}}, "spec": {"custom": {"list": [3], "keep": true}}})
    );
}

#[test]
fn without_a_schema_lists_are_replaced() {
    let original = json!({"spec": {"containers": [{"name": "a"}], "replicas": 1}});
    let patch = json!({"spec": {"containers": [{"name": "b"}]}});
    let out = strategic_merge(&original, &patch, None::<&NoSchema>).unwrap();
    assert_eq!(
        out,
        json!({"spec": {"containers": [{"name": "b"}], "replicas": 1}})
    );
}

#[test]
fn values_new_to_the_original_are_stored_without_nulls_or_directives() {
    let out = apply(
        json!({"metadata": {"name": "x"}}),
        json!({"spec": {
            "containers": [{"name": "a", "image": null}, {"name": "gone", "$patch": "delete"}],
            "$setElementOrder/containers": [{"name": "a"}],
            "nodeSelector": {"$patch": "replace", "disk": "ssd"}
        }}),
    );
    assert_eq!(
        out,
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "a"}]}})
    );
}

#[test]
fn malformed_patches_fail_with_the_location() {
    let original = deployment(json!([{"name": "web"}]));
    let cases = [
        (
            json!({"$foo": 1}),
            "strategic merge patch: .: unknown directive \"$foo\"",
        ),
        (
            json!({"metadata": {"$patch": "bogus"}}),
            "strategic merge patch: .metadata: unknown patch type \"bogus\" (use \"replace\" or \"delete\")",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            "strategic merge patch: .spec.template.spec.containers[0]: element {\"image\":\"x\"} does not contain declared merge key \"name\"",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}}),
            "strategic merge patch: .spec.template.spec.containers[0]: merging lists cannot yet be specified in the patch",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": ["web"]}}}}),
            "strategic merge patch: .spec.template.spec.containers: list element types are not identical: an object and a string",
        ),
        (
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            "strategic merge patch: .spec.strategy: invalid $retainKeys: must be a list of field names, not a string",
        ),
        (
            json!({"metadata": {"$setElementOrderX": []}}),
            "strategic merge patch: .metadata: invalid $setElementOrderX: expected \"$setElementOrder/<field>\"",
        ),
        (
            json!([1]),
            "strategic merge patch: the patch must be a JSON object, not a list",
        ),
    ];
    for (patch, want) in cases {
        assert_eq!(
            apply_err(original.clone(), patch.clone()).to_string(),
            want,
            "{patch}"
        );
    }
}

/// Found in the fuzzing campaign (reading the merge code for quadratic work; the strategic_merge
/// fuzz binary timed out on it): merging lists compared every patch element with every original one,
/// so 20 000 finalizers patched with 20 000 others (a 340 KB body) took over a minute of
/// CPU. Membership now goes through hashed sets and maps; the results are unchanged.
#[test]
fn long_lists_merge_in_linear_time_with_the_same_result() {
    let n = 10_000;
    let names =
        |prefix: &str| -> Vec<Value> { (0..n).map(|i| json!(format!("{prefix}{i}"))).collect() };
    let containers = |prefix: &str| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"name": format!("{prefix}{i}"), "image": "x"}))
            .collect()
    };
    let original = json!({
        "metadata": {"finalizers": names("a")},
        "spec": {"containers": containers("a")},
    });
    let mut patch_finalizers = names("b");
    patch_finalizers.push(json!("a7"));
    let mut patch_containers = containers("b");
    patch_containers.push(json!({"name": "a7", "image": "y"}));
    patch_containers.push(json!({"name": "a8", "$patch": "delete"}));
    let merged = apply(
        original,
        json!({
            "metadata": {"finalizers": patch_finalizers, "$deleteFromPrimitiveList/finalizers": ["a9"]},
            "spec": {"containers": patch_containers},
        }),
    );
    let finalizers = merged["metadata"]["finalizers"].as_array().expect("list");
    assert_eq!(finalizers.len(), 2 * n - 1);
    assert!(!finalizers.contains(&json!("a9")));
    let containers = merged["spec"]["containers"].as_array().expect("list");
    assert_eq!(containers.len(), 2 * n - 1);
    let a7 = containers.iter().find(|c| c["name"] == "a7").expect("a7");
    assert_eq!(a7["image"], "y");
    assert!(!containers.iter().any(|c| c["name"] == "a8"));
}

/// Members equal by `==` are one set member: 0.0 and -0.0 included.
#[test]
fn primitive_set_members_compare_as_values() {
    let merged = apply(
        json!({"metadata": {"finalizers": [0.0, 1]}}),
        json!({"metadata": {"finalizers": [-0.0, 2]}}),
    );
    let finalizers = merged["metadata"]["finalizers"].as_array().expect("list");
    assert_eq!(finalizers.len(), 3, "{finalizers:?}");
    assert!(finalizers.contains(&json!(1)) && finalizers.contains(&json!(2)));
}

/// The same for strategic merge: deleted fields go in one pass, and a
/// `$deleteFromPrimitiveList` of a field the patch also deletes sees it gone.
#[test]
fn deleted_fields_go_in_one_pass() {
    let mut labels = serde_json::Map::new();
    let mut deletes = serde_json::Map::new();
    for i in 0..20_000 {
        labels.insert(format!("k{i}"), json!("v"));
        if i % 2 == 0 {
            deletes.insert(format!("k{i}"), Value::Null);
        }
    }
    let merged = apply(
        json!({"metadata": {"labels": labels, "finalizers": ["a"], "name": "x"}}),
        json!({"metadata": {"labels": deletes, "finalizers": null,
                            "$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    let labels = merged["metadata"]["labels"].as_object().expect("labels");
    assert_eq!(labels.len(), 10_000);
    assert_eq!(labels.keys().next().map(String::as_str), Some("k1"));
    assert_eq!(merged["metadata"], json!({"labels": labels, "name": "x"}));
}
