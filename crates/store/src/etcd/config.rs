//! Settings of the etcd backend and the parsing of `--datastore-endpoint` etcd URLs.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of an [`super::EtcdStore`]. Start from [`EtcdConfig::parse_endpoint`] or
/// [`EtcdConfig::new`] and change fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct EtcdConfig {
    /// Client URLs of the members, each `http://host:port` or `https://host:port`. The client
    /// balances requests over them and fails over when one is down.
    pub endpoints: Vec<String>,
    /// Prepended to every key Drover stores, so several clusters can share one etcd. Default
    /// empty: Drover's keys (`/registry/...`, `/drover/...`) are stored as they are, as
    /// kube-apiserver and k3s store theirs.
    pub prefix: String,
    /// The CA bundle that signed the members' serving certificates (`--datastore-cafile`).
    pub ca_file: Option<PathBuf>,
    /// The client certificate for etcd's client-cert auth (`--datastore-certfile`).
    pub cert_file: Option<PathBuf>,
    /// The key of `cert_file` (`--datastore-keyfile`).
    pub key_file: Option<PathBuf>,
    /// etcd user name and password (etcd's own auth).
    pub user: Option<(String, String)>,
    /// History younger than this is never compacted by the server. Default 5 minutes.
    pub retention: Duration,
    /// At most this many revisions of history are kept behind the current one. Default 100 000.
    pub max_history: u64,
    /// How often idle watches get a progress notification. Default 5 seconds.
    pub progress_interval: Duration,
    /// How often the server checks etcd's health, compacts and considers defragmenting.
    /// Default 1 second.
    pub maintenance_interval: Duration,
    /// How long one request may take before it fails as unavailable. Default 5 seconds.
    pub request_timeout: Duration,
    /// Defragment a member when its file is larger than this many times the bytes in use...
    pub defrag_ratio: f64,
    /// ...and at least this much of it is free. Default 64 MiB.
    pub defrag_min_free_bytes: u64,
    /// Use etcd's progress notifications to advance idle watches even on etcd versions with the
    /// progress/event race (before 3.4.31 and 3.5.13), guarded (see `watch`). Default true;
    /// `false` exists so a test can show what the guard protects.
    pub guarded_progress: bool,
    /// Run server-driven compaction and defragmentation. Default true.
    pub maintenance: bool,
}

impl std::fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("retention", &self.retention)
            .field("max_history", &self.max_history)
            .finish_non_exhaustive()
    }
}

