//! The seed's manifests of built-in kinds apply verbatim and keep every field.
use crate::common::{self, Server};
use crate::{parse, row};

#[test]
fn seed_manifests_apply_verbatim_and_keep_their_fields() {
    require_kubectl!();
    let Some(dir) = common::seed_examples() else {
        assert!(
            std::env::var_os("DROVER_REQUIRE_PEERS").is_none(),
            "the seed examples are missing"
        );
        return;
    };
    let s = Server::start();
    let file = |n: &str| dir.join(n).to_string_lossy().into_owned();
    for f in [
        "pod.yaml",
        "service.yaml",
        "deployment.yaml",
        "ingress.yaml",
        "storage.yaml",
    ] {
        s.k(&["apply", "-f", &file(f)]);
    }
    let err = s.k_err(&["apply", "-f", &file("networkpolicy.yaml")]);
    assert!(err.contains("namespaces \"prod\" not found"), "{err}");
    s.k(&["create", "namespace", "prod"]);
    assert_eq!(
        s.k(&["apply", "-f", &file("networkpolicy.yaml")]).trim(),
        "networkpolicy.networking.k8s.io/api-policy created"
    );

    let listed = s.k(&["get", "pod,svc,deploy,ingress,pvc"]);
    for name in [
        "pod/web",
        "service/web",
        "deployment.apps/web",
        "ingress.networking.k8s.io/web",
        "persistentvolumeclaim/pgdata",
    ] {
        row(&listed, 0, name);
    }
    row(&s.k(&["get", "storageclass"]), 0, "fast-ssd");
    row(&s.k(&["get", "netpol", "-n", "prod"]), 0, "api-policy");

    let pod = parse(&s.k(&["get", "pod", "web", "-o", "json"]));
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["memory"], "128Mi");
    assert_eq!(c["resources"]["requests"]["cpu"], "100m");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/");
    assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(c["livenessProbe"]["initialDelaySeconds"], 30);
    assert_eq!(c["ports"][0]["containerPort"], 80);
    assert_eq!(pod["metadata"]["labels"]["app"], "web");

    let svc = parse(&s.k(&["get", "svc", "web", "-o", "json"]));
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["selector"]["app"], "web");
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.43.")),
        "{svc}"
    );

    assert_eq!(
        s.k(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.strategy.rollingUpdate.maxSurge} {.spec.strategy.rollingUpdate.maxUnavailable} {.spec.template.spec.containers[0].image}"]),
        "3 1 0 ghcr.io/myorg/web:v1.4.2"
    );
    assert_eq!(
        s.k(&["get", "ingress", "web", "-o", "jsonpath={.metadata.annotations.cert-manager\\.io/cluster-issuer} {.spec.tls[0].hosts[0]} {.spec.tls[0].secretName} {.spec.rules[0].http.paths[0].backend.service.port.number}"]),
        "letsencrypt-prod app.example.com web-tls 80"
    );
    assert_eq!(
        s.k(&["get", "storageclass", "fast-ssd", "-o", "jsonpath={.provisioner} {.parameters.iops} {.parameters.encrypted} {.reclaimPolicy} {.allowVolumeExpansion}"]),
        "ebs.csi.aws.com 3000 true Retain true"
    );
    assert_eq!(s.k(&["get", "pvc", "pgdata", "-o", "jsonpath={.spec.resources.requests.storage} {.spec.storageClassName} {.spec.accessModes[0]}"]), "100Gi fast-ssd ReadWriteOnce");
    let np = parse(&s.k(&["get", "netpol", "api-policy", "-n", "prod", "-o", "json"]));
    assert_eq!(
        np["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(np["spec"]["egress"][1]["ports"][0]["protocol"], "UDP");
    assert_eq!(np["spec"]["egress"][1]["ports"][0]["port"], 53);
    assert_eq!(
        np["spec"]["egress"][1]["to"][0]["namespaceSelector"],
        serde_json::json!({})
    );
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], 8080);

    // Applying them again is a no-op.
    for f in [
        "pod.yaml",
        "service.yaml",
        "deployment.yaml",
        "ingress.yaml",
    ] {
        let out = s.k(&["apply", "-f", &file(f)]);
        assert!(out.trim().ends_with("unchanged"), "{f}: {out}");
    }
}
