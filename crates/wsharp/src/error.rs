//! The error type of the async and blocking layers.

use wsharp_proto::handshake::HandshakeError;
use wsharp_proto::{Failure, ProtocolError, SendError};

/// Anything that can go wrong on a WebSocket connection.
///
/// A connection that ends with a close handshake is not an error: `recv` yields the peer's
/// [`Message::Close`](crate::Message::Close) and then `None`. Errors are the other endings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// TLS failed: the handshake (an untrusted, expired or misnamed certificate, a refused
    /// client certificate, a peer that does not speak TLS) or the configuration.
    #[cfg(feature = "tls")]
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The opening handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// HTTP authentication failed: no credentials, refused ones, or no scheme we can answer;
    /// with the status and the server's challenges.
    #[cfg(any(feature = "client", feature = "server"))]
    #[error("authentication failed: {0}")]
    Auth(Box<crate::auth::AuthError>),
    /// A proxy could not be reached, wanted credentials (407), or refused the tunnel.
    #[cfg(feature = "client")]
    #[error("{0}")]
    Proxy(Box<crate::client::ProxyError>),
    /// A redirect could not be followed: too many, a loop, `wss` to `ws`, or no valid
    /// `Location`.
    #[cfg(feature = "client")]
    #[error("redirect not followed: {0}")]
    Redirect(String),
    /// The opening handshake did not finish within the handshake timeout.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer broke the protocol or a limit; we closed the connection with the error's
    /// [close code](ProtocolError::close_code).
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer's stream ended without a close handshake (close status 1006).
    #[error("connection reset without a closing handshake")]
    ResetWithoutClosingHandshake,
    /// The close handshake did not finish within the close timeout (close status 1006).
    #[error("close handshake timed out")]
    CloseTimeout,
    /// The peer sent nothing in answer to the keepalive's ping in time; we closed the
    /// connection with 1011.
    #[error("keepalive timeout: the peer did not answer")]
    KeepaliveTimeout,
    /// A message could not be sent: the connection is closing, or the message was refused.
    #[error("cannot send: {0}")]
    Send(#[from] SendError),
    /// A ping's pong did not come back in the time given; the connection is still open.
    #[error("no pong within {0:?}")]
    PongTimeout(std::time::Duration),
    /// Nothing arrived within the time a blocking `recv_timeout` was given; the connection is
    /// still usable.
    #[error("timed out waiting for a message")]
    Timeout,
    /// A service is already mounted on this path (remove it first).
    #[cfg(feature = "server")]
    #[error("a service is already mounted on {0}")]
    PathTaken(String),
    /// The URL is not a valid `ws://` or `wss://` URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The server's backplane could not reach the session or the cluster.
    #[cfg(feature = "server")]
    #[error("{0}")]
    Backplane(#[from] crate::server::BackplaneError),
    /// `recv` met a message that is being received in parts: read it to its last part with
    /// `recv_part` first. The connection is still usable.
    #[error("a message is being received in parts: read it to its last part with recv_part")]
    MessageInParts,
}

impl From<std::io::Error> for Error {
    /// An I/O error, or the TLS error a TLS stream reported through one.
    fn from(e: std::io::Error) -> Self {
        #[cfg(feature = "tls")]
        if let Some(tls) = crate::tls::from_io(&e) {
            return Self::Tls(tls);
        }
        Self::Io(e)
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Protocol(e) => Self::Protocol(e),
            Failure::ResetWithoutClosingHandshake => Self::ResetWithoutClosingHandshake,
            Failure::CloseTimeout => Self::CloseTimeout,
            Failure::KeepaliveTimeout => Self::KeepaliveTimeout,
            // A kind of ending this version does not know by name.
            other => Self::Io(std::io::Error::other(other)),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
