//! The requests of one `connect`, without I/O: the first upgrade request, and after a refusal
//! whether to try again (answering a 401 challenge) or fail. Shared by the async and the
//! blocking client.

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode, Uri};
use wsharp_proto::handshake::HandshakeError;

use super::ClientBuilder;
use crate::auth::{AuthError, AuthFailure, Challenge, ClientAuth};
use crate::error::{Error, Result};

/// Requests made for one connection: at most the first, one answer to a challenge, and one
/// more when the server says the nonce was stale.
const MAX_ATTEMPTS: u8 = 3;

/// The state of one `connect` across its attempts.
pub(crate) struct Attempts {
    base: Request<()>,
    auth: ClientAuth,
    /// The `Authorization` for the next request, and its scheme.
    next: Option<(http::HeaderValue, &'static str)>,
    /// The scheme of the credentials the last request carried.
    sent: Option<&'static str>,
    made: u8,
    #[cfg(feature = "cookies")]
    jar: Option<std::sync::Arc<super::CookieJar>>,
}

impl Attempts {
    /// The attempts for `builder`'s settings.
    ///
    /// # Errors
    /// As [`ClientBuilder::request`].
    pub(crate) fn new(builder: &ClientBuilder) -> Result<Self> {
        let base = builder.request()?;
        let mut auth = builder.auth.clone();
        if auth.credentials().is_none()
            && let Some(credentials) = builder.url_credentials()
        {
            auth.set_credentials(credentials);
        }
        let mut this = Self {
            base,
            auth,
            next: None,
            sent: None,
            made: 0,
            #[cfg(feature = "cookies")]
            jar: builder.cookie_jar.clone(),
        };
        if !this.base.headers().contains_key(AUTHORIZATION) {
            this.next = this
                .auth
                .first("GET", this.target(), this.secure())
                .map(|a| (a.authorization, a.scheme));
        }
        Ok(this)
    }

    /// The URL's URI (without user-info).
    pub(crate) fn uri(&self) -> &Uri {
        self.base.uri()
    }

    fn target(&self) -> &str {
        self.base.uri().path_and_query().map_or("/", |p| p.as_str())
    }

    fn secure(&self) -> bool {
        self.base.uri().scheme_str() == Some("wss")
    }

    /// The next request to send.
    pub(crate) fn request(&mut self) -> Request<()> {
        self.made += 1;
        let mut request = self.base.clone();
        self.sent = None;
        if let Some((value, scheme)) = self.next.take() {
            request.headers_mut().insert(AUTHORIZATION, value);
            self.sent = Some(scheme);
        }
        #[cfg(feature = "cookies")]
        if let Some(jar) = &self.jar {
            let uri = request.uri().clone();
            super::cookie_jar::add_cookies(jar, &uri, request.headers_mut());
        }
        request
    }

    /// Notes the 101.
    pub(crate) fn accepted(&self, response: &Response<()>) {
        #[cfg(feature = "cookies")]
        if let Some(jar) = &self.jar {
            jar.store(self.base.uri(), response.headers());
        }
        #[cfg(not(feature = "cookies"))]
        let _ = response;
        if let Some(scheme) = self.sent {
            tracing::debug!(uri = %self.base.uri(), scheme, "authenticated");
        }
    }

    /// Decides after a failed handshake: `Ok(())` to send [`request`](Self::request) again on
    /// a new connection, or the error to report.
    ///
    /// # Errors
    /// `error` itself unless it is a 401 we can answer; [`Error::Auth`] for a 401 we cannot.
    pub(crate) fn refused(&mut self, error: Error) -> Result<()> {
        let Error::Handshake(HandshakeError::UnexpectedStatus {
            status, headers, ..
        }) = &error
        else {
            return Err(error);
        };
        #[cfg(feature = "cookies")]
        if let Some(jar) = &self.jar {
            jar.store(self.base.uri(), headers);
        }
        if *status != StatusCode::UNAUTHORIZED {
            return Err(error);
        }
        let challenges = Challenge::parse_headers(headers.get_all(WWW_AUTHENTICATE));
        let fail = |failure| {
            Error::Auth(Box::new(AuthError {
                status: *status,
                failure,
                challenges: challenges.clone(),
                headers: (**headers).clone(),
            }))
        };
        if self.auth.credentials().is_none() || self.base.headers().contains_key(AUTHORIZATION) {
            return Err(fail(if self.base.headers().contains_key(AUTHORIZATION) {
                AuthFailure::Refused
            } else {
                AuthFailure::NoCredentials
            }));
        }
        let stale = self.sent == Some("Digest")
            && challenges.iter().any(|c| {
                c.is("Digest")
                    && c.param("stale")
                        .is_some_and(|s| s.eq_ignore_ascii_case("true"))
            });
        if self.made >= MAX_ATTEMPTS || (self.sent.is_some() && !stale) {
            self.auth.forget();
            return Err(fail(AuthFailure::Refused));
        }
        let answer = self
            .auth
            .answer(&challenges, "GET", self.target(), self.secure())
            .map_err(fail)?;
        tracing::debug!(uri = %self.base.uri(), scheme = answer.scheme, stale, "answering the challenge");
        self.next = Some((answer.authorization, answer.scheme));
        Ok(())
    }

    /// The error for a refusal when no second request can be made (one stream given).
    pub(crate) fn single_refusal(&mut self, error: Error) -> Error {
        self.made = MAX_ATTEMPTS;
        match self.refused(error) {
            Err(e) => e,
            Ok(()) => unreachable!("no attempt is left"),
        }
    }
}
