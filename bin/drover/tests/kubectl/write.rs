//! Writing with kubectl: apply (client-side, server-side, kustomize, prune, dry run), create,
//! replace, patch, label/annotate, edit, diff and scale.
use serde_json::{Value, json};

use crate::common::{self, Server};
use crate::{cms, names, parse};

fn get_json(s: &Server, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json"]);
    parse(&s.k(&args))
}

#[test]
fn client_side_apply_creates_then_updates_with_a_three_way_strategic_merge() {
    require_kubectl!();
    let s = Server::start();
    let v1 = common::fixture("manifests/deploy-v1.yaml");
    let v2 = common::fixture("manifests/deploy-v2.yaml");
    assert_eq!(
        s.k(&["apply", "-f", &v1]).trim(),
        "deployment.apps/web created"
    );
    // A change made by someone else, outside the manifest: a three-way merge keeps it.
    s.k(&["label", "deploy", "web", "extra=kept"]);
    assert_eq!(
        s.k(&["apply", "-f", &v2]).trim(),
        "deployment.apps/web configured"
    );
    let d = get_json(&s, &["deploy", "web"]);
    assert_eq!(
        d["metadata"]["labels"],
        json!({"app": "web", "tier": "front", "extra": "kept"})
    );
    let containers = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "nginx:1.27");
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "MODE", "value": "two"}])
    );
    assert_eq!(
        containers[1]["name"], "sidecar",
        "the list is merged by name, not replaced: {containers}"
    );
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("annotation");
    assert!(
        last.contains("nginx:1.27") && last.contains("\"tier\":\"front\""),
        "{last}"
    );
    assert_eq!(
        d["metadata"]["generation"], 2,
        "one spec change since creation"
    );
    // Going back to v1 removes what v2 added (tier) and nothing else.
    s.k(&["apply", "-f", &v1]);
    let d = get_json(&s, &["deploy", "web"]);
    assert_eq!(
        d["metadata"]["labels"],
        json!({"app": "web", "extra": "kept"})
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    // Applying the same manifest again changes nothing, not even the resourceVersion.
    let rv = d["metadata"]["resourceVersion"].clone();
    assert_eq!(
        s.k(&["apply", "-f", &v1]).trim(),
        "deployment.apps/web unchanged"
    );
    assert_eq!(
        get_json(&s, &["deploy", "web"])["metadata"]["resourceVersion"],
        rv
    );
}

#[test]
fn server_side_apply_conflict_names_the_field_until_forced() {
    require_kubectl!();
    let s = Server::start();
    let blue =
        std::fs::read_to_string(common::fixture("manifests/widget-config.yaml")).expect("fixture");
    let red = blue.replace("color: blue", "color: red");
    assert_eq!(
        s.k_in(&["apply", "--server-side", "-f", "-"], &blue).trim(),
        "configmap/widget serverside-applied"
    );
    let err = s.k_in_err(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        &red,
    );
    assert!(
        err.contains("conflict with \"kubectl\"") && err.contains(".data.color"),
        "{err}"
    );
    assert!(
        err.contains("--force-conflicts"),
        "kubectl's help for conflicts: {err}"
    );
    assert_eq!(
        s.k(&["get", "cm", "widget", "-o", "jsonpath={.data.color}"]),
        "blue",
        "a refused apply changes nothing"
    );
    s.k_in(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &red,
    );
    let cm = parse(&s.k(&["get", "cm", "widget", "-o", "json", "--show-managed-fields"]));
    assert_eq!(cm["data"]["color"], "red");
    let owners: Vec<(String, String)> = cm["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or("").to_owned(),
                m["fieldsV1"].to_string(),
            )
        })
        .collect();
    let owner_of_color: Vec<&str> = owners
        .iter()
        .filter(|(_, f)| f.contains("f:color"))
        .map(|(m, _)| m.as_str())
        .collect();
    assert_eq!(
        owner_of_color,
        ["other"],
        "forcing takes the field over: {owners:?}"
    );
    assert!(
        owners
            .iter()
            .any(|(m, f)| m == "kubectl" && f.contains("f:size")),
        "kubectl keeps .data.size: {owners:?}"
    );
}

