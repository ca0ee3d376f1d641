//! [`ClientTls`]: how a `wss://` client verifies the server and what it presents.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::CertificateDer;
#[cfg(feature = "client")]
use rustls_pki_types::ServerName;
#[cfg(feature = "client")]
use tokio::io::{AsyncRead, AsyncWrite};
#[cfg(feature = "client")]
use tokio_rustls::client::TlsStream;

use super::verify::{AcceptAnyCertificate, CallbackVerifier, ServerCertificate, VerifyCallback};
use super::{TlsError, crypto_provider, pem};

/// Where a client's trusted certificate authorities come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Roots {
    /// The platform's trust store (through `rustls-platform-verifier`, as reqwest uses it; on
    /// Linux the system bundle, `SSL_CERT_FILE` and `SSL_CERT_DIR`), plus any added CAs.
    #[default]
    Platform,
    /// Mozilla's roots compiled in (feature `tls-webpki-roots`), plus any added CAs: for
    /// machines without a trust store.
    #[cfg(feature = "tls-webpki-roots")]
    Webpki,
    /// Only the CAs added with [`ClientTls::add_ca_pem`] or [`ClientTls::add_ca_pem_file`].
    AddedOnly,
}

/// TLS settings of a `wss://` client. The default verifies the server's chain and name
/// against the platform's trust store, offers ALPN `http/1.1`, sends SNI for host names, and
/// presents no certificate.
///
/// ```no_run
/// # async fn run() -> wsharp::Result<()> {
/// use wsharp::tls::ClientTls;
/// let tls = ClientTls::new().add_ca_pem_file("test-ca.pem");
/// let ws = wsharp::ClientBuilder::new("wss://localhost:9443/").tls(tls).connect().await?;
/// # Ok(()) }
/// ```
///
/// The rustls configuration is built once, on first use, and shared by clones.
#[derive(Clone, Default)]
pub struct ClientTls {
    roots: Roots,
    ca_pems: Vec<Vec<u8>>,
    ca_files: Vec<PathBuf>,
    callback: Option<Arc<VerifyCallback>>,
    accept_any: bool,
    identity: Option<Identity>,
    config: Option<Arc<ClientConfig>>,
    provider: Option<Arc<CryptoProvider>>,
    built: Arc<OnceLock<Result<Arc<ClientConfig>, TlsError>>>,
}

/// A client certificate chain and its key, as PEM or as files.
#[derive(Clone)]
enum Identity {
    Pem(Vec<u8>, Vec<u8>),
    Files(PathBuf, PathBuf),
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots)
            .field("added_cas", &(self.ca_pems.len() + self.ca_files.len()))
            .field("callback", &self.callback.is_some())
            .field("accept_any", &self.accept_any)
            .field("client_certificate", &self.identity.is_some())
            .field("custom_config", &self.config.is_some())
            .finish()
    }
}

impl ClientTls {
    /// The default settings: the platform's trust store.
    pub fn new() -> Self {
        Self::default()
    }

    fn changed(mut self) -> Self {
        self.built = Arc::default();
        self
    }

    /// Where trusted authorities come from; [`Roots::Platform`] by default.
    pub fn roots(mut self, roots: Roots) -> Self {
        self.roots = roots;
        self.changed()
    }

