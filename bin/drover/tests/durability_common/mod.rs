//! What the API-level durability tests (`durability_crash`, `_linearizability`, `_watch`)
//! share: a replayable seed, a small deterministic generator and a kube-rs client.
#![allow(dead_code, unreachable_pub)]

#[path = "../../../../crates/durability/src/replay.rs"]
mod replay;
pub use replay::{Rng, seed};

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

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
