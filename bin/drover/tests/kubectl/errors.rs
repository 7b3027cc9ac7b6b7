//! Bad input is refused with upstream's status codes, reasons and messages.
use serde_json::json;

use crate::common::{self, Server};
use crate::configmap;

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

#[test]
fn malformed_json_and_yaml_bodies_are_400_bad_request() {
    require_kubectl!();
    let s = Server::start();
    let r = s.curl(
        "POST",
        CONFIGMAPS,
        "application/json",
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x""#),
    );
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (400, Some("BadRequest")),
        "{}",
        r.body
    );
    let r = s.curl(
        "POST",
        CONFIGMAPS,
        "application/yaml",
        Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n"),
    );
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (400, Some("BadRequest")),
        "{}",
        r.body
    );
    // The same YAML, well formed, is accepted: the 400 was about the syntax.
    let r = s.curl(
        "POST",
        CONFIGMAPS,
        "application/yaml",
        Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n"),
    );
    assert_eq!(r.code, 201, "{}", r.body);
    let r = s.curl(
        "PUT",
        &format!("{CONFIGMAPS}/fine"),
        "application/json",
        Some(b"[1,2"),
    );
    assert_eq!(r.code, 400, "{}", r.body);
    // Through kubectl: `create --raw` sends the file unparsed.
    let broken = s.dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x""#,
    )
    .expect("write");
    let err = s.k_err(&[
        "create",
        "--raw",
        CONFIGMAPS,
        "-f",
        &broken.to_string_lossy(),
    ]);
    assert!(err.contains("Error from server (BadRequest)"), "{err}");
    assert!(
        !s.kubectl(&["get", "cm", "x"]).status.success(),
        "nothing was created"
    );
}

#[test]
fn unknown_resources_are_404() {
    require_kubectl!();
    let s = Server::start();
    let r = s.curl(
        "GET",
        "/api/v1/namespaces/default/widgets",
        "application/json",
        None,
    );
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (404, Some("NotFound")),
        "{}",
        r.body
    );
    let r = s.curl(
        "GET",
        "/apis/example.com/v1/widgets",
        "application/json",
        None,
    );
    assert_eq!(r.code, 404, "{}", r.body);
    let err = s.k_err(&["get", "widgets"]);
    assert!(
        err.contains("the server doesn't have a resource type \"widgets\""),
        "{err}"
    );
    let err = s.k_err(&["get", "--raw", "/api/v1/namespaces/default/widgets"]);
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn a_body_whose_kind_or_api_version_does_not_match_the_url_is_400() {
    require_kubectl!();
    let s = Server::start();
    let secret =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}).to_string();
    let r = s.curl(
        "POST",
        CONFIGMAPS,
        "application/json",
        Some(secret.as_bytes()),
    );
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (400, Some("BadRequest")),
        "{}",
        r.body
    );
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("Secret")),
        "{}",
        r.body
    );
    let old =
        json!({"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": {"name": "x"}})
            .to_string();
    let r = s.curl(
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        "application/json",
        Some(old.as_bytes()),
    );
    assert_eq!(r.code, 400, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("apps/v1beta1")),
        "{}",
        r.body
    );
    // Through kubectl.
    let file = s.dir.path().join("secret.json");
    std::fs::write(&file, &secret).expect("write");
    let err = s.k_err(&["create", "--raw", CONFIGMAPS, "-f", &file.to_string_lossy()]);
    assert!(err.contains("BadRequest"), "{err}");
    assert!(
        !s.kubectl(&["get", "secret", "x"]).status.success()
            && !s.kubectl(&["get", "cm", "x"]).status.success()
    );
}

#[test]
fn an_invalid_name_is_422_with_causes() {
    require_kubectl!();
    let s = Server::start();
    let body = configmap("Bad_Name", json!({}), json!({})).to_string();
    let r = s.curl(
        "POST",
        CONFIGMAPS,
        "application/json",
        Some(body.as_bytes()),
    );
    assert_eq!(r.code, 422, "{}", r.body);
    let st = r.json();
    assert_eq!(st["reason"], "Invalid");
    assert_eq!(st["details"]["name"], "Bad_Name");
    let cause = &st["details"]["causes"][0];
    assert_eq!(
        (cause["reason"].as_str(), cause["field"].as_str()),
        (Some("FieldValueInvalid"), Some("metadata.name")),
        "{st}"
    );
    assert!(
        cause["message"]
            .as_str()
            .is_some_and(|m| m.contains("RFC 1123")),
        "{st}"
    );
    let err = s.k_err(&["create", "configmap", "Bad_Name"]);
    assert!(
        err.contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{err}"
    );
}

