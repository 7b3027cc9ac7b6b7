//! Behaviour of the public API on the objects real clients send: kubectl, helm, client-go.

use drover_codec::{
    Error, decode, decode_watch_frame, encode, encode_watch_frame, message_for, next_watch_frame,
};
use serde_json::{Value, json};

fn round_trip(obj: &Value) -> Value {
    let bytes = encode(obj).unwrap_or_else(|e| panic!("encode: {e}"));
    decode(&bytes).unwrap_or_else(|e| panic!("decode: {e}"))
}

#[test]
fn message_for_maps_group_versions_kinds_and_meta_kinds() {
    assert_eq!(
        message_for("apps/v1", "Deployment"),
        Some("k8s.io.api.apps.v1.Deployment")
    );
    assert_eq!(
        message_for("v1", "PodList"),
        Some("k8s.io.api.core.v1.PodList")
    );
    assert_eq!(
        message_for("v1", "Status"),
        Some("k8s.io.apimachinery.pkg.apis.meta.v1.Status")
    );
    assert_eq!(
        message_for("apps/v1", "DeleteOptions"),
        Some("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
    );
    assert_eq!(
        message_for("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        Some("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition")
    );
    assert_eq!(
        message_for("apiregistration.k8s.io/v1", "APIService"),
        Some("k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.APIService")
    );
    assert_eq!(
        message_for("metrics.k8s.io/v1beta1", "NodeMetrics"),
        Some("k8s.io.metrics.pkg.apis.metrics.v1beta1.NodeMetrics")
    );
    assert_eq!(message_for("example.com/v1", "Foo"), None);
    assert_eq!(
        message_for("v1", "Time"),
        None,
        "special wire types are not kinds"
    );
}

#[test]
fn helm_release_secret_keeps_binary_data_and_labels() {
    let secret = json!({
        "kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "sh.helm.release.v1.web.v1", "namespace": "default",
                     "labels": {"owner": "helm", "name": "web", "version": "1"}},
        "type": "helm.sh/release.v1",
        "data": {"release": "H4sIAAAAAAAA/wD/AP8AAQID"},
    });
    assert_eq!(round_trip(&secret), secret);
}

#[test]
fn delete_options_and_status_use_meta_v1_messages() {
    let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                      "gracePeriodSeconds": 0, "preconditions": {"resourceVersion": "5"}, "dryRun": ["All"]});
    assert_eq!(round_trip(&opts), opts);
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "pods \"x\" not found", "reason": "NotFound",
                        "details": {"name": "x", "kind": "pods"}, "code": 404});
    assert_eq!(round_trip(&status), status);
}

#[test]
fn well_known_types_take_their_json_forms() {
    let dep = json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "creationTimestamp": "2024-02-29T23:59:59Z"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "web", "image": "nginx",
                                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5}}],
                "volumes": [{"name": "cfg", "configMap": {"name": "web", "defaultMode": 420}}],
                "securityContext": {"supplementalGroups": [1, -2]},
            }},
        },
    });
    assert_eq!(round_trip(&dep), dep);
}

#[test]
fn micro_time_keeps_microseconds_and_time_drops_fractions_like_go() {
    let lease = json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": {"name": "l"},
                       "spec": {"renewTime": "2024-01-01T00:00:00.123456Z", "leaseDurationSeconds": 15}});
    assert_eq!(round_trip(&lease), lease);
    let cm = json!({"kind": "ConfigMap", "apiVersion": "v1",
                    "metadata": {"name": "c", "creationTimestamp": "2024-01-01T01:00:00.9+01:00"}});
    let back = round_trip(&cm);
    assert_eq!(
        back["metadata"]["creationTimestamp"],
        "2024-01-01T00:00:00Z"
    );
}

#[test]
fn quantities_given_as_numbers_become_strings() {
    let quota = json!({"kind": "ResourceQuota", "apiVersion": "v1", "spec": {"hard": {"pods": 10, "cpu": 1.5}}});
    assert_eq!(
        round_trip(&quota)["spec"]["hard"],
        json!({"cpu": "1.5", "pods": "10"})
    );
}

#[test]
fn crd_schemas_keep_unions_extensions_and_embedded_json() {
    let crd = json!({
        "kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1",
        "metadata": {"name": "foos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "foos", "singular": "foo", "kind": "Foo", "shortNames": ["fo"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": true,
                                   "required": ["spec"],
                                   "properties": {
                                       "spec": {"type": "object", "additionalProperties": {"type": "string"},
                                                "default": {"a": [1, "two", null]}},
                                       "open": {"type": "object", "additionalProperties": false},
                                       "list": {"type": "array", "items": {"type": "integer", "enum": [1, 2], "maximum": 9.5}},
                                       "tuple": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                                       "ref": {"$ref": "#/definitions/x", "x-kubernetes-int-or-string": true},
                                       "dep": {"type": "object", "dependencies": {"a": ["b"], "c": {"type": "object"}}}},
                               }}}]},
    });
    assert_eq!(round_trip(&crd), crd);
}

#[test]
fn subject_access_reviews_carry_extra_as_string_arrays() {
    let sar = json!({"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                     "metadata": {}, "spec": {"user": "u", "extra": {"scopes": ["a", "b"]},
                                             "resourceAttributes": {"verb": "get", "resource": "pods"}},
                     "status": {"allowed": true}});
    assert_eq!(round_trip(&sar), sar);
}

#[test]
fn metrics_windows_are_go_durations() {
    let m = json!({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {"name": "p"},
                   "timestamp": "2024-01-01T00:00:00Z", "window": "1m30.5s",
                   "containers": [{"name": "c", "usage": {"cpu": "1m", "memory": "10Mi"}}]});
    assert_eq!(round_trip(&m), m);
}