#[test]
fn apply_k_applies_a_kustomize_directory() {
    require_kubectl!();
    let s = Server::start();
    let out = s.k(&["apply", "-k", &common::fixture("kustomize")]);
    assert!(
        out.contains("service/kz-web created") && out.contains("deployment.apps/kz-web created"),
        "{out}"
    );
    let cm = names(&s.k(&[
        "get",
        "cm",
        "-l",
        "app.kubernetes.io/part-of=kz-demo",
        "-o",
        "name",
    ]));
    assert_eq!(cm.len(), 1, "{cm:?}");
    assert!(
        cm[0].starts_with("configmap/kz-settings-"),
        "generated name with a hash suffix: {cm:?}"
    );
    assert_eq!(s.k(&["get", &cm[0], "-o", "jsonpath={.data.mode}"]), "fast");
    assert_eq!(
        s.k(&[
            "get",
            "deploy",
            "kz-web",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.labels}"
        ]),
        "2 {\"app.kubernetes.io/part-of\":\"kz-demo\"}"
    );
    assert_eq!(
        s.k(&["apply", "-k", &common::fixture("kustomize")])
            .matches("unchanged")
            .count(),
        3
    );
}

#[test]
fn apply_prune_deletes_an_object_removed_from_the_labelled_set() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "cm", "bystander", "--from-literal=k=v"]);
    s.k(&[
        "apply",
        "-f",
        &common::fixture("manifests/prune-set.yaml"),
        "--prune",
        "-l",
        "app=x",
    ]);
    assert_eq!(
        names(&s.k(&["get", "cm", "-l", "app=x", "-o", "name"])),
        cms(&["dropped", "keep"])
    );
    let out = s.k(&[
        "apply",
        "-f",
        &common::fixture("manifests/prune-set-smaller.yaml"),
        "--prune",
        "-l",
        "app=x",
    ]);
    assert!(out.contains("configmap/dropped pruned"), "{out}");
    assert_eq!(
        names(&s.k(&["get", "cm", "-o", "name"])),
        cms(&["bystander", "keep", "kube-root-ca.crt"])
    );
    assert_eq!(
        s.k(&["get", "cm", "keep", "-o", "jsonpath={.data.k}"]),
        "v2"
    );
}

