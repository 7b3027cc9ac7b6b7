//! Entry points for fuzzing the request decoders (used by `fuzz/` and the corpus test). Not
//! part of the API.

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

/// Decodes a request body; the first byte picks the content type.
pub fn body(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let ct = match kind % 4 {
        0 => "application/json",
        1 => "application/yaml",
        2 => "application/vnd.kubernetes.protobuf",
        _ => "application/apply-patch+yaml",
    };
    let _ = negotiate::decode_object(Some(ct), rest);
}
