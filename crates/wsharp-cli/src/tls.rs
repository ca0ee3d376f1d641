//! TLS for `wsharp serve` and `wsharp echo`: certificate files, client certificates, a
//! throw-away self-signed certificate, and reloading the files on SIGHUP.

use std::path::PathBuf;

use base64::Engine;
use sha2::Digest;
use wsharp::tls::{ClientAuth, ServerTls};

use crate::exit::Failure;

/// The TLS options the servers share.
#[derive(Debug, clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve TLS (https, wss) with this certificate chain, PEM; needs --tls-key. SIGHUP
    /// reloads both files.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM (PKCS#8, RSA or EC).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by a CA in this PEM file (mutual TLS).
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The server TLS the options describe, if any; reloads its files on SIGHUP.
    pub(crate) fn server_tls(&self) -> Result<Option<ServerTls>, Failure> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            if self.tls_client_ca.is_some() {
                return Err(Failure::new(
                    crate::exit::code::USAGE,
                    "--tls-client-ca needs --tls-cert and --tls-key",
                ));
            }
            return Ok(None);
        };
        let tls = ServerTls::from_pem_files(cert, key).map_err(|e| Failure::tls_setup(&e))?;
        let tls = self.with_client_auth(tls)?;
        reload_on_sighup(tls.clone(), cert.clone(), key.clone());
        Ok(Some(tls))
    }

    /// Adds the client-certificate requirement, if asked for.
    pub(crate) fn with_client_auth(&self, tls: ServerTls) -> Result<ServerTls, Failure> {
        let Some(ca) = &self.tls_client_ca else {
            return Ok(tls);
        };
        let pem = std::fs::read(ca).map_err(|e| {
            Failure::new(
                crate::exit::code::TLS,
                format!("TLS: {}: {e}", ca.display()),
            )
        })?;
        let auth = ClientAuth::required_pem(&pem).map_err(|e| Failure::tls_setup(&e))?;
        tls.with_client_auth(auth)
            .map_err(|e| Failure::tls_setup(&e))
    }
}

/// A throw-away certificate for `localhost`, `127.0.0.1` and `::1`, made now; logs its
/// fingerprints (the certificate's SHA-256, and the base64 SPKI SHA-256 that Chromium's
/// `--ignore-certificate-errors-spki-list` takes).
pub(crate) fn self_signed() -> Result<ServerTls, Failure> {
    let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Failure::new(crate::exit::code::TLS, format!("TLS: {e}")))?;
    let fingerprint = sha2::Sha256::digest(certified.cert.der())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let spki = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(
        rcgen::PublicKeyData::subject_public_key_info(&certified.signing_key),
    ));
    tracing::info!("self-signed certificate, SHA-256 fingerprint {fingerprint}");
    tracing::info!(
        "its SPKI SHA-256 (base64, for Chromium's --ignore-certificate-errors-spki-list): {spki}"
    );
    ServerTls::from_pem(
        certified.cert.pem().as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )
    .map_err(|e| Failure::tls_setup(&e))
}

/// Reloads `cert` and `key` into `tls` on every SIGHUP; open connections keep theirs.
fn reload_on_sighup(tls: ServerTls, cert: PathBuf, key: PathBuf) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot watch for SIGHUP: certificate reload by signal is off");
            return;
        };
        while hangups.recv().await.is_some() {
            match tls.reload_pem_files(&cert, &key) {
                Ok(()) => tracing::info!("SIGHUP: reloaded {}", cert.display()),
                Err(e) => tracing::warn!("SIGHUP: kept the old certificate: {e}"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (tls, cert, key);
}
