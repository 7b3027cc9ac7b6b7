//! The catalogue of fixture images: stand-ins with the seed's image names, and the special
//! images the image store's tests need. Every image starts with the same busybox base layer.

use std::path::{Path, PathBuf};

use crate::BuildError;
use crate::layer::LayerBuilder;
use crate::layout::{Content, Image, ImageConfig, LayoutWriter, Platform, Written};
use crate::rootfs;

mod distroless;
mod servers;
mod store;
mod web;

pub use servers::PG_MAJOR;
pub use store::{LAYERS_ABSENT, LAYERS_PRESENT};

/// `PATH` of every fixture image (the official images' value).
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `/etc/passwd` of the base layer.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
www-data:x:33:33:www-data:/var/www:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

/// `/etc/group` of the base layer: `www-data` is also in `adm` (4) and `users` (100), so a
/// runtime resolving `-u www-data` must report groups 33, 4 and 100.
pub const GROUP: &str = "root:x:0:\n\
adm:x:4:www-data\n\
www-data:x:33:\n\
users:x:100:www-data\n\
nogroup:x:65534:\n";

/// A fixture image: its reference (as the seed writes it) and how to build it.
#[derive(Debug)]
pub struct Fixture {
    /// The image reference as a manifest names it, e.g. `nginx:1.27-alpine`.
    pub reference: &'static str,
    /// Repository path inside a registry (mirror), e.g. `library/nginx` or `myorg/web`.
    pub repository: &'static str,
    /// The tag.
    pub tag: &'static str,
    /// One line on what the stand-in is.
    pub summary: &'static str,
    /// Host files the image is made of besides busybox (absolute paths).
    pub host_files: &'static [&'static str],
    build: fn() -> Result<Content, BuildError>,
}

/// Every fixture, in build order.
pub fn all() -> &'static [Fixture] {
    FIXTURES
}

/// Every host program the fixtures are made of: `busybox` plus each fixture's host files.
/// Tests pass this to [`crate::require_peers`] before building them all.
pub fn host_programs() -> Vec<&'static str> {
    let mut programs = vec!["busybox"];
    for f in FIXTURES {
        for p in f.host_files {
            if !programs.contains(p) {
                programs.push(p);
            }
        }
    }
    programs
}

static FIXTURES: &[Fixture] = &[
    Fixture {
        reference: "busybox:latest",
        repository: "library/busybox",
        tag: "latest",
        summary: "busybox-static with applet links in /bin; users root, www-data (groups adm, users), nobody",
        host_files: &[],
        build: busybox,
    },
    Fixture {
        reference: "nginx:1.27-alpine",
        repository: "library/nginx",
        tag: "1.27-alpine",
        summary: "busybox httpd serving / and /healthz on port 80; StopSignal SIGQUIT like nginx",
        host_files: &[],
        build: web::nginx,
    },
    Fixture {
        reference: "ghcr.io/myorg/web:v1.4.2",
        repository: "myorg/web",
        tag: "v1.4.2",
        summary: "web app on port 80: / answers `web v1.4.2 host=<hostname>`, /healthz, /version",
        host_files: &[],
        build: web::web_v142,
    },
    Fixture {
        reference: "ghcr.io/myorg/web:v1.4.3",
        repository: "myorg/web",
        tag: "v1.4.3",
        summary: "the same web app, version v1.4.3 (the seed's rollout target)",
        host_files: &[],
        build: web::web_v143,
    },
    Fixture {
        reference: "redis:7-alpine",
        repository: "library/redis",
        tag: "7-alpine",
        summary: "Debian's redis-server and redis-cli with their libraries; port 6379, runs as redis",
        host_files: servers::REDIS_FILES,
        build: servers::redis,
    },
    Fixture {
        reference: "postgres:16-alpine",
        repository: "library/postgres",
        tag: "16-alpine",
        summary: "Debian's PostgreSQL server binaries; entrypoint runs initdb honouring POSTGRES_*; port 5432",
        host_files: servers::POSTGRES_FILES,
        build: servers::postgres,
    },
    Fixture {
        reference: "gcr.io/distroless/static-debian12:latest",
        repository: "distroless/static-debian12",
        tag: "latest",
        summary: "no shell: users root, nobody, nonroot (65532), the host's CA bundle, UTC, /tmp",
        host_files: distroless::DISTROLESS_FILES,
        build: distroless::distroless_static,
    },
    Fixture {
        reference: "drover-fixtures/layers:v1",
        repository: "drover-fixtures/layers",
        tag: "v1",
        summary: "three layers: files, then a whiteout, a directory whiteout and an opaque directory",
        host_files: &[],
        build: store::layers,
    },
    Fixture {
        reference: "drover-fixtures/multiarch:v1",
        repository: "drover-fixtures/multiarch",
        tag: "v1",
        summary: "an image index with linux/amd64 and linux/arm64 manifests (/etc/drover-arch says which)",
        host_files: &[],
        build: store::multiarch,
    },
    Fixture {
        reference: "drover-fixtures/config:v1",
        repository: "drover-fixtures/config",
        tag: "v1",
        summary: "config with Healthcheck, User, WorkingDir, Env, Entrypoint+Cmd, ExposedPorts, Volumes, Labels",
        host_files: &[],
        build: store::config,
    },
];

