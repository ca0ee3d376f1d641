//! Per-service settings: validators, extensions, limits, keepalive and the connection cap.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use wsharp_proto::Config;
use wsharp_proto::deflate::Deflate;

/// Checks the `Origin` of an upgrade request; `false` refuses it with 403.
pub trait OriginValidator: Send + Sync + 'static {
    /// `origin` is the header's value, `None` if absent.
    fn validate(&self, origin: Option<&str>) -> bool;
}

impl<F: Fn(Option<&str>) -> bool + Send + Sync + 'static> OriginValidator for F {
    fn validate(&self, origin: Option<&str>) -> bool {
        self(origin)
    }
}

/// Checks the cookies of an upgrade request and may set response cookies; `false` refuses the
/// request with 403 (websocket-sharp's `CookiesValidator`).
pub trait CookiesValidator: Send + Sync + 'static {
    /// `request` holds the request's cookies in order; push `Set-Cookie` values to `response`.
    fn validate(&self, request: &[(String, String)], response: &mut Vec<String>) -> bool;
}

impl<F> CookiesValidator for F
where
    F: Fn(&[(String, String)], &mut Vec<String>) -> bool + Send + Sync + 'static,
{
    fn validate(&self, request: &[(String, String)], response: &mut Vec<String>) -> bool {
        self(request, response)
    }
}

/// An origin validator that accepts exactly these origins (scheme, host and port must all
/// match; `null` and absent origins are refused).
///
/// ```
/// use wsharp::server::{OriginValidator, allow_origins};
/// let check = allow_origins(["https://app.example"]);
/// assert!(check.validate(Some("https://app.example")));
/// assert!(!check.validate(Some("http://app.example")));
/// assert!(!check.validate(Some("https://app.example:8443")));
/// assert!(!check.validate(None));
/// ```
pub fn allow_origins<I, S>(origins: I) -> impl OriginValidator
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let allowed: Vec<String> = origins
        .into_iter()
        .map(|o| o.into().to_ascii_lowercase())
        .collect();
    move |origin: Option<&str>| {
        origin.is_some_and(|o| o != "null" && allowed.iter().any(|a| a.eq_ignore_ascii_case(o)))
    }
}

/// A responder that adds headers to a 101 from the request's headers and the session's id.
pub type ResponseHeaders = dyn Fn(&HeaderMap, &mut HeaderMap, &str) + Send + Sync;

/// What a session's outgoing queue does when a broadcast finds it full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// The message is dropped for that session and counted in the broadcast's report.
    #[default]
    Drop,
    /// The session is closed with 1008: a client that cannot keep up is disconnected.
    Close,
}

