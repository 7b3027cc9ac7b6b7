//! Replayable randomness for the durability tests: the run's seed (printed, and taken from
//! `DROVER_SEED` to replay a failure) and a small deterministic generator. Pure, without
//! dependencies, so the API-level tests in `bin/drover/tests` include it by path.

use std::time::{SystemTime, UNIX_EPOCH};

/// The run's seed: `DROVER_SEED` if set (to replay a failure), otherwise from the clock.
/// Printed, so a failing run names the seed that reproduces its choices.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("DROVER_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("DROVER_SEED={s:?} is not an unsigned integer")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    eprintln!("{test}: seed {seed} (replay with DROVER_SEED={seed})");
    seed
}

/// SplitMix64: small, deterministic for a seed, good enough to pick keys and delays.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose every choice follows from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits (an endless sequence, so not an `Iterator`).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    /// A child generator for a task.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}
