//! HTTP authentication on the opening handshake (and on every request of an
//! [`HttpServer`](crate::http_server::HttpServer)): Basic (RFC 7617) and Digest (RFC 7616), in
//! both roles.
//!
//! - Client: [`ClientBuilder::credentials`](crate::ClientBuilder::credentials) (or the URL's
//!   `user:password@`) answers a 401 with the strongest scheme offered, Digest SHA-256 over
//!   Digest MD5 over Basic; [`ClientBuilder::preauthenticate`](crate::ClientBuilder::preauthenticate)
//!   sends Basic at once. A refusal is [`Error::Auth`](crate::Error::Auth).
//! - Server: an [`Authenticator`] with a realm and a [`CredentialsFinder`]; the logged-in
//!   [`Identity`] is on the session and in the request's extensions.
//!
//! Any other scheme (Bearer, ...) goes through `ClientBuilder::header("Authorization", ..)`
//! and the server's request hook. No maintained crate does the server's side of Digest, so
//! this module is written here; the hashes are RustCrypto's, the comparisons `subtle`'s.

#[cfg(feature = "client")]
mod client;
mod digest;
mod params;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub(crate) use client::ClientAuth;
pub use digest::DigestAlgorithm;
pub use params::Challenge;
#[cfg(feature = "server")]
pub use server::{Authenticator, Clock, CredentialsFinder, UserEntry, Users};

use http::{HeaderMap, StatusCode};

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// `user` with `password`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The credentials of a URL's user-info, `user[:password]`, percent-decoded.
    #[cfg(feature = "client")]
    pub(crate) fn from_userinfo(userinfo: &str) -> Self {
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        Self::new(
            crate::percent::decode(user, false),
            crate::percent::decode(password, false),
        )
    }

    #[cfg(feature = "client")]
    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for Credentials {
    /// The user only: a password is never logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Which schemes a client may answer a challenge with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthScheme {
    /// The strongest offered: Digest (SHA-256, then MD5), then Basic.
    #[default]
    Any,
    /// Basic only.
    Basic,
    /// Digest only.
    Digest,
}

/// Why authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The server asked for credentials and none were given.
    NoCredentials,
    /// The server refused the credentials sent.
    Refused,
    /// No challenge offered a scheme and algorithm we may answer (NTLM, Negotiate, ...).
    NoSupportedScheme,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NoCredentials => "credentials required and none given",
            Self::Refused => "credentials refused",
            Self::NoSupportedScheme => "no supported authentication scheme offered",
        })
    }
}

/// A failed authentication: the status (401, or 407 from a proxy), why, and what the server
/// offered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthError {
    /// 401 or 407.
    pub status: StatusCode,
    /// Why.
    pub failure: AuthFailure,
    /// Every challenge of the last response, in order.
    pub challenges: Vec<Challenge>,
    /// The last response's headers.
    pub headers: HeaderMap,
}

impl std::fmt::Display for AuthError {
    /// `401 Unauthorized: credentials refused (offered: Digest realm="x", Basic realm="x")`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.failure)?;
        if !self.challenges.is_empty() {
            f.write_str(" (offered: ")?;
            for (i, c) in self.challenges.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for AuthError {}

/// Who logged in: the user name, the user's roles, and the scheme used. A server puts it on
/// the [`Session`](crate::server::Session) and in a request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    name: String,
    roles: Vec<String>,
    scheme: &'static str,
}

impl Identity {
    /// An identity (for a request hook that authenticates by other means).
    pub fn new(name: impl Into<String>, roles: Vec<String>, scheme: &'static str) -> Self {
        Self {
            name: name.into(),
            roles,
            scheme,
        }
    }

    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user's roles.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// Whether the user has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The scheme the user logged in with: `Basic`, `Digest`, or a hook's own.
    pub fn scheme(&self) -> &str {
        self.scheme
    }
}