#[test]
fn watch_frames_nest_envelopes_and_split_on_length_prefixes() {
    let event = json!({"type": "MODIFIED", "object": {"kind": "Namespace", "apiVersion": "v1",
                                                     "metadata": {"name": "n", "resourceVersion": "9"}}});
    let bookmark = json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                                        "metadata": {"resourceVersion": "10"}}});
    let mut stream = encode_watch_frame(&event).unwrap();
    stream.extend(encode_watch_frame(&bookmark).unwrap());
    let (payload, used) = next_watch_frame(&stream).unwrap().unwrap();
    assert_eq!(decode_watch_frame(payload).unwrap(), event);
    assert_eq!(
        next_watch_frame(&stream[used..used + 3]).unwrap(),
        None,
        "partial length prefix"
    );
    assert_eq!(
        next_watch_frame(&stream[used..stream.len() - 1]).unwrap(),
        None,
        "partial body"
    );
    let (payload, rest) = next_watch_frame(&stream[used..]).unwrap().unwrap();
    assert_eq!(used + rest, stream.len());
    assert_eq!(decode_watch_frame(payload).unwrap(), bookmark);
    assert!(matches!(
        next_watch_frame(&[0xff, 0xff, 0xff, 0xff]),
        Err(Error::FrameTooLarge(_))
    ));
}

#[test]
fn errors_name_what_was_wrong_and_where() {
    assert!(matches!(
        decode(b"{\"kind\":\"Pod\"}"),
        Err(Error::MissingMagic)
    ));
    let crd = json!({"kind": "Foo", "apiVersion": "example.com/v1"});
    let err = encode(&crd).unwrap_err();
    assert!(matches!(err, Error::UnknownKind { .. }), "{err}");
    assert!(err.to_string().contains("application/json"), "{err}");

    let bad = json!({"kind": "Pod", "apiVersion": "v1",
                     "spec": {"containers": [{"name": "c", "ports": [{"containerPort": "eighty"}]}]}});
    let err = encode(&bad).unwrap_err().to_string();
    assert!(
        err.contains("$.spec.containers[0].ports[0].containerPort"),
        "{err}"
    );
    assert!(err.contains("32-bit integer"), "{err}");

    let too_big = json!({"kind": "Pod", "apiVersion": "v1", "spec": {"priority": 1u64 << 40}});
    assert!(encode(&too_big).is_err());

    let bytes =
        encode(&json!({"kind": "ConfigMap", "apiVersion": "v1", "data": {"k": "v"}})).unwrap();
    let err = decode(&bytes[..bytes.len() - 7]).unwrap_err().to_string();
    assert!(
        err.contains("k8s.io.apimachinery.pkg.runtime.Unknown"),
        "{err}"
    );
    assert!(err.contains("at byte"), "{err}");
}

#[test]
fn unknown_json_fields_and_nulls_are_dropped_like_go() {
    let cm = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "bogus": 1},
                    "data": null, "extra": {"x": 1}});
    assert_eq!(
        round_trip(&cm),
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"}})
    );
}

#[test]
fn decoding_skips_unknown_protobuf_fields() {
    let mut raw =
        drover_codec::encode_message("k8s.io.api.core.v1.ConfigMap", &json!({"data": {"a": "b"}}))
            .unwrap();
    // Field 99 as varint, fixed64, length-delimited and fixed32.
    raw.extend([0x98, 0x06, 0x01]);
    raw.extend([0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);
    raw.extend([0x9a, 0x06, 0x02, b'h', b'i']);
    raw.extend([0x9d, 0x06, 1, 2, 3, 4]);
    assert_eq!(
        drover_codec::decode_message("k8s.io.api.core.v1.ConfigMap", &raw).unwrap(),
        json!({"data": {"a": "b"}})
    );
}

#[test]
fn protobuf_lists_decode_items_without_type_meta() {
    let list = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "3"},
                      "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]});
    assert_eq!(round_trip(&list), list);
}

#[test]
fn omit_empty_strings_drops_go_zero_strings_but_keeps_data_and_storage_class() {
    let mut deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "generateName": "", "namespace": "", "labels": {"empty": ""}},
        "spec": {"strategy": {"type": ""}, "replicas": 0, "template": {"spec": {
            "restartPolicy": "",
            "containers": [{"name": "c", "image": "i", "workingDir": "", "args": [""],
                            "env": [{"name": "E", "value": ""}]}],
            "volumes": [{"name": "v", "configMap": {"name": ""}}],
        }}},
    });
    drover_codec::omit_empty_strings(&mut deploy);
    assert_eq!(
        deploy,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"empty": ""}},
            "spec": {"strategy": {}, "replicas": 0, "template": {"spec": {
                "containers": [{"name": "c", "image": "i", "args": [""], "env": [{"name": "E"}]}],
                "volumes": [{"name": "v", "configMap": {}}],
            }}},
        })
    );
    let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p"},
                         "spec": {"storageClassName": "", "volumeName": ""}});
    drover_codec::omit_empty_strings(&mut pvc);
    assert_eq!(pvc["spec"], json!({"storageClassName": ""}));
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": ""}});
    let before = cm.clone();
    drover_codec::omit_empty_strings(&mut cm);
    assert_eq!(cm, before);
    let mut unknown = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "spec": {"x": ""}});
    drover_codec::omit_empty_strings(&mut unknown);
    assert_eq!(unknown["spec"]["x"], "");
}
