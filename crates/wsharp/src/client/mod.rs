//! The client: [`connect`] and [`ClientBuilder`].

mod attempts;
#[cfg(feature = "cookies")]
mod cookie_jar;
mod proxy;

#[cfg(feature = "cookies")]
pub use cookie_jar::CookieJar;
pub use proxy::{Proxy, ProxyError, ProxyFailure, ProxyKind, ProxySettings};

pub(crate) use attempts::Attempts;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, COOKIE, ORIGIN, SEC_WEBSOCKET_PROTOCOL, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use wsharp_proto::deflate::Deflate;
use wsharp_proto::handshake::{
    ClientHandshake, ExpectResponse, HandshakeError, HeadReader, MAX_ERROR_BODY,
};
use wsharp_proto::{Config, Connection, Limits, Role};

use crate::auth::{AuthScheme, ClientAuth, Credentials};
use crate::error::{Error, Result};
use crate::socket::WebSocket;
use crate::transport::Transport;

/// Opens a WebSocket to `url` (`ws://host[:port]/path?query`) with default settings.
///
/// ```no_run
/// # async fn run() -> wsharp::Result<()> {
/// let mut ws = wsharp::connect("ws://127.0.0.1:9001/echo").await?;
/// ws.send("hello").await?;
/// while let Some(msg) = ws.recv().await {
///     println!("{:?}", msg?);
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
/// See [`ClientBuilder::connect`].
pub async fn connect(url: &str) -> Result<WebSocket<Transport>> {
    ClientBuilder::new(url).connect().await
}

/// Settings for a client connection. Invalid settings are reported by
/// [`connect`](Self::connect), not when they are set.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    headers: Vec<(String, String)>,
    protocols: Vec<String>,
    origin: Option<String>,
    cookies: Vec<(String, String)>,
    pub(crate) auth: ClientAuth,
    /// Where connections go; an invalid proxy URL is reported by `connect`.
    pub(crate) proxies: std::result::Result<ProxySettings, String>,
    /// Redirects followed at most; 0 follows none.
    pub(crate) max_redirects: usize,
    /// TCP_NODELAY on the connection.
    pub(crate) no_delay: bool,
    #[cfg(feature = "cookies")]
    pub(crate) cookie_jar: Option<std::sync::Arc<CookieJar>>,
    pub(crate) config: Config,
    pub(crate) compression: Option<Deflate>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::ClientTls>,
}

