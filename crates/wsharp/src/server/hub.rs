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

use super::backplane::{Backplane, Directed, Link, LocalDelivery};
use super::service::{Router, Service, WeakRouter};
use super::sessions::Sessions;

#[derive(Clone)]
pub(crate) struct Hub(Arc<Inner>);

struct Inner {
    router: Router,
    tracker: TaskTracker,
    stop: watch::Sender<bool>,
    listener: std::sync::Mutex<Option<TcpListener>>,
    addr: SocketAddr,
    /// Whether the accept loop runs.
    listening: std::sync::atomic::AtomicBool,
    /// TCP_NODELAY on accepted connections.
    no_delay: std::sync::atomic::AtomicBool,
    /// Carries broadcasts, directed sends and counts to other nodes, if set.
    backplane: std::sync::RwLock<Option<Arc<dyn Backplane>>>,
}

/// This node's sessions, as the backplane delivers to them.
struct HubDelivery(WeakRouter);

impl LocalDelivery for HubDelivery {
    fn broadcast(&self, path: &str, message: wsharp_proto::Message) {
        if let Some(service) = self.0.upgrade().and_then(|r| r.get(path))
            && let Err(e) = service.sessions().broadcast_local(message)
        {
            tracing::debug!(path, "broadcast from another node refused: {e}");
        }
    }

    fn directed(&self, path: &str, id: &str, directed: Directed) -> bool {
        self.0
            .upgrade()
            .and_then(|r| r.get(path))
            .is_some_and(|service| service.sessions().deliver_directed(id, directed))
    }

    fn count(&self, path: &str) -> usize {
        self.0
            .upgrade()
            .and_then(|r| r.get(path))
            .map_or(0, |service| service.sessions().count())
    }

    fn sessions(&self) -> Vec<(String, Vec<String>)> {
        self.0.upgrade().map_or_else(Vec::new, |router| {
            router
                .all()
                .iter()
                .map(|s| (s.path().to_owned(), s.sessions().ids()))
                .collect()
        })
    }
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
            listening: std::sync::atomic::AtomicBool::new(false),
            no_delay: std::sync::atomic::AtomicBool::new(true),
            backplane: std::sync::RwLock::new(None),
        })))
    }

    /// Sets the backplane: every service, mounted now or later, publishes through it.
    pub(crate) fn set_backplane(&self, backplane: Arc<dyn Backplane>) {
        for service in self.0.router.all() {
            service.sessions().attach(Link {
                path: service.path().into(),
                backplane: backplane.clone(),
            });
        }
        *self.0.backplane.write().expect("not poisoned") = Some(backplane);
    }

    fn backplane(&self) -> Option<Arc<dyn Backplane>> {
        self.0.backplane.read().expect("not poisoned").clone()
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

    pub(crate) fn add(&self, service: Service) -> crate::Result<()> {
        let service = self.0.router.add(service)?;
        if let Some(backplane) = self.backplane() {
            service.sessions().attach(Link {
                path: service.path().into(),
                backplane,
            });
        }
        self.sweep_from_time_to_time(&service);
        Ok(())
    }

    /// For a service with `keep_clean`: sweeps its sessions every three wait times, until the
    /// stop.
    fn sweep_from_time_to_time(&self, service: &Service) {
        if !service.options().keep_clean {
            return;
        }
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

    /// Sets TCP_NODELAY for connections accepted from now on.
    pub(crate) fn set_no_delay(&self, on: bool) {
        self.0
            .no_delay
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the server accepts connections (started and not stopped).
    pub(crate) fn is_listening(&self) -> bool {
        self.0.listening.load(std::sync::atomic::Ordering::Acquire)
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

    /// The mounted paths, sorted.
    pub(crate) fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .0
            .router
            .all()
            .iter()
            .map(|s| s.path().to_owned())
            .collect();
        paths.sort_unstable();
        paths
    }

    pub(crate) fn sessions(&self, path: &str) -> Option<Sessions> {
        self.0.router.get(path).map(|s| s.sessions().clone())
    }

    /// Accepts connections in a background task, handing each to `handle`, until the stop.
    /// Does nothing if already started; after a stop, binds the same address again and starts
    /// afresh (the services and their options stay).
    ///
    /// # Errors
    /// When the address cannot be bound again after a stop.
    pub(crate) fn start<F, Fut>(&self, handle: F) -> std::io::Result<()>
    where
        F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut slot = self.0.listener.lock().expect("not poisoned");
        let listener = match slot.take() {
            Some(listener) => listener,
            None if !*self.0.stop.borrow() => return Ok(()),
            None => {
                // std sets SO_REUSEADDR on Unix: the port is free again despite TIME_WAIT.
                let std = std::net::TcpListener::bind(self.0.addr)?;
                std.set_nonblocking(true)?;
                let listener = TcpListener::from_std(std)?;
                self.0.stop.send_replace(false);
                self.0.tracker.reopen();
                for service in self.0.router.all() {
                    self.sweep_from_time_to_time(&service);
                }
                tracing::info!(addr = %self.0.addr, "started again");
                listener
            }
        };
        drop(slot);
        if let Some(backplane) = self.backplane() {
            backplane.start(Arc::new(HubDelivery(self.0.router.downgrade())));
        }
        let tracker = self.0.tracker.clone();
        let stopped = self.stopped();
        let inner = self.0.clone();
        inner
            .listening
            .store(true, std::sync::atomic::Ordering::Release);
        self.0.tracker.spawn(async move {
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    () = &mut stopped => break,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, peer)) => {
                            let _ = tcp.set_nodelay(inner.no_delay.load(std::sync::atomic::Ordering::Relaxed));
                            tracker.spawn(handle(tcp, peer));
                        }
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                }
            }
            inner
                .listening
                .store(false, std::sync::atomic::Ordering::Release);
        });
        Ok(())
    }

    /// Stops accepting, closes every session with `code` and `reason` at once, and waits for
    /// every task at most `close_timeout` plus one second.
    pub(crate) async fn stop(&self, code: CloseCode, reason: &str, close_timeout: Duration) {
        self.0.stop.send_replace(true);
        self.0
            .listening
            .store(false, std::sync::atomic::Ordering::Release);
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
        if let Some(backplane) = self.backplane() {
            backplane.shutdown().await;
        }
    }
}
