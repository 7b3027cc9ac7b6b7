//! A client for OCI distribution registries: manifests, blobs, uploads (monolithic and
//! chunked), with anonymous, basic and bearer-token authentication (the `WWW-Authenticate:
//! Bearer realm=…,service=…,scope=…` flow Docker Hub uses).

use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response, StatusCode, header};
use tokio::sync::Mutex;

use crate::auth::{Credentials, parse_challenge};
use crate::digest::Digest;
use crate::mirrors::{Endpoint, TlsConfig};
use crate::oci::MANIFEST_ACCEPT;

/// Errors talking to a registry; every variant names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No connection could be made.
    #[error("{endpoint} is unreachable: {reason}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// Transport error.
        reason: String,
    },
    /// Authentication failed.
    #[error("{endpoint} refused access (401 Unauthorized): {reason}")]
    Unauthorized {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The manifest or blob does not exist there.
    #[error("{endpoint}: {what} not found ({status})")]
    NotFound {
        /// The endpoint.
        endpoint: String,
        /// What was asked for.
        what: String,
        /// HTTP status.
        status: u16,
    },
    /// Any other unexpected answer.
    #[error("{endpoint}: {what} failed with HTTP {status}: {body}")]
    Status {
        /// The endpoint.
        endpoint: String,
        /// What was being done.
        what: String,
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// A malformed answer.
    #[error("{endpoint}: {reason}")]
    Protocol {
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },
}

/// Builds the HTTP client for a host's TLS settings.
pub fn http_client(tls: Option<&TlsConfig>) -> Result<Client, String> {
    let mut b = Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .user_agent(concat!("drover/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = tls {
        if let Some(ca) = &t.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| format!("reading ca_file {}: {e}", ca.display()))?;
            for c in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("ca_file {}: {e}", ca.display()))?
            {
                b = b.add_root_certificate(c);
            }
        }
        if let (Some(cert), Some(key)) = (&t.cert_file, &t.key_file) {
            let mut pem =
                std::fs::read(cert).map_err(|e| format!("reading {}: {e}", cert.display()))?;
            pem.extend(std::fs::read(key).map_err(|e| format!("reading {}: {e}", key.display()))?);
            b = b.identity(
                reqwest::Identity::from_pem(&pem)
                    .map_err(|e| format!("client certificate: {e}"))?,
            );
        }
        if t.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
    }
    b.build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// A connection to one repository on one endpoint, with its authentication state.
#[derive(Debug)]
pub struct Session {
    http: Client,
    endpoint: Endpoint,
    base: String,
    repo: String,
    creds: Option<Credentials>,
    actions: &'static str,
    authorization: Mutex<Option<String>>,
}

