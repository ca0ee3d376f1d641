//! Servers: [`accept`]/[`ServerBuilder`] for single connections, and the framework of
//! websocket-sharp: [`WebSocketServer`] with [`Service`]s on paths, a [`Behavior`] per
//! session, and [`Sessions`] to send, broadcast, ping, close and sweep.

mod addr;
mod backplane;
mod behavior;
mod hub;
mod local_send;
mod options;
mod outbound_stream;
mod service;
mod session;
mod session_task;
mod sessions;
mod ws_server;

pub use addr::{LocalAddr, PeerAddr, is_local};
pub use backplane::{Backplane, BackplaneError, BackplaneStats, Directed, Health, LocalDelivery};
pub use behavior::Behavior;
#[cfg(feature = "http-server")]
pub(crate) use hub::Hub;
pub use options::{
    CookiesValidator, OriginValidator, Overflow, ResponseHeaders, ServiceOptions, allow_origins,
    parse_cookies,
};
#[cfg(feature = "http-server")]
pub(crate) use service::SessionStart;
pub use service::{BoxIo, Io, Service};
pub use session::Session;
pub use sessions::{Broadcast, Sessions};
pub use ws_server::WebSocketServer;
#[cfg(feature = "http-server")]
pub(crate) use ws_server::listen_address;
pub use wsharp_proto::CloseStatus;

use std::sync::Arc;

use bytes::BytesMut;
use http::{Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wsharp_proto::deflate::Deflate;
use wsharp_proto::handshake::{
    HandshakeError, HeadReader, UpgradeRequest, accept_response, check_request, encode_response,
    parse_request, reject_response,
};
use wsharp_proto::{Config, Connection, Limits, Role};

use crate::error::{Error, Result};
use crate::socket::WebSocket;

/// A refusal of an upgrade request: the status, headers and body of the response to send.
///
/// ```
/// use wsharp::Refusal;
/// use wsharp::http::StatusCode;
/// let refusal = Refusal::new(StatusCode::FORBIDDEN).body("origin not allowed");
/// assert_eq!(refusal.response().status(), 403);
/// ```
#[derive(Debug)]
pub struct Refusal(Box<Response<String>>);

impl Refusal {
    /// A refusal with `status` and an empty body.
    pub fn new(status: StatusCode) -> Self {
        let mut response = Response::new(String::new());
        *response.status_mut() = status;
        Self(Box::new(response))
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        *self.0.body_mut() = body.into();
        self
    }

    /// Adds a header (an invalid name or value is ignored).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            self.0.headers_mut().append(n, v);
        }
        self
    }

    /// The response that will be sent.
    pub fn response(&self) -> &Response<String> {
        &self.0
    }

    /// The response that will be sent, owned.
    pub fn into_response(self) -> Response<String> {
        *self.0
    }
}

impl From<StatusCode> for Refusal {
    fn from(status: StatusCode) -> Self {
        Self::new(status)
    }
}

impl From<Response<String>> for Refusal {
    fn from(response: Response<String>) -> Self {
        Self(Box::new(response))
    }
}

/// Decides on an upgrade request: `Ok(Some(protocol))` accepts with that subprotocol (one the
/// client offered), `Ok(None)` accepts without one, `Err(response)` refuses.
pub trait OnRequest: Send + Sync + 'static {
    /// Looks at the request and what it offers.
    fn on_request(
        &self,
        request: &Request<()>,
        upgrade: &UpgradeRequest,
    ) -> Result<Option<String>, Refusal>;
}

impl<F> OnRequest for F
where
    F: Fn(&Request<()>, &UpgradeRequest) -> Result<Option<String>, Refusal> + Send + Sync + 'static,
{
    fn on_request(
        &self,
        request: &Request<()>,
        upgrade: &UpgradeRequest,
    ) -> Result<Option<String>, Refusal> {
        self(request, upgrade)
    }
}

/// Accepts a WebSocket on `stream` with default settings.
///
/// ```no_run
/// # async fn run() -> wsharp::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let mut ws = wsharp::accept(tcp).await?;
/// while let Some(msg) = ws.recv().await {
///     let msg = msg?;
///     if msg.is_data() {
///         ws.send(msg).await?;
///     }
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
/// See [`ServerBuilder::accept`].
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<WebSocket<S>> {
    ServerBuilder::new().accept(stream).await
}

