//! [`TlsError`]: why a TLS connection or configuration failed, in terms a program can match.

use rustls::{AlertDescription, CertificateError};

/// Why TLS failed. A client's handshake errors name the cause (unknown issuer, expired, name
/// mismatch, a plain server on a `wss://` URL); a configuration error says what was wrong with
/// the certificates or keys given.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The peer's certificate chains to no trusted authority.
    #[error("certificate issued by an unknown authority")]
    UnknownIssuer,
    /// The peer's certificate has expired.
    #[error("certificate expired")]
    Expired,
    /// The peer's certificate is not yet valid.
    #[error("certificate not yet valid")]
    NotYetValid,
    /// The server's certificate is not valid for the name connected to.
    #[error("certificate not valid for {0}")]
    NameMismatch(String),
    /// The certificate was refused for another reason (revoked, bad signature, wrong usage,
    /// refused by a verification callback).
    #[error("certificate refused: {0}")]
    BadCertificate(String),
    /// The peer ended the handshake with an alert (it refused our certificate, or found no
    /// protocol version or cipher suite in common).
    #[error("the peer refused the handshake: {0}")]
    Alert(String),
    /// The peer did not speak TLS: a plain `ws://` server on a `wss://` URL, say.
    #[error("the peer does not speak TLS (a plain server on a wss:// URL?)")]
    NotTls,
    /// Another handshake failure.
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] rustls::Error),
    /// No crypto provider: none installed by the program, none compiled in (features
    /// `tls-ring`, `tls-aws-lc-rs`).
    #[error(
        "no TLS crypto provider: enable wsharp's tls-ring or tls-aws-lc-rs feature, or install a rustls default provider"
    )]
    NoProvider,
    /// No trusted authorities to verify a server with: the platform has no trust store and
    /// none were given.
    #[error("no trusted certificate authorities: {0}")]
    NoRoots(String),
    /// A certificate, key or setting given to wsharp is unusable.
    #[error("TLS configuration: {0}")]
    Config(String),
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => Self::UnknownIssuer,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Self::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Self::NotYetValid
                }
                CertificateError::NotValidForName => Self::NameMismatch("this host".into()),
                CertificateError::NotValidForNameContext { expected, .. } => {
                    Self::NameMismatch(format!("{expected:?}"))
                }
                other => Self::BadCertificate(format!("{other:?}")),
            },
            rustls::Error::AlertReceived(alert) => Self::Alert(alert_text(alert)),
            rustls::Error::InvalidMessage(_) => Self::NotTls,
            other => Self::Handshake(other),
        }
    }
}

fn alert_text(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::CertificateRequired => {
            "a client certificate is required (certificate_required)".into()
        }
        AlertDescription::BadCertificate | AlertDescription::UnknownCA => {
            format!("our certificate was refused ({alert:?})")
        }
        other => format!("{other:?}"),
    }
}

/// The TLS error inside an I/O error from a TLS stream, if there is one (tokio-rustls and
/// rustls' blocking stream report rustls errors as `io::ErrorKind::InvalidData`).
pub(crate) fn from_io(e: &std::io::Error) -> Option<TlsError> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(TlsError::from(inner.clone()))
}
