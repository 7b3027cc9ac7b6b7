//! Replays the committed fuzz corpus (`testdata/corpus/decode`: seeds plus every crash the
//! fuzzer ever found) through the decoder on stable, as the fuzz target does.

use std::path::PathBuf;

#[test]
fn every_fuzz_corpus_input_decodes_or_fails_cleanly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Ok(obj) = drover_codec::decode(&data) {
            let _ = drover_codec::encode(&obj);
        }
        let _ = drover_codec::decode_watch_frame(&data);
        n += 1;
    }
    assert!(n >= 5, "expected the seed corpus in {}", dir.display());
}

/// Rewrites the seed files (run by hand: `cargo test -p drover-codec --test corpus -- --ignored`).
#[test]
#[ignore = "writes testdata/corpus/decode"]
fn write_seed_corpus() {
    use serde_json::json;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/decode");
    let seeds = [
        (
            "configmap",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "b"}, "binaryData": {"x": "AAE="}}),
        ),
        (
            "secret",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sh.helm.release.v1.web.v1", "labels": {"owner": "helm"}}, "type": "helm.sh/release.v1", "data": {"release": "SDRzSUFBQUFBQUFBLw=="}}),
        ),
        (
            "deleteoptions",
            json!({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background", "gracePeriodSeconds": 0, "preconditions": {"uid": "u"}}),
        ),
        (
            "status",
            json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": "not found", "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404}),
        ),
        (
            "ssar",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {"creationTimestamp": null}, "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}, "status": {"allowed": true}}),
        ),
        (
            "deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}}, "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}, "livenessProbe": {"httpGet": {"path": "/", "port": 80}}}], "volumes": [{"name": "v", "configMap": {"name": "c"}}]}}}}),
        ),
        (
            "crd",
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "foos.example.com"}, "spec": {"group": "example.com", "names": {"plural": "foos", "kind": "Foo"}, "scope": "Namespaced", "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"spec": {"type": "object", "additionalProperties": {"type": "string"}, "default": {"a": 1}}, "list": {"type": "array", "items": {"type": "integer", "enum": [1, 2]}}}}}}]}}),
        ),
        (
            "lease",
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "h", "renewTime": "2024-01-01T00:00:00.123456Z", "leaseDurationSeconds": 15}}),
        ),
        (
            "podlist",
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "7"}, "items": [{"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}]}),
        ),
        (
            "podmetrics",
            json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics", "metadata": {"name": "p"}, "timestamp": "2024-01-01T00:00:00Z", "window": "30s", "containers": [{"name": "c", "usage": {"cpu": "1m"}}]}),
        ),
    ];
    std::fs::create_dir_all(&dir).unwrap();
    for (name, obj) in seeds {
        std::fs::write(
            dir.join(format!("{name}.pb")),
            drover_codec::encode(&obj).unwrap(),
        )
        .unwrap();
    }
    let frame = drover_codec::encode_watch_frame(&json!({"type": "ADDED", "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}})).unwrap();
    std::fs::write(dir.join("watch-frame-payload.pb"), &frame[4..]).unwrap();
    std::fs::write(
        dir.join("truncated-secret.pb"),
        &drover_codec::encode(
            &json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "AAAA"}}),
        )
        .unwrap()[..20],
    )
    .unwrap();
    std::fs::write(dir.join("magic-only.pb"), b"k8s\0").unwrap();
}