/// Settings of one service.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServiceOptions {
    /// Connection settings: limits, timeouts, fragmentation. Default: [`Config::default`].
    pub config: Config,
    /// permessage-deflate to accept; `None` answers without extensions (websocket-sharp's
    /// `IgnoreExtensions`). Default: `Some(Deflate::default())`.
    pub compression: Option<Deflate>,
    /// Subprotocols the service speaks; the first the client offers is chosen. Default: none.
    pub protocols: Vec<String>,
    /// Hand pings and pongs to `on_message` (websocket-sharp's `EmitOnPing`). Default `false`.
    pub emit_on_ping: bool,
    /// Checks the Origin; default none (every origin).
    pub origin: Option<Arc<dyn OriginValidator>>,
    /// Checks the cookies; default none.
    pub cookies: Option<Arc<dyn CookiesValidator>>,
    /// Adds headers to the 101 from the request's (websocket-sharp's `UserHeadersResponder`):
    /// called with the request's headers, the response's, and the id the session will have.
    /// Headers of the handshake itself (`Upgrade`, `Connection`, `Sec-WebSocket-*`) it sets are
    /// ignored. Default none.
    pub response_headers: Option<Arc<ResponseHeaders>>,
    /// Demands HTTP authentication before the upgrade (401 with the challenge otherwise); the
    /// user is then [`Session::identity`](super::Session::identity). Default none: the
    /// server's own, if it has one.
    pub auth: Option<Arc<crate::auth::Authenticator>>,
    /// The `Host` values accepted (`name:port`, compared case-insensitively); others get 403.
    /// Guards a loopback server against DNS rebinding. Default none (any host).
    pub hosts: Option<Vec<String>>,
    /// Most sessions at once; more are refused with 503 before the upgrade. Default none.
    pub max_connections: Option<usize>,
    /// Messages a session may have queued to send. Default 256.
    pub send_queue: usize,
    /// Received messages queued while a callback runs. Default 16.
    pub receive_queue: usize,
    /// What a broadcast does with a full queue. Default [`Overflow::Drop`].
    pub overflow: Overflow,
    /// Ping a session after this long without a frame from it, and close it with 1011
    /// (keepalive timeout) if it stays silent as long again: a dead peer is gone within two
    /// intervals. Sets the connection's [`Config::keepalive_interval`](wsharp_proto::Config);
    /// default none (the config's own setting applies).
    pub keepalive: Option<Duration>,
    /// websocket-sharp's `KeepClean`: every three wait times, ping every session and close those
    /// whose pong does not come within `wait_time` ([`Sessions::sweep`](super::Sessions::sweep)).
    /// Default `false` here (the keepalive does the same per connection).
    pub keep_clean: bool,
    /// How long a session may stay silent before a sweep counts it inactive (websocket-sharp's
    /// `WaitTime`). Default 1 s.
    pub wait_time: Duration,
}

impl std::fmt::Debug for ServiceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceOptions")
            .field("config", &self.config)
            .field("compression", &self.compression)
            .field("protocols", &self.protocols)
            .field("emit_on_ping", &self.emit_on_ping)
            .field("origin", &self.origin.is_some())
            .field("cookies", &self.cookies.is_some())
            .field("auth", &self.auth)
            .field("max_connections", &self.max_connections)
            .field("keepalive", &self.keepalive)
            .finish_non_exhaustive()
    }
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            config: Config::default(),
            compression: Some(Deflate::default()),
            protocols: Vec::new(),
            emit_on_ping: false,
            origin: None,
            cookies: None,
            auth: None,
            response_headers: None,
            hosts: None,
            max_connections: None,
            send_queue: 256,
            receive_queue: 16,
            overflow: Overflow::Drop,
            keepalive: None,
            keep_clean: false,
            wait_time: Duration::from_secs(1),
        }
    }
}

impl ServiceOptions {
    /// Sets [`ServiceOptions::config`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets [`ServiceOptions::compression`].
    pub fn compression(mut self, deflate: impl Into<Option<Deflate>>) -> Self {
        self.compression = deflate.into();
        self
    }

    /// Answers without any extension (websocket-sharp's `IgnoreExtensions = true`).
    pub fn ignore_extensions(self) -> Self {
        self.compression(None)
    }