#[test]
fn apply_dry_run_server_validates_but_persists_nothing() {
    require_kubectl!();
    let s = Server::start();
    let widget = common::fixture("manifests/widget-config.yaml");
    assert_eq!(
        s.k(&["apply", "--dry-run=server", "-f", &widget]).trim(),
        "configmap/widget created (server dry run)"
    );
    let err = s.k_err(&["get", "cm", "widget"]);
    assert!(err.contains("NotFound"), "{err}");
    s.k(&["apply", "-f", &widget]);
    let rv = s.k(&[
        "get",
        "cm",
        "widget",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let red = std::fs::read_to_string(&widget)
        .expect("fixture")
        .replace("color: blue", "color: red");
    let out = s.k_in(
        &[
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            "-o",
            "jsonpath={.data.color}",
        ],
        &red,
    );
    assert_eq!(out, "red", "the dry run returns the object as it would be");
    assert_eq!(
        s.k(&[
            "get",
            "cm",
            "widget",
            "-o",
            "jsonpath={.data.color} {.metadata.resourceVersion}"
        ]),
        format!("blue {rv}")
    );
    // Validation still runs on a dry run.
    let err = s.k_err(&["create", "cm", "Bad_Name", "--dry-run=server"]);
    assert!(err.contains("Invalid value: \"Bad_Name\""), "{err}");
}

#[test]
fn create_subcommands_sent_as_protobuf_store_their_objects() {
    require_kubectl!();
    let s = Server::start();
    s.k(&[
        "create",
        "configmap",
        "c1",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    s.k(&[
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=password=pw",
    ]);
    s.k(&["create", "namespace", "n1"]);
    s.k(&[
        "create",
        "deployment",
        "d1",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
    ]);
    s.k(&["create", "service", "clusterip", "svc1", "--tcp=80:8080"]);
    assert_eq!(
        get_json(&s, &["cm", "c1"])["data"],
        json!({"a": "1", "b": "2"})
    );
    let secret = get_json(&s, &["secret", "s1"]);
    assert_eq!(
        (secret["type"].as_str(), secret["data"]["password"].as_str()),
        (Some("Opaque"), Some("cHc="))
    );
    assert_eq!(
        s.k(&["get", "ns", "n1", "-o", "jsonpath={.status.phase}"]),
        "Active"
    );
    let d = get_json(&s, &["deploy", "d1"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"], json!({"app": "d1"}));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert_eq!(
        s.k(&[
            "get",
            "svc",
            "svc1",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}"
        ]),
        "8080"
    );
    // Protobuf carries every empty string; like upstream, they read as unset: defaulted, and
    // never shown.
    let spec = &d["spec"]["template"]["spec"];
    assert_eq!(
        (spec["restartPolicy"].as_str(), spec["dnsPolicy"].as_str()),
        (Some("Always"), Some("ClusterFirst")),
        "{d}"
    );
    assert_eq!(
        spec["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    let yaml = s.k(&["get", "cm", "c1", "-o", "yaml"]);
    assert!(
        !yaml.contains("generateName") && !yaml.contains(": \"\"\n"),
        "{yaml}"
    );
    let managers = s.k(&[
        "get",
        "cm",
        "c1",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
        "--show-managed-fields",
    ]);
    assert_eq!(managers, "kubectl-create");
    // `create -f` sends JSON; creating twice is AlreadyExists.
    let svc = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"fromfile"},"spec":{"ports":[{"port":53,"protocol":"UDP"}]}}"#;
    assert_eq!(
        s.k_in(&["create", "-f", "-"], svc).trim(),
        "service/fromfile created"
    );
    let err = s.k_in_err(&["create", "-f", "-"], svc);
    assert!(
        err.contains("AlreadyExists") && err.contains("services \"fromfile\" already exists"),
        "{err}"
    );
}

#[test]
fn replace_updates_and_a_stale_resource_version_is_a_conflict() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "cm", "c1", "--from-literal=a=1"]);
    let old = s.k(&["get", "cm", "c1", "-o", "json"]);
    assert!(old.contains("\"resourceVersion\""), "{old}");
    let out = s.k_in(
        &["replace", "-f", "-"],
        &old.replace("\"a\": \"1\"", "\"a\": \"2\""),
    );
    assert_eq!(out.trim(), "configmap/c1 replaced");
    assert_eq!(s.k(&["get", "cm", "c1", "-o", "jsonpath={.data.a}"]), "2");
    // The same old resourceVersion again: someone else has changed the object since.
    let err = s.k_in_err(
        &["replace", "-f", "-"],
        &old.replace("\"a\": \"1\"", "\"a\": \"3\""),
    );
    assert!(err.contains("Error from server (Conflict)"), "{err}");
    assert!(
        err.contains("Operation cannot be fulfilled on configmaps \"c1\": the object has been modified; please apply your changes to the latest version and try again"),
        "{err}"
    );
    assert_eq!(s.k(&["get", "cm", "c1", "-o", "jsonpath={.data.a}"]), "2");
    // Without a resourceVersion, replace copies the current one and succeeds.
    let mut fresh = parse(&old);
    fresh["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("resourceVersion");
    fresh["data"]["a"] = json!("4");
    s.k_in(&["replace", "-f", "-"], &fresh.to_string());
    assert_eq!(s.k(&["get", "cm", "c1", "-o", "jsonpath={.data.a}"]), "4");
}

#[test]
fn patch_applies_json_merge_and_strategic_patches() {
    require_kubectl!();
    let s = Server::start();
    s.k(&[
        "create",
        "cm",
        "c1",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    s.k(&[
        "patch",
        "cm",
        "c1",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/j","value":"x"},{"op":"remove","path":"/data/b"}]"#,
    ]);
    assert_eq!(
        get_json(&s, &["cm", "c1"])["data"],
        json!({"a": "1", "j": "x"})
    );
    let err = s.k_err(&[
        "patch",
        "cm",
        "c1",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/a","value":"nope"}]"#,
    ]);
    assert!(
        err.contains("test"),
        "a failed JSON patch test op is reported: {err}"
    );
    s.k(&[
        "patch",
        "cm",
        "c1",
        "--type=merge",
        "-p",
        r#"{"data":{"m":"y","a":null}}"#,
    ]);
    assert_eq!(
        get_json(&s, &["cm", "c1"])["data"],
        json!({"j": "x", "m": "y"})
    );

    s.k(&["apply", "-f", &common::fixture("manifests/deploy-v1.yaml")]);
    // Strategic: the containers list merges by name, so the web container is untouched.
    s.k(&["patch", "deploy", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}"#]);
    let images = s.k(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].image}",
    ]);
    assert_eq!(images, "nginx:1.26 busybox:1.37");
    // The same body as a merge patch replaces the whole list.
    s.k(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"busybox:1.38"}]}}}}"#,
    ]);
    let images = s.k(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}",
    ]);
    assert_eq!(images, "only");
    // `$patch: delete` removes one element of a merged list.
    s.k(&["patch", "deploy", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"two","image":"a"},{"name":"only","$patch":"delete"}]}}}}"#]);
    let names = s.k(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}",
    ]);
    assert_eq!(names, "two");
}

