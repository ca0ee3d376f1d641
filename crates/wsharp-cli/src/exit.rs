//! How a command ends: one line on standard error and an exit code that tells the cases apart.

use std::fmt;
use std::process::ExitCode;

use wsharp::{CloseCode, Error, HandshakeError};

/// The exit codes besides 0 (closed normally), documented in `wsharp --help` and docs/cli.md.
pub(crate) mod code {
    /// Any other failure: a server that cannot listen, standard output gone.
    pub(crate) const FAILURE: u8 = 1;
    /// Invalid arguments or URL.
    pub(crate) const USAGE: u8 = 2;
    /// The server closed the connection with an error code.
    pub(crate) const CLOSED_WITH_ERROR: u8 = 3;
    /// The connection was lost: reset, no close handshake, close timeout, I/O error.
    pub(crate) const CONNECTION_LOST: u8 = 4;
    /// The server broke the protocol; we closed with the fitting code.
    pub(crate) const PROTOCOL_ERROR: u8 = 5;
    /// The server could not be reached: name resolution, refused, unreachable.
    pub(crate) const UNREACHABLE: u8 = 10;
    /// TLS failed: the server's certificate, the handshake, or the TLS settings given.
    pub(crate) const TLS: u8 = 11;
    /// The server asked for authentication (401 or 407).
    pub(crate) const AUTH: u8 = 12;
    /// The server refused the upgrade or answered it wrongly.
    pub(crate) const REFUSED: u8 = 13;
    /// The opening handshake timed out.
    pub(crate) const TIMEOUT: u8 = 14;
}

/// The exit code table for `--help`, as a literal for `concat!`.
macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  0   closed normally (1000, 1001, or no code)
  1   other failure (cannot listen, output closed)
  2   invalid arguments or URL
  3   the server closed with an error code
  4   connection lost (no close handshake, close timeout, I/O error)
  5   the server broke the protocol (we closed with its code)
  10  server or proxy unreachable (name, refused, unreachable)
  11  TLS failed (untrusted, expired or misnamed certificate, handshake, TLS files)
  12  authentication failed (401, or 407 from the proxy)
  13  upgrade or tunnel refused, answered wrongly, or a redirect not followed
  14  handshake timed out"
    };
}
pub(crate) use exit_codes;

/// A failed command: what to print and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A failure to connect to `url`.
    pub(crate) fn connecting(url: &str, error: &Error) -> Self {
        let (code, what) = match error {
            Error::InvalidUrl(e) => return Self::new(code::USAGE, format!("invalid URL {e}")),
            Error::HandshakeTimeout => (code::TIMEOUT, "the opening handshake timed out".into()),
            Error::Tls(e) => (code::TLS, format!("TLS: {e}")),
            Error::Handshake(e @ HandshakeError::TlsOnPlainConnection) => {
                (code::TLS, e.to_string())
            }
            Error::Io(e) => (code::UNREACHABLE, format!("cannot connect: {e}")),
            Error::Auth(e) => (code::AUTH, format!("authentication failed: {e}")),
            Error::Proxy(e) => {
                let code = match &e.failure {
                    wsharp::ProxyFailure::Unreachable(_) => code::UNREACHABLE,
                    wsharp::ProxyFailure::Auth(_) => code::AUTH,
                    _ => code::REFUSED,
                };
                (code, e.to_string())
            }
            Error::Redirect(e) => (code::REFUSED, format!("redirect not followed: {e}")),
            Error::Handshake(HandshakeError::UnexpectedStatus { status, .. }) => {
                let code = match status.as_u16() {
                    401 | 407 => code::AUTH,
                    _ => code::REFUSED,
                };
                (code, format!("the server refused the upgrade: {status}"))
            }
            Error::Handshake(e @ HandshakeError::InvalidRequest(_)) => {
                (code::USAGE, format!("invalid request: {e}"))
            }
            Error::Handshake(e) => (code::REFUSED, format!("bad upgrade response: {e}")),
            other => (code::FAILURE, other.to_string()),
        };
        Self::new(code, format!("{url}: {what}"))
    }

    /// A connection that ended with `error` after the handshake.
    pub(crate) fn ended(error: &Error) -> Self {
        match error {
            e @ (Error::ResetWithoutClosingHandshake
            | Error::CloseTimeout
            | Error::KeepaliveTimeout) => {
                Self::new(code::CONNECTION_LOST, format!("connection lost: {e}"))
            }
            Error::Protocol(e) => Self::new(
                code::PROTOCOL_ERROR,
                format!(
                    "the server broke the protocol: {e} (closed with {})",
                    e.close_code().0
                ),
            ),
            Error::Io(e) => Self::new(code::CONNECTION_LOST, format!("connection lost: {e}")),
            Error::Tls(e) => Self::new(code::TLS, format!("TLS: {e}")),
            other => Self::new(code::FAILURE, other.to_string()),
        }
    }

    /// Unusable TLS settings (files, keys).
    pub(crate) fn tls_setup(error: &wsharp::tls::TlsError) -> Self {
        Self::new(code::TLS, format!("TLS: {error}"))
    }

    /// The end of a connection whose close handshake carried `code`.
    pub(crate) fn closed(code: CloseCode, reason: &str) -> Option<Self> {
        match code.0 {
            1000 | 1001 | 1005 => None,
            other => Some(Self::new(
                code::CLOSED_WITH_ERROR,
                format!("the server closed the connection with {other} {reason:?}"),
            )),
        }
    }

    /// Prints the line and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        eprintln!("wsharp: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::new(code::FAILURE, e.to_string())
    }
}
