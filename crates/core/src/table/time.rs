//! Timestamps and the human durations kubectl shows in AGE-like columns.
//!
//! Upstream formats every age with `duration.HumanDuration` from k8s.io/apimachinery
//! (`pkg/util/duration`); [`human_duration`] reproduces its cut-over points exactly.

/// Microseconds per second.
const MICROS: i64 = 1_000_000;

/// Seconds from 0001-01-01T00:00:00Z (Go's zero `time.Time`) to the Unix epoch.
const GO_ZERO_UNIX_SECS: i64 = -62_135_596_800;

/// A succinct, human-readable duration with ~2–3 significant figures, exactly like upstream's
/// `duration.HumanDuration`: `45s`, `119s`, `3m2s`, `10m`, `179m`, `3h`, `7h59m`, `47h`, `2d3h`,
/// `7d23h`, `95d`, `729d`, `2y5d`, `8y`.
///
/// `seconds` is the elapsed time truncated toward zero. A skew of one second into the future
/// prints `0s` (upstream tolerates small clock drift); more than that prints `<invalid>`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        let d = hours / 24;
        return if h == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let years = hours / 24 / 365;
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{days}d")
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Parses an RFC 3339 timestamp (`2024-05-01T10:00:00Z`, with optional fraction and offset)
/// into microseconds since the Unix epoch. Returns `None` for anything else, and for Go's zero
/// time (`0001-01-01T00:00:00Z`), which upstream prints as `<unknown>`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    // Upstream's printers also meet `2024-05-01 10:00:00Z`.
    let spaced = s.as_bytes().get(10) == Some(&b' ');
    let normalized = match (spaced, s.get(..10), s.get(11..)) {
        (true, Some(date), Some(time)) => format!("{date}T{time}"),
        _ => s.to_owned(),
    };
    let (secs, nanos) = crate::time::parse_rfc3339(&normalized)?;
    let micros = i64::from(nanos / 1000);
    if secs == GO_ZERO_UNIX_SECS && micros == 0 {
        return None;
    }
    Some(secs * MICROS + micros)
}

/// Formats Unix seconds as RFC 3339 in UTC (`2024-05-01T10:00:00Z`), as Go's
/// `t.UTC().Format(time.RFC3339)` does.
pub(crate) fn format_rfc3339(unix_secs: i64) -> String {
    crate::time::format_rfc3339(unix_secs, None).unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

/// Go's zero time in RFC 3339, what upstream prints for a missing creation timestamp.
pub(crate) fn go_zero_rfc3339() -> String {
    format_rfc3339(GO_ZERO_UNIX_SECS)
}

/// Whole seconds from `from_micros` to `to_micros`, truncated toward zero like Go's
/// `int(d.Seconds())`.
pub(crate) fn seconds_between(from_micros: i64, to_micros: i64) -> i64 {
    (to_micros - from_micros) / MICROS
}

/// Upstream's `translateTimestampSince`: the human age of `ts` at `now` (Unix seconds), or
/// `<unknown>` when the timestamp is missing or zero.
pub(crate) fn since(ts: Option<&serde_json::Value>, now: i64) -> String {
    match ts
        .and_then(serde_json::Value::as_str)
        .and_then(parse_rfc3339)
    {
        Some(t) => human_duration(seconds_between(t, now * MICROS)),
        None => "<unknown>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_unix_seconds() {
        for secs in [0, 1_714_557_600, 951_782_400, -86_400, 4_102_444_800] {
            let s = format_rfc3339(secs);
            assert_eq!(parse_rfc3339(&s), Some(secs * MICROS), "{s}");
        }
        assert_eq!(format_rfc3339(1_714_557_600), "2024-05-01T10:00:00Z");
    }

    #[test]
    fn rfc3339_accepts_fractions_and_offsets() {
        let base = parse_rfc3339("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(
            parse_rfc3339("2024-05-01T10:00:00.250000Z"),
            Some(base + 250_000)
        );
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00+02:00"), Some(base));
        assert_eq!(
            parse_rfc3339("2024-05-01T10:00:00.5-00:30"),
            Some(base + 1_800 * MICROS + 500_000)
        );
        assert_eq!(parse_rfc3339("2024-05-01 10:00:00"), None);
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z"),
            None,
            "Go's zero time is unknown"
        );
        assert_eq!(go_zero_rfc3339(), "0001-01-01T00:00:00Z");
    }
}