impl EtcdConfig {
    /// The default settings for these client URLs.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            prefix: String::new(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            user: None,
            retention: Duration::from_secs(5 * 60),
            max_history: 100_000,
            progress_interval: Duration::from_secs(5),
            maintenance_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            defrag_ratio: 2.0,
            defrag_min_free_bytes: 64 * 1024 * 1024,
            guarded_progress: true,
            maintenance: true,
        }
    }

    /// Parses a datastore endpoint: one or more comma-separated members, each
    /// `etcd://host:port`, `http://host:port` or `https://host:port`, the first optionally
    /// with `user:password@` before the host. `etcd://` means `https://` when a CA file is
    /// given later and `http://` otherwise (see [`EtcdConfig::resolve_schemes`]).
    pub fn parse_endpoint(s: &str) -> Result<EtcdConfig, String> {
        let mut endpoints = Vec::new();
        let mut user = None;
        for (i, member) in s.split(',').map(str::trim).enumerate() {
            let (scheme, rest) = member.split_once("://").ok_or_else(|| {
                format!(
                    "{member:?} in {s:?} has no scheme; use etcd://host:port or https://host:port"
                )
            })?;
            if !matches!(scheme, "etcd" | "http" | "https") {
                return Err(format!(
                    "{member:?} in {s:?}: unknown scheme {scheme:?}; etcd members are etcd://, http:// or https://"
                ));
            }
            let rest = rest.trim_end_matches('/');
            let hostport = match rest.rsplit_once('@') {
                Some((cred, hostport)) => {
                    if i > 0 {
                        return Err(format!(
                            "{s:?}: give user:password@ only on the first member"
                        ));
                    }
                    let (name, password) = cred.split_once(':').ok_or_else(|| {
                        format!("{s:?}: credentials must be user:password@host:port")
                    })?;
                    if name.is_empty() {
                        return Err(format!("{s:?}: the etcd user name is empty"));
                    }
                    user = Some((percent_decode(name)?, percent_decode(password)?));
                    hostport
                }
                None => rest,
            };
            if hostport.contains('/') || hostport.is_empty() {
                return Err(format!(
                    "{member:?} in {s:?}: expected host:port with no path (set a key prefix with --datastore-prefix)"
                ));
            }
            let (host, port) = hostport.rsplit_once(':').ok_or_else(|| {
                format!("{member:?} in {s:?} has no port; etcd's client port is usually 2379")
            })?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!(
                    "{member:?} in {s:?}: {hostport:?} is not host:port"
                ));
            }
            endpoints.push(format!("{scheme}://{hostport}"));
        }
        let mut config = EtcdConfig::new(endpoints);
        config.user = user;
        Ok(config)
    }

    /// Turns `etcd://` members into `https://` when TLS files were given, `http://` otherwise,
    /// and checks that TLS settings and schemes agree.
    pub fn resolve_schemes(&mut self) -> Result<(), String> {
        let tls = self.ca_file.is_some() || self.cert_file.is_some();
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(
                "--datastore-certfile and --datastore-keyfile must be given together".into(),
            );
        }
        for e in &mut self.endpoints {
            if let Some(rest) = e.strip_prefix("etcd://") {
                *e = format!("{}://{rest}", if tls { "https" } else { "http" });
            } else if tls && e.starts_with("http://") {
                return Err(format!(
                    "{e}: TLS files were given but this member is plain http://; use https:// or etcd://"
                ));
            }
        }
        Ok(())
    }

    /// The members as `host:port`, for messages.
    pub fn describe(&self) -> String {
        self.endpoints.join(",")
    }
}

/// Decodes `%XX` escapes (so a password may hold `@`, `:` or `,`).
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape in the datastore credentials at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the datastore credentials are not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_credentials_and_several_members() {
        let c = EtcdConfig::parse_endpoint("etcd://root:p%40ss@10.0.0.1:2379,http://h2:2380")
            .expect("valid");
        assert_eq!(c.endpoints, ["etcd://10.0.0.1:2379", "http://h2:2380"]);
        assert_eq!(c.user, Some(("root".into(), "p@ss".into())));
        let mut c = c;
        c.resolve_schemes().expect("no tls");
        assert_eq!(c.endpoints[0], "http://10.0.0.1:2379");
        let mut tls = EtcdConfig::parse_endpoint("etcd://h:2379").expect("valid");
        tls.ca_file = Some("/ca.pem".into());
        tls.resolve_schemes().expect("tls");
        assert_eq!(tls.endpoints, ["https://h:2379"]);
        assert!(!format!("{tls:?}").contains("p@ss"));
        assert!(
            !format!(
                "{:?}",
                EtcdConfig::parse_endpoint("etcd://u:secret@h:1").unwrap()
            )
            .contains("secret")
        );
    }

    #[test]
    fn bad_endpoints_are_rejected_with_the_reason() {
        for (bad, why) in [
            ("h:2379", "no scheme"),
            ("redis://h:1", "unknown scheme"),
            ("etcd://h", "no port"),
            ("etcd://h:notaport", "not host:port"),
            ("etcd://h:2379/prefix", "no path"),
            ("etcd://h:1,etcd://u:p@h:2", "first member"),
            ("etcd://nopass@h:1", "user:password@"),
        ] {
            let err = EtcdConfig::parse_endpoint(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        let mut c = EtcdConfig::parse_endpoint("http://h:1").expect("valid");
        c.ca_file = Some("/ca".into());
        assert!(c.resolve_schemes().unwrap_err().contains("plain http"));
        let mut c = EtcdConfig::parse_endpoint("etcd://h:1").expect("valid");
        c.cert_file = Some("/c".into());
        assert!(c.resolve_schemes().unwrap_err().contains("together"));
    }
}
