//! Drover's image store and registry client.
//!
//! The model: a [`Store`] is one directory in OCI image-layout form (content-addressed blobs
//! plus an `index.json` of names), and beside it the unpacked layers, one snapshot per layer
//! keyed by chain ID so every image and container sharing a layer prefix shares the files. A
//! runtime mounts an image as overlayfs over [`Store::mount_plan`]'s lower directories.
//!
//! Entry points: [`Store::open`], [`pull::pull`] (registry → store), [`push::push`],
//! [`archive::import`] / [`archive::export`], [`Store::resolve`], [`Store::config`],
//! [`Store::gc`]. Several processes may use one store at once: coordination is by file locks
//! (see `store`), and every step is crash safe (content is verified before it is renamed into
//! place; an image is named only once complete).

pub mod archive;
pub mod auth;
pub mod cli;
mod decompress;
pub mod digest;
mod lock;
pub mod mirrors;
pub mod oci;
mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use oci::{ContainerConfig, ImageConfig, Platform};
pub use pull::{PullOptions, PullPolicy, PullReport};
pub use reference::Reference;
pub use store::{GcReport, ImageRecord, MountPlan, Store, StoreError};

/// An image ID: the digest of its config, as Docker shows it.
pub type ImageId = Digest;

#[cfg(test)]
mod parser_robustness {
    //! Seeded random inputs for every parser of untrusted text (a stable stand-in for cargo
    //! fuzz): none may panic, whatever they return.

    use rand::{Rng, SeedableRng};

    fn random_text(rng: &mut rand::rngs::StdRng) -> String {
        const PIECES: &[&str] = &[
            "a",
            "/",
            ":",
            "@",
            "sha256:",
            ".",
            "-",
            "_",
            "\"",
            "=",
            ",",
            " ",
            "\\",
            "é",
            "☃",
            "localhost",
            "docker.io",
            "Bearer ",
            "realm=",
            "0",
            "f",
            "{",
            "}",
            "[",
            "]",
            "\n",
        ];
        let n = rng.random_range(0..24);
        (0..n)
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect()
    }

    #[test]
    fn parsers_never_panic_on_random_input() {
        let seed: u64 = rand::random();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..20_000 {
            let s = random_text(&mut rng);
            let _ = s
                .parse::<crate::Reference>()
                .map(|r| (r.familiar(), r.api_reference()));
            let _ = s.parse::<crate::Digest>();
            let _ = crate::auth::parse_challenge(&s);
            let _ = crate::mirrors::RegistriesConfig::parse(&s);
            let _ = crate::mirrors::is_loopback_host(&s);
            let _ = crate::mirrors::Endpoint::mirror(&s, &Default::default());
            let _ = crate::oci::classify(Some(&s), s.as_bytes());
            let _ = crate::oci::Platform::parse(&s);
        }
        eprintln!("parser robustness seed {seed}");
    }
}