#[test]
fn kubectl_names_the_kind_of_an_invalid_object() {
    require_kubectl!();
    let s = Server::start();
    let file = s.dir.path().join("bad.json");
    std::fs::write(
        &file,
        configmap("Bad_Name", json!({}), json!({})).to_string(),
    )
    .expect("write");
    let err = s.k_err(&["create", "--raw", CONFIGMAPS, "-f", &file.to_string_lossy()]);
    assert!(
        err.contains("The ConfigMap \"Bad_Name\" is invalid"),
        "{err}"
    );
    let r = s.curl(
        "POST",
        CONFIGMAPS,
        "application/json",
        Some(&std::fs::read(&file).expect("read")),
    );
    assert_eq!(r.json()["details"]["kind"], "ConfigMap", "{}", r.body);
}

#[test]
fn a_body_over_3_mib_is_413() {
    require_kubectl!();
    let s = Server::start();
    let big = configmap(
        "big",
        json!({}),
        json!({"k": "x".repeat(3 * 1024 * 1024 + 1)}),
    )
    .to_string();
    let r = s.curl("POST", CONFIGMAPS, "application/json", Some(big.as_bytes()));
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (413, Some("RequestEntityTooLarge")),
        "{}",
        r.body
    );
    assert!(!s.kubectl(&["get", "cm", "big"]).status.success());
    let file = s.dir.path().join("big.json");
    std::fs::write(&file, &big).expect("write");
    let err = s.k_err(&["create", "-f", &file.to_string_lossy()]);
    assert!(
        err.contains("too large") || err.contains("RequestEntityTooLarge"),
        "{err}"
    );
}

#[test]
fn configmap_data_over_1_mib_is_422_too_long() {
    require_kubectl!();
    let s = Server::start();
    let body = configmap(
        "big",
        json!({}),
        json!({"a": "x".repeat(700 * 1024), "b": "y".repeat(400 * 1024)}),
    )
    .to_string();
    let r = s.curl(
        "POST",
        CONFIGMAPS,
        "application/json",
        Some(body.as_bytes()),
    );
    assert_eq!(r.code, 422, "{}", r.body);
    let st = r.json();
    assert_eq!(
        st["details"]["causes"][0]["reason"], "FieldValueTooLong",
        "{st}"
    );
    assert!(
        st["message"]
            .as_str()
            .is_some_and(|m| m.contains("Too long: may not be more than 1048576 bytes")),
        "{st}"
    );
    let file = s.dir.path().join("big.json");
    std::fs::write(&file, &body).expect("write");
    let err = s.k_err(&["create", "-f", &file.to_string_lossy()]);
    assert!(err.contains("Too long"), "{err}");
    // Just under the limit is fine.
    let fits = configmap(
        "fits",
        json!({}),
        json!({"a": "x".repeat(1024 * 1024 - 10)}),
    )
    .to_string();
    assert_eq!(
        s.curl(
            "POST",
            CONFIGMAPS,
            "application/json",
            Some(fits.as_bytes())
        )
        .code,
        201
    );
}

#[test]
fn strict_validation_names_the_unknown_field() {
    require_kubectl!();
    let s = Server::start();
    let file = common::fixture("manifests/configmap-unknown-field.yaml");
    for cmd in ["create", "apply"] {
        let err = s.k_err(&[cmd, "--validate=strict", "-f", &file]);
        assert!(err.contains("unknown field \"colour\""), "{cmd}: {err}");
    }
    assert!(
        !s.kubectl(&["get", "cm", "strict"]).status.success(),
        "refused objects are not stored"
    );
    let warn = s.kubectl(&["create", "--validate=warn", "-f", &file]);
    assert!(warn.status.success(), "{warn:?}");
    assert!(
        String::from_utf8_lossy(&warn.stderr).contains("unknown field \"colour\""),
        "warn mode warns: {warn:?}"
    );
    s.k(&["delete", "cm", "strict"]);
    s.k(&["create", "--validate=false", "-f", &file]);
    assert_eq!(
        s.k(&["get", "cm", "strict", "-o", "jsonpath={.data.k}"]),
        "v"
    );
}
