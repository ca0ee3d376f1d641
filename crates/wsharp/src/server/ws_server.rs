//! [`WebSocketServer`]: services on paths over a TCP listener (websocket-sharp's `WebSocketServer`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use http::{Request, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use wsharp_proto::handshake::encode_response;
use wsharp_proto::{CloseCode, Config};

use super::addr::LocalAddr;
use super::behavior::Behavior;
use super::hub::Hub;
use super::options::ServiceOptions;
use super::service::{BoxIo, Router, Service, SessionStart};
use super::sessions::Sessions;
use super::{Refusal, read_request, write_refusal};
use crate::auth::Authenticator;
use crate::error::Result;
use crate::socket::WebSocket;

/// A WebSocket server: services mounted on paths, each with its behavior and sessions.
///
/// ```no_run
/// use wsharp::Message;
/// use wsharp::server::{Behavior, Session, WebSocketServer};
///
/// struct Echo;
/// impl Behavior for Echo {
///     async fn on_message(&mut self, session: &Session, message: Message) {
///         let _ = session.send(message).await;
///     }
/// }
///
/// # async fn run() -> wsharp::Result<()> {
/// let server = WebSocketServer::bind("127.0.0.1:4649").await?;
/// server.add_service("/Echo", || Echo)?;
/// server.start();
/// // ... later
/// server.stop().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WebSocketServer {
    hub: Hub,
    config: Arc<Config>,
    auth: Option<Arc<Authenticator>>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ServerTls>,
}

impl std::fmt::Debug for WebSocketServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketServer")
            .field("addr", &self.hub.addr())
            .finish_non_exhaustive()
    }
}

