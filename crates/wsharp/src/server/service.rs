//! [`Service`]: a behavior mounted on a path, its options and sessions, and the session runner.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use futures_util::FutureExt;
use http::header::SET_COOKIE;
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use wsharp_proto::handshake::{accept_response, check_request, reject_response};
use wsharp_proto::{Connection, Role};

use super::Refusal;
use super::addr::LocalAddr;
use super::behavior::Behavior;
use super::options::{ServiceOptions, parse_cookies};
use super::session::{Session, SessionInner};
use super::sessions::Sessions;
use crate::auth::{Authenticator, Identity};
use crate::socket::WebSocket;

/// A byte stream a session runs over, type-erased so one service serves raw TCP and hyper
/// upgrades alike.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

type RunFn = dyn Fn(WebSocket<BoxIo>, Arc<SessionInner>) -> Pin<Box<dyn Future<Output = ()> + Send>>
    + Send
    + Sync;

/// A behavior mounted on a path, with its options and its sessions.
pub struct Service {
    path: String,
    options: ServiceOptions,
    /// The options' connection settings, shared by every session (pongs always surfaced to
    /// the runner, which tracks activity with them).
    conn_config: Arc<wsharp_proto::Config>,
    sessions: Sessions,
    run: Box<RunFn>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What a request is answered with when a service accepts it.
pub(crate) struct Accepted {
    pub(crate) response: Response<()>,
    /// Who logged in, when authentication is demanded.
    pub(crate) identity: Option<Identity>,
    /// The `Sec-WebSocket-Extensions` of the 101.
    pub(crate) extensions: Option<Box<str>>,
    /// The session's id.
    pub(crate) id: String,
    pub(crate) conn: Connection,
    pub(crate) protocol: Option<String>,
}

/// Normalizes a service path: a leading `/`, no trailing `/` (but the root).
pub(crate) fn normalize_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

impl Service {
    /// A service at `path` whose sessions each get a behavior from `factory`.
    pub fn new<B, F>(path: &str, options: ServiceOptions, factory: F) -> Self
    where
        B: Behavior,
        F: Fn() -> B + Send + Sync + 'static,
    {
        let sessions = Sessions::with_policy(options.overflow, options.wait_time);
        let emit = options.emit_on_ping;
        let receive_queue = options.receive_queue;
        let run = Box::new(move |ws: WebSocket<BoxIo>, inner: Arc<SessionInner>| {
            let behavior = factory();
            super::session_task::run(behavior, ws, inner, emit, receive_queue).boxed()
        });
        // The connection keeps the keepalive: the service's setting, else the config's own.
        let mut conn_config = options.config.clone().emit_control_frames(true);
        if options.keepalive.is_some() {
            conn_config.keepalive_interval = options.keepalive;
        }
        Self {
            path: normalize_path(path),
            conn_config: Arc::new(conn_config),
            options,
            sessions,
            run,
        }
    }

    /// The path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The options.
    pub fn options(&self) -> &ServiceOptions {
        &self.options
    }

