//! Helpers for `metadata`: names, timestamps, uids.

use serde_json::{Map, Value};

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// RFC 3339 in UTC with second precision, as Kubernetes writes `metav1.Time`.
pub(crate) fn rfc3339(secs: i64) -> String {
    drover_core::time::format_rfc3339(secs, None).unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

/// Parses the RFC 3339 forms Kubernetes uses; returns seconds since the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    drover_core::time::parse_rfc3339(s).map(|(secs, _)| secs)
}

/// A new random UID.
pub(crate) fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The 5-character random suffix upstream appends to `generateName` (no vowels, no
/// confusable digits).
pub(crate) fn random_suffix() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Checks a DNS-1123 subdomain (most object names); returns upstream's message on failure.
pub(crate) fn check_dns_subdomain(name: &str) -> Option<String> {
    const MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    if name.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    let ok = !name.is_empty() && name.split('.').all(label_chars_ok);
    (!ok).then(|| MSG.to_owned())
}

/// Checks a DNS-1123 label (namespaces, services); returns upstream's message on failure.
pub(crate) fn check_dns_label(name: &str) -> Option<String> {
    const MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    if name.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    (!label_chars_ok(name)).then(|| MSG.to_owned())
}

/// Checks a path-segment name (RBAC and a few other kinds accept anything but `/`, `%`, `.`/`..`).
pub(crate) fn check_path_segment(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            return Some(format!("may not contain '{bad}'"));
        }
    }
    None
}

fn label_chars_ok(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `obj.metadata` as a mutable map, creating it if absent.
pub(crate) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"]
        .as_object_mut()
        .expect("just made an object")
}

/// `obj[key]` as a mutable map, replacing anything that is not an object (callers have
/// type-checked user input; this keeps server-side bookkeeping from ever panicking).
pub(crate) fn object_mut<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let m = obj.as_object_mut().expect("just made an object");
    let v = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("just made an object")
}

/// A string field of `metadata`.
pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for secs in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn names_are_validated_like_upstream() {
        assert_eq!(check_dns_subdomain("web.example-1"), None);
        assert!(check_dns_subdomain("Web").is_some());
        assert!(check_dns_label("a.b").is_some());
        assert!(check_dns_label(&"a".repeat(64)).unwrap().contains("63"));
        assert_eq!(check_path_segment("system:admin"), None);
        assert!(check_path_segment("a/b").is_some());
        assert_eq!(random_suffix().len(), 5);
    }
}