fn describe_transport(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl Session {
    /// Connects to `repository` on `endpoint` (`actions`: `pull` or `pull,push`), choosing the
    /// scheme (plain HTTP only where the endpoint allows it) and authenticating if asked to.
    pub async fn connect(
        http: Client,
        endpoint: Endpoint,
        repository: &str,
        creds: Option<Credentials>,
        actions: &'static str,
    ) -> Result<Session, RegistryError> {
        let repo = endpoint.repository(repository);
        let mut last = String::new();
        for scheme in &endpoint.schemes {
            let base = format!("{scheme}://{}{}", endpoint.host, endpoint.prefix);
            match http.get(format!("{base}/v2/")).send().await {
                Ok(resp) => {
                    let s = Session {
                        http,
                        endpoint,
                        base,
                        repo,
                        creds,
                        actions,
                        authorization: Mutex::new(None),
                    };
                    if resp.status() == StatusCode::UNAUTHORIZED {
                        s.authenticate(&resp).await?;
                    }
                    return Ok(s);
                }
                Err(e) => last = describe_transport(&e),
            }
        }
        Err(RegistryError::Unreachable {
            endpoint: endpoint.describe(),
            reason: last,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The repository name on this endpoint.
    pub fn repository(&self) -> &str {
        &self.repo
    }

    fn name(&self) -> String {
        let kind = if self.endpoint.mirror {
            "mirror"
        } else {
            "registry"
        };
        format!("{kind} {}", self.base)
    }

    /// Answers a 401 challenge: fetches a bearer token, or prepares basic credentials.
    async fn authenticate(&self, resp: &Response) -> Result<(), RegistryError> {
        let unauthorized = |reason: String| RegistryError::Unauthorized {
            endpoint: self.name(),
            reason,
        };
        let header = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| unauthorized("no WWW-Authenticate challenge in the answer".into()))?;
        let ch = parse_challenge(header)
            .ok_or_else(|| unauthorized(format!("unparsable challenge {header:?}")))?;
        let value = match ch.scheme.as_str() {
            "basic" => {
                let c = self.creds.as_ref().ok_or_else(|| {
                    unauthorized(format!(
                        "credentials required; run `drover image login {}`",
                        self.endpoint.host
                    ))
                })?;
                use base64::Engine as _;
                let enc = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password));
                format!("Basic {enc}")
            }
            "bearer" => {
                let realm = ch
                    .params
                    .get("realm")
                    .ok_or_else(|| unauthorized("bearer challenge without realm".into()))?;
                let scope = format!("repository:{}:{}", self.repo, self.actions);
                let mut q: Vec<(&str, &str)> = vec![("scope", &scope)];
                if let Some(s) = ch.params.get("service") {
                    q.push(("service", s));
                }
                let mut req = self.http.get(realm).query(&q);
                if let Some(c) = &self.creds {
                    req = req.basic_auth(&c.username, Some(&c.password));
                }
                let tr = req.send().await.map_err(|e| RegistryError::Unreachable {
                    endpoint: format!("token server {realm} of {}", self.name()),
                    reason: describe_transport(&e),
                })?;
                if !tr.status().is_success() {
                    let st = tr.status();
                    let who = match &self.creds {
                        Some(c) => format!("for user {:?}", c.username),
                        None => "anonymously".to_owned(),
                    };
                    return Err(unauthorized(format!(
                        "token server {realm} answered {st} {who}; check `drover image login {}`",
                        self.endpoint.host
                    )));
                }
                #[derive(serde::Deserialize)]
                struct Tok {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let body = tr.bytes().await.map_err(|e| RegistryError::Unreachable {
                    endpoint: format!("token server {realm} of {}", self.name()),
                    reason: describe_transport(&e),
                })?;
                let t: Tok =
                    serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                        endpoint: self.name(),
                        reason: format!("token server {realm} sent no token JSON: {e}"),
                    })?;
                let tok = t.token.or(t.access_token).ok_or_else(|| {
                    unauthorized(format!("token server {realm} returned no token"))
                })?;
                format!("Bearer {tok}")
            }
            other => {
                return Err(unauthorized(format!(
                    "unsupported authentication scheme {other:?}"
                )));
            }
        };
        *self.authorization.lock().await = Some(value);
        Ok(())
    }

    /// Sends a request built by `build`, authenticating and retrying once on a 401.
    async fn send(
        &self,
        what: &str,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut authed_once = false;
        loop {
            let mut req = build(&self.http);
            if let Some(a) = self.authorization.lock().await.clone() {
                req = req.header(header::AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(|e| RegistryError::Unreachable {
                endpoint: self.name(),
                reason: format!("{what}: {}", describe_transport(&e)),
            })?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if authed_once {
                return Err(RegistryError::Unauthorized {
                    endpoint: self.name(),
                    reason: format!(
                        "{what}: still 401 after authenticating; the credentials lack access to {}",
                        self.repo
                    ),
                });
            }
            self.authenticate(&resp).await?;
            authed_once = true;
        }
    }

    async fn fail(&self, what: String, resp: Response) -> RegistryError {
        let status = resp.status().as_u16();
        if status == 404 {
            return RegistryError::NotFound {
                endpoint: self.name(),
                what,
                status,
            };
        }
        let body = resp.text().await.unwrap_or_default();
        RegistryError::Status {
            endpoint: self.name(),
            what,
            status,
            body: body.chars().take(300).collect(),
        }
    }

    /// Fetches a manifest: its bytes, `Content-Type`, and the registry's digest header.
    pub async fn manifest(
        &self,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>), RegistryError> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repo);
        let what = format!("manifest {}:{reference}", self.repo);
        let resp = self
            .send(&what, |c| {
                c.get(&url).header(header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(what, resp).await);
        }
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Unreachable {
            endpoint: self.name(),
            reason: format!("reading {what}: {}", describe_transport(&e)),
        })?;
        if bytes.len() > 4 << 20 {
            return Err(RegistryError::Protocol {
                endpoint: self.name(),
                reason: format!("{what} is over 4 MiB"),
            });
        }
        Ok((bytes.to_vec(), ct))
    }

    /// Starts downloading a blob.
    pub async fn blob(&self, d: &Digest) -> Result<Response, RegistryError> {
        let url = format!("{}/v2/{}/blobs/{d}", self.base, self.repo);
        let what = format!("blob {d}");
        let resp = self.send(&what, |c| c.get(&url)).await?;
        if !resp.status().is_success() {
            return Err(self.fail(what, resp).await);
        }
        Ok(resp)
    }

    /// Whether the repository has a blob.
    pub async fn has_blob(&self, d: &Digest) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{}/blobs/{d}", self.base, self.repo);
        let resp = self
            .send(&format!("checking blob {d}"), |c| c.head(&url))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.fail(format!("checking blob {d}"), resp).await),
        }
    }

    /// Uploads a blob: one PUT for small blobs, PATCH chunks then PUT for larger ones.
    /// `read_chunk(offset, max)` returns the next bytes of the blob.
    pub async fn upload_blob(
        &self,
        d: &Digest,
        size: u64,
        chunk_size: usize,
        mut read_chunk: impl FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
    ) -> Result<(), RegistryError> {
        let what = format!("uploading blob {d}");
        let start = format!("{}/v2/{}/blobs/uploads/", self.base, self.repo);
        let resp = self
            .send(&what, |c| c.post(&start).header(header::CONTENT_LENGTH, 0))
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.fail(what, resp).await);
        }
        let mut location = self.location(&resp, &what)?;
        let mut offset = 0u64;
        let io_err = |e: std::io::Error| RegistryError::Protocol {
            endpoint: self.name(),
            reason: format!("reading local blob {d}: {e}"),
        };
        if size <= chunk_size as u64 {
            let body = read_chunk(0, size as usize).map_err(io_err)?;
            let url = with_digest(&location, d);
            let resp = self
                .send(&what, |c| {
                    c.put(&url)
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .body(body.clone())
                })
                .await?;
            if resp.status() != StatusCode::CREATED {
                return Err(self.fail(what, resp).await);
            }
            return Ok(());
        }
        while offset < size {
            let n = chunk_size.min((size - offset) as usize);
            let body = read_chunk(offset, n).map_err(io_err)?;
            let range = format!("{}-{}", offset, offset + body.len() as u64 - 1);
            let loc = location.clone();
            let resp = self
                .send(&what, |c| {
                    c.patch(&loc)
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_RANGE, &range)
                        .body(body.clone())
                })
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(self.fail(format!("{what} (chunk {range})"), resp).await);
            }
            location = self.location(&resp, &what)?;
            offset += body.len() as u64;
        }
        let url = with_digest(&location, d);
        let resp = self
            .send(&what, |c| c.put(&url).header(header::CONTENT_LENGTH, 0))
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.fail(what, resp).await);
        }
        Ok(())
    }

    fn location(&self, resp: &Response, what: &str) -> Result<String, RegistryError> {
        let loc = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                endpoint: self.name(),
                reason: format!("{what}: upload answer without Location"),
            })?;
        Ok(
            if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_owned()
            } else {
                let origin = self
                    .base
                    .splitn(4, '/')
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("/");
                format!("{origin}{loc}")
            },
        )
    }

    /// Uploads a manifest under a tag or digest, byte for byte.
    pub async fn put_manifest(
        &self,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repo);
        let what = format!("pushing manifest {}:{reference}", self.repo);
        let resp = self
            .send(&what, |c| {
                c.put(&url)
                    .header(header::CONTENT_TYPE, media_type)
                    .body(bytes.to_vec())
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.fail(what, resp).await);
        }
        Ok(())
    }
}

fn with_digest(location: &str, d: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={d}")
}