    /// The open sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Decides on an upgrade request, without I/O: the 101 response and the connection, or
    /// the refusal (400/426/405 for a bad request, 401 from the service's authenticator or
    /// else `server_auth`, 503 at the connection cap, 403 from the host, origin or cookie
    /// validators). Without an authenticator, an [`Identity`] already in the request's
    /// extensions (an HTTP server's check) is the session's.
    pub(crate) fn accept<B>(
        &self,
        request: &Request<B>,
        server_auth: Option<&Authenticator>,
    ) -> Result<Accepted, Refusal> {
        let upgrade = check_request(request)
            .map_err(|e| Refusal::from(reject_response(&e).map(|()| format!("{e}\n"))))?;
        let identity = match self.options.auth.as_deref().or(server_auth) {
            Some(auth) => Some(auth.authenticate(request)?),
            None => request.extensions().get::<Identity>().cloned(),
        };
        if self
            .options
            .max_connections
            .is_some_and(|max| self.sessions.count() >= max)
        {
            return Err(
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE).body("too many connections\n")
            );
        }
        if let Some(hosts) = &self.options.hosts {
            let host = request
                .headers()
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return Err(Refusal::new(StatusCode::FORBIDDEN).body("host not allowed\n"));
            }
        }
        let origin = request
            .headers()
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if let Some(check) = &self.options.origin
            && !check.validate(origin)
        {
            return Err(Refusal::new(StatusCode::FORBIDDEN).body("origin not allowed\n"));
        }
        let mut set_cookies = Vec::new();
        if let Some(check) = &self.options.cookies
            && !check.validate(&parse_cookies(request.headers()), &mut set_cookies)
        {
            return Err(Refusal::new(StatusCode::FORBIDDEN).body("cookies refused\n"));
        }
        let protocol = upgrade
            .protocols
            .iter()
            .find(|p| self.options.protocols.contains(p))
            .cloned();
        let mut response = accept_response(&upgrade, protocol.as_deref())
            .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR).body(e.to_string()))?;
        for cookie in set_cookies {
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(SET_COOKIE, v);
            }
        }
        let id = new_session_id();
        if let Some(responder) = &self.options.response_headers {
            let mut extra = http::HeaderMap::new();
            responder(request.headers(), &mut extra, &id);
            let mut name = None;
            for (n, v) in extra {
                name = n.or(name);
                let Some(n) = &name else { continue };
                let handshake = n.as_str().starts_with("sec-websocket-")
                    || *n == http::header::UPGRADE
                    || *n == http::header::CONNECTION;
                if !handshake {
                    response.headers_mut().append(n.clone(), v);
                }
            }
        }
        #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
        let mut conn = Connection::new(Role::Server, Arc::clone(&self.conn_config));
        #[cfg(feature = "deflate")]
        if let Some(deflate) = &self.options.compression
            && let Some((negotiated, header)) = deflate.negotiate(&upgrade.extensions)
            && let Ok(value) = HeaderValue::from_str(&header)
        {
            response
                .headers_mut()
                .insert(http::header::SEC_WEBSOCKET_EXTENSIONS, value);
            conn.set_deflate(&negotiated, deflate);
        }
        let extensions = response
            .headers()
            .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
            .and_then(|v| v.to_str().ok())
            .map(Into::into);
        Ok(Accepted {
            response,
            id,
            extensions,
            identity,
            conn,
            protocol,
        })
    }

    /// Runs a session on an upgraded stream until it ends.
    pub(crate) fn start_session(
        &self,
        ws: WebSocket<BoxIo>,
        request: &Request<()>,
        accepted: SessionStart,
        remote_addr: Option<SocketAddr>,
        tracker: &TaskTracker,
    ) {
        let (outgoing, commands) = mpsc::channel(self.options.send_queue);
        let inner = Arc::new(SessionInner {
            id: accepted.id,
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            remote_addr,
            protocol: ws.protocol().map(str::to_owned),
            identity: accepted.identity,
            extensions: accepted.extensions,
            local_addr: request.extensions().get::<LocalAddr>().map(|l| l.0),
            started: std::time::SystemTime::now(),
            secure: secure(request),
            #[cfg(feature = "tls")]
            peer_certificates: request
                .extensions()
                .get::<crate::tls::PeerCertificates>()
                .cloned(),
            outgoing,
            sessions: self.sessions.clone(),
            last_seen: AtomicU64::new(0),
            epoch: Instant::now(),
            forced: AtomicBool::new(false),
            force_waker: futures_util::task::AtomicWaker::new(),
            force_code: std::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
            commands: std::sync::Mutex::new(Some(commands)),
            pong_waiters: std::sync::Mutex::new(Vec::new()),
            task: std::sync::OnceLock::new(),
        });
        self.sessions.insert(Session(inner.clone()));
        let task = tracker.spawn((self.run)(ws, inner.clone()));
        // Kept so that a stop past its deadline can end the session.
        let _ = inner.task.set(task.abort_handle());
    }
}

/// What a session starts with from its accepted request.
pub(crate) struct SessionStart {
    pub(crate) id: String,
    pub(crate) identity: Option<Identity>,
    pub(crate) extensions: Option<Box<str>>,
}

/// Whether `request` arrived over TLS.
fn secure(request: &Request<()>) -> bool {
    #[cfg(feature = "tls")]
    return request.extensions().get::<crate::tls::Secure>().is_some();
    #[cfg(not(feature = "tls"))]
    {
        let _ = request;
        false
    }
}

/// 128 bits from the CSPRNG, as hex.
fn new_session_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The services of a server, by path. Services can be added and removed while it runs.
#[derive(Clone, Default)]
pub(crate) struct Router(Arc<RwLock<HashMap<String, Arc<Service>>>>);

impl Router {
    /// Adds `service`; its path must be free.
    pub(crate) fn add(&self, service: Service) -> crate::Result<Arc<Service>> {
        let mut services = self.0.write().expect("not poisoned");
        if services.contains_key(&service.path) {
            return Err(crate::Error::PathTaken(service.path));
        }
        let service = Arc::new(service);
        services.insert(service.path.clone(), service.clone());
        Ok(service)
    }

    pub(crate) fn remove(&self, path: &str) -> Option<Arc<Service>> {
        self.0
            .write()
            .expect("not poisoned")
            .remove(&normalize_path(path))
    }

    pub(crate) fn get(&self, path: &str) -> Option<Arc<Service>> {
        self.0
            .read()
            .expect("not poisoned")
            .get(&normalize_path(path))
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Service>> {
        self.0
            .read()
            .expect("not poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// A handle that does not keep the services alive (for the backplane, which the services'
    /// sessions themselves hold).
    pub(crate) fn downgrade(&self) -> WeakRouter {
        WeakRouter(Arc::downgrade(&self.0))
    }
}

/// A [`Router`] that may be gone.
pub(crate) struct WeakRouter(std::sync::Weak<RwLock<HashMap<String, Arc<Service>>>>);

impl WeakRouter {
    pub(crate) fn upgrade(&self) -> Option<Router> {
        self.0.upgrade().map(Router)
    }
}