impl WebSocketServer {
    /// Binds `addr` (`"127.0.0.1:4649"`, `"[::]:4649"` for IPv6 and, on Linux, IPv4 too).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the address cannot be bound.
    pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self::from_listener(listener)?)
    }

    /// Binds the host and port of a `ws://` or `wss://` URL (websocket-sharp's
    /// `WebSocketServer(url)`; the port defaults to 80 or 443, a path is not allowed). A `wss`
    /// URL still needs [`tls`](Self::tls).
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// let server = wsharp::server::WebSocketServer::bind_url("ws://127.0.0.1:4649").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl) for another URL, and as [`bind`](Self::bind).
    pub async fn bind_url(url: &str) -> Result<Self> {
        let (host, port) = listen_address(url, &["ws", "wss"])?;
        Self::bind((host.as_str(), port)).await
    }

    /// Binds every address on `port`, IPv4 and IPv6 (websocket-sharp's `WebSocketServer(port)`).
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub async fn bind_port(port: u16) -> Result<Self> {
        match TcpListener::bind(("::", port)).await {
            Ok(listener) => Ok(Self::from_listener(listener)?),
            Err(_) => Self::bind(("0.0.0.0", port)).await,
        }
    }

    /// Serves on a listener the caller bound.
    ///
    /// # Errors
    /// If the listener has no local address.
    pub fn from_listener(listener: TcpListener) -> std::io::Result<Self> {
        Ok(Self {
            hub: Hub::new(listener)?,
            config: Arc::new(Config::default()),
            auth: None,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// The settings for reading upgrade requests: [`Config::limits`]'s
    /// [`max_handshake_size`](wsharp_proto::Limits::max_handshake_size) (default 16 KiB; over
    /// it: 431) and [`max_headers`](wsharp_proto::Limits::max_headers) (default 100; over it:
    /// 431), a request line of at most 8 KiB (over it: 414), and
    /// [`Config::handshake_timeout`] (default 10 s) for the whole request, counted from the
    /// connection's accept and not extended as bytes arrive; also the stop's
    /// [`Config::close_timeout`]. Each service's sessions run with that service's own
    /// [`ServiceOptions::config`]. Set it before [`start`](Self::start).
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// use std::time::Duration;
    /// let server = wsharp::server::WebSocketServer::bind("127.0.0.1:4649")
    ///     .await?
    ///     .config(wsharp::Config::default().handshake_timeout(Duration::from_secs(5)));
    /// # Ok(()) }
    /// ```
    pub fn config(mut self, config: Config) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Serves `wss://` with `tls` (set before [`start`](Self::start)): the TLS handshake counts
    /// against the handshake timeout, and a failed one costs only its connection. Reload the
    /// certificate on `tls` (or a clone) at any time; open sessions keep theirs.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// TCP_NODELAY on accepted connections (websocket-sharp's `NoDelay`), on by default: a
    /// session writes each message (or a batch) in one write, so Nagle's algorithm would only
    /// hold back small messages and pings until the client's delayed ACK.
    pub fn no_delay(self, on: bool) -> Self {
        self.hub.set_no_delay(on);
        self
    }

    /// Runs the services as one node of a cluster: broadcasts, `send_to`, `close_session` and
    /// [`Sessions::cluster_count`](super::Sessions::cluster_count) reach every node through
    /// `backplane` (a [`RedisBackplane`](crate::cluster::RedisBackplane), say). Set it before
    /// [`start`](Self::start); the stop removes this node from the cluster.
    pub fn backplane(self, backplane: impl super::Backplane) -> Self {
        self.hub.set_backplane(Arc::new(backplane));
        self
    }

    /// Demands HTTP authentication on every service that has no
    /// [`ServiceOptions::auth`] of its own (websocket-sharp's `AuthenticationSchemes`, `Realm`
    /// and `UserCredentialsFinder`); set it before [`start`](Self::start).
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// use wsharp::auth::{Authenticator, Users};
    /// let users = Users::new().with("nobita", "sekret");
    /// let server = wsharp::server::WebSocketServer::bind("127.0.0.1:4649")
    ///     .await?
    ///     .auth(Authenticator::digest("chat", users));
    /// # Ok(()) }
    /// ```
    pub fn auth(mut self, authenticator: Authenticator) -> Self {
        self.auth = Some(Arc::new(authenticator));
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.hub.addr()
    }

    /// Mounts a service with default options at `path`; each session gets a behavior from
    /// `factory`.
    ///
    /// # Errors
    /// [`Error::PathTaken`](crate::Error::PathTaken) if a service is mounted there (remove it
    /// first), as websocket-sharp's `AddWebSocketService` refuses.
    pub fn add_service<B, F>(&self, path: &str, factory: F) -> Result<()>
    where
        B: Behavior,
        F: Fn() -> B + Send + Sync + 'static,
    {
        self.add_service_with(path, ServiceOptions::default(), factory)
    }

    /// Mounts a service with `options` (websocket-sharp's `AddWebSocketService<T>(path, init)`).
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
        self.hub.add(Service::new(path, options, factory))
    }

    /// Unmounts the service at `path`, closing its sessions with 1001; `false` if there was none.
    pub fn remove_service(&self, path: &str) -> bool {
        self.hub.remove(path)
    }

    /// The sessions of the service at `path`.
    pub fn sessions(&self, path: &str) -> Option<Sessions> {
        self.hub.sessions(path)
    }

    /// The mounted paths, sorted (websocket-sharp's `WebSocketServices.Paths`; their number is
    /// its `Count`).
    pub fn paths(&self) -> Vec<String> {
        self.hub.paths()
    }

    /// Starts accepting connections in a background task. Does nothing if already started;
    /// after [`stop`](Self::stop) it binds the same address again and serves the same services
    /// (websocket-sharp's `Start` after `Stop`). A failure to bind again is logged; see
    /// [`try_start`](Self::try_start).
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
        self.hub.start(move |tcp, peer| {
            let this = this.clone();
            async move { this.handle(tcp, peer).await }
        })?;
        Ok(())
    }

    /// Whether the server accepts connections: started, and not stopped since (websocket-sharp's
    /// `IsListening`).
    pub fn is_listening(&self) -> bool {
        self.hub.is_listening()
    }

    async fn handle(&self, tcp: TcpStream, peer: SocketAddr) {
        let local = tcp.local_addr().ok().map(LocalAddr);
        let read = tokio::time::timeout(self.config.handshake_timeout, async {
            let (mut io, extensions) = self.secure(tcp).await?;
            let (mut request, rest) = read_request(&mut io, &self.config.limits).await?;
            request.extensions_mut().extend(extensions);
            if let Some(local) = local {
                request.extensions_mut().insert(local);
            }
            Ok::<_, crate::Error>((io, request, rest))
        })
        .await;
        let (io, request, rest) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "no valid request: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "no valid request within the handshake timeout");
                return;
            }
        };
        let routes = Routes {
            router: self.hub.router(),
            auth: self.auth.as_deref(),
        };
        upgrade_on(routes, self.hub.tracker(), io, request, &rest, Some(peer)).await;
    }

    /// The connection's stream: TLS over `tcp` when the server has TLS (with what the request
    /// should carry about it), else `tcp` itself.
    async fn secure(&self, tcp: TcpStream) -> Result<(BoxIo, http::Extensions)> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let stream = tls.accept(tcp).await?;
            let extensions = crate::tls::request_extensions(&stream);
            return Ok((Box::new(stream), extensions));
        }
        Ok((Box::new(tcp), http::Extensions::new()))
    }

    /// Stops: no more connections, every session closed with 1001 at once; returns once they
    /// are all gone, or after the close timeout plus one second, when the rest are dropped.
    pub async fn stop(&self) {
        self.stop_with(CloseCode::GOING_AWAY, "server stopping")
            .await;
    }

    /// Stops as [`stop`](Self::stop), closing sessions with `code` and `reason`.
    pub async fn stop_with(&self, code: CloseCode, reason: &str) {
        self.hub.stop(code, reason, self.config.close_timeout).await;
    }
}