/// Settings for accepting connections; cheap to clone and share between accept tasks.
#[derive(Clone)]
pub struct ServerBuilder {
    /// Shared with every connection accepted.
    config: Arc<Config>,
    on_request: Option<Arc<dyn OnRequest>>,
    compression: Option<Deflate>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("on_request", &self.on_request.is_some())
            .finish()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// Default settings: no subprotocol chosen, every valid upgrade accepted.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config::default()),
            on_request: None,
            compression: None,
        }
    }

    /// Connection settings (limits, timeouts, fragmentation).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Accepts permessage-deflate offers within these limits (the first acceptable offer wins;
    /// bad offers are declined, never fatal). `None`, the default, answers without any
    /// extension, as websocket-sharp's `IgnoreExtensions`. Without the `deflate` cargo feature
    /// every offer is declined.
    pub fn compression(mut self, deflate: impl Into<Option<Deflate>>) -> Self {
        self.compression = deflate.into();
        self
    }

    /// Size limits (a shortcut into [`config`](Self::config)).
    pub fn limits(mut self, limits: Limits) -> Self {
        Arc::make_mut(&mut self.config).limits = limits;
        self
    }

    /// The hook that sees each valid upgrade request and accepts it (choosing a subprotocol)
    /// or refuses it with a response.
    pub fn on_request(mut self, hook: impl OnRequest) -> Self {
        self.on_request = Some(Arc::new(hook));
        self
    }

    /// Accepts only these subprotocols: the first the client offers that is in `protocols` is
    /// chosen; a client that offers none of them is accepted without a subprotocol.
    pub fn subprotocols<I, P>(self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        let ours: Vec<String> = protocols.into_iter().map(Into::into).collect();
        self.on_request(move |_: &Request<()>, up: &UpgradeRequest| {
            Ok(up.protocols.iter().find(|p| ours.contains(p)).cloned())
        })
    }

    /// The settings.
    pub fn get_config(&self) -> &Config {
        &self.config
    }

    /// Reads the upgrade request from `stream`, checks it, asks the hook, and answers 101, all
    /// within [`Config::handshake_timeout`]. A bad request is answered with its 4xx status and
    /// `Connection: close`, and the stream is shut down.
    ///
    /// # Errors
    /// [`Error::Handshake`] for a bad or refused request, [`Error::HandshakeTimeout`],
    /// [`Error::Io`].
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
    ) -> Result<WebSocket<S>> {
        let timeout = self.config.handshake_timeout;
        let (request, rest) = tokio::time::timeout(timeout, self.read_request(&mut stream))
            .await
            .map_err(|_| Error::HandshakeTimeout)??;
        self.upgrade(stream, &request, &rest).await
    }

    /// Runs the TLS handshake with `tls`, then accepts the upgrade as
    /// [`accept`](Self::accept) does, both within [`Config::handshake_timeout`] (a client that
    /// sends a ClientHello and goes silent is dropped in time). The client's certificates, if
    /// it presented any, are in the request's extensions as
    /// [`PeerCertificates`](crate::tls::PeerCertificates) for the request hook.
    ///
    /// # Errors
    /// `Error::Tls` for a failed TLS handshake (not TLS at all, no certificate when one is
    /// required, ...), and as [`accept`](Self::accept).
    #[cfg(feature = "tls")]
    pub async fn accept_tls<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        tls: &crate::tls::ServerTls,
        stream: S,
    ) -> Result<WebSocket<crate::tls::ServerStream<S>>> {
        let timeout = self.config.handshake_timeout;
        let (stream, request, rest) = tokio::time::timeout(timeout, async {
            let mut stream = tls.accept(stream).await?;
            let (mut request, rest) = self.read_request(&mut stream).await?;
            request
                .extensions_mut()
                .extend(crate::tls::request_extensions(&stream));
            Ok::<_, Error>((stream, request, rest))
        })
        .await
        .map_err(|_| Error::HandshakeTimeout)??;
        self.upgrade(stream, &request, &rest).await
    }

    async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
    ) -> Result<(Request<()>, BytesMut)> {
        read_request(stream, &self.config.limits).await
    }

    /// Checks an already-read request and answers it on `stream`: 101 and a [`WebSocket`], or
    /// the refusal. `received` holds bytes read after the request head.
    ///
    /// # Errors
    /// As [`accept`](Self::accept).
    pub async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        request: &Request<()>,
        received: &[u8],
    ) -> Result<WebSocket<S>> {
        let (response, conn, protocol) = match self.decide(request) {
            Ok(decision) => decision,
            Err(refusal) => {
                let err = HandshakeError::Refused(refusal.response().status());
                return Err(refuse(&mut stream, &err, Some(refusal)).await);
            }
        };
        let mut out = BytesMut::with_capacity(256);
        encode_response(&response, b"", &mut out);
        stream.write_all(&out).await?;
        stream.flush().await?;
        tracing::debug!(uri = %request.uri(), protocol = ?protocol, "upgrade accepted");
        Ok(WebSocket::from_connection(stream, conn, received, protocol))
    }

    /// Decides on an upgrade request without I/O: the 101 response, the connection to run
    /// and the chosen subprotocol, or the refusal to send (a bad request's 4xx with
    /// `Connection: close`, or the hook's response).
    pub(crate) fn decide(
        &self,
        request: &Request<()>,
    ) -> Result<(Response<()>, Connection, Option<String>), Refusal> {
        let upgrade = check_request(request)
            .map_err(|e| Refusal::from(reject_response(&e).map(|()| format!("{e}\n"))))?;
        let protocol = match &self.on_request {
            None => None,
            Some(hook) => hook.on_request(request, &upgrade)?,
        };
        if let Some(p) = &protocol
            && !upgrade.protocols.contains(p)
        {
            tracing::error!("the hook chose subprotocol {p:?}, which the client did not offer");
            return Err(Refusal::new(StatusCode::INTERNAL_SERVER_ERROR));
        }
        let internal = |e: &dyn std::fmt::Display| {
            Refusal::new(StatusCode::INTERNAL_SERVER_ERROR).body(e.to_string())
        };
        #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
        let mut response =
            accept_response(&upgrade, protocol.as_deref()).map_err(|e| internal(&e))?;
        #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
        let mut conn = Connection::new(Role::Server, Arc::clone(&self.config));
        #[cfg(feature = "deflate")]
        if let Some(deflate) = &self.compression
            && let Some((negotiated, header)) = deflate.negotiate(&upgrade.extensions)
        {
            let value = http::HeaderValue::from_str(&header).map_err(|e| internal(&e))?;
            response
                .headers_mut()
                .insert(http::header::SEC_WEBSOCKET_EXTENSIONS, value);
            conn.set_deflate(&negotiated, deflate);
        }
        Ok((response, conn, protocol))
    }
}

