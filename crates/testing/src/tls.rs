//! A throwaway PKI for a test registry: a CA and a server certificate for `127.0.0.1` and
//! `localhost`, both made fresh per registry.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::HarnessError;

/// Writes `certs/ca.crt`, `server.crt` and `server.key` below `dir`; returns the server
/// certificate and key paths.
pub(crate) fn write_test_pki(dir: &Path) -> Result<(PathBuf, PathBuf), HarnessError> {
    let err = |e: rcgen::Error| HarnessError::Certificate(e.to_string());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "drover-test registry CA");
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(err)?).map_err(err)?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "drover-test registry");
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &ca).map_err(err)?;

    let io = |what: &str| {
        let what = what.to_string();
        move |source| HarnessError::Io { what, source }
    };
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).map_err(io("create the registry's certs dir"))?;
    std::fs::write(certs.join("ca.crt"), ca.pem()).map_err(io("write ca.crt"))?;
    let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&cert_path, cert.pem()).map_err(io("write server.crt"))?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(io("write server.key"))?;
    Ok((cert_path, key_path))
}
