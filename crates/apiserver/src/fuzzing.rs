//! Entry points for fuzzing the request decoders and the handlers' store-free steps (used by
//! `fuzz/` and the corpus test). Not part of the API.
//!
//! Every entry point takes arbitrary bytes and must never panic; the assertions inside are
//! invariants for a fuzzer to break.

use serde_json::Value;

use crate::handlers::fuzzing as steps;
use crate::negotiate;
use crate::route::{Query, route};

/// Routes `METHOD /path?query` and parses the `Accept`-style header on the next line.
pub fn request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let (method, target) = first.split_once(' ').unwrap_or(("GET", first));
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let query = Query::parse(query);
    if let Ok(method) = http::Method::from_bytes(method.as_bytes()) {
        let _ = route(&method, path, &query);
    }
    for header in lines {
        let _ = negotiate::choose_output(Some(header), true);
        let _ = crate::discovery::form(Some(header));
        let _ = negotiate::parse_media_ranges(header);
    }
}

/// The content type the first byte picks.
fn content_type(kind: u8) -> &'static str {
    match kind % 4 {
        0 => "application/json",
        1 => "application/yaml",
        2 => "application/vnd.kubernetes.protobuf",
        _ => "application/apply-patch+yaml",
    }
}

/// Decodes a request body; the first byte picks the content type. The body is also read as
/// a DELETE's `DeleteOptions`.
pub fn body(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let ct = content_type(kind);
    let _ = negotiate::decode_object(Some(ct), rest);
    steps::delete_options(ct, rest, "");
}

/// Query parameters (`labelSelector`, `fieldSelector`, `limit`, `continue`,
/// `resourceVersion`, `timeoutSeconds`, `dryRun`, `propagationPolicy`, …) of a request for
/// the built-in resource the first byte picks; the rest is the raw query string.
pub fn query(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    steps::query(steps::builtin(pick), &String::from_utf8_lossy(rest));
}

/// A create/update/delete of the built-in resource the first byte picks, with the body
/// (in the content type the second byte picks) as the object: decoding, type checks,
/// conversion, defaults, validation, managed fields, and every response form.
pub fn object(data: &[u8]) {
    let [pick, kind, rest @ ..] = data else {
        return;
    };
    let ct = match content_type(*kind) {
        "application/apply-patch+yaml" => "application/json",
        ct => ct,
    };
    if let Ok(obj) = negotiate::decode_object(Some(ct), rest) {
        steps::write(steps::builtin(*pick), obj);
    }
}

/// JSON `[current, patch]` for the built-in resource the first byte picks (the second byte's
/// low bit is `force`): merge, strategic merge with the kind's schema, server-side apply
/// (with `current`'s `managedFields`), or JSON patch if `patch` is a list; then the update.
pub fn patch(data: &[u8]) {
    let [pick, force, rest @ ..] = data else {
        return;
    };
    let Ok(Value::Array(pair)) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    if let [current, patch] = pair.as_slice() {
        steps::patch(steps::builtin(*pick), force & 1 == 1, current, patch);
    }
}

/// JSON `[crd, object…]`: a CustomResourceDefinition's admission; if valid, the objects
/// written as each resource it serves (schema pruning, defaulting and validation, printer
/// columns, scale, selectable fields) and the first patched with the second.
pub fn crd(data: &[u8]) {
    let Ok(Value::Array(mut items)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if items.is_empty() {
        return;
    }
    let crd = items.remove(0);
    steps::crd(crd, &items);
}

/// A bearer token; if the input is JSON, it is also taken as claims, signed and verified.
pub fn token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let claims = serde_json::from_slice::<Value>(data).ok();
    steps::token(&text, claims.as_ref());
}