/// Reads one request head within `limits`; answers the head's own errors (431, 414, 400).
pub(crate) async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    limits: &Limits,
) -> Result<(Request<()>, BytesMut)> {
    let mut reader = HeadReader::new(limits.max_handshake_size);
    let parsed = loop {
        match reader.poll_head() {
            Ok(Some(head)) => break parse_request(&head, limits),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        if stream.read_buf(reader.buffer()).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed during the handshake",
            )
            .into());
        }
    };
    match parsed {
        Ok(request) => Ok((request, reader.into_rest())),
        Err(e) => Err(refuse(stream, &e, None).await),
    }
}

/// Writes a refusal with `Connection: close` and shuts the stream down (best effort).
pub(crate) async fn write_refusal<S: AsyncWrite + Unpin>(stream: &mut S, refusal: Refusal) {
    let out = encode_refusal(refusal);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

/// The bytes of a refusal response, with `Connection: close`.
pub(crate) fn encode_refusal(refusal: Refusal) -> BytesMut {
    let (parts, body) = refusal.into_response().into_parts();
    let mut response = Response::from_parts(parts, ());
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    let mut out = BytesMut::new();
    encode_response(&response, body.as_bytes(), &mut out);
    out
}

/// The refusal for `error` (or the hook's own response), logged.
pub(crate) fn refusal_for(error: &HandshakeError, custom: Option<Refusal>) -> Refusal {
    tracing::debug!(error = %error, status = error.status().as_u16(), "upgrade refused");
    custom.unwrap_or_else(|| Refusal::from(reject_response(error).map(|()| format!("{error}\n"))))
}

/// Writes the refusal for `error` (or the hook's own response), shuts the stream down, and
/// returns the error to report.
async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    error: &HandshakeError,
    custom: Option<Refusal>,
) -> Error {
    write_refusal(stream, refusal_for(error, custom)).await;
    Error::Handshake(error.clone())
}
