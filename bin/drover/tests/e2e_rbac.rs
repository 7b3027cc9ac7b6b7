//! RBAC end to end, driven by real kubectl against a `drover server` this test starts:
//! impersonation (`--as`, `--as-group`), the bootstrap `view`/`admin` roles and their
//! aggregation, escalation prevention, and `kubectl auth can-i` / `auth whoami`.
mod common;

use common::{Server, eventually};

fn out(o: &std::process::Output) -> (bool, String, String) {
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `kubectl auth can-i ...` → "yes" or "no" (exit status 0 or 1 alike).
fn can_i(s: &Server, args: &[&str]) -> String {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let (_, stdout, stderr) = out(&s.kubectl(&all));
    let answer = stdout.trim().to_owned();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl {all:?} printed {stdout:?} / {stderr:?}"
    );
    answer
}

/// Waits until the aggregation controller has filled `role` with a rule for `resource`.
fn wait_for_rule(s: &Server, role: &str, resource: &str, present: bool) {
    eventually(
        &format!(
            "ClusterRole {role} to {} {resource}",
            if present { "gain" } else { "lose" }
        ),
        || {
            let rules = s.k(&["get", "clusterrole", role, "-o", "jsonpath={.rules}"]);
            let v: serde_json::Value = serde_json::from_str(&rules).unwrap_or_default();
            let has = v.as_array().is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["resources"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == resource))
                })
            });
            has == present
        },
    );
}

/// A kubeconfig that authenticates with `token` (no client certificate).
fn token_kubeconfig(s: &Server, name: &str, token: &str) -> String {
    let path = s.dir.path().join(format!("{name}.kubeconfig"));
    let cfg = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    insecure-skip-tls-verify: true\n    server: https://127.0.0.1:{}\n  name: c\n\
         contexts:\n- context:\n    cluster: c\n    user: u\n  name: c\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {token}\n",
        s.port
    );
    std::fs::write(&path, cfg).expect("write kubeconfig");
    path.to_string_lossy().into_owned()
}