impl ClientBuilder {
    /// Settings for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: Vec::new(),
            protocols: Vec::new(),
            origin: None,
            cookies: Vec::new(),
            auth: ClientAuth::default(),
            proxies: Ok(ProxySettings::default()),
            max_redirects: 0,
            no_delay: true,
            #[cfg(feature = "cookies")]
            cookie_jar: None,
            config: Config::default(),
            compression: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// TLS settings for a `wss://` URL; without them a `wss://` connection verifies the
    /// server against the platform's trust store ([`ClientTls::new`](crate::tls::ClientTls::new)).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Subprotocols to offer, most preferred first.
    pub fn subprotocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.protocols.extend(protocols.into_iter().map(Into::into));
        self
    }

    /// The `Origin` header to send.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Credentials for HTTP authentication (websocket-sharp's `SetCredentials`): a 401 is
    /// answered once with the strongest scheme offered (Digest SHA-256, Digest MD5, then Basic;
    /// see [`auth_scheme`](Self::auth_scheme)) on a new connection; a second 401 is
    /// [`Error::Auth`]. Credentials in the URL (`ws://user:pass@host/`, percent-decoded) are
    /// used when none are set here; they never appear in the request line or `Host`. A Digest
    /// challenge is remembered: clones of this builder answer it at once with the next `nc`.
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// let ws = wsharp::ClientBuilder::new("wss://example.com/chat")
    ///     .credentials("nobita", "sekret")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth.set_credentials(Credentials::new(user, password));
        self
    }

    /// Which schemes may answer a challenge. Default [`AuthScheme::Any`].
    pub fn auth_scheme(mut self, scheme: AuthScheme) -> Self {
        self.auth.set_scheme(scheme);
        self
    }

    /// Sends Basic credentials with the first request instead of waiting for a challenge
    /// (websocket-sharp's `preAuth`). Over `ws://` the password crosses in the clear: a warning
    /// is logged each time. Default `false`.
    pub fn preauthenticate(mut self, on: bool) -> Self {
        self.auth.set_preemptive(on);
        self
    }

    /// Connects through the proxy at `url`: `http://[user:password@]host:port` (a tunnel with
    /// `CONNECT`; `wss://` runs TLS inside it, verified for the server, never the proxy),
    /// `socks5://` or `socks5h://` (the proxy resolves the server's name). Without it the
    /// environment decides ([`ProxySettings::from_env`]); an invalid URL makes
    /// [`connect`](Self::connect) fail.
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// let ws = wsharp::ClientBuilder::new("wss://example.com/chat")
    ///     .proxy("http://nobita:sekret@127.0.0.1:3128")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn proxy(mut self, url: &str) -> Self {
        self.proxies = Proxy::parse(url)
            .map(ProxySettings::all)
            .map_err(|e| e.to_string());
        self
    }

    /// Where connections go: [`ProxySettings::from_env`] (the default),
    /// [`none`](ProxySettings::none), one proxy for all, or rules from other variables.
    pub fn proxy_settings(mut self, settings: ProxySettings) -> Self {
        self.proxies = Ok(settings);
        self
    }

    /// TCP_NODELAY (websocket-sharp's `NoDelay`), on by default: wsharp writes each message
    /// (or a batch of them) in one write, so Nagle's algorithm would save no packets and only
    /// hold back small messages, pings and close frames until the peer's delayed ACK (up to
    /// 40 ms on Linux).
    pub fn no_delay(mut self, on: bool) -> Self {
        self.no_delay = on;
        self
    }

    /// Follows up to `max` redirects (301, 302, 303, 307, 308) of the upgrade request
    /// (websocket-sharp's `EnableRedirection`); 0, the default, follows none. `Location` may be
    /// relative; `http`/`https` there mean `ws`/`wss`; a redirect from `wss` to `ws` is refused,
    /// and so is a loop. When the origin changes, credentials, the `Authorization` header and
    /// the builder's cookies are dropped (a cookie jar sends what matches the new origin). The
    /// URL finally connected to is in the response's extensions as an [`http::Uri`]
    /// ([`connect_with_response`](Self::connect_with_response)). The proxy is chosen again
    /// for each URL.
    pub fn follow_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// A cookie to send with the upgrade request (websocket-sharp's `SetCookie`). A name that
    /// is not a token or a value with characters a cookie cannot hold makes
    /// [`connect`](Self::connect) fail before anything is written.
    pub fn cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// Keeps the cookies servers set in `jar` and sends the matching ones with each upgrade
    /// request (after those of [`cookie`](Self::cookie)).
    #[cfg(feature = "cookies")]
    pub fn cookie_jar(mut self, jar: std::sync::Arc<CookieJar>) -> Self {
        self.cookie_jar = Some(jar);
        self
    }

    /// An extra request header, `Authorization` included (Bearer tokens and other schemes).
    /// A name or value that is not valid HTTP (CR, LF or NUL included) makes
    /// [`connect`](Self::connect) fail before anything is written.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Offers permessage-deflate (RFC 7692) with these parameters; `None` (the default) offers
    /// no compression. A server that declines leaves the connection uncompressed.
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// use wsharp::Deflate;
    /// let ws = wsharp::ClientBuilder::new("ws://127.0.0.1:9001/")
    ///     .compression(Deflate::default().client_no_context_takeover(true))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Without the `deflate` cargo feature nothing is offered, whatever this says.
    pub fn compression(mut self, deflate: impl Into<Option<Deflate>>) -> Self {
        self.compression = deflate.into();
        self
    }

    /// Connection settings (limits, timeouts, fragmentation).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Size limits (a shortcut into [`config`](Self::config)).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The upgrade request these settings make.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL that is not `ws://` or `wss://` with a host;
    /// [`Error::Handshake`] for an invalid header, origin or subprotocol.
    pub fn request(&self) -> Result<Request<()>> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| Error::InvalidUrl(format!("{}: {e}", self.url)))?;
        let uri =
            without_userinfo(uri).map_err(|e| Error::InvalidUrl(format!("{}: {e}", self.url)))?;
        match uri.scheme_str() {
            Some("ws") => {}
            #[cfg(feature = "tls")]
            Some("wss") => {}
            #[cfg(not(feature = "tls"))]
            Some("wss") => {
                return Err(Error::InvalidUrl(format!(
                    "{}: wss:// needs TLS, which this build lacks (wsharp's tls feature)",
                    self.url
                )));
            }
            _ => {
                return Err(Error::InvalidUrl(format!(
                    "{}: the scheme must be ws or wss",
                    self.url
                )));
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(Error::InvalidUrl(format!("{}: no host", self.url)));
        }
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            Error::Handshake(HandshakeError::InvalidRequest(format!("{what}: {e}")))
        };
        let mut req = Request::builder()
            .uri(uri)
            .body(())
            .map_err(|e| invalid("uri", &e))?;
        let headers = req.headers_mut();
        if let Some(origin) = &self.origin {
            headers.insert(
                ORIGIN,
                HeaderValue::from_str(origin).map_err(|e| invalid("origin", &e))?,
            );
        }
        if !self.protocols.is_empty() {
            for p in &self.protocols {
                if p.is_empty() || p.bytes().any(|b| !b.is_ascii_graphic() || b == b',') {
                    return Err(invalid("subprotocol", &format!("{p:?} is not a token")));
                }
            }
            let value = self.protocols.join(", ");
            headers.insert(
                SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(&value).map_err(|e| invalid("subprotocol", &e))?,
            );
        }
        #[cfg(feature = "deflate")]
        if let Some(deflate) = &self.compression {
            let offer = HeaderValue::from_str(&deflate.offer_header())
                .map_err(|e| invalid("extension", &e))?;
            headers.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, offer);
        }
        if !self.cookies.is_empty() {
            for (name, value) in &self.cookies {
                if !is_token(name) || !value.bytes().all(is_cookie_octet) {
                    return Err(invalid(
                        "cookie",
                        &format!("{name:?}={value:?} is not a valid cookie"),
                    ));
                }
            }
            let joined = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            headers.insert(
                COOKIE,
                HeaderValue::from_str(&joined).map_err(|e| invalid("cookie", &e))?,
            );
        }
        for (name, value) in &self.headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid("header name", &e))?;
            let value = HeaderValue::from_str(value).map_err(|e| invalid("header value", &e))?;
            headers.append(name, value);
        }
        Ok(req)
    }

    /// Connects over TCP (and TLS for `wss://`) and performs the opening handshake, all within
    /// [`Config::handshake_timeout`].
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], [`Error::Io`] (unreachable host), `Error::Tls` (the server's
    /// certificate is not trusted, has expired or names another host; a plain server on a
    /// `wss://` URL), [`Error::HandshakeTimeout`], or [`Error::Handshake`] (a refused upgrade
    /// carries the status and headers).
    pub async fn connect(self) -> Result<WebSocket<Transport>> {
        self.connect_with_response().await.map(|(ws, _)| ws)
    }

    /// Connects as [`connect`](Self::connect) does and also returns the server's 101
    /// response, whose headers (`Set-Cookie`, custom ones) the program may want.
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// let (ws, response) = wsharp::ClientBuilder::new("ws://127.0.0.1:9001/")
    ///     .connect_with_response()
    ///     .await?;
    /// for cookie in response.headers().get_all("set-cookie") {
    ///     println!("{cookie:?}");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with_response(self) -> Result<(WebSocket<Transport>, Response<()>)> {
        let mut attempts = Attempts::new(&self)?;
        let proxies = self.proxy_settings_checked()?;
        let deadline = Instant::now() + self.config.handshake_timeout;
        let work = async {
            loop {
                let request = attempts.request();
                let (host, port) = host_port(request.uri());
                let tcp = match proxies.resolve(request.uri()) {
                    Some(proxy) => proxy.connect(&host, port, &self.config.limits).await?,
                    None => TcpStream::connect((host.as_str(), port)).await?,
                };
                tcp.set_nodelay(self.no_delay)?;
                let transport = match request.uri().scheme_str() {
                    #[cfg(feature = "tls")]
                    Some("wss") => {
                        let tls = self.tls.clone().unwrap_or_default();
                        Transport::tls_to(tls.connect(&host, tcp).await?, request.uri().clone())
                    }
                    _ => Transport::tcp_to(tcp, request.uri().clone()),
                };
                let result = handshake(
                    transport,
                    &request,
                    self.config.clone(),
                    self.compression,
                    deadline,
                )
                .await;
                match result {
                    Ok((ws, mut response)) => {
                        attempts.accepted(&mut response);
                        return Ok((ws, response));
                    }
                    Err(e) => attempts.refused(e)?,
                }
            }
        };
        tokio::time::timeout_at(deadline, work)
            .await
            .map_err(|_| Error::HandshakeTimeout)?
    }

    /// The proxy settings, or the error for an invalid proxy URL.
    pub(crate) fn proxy_settings_checked(&self) -> Result<ProxySettings> {
        self.proxies.clone().map_err(Error::InvalidUrl)
    }

    /// The credentials in the URL's user-info, percent-decoded.
    pub(crate) fn url_credentials(&self) -> Option<Credentials> {
        let rest = self.url.split_once("://")?.1;
        let authority = rest.split(['/', '?', '#']).next()?;
        let (userinfo, _) = authority.rsplit_once('@')?;
        Some(Credentials::from_userinfo(userinfo))
    }

    /// Performs the opening handshake over a stream the caller opened (a proxy tunnel, a TLS
    /// stream, an in-memory pipe), within [`Config::handshake_timeout`]. One stream carries one
    /// request: a 401 challenge is not answered on it (pre-authenticated Basic and a remembered
    /// Digest challenge are sent).
    ///
    /// # Errors
    /// As [`connect`](Self::connect), less the TCP part.
    pub async fn connect_on<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        stream: S,
    ) -> Result<WebSocket<S>> {
        let mut attempts = Attempts::new(&self)?;
        let request = attempts.request();
        let deadline = Instant::now() + self.config.handshake_timeout;
        let result = tokio::time::timeout_at(
            deadline,
            handshake(stream, &request, self.config, self.compression, deadline),
        )
        .await
        .map_err(|_| Error::HandshakeTimeout)?;
        match result {
            Ok((ws, mut response)) => {
                attempts.accepted(&mut response);
                Ok(ws)
            }
            Err(e) => Err(attempts.single_refusal(e)),
        }
    }
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    request: &Request<()>,
    config: Config,
    compression: Option<Deflate>,
    deadline: Instant,
) -> Result<(WebSocket<S>, Response<()>)> {
    let (bytes, expect) = ClientHandshake::start(request)?;
    io.write_all(&bytes).await?;
    io.flush().await?;
    let mut reader = HeadReader::new(config.limits.max_handshake_size);
    let head = loop {
        if let Some(head) = reader.poll_head()? {
            break head;
        }
        if io.read_buf(reader.buffer()).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed during the handshake",
            )
            .into());
        }
    };
    let (conn, protocol, response) =
        match finish_handshake(&expect, &head, request, config, compression) {
            Ok(agreed) => agreed,
            Err(Error::Handshake(HandshakeError::UnexpectedStatus {
                status, headers, ..
            })) => {
                let body = read_error_body(&mut io, &headers, reader.into_rest(), deadline).await;
                return Err(HandshakeError::UnexpectedStatus {
                    status,
                    headers,
                    body,
                }
                .into());
            }
            Err(e) => return Err(e),
        };
    let rest = reader.into_rest();
    Ok((
        WebSocket::from_connection(io, conn, &rest, protocol),
        response,
    ))
}

