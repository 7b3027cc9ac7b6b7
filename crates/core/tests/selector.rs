//! Label and field selectors, against upstream `k8s.io/apimachinery` behaviour.

use drover_core::selector::{
    FieldOperator, FieldSelector, Operator, Requirement, Selector, SelectorError,
};
use serde_json::{Value, json};

fn parse_err(s: &str) -> String {
    Selector::parse(s).expect_err(s).to_string()
}

#[test]
fn label_selector_prints_the_canonical_form_upstream_prints() {
    let cases = [
        ("", ""),
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("z=c,x=a", "x=a,z=c"),
        ("x==a", "x==a"),
        ("x!=a,y=b", "x!=a,y=b"),
        ("x=,z= ", "x=,z="),
        ("x= ,z= ", "x=,z="),
        ("  x  in  ( b , a )  ", "x in (a,b)"),
        ("x in (a,a,b)", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        ("x in ()", "x in ()"),
        ("x in (,a)", "x in (,a)"),
        ("x in (a,,b)", "x in (,a,b)"),
        ("!x", "!x"),
        ("x", "x"),
        ("x>1", "x>1"),
        ("x<1", "x<1"),
        ("notin=in", "notin=in"),
        ("in in (notin)", "in in (notin)"),
        ("a\tin\n(b)", "a in (b)"),
        ("example.com/a=b,a.b-c_d=e.f", "a.b-c_d=e.f,example.com/a=b"),
    ];
    for (input, want) in cases {
        let sel = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), want, "{input:?}");
        assert_eq!(
            Selector::parse(want).unwrap(),
            sel,
            "{want:?} re-parses equal"
        );
    }
}

#[test]
fn label_selector_syntax_errors_use_upstream_wording() {
    let cases = [
        ("x=a=b", "found '=', expected: ',' or 'end of string'"),
        ("x=a b", "found 'b', expected: ',' or 'end of string'"),
        (
            "x in a",
            "unable to parse requirement: found 'a' expected: '('",
        ),
        (
            "x in (a",
            "unable to parse requirement: found '', expected: ',' or ')'",
        ),
        (
            "x in (a b)",
            "unable to parse requirement: found 'b', expected: ',' or ')'",
        ),
        (
            "x in",
            "unable to parse requirement: found '' expected: '('",
        ),
        (
            "x y",
            "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt",
        ),
        ("x=a,", "found '', expected: identifier after ','"),
        (
            ",x=a",
            "found ',', expected: !, identifier, or 'end of string'",
        ),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        (
            "x=(a)",
            "unable to parse requirement: found '(', expected: identifier",
        ),
        (
            "x!==a",
            "unable to parse requirement: found '=', expected: identifier",
        ),
        (
            "x in (=)",
            "unable to parse requirement: found '=', expected: ',', ')' or identifier",
        ),
        (
            "x in (a,=)",
            "unable to parse requirement: found '=', expected: ',', or identifier",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_err(input), want, "{input:?}");
    }
}

