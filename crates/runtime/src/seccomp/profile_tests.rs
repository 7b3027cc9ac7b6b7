//! Our default-profile table against Debian's `seccomp.json`, with negative controls.

use serde_json::{Value, json};

use super::profile::{ARCH_MAP, Act, Op, ProfileRule, RULES};

const DEBIAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// Our table as the JSON the file would hold (minus comments), for comparison.
fn ours_as_json(rules: &[ProfileRule]) -> Value {
    let cond = |c: &super::profile::Cond| {
        let mut m = serde_json::Map::new();
        if !c.caps.is_empty() {
            m.insert("caps".into(), json!(c.caps));
        }
        if !c.arches.is_empty() {
            m.insert("arches".into(), json!(c.arches));
        }
        Value::Object(m)
    };
    let errno_name = |e: u32| match e {
        1 => "EPERM",
        22 => "EINVAL",
        38 => "ENOSYS",
        _ => "?",
    };
    let syscalls: Vec<Value> = rules
        .iter()
        .map(|r| {
            let mut v = json!({
                "names": r.names,
                "action": if r.action == Act::Allow { "SCMP_ACT_ALLOW" } else { "SCMP_ACT_ERRNO" },
                "args": r.args.iter().map(|a| json!({"index": a.index, "value": a.value, "valueTwo": 0,
                    "op": if a.op == Op::Eq { "SCMP_CMP_EQ" } else { "SCMP_CMP_NE" }})).collect::<Vec<_>>(),
                "includes": cond(&r.includes),
                "excludes": cond(&r.excludes),
            });
            if let Act::Errno(e) = r.action {
                v["errnoRet"] = json!(e);
                v["errno"] = json!(errno_name(e));
            }
            v
        })
        .collect();
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": super::profile::DEFAULT_ERRNO,
        "defaultErrno": "ENOSYS",
        "archMap": ARCH_MAP.iter().map(|(a, s)| json!({"architecture": a, "subArchitectures": s})).collect::<Vec<_>>(),
        "syscalls": syscalls,
    })
}

/// The file with what carries no meaning normalised: empty comments dropped, `"args": null`
/// as `[]`. Any other key stays, so a condition we do not model (`minKernel`) shows up.
fn normalise_file(mut v: Value) -> Value {
    for sc in v["syscalls"].as_array_mut().expect("syscalls array") {
        let o = sc.as_object_mut().expect("rule object");
        if o.get("comment").is_some_and(|c| c == "") {
            o.remove("comment");
        }
        if o.get("args").is_none_or(Value::is_null) {
            o.insert("args".into(), json!([]));
        }
        for k in ["includes", "excludes"] {
            o.entry(k).or_insert_with(|| json!({}));
        }
    }
    v
}

/// The first difference between our table and the file, rule by rule.
fn compare_with_file(rules: &[ProfileRule], file: &Value) -> Result<(), String> {
    let ours = ours_as_json(rules);
    let theirs = normalise_file(file.clone());
    for k in [
        "defaultAction",
        "defaultErrnoRet",
        "defaultErrno",
        "archMap",
    ] {
        if ours[k] != theirs[k] {
            return Err(format!("{k}: ours {} file {}", ours[k], theirs[k]));
        }
    }
    let (a, b) = (
        ours["syscalls"].as_array().unwrap(),
        theirs["syscalls"].as_array().unwrap(),
    );
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            return Err(format!("syscalls[{i}]: ours {x} file {y}"));
        }
    }
    if a.len() != b.len() {
        return Err(format!("ours has {} rules, the file {}", a.len(), b.len()));
    }
    let keys: Vec<&String> = theirs
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| ours.get(k.as_str()).is_none())
        .collect();
    if !keys.is_empty() {
        return Err(format!(
            "the file has top-level keys we do not model: {keys:?}"
        ));
    }
    Ok(())
}

fn debian_profile() -> Option<Value> {
    match std::fs::read_to_string(DEBIAN_PROFILE) {
        Ok(text) => Some(serde_json::from_str(&text).expect("the Debian profile is JSON")),
        Err(e) => {
            assert!(
                std::env::var("DROVER_REQUIRE_PEERS").as_deref() != Ok("1"),
                "{DEBIAN_PROFILE}: {e} (install golang-github-containers-common)"
            );
            eprintln!(
                "skipped: {DEBIAN_PROFILE} is missing ({e}); install golang-github-containers-common"
            );
            None
        }
    }
}

#[test]
fn default_profile_rules_equal_debians_containers_common_seccomp_json() {
    let Some(file) = debian_profile() else { return };
    compare_with_file(RULES, &file).unwrap();
}

#[test]
fn the_profile_comparison_catches_altered_rules() {
    let Some(file) = debian_profile() else { return };
    // Negative controls: one name dropped, one errno changed, one condition removed.
    let mut dropped = RULES.to_vec();
    dropped[1].names = &dropped[1].names[1..];
    assert!(
        compare_with_file(&dropped, &file)
            .unwrap_err()
            .contains("syscalls[1]")
    );
    let mut errno = RULES.to_vec();
    errno[0].action = Act::Errno(13);
    assert!(
        compare_with_file(&errno, &file)
            .unwrap_err()
            .contains("syscalls[0]")
    );
    let mut cond = RULES.to_vec();
    let i = cond
        .iter()
        .position(|r| !r.excludes.caps.is_empty())
        .unwrap();
    cond[i].excludes.caps = &[];
    assert!(
        compare_with_file(&cond, &file)
            .unwrap_err()
            .contains(&format!("syscalls[{i}]"))
    );
    let mut shorter = RULES.to_vec();
    shorter.pop();
    assert!(
        compare_with_file(&shorter, &file)
            .unwrap_err()
            .contains("rules")
    );
    // A condition kind we do not model must not pass unnoticed either.
    let mut extra = file.clone();
    extra["syscalls"][3]["includes"]["minKernel"] = json!("4.8");
    assert!(
        compare_with_file(RULES, &extra)
            .unwrap_err()
            .contains("syscalls[3]")
    );
}