#[test]
fn label_and_annotate_refuse_to_overwrite_unless_asked_and_remove_keys() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "cm", "c1"]);
    assert_eq!(
        s.k(&["label", "cm", "c1", "team=a", "env=dev"]).trim(),
        "configmap/c1 labeled"
    );
    let err = s.k_err(&["label", "cm", "c1", "team=b"]);
    assert!(
        err.contains("'team' already has a value (a), and --overwrite is false"),
        "{err}"
    );
    s.k(&["label", "cm", "c1", "team=b", "--overwrite"]);
    assert_eq!(
        s.k(&["get", "cm", "c1", "-o", "jsonpath={.metadata.labels}"]),
        r#"{"env":"dev","team":"b"}"#
    );
    assert_eq!(
        s.k(&["label", "cm", "c1", "env-"]).trim(),
        "configmap/c1 unlabeled"
    );
    assert_eq!(
        s.k(&["get", "cm", "c1", "-o", "jsonpath={.metadata.labels}"]),
        r#"{"team":"b"}"#
    );
    assert_eq!(
        names(&s.k(&["get", "cm", "-l", "team=b", "-o", "name"])),
        cms(&["c1"])
    );

    s.k(&["annotate", "cm", "c1", "note=first"]);
    let err = s.k_err(&["annotate", "cm", "c1", "note=second"]);
    assert!(err.contains("'note' already has a value (first)"), "{err}");
    s.k(&["annotate", "cm", "c1", "note=second", "--overwrite"]);
    assert_eq!(
        s.k(&[
            "get",
            "cm",
            "c1",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "second"
    );
    s.k(&["annotate", "cm", "c1", "note-"]);
    assert_eq!(
        s.k(&[
            "get",
            "cm",
            "c1",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        ""
    );
    assert!(!s.k(&["get", "cm", "c1", "-o", "yaml"]).contains("note:"));
}

#[test]
fn removing_the_last_annotation_leaves_no_empty_map() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "cm", "c1"]);
    s.k(&["annotate", "cm", "c1", "note=x"]);
    s.k(&["annotate", "cm", "c1", "note-"]);
    // Upstream decodes into Go structs, whose empty maps are `omitempty`.
    let yaml = s.k(&["get", "cm", "c1", "-o", "yaml"]);
    assert!(!yaml.contains("annotations"), "{yaml}");
}

#[test]
fn a_deployment_with_an_empty_strategy_is_defaulted_to_rolling_update() {
    require_kubectl!();
    let s = Server::start();
    // kubectl 1.32 sends `create deployment` as protobuf, where `strategy` is always present
    // (a Go struct, never nil); upstream defaults `type` when it is empty, whatever the encoding.
    s.k(&["create", "deployment", "pb", "--image=nginx:1.27"]);
    let json =
        std::fs::read_to_string(common::fixture("manifests/deploy-v1.yaml")).expect("fixture");
    s.k_in(
        &["create", "-f", "-"],
        &json.replace("  replicas: 2\n", "  replicas: 2\n  strategy: {}\n"),
    );
    for name in ["pb", "web"] {
        let got = s.k(&[
            "get",
            "deploy",
            name,
            "-o",
            "jsonpath={.spec.strategy.type} {.spec.strategy.rollingUpdate.maxSurge}",
        ]);
        assert_eq!(got, "RollingUpdate 25%", "{name}");
    }
}

