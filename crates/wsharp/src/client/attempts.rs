//! The requests of one `connect`, without I/O: the first upgrade request, and after a refusal
//! whether to try again (answering a 401 challenge, following a redirect) or fail. Shared by
//! the async and the blocking client.

use http::header::{AUTHORIZATION, COOKIE, LOCATION, WWW_AUTHENTICATE};
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
    /// Redirects left to follow, and the URLs visited (loops).
    redirects_left: usize,
    max_redirects: usize,
    visited: Vec<Uri>,
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
            redirects_left: builder.max_redirects,
            max_redirects: builder.max_redirects,
            visited: Vec::new(),
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

    /// Notes the 101, and puts the URL connected to in its extensions.
    pub(crate) fn accepted(&self, response: &mut Response<()>) {
        response.extensions_mut().insert(self.base.uri().clone());
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
        if is_redirect(*status) && self.max_redirects > 0 {
            if self.redirects_left == 0 {
                return Err(Error::Redirect(format!(
                    "{}: more than {} redirects",
                    self.base.uri(),
                    self.max_redirects
                )));
            }
            let location = headers.get(LOCATION).and_then(|v| v.to_str().ok());
            return self.redirect(location);
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

    /// Follows a redirect to `location`: the next request goes there.
    fn redirect(&mut self, location: Option<&str>) -> Result<()> {
        let from = self.base.uri().clone();
        let Some(location) = location else {
            return Err(Error::Redirect(format!(
                "{from}: a redirect without a Location"
            )));
        };
        let to = resolve(&from, location).ok_or_else(|| {
            Error::Redirect(format!(
                "{from}: Location {location:?} is not a ws, wss, http or https URL"
            ))
        })?;
        if from.scheme_str() == Some("wss") && to.scheme_str() == Some("ws") {
            return Err(Error::Redirect(format!(
                "{from} to {to}: from wss to ws refused"
            )));
        }
        self.visited.push(from.clone());
        if self.visited.contains(&to) {
            return Err(Error::Redirect(format!("{to}: a redirect loop")));
        }
        self.redirects_left -= 1;
        if origin(&from) != origin(&to) {
            // Nothing meant for the first server goes to another.
            let headers = self.base.headers_mut();
            headers.remove(AUTHORIZATION);
            headers.remove(COOKIE);
            self.auth = ClientAuth::default();
        }
        self.next = None;
        self.made = 0;
        tracing::debug!(%from, %to, "following a redirect");
        *self.base.uri_mut() = to;
        if !self.base.headers().contains_key(AUTHORIZATION) {
            self.next = self
                .auth
                .first("GET", self.target(), self.secure())
                .map(|a| (a.authorization, a.scheme));
        }
        Ok(())
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// `location` resolved against `base`, with `http` as `ws` and `https` as `wss`.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    let absolute = if location.contains("://") {
        location.to_owned()
    } else if location.starts_with("//") {
        format!("{}:{location}", base.scheme_str()?)
    } else if location.starts_with('/') {
        format!("{}://{}{location}", base.scheme_str()?, base.authority()?)
    } else {
        // Relative to the base path's directory.
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!(
            "{}://{}{dir}{location}",
            base.scheme_str()?,
            base.authority()?
        )
    };
    let (scheme, rest) = absolute.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return None,
    };
    let uri: Uri = format!("{scheme}://{rest}").parse().ok()?;
    uri.host().filter(|h| !h.is_empty())?;
    Some(uri)
}

/// Scheme, host and port.
fn origin(uri: &Uri) -> (Option<&str>, Option<&str>, Option<u16>) {
    let default = if uri.scheme_str() == Some("wss") {
        443
    } else {
        80
    };
    (
        uri.scheme_str(),
        uri.host(),
        Some(uri.port_u16().unwrap_or(default)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_and_schemes_map() {
        let base: Uri = "ws://a.test:9000/chat/room?x=1".parse().unwrap();
        let r = |l: &str| resolve(&base, l).map(|u| u.to_string());
        assert_eq!(r("/other").as_deref(), Some("ws://a.test:9000/other"));
        assert_eq!(
            r("next?y=2").as_deref(),
            Some("ws://a.test:9000/chat/next?y=2")
        );
        assert_eq!(r("https://b.test/x").as_deref(), Some("wss://b.test/x"));
        assert_eq!(r("http://b.test/x").as_deref(), Some("ws://b.test/x"));
        assert_eq!(r("//c.test/y").as_deref(), Some("ws://c.test/y"));
        assert_eq!(r("ftp://b.test/"), None);
        assert_eq!(r("http:///nohost"), None);
    }

    #[test]
    fn origins() {
        let same = |a: &str, b: &str| origin(&a.parse().unwrap()) == origin(&b.parse().unwrap());
        assert!(same("ws://a.test/", "ws://a.test:80/x"));
        assert!(!same("ws://a.test/", "wss://a.test/"));
        assert!(!same("ws://a.test/", "ws://a.test:81/"));
    }
}
