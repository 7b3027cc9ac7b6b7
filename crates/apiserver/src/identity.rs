//! The cluster's identity: CA, service-account signing key and admin credential.
//!
//! It lives in the datastore (so every server on one datastore serves the same cluster),
//! encrypted with a key derived from the server `--token` (PBKDF2-HMAC-SHA256 → AES-256-GCM).
//! The serving certificate is per server (its SANs include the host name and `--tls-san`) and
//! is cached in the data dir.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The datastore key of the encrypted identity.
pub(crate) const IDENTITY_KEY: &str = "/drover/identity";

const PBKDF2_ROUNDS: u32 = 20_000;

/// What makes a cluster a cluster.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) ca_cert_pem: String,
    pub(crate) ca_key_pem: String,
    pub(crate) sa_key_pem: String,
    pub(crate) admin_cert_pem: String,
    pub(crate) admin_key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity { .. }")
    }
}

/// Errors while creating or opening the identity.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    #[error(
        "the datastore holds a cluster identity that this --token cannot decrypt: \
         start every server of one cluster with the same --token (see {token_hint})"
    )]
    WrongToken { token_hint: String },
    #[error("the stored cluster identity is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot generate certificates: {0}")]
    Cert(#[from] rcgen::Error),
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    v: u32,
    salt: String,
    nonce: String,
    data: String,
}

fn derive_key(token: &str, salt: &[u8]) -> LessSafeKey {
    let mut key = [0u8; 32];
    let rounds = NonZeroU32::new(PBKDF2_ROUNDS).expect("nonzero");
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        token.as_bytes(),
        &mut key,
    );
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32-byte key"))
}

impl Identity {
    /// Generates a fresh identity.
    pub(crate) fn generate() -> Result<Identity, IdentityError> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = dn("drover-ca", None);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, &ca_key);

        let admin_key = KeyPair::generate()?;
        let mut admin = CertificateParams::default();
        admin.distinguished_name = dn("system:admin", Some("system:masters"));
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        admin.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        admin.not_before = rcgen::date_time_ymd(2024, 1, 1);
        admin.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let admin_cert = admin.signed_by(&admin_key, &issuer)?;

        let sa_key = KeyPair::generate()?;
        Ok(Identity {
            ca_cert_pem: ca_cert.pem(),
            ca_key_pem: ca_key.serialize_pem(),
            sa_key_pem: sa_key.serialize_pem(),
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
        })
    }

    /// Encrypts the identity with the token.
    pub(crate) fn seal(&self, token: &str) -> Vec<u8> {
        let rng = SystemRandom::new();
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 12];
        rng.fill(&mut salt).expect("system rng");
        rng.fill(&mut nonce).expect("system rng");
        let key = derive_key(token, &salt);
        let mut data = serde_json::to_vec(self).expect("identity serializes");
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(b"drover-identity-v1"),
            &mut data,
        )
        .expect("seal");
        let sealed = Sealed {
            v: 1,
            salt: B64.encode(salt),
            nonce: B64.encode(nonce),
            data: B64.encode(data),
        };
        serde_json::to_vec(&sealed).expect("sealed serializes")
    }

    /// Decrypts an identity sealed with [`Identity::seal`].
    pub(crate) fn open(
        bytes: &[u8],
        token: &str,
        token_hint: &str,
    ) -> Result<Identity, IdentityError> {
        let sealed: Sealed =
            serde_json::from_slice(bytes).map_err(|e| IdentityError::Corrupt(e.to_string()))?;
        let decode = |s: &str| {
            B64.decode(s)
                .map_err(|e| IdentityError::Corrupt(e.to_string()))
        };
        let salt = decode(&sealed.salt)?;
        let nonce: [u8; 12] = decode(&sealed.nonce)?
            .try_into()
            .map_err(|_| IdentityError::Corrupt("bad nonce length".into()))?;
        let mut data = decode(&sealed.data)?;
        let key = derive_key(token, &salt);
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"drover-identity-v1"),
                &mut data,
            )
            .map_err(|_| IdentityError::WrongToken {
                token_hint: token_hint.to_owned(),
            })?;
        serde_json::from_slice(plain).map_err(|e| IdentityError::Corrupt(e.to_string()))
    }

    /// Issues the serving certificate for these SANs; returns (cert chain PEM, key PEM).
    pub(crate) fn issue_serving(&self, sans: &[String]) -> Result<(String, String), IdentityError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, &ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans.to_vec())?;
        params.distinguished_name = dn("drover-apiserver", None);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let cert = params.signed_by(&key, &issuer)?;
        Ok((
            format!("{}{}", cert.pem(), self.ca_cert_pem),
            key.serialize_pem(),
        ))
    }

    /// A kubeconfig for the admin user against `server` (e.g. `https://127.0.0.1:6443`).
    pub(crate) fn kubeconfig(&self, server: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: default\n\
             contexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\n\
             preferences: {{}}\nusers:\n- name: default\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
            ca = B64.encode(&self.ca_cert_pem),
            cert = B64.encode(&self.admin_cert_pem),
            key = B64.encode(&self.admin_key_pem),
        )
    }
}

fn dn(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

/// The SANs of the serving certificate.
pub(crate) fn serving_sans(
    bind: IpAddr,
    first_service_ip: IpAddr,
    extra: &[String],
) -> Vec<String> {
    let mut sans: Vec<String> = vec![
        "127.0.0.1".into(),
        "localhost".into(),
        first_service_ip.to_string(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
    ];
    if let Some(h) = hostname() {
        sans.push(h);
    }
    if !bind.is_unspecified() {
        sans.push(bind.to_string());
    }
    sans.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    sans.retain(|s| seen.insert(s.clone()));
    sans
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim().to_ascii_lowercase();
    (!h.is_empty()).then_some(h)
}

/// Writes `contents` to `path` with mode 0600 (atomically: temp file + rename).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Generates a random token (hex).
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 24];
    SystemRandom::new().fill(&mut b).expect("system rng");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_identity_opens_only_with_its_token() {
        let id = Identity::generate().expect("generate");
        let sealed = id.seal("right");
        let opened = Identity::open(&sealed, "right", "x").expect("open");
        assert_eq!(opened.ca_cert_pem, id.ca_cert_pem);
        let err =
            Identity::open(&sealed, "wrong", "the token file").expect_err("wrong token must fail");
        assert!(err.to_string().contains("same --token"), "{err}");
    }

    #[test]
    fn serving_cert_is_signed_for_the_sans() {
        let id = Identity::generate().expect("generate");
        let sans = serving_sans(
            "127.0.0.1".parse().expect("ip"),
            "10.43.0.1".parse().expect("ip"),
            &["example.test".into()],
        );
        assert!(sans.contains(&"kubernetes.default.svc.cluster.local".to_owned()));
        let (chain, _key) = id.issue_serving(&sans).expect("issue");
        let der = rustls_pemfile::certs(&mut chain.as_bytes())
            .next()
            .expect("one cert")
            .expect("pem");
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
        let san = cert
            .subject_alternative_name()
            .expect("ext")
            .expect("san")
            .value;
        let text = format!("{san:?}");
        assert!(
            text.contains("example.test")
                && text.contains("[10, 43, 0, 1]")
                && text.contains("localhost"),
            "{text}"
        );
    }
}
