//! The crypto provider every rustls configuration is built with.
//!
//! rustls' own `ClientConfig::builder()` panics when a program compiles in zero or two
//! providers and installed none. wsharp never calls it: every configuration and verifier is
//! built with an explicit provider, and the library never installs a process default.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use super::TlsError;

/// The provider wsharp builds its TLS configurations with: the process default if the program
/// installed one (`CryptoProvider::install_default`), otherwise the one compiled in by the
/// `tls-aws-lc-rs` feature, else by `tls-ring`.
///
/// # Errors
/// [`TlsError::NoProvider`] when no default is installed and neither feature is on.
pub fn crypto_provider() -> Result<Arc<CryptoProvider>, TlsError> {
    if let Some(installed) = CryptoProvider::get_default() {
        return Ok(Arc::clone(installed));
    }
    compiled_in().ok_or(TlsError::NoProvider)
}

#[cfg(feature = "tls-aws-lc-rs")]
fn compiled_in() -> Option<Arc<CryptoProvider>> {
    Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

#[cfg(all(feature = "tls-ring", not(feature = "tls-aws-lc-rs")))]
#[allow(
    deprecated,
    reason = "rustls 0.23.48 deprecates ring's provider for its lack of post-quantum key exchange; it stays a lighter build on request"
)]
fn compiled_in() -> Option<Arc<CryptoProvider>> {
    Some(Arc::new(rustls::crypto::ring::default_provider()))
}

#[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]
fn compiled_in() -> Option<Arc<CryptoProvider>> {
    None
}
