//! Registry credentials: Docker's `config.json` (`auths` with base64 `user:password`), and the
//! `WWW-Authenticate` challenges of the distribution spec's token flow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// A username and password (or identity token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Username.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// Errors reading or writing a credentials file.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// Reading or writing failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// Operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{path} is not a valid Docker config file: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
}

/// Docker's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The key Docker uses in `auths` for a registry host.
pub fn auth_key(registry: &str) -> String {
    if registry == crate::reference::DOCKER_HUB {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

/// Looks up credentials for `registry` in a Docker config file. A missing file means none.
pub fn lookup(path: &Path, registry: &str) -> Result<Option<Credentials>, AuthFileError> {
    let v = match read_json(path)? {
        Some(v) => v,
        None => return Ok(None),
    };
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let key = auth_key(registry);
    let entry = auths.get(&key).or_else(|| {
        // Docker also accepts keys written as URLs (`https://host`, `http://host/v2/`).
        auths
            .iter()
            .find(|(k, _)| host_of_key(k) == registry)
            .map(|(_, v)| v)
    });
    let Some(entry) = entry else { return Ok(None) };
    if let Some(a) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = B64.decode(a.trim()).map_err(|e| AuthFileError::Parse {
            path: path.to_owned(),
            reason: format!("auths.{key}.auth is not base64: {e}"),
        })?;
        let s = String::from_utf8_lossy(&decoded);
        if let Some((u, p)) = s.split_once(':') {
            return Ok(Some(Credentials {
                username: u.to_owned(),
                password: p.to_owned(),
            }));
        }
    }
    let u = entry.get("username").and_then(|x| x.as_str());
    let p = entry.get("password").and_then(|x| x.as_str());
    Ok(match (u, p) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.into(),
            password: p.into(),
        }),
        _ => None,
    })
}

fn host_of_key(k: &str) -> &str {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k)
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, AuthFileError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| AuthFileError::Parse {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AuthFileError::Io {
            op: "reading",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Stores credentials for `registry` in a Docker config file, keeping everything else in it.
/// The file is created with mode 0600.
pub fn store(path: &Path, registry: &str, c: &Credentials) -> Result<(), AuthFileError> {
    let mut v = read_json(path)?.unwrap_or_else(|| serde_json::json!({}));
    if !v.is_object() {
        v = serde_json::json!({});
    }
    let obj = v.as_object_mut().expect("object");
    let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    let encoded = B64.encode(format!("{}:{}", c.username, c.password));
    auths
        .as_object_mut()
        .expect("object")
        .insert(auth_key(registry), serde_json::json!({ "auth": encoded }));
    let io = |op, source| AuthFileError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("creating", e))?;
        f.write_all(&serde_json::to_vec_pretty(&v).expect("json"))
            .map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io("renaming", e))
}

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lowercased).
    pub scheme: String,
    /// Parameters (`realm`, `service`, `scope`, …), keys lowercased.
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` header value: `Bearer realm="…",service="…",scope="…"`.
/// Returns `None` when there is no scheme.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let Some(eq) = s.find('=') else { break };
        let key = s[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        s = &s[eq + 1..];
        let value;
        if let Some(stripped) = s.strip_prefix('"') {
            // Quoted string with backslash escapes; commas inside quotes (scopes) are kept.
            let mut out = String::new();
            let mut chars = stripped.char_indices();
            let mut end = stripped.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            value = out;
            s = &stripped[end.min(stripped.len())..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_owned();
            s = &s[end..];
        }
        s = s.trim_start().trim_start_matches(',').trim_start();
        if !key.is_empty() {
            params.insert(key, value);
        }
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_style_bearer_challenge_is_parsed_with_commas_in_scope() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:library/nginx:pull,push");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
    }

    #[test]
    fn credentials_round_trip_through_a_docker_config_file_keeping_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"credsStore":"x","auths":{"ghcr.io":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let c = Credentials {
            username: "alice".into(),
            password: "s:cret".into(),
        };
        store(&p, "docker.io", &c).unwrap();
        assert_eq!(lookup(&p, "docker.io").unwrap(), Some(c));
        assert_eq!(lookup(&p, "ghcr.io").unwrap().unwrap().username, "u");
        assert_eq!(lookup(&p, "quay.io").unwrap(), None);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["credsStore"], "x");
        assert!(v["auths"]["https://index.docker.io/v1/"].is_object());
    }

    #[test]
    fn a_corrupt_config_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, "{not json").unwrap();
        let e = lookup(&p, "docker.io").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }
}
