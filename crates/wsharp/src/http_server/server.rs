//! The HTTP server: files, handlers and WebSocket services on one port.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, UPGRADE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use wsharp_proto::handshake::MAX_REQUEST_LINE;
use wsharp_proto::{CloseCode, Limits};

use super::body::{Abort, Aborted, Body};
use super::files::{serve_file, status};
use crate::error::Result;
use crate::server::{Behavior, BoxIo, Hub, LocalAddr, PeerAddr, Service, ServiceOptions, Sessions};
use crate::socket::WebSocket;

type HandlerFn =
    dyn Fn(Request<Bytes>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync;

/// Settings of an [`HttpServer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpServerOptions {
    /// The document root for static files. Default `./public`.
    pub document_root: PathBuf,
    /// A page served at `/` when the document root has no `index.html`. Default none.
    pub index_page: Option<Bytes>,
    /// Largest request body read for a handler. Default 1 MiB; over it: 413.
    pub max_body: usize,
    /// Limits on every request head, the same as a [`WebSocketServer`](crate::server::WebSocketServer)'s
    /// and a [`ServerBuilder`](crate::ServerBuilder)'s: [`Limits::max_handshake_size`] (default
    /// 16 KiB; over it: 431), [`Limits::max_headers`] (default 100; over it: 431), and a request
    /// line of at most [`MAX_REQUEST_LINE`] (8 KiB) or the head limit if smaller (over it: 414;
    /// a request line that also passes the head limit is answered 431). The frame and message
    /// limits of WebSocket sessions are the services' own ([`ServiceOptions::config`]).
    pub limits: Limits,
    /// Time allowed to send a request head, counted from the start of the connection or the end
    /// of the previous response, not extended as bytes arrive. Default 10 s, as
    /// [`Config::handshake_timeout`](wsharp_proto::Config::handshake_timeout). Over it: the
    /// connection is closed.
    pub header_timeout: Duration,
    /// The close timeout used when stopping. Default 5 s.
    pub close_timeout: Duration,
    /// Demands HTTP authentication on every request: files, handlers, and the upgrades of
    /// services without an [`auth`](ServiceOptions::auth) of their own. The user is in each
    /// request's extensions as an [`Identity`](crate::auth::Identity), and on sessions.
    /// Default none.
    pub auth: Option<Arc<crate::auth::Authenticator>>,
    /// Serve `https://` and `wss://` with this TLS (files, handlers and upgrades on one port).
    /// The TLS handshake must finish within [`header_timeout`](Self::header_timeout). Default
    /// none.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ServerTls>,
}

impl Default for HttpServerOptions {
    fn default() -> Self {
        Self {
            document_root: PathBuf::from("./public"),
            index_page: None,
            max_body: 1 << 20,
            limits: Limits::default(),
            header_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            auth: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl HttpServerOptions {
    /// Sets [`HttpServerOptions::tls`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets [`HttpServerOptions::auth`].
    ///
    /// ```
    /// use wsharp::auth::{Authenticator, Users};
    /// use wsharp::http_server::HttpServerOptions;
    /// let users = Users::new().with("nobita", "sekret");
    /// let options = HttpServerOptions::default().auth(Authenticator::digest("site", users));
    /// ```
    pub fn auth(mut self, authenticator: crate::auth::Authenticator) -> Self {
        self.auth = Some(Arc::new(authenticator));
        self
    }

    /// Sets [`HttpServerOptions::document_root`].
    pub fn document_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.document_root = root.into();
        self
    }

    /// Sets [`HttpServerOptions::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`HttpServerOptions::header_timeout`].
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Sets [`HttpServerOptions::index_page`].
    pub fn index_page(mut self, page: impl Into<Bytes>) -> Self {
        self.index_page = Some(page.into());
        self
    }
}

/// Plain HTTP and WebSocket services on one port (websocket-sharp's `HttpServer`): static
/// files from a document root, handlers per method (`OnGet`, `OnPost`, ...), and upgrades to the
/// services mounted on paths. Cheap to clone.
///
/// ```no_run
/// use wsharp::demo::Echo;
/// use wsharp::http_server::{HttpServer, HttpServerOptions};
/// use wsharp::http::{Method, Response};
///
/// # async fn run() -> wsharp::Result<()> {
/// let server = HttpServer::bind("127.0.0.1:4649", HttpServerOptions::default()).await?;
/// server.add_service("/Echo", || Echo)?;
/// server.on(Method::POST, |req: wsharp::http::Request<bytes::Bytes>| async move {
///     Response::new(req.into_body())
/// });
/// server.start();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpServer(Arc<Inner>);

struct Inner {
    hub: Hub,
    handlers: RwLock<HashMap<Method, Arc<HandlerFn>>>,
    options: HttpServerOptions,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.0.hub.addr())
            .field("options", &self.0.options)
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// Binds `addr`.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if it cannot be bound.
    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs,
        options: HttpServerOptions,
    ) -> Result<Self> {
        let hub = Hub::new(TcpListener::bind(addr).await?)?;
        Ok(Self(Arc::new(Inner {
            hub,
            handlers: RwLock::new(HashMap::new()),
            options,
        })))
    }

