//! Authentication (who is asking) and authorization (may they).

use rustls::pki_types::CertificateDer;

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) groups: Vec<String>,
    pub(crate) uid: String,
    pub(crate) extra: Vec<(String, Vec<String>)>,
}

impl User {
    /// The user a verified client certificate names: CN is the user, each O a group.
    pub(crate) fn from_cert(cert: &CertificateDer<'_>) -> Option<User> {
        let (_, x509) = x509_parser::parse_x509_certificate(cert).ok()?;
        let subject = x509.subject();
        let name = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
        let mut groups: Vec<String> = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect();
        groups.push("system:authenticated".into());
        Some(User {
            name,
            groups,
            uid: String::new(),
            extra: Vec::new(),
        })
    }

    /// True for members of `system:masters` (everything is allowed, as upstream).
    pub(crate) fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}
