//! Latency samples and their summary, shared by the bench binaries.

use std::time::Duration;

/// Latencies of one measured phase.
#[derive(Default)]
pub(crate) struct Samples {
    values: Vec<Duration>,
}

impl Samples {
    pub(crate) fn with_capacity(n: usize) -> Samples {
        Samples {
            values: Vec::with_capacity(n),
        }
    }

    pub(crate) fn push(&mut self, d: Duration) {
        self.values.push(d);
    }

    pub(crate) fn extend(&mut self, other: Samples) {
        self.values.extend(other.values);
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The `q`-quantile (0.0..=1.0) in milliseconds, nearest-rank; 0 when empty.
    pub(crate) fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.values.is_empty() {
            return 0.0;
        }
        self.values.sort_unstable();
        let rank = ((q * self.values.len() as f64).ceil() as usize).clamp(1, self.values.len());
        self.values[rank - 1].as_secs_f64() * 1e3
    }

    /// One JSON object: count, p50, p90, p99, p99.9, max (milliseconds).
    pub(crate) fn summary(&mut self) -> serde_json::Value {
        serde_json::json!({
            "n": self.len(),
            "p50_ms": round3(self.quantile_ms(0.50)),
            "p90_ms": round3(self.quantile_ms(0.90)),
            "p99_ms": round3(self.quantile_ms(0.99)),
            "p999_ms": round3(self.quantile_ms(0.999)),
            "max_ms": round3(self.quantile_ms(1.0)),
        })
    }
}

/// Rounds to three decimals so the JSON lines stay readable.
pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut s = Samples::default();
        for ms in 1..=100 {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.quantile_ms(0.5), 50.0);
        assert_eq!(s.quantile_ms(0.99), 99.0);
        assert_eq!(s.quantile_ms(1.0), 100.0);
    }
}
