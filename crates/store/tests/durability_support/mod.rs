//! Shared pieces of the store-level durability tests: seeds, a small deterministic random
//! generator, self-checking values and the run bounds (CI vs `DROVER_SOAK=1`).

#![allow(dead_code, unreachable_pub)]

pub use drover_durability::replay::{Rng, seed};

/// Whether the long versions run (`DROVER_SOAK=1`).
pub fn soak() -> bool {
    std::env::var("DROVER_SOAK").as_deref() == Ok("1")
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A value that names its key and sequence number, padded to a varying length, with a
/// checksum, so a half-written or mixed-up value cannot pass [`parse_value`].
pub fn make_value(key: &str, seq: u64) -> Vec<u8> {
    let pad = "x".repeat(50 + (seq % 200) as usize);
    let body = format!("{key}|{seq}|{pad}");
    format!("{body}|{:016x}", fnv(body.as_bytes())).into_bytes()
}

/// The sequence number of a value made by [`make_value`] for `key`, or why it is not one.
pub fn parse_value(key: &str, value: &[u8]) -> Result<u64, String> {
    let text =
        std::str::from_utf8(value).map_err(|e| format!("value of {key} is not utf-8: {e}"))?;
    let (body, sum) = text
        .rsplit_once('|')
        .ok_or_else(|| format!("value of {key} has no checksum: {text:?}"))?;
    if format!("{:016x}", fnv(body.as_bytes())) != sum {
        return Err(format!(
            "value of {key} fails its checksum (half-written?): {text:?}"
        ));
    }
    let mut parts = body.splitn(3, '|');
    let (k, seq) = (parts.next(), parts.next());
    if k != Some(key) {
        return Err(format!("value of {key} names another key: {text:?}"));
    }
    seq.and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("value of {key} has no sequence number: {text:?}"))
}