#[test]
fn a_user_without_bindings_is_forbidden_and_a_view_binding_grants_reads_but_not_writes() {
    require_kubectl!();
    let s = Server::start();
    let (ok, _, stderr) = out(&s.kubectl(&["--as=ann", "get", "pods", "-n", "default"]));
    assert!(!ok);
    assert!(
        stderr.contains(
            "Error from server (Forbidden): pods is forbidden: User \"ann\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{stderr}"
    );
    assert_eq!(can_i(&s, &["--as=ann", "list", "pods"]), "no");

    // `view` is aggregated from system:aggregate-to-view by the controller.
    wait_for_rule(&s, "view", "pods", true);
    s.k(&[
        "create",
        "rolebinding",
        "ann-view",
        "--clusterrole=view",
        "--user=ann",
        "-n",
        "default",
    ]);
    // The very next request honours the new binding.
    s.k(&["--as=ann", "get", "pods", "-n", "default"]);
    s.k(&[
        "--as=ann",
        "get",
        "configmaps",
        "kube-root-ca.crt",
        "-n",
        "default",
    ]);
    assert_eq!(can_i(&s, &["--as=ann", "list", "deployments.apps"]), "yes");
    let stderr = s.k_err(&[
        "--as=ann",
        "create",
        "configmap",
        "x",
        "-n",
        "default",
        "--from-literal=a=b",
    ]);
    assert!(
        stderr.contains(
            "configmaps is forbidden: User \"ann\" cannot create resource \"configmaps\""
        ),
        "{stderr}"
    );
    let stderr = s.k_err(&["--as=ann", "get", "secrets", "-n", "default"]);
    assert!(
        stderr.contains("(Forbidden)"),
        "view grants no secrets: {stderr}"
    );
    let stderr = s.k_err(&["--as=ann", "get", "pods", "-n", "kube-system"]);
    assert!(
        stderr.contains("(Forbidden)"),
        "the binding is namespaced: {stderr}"
    );
    assert_eq!(can_i(&s, &["--as=ann", "delete", "pods"]), "no");

    // `auth can-i --list` (SelfSubjectRulesReview) lists what view grants.
    let list = s.k(&["auth", "can-i", "--list", "--as=ann", "-n", "default"]);
    let pods_line = list
        .lines()
        .find(|l| l.split_whitespace().next() == Some("pods"))
        .unwrap_or_else(|| panic!("no pods line in:\n{list}"));
    assert!(pods_line.contains("[get list watch]"), "{list}");
    assert!(
        !list.lines().any(|l| l.starts_with("secrets ")),
        "view lists no secrets:\n{list}"
    );

    // Removing the binding takes effect for the next request too.
    s.k(&["delete", "rolebinding", "ann-view", "-n", "default"]);
    s.k_err(&["--as=ann", "get", "pods", "-n", "default"]);
}

#[test]
fn a_clusterrole_labelled_aggregate_to_view_joins_view_and_leaves_it_when_deleted() {
    require_kubectl!();
    let s = Server::start();
    wait_for_rule(&s, "view", "pods", true);
    s.k(&[
        "create",
        "rolebinding",
        "ann-view",
        "--clusterrole=view",
        "--user=ann",
        "-n",
        "default",
    ]);
    s.k_err(&["--as=ann", "get", "podtemplates", "-n", "default"]);
    s.k_in(
        &["apply", "-f", "-"],
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: podtemplate-viewer\n  labels:\n    rbac.authorization.k8s.io/aggregate-to-view: \"true\"\nrules:\n- apiGroups: [\"\"]\n  resources: [podtemplates]\n  verbs: [get, list, watch]\n",
    );
    wait_for_rule(&s, "view", "podtemplates", true);
    // view is labelled aggregate-to-edit and edit aggregate-to-admin: both follow.
    wait_for_rule(&s, "edit", "podtemplates", true);
    wait_for_rule(&s, "admin", "podtemplates", true);
    s.k(&["--as=ann", "get", "podtemplates", "-n", "default"]);
    let annotations = s.k(&[
        "get",
        "clusterrole",
        "view",
        "-o",
        "jsonpath={.metadata.labels.kubernetes\\.io/bootstrapping} {.metadata.annotations.rbac\\.authorization\\.kubernetes\\.io/autoupdate} {.aggregationRule.clusterRoleSelectors[0].matchLabels}",
    ]);
    assert_eq!(
        annotations,
        "rbac-defaults true {\"rbac.authorization.k8s.io/aggregate-to-view\":\"true\"}"
    );
    s.k(&["delete", "clusterrole", "podtemplate-viewer"]);
    wait_for_rule(&s, "view", "podtemplates", false);
    wait_for_rule(&s, "admin", "podtemplates", false);
    s.k_err(&["--as=ann", "get", "podtemplates", "-n", "default"]);
}

#[test]
fn binding_admin_is_refused_as_escalation_until_bind_is_granted() {
    require_kubectl!();
    let s = Server::start();
    s.k(&["create", "namespace", "team"]);
    s.k(&[
        "create",
        "clusterrole",
        "binding-creator",
        "--verb=create,get,list",
        "--resource=rolebindings,roles",
    ]);
    s.k(&[
        "create",
        "rolebinding",
        "bob-creates-bindings",
        "--clusterrole=binding-creator",
        "--user=bob",
        "-n",
        "team",
    ]);
    wait_for_rule(&s, "admin", "pods", true);
    let bind_admin = [
        "--as=bob",
        "create",
        "rolebinding",
        "carol-admin",
        "--clusterrole=admin",
        "--user=carol",
        "-n",
        "team",
    ];
    let stderr = s.k_err(&bind_admin);
    assert!(
        stderr.contains("rolebindings.rbac.authorization.k8s.io \"carol-admin\" is forbidden: user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:["),
        "the missing rules are listed: {stderr}"
    );
    // A Role with rules bob does not hold is refused the same way; one within them is not.
    let stderr = s.k_err(&[
        "--as=bob",
        "create",
        "role",
        "secret-reader",
        "--verb=get",
        "--resource=secrets",
        "-n",
        "team",
    ]);
    assert!(
        stderr.contains("is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"),
        "{stderr}"
    );
    s.k(&[
        "--as=bob",
        "create",
        "role",
        "role-lister",
        "--verb=list",
        "--resource=roles.rbac.authorization.k8s.io",
        "-n",
        "team",
    ]);

    // `bind` on exactly the admin ClusterRole, in this namespace.
    s.k(&[
        "create",
        "role",
        "admin-binder",
        "--verb=bind",
        "--resource=clusterroles.rbac.authorization.k8s.io",
        "--resource-name=admin",
        "-n",
        "team",
    ]);
    s.k(&[
        "create",
        "rolebinding",
        "bob-binds-admin",
        "--role=admin-binder",
        "--user=bob",
        "-n",
        "team",
    ]);
    s.k(&bind_admin);
    // Carol now administers the namespace (admin aggregates edit and view).
    s.k(&["--as=carol", "create", "configmap", "c", "-n", "team"]);
    assert_eq!(
        can_i(&s, &["--as=carol", "get", "secrets", "-n", "team"]),
        "yes"
    );
    assert_eq!(
        can_i(&s, &["--as=carol", "get", "secrets", "-n", "default"]),
        "no"
    );
    // bind was granted for admin only: binding cluster-admin is still an escalation.
    let stderr = s.k_err(&[
        "--as=bob",
        "create",
        "rolebinding",
        "carol-root",
        "--clusterrole=cluster-admin",
        "--user=carol",
        "-n",
        "team",
    ]);
    assert!(stderr.contains("not currently held"), "{stderr}");
}

#[test]
fn impersonating_a_group_grants_its_bindings_and_whoami_reports_the_impersonated_identity() {
    require_kubectl!();
    let s = Server::start();
    wait_for_rule(&s, "view", "pods", true);
    s.k(&[
        "create",
        "clusterrolebinding",
        "ops-view",
        "--clusterrole=view",
        "--group=ops",
    ]);
    s.k(&["--as=dan", "--as-group=ops", "get", "pods", "-A"]);
    let stderr = s.k_err(&["--as=dan", "get", "pods", "-A"]);
    assert!(
        stderr.contains(
            "User \"dan\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
        ),
        "{stderr}"
    );
    assert_eq!(
        can_i(
            &s,
            &[
                "--as=dan",
                "--as-group=ops",
                "list",
                "deployments.apps",
                "-A"
            ]
        ),
        "yes"
    );
    assert_eq!(
        can_i(&s, &["--as=dan", "list", "deployments.apps", "-A"]),
        "no"
    );
    let who = s.k(&[
        "auth",
        "whoami",
        "--as=dan",
        "--as-group=ops",
        "-o",
        "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
    ]);
    assert_eq!(who, "dan [\"ops\",\"system:authenticated\"]");
    let uid = s.k(&[
        "auth",
        "whoami",
        "--as=dan",
        "--as-uid=u-1",
        "-o",
        "jsonpath={.status.userInfo.uid}",
    ]);
    assert_eq!(uid, "u-1");
    let who = s.k(&[
        "auth",
        "whoami",
        "--as=system:serviceaccount:default:default",
        "-o",
        "jsonpath={.status.userInfo.groups}",
    ]);
    assert_eq!(
        who,
        "[\"system:serviceaccounts\",\"system:serviceaccounts:default\",\"system:authenticated\"]"
    );
}

#[test]
fn impersonation_needs_the_impersonate_verb() {
    require_kubectl!();
    let s = Server::start();
    wait_for_rule(&s, "view", "pods", true);
    s.k(&["create", "serviceaccount", "proxy"]);
    let token = s.k(&["create", "token", "proxy"]).trim().to_owned();
    let cfg = token_kubeconfig(&s, "proxy", &token);
    let as_proxy = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", cfg.as_str()];
        all.extend_from_slice(args);
        s.kubectl(&all)
    };
    let (ok, _, stderr) = out(&as_proxy(&["--as=ann", "get", "pods"]));
    assert!(!ok);
    assert!(
        stderr.contains("users \"ann\" is forbidden: User \"system:serviceaccount:default:proxy\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{stderr}"
    );
    // Allowed to impersonate ann (only), and ann may view default.
    s.k(&[
        "create",
        "clusterrole",
        "impersonate-ann",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=ann",
    ]);
    s.k(&[
        "create",
        "clusterrolebinding",
        "proxy-impersonates-ann",
        "--clusterrole=impersonate-ann",
        "--serviceaccount=default:proxy",
    ]);
    s.k(&[
        "create",
        "rolebinding",
        "ann-view",
        "--clusterrole=view",
        "--user=ann",
        "-n",
        "default",
    ]);
    let (ok, stdout, stderr) = out(&as_proxy(&["--as=ann", "get", "pods", "-n", "default"]));
    assert!(ok, "{stdout} {stderr}");
    let (ok, stdout, _) = out(&as_proxy(&[
        "auth",
        "whoami",
        "--as=ann",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]));
    assert!(ok);
    assert_eq!(stdout, "ann");
    // Not bob, and not ann with an extra group (groups need their own permission).
    let (ok, _, stderr) = out(&as_proxy(&["--as=bob", "get", "pods"]));
    assert!(
        !ok && stderr.contains("cannot impersonate resource \"users\""),
        "{stderr}"
    );
    let (ok, _, stderr) = out(&as_proxy(&["--as=ann", "--as-group=ops", "get", "pods"]));
    assert!(
        !ok && stderr.contains("groups \"ops\" is forbidden: User \"system:serviceaccount:default:proxy\" cannot impersonate resource \"groups\""),
        "{stderr}"
    );
    // Without impersonation the account itself holds nothing.
    let (ok, _, _) = out(&as_proxy(&["get", "pods", "-n", "default"]));
    assert!(!ok);
    // `edit` (from system:aggregate-to-edit) lets it impersonate service accounts of its
    // namespace only.
    s.k(&[
        "create",
        "rolebinding",
        "proxy-edit",
        "--clusterrole=edit",
        "--serviceaccount=default:proxy",
        "-n",
        "default",
    ]);
    let (ok, stdout, stderr) = out(&as_proxy(&[
        "auth",
        "whoami",
        "--as=system:serviceaccount:default:default",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]));
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "system:serviceaccount:default:default");
    let (ok, _, stderr) = out(&as_proxy(&[
        "get",
        "configmaps",
        "-n",
        "kube-system",
        "--as=system:serviceaccount:kube-system:default",
    ]));
    assert!(
        !ok && stderr.contains("serviceaccounts \"default\" is forbidden: User \"system:serviceaccount:default:proxy\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"kube-system\""),
        "{stderr}"
    );
}