#[test]
fn label_selector_validation_errors_match_what_kubectl_users_see() {
    assert_eq!(
        parse_err("app:monolith"),
        "unable to parse requirement: <nil>: Invalid value: \"app:monolith\": name part must consist of \
         alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character \
         (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
         '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
    assert!(
        parse_err("app.kubernetes_io/name=x").starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": prefix part \
             a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
             and must start and end with an alphanumeric character (e.g. 'example.com', regex used for \
             validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    );
    assert!(parse_err("a/b/c=d").contains(
        "Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters"
    ));
    assert!(parse_err("/a=b").contains("prefix part must be non-empty"));
    let long_key = "k".repeat(64);
    assert!(parse_err(&long_key).contains("name part must be no more than 63 characters"));
    let long_value = format!("a={}", "v".repeat(64));
    assert_eq!(
        parse_err(&long_value),
        format!(
            "unable to parse requirement: values[0][a]: Invalid value: \"{}\": must be no more than 63 characters",
            "v".repeat(64)
        )
    );
    assert!(parse_err("a=-b").starts_with(
        "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty \
         string or consist of alphanumeric characters"
    ));
    // Negative numbers are not valid label values, so `x<-1` cannot be written.
    assert!(
        parse_err("x<-1")
            .starts_with("unable to parse requirement: values[0][x]: Invalid value: \"-1\"")
    );
    assert_eq!(
        parse_err("a>b"),
        "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    // Two problems aggregate like upstream's utilerrors.Aggregate.
    assert!(parse_err("a in (-x,-y)").starts_with("unable to parse requirement: [values[0][a]: "));
}

#[test]
fn label_selector_matches_like_upstream() {
    let matching = [
        ("", json!({"x": "y"})),
        ("x=y", json!({"x": "y"})),
        ("x==y", json!({"x": "y"})),
        ("x=y,z=w", json!({"x": "y", "z": "w"})),
        ("x!=y,z!=w", json!({"x": "z", "z": "a"})),
        ("x!=y", json!({})),
        ("notin=in", json!({"notin": "in"})),
        ("x", json!({"x": "z"})),
        ("!x", json!({"y": "z"})),
        ("x>1", json!({"x": "2"})),
        ("x<1", json!({"x": "0"})),
        ("x<1", json!({"x": "-5"})),
        ("x in (a,b)", json!({"x": "b"})),
        ("x notin (a,b)", json!({"x": "c"})),
        ("x notin (a,b)", json!({})),
        ("x=", json!({"x": ""})),
    ];
    for (sel, labels) in matching {
        assert!(
            Selector::parse(sel).unwrap().matches(&labels),
            "{sel:?} should match {labels}"
        );
    }
    let not_matching = [
        ("x=z", json!({})),
        ("x=y", json!({"x": "z"})),
        ("x=y,z=w", json!({"x": "w", "z": "w"})),
        ("x!=y,z!=w", json!({"x": "z", "z": "w"})),
        ("x", json!({"y": "z"})),
        ("!x", json!({"x": "z"})),
        ("x>1", json!({"x": "0"})),
        ("x>1", json!({"x": "a"})),
        ("x>1", json!({})),
        ("x<1", json!({"x": "2"})),
        ("x in (a,b)", json!({"x": "c"})),
        ("x in (a,b)", json!({})),
        ("x notin (a,b)", json!({"x": "a"})),
        ("x=", json!({})),
    ];
    for (sel, labels) in not_matching {
        assert!(
            !Selector::parse(sel).unwrap().matches(&labels),
            "{sel:?} should not match {labels}"
        );
    }
}

#[test]
fn label_selector_matches_any_label_source() {
    let sel = Selector::parse("app=web,!canary").unwrap();
    let map: std::collections::BTreeMap<String, String> =
        [("app".to_string(), "web".to_string())].into();
    assert!(sel.matches(&map));
    assert!(sel.matches(&[("app", "web")][..]));
    assert!(!sel.matches(&[("app", "web"), ("canary", "true")][..]));
    // A missing labels field (null) is "no labels".
    let pod = json!({"metadata": {"name": "p"}});
    assert!(!sel.matches(&pod["metadata"]["labels"]));
    assert!(Selector::everything().matches(&pod["metadata"]["labels"]));
}

#[test]
fn label_selector_exact_match_narrows_lookups() {
    let sel = Selector::parse("a=1,b in (2),c in (3,4),d!=5").unwrap();
    assert_eq!(sel.requires_exact_match("a"), Some("1"));
    assert_eq!(sel.requires_exact_match("b"), Some("2"));
    assert_eq!(sel.requires_exact_match("c"), None);
    assert_eq!(sel.requires_exact_match("d"), None);
}

#[test]
fn structured_label_selector_converts_like_label_selector_as_selector() {
    let sel = Selector::from_label_selector(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["cache"]},
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"}
        ]
    }))
    .unwrap();
    assert_eq!(
        sel.to_string(),
        "app=web,!canary,env in (dev,prod),team,tier notin (cache)"
    );
    assert!(sel.matches(&json!({"app": "web", "env": "dev", "team": "a"})));
    assert!(!sel.matches(&json!({"app": "web", "env": "dev"})));

    assert!(
        Selector::from_label_selector(&json!({}))
            .unwrap()
            .is_empty()
    );
    assert!(
        Selector::from_label_selector(&json!({}))
            .unwrap()
            .matches(&json!({"a": "b"}))
    );
    let nothing = Selector::from_label_selector(&Value::Null).unwrap();
    assert!(!nothing.matches(&json!({})));
}

