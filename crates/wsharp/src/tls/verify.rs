//! Server-certificate verifiers wsharp adds to rustls': one that lets a program's callback
//! judge the chain after the usual checks, and one, for tests only, that accepts anything.
//!
//! Both still check the handshake's signatures with the provider's algorithms: a verifier that
//! accepted any signature would let anyone in the middle impersonate the server.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::TlsError;

/// What a verification callback is shown: the server's chain (leaf first), the name connected
/// to, and the verdict of the standard checks.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerCertificate<'a> {
    /// The server's certificate, then the intermediates it sent.
    pub chain: Vec<CertificateDer<'a>>,
    /// The host name or IP address connected to.
    pub server_name: String,
    /// What the standard verification found: `Ok` if the chain is trusted and valid for the
    /// name.
    pub verdict: Result<(), TlsError>,
}

/// A callback that decides on a server's certificate: `true` accepts it.
pub type VerifyCallback = dyn Fn(&ServerCertificate<'_>) -> bool + Send + Sync;

/// Runs the standard verifier, then lets the callback decide.
pub(crate) struct CallbackVerifier {
    pub(crate) inner: Arc<dyn ServerCertVerifier>,
    pub(crate) callback: Arc<VerifyCallback>,
}

impl std::fmt::Debug for CallbackVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackVerifier").finish_non_exhaustive()
    }
}

impl ServerCertVerifier for CallbackVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(TlsError::from);
        let shown = ServerCertificate {
            chain: std::iter::once(end_entity.clone())
                .chain(intermediates.iter().cloned())
                .collect(),
            server_name: server_name.to_str().into_owned(),
            verdict,
        };
        if (self.callback)(&shown) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any certificate for any name: for tests against throw-away certificates only.
/// Handshake signatures are still checked against the certificate presented.
#[derive(Debug)]
pub(crate) struct AcceptAnyCertificate(pub(crate) Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
