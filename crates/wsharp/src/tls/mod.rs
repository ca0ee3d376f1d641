//! TLS (`wss://`, `https://`) on rustls: verified by default, with an explicit crypto provider
//! everywhere (the library never installs a process default, so programs never meet rustls'
//! "no process-level CryptoProvider" panic).
//!
//! - A client verifies the server's chain and name against the platform's trust store
//!   ([`ClientTls`]; extra CAs, a verification callback, a client certificate, or a whole
//!   `rustls::ClientConfig` are options). Set it with
//!   [`ClientBuilder::tls`](crate::ClientBuilder::tls); a `wss://` URL uses the default.
//! - A server presents a certificate chain from PEM ([`ServerTls`]), may ask clients for
//!   theirs ([`ClientAuth`]), and reloads its certificate without a restart. Use it with
//!   [`ServerBuilder::accept_tls`](crate::ServerBuilder::accept_tls),
//!   `WebSocketServer::tls` and `HttpServerOptions::tls`.
//! - Failures are [`TlsError`]s, inside [`Error::Tls`](crate::Error::Tls).
//!
//! Features: `tls-ring` (the default) or `tls-aws-lc-rs` choose the compiled-in provider
//! (aws-lc-rs wins if both are on); a provider the program installed with
//! `rustls::crypto::CryptoProvider::install_default` is used first. `tls-webpki-roots` adds
//! Mozilla's roots for machines without a trust store. See `docs/tls.md`.

mod client;
mod error;
pub mod pem;
mod provider;
mod server;
#[cfg(feature = "server")]
mod server_stream;
mod verify;

#[cfg(feature = "client")]
pub(crate) use client::server_name;
pub use client::{ClientTls, Roots};
pub use error::TlsError;
pub(crate) use error::from_io;
pub use provider::crypto_provider;
pub use rustls;
pub use rustls_pki_types::CertificateDer;
#[cfg(feature = "server")]
pub(crate) use server::request_extensions;
pub use server::{ClientAuth, PeerCertificates, Secure, ServerTls};
#[cfg(feature = "server")]
pub use server_stream::ServerStream;
pub use tokio_rustls;
pub use verify::{ServerCertificate, VerifyCallback};
