//! JSON merge patch (RFC 7386), with the RFC's appendix examples.

use drover_core::patch::merge_patch;
use serde_json::{Value, json};

fn apply(target: Value, patch: Value) -> Value {
    let mut doc = target;
    merge_patch(&mut doc, &patch);
    doc
}

#[test]
fn merge_patch_follows_the_rfc_7386_examples() {
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), json!(null), json!(null)),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
    ];
    for (target, patch, want) in cases {
        assert_eq!(
            apply(target.clone(), patch.clone()),
            want,
            "{target} + {patch}"
        );
    }
}

#[test]
fn merge_patch_keeps_key_order_and_appends_new_keys() {
    let out = apply(
        json!({"c": 1, "b": 2, "a": 3}),
        json!({"b": null, "d": 4, "c": 5}),
    );
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["c", "a", "d"]);
}

#[test]
fn merge_patch_drops_nulls_inside_new_lists_of_objects_like_upstream() {
    // evanphx/json-patch (what the API server runs) prunes nulls from objects a patch
    // introduces, also inside lists; null list elements themselves stay.
    let out = apply(
        json!({"spec": {}}),
        json!({"spec": {"containers": [{"name": "a", "image": null}, null]}}),
    );
    assert_eq!(out, json!({"spec": {"containers": [{"name": "a"}, null]}}));
}

#[test]
fn merge_patch_edits_labels_the_way_kubectl_patch_type_merge_does() {
    let out = apply(
        json!({"metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}}}),
        json!({"metadata": {"labels": {"tier": null, "env": "prod"}}}),
    );
    assert_eq!(
        out,
        json!({"metadata": {"name": "web", "labels": {"app": "web", "env": "prod"}}})
    );
}

/// Found in the fuzzing campaign (the merge_patch fuzz binary took 14 s on it): each deleted
/// key was removed on its own, shifting every later key to keep the order, so deleting
/// 20 000 of 20 000 labels cost 20 000² moves. Deletions now go in one pass; the remaining
/// keys keep their order and new keys still go last.
#[test]
fn deleting_many_keys_is_one_pass_and_keeps_the_order() {
    let n = 20_000;
    let mut target = json!({});
    let mut patch = json!({});
    for i in 0..n {
        target[format!("k{i}")] = json!(i);
        if i % 2 == 0 {
            patch[format!("k{i}")] = Value::Null;
        }
    }
    patch["new"] = json!(1);
    merge_patch(&mut target, &patch);
    let keys: Vec<&String> = target.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), n / 2 + 1);
    assert_eq!(keys[0], "k1");
    assert_eq!(keys[1], "k3");
    assert_eq!(keys[n / 2], "new");
}
