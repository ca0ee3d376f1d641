//! Certificates and keys from PEM, through `rustls-pki-types` (rustls-pemfile is unmaintained).

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// Every certificate in `pem`, in order.
///
/// # Errors
/// [`TlsError::Config`] when the PEM is malformed or holds no certificate.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Config(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Config("no certificate in the PEM".into()));
    }
    Ok(certs)
}

/// The private key in `pem`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
///
/// # Errors
/// [`TlsError::Config`] when there is no key or it is malformed.
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| TlsError::Config(format!("private key PEM: {e}")))
}

/// The contents of `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Config(format!("{}: {e}", path.display())))
}