/// Where upgrade requests go: the services, and the server's authenticator for those without
/// their own.
#[derive(Clone, Copy)]
pub(crate) struct Routes<'a> {
    pub(crate) router: &'a Router,
    pub(crate) auth: Option<&'a Authenticator>,
}

/// Routes an upgrade request to its service and runs the session, or writes the refusal.
pub(crate) async fn upgrade_on<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    routes: Routes<'_>,
    tracker: &TaskTracker,
    mut io: S,
    request: Request<()>,
    rest: &[u8],
    peer: Option<SocketAddr>,
) {
    let decision = match routes.router.get(request.uri().path()) {
        None => Err(Refusal::new(StatusCode::NOT_FOUND).body("no service at this path\n")),
        Some(service) => service
            .accept(&request, routes.auth)
            .map(|accepted| (service, accepted)),
    };
    match decision {
        Err(refusal) => {
            tracing::debug!(
                ?peer,
                path = request.uri().path(),
                status = refusal.response().status().as_u16(),
                "upgrade refused"
            );
            write_refusal(&mut io, refusal).await;
        }
        Ok((service, accepted)) => {
            let mut out = BytesMut::with_capacity(256);
            encode_response(&accepted.response, b"", &mut out);
            if io.write_all(&out).await.is_err() || io.flush().await.is_err() {
                return;
            }
            if let Some(identity) = &accepted.identity {
                tracing::info!(
                    ?peer,
                    user = identity.name(),
                    scheme = identity.scheme(),
                    "logged in"
                );
            }
            let ws = WebSocket::from_connection(
                Box::new(io) as BoxIo,
                accepted.conn,
                rest,
                accepted.protocol,
            );
            let start = SessionStart {
                id: accepted.id,
                identity: accepted.identity,
                extensions: accepted.extensions,
            };
            service.start_session(ws, &request, start, peer, tracker);
        }
    }
}

/// The host and port to listen on from `url`, whose scheme must be one of `schemes` (the second
/// one secure, port 443 by default; the first, port 80).
pub(crate) fn listen_address(url: &str, schemes: &[&str; 2]) -> Result<(String, u16)> {
    let invalid = |why: &str| crate::Error::InvalidUrl(format!("{url}: {why}"));
    let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    let secure = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case(schemes[0]) => false,
        Some(s) if s.eq_ignore_ascii_case(schemes[1]) => true,
        _ => {
            return Err(invalid(&format!(
                "the scheme must be {} or {}",
                schemes[0], schemes[1]
            )));
        }
    };
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err(invalid("a server's URL has no path"));
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((
        host,
        uri.port_u16().unwrap_or(if secure { 443 } else { 80 }),
    ))
}

#[cfg(test)]
mod tests {
    use super::listen_address;

    #[test]
    fn listen_addresses_from_urls() {
        let ws = ["ws", "wss"];
        assert_eq!(
            listen_address("ws://127.0.0.1:4649", &ws).unwrap(),
            ("127.0.0.1".into(), 4649)
        );
        assert_eq!(
            listen_address("wss://localhost", &ws).unwrap(),
            ("localhost".into(), 443)
        );
        assert_eq!(
            listen_address("ws://[::1]:9/", &ws).unwrap(),
            ("::1".into(), 9)
        );
        assert!(listen_address("http://a:1", &ws).is_err());
        assert!(listen_address("ws://a:1/chat", &ws).is_err());
        assert!(listen_address("ws://:1", &ws).is_err());
    }
}