/// How much of a refusal's body to keep: up to [`MAX_ERROR_BODY`] of a `Content-Length` body,
/// `None` for any other (close-delimited or chunked), of which only what came with the head
/// is kept.
pub(crate) fn error_body_len(headers: &HeaderMap) -> Option<usize> {
    if headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    let length: u64 = headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(usize::try_from(length).map_or(MAX_ERROR_BODY, |l| l.min(MAX_ERROR_BODY)))
}

/// Reads the start of a refusal's body after its head: `received` is what came with the head;
/// more is read only for a `Content-Length` body, never past [`MAX_ERROR_BODY`] nor `deadline`.
/// A read error or the deadline ends it with what was read.
async fn read_error_body<S: AsyncRead + Unpin>(
    io: &mut S,
    headers: &HeaderMap,
    mut received: BytesMut,
    deadline: Instant,
) -> Bytes {
    let Some(want) = error_body_len(headers) else {
        received.truncate(MAX_ERROR_BODY);
        return received.freeze();
    };
    let read = async {
        while received.len() < want {
            // Never more than the body still wanted: bytes past the cap stay unread.
            let mut limited = (&mut *io).take((want - received.len()) as u64);
            match limited.read_buf(&mut received).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline, read).await;
    received.truncate(want);
    received.freeze()
}

/// The host (without IPv6 brackets) and port to connect to for `uri`.
pub(crate) fn host_port(uri: &Uri) -> (String, u16) {
    let host = uri.host().unwrap_or_default();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let default_port = if uri.scheme_str() == Some("wss") {
        443
    } else {
        80
    };
    (host, uri.port_u16().unwrap_or(default_port))
}

/// Checks the server's response head and sets up the connection it agreed to.
pub(crate) fn finish_handshake(
    expect: &ExpectResponse,
    head: &[u8],
    request: &Request<()>,
    config: Config,
    compression: Option<Deflate>,
) -> Result<(Connection, Option<String>, Response<()>)> {
    let accepted = expect.check(head, &config.limits)?;
    tracing::debug!(uri = %request.uri(), protocol = ?accepted.protocol, "handshake complete");
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut conn = Connection::new(Role::Client, config);
    match (accepted.extensions.as_slice(), compression) {
        ([], _) => {}
        #[cfg(feature = "deflate")]
        ([one], Some(deflate)) => {
            let negotiated = deflate
                .accept_response(one)
                .map_err(|e| HandshakeError::UnexpectedExtension(format!("{one}: {e}")))?;
            conn.set_deflate(&negotiated, &deflate);
        }
        (many, _) => return Err(HandshakeError::UnexpectedExtension(many.join(", ")).into()),
    }
    Ok((conn, accepted.protocol, accepted.response))
}

/// `uri` without the user-info of its authority (credentials never go in `Host` or the
/// request line).
fn without_userinfo(uri: Uri) -> std::result::Result<Uri, http::Error> {
    let Some(authority) = uri.authority() else {
        return Ok(uri);
    };
    let Some((_, host)) = authority.as_str().rsplit_once('@') else {
        return Ok(uri);
    };
    let host = host.to_owned();
    let mut parts = uri.into_parts();
    parts.authority = Some(host.parse()?);
    Ok(Uri::from_parts(parts)?)
}

/// Whether `s` is an HTTP token (a cookie name).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 6265's cookie-octet: printable ASCII but space, `"`, `,`, `;` and `\`.
fn is_cookie_octet(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\')
}
