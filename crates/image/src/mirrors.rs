//! Registry mirrors and per-registry settings in k3s's `registries.yaml` schema:
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//!     rewrite:
//!       "^library/(.*)": "mirrored/$1"
//!   "*":
//!     endpoint: ["https://mirror.internal"]
//! configs:
//!   "127.0.0.1:5000":
//!     auth: { username: u, password: p }
//!     tls: { ca_file: /etc/ssl/ca.pem, insecure_skip_verify: false }
//! ```
//!
//! Mirrors of a registry are tried in order, then the registry itself unless origin fallback
//! is disabled (k3s's `--disable-default-registry-endpoint`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::Credentials;
use crate::reference::DOCKER_HUB;

/// The parsed `registries.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    /// Mirrors by registry host (`docker.io`, `ghcr.io`, or `*` for every registry).
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    /// Settings by registry or mirror host.
    #[serde(default)]
    pub configs: BTreeMap<String, HostConfig>,
}

/// The mirrors of one registry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// Endpoint URLs (`http://127.0.0.1:5000`, `https://mirror.example.com`), tried in order.
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// Repository rewrites applied when pulling through these mirrors: regex → replacement.
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

/// Settings of one host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Credentials.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// Credentials in `registries.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Username.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// base64 `user:password`.
    #[serde(default)]
    pub auth: Option<String>,
    /// Identity token (sent as the password with username `<token>`).
    #[serde(default)]
    pub identity_token: Option<String>,
}

/// TLS settings of a host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Extra CA bundle (PEM).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Skip server certificate verification.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A bad `registries.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum MirrorConfigError {
    /// Unreadable.
    #[error("reading {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Malformed.
    #[error("{path} is not a valid registries.yaml: {reason}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One place to fetch from: a mirror endpoint or the registry itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host (with port) used for credentials and messages.
    pub host: String,
    /// URL schemes to try, in order (`https`, then `http` for loopback origins as Docker does).
    pub schemes: Vec<&'static str>,
    /// Path prefix before `/v2/` (empty for most).
    pub prefix: String,
    /// Whether this is a mirror (else the origin registry).
    pub mirror: bool,
    /// Rewrites for repository names on this mirror.
    pub rewrite: Vec<(String, String)>,
}

impl Endpoint {
    /// The origin endpoint of a registry.
    pub fn origin(registry: &str) -> Endpoint {
        let host = if registry == DOCKER_HUB {
            "registry-1.docker.io".to_owned()
        } else {
            registry.to_owned()
        };
        let schemes = if is_loopback_host(&host) {
            vec!["https", "http"]
        } else {
            vec!["https"]
        };
        Endpoint {
            host,
            schemes,
            prefix: String::new(),
            mirror: false,
            rewrite: Vec::new(),
        }
    }

    /// Parses a mirror endpoint URL.
    pub fn mirror(url: &str, rewrite: &BTreeMap<String, String>) -> Result<Endpoint, String> {
        let (scheme, rest) = match url.split_once("://") {
            Some(("http", r)) => ("http", r),
            Some(("https", r)) => ("https", r),
            Some((s, _)) => {
                return Err(format!("mirror endpoint {url:?}: unsupported scheme {s:?}"));
            }
            None => ("https", url),
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(format!("mirror endpoint {url:?} has no host"));
        }
        let prefix = path.strip_suffix("/v2").unwrap_or(path).to_owned();
        Ok(Endpoint {
            host: host.to_owned(),
            schemes: vec![scheme],
            prefix,
            mirror: true,
            rewrite: rewrite
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// How the endpoint is named in messages.
    pub fn describe(&self) -> String {
        let kind = if self.mirror { "mirror" } else { "registry" };
        format!("{kind} {}://{}{}", self.schemes[0], self.host, self.prefix)
    }

    /// The repository name to use on this endpoint (after rewrites).
    pub fn repository(&self, repo: &str) -> String {
        for (pat, rep) in &self.rewrite {
            if let Ok(re) = regex::Regex::new(pat)
                && re.is_match(repo)
            {
                return re.replace(repo, rep.as_str()).into_owned();
            }
        }
        repo.to_owned()
    }
}

/// Whether a host (with optional port) is a loopback address (127.0.0.0/8, ::1, localhost).
pub fn is_loopback_host(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .map(|(h, _)| h)
            .filter(|h| !h.contains(':'))
            .unwrap_or(host)
    };
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl RegistriesConfig {
    /// Loads a `registries.yaml`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<RegistriesConfig, MirrorConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(MirrorConfigError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|reason| MirrorConfigError::Parse {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses the YAML text.
    pub fn parse(text: &str) -> Result<RegistriesConfig, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let cfg: RegistriesConfig = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        for (reg, m) in &cfg.mirrors {
            for e in &m.endpoint {
                Endpoint::mirror(e, &m.rewrite).map_err(|e| format!("mirrors.{reg}: {e}"))?;
            }
            for pat in m.rewrite.keys() {
                regex::Regex::new(pat)
                    .map_err(|e| format!("mirrors.{reg}.rewrite {pat:?}: {e}"))?;
            }
        }
        Ok(cfg)
    }

    /// The endpoints to try for a registry, in order.
    pub fn endpoints(&self, registry: &str, origin_fallback: bool) -> Vec<Endpoint> {
        let mirror = self.mirrors.get(registry).or_else(|| self.mirrors.get("*"));
        let mut out: Vec<Endpoint> = mirror
            .map(|m| {
                m.endpoint
                    .iter()
                    .filter_map(|e| Endpoint::mirror(e, &m.rewrite).ok())
                    .collect()
            })
            .unwrap_or_default();
        if origin_fallback {
            let o = Endpoint::origin(registry);
            // A mirror listing the origin itself is the origin.
            if !out.iter().any(|e| e.host == o.host) {
                out.push(o);
            }
        }
        out
    }

    /// Credentials configured for a host.
    pub fn credentials(&self, host: &str) -> Option<Credentials> {
        let a = self.configs.get(host)?.auth.as_ref()?;
        if let (Some(u), Some(p)) = (&a.username, &a.password) {
            return Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            });
        }
        if let Some(enc) = &a.auth {
            use base64::Engine as _;
            let d = base64::engine::general_purpose::STANDARD
                .decode(enc.trim())
                .ok()?;
            let s = String::from_utf8(d).ok()?;
            let (u, p) = s.split_once(':')?;
            return Some(Credentials {
                username: u.into(),
                password: p.into(),
            });
        }
        a.identity_token.as_ref().map(|t| Credentials {
            username: "<token>".into(),
            password: t.clone(),
        })
    }

