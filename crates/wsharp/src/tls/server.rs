//! [`ServerTls`]: a server's certificate, its client-certificate policy, and reloading both
//! without a restart.

use std::path::Path;
use std::sync::{Arc, RwLock};

#[cfg(feature = "server")]
use super::ServerStream;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
#[cfg(feature = "server")]
use tokio::io::{AsyncRead, AsyncWrite};

use super::{TlsError, crypto_provider, pem};

/// Whether a server asks clients for a certificate.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificate is asked for (the default).
    #[default]
    None,
    /// A certificate is asked for and, if given, must chain to one of these CAs; a client
    /// without one is still accepted.
    Optional(Vec<CertificateDer<'static>>),
    /// A certificate chaining to one of these CAs is required.
    Required(Vec<CertificateDer<'static>>),
}

impl ClientAuth {
    /// [`ClientAuth::Required`] with the CA certificates in `pem`.
    ///
    /// # Errors
    /// [`TlsError::Config`] for PEM without a certificate.
    pub fn required_pem(pem: &[u8]) -> Result<Self, TlsError> {
        Ok(Self::Required(pem::certificates(pem)?))
    }

    /// [`ClientAuth::Optional`] with the CA certificates in `pem`.
    ///
    /// # Errors
    /// [`TlsError::Config`] for PEM without a certificate.
    pub fn optional_pem(pem: &[u8]) -> Result<Self, TlsError> {
        Ok(Self::Optional(pem::certificates(pem)?))
    }
}

/// Marks a request that arrived over TLS, in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct Secure;

/// The certificates a client presented, leaf first; in a request's extensions (so the
/// request hook sees it) and on a [`Session`](crate::server::Session).
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<[CertificateDer<'static>]>);

/// TLS for a server: its certificate chain and key, and what it asks of clients. Clones share
/// one current configuration, so [`reload_pem`](Self::reload_pem) on any clone changes what
/// new connections see; open connections keep theirs.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use wsharp::tls::ServerTls;
/// let tls = ServerTls::from_pem_files("cert.pem", "key.pem")?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9443").await?;
/// let (tcp, _) = listener.accept().await?;
/// let mut ws = wsharp::ServerBuilder::new().accept_tls(&tls, tcp).await?;
/// // Later, after renewing the certificate:
/// tls.reload_pem_files("cert.pem", "key.pem")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<RwLock<Arc<ServerConfig>>>,
    /// How to rebuild on a reload from PEM (absent for a caller's own configuration).
    settings: Arc<RwLock<Settings>>,
}

#[derive(Clone)]
struct Settings {
    provider: Option<Arc<CryptoProvider>>,
    client_auth: ClientAuth,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// TLS with this certificate chain (leaf first) and private key (PKCS#8, RSA or EC), PEM.
    ///
    /// # Errors
    /// [`TlsError::Config`] for unusable PEM or a key that does not fit;
    /// [`TlsError::NoProvider`].
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let settings = Settings {
            provider: None,
            client_auth: ClientAuth::None,
            chain: pem::certificates(chain)?,
            key: Arc::new(pem::private_key(key)?),
        };
        let config = settings.build()?;
        Ok(Self {
            current: Arc::new(RwLock::new(config)),
            settings: Arc::new(RwLock::new(settings)),
        })
    }

    /// As [`from_pem`](Self::from_pem), from files.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem), and for unreadable files.
    pub fn from_pem_files(
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        Self::from_pem(&pem::read(chain.as_ref())?, &pem::read(key.as_ref())?)
    }

    /// TLS with the caller's own rustls configuration, used as it is (its ALPN list
    /// included). Reload with [`reload_config`](Self::reload_config).
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        let settings = Settings {
            provider: None,
            client_auth: ClientAuth::None,
            chain: Vec::new(),
            key: Arc::new(PrivateKeyDer::Pkcs8(Vec::new().into())),
        };
        Self {
            current: Arc::new(RwLock::new(config)),
            settings: Arc::new(RwLock::new(settings)),
        }
    }

    /// Asks clients for a certificate as `auth` says.
    ///
    /// # Errors
    /// [`TlsError::Config`] for CA certificates rustls cannot use.
    pub fn with_client_auth(self, auth: ClientAuth) -> Result<Self, TlsError> {
        self.rebuild(|s| s.client_auth = auth)?;
        Ok(self)
    }

    /// Builds with this crypto provider instead of [`crypto_provider`]'s choice.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem).
    pub fn with_provider(self, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        self.rebuild(|s| s.provider = Some(provider))?;
        Ok(self)
    }

    /// Replaces the certificate chain and key for new connections; open connections are not
    /// affected. On error nothing changes.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem).
    pub fn reload_pem(&self, chain: &[u8], key: &[u8]) -> Result<(), TlsError> {
        let chain = pem::certificates(chain)?;
        let key = Arc::new(pem::private_key(key)?);
        self.rebuild(|s| {
            s.chain = chain;
            s.key = key;
        })
    }

    /// As [`reload_pem`](Self::reload_pem), from files.
    ///
    /// # Errors
    /// As [`reload_pem`](Self::reload_pem), and for unreadable files.
    pub fn reload_pem_files(
        &self,
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<(), TlsError> {
        self.reload_pem(&pem::read(chain.as_ref())?, &pem::read(key.as_ref())?)
    }

    /// Replaces the whole rustls configuration for new connections.
    pub fn reload_config(&self, config: Arc<ServerConfig>) {
        *self.current.write().expect("not poisoned") = config;
    }

    /// The configuration new connections get.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().expect("not poisoned"))
    }

    fn rebuild(&self, change: impl FnOnce(&mut Settings)) -> Result<(), TlsError> {
        let mut settings = self.settings.read().expect("not poisoned").clone();
        change(&mut settings);
        if settings.chain.is_empty() {
            return Err(TlsError::Config(
                "built from a caller's configuration: reload it with reload_config".into(),
            ));
        }
        let config = settings.build()?;
        *self.settings.write().expect("not poisoned") = settings;
        *self.current.write().expect("not poisoned") = config;
        Ok(())
    }

    /// Runs the server side of the TLS handshake on `io` with the current configuration: for
    /// serving something else over the same reloadable TLS (an axum or hyper application, as
    /// `examples/axum.rs` does). It has no timeout of its own.
    ///
    /// # Errors
    /// `Error::Tls` for a failed handshake, `Error::Io` for the transport.
    #[cfg(feature = "server")]
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
    ) -> crate::Result<ServerStream<S>> {
        Ok(ServerStream::accept(io, self.config()).await?)
    }
}

