//! Test support for Drover: real OCI images without internet, and a real registry on loopback
//! inside a network namespace the test owns.
//!
//! * [`fixtures`] — the catalogue: stand-ins with the seed's image names (`nginx:1.27-alpine`,
//!   `ghcr.io/myorg/web:v1.4.2`, `redis:7-alpine`, `postgres:16-alpine`, `busybox`) built from
//!   busybox-static and Debian's binaries, plus special images for the image store (whiteouts,
//!   a multi-arch index, a config with every field). [`fixtures::Fixture::write_layout`] writes
//!   one as an OCI image layout.
//! * [`layer`] and [`layout`] — the deterministic tar/gzip layer builder and the layout writer
//!   underneath (fixed mtimes, sorted entries, root owner, digests computed here).
//! * [`unpack`] — applies a layout's layers to a directory (whiteouts included), for tests
//!   that `chroot` into an image before a runtime exists.
//! * [`chroot`] — runs an unpacked image's command in a chroot inside a test network namespace
//!   (fresh PID, mount and UTS namespaces), to check a fixture behaves without a runtime.
//! * [`Registry`] — Debian's `docker-registry` on `127.0.0.1` inside a fresh network namespace
//!   ([`NetNs`]), with `command()` to run clients in there and `push_fixture()`; everything is
//!   removed on drop.
//!
//! The `drover-fixtures` binary exposes `build`, `build-all` and `push` (see
//! `docs/test-images.md`).

use std::path::{Path, PathBuf};

pub mod chroot;
pub mod fixtures;
pub mod layer;
pub mod layout;
mod netns;
mod registry;
pub mod rootfs;
mod tls;
mod token;
pub mod unpack;

pub use netns::NETNS_PREFIX;
pub use netns::NetNs;
pub use registry::{
    Access, NETNS_PORT, NETNS_TOKEN_PORT, Pushed, Registry, RegistryOptions, skopeo_copy,
};

/// Why building a fixture image failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A path given to the layer builder cannot be stored.
    #[error("layer path {path:?}: {reason}")]
    BadPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A host file the image is made of is missing or unreadable.
    #[error("cannot read host file {path}: {source}")]
    HostFile {
        /// The host path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A host file the image needs does not exist.
    #[error("host file {path} is missing: {hint}")]
    MissingHostFile {
        /// The host path.
        path: PathBuf,
        /// What to install.
        hint: &'static str,
    },
    /// Writing the layout failed.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The path written.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The output directory already has files in it.
    #[error("output directory {0} is not empty; give a new or empty directory")]
    OutNotEmpty(PathBuf),
    /// Writing the tar stream or the gzip stream failed.
    #[error("cannot write layer tarball: {0}")]
    Tar(std::io::Error),
    /// A helper program (`ldd`, `busybox --list`) failed.
    #[error("{program} failed: {detail}")]
    Command {
        /// The program.
        program: String,
        /// Its error output.
        detail: String,
    },
    /// No fixture has that name.
    #[error("no fixture image named {name:?}; known: {known}")]
    UnknownFixture {
        /// The name asked for.
        name: String,
        /// The known references, comma-separated.
        known: String,
    },
    /// The image description contradicts itself (a programming error in a fixture).
    #[error("inconsistent image: {0}")]
    Inconsistent(String),
    /// A layout being read is malformed.
    #[error("layout {path}: {reason}")]
    BadLayout {
        /// The layout directory or blob.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl BuildError {
    pub(crate) fn host(path: &Path, source: std::io::Error) -> Self {
        Self::HostFile {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn out(path: &Path, source: std::io::Error) -> Self {
        Self::Output {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn command(program: &str, detail: String) -> Self {
        Self::Command {
            program: program.to_string(),
            detail,
        }
    }
}

/// Why the registry harness or a network namespace failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A program the harness runs is not installed.
    #[error("{program} is not installed ({hint})")]
    MissingPeer {
        /// The program.
        program: String,
        /// What to install.
        hint: &'static str,
    },
    /// A command the harness ran failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status and error output.
        detail: String,
    },
    /// A file or directory of the harness could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The registry did not answer `GET /v2/` in time.
    #[error("registry at {addr} did not answer GET /v2/ within {secs}s; its log:\n{log}")]
    NotReady {
        /// host:port.
        addr: String,
        /// How long the harness waited.
        secs: u64,
        /// The registry's log.
        log: String,
    },
    /// Making the test registry's certificates failed.
    #[error("cannot make test certificates: {0}")]
    Certificate(String),
    /// Building a fixture to push failed.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Whether a peer program can be found on `PATH` (or as an absolute path).
pub fn have_program(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// For tests that need peers: `Ok(())` when every program exists (and, with `root`, this
/// process is root). Otherwise prints the reason and returns `Err` so the test can return early
/// (skip) — unless `DROVER_REQUIRE_PEERS=1`, in which case it panics.
pub fn require_peers(test: &str, programs: &[&str], root: bool) -> Result<(), String> {
    let missing: Vec<_> = programs.iter().filter(|p| !have_program(p)).collect();
    if missing.is_empty() && (!root || is_root()) {
        return Ok(());
    }
    let reason = if missing.is_empty() {
        "it needs root (network namespaces, chroot)".to_string()
    } else {
        format!("missing peer programs {missing:?}")
    };
    if std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{test}: {reason} and DROVER_REQUIRE_PEERS=1");
    }
    eprintln!("skipping {test}: {reason}");
    Err(reason)
}

/// Whether this process runs as root (`/proc/self/status` Uid line).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_or_by_absolute_path_and_missing_ones_are_not() {
        assert!(have_program("sh"));
        assert!(have_program("/bin/sh"));
        assert!(!have_program("drover-no-such-program"));
        assert!(!have_program("/nonexistent/drover-no-such-program"));
    }
}