#[test]
fn structured_label_selector_rejects_what_upstream_rejects() {
    let err = |v: Value| Selector::from_label_selector(&v).unwrap_err().to_string();
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})),
        "\"Gt\" is not a valid label selector operator"
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
        "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
        "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
    );
    assert!(
        err(json!({"matchLabels": {"bad key": "v"}}))
            .starts_with("key: Invalid value: \"bad key\": name part")
    );
    assert!(
        err(json!({"matchLabels": {"a": "bad value"}}))
            .starts_with("values[0][a]: Invalid value: \"bad value\"")
    );
    assert!(matches!(
        Selector::from_label_selector(&json!({"matchLabels": ["a"]})),
        Err(SelectorError::MalformedLabelSelector { .. })
    ));
}

#[test]
fn requirements_can_be_built_in_code() {
    let sel = Selector::everything()
        .and(Requirement::new("b", Operator::Exists, vec![]).unwrap())
        .and(Requirement::new("a", Operator::In, vec!["y".into(), "x".into()]).unwrap());
    assert_eq!(sel.to_string(), "a in (x,y),b");
    assert!(Requirement::new("a", Operator::GreaterThan, vec!["x".into()]).is_err());
    let from_set = Selector::from_labels([("app", "web"), ("tier", "fe")]).unwrap();
    assert_eq!(from_set.to_string(), "app=web,tier=fe");
}

#[test]
fn field_selector_parses_and_prints_like_upstream() {
    let cases = [
        ("", ""),
        ("a=b", "a=b"),
        ("a==b", "a=b"),
        ("name=foo,kind=Pod", "kind=Pod,name=foo"),
        ("x!=a,y=b", "x!=a,y=b"),
        ("a=", "a="),
        ("a=b,,c=d", "a=b,c=d"),
        ("a=\\,\\=\\\\", "a=\\,\\=\\\\"),
        ("a=!b", "a=!b"),
    ];
    for (input, want) in cases {
        let sel = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), want, "{input:?}");
    }
    let sel = FieldSelector::parse("a=\\,\\=\\\\").unwrap();
    assert_eq!(sel.requirements()[0].value, ",=\\");
    let sel = FieldSelector::parse("status.phase!=Running").unwrap();
    assert_eq!(sel.requirements()[0].operator, FieldOperator::NotEquals);
}

#[test]
fn field_selector_errors_use_upstream_wording() {
    let err = |s: &str| FieldSelector::parse(s).unwrap_err().to_string();
    assert_eq!(err("a"), "invalid selector: 'a'; can't understand 'a'");
    assert_eq!(
        err("a=b,c"),
        "invalid selector: 'a=b,c'; can't understand 'c'"
    );
    assert_eq!(
        err("a=b=c"),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        err("a=b\\x"),
        "invalid field selector: invalid escape sequence: \\x"
    );
    assert_eq!(
        err("a=b\\"),
        "invalid field selector: invalid escape sequence: \\"
    );
}

#[test]
fn field_selector_matches_with_missing_fields_as_empty() {
    let sel = FieldSelector::parse("metadata.name=web,status.phase!=Failed").unwrap();
    let pod = |name: &'static str, phase: Option<&'static str>| {
        move |path: &str| match path {
            "metadata.name" => Some(name.to_string()),
            "status.phase" => phase.map(str::to_string),
            _ => None,
        }
    };
    assert!(sel.matches(pod("web", Some("Running"))));
    assert!(sel.matches(pod("web", None)));
    assert!(!sel.matches(pod("web", Some("Failed"))));
    assert!(!sel.matches(pod("db", Some("Running"))));
    assert!(
        FieldSelector::parse("spec.nodeName=")
            .unwrap()
            .matches(|_| None::<&str>)
    );
    assert!(FieldSelector::everything().matches(|_| None::<&str>));
}

#[test]
fn field_selector_reports_unsupported_fields_and_exact_names() {
    let sel = FieldSelector::parse("metadata.name=web, spec.nodeName=n1").unwrap();
    assert_eq!(
        sel.fields().collect::<Vec<_>>(),
        [" spec.nodeName", "metadata.name"]
    );
    let supported = |f: &str| matches!(f, "metadata.name" | "metadata.namespace" | "spec.nodeName");
    assert_eq!(
        sel.check_supported(supported).unwrap_err().to_string(),
        "field label not supported:  spec.nodeName"
    );
    assert_eq!(sel.exact_name(), Some("web"));
    assert_eq!(
        FieldSelector::parse("metadata.name!=web")
            .unwrap()
            .exact_name(),
        None
    );
    assert_eq!(
        FieldSelector::parse("metadata.namespace==ns")
            .unwrap()
            .requires_exact_match("metadata.namespace"),
        Some("ns")
    );
}