impl Settings {
    fn build(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = match &self.provider {
            Some(p) => Arc::clone(p),
            None => crypto_provider()?,
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let client_verifier = |cas: &[CertificateDer<'static>], optional: bool| {
            let mut store = rustls::RootCertStore::empty();
            let (_, refused) = store.add_parsable_certificates(cas.iter().cloned());
            if store.is_empty() {
                return Err(TlsError::Config(format!(
                    "no usable client CA certificate ({refused} refused)"
                )));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(store), Arc::clone(&provider));
            let verifier = if optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            verifier
                .build()
                .map_err(|e| TlsError::Config(format!("client CAs: {e}")))
        };
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(cas) => {
                builder.with_client_cert_verifier(client_verifier(cas, true)?)
            }
            ClientAuth::Required(cas) => {
                builder.with_client_cert_verifier(client_verifier(cas, false)?)
            }
        };
        let mut config = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        #[cfg(feature = "server")]
        {
            config.max_fragment_size = Some(super::server_stream::MAX_FRAGMENT_SIZE);
        }
        Ok(Arc::new(config))
    }
}

/// The certificates the client of `stream` presented, if any.
#[cfg(feature = "server")]
pub(crate) fn peer_certificates<S>(stream: &ServerStream<S>) -> Option<PeerCertificates> {
    let certs = stream.tls().peer_certificates()?;
    Some(PeerCertificates(certs.iter().cloned().collect()))
}

/// What a request that arrived on `stream` carries about its TLS: [`Secure`], and the client's
/// certificates if it presented any.
#[cfg(feature = "server")]
pub(crate) fn request_extensions<S>(stream: &ServerStream<S>) -> http::Extensions {
    let mut extensions = http::Extensions::new();
    extensions.insert(Secure);
    if let Some(certs) = peer_certificates(stream) {
        extensions.insert(certs);
    }
    extensions
}