#[test]
fn edit_saves_what_the_editor_wrote() {
    require_kubectl!();
    let s = Server::start();
    s.k(&[
        "apply",
        "-f",
        &common::fixture("manifests/widget-config.yaml"),
    ]);
    let editor = format!("sh {}", common::fixture("editor.sh"));
    let out = s.kubectl_env(
        "1.32",
        &["edit", "cm", "widget"],
        &[("EDITOR", &editor)],
        None,
    );
    assert!(
        out.status.success(),
        "kubectl edit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configmap/widget edited"
    );
    assert_eq!(
        s.k(&[
            "get",
            "cm",
            "widget",
            "-o",
            "jsonpath={.data.color} {.data.size}"
        ]),
        "green large"
    );
    // Nothing to change the second time.
    let out = s.kubectl_env(
        "1.32",
        &["edit", "cm", "widget"],
        &[("EDITOR", &editor)],
        None,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Edit cancelled, no changes made."),
        "{out:?}"
    );
}

#[test]
fn diff_exits_1_with_a_diff_when_different_and_0_when_not() {
    require_kubectl!();
    let s = Server::start();
    let widget = common::fixture("manifests/widget-config.yaml");
    s.k(&["apply", "-f", &widget]);
    let same = s.kubectl(&["diff", "-f", &widget]);
    assert_eq!(same.status.code(), Some(0), "{same:?}");
    assert!(
        same.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    let red = s.dir.path().join("widget-red.yaml");
    std::fs::write(
        &red,
        std::fs::read_to_string(&widget)
            .expect("fixture")
            .replace("color: blue", "color: red"),
    )
    .expect("write");
    let differs = s.kubectl(&["diff", "-f", &red.to_string_lossy()]);
    assert_eq!(differs.status.code(), Some(1), "{differs:?}");
    let text = String::from_utf8_lossy(&differs.stdout);
    assert!(
        text.contains("-  color: blue") && text.contains("+  color: red"),
        "{text}"
    );
    assert!(
        !text.contains("-  size") && !text.contains("+  size"),
        "only the color changed: {text}"
    );
    assert_eq!(
        s.k(&["get", "cm", "widget", "-o", "jsonpath={.data.color}"]),
        "blue",
        "diff changes nothing"
    );
}

#[test]
fn scale_sets_replicas_and_honours_current_replicas() {
    require_kubectl!();
    let s = Server::start();
    s.k(&[
        "create",
        "deployment",
        "d1",
        "--image=nginx:1.27",
        "--replicas=1",
    ]);
    assert_eq!(
        s.k(&["scale", "deploy", "d1", "--replicas=3"]).trim(),
        "deployment.apps/d1 scaled"
    );
    assert_eq!(
        s.k(&["get", "deploy", "d1", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    let err = s.k_err(&[
        "scale",
        "deploy",
        "d1",
        "--current-replicas=2",
        "--replicas=5",
    ]);
    assert!(err.contains("Expected replicas to be 2, was 3"), "{err}");
    s.k(&[
        "scale",
        "deploy",
        "d1",
        "--current-replicas=3",
        "--replicas=4",
    ]);
    assert_eq!(
        s.k(&["get", "deploy", "d1", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    let scale = parse(&s.k(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/d1/scale",
    ]));
    assert_eq!(
        (scale["kind"].as_str(), scale["apiVersion"].as_str()),
        (Some("Scale"), Some("autoscaling/v1"))
    );
    assert_eq!(
        (
            scale["spec"]["replicas"].as_i64(),
            scale["status"]["selector"].as_str()
        ),
        (Some(4), Some("app=d1"))
    );
}

#[test]
fn secret_string_data_is_merged_into_data_and_never_returned() {
    require_kubectl!();
    let s = Server::start();
    let secret = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"sd"},"data":{"a":"YQ=="},"stringData":{"password":"pw","a":"override"}}"#;
    s.k_in(&["create", "-f", "-"], secret);
    let got = get_json(&s, &["secret", "sd"]);
    // Upstream: stringData is write-only; its keys win over data's.
    assert_eq!(
        got["data"],
        json!({"a": "b3ZlcnJpZGU=", "password": "cHc="}),
        "{got}"
    );
    assert!(got.get("stringData").is_none(), "{got}");
}