    /// Binds the host and port of an `http://` or `https://` URL (websocket-sharp's
    /// `HttpServer(url)`; the port defaults to 80 or 443). An `https` URL still needs
    /// [`HttpServerOptions::tls`].
    ///
    /// # Errors
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl) for another URL, and as [`bind`](Self::bind).
    pub async fn bind_url(url: &str, options: HttpServerOptions) -> Result<Self> {
        let (host, port) = crate::server::listen_address(url, &["http", "https"])?;
        Self::bind((host.as_str(), port), options).await
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.hub.addr()
    }

    /// Runs the WebSocket services as one node of a cluster (as
    /// [`WebSocketServer::backplane`](crate::server::WebSocketServer::backplane)); set it
    /// before [`start`](Self::start).
    pub fn set_backplane(&self, backplane: impl crate::server::Backplane) {
        self.0.hub.set_backplane(Arc::new(backplane));
    }

    /// TCP_NODELAY on accepted connections, on by default (as
    /// [`WebSocketServer::no_delay`](crate::server::WebSocketServer::no_delay)).
    pub fn set_no_delay(&self, on: bool) {
        self.0.hub.set_no_delay(on);
    }

    /// Mounts a WebSocket service with default options.
    ///
    /// # Errors
    /// [`Error::PathTaken`](crate::Error::PathTaken) if a service is mounted there.
    pub fn add_service<B, F>(&self, path: &str, factory: F) -> Result<()>
    where
        B: Behavior,
        F: Fn() -> B + Send + Sync + 'static,
    {
        self.add_service_with(path, ServiceOptions::default(), factory)
    }

    /// Mounts a WebSocket service with `options`.
    ///
    /// # Errors
    /// As [`add_service`](Self::add_service).
    pub fn add_service_with<B, F>(
        &self,
        path: &str,
        options: ServiceOptions,
        factory: F,
    ) -> Result<()>
    where
        B: Behavior,
        F: Fn() -> B + Send + Sync + 'static,
    {
        self.0.hub.add(Service::new(path, options, factory))
    }

    /// Unmounts a service, closing its sessions with 1001.
    pub fn remove_service(&self, path: &str) -> bool {
        self.0.hub.remove(path)
    }

    /// The sessions of the service at `path`.
    pub fn sessions(&self, path: &str) -> Option<Sessions> {
        self.0.hub.sessions(path)
    }

    /// The paths of the mounted services, sorted (websocket-sharp's `WebSocketServices.Paths`;
    /// their number is its `Count`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsharp::Result<()> {
    /// use wsharp::demo::Echo;
    /// use wsharp::http_server::{HttpServer, HttpServerOptions};
    ///
    /// let server = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default()).await?;
    /// server.add_service("/Echo", || Echo)?;
    /// server.add_service("/Chat", || Echo)?;
    /// assert_eq!(server.paths(), ["/Chat", "/Echo"]);
    /// server.remove_service("/Chat");
    /// assert_eq!(server.paths().len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn paths(&self) -> Vec<String> {
        self.0.hub.paths()
    }

    /// Handles requests with `method` (websocket-sharp's `OnGet`, `OnPost`, ...): the handler gets
    /// the request with its body read (up to [`HttpServerOptions::max_body`]) and builds the
    /// response. A GET handler runs before static files. The request's extensions hold the
    /// peer's [`PeerAddr`](crate::server::PeerAddr) and the [`LocalAddr`](crate::server::LocalAddr)
    /// it arrived on; [`is_local`](crate::server::is_local) tells whether it came from this
    /// machine. [`Abort::response`](super::Abort::response) closes the connection without a
    /// response; [`on_body`](Self::on_body) takes handlers of streamed responses.
    pub fn on<F, Fut>(&self, method: Method, handler: F)
    where
        F: Fn(Request<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Bytes>> + Send + 'static,
    {
        self.on_body(method, move |req| {
            let response = handler(req);
            async move { response.await.map(Body::from) }
        });
    }

    /// Handles requests with `method` as [`on`](Self::on), the response's [`Body`] streamed from
    /// a reader or a channel (chunked, websocket-sharp's `SendChunked` and `OutputStream`) or
    /// whole. It replaces the handler of `method` set with `on` or `on_body`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsharp::Result<()> {
    /// use wsharp::http::{Method, Response};
    /// use wsharp::http_server::{Body, HttpServer, HttpServerOptions};
    ///
    /// let server = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default()).await?;
    /// server.on_body(Method::GET, |_req| async {
    ///     let (mut sender, body) = Body::channel(4);
    ///     tokio::spawn(async move {
    ///         for line in ["one\n", "two\n"] {
    ///             let _ = sender.send(line).await;
    ///         }
    ///     });
    ///     Response::new(body)
    /// });
    /// server.start();
    /// # Ok(()) }
    /// ```
    pub fn on_body<F, Fut>(&self, method: Method, handler: F)
    where
        F: Fn(Request<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let boxed: Arc<HandlerFn> = Arc::new(move |req| Box::pin(handler(req)));
        self.0
            .handlers
            .write()
            .expect("not poisoned")
            .insert(method, boxed);
    }

    /// Starts serving in a background task. Does nothing if already started; after
    /// [`stop`](Self::stop) it binds the same address again and serves the same services,
    /// handlers and files. A failure to bind again is logged; see [`try_start`](Self::try_start).
    pub fn start(&self) {
        if let Err(e) = self.try_start() {
            tracing::error!(addr = %self.local_addr(), "cannot start again: {e}");
        }
    }

    /// As [`start`](Self::start), reporting a failure to bind the address again after a stop.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when the address cannot be bound again.
    pub fn try_start(&self) -> Result<()> {
        let this = self.clone();
        self.0.hub.start(move |tcp, peer| {
            let this = this.clone();
            async move { this.serve_connection(tcp, peer).await }
        })?;
        Ok(())
    }

    /// Whether the server accepts connections: started, and not stopped since.
    pub fn is_listening(&self) -> bool {
        self.0.hub.is_listening()
    }

    async fn serve_connection(&self, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        let mut extensions = http::Extensions::new();
        if let Ok(local) = tcp.local_addr() {
            extensions.insert(LocalAddr(local));
        }
        extensions.insert(PeerAddr(peer));
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.0.options.tls {
            let stream =
                match tokio::time::timeout(self.0.options.header_timeout, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "no TLS handshake within the header timeout");
                        return;
                    }
                };
            extensions.extend(crate::tls::request_extensions(&stream));
            return self.serve_io(stream, peer, extensions).await;
        }
        self.serve_io(tcp, peer, extensions).await;
    }

    /// Serves HTTP/1.1 on `io`; every request carries `extensions` (what the connection's TLS
    /// said about it).
    async fn serve_io<I>(&self, io: I, peer: SocketAddr, extensions: http::Extensions)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let this = self.clone();
        // The user last logged in on this connection: a login is logged once, not per request.
        let user = Arc::new(std::sync::Mutex::new(None::<String>));
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let this = this.clone();
            let user = user.clone();
            req.extensions_mut().extend(extensions.clone());
            async move {
                let response = this.handle(req, peer, &user).await;
                // An error from the service makes hyper close the connection, writing nothing.
                if Abort::is_abort(&response) {
                    return Err(Aborted);
                }
                Ok(response)
            }
        });
        let stopped = self.0.hub.stopped();
        let limits = &self.0.options.limits;
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.0.options.header_timeout)
            // hyper reads at most this much while looking for the end of a head (it refuses
            // less than 8 KiB), and answers 431 for a complete head over `max_header_size`.
            .max_buf_size(limits.max_handshake_size.max(HYPER_MIN_BUF_SIZE))
            .max_header_size(limits.max_handshake_size);
        if limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
            // hyper keeps its default count on the stack; any other count is a heap allocation
            // per request.
            builder.max_headers(limits.max_headers);
        }
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, "HTTP connection ended: {e}");
                }
            }
            () = stopped => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
            }
        }
    }

    async fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        user: &std::sync::Mutex<Option<String>>,
    ) -> Response<Body> {
        let line_limit = MAX_REQUEST_LINE.min(self.0.options.limits.max_handshake_size);
        if request_line_len(req.method(), req.uri()) > line_limit {
            return closing(status(StatusCode::URI_TOO_LONG)).map(Body::from);
        }
        let upgrade = req.headers().contains_key(UPGRADE);
        if let Some(auth) = &self.0.options.auth {
            let service_decides = upgrade
                && self
                    .0
                    .hub
                    .router()
                    .get(req.uri().path())
                    .is_some_and(|s| s.options().auth.is_some());
            if !service_decides {
                match auth.authenticate(&req) {
                    Ok(identity) => {
                        let mut last = user.lock().expect("not poisoned");
                        if last.as_deref() != Some(identity.name()) {
                            tracing::info!(%peer, user = identity.name(), scheme = identity.scheme(), "logged in");
                            *last = Some(identity.name().to_owned());
                        }
                        drop(last);
                        req.extensions_mut().insert(identity);
                    }
                    Err(refusal) => {
                        let response = refusal.into_response().map(Bytes::from);
                        // A refused upgrade ends the connection (fault catalogue 10).
                        let response = if upgrade { closing(response) } else { response };
                        return response.map(Body::from);
                    }
                }
            }
        }
        if upgrade {
            let response = self.upgrade(req, peer);
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                return response.map(Body::from);
            }
            // A refused upgrade ends the connection: a request pipelined behind it is never
            // served (fault catalogue 10).
            return closing(response).map(Body::from);
        }
        let method = req.method().clone();
        let handler = self
            .0
            .handlers
            .read()
            .expect("not poisoned")
            .get(&method)
            .cloned();
        if let Some(handler) = handler {
            let (parts, body) = req.into_parts();
            let body = match Limited::new(body, self.0.options.max_body).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return status(StatusCode::PAYLOAD_TOO_LARGE).map(Body::from),
            };
            return handler(Request::from_parts(parts, body)).await;
        }
        self.serve_static(&req, &method).await.map(Body::from)
    }

    /// A static file, the index page, 404 or 405 for a request no handler took.
    async fn serve_static<B>(&self, req: &Request<B>, method: &Method) -> Response<Bytes> {
        if method != Method::GET && method != Method::HEAD {
            let mut resp = status(StatusCode::METHOD_NOT_ALLOWED);
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        let path = req.uri().path();
        if let Some(resp) =
            serve_file(&self.0.options.document_root, path, method, req.headers()).await
        {
            return resp;
        }
        if (path == "/" || path == "/index.html")
            && let Some(page) = &self.0.options.index_page
        {
            let mut resp = Response::new(if method == Method::HEAD {
                Bytes::new()
            } else {
                page.clone()
            });
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            resp.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(page.len()));
            return resp;
        }
        status(StatusCode::NOT_FOUND)
    }

    fn upgrade(&self, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Bytes> {
        let Some(service) = self.0.hub.router().get(req.uri().path()) else {
            return status(StatusCode::NOT_FOUND);
        };
        let accepted = match service.accept(&req, None) {
            Ok(a) => a,
            Err(refusal) => return refusal.into_response().map(Bytes::from),
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let (parts, _) = req.into_parts();
        let head = Request::from_parts(parts, ());
        let tracker = self.0.hub.tracker().clone();
        let (conn, protocol) = (accepted.conn, accepted.protocol);
        let start = crate::server::SessionStart {
            id: accepted.id,
            identity: accepted.identity,
            extensions: accepted.extensions,
        };
        self.0.hub.tracker().spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io: BoxIo = Box::new(TokioIo::new(upgraded));
                    let ws = WebSocket::from_connection(io, conn, &[], protocol);
                    service.start_session(ws, &head, start, Some(peer), &tracker);
                }
                Err(e) => tracing::debug!(%peer, "upgrade failed: {e}"),
            }
        });
        accepted.response.map(|()| Bytes::new())
    }

    /// Stops: no new connections, every session closed with 1001; returns when all are gone or
    /// after the close timeout plus one second.
    pub async fn stop(&self) {
        self.stop_with(CloseCode::GOING_AWAY, "server stopping")
            .await;
    }

    /// Stops as [`stop`](Self::stop), closing sessions with `code` and `reason`.
    pub async fn stop_with(&self, code: CloseCode, reason: &str) {
        self.0
            .hub
            .stop(code, reason, self.0.options.close_timeout)
            .await;
    }
}

/// hyper's smallest accepted `max_buf_size`.
const HYPER_MIN_BUF_SIZE: usize = 8 << 10;

/// hyper's header count when none is set.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// The length of the request line `METHOD URI HTTP/1.1` that carried `method` and `uri` (the
/// URI as sent, in origin or absolute form).
fn request_line_len(method: &Method, uri: &Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + 3);
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let path = uri.path_and_query().map_or(0, |p| p.as_str().len());
    method.as_str().len() + 1 + scheme + authority + path + " HTTP/1.1".len()
}

/// `response` with `Connection: close`: hyper closes the connection once it is written and
/// reads no further request from it.
fn closing<B>(mut response: Response<B>) -> Response<B> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