    /// Also trusts the CA certificates in `pem`.
    pub fn add_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pems.push(pem.into());
        self.changed()
    }

    /// Also trusts the CA certificates in the PEM file at `path` (read when first used).
    pub fn add_ca_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self.changed()
    }

    /// Lets `callback` decide on the server's certificate after the standard checks: it sees
    /// the chain, the name and their verdict, and returns whether to accept (websocket-sharp's
    /// `ServerCertificateValidationCallback`). Handshake signatures are always checked.
    pub fn verify_with(
        mut self,
        callback: impl Fn(&ServerCertificate<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.callback = Some(Arc::new(callback));
        self.changed()
    }

    /// Accepts any server certificate, for any name, unverified: **for tests against
    /// throw-away certificates only**; anyone in the path can then read and change the
    /// connection. Takes precedence over the roots and the callback.
    pub fn dangerous_accept_any_certificate(mut self) -> Self {
        self.accept_any = true;
        self.changed()
    }

    /// Presents this client certificate chain (leaf first) and key, both PEM (mutual TLS).
    pub fn client_certificate_pem(
        mut self,
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some(Identity::Pem(chain.into(), key.into()));
        self.changed()
    }

    /// Presents the client certificate chain and key in these PEM files (read when first used).
    pub fn client_certificate_pem_files(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.identity = Some(Identity::Files(chain.into(), key.into()));
        self.changed()
    }

    /// Uses this rustls configuration as it is, instead of building one: for anything the
    /// settings above do not cover. Its ALPN list is the caller's.
    pub fn config(mut self, config: Arc<ClientConfig>) -> Self {
        self.config = Some(config);
        self.changed()
    }

    /// Builds with this crypto provider instead of [`crypto_provider`]'s choice.
    pub fn provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self.changed()
    }

    /// The rustls configuration these settings make (built once, then shared).
    ///
    /// # Errors
    /// [`TlsError::NoProvider`], [`TlsError::NoRoots`] (no trust store and no CA given), or
    /// [`TlsError::Config`] for an unreadable CA file, certificate or key.
    pub fn build(&self) -> Result<Arc<ClientConfig>, TlsError> {
        self.built.get_or_init(|| self.make()).clone()
    }

    fn make(&self) -> Result<Arc<ClientConfig>, TlsError> {
        if let Some(config) = &self.config {
            return Ok(Arc::clone(config));
        }
        let provider = match &self.provider {
            Some(p) => Arc::clone(p),
            None => crypto_provider()?,
        };
        let mut added = Vec::new();
        for pem in &self.ca_pems {
            added.extend(pem::certificates(pem)?);
        }
        for path in &self.ca_files {
            added.extend(pem::certificates(&pem::read(path)?)?);
        }
        let verifier: Arc<dyn ServerCertVerifier> = if self.accept_any {
            Arc::new(AcceptAnyCertificate(Arc::clone(&provider)))
        } else {
            let standard = standard_verifier(self.roots, added, &provider)?;
            match &self.callback {
                Some(callback) => Arc::new(CallbackVerifier {
                    inner: standard,
                    callback: Arc::clone(callback),
                }),
                None => standard,
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(identity) => {
                let (chain, key) = match identity {
                    Identity::Pem(c, k) => (c.clone(), k.clone()),
                    Identity::Files(c, k) => (pem::read(c)?, pem::read(k)?),
                };
                builder
                    .with_client_auth_cert(pem::certificates(&chain)?, pem::private_key(&key)?)
                    .map_err(|e| TlsError::Config(format!("client certificate: {e}")))?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Runs the TLS handshake on `io` for `host` (a name, or an IP address, bracketed or not).
    #[cfg(feature = "client")]
    pub(crate) async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        host: &str,
        io: S,
    ) -> crate::Result<TlsStream<S>> {
        let config = self.build()?;
        let name = server_name(host)?;
        let connector = tokio_rustls::TlsConnector::from(config);
        Ok(connector.connect(name, io).await?)
    }
}

/// The standard verifier for these roots.
fn standard_verifier(
    roots: Roots,
    added: Vec<CertificateDer<'static>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let webpki = |store: rustls::RootCertStore| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(provider))
            .build()
            .map(|v| v as Arc<dyn ServerCertVerifier>)
            .map_err(|e| TlsError::NoRoots(e.to_string()))
    };
    match roots {
        Roots::Platform => {
            rustls_platform_verifier::Verifier::new_with_extra_roots(added, Arc::clone(provider))
                .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
                .map_err(|e| {
                    TlsError::NoRoots(format!(
                        "{e}; add a CA (ClientTls::add_ca_pem) or use the tls-webpki-roots feature"
                    ))
                })
        }
        #[cfg(feature = "tls-webpki-roots")]
        Roots::Webpki => {
            let mut store = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            store.add_parsable_certificates(added);
            webpki(store)
        }
        Roots::AddedOnly => {
            let mut store = rustls::RootCertStore::empty();
            let (_, refused) = store.add_parsable_certificates(added);
            if store.is_empty() {
                return Err(TlsError::NoRoots(format!(
                    "no usable CA certificate was added ({refused} refused)"
                )));
            }
            webpki(store)
        }
    }
}

/// The server name to verify and send as SNI: an IP address for an IP host (no SNI is sent
/// then), else the DNS name.
#[cfg(feature = "client")]
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|e| TlsError::Config(format!("{host:?} is not a valid server name: {e}")))
}
