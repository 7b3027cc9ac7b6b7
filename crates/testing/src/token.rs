//! Bearer-token auth for a test registry, the flow Docker Hub and ghcr.io use: the registry
//! answers `401` with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the client fetches
//! a token from the realm (with basic credentials, or anonymously) and retries with it.
//!
//! The token is an ES256 JWT made when the registry starts, granting pull, push and delete on
//! a fixed list of repositories for a day, with the signing certificate in its `x5c` header;
//! the registry trusts that certificate through `auth.token.rootcertbundle`. The realm is
//! busybox `httpd` serving the token as a static JSON file (query strings are ignored), behind
//! httpd's own basic auth when credentials are configured.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{CertificateParams, DnType, KeyPair, SigningKey};
use serde_json::json;

use crate::HarnessError;

/// `service` the registry and the token agree on.
pub(crate) const SERVICE: &str = "drover-test-registry";
/// `iss` of the tokens.
pub(crate) const ISSUER: &str = "drover-test-token-issuer";
/// URL path of the token endpoint.
pub(crate) const TOKEN_PATH: &str = "/auth/token";

/// What [`write`] made.
pub(crate) struct TokenFiles {
    /// The `auth:` section for the registry config.
    pub(crate) registry_yaml: String,
    /// Document root for httpd.
    pub(crate) www: PathBuf,
    /// httpd config (basic auth for the token path), if any.
    pub(crate) httpd_conf: PathBuf,
}

/// Makes the signing key and certificate, the token, the httpd tree and the registry's `auth`
/// section. `realm_addr` is the `host:port` httpd will listen on.
pub(crate) fn write(
    dir: &Path,
    realm_addr: &str,
    repositories: &[String],
    creds: Option<&(String, String)>,
) -> Result<TokenFiles, HarnessError> {
    let err = |e: rcgen::Error| HarnessError::Certificate(e.to_string());
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "drover-test token signer");
    let cert = params.self_signed(&key).map_err(err)?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = json!({ "typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(cert.der())] });
    let access: Vec<_> = repositories
        .iter()
        .map(|r| json!({ "type": "repository", "name": r, "actions": ["pull", "push", "delete"] }))
        .chain(std::iter::once(
            json!({ "type": "registry", "name": "catalog", "actions": ["*"] }),
        ))
        .collect();
    let claims = json!({
        "iss": ISSUER,
        "sub": creds.map(|c| c.0.as_str()).unwrap_or(""),
        "aud": SERVICE,
        "exp": now + 86_400,
        "nbf": now.saturating_sub(60),
        "iat": now,
        "jti": format!("drover-test-{now}"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let der_sig = key.sign(signing_input.as_bytes()).map_err(err)?;
    let sig = der_to_fixed(&der_sig).ok_or_else(|| {
        HarnessError::Certificate("ECDSA signature is not a DER SEQUENCE of two INTEGERs".into())
    })?;
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));

    let io = |what: &str| {
        let what = what.to_string();
        move |source| HarnessError::Io { what, source }
    };
    let www = dir.join("token-www");
    let endpoint = www.join(TOKEN_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(endpoint.parent().unwrap_or(&www))
        .map_err(io("create the token server's tree"))?;
    let body = json!({ "token": token, "access_token": token, "expires_in": 86_400 });
    std::fs::write(&endpoint, body.to_string()).map_err(io("write the token"))?;
    let httpd_conf = dir.join("token-httpd.conf");
    let conf = match creds {
        Some((user, password)) => format!("/auth:{user}:{password}\n"),
        None => String::new(),
    };
    std::fs::write(&httpd_conf, conf).map_err(io("write the token server's config"))?;
    let bundle = dir.join("token-signer.crt");
    std::fs::write(&bundle, cert.pem()).map_err(io("write the token signer certificate"))?;

    let registry_yaml = format!(
        "auth:\n  token:\n    realm: http://{realm_addr}{TOKEN_PATH}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        bundle.display()
    );
    Ok(TokenFiles {
        registry_yaml,
        www,
        httpd_conf,
    })
}

/// Converts an ASN.1 DER ECDSA signature (`SEQUENCE { INTEGER r, INTEGER s }`) into the
/// fixed `r || s` form JWS wants (32 bytes each for P-256).
fn der_to_fixed(der: &[u8]) -> Option<Vec<u8>> {
    let (&tag, rest) = der.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || len as usize != body.len() || len >= 0x80 {
        return None;
    }
    let mut out = Vec::with_capacity(64);
    let mut body = body;
    for _ in 0..2 {
        let (&tag, rest) = body.split_first()?;
        let (&len, rest) = rest.split_first()?;
        if tag != 0x02 || rest.len() < len as usize {
            return None;
        }
        let (int, rest) = rest.split_at(len as usize);
        let int = match int {
            [0, tail @ ..] => tail,
            _ => int,
        };
        if int.len() > 32 {
            return None;
        }
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        body = rest;
    }
    body.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_signatures_become_fixed_width_r_and_s() {
        // r with a leading zero byte (high bit set), s shorter than 32 bytes.
        let mut r = vec![0x00, 0x80];
        r.extend([0x11; 31]);
        let s = vec![0x01, 0x02];
        let mut der = vec![0x30, (2 + r.len() + 2 + s.len()) as u8, 0x02, r.len() as u8];
        der.extend(&r);
        der.extend([0x02, s.len() as u8]);
        der.extend(&s);
        let fixed = der_to_fixed(&der).unwrap();
        assert_eq!(fixed.len(), 64);
        assert_eq!(&fixed[..32], &r[1..]);
        assert_eq!(&fixed[32..62], &[0u8; 30]);
        assert_eq!(&fixed[62..], &s[..]);
    }

    #[test]
    fn malformed_der_signatures_are_refused() {
        assert!(der_to_fixed(&[]).is_none());
        assert!(der_to_fixed(&[0x31, 0x00]).is_none());
        assert!(der_to_fixed(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_none());
        // Trailing garbage after the two integers.
        assert!(der_to_fixed(&[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0xff]).is_none());
    }
}
