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
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &frac[..digits.min(6)];
        micros = kept.parse::<i64>().ok()? * 10_i64.pow(6 - kept.len() as u32);
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' {
                return None;
            }
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    if secs == GO_ZERO_UNIX_SECS && micros == 0 {
        return None;
    }
    Some(secs * MICROS + micros)
}

/// Formats Unix seconds as RFC 3339 in UTC (`2024-05-01T10:00:00Z`), as Go's
/// `t.UTC().Format(time.RFC3339)` does.
pub(crate) fn format_rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
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

/// Days since the Unix epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
