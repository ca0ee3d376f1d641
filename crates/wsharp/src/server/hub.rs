//! [`Hub`]: what [`WebSocketServer`](super::WebSocketServer) and
//! [`HttpServer`](crate::http_server::HttpServer) share: the services, the tasks, the accept
//! loop and the stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use wsharp_proto::{CloseCode, CloseFrame};

use super::service::{Router, Service};
use super::sessions::Sessions;

#[derive(Clone)]
pub(crate) struct Hub(Arc<Inner>);

struct Inner {
    router: Router,
    tracker: TaskTracker,
    stop: watch::Sender<bool>,
    listener: std::sync::Mutex<Option<TcpListener>>,
    addr: SocketAddr,
}

impl Hub {
    pub(crate) fn new(listener: TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        Ok(Self(Arc::new(Inner {
            router: Router::default(),
            tracker: TaskTracker::new(),
            stop: watch::channel(false).0,
            listener: std::sync::Mutex::new(Some(listener)),
            addr,
        })))
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    pub(crate) fn router(&self) -> &Router {
        &self.0.router
    }

    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.0.tracker
    }

    /// Resolves once the server is stopping.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.0.stop.subscribe();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    }

    pub(crate) fn add(&self, service: Service) {
        if service.options().keep_clean {
            let sessions = service.sessions().clone();
            let wait = service.options().wait_time;
            let stopped = self.stopped();
            self.0.tracker.spawn(async move {
                tokio::pin!(stopped);
                loop {
                    tokio::select! {
                        () = &mut stopped => break,
                        () = tokio::time::sleep(wait * 3) => {}
                    }
                    sessions.sweep().await;
                }
            });
        }
        self.0.router.add(service);
    }

    pub(crate) fn remove(&self, path: &str) -> bool {
        match self.0.router.remove(path) {
            Some(service) => {
                service
                    .sessions()
                    .close_all(CloseFrame::new(CloseCode::GOING_AWAY, "service removed").ok());
                true
            }
            None => false,
        }
    }

    pub(crate) fn sessions(&self, path: &str) -> Option<Sessions> {
        self.0.router.get(path).map(|s| s.sessions().clone())
    }

    /// Accepts connections in a background task, handing each to `handle`, until the stop.
    /// Does nothing if already started.
    pub(crate) fn start<F, Fut>(&self, handle: F)
    where
        F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(listener) = self.0.listener.lock().expect("not poisoned").take() else {
            return;
        };
        let tracker = self.0.tracker.clone();
        let stopped = self.stopped();
        self.0.tracker.spawn(async move {
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    () = &mut stopped => break,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, peer)) => {
                            let _ = tcp.set_nodelay(true);
                            tracker.spawn(handle(tcp, peer));
                        }
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                }
            }
        });
    }

    /// Stops accepting, closes every session with `code` and `reason` at once, and waits for
    /// every task at most `close_timeout` plus one second.
    pub(crate) async fn stop(&self, code: CloseCode, reason: &str, close_timeout: Duration) {
        let _ = self.0.stop.send(true);
        self.0.listener.lock().expect("not poisoned").take();
        let frame = CloseFrame::new(code, reason).ok();
        for service in self.0.router.all() {
            service.sessions().close_all(frame.clone());
        }
        self.0.tracker.close();
        let deadline = close_timeout + Duration::from_secs(1);
        if tokio::time::timeout(deadline, self.0.tracker.wait())
            .await
            .is_err()
        {
            // Sessions whose peer never finished the close (or never read it) end now.
            let aborted: usize = self
                .0
                .router
                .all()
                .iter()
                .map(|service| service.sessions().abort_all())
                .sum();
            tracing::warn!(
                aborted,
                left = self.0.tracker.len(),
                "sessions still open at the stop deadline: ended without a close handshake"
            );
            let _ = tokio::time::timeout(Duration::from_secs(1), self.0.tracker.wait()).await;
        }
    }
}