    /// TLS settings of a host.
    pub fn tls(&self, host: &str) -> Option<&TlsConfig> {
        self.configs.get(host)?.tls.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K3S_EXAMPLE: &str = r#"
mirrors:
  docker.io:
    endpoint:
      - "http://127.0.0.1:5000"
      - "https://mirror.example.com/v2"
    rewrite:
      "^library/(.*)": "hub/$1"
  "*":
    endpoint: ["http://127.0.0.1:5001"]
configs:
  "127.0.0.1:5000":
    auth:
      username: alice
      password: secret
    tls:
      insecure_skip_verify: true
"#;

    #[test]
    fn k3s_schema_mirrors_are_tried_in_order_then_the_origin() {
        let c = RegistriesConfig::parse(K3S_EXAMPLE).unwrap();
        let eps = c.endpoints("docker.io", true);
        let hosts: Vec<&str> = eps.iter().map(|e| e.host.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "127.0.0.1:5000",
                "mirror.example.com",
                "registry-1.docker.io"
            ]
        );
        assert_eq!(eps[0].schemes, ["http"]);
        assert_eq!(eps[1].prefix, "");
        assert_eq!(eps[0].repository("library/nginx"), "hub/nginx");
        assert_eq!(eps[0].repository("myorg/web"), "myorg/web");
        assert!(!eps[2].mirror);
    }

    #[test]
    fn disabling_origin_fallback_leaves_only_mirrors_and_the_wildcard_applies() {
        let c = RegistriesConfig::parse(K3S_EXAMPLE).unwrap();
        let eps = c.endpoints("ghcr.io", false);
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].host, "127.0.0.1:5001");
        assert!(
            RegistriesConfig::default()
                .endpoints("ghcr.io", false)
                .is_empty()
        );
        assert_eq!(c.credentials("127.0.0.1:5000").unwrap().username, "alice");
        assert!(c.tls("127.0.0.1:5000").unwrap().insecure_skip_verify);
    }

    #[test]
    fn loopback_origins_may_fall_back_to_plain_http_others_may_not() {
        assert_eq!(
            Endpoint::origin("127.0.0.1:5000").schemes,
            ["https", "http"]
        );
        assert_eq!(Endpoint::origin("127.9.9.9").schemes, ["https", "http"]);
        assert_eq!(
            Endpoint::origin("localhost:5000").schemes,
            ["https", "http"]
        );
        assert_eq!(Endpoint::origin("[::1]:5000").schemes, ["https", "http"]);
        assert_eq!(Endpoint::origin("10.0.0.1:5000").schemes, ["https"]);
        assert_eq!(Endpoint::origin("docker.io").host, "registry-1.docker.io");
    }

    #[test]
    fn malformed_registries_yaml_is_refused_with_the_reason() {
        assert!(RegistriesConfig::parse("mirrors: [1,2]").is_err());
        let e = RegistriesConfig::parse("mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n")
            .unwrap_err();
        assert!(e.contains("ftp"), "{e}");
        let e = RegistriesConfig::parse("mirrorz: {}").unwrap_err();
        assert!(e.contains("mirrorz"), "{e}");
    }
}
