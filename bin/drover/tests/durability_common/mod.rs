//! What the API-level durability tests (`durability_crash`, `_linearizability`, `_watch`)
//! share: a replayable seed, a small deterministic generator and a kube-rs client.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// `DROVER_SEED` if set, else the clock; printed so a failure can be replayed.
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

/// SplitMix64, for choices a seed reproduces.
pub struct Rng(pub u64);

impl Rng {
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
}

/// A kube-rs client from drover's kubeconfig, connecting within 2 s (the server may be down
/// on purpose) and, if given, giving up on a read after `read_timeout`.
pub async fn client(kubeconfig: &std::path::Path, read_timeout: Option<Duration>) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config from drover's kubeconfig");
    if read_timeout.is_some() {
        config.read_timeout = read_timeout;
    }
    config.connect_timeout = Some(Duration::from_secs(2));
    Client::try_from(config).expect("kube client")
}