    /// Sets [`ServiceOptions::protocols`].
    pub fn protocols<I: IntoIterator<Item = S>, S: Into<String>>(mut self, protocols: I) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`ServiceOptions::emit_on_ping`].
    pub fn emit_on_ping(mut self, emit: bool) -> Self {
        self.emit_on_ping = emit;
        self
    }

    /// Sets [`ServiceOptions::origin`].
    pub fn origin(mut self, validator: impl OriginValidator) -> Self {
        self.origin = Some(Arc::new(validator));
        self
    }

    /// Sets [`ServiceOptions::cookies`].
    pub fn cookies(mut self, validator: impl CookiesValidator) -> Self {
        self.cookies = Some(Arc::new(validator));
        self
    }

    /// Sets [`ServiceOptions::auth`].
    ///
    /// ```
    /// use wsharp::auth::{Authenticator, Users};
    /// use wsharp::server::ServiceOptions;
    /// let users = Users::new().with("nobita", "sekret");
    /// let options = ServiceOptions::default().auth(Authenticator::digest("chat", users));
    /// ```
    pub fn auth(mut self, authenticator: crate::auth::Authenticator) -> Self {
        self.auth = Some(Arc::new(authenticator));
        self
    }

    /// Sets [`ServiceOptions::response_headers`].
    ///
    /// ```
    /// use wsharp::server::ServiceOptions;
    /// // websocket-sharp's Example2: a client that sends RequestForID gets its session's ID.
    /// let options = ServiceOptions::default().response_headers(|request, response, id| {
    ///     if request.contains_key("RequestForID") {
    ///         response.insert("ID", id.parse().unwrap());
    ///     }
    /// });
    /// ```
    pub fn response_headers(
        mut self,
        responder: impl Fn(&HeaderMap, &mut HeaderMap, &str) + Send + Sync + 'static,
    ) -> Self {
        self.response_headers = Some(Arc::new(responder));
        self
    }

    /// Sets [`ServiceOptions::hosts`].
    pub fn hosts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, hosts: I) -> Self {
        self.hosts = Some(hosts.into_iter().map(Into::into).collect());
        self
    }

    /// Sets [`ServiceOptions::max_connections`].
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// Sets [`ServiceOptions::send_queue`] (at least 1).
    pub fn send_queue(mut self, messages: usize) -> Self {
        self.send_queue = messages.max(1);
        self
    }

    /// Sets [`ServiceOptions::overflow`].
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Sets [`ServiceOptions::keepalive`].
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.keepalive = interval;
        self
    }

    /// Sets [`ServiceOptions::keep_clean`] and [`ServiceOptions::wait_time`].
    pub fn keep_clean(mut self, on: bool, wait_time: Duration) -> Self {
        self.keep_clean = on;
        self.wait_time = wait_time;
        self
    }
}

/// Most cookies read from one request; more are ignored (a bounded parse).
const MAX_COOKIES: usize = 64;

/// Parses the `Cookie` headers of a request into name/value pairs, in order, keeping
/// duplicates; pairs without `=`, with a name that is not a token, or with a value that is not
/// UTF-8 are skipped (the other pairs of the header are kept), and at most 64 pairs are read.
pub fn parse_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::COOKIE) {
        for pair in value.as_bytes().split(|&b| b == b';') {
            if out.len() == MAX_COOKIES {
                return out;
            }
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            let name = pair[..eq].trim_ascii();
            if name.is_empty()
                || !name
                    .iter()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(b))
            {
                continue;
            }
            let Ok(val) = std::str::from_utf8(pair[eq + 1..].trim_ascii()) else {
                continue;
            };
            let name = std::str::from_utf8(name).expect("a token is ASCII");
            out.push((name.to_owned(), val.trim_matches('"').to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_14_cookie_parsing_is_bounded_and_defined() {
        let mut headers = HeaderMap::new();
        let long: String = (0..1000).map(|i| format!("c{i}=v{i}; ")).collect();
        headers.insert(http::header::COOKIE, long.parse().unwrap());
        headers.append(
            http::header::COOKIE,
            "a=1; a=2; bad name=x; noeq; q=\"quoted\"".parse().unwrap(),
        );
        let cookies = parse_cookies(&headers);
        assert_eq!(cookies.len(), MAX_COOKIES);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; a=2; bad name=x; noeq; q=\"quoted\"".parse().unwrap(),
        );
        assert_eq!(
            parse_cookies(&headers),
            [
                ("a".into(), "1".into()),
                ("a".into(), "2".into()),
                ("q".into(), "quoted".into())
            ]
        );
        // Bytes that are not UTF-8 lose their own pair only; UTF-8 values are kept.
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_bytes(b"x=\xff; token=good; n=caf\xc3\xa9; \xc3\xa9=1")
                .unwrap(),
        );
        assert_eq!(
            parse_cookies(&headers),
            [
                ("token".into(), "good".into()),
                ("n".into(), "caf\u{e9}".into())
            ]
        );
    }
}