/// Splits a reference into (registry host, repository, tag) the way Docker does: a first
/// component with a `.` or `:` (or `localhost`) is a host, Docker Hub names get `library/`,
/// a missing tag is `latest`.
pub fn parse_reference(reference: &str) -> (String, String, String) {
    let (name, tag) = match reference.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (reference, "latest"),
    };
    let (host, path) = match name.split_once('/') {
        Some((h, rest)) if h.contains('.') || h.contains(':') || h == "localhost" => (h, rest),
        _ => ("docker.io", name),
    };
    let path = if host == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    (host.to_string(), path, tag.to_string())
}

/// The fixture a reference names (`nginx:1.27-alpine`, `docker.io/library/nginx:1.27-alpine`
/// and `library/nginx:1.27-alpine` are the same; no tag means `latest`).
pub fn find(reference: &str) -> Result<&'static Fixture, BuildError> {
    let want = parse_reference(reference);
    FIXTURES
        .iter()
        .find(|f| parse_reference(f.reference) == want)
        .ok_or_else(|| BuildError::UnknownFixture {
            name: reference.to_string(),
            known: FIXTURES
                .iter()
                .map(|f| f.reference)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

// === impl Fixture ===

impl Fixture {
    /// Builds the image in memory (reads host files, runs `ldd`).
    pub fn content(&self) -> Result<Content, BuildError> {
        (self.build)()
    }

    /// A directory name for this fixture's layout: the reference with `/` and `:` as `_`.
    pub fn slug(&self) -> String {
        self.reference.replace(['/', ':'], "_")
    }

    /// Writes the image as an OCI layout into `dir` (created; must be empty), tagged with
    /// [`Fixture::tag`].
    pub fn write_layout(&self, dir: &Path) -> Result<Written, BuildError> {
        let content = self.content()?;
        let mut writer = LayoutWriter::create(dir)?;
        let written = writer.add(self.tag, &content)?;
        writer.finish()?;
        Ok(written)
    }
}

/// Builds every fixture into `out/<slug>`; returns the layout directories with what was written.
pub fn build_all(out: &Path) -> Result<Vec<(&'static Fixture, PathBuf, Written)>, BuildError> {
    let mut built = Vec::new();
    for f in FIXTURES {
        let dir = out.join(f.slug());
        let written = f.write_layout(&dir)?;
        built.push((f, dir, written));
    }
    Ok(built)
}

// === base layer ===

/// The base layer every fixture starts with: busybox, `/etc/passwd`, `/etc/group`, the usual
/// empty directories.
pub fn base_layer() -> Result<LayerBuilder, BuildError> {
    let mut l = LayerBuilder::new();
    rootfs::add_busybox(&mut l)?;
    for (dir, mode) in [
        ("/dev", 0o755),
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/etc", 0o755),
        ("/root", 0o700),
        ("/tmp", 0o1777),
        ("/run", 0o755),
        ("/home", 0o755),
        ("/var/www", 0o755),
        ("/var/tmp", 0o1777),
        ("/usr/local/bin", 0o755),
        ("/usr/sbin", 0o755),
    ] {
        l.dir(dir, mode)?;
    }
    l.file("/etc/passwd", 0o644, PASSWD)?;
    l.file("/etc/group", 0o644, GROUP)?;
    l.file(
        "/etc/os-release",
        0o644,
        "NAME=\"Drover test image\"\nID=drover-fixture\nPRETTY_NAME=\"Drover test image (busybox-static)\"\n",
    )?;
    Ok(l)
}

const BASE_HISTORY: &str = "drover-fixtures: busybox-static base";

fn image(config: ImageConfig, layers: Vec<(&str, LayerBuilder)>) -> Result<Image, BuildError> {
    let mut built = Vec::new();
    let mut history = Vec::new();
    for (h, l) in layers {
        built.push(l.build()?);
        history.push(h.to_string());
    }
    Ok(Image {
        platform: Platform::host(),
        config,
        layers: built,
        history,
    })
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn busybox() -> Result<Content, BuildError> {
    let config = ImageConfig {
        env: vec![PATH_ENV.into()],
        cmd: Some(strings(&["sh"])),
        ..Default::default()
    };
    Ok(Content::Image(Box::new(image(
        config,
        vec![(BASE_HISTORY, base_layer()?)],
    )?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised_like_docker() {
        let p = |r| parse_reference(r);
        assert_eq!(
            p("nginx:1.27-alpine"),
            (
                "docker.io".into(),
                "library/nginx".into(),
                "1.27-alpine".into()
            )
        );
        assert_eq!(
            p("busybox"),
            (
                "docker.io".into(),
                "library/busybox".into(),
                "latest".into()
            )
        );
        assert_eq!(
            p("ghcr.io/myorg/web:v1.4.2"),
            ("ghcr.io".into(), "myorg/web".into(), "v1.4.2".into())
        );
        assert_eq!(
            p("localhost:5000/x"),
            ("localhost:5000".into(), "x".into(), "latest".into())
        );
        assert_eq!(
            p("myorg/app:1"),
            ("docker.io".into(), "myorg/app".into(), "1".into())
        );
    }

    #[test]
    fn fixtures_are_found_by_any_spelling_and_unknown_names_list_the_known_ones() {
        assert_eq!(
            find("docker.io/library/nginx:1.27-alpine").unwrap().tag,
            "1.27-alpine"
        );
        assert_eq!(find("busybox").unwrap().reference, "busybox:latest");
        assert_eq!(find("ghcr.io/myorg/web:v1.4.3").unwrap().tag, "v1.4.3");
        let err = find("nginx:1.25").unwrap_err().to_string();
        assert!(
            err.contains("nginx:1.25") && err.contains("nginx:1.27-alpine"),
            "{err}"
        );
    }

    #[test]
    fn host_programs_name_busybox_and_the_server_binaries_of_the_right_version() {
        let programs = host_programs();
        assert_eq!(programs[0], "busybox");
        assert!(programs.contains(&"/usr/bin/redis-server"));
        let pg: Vec<_> = programs
            .iter()
            .filter(|p| p.contains("postgresql"))
            .collect();
        assert!(!pg.is_empty());
        for p in pg {
            assert!(
                p.contains(&format!("/{PG_MAJOR}/")),
                "{p} is not PostgreSQL {PG_MAJOR}"
            );
        }
    }

    #[test]
    fn every_fixture_has_a_consistent_repository_and_tag() {
        for f in all() {
            let (_, repo, tag) = parse_reference(f.reference);
            assert_eq!(
                (repo.as_str(), tag.as_str()),
                (f.repository, f.tag),
                "{}",
                f.reference
            );
        }
    }
}
