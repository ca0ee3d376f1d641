//! [`Session`]: one connection of a service, as its behavior and the session registry see it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use futures_util::task::AtomicWaker;
use http::HeaderMap;
use tokio::sync::{mpsc, oneshot};
use wsharp_proto::{CloseCode, CloseFrame, Message, PreparedMessage};

use super::outbound_stream::OutboundStream;
use super::sessions::Sessions;
use crate::error::{Error, Result};

/// What the session's I/O task is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    Send(Message),
    Prepared(PreparedMessage),
    /// A message whose sender learns when it is written.
    Tracked(Message, oneshot::Sender<Result<()>>),
    /// A message streamed from a reader.
    Stream(Box<OutboundStream>),
}

impl Command {
    /// The message's payload size (a stream's parts are counted as they are read).
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Send(m) | Self::Tracked(m, _) => m.len(),
            Self::Prepared(p) => p.message().len(),
            Self::Stream(_) => 0,
        }
    }
}

/// One open connection of a service. Cheap to clone; every clone is the same session.
#[derive(Clone)]
pub struct Session(pub(crate) Arc<SessionInner>);

pub(crate) struct SessionInner {
    pub(crate) id: String,
    pub(crate) uri: http::Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) protocol: Option<String>,
    pub(crate) identity: Option<crate::auth::Identity>,
    /// The `Sec-WebSocket-Extensions` agreed.
    pub(crate) extensions: Option<Box<str>>,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) started: std::time::SystemTime,
    /// Whether the connection is TLS.
    pub(crate) secure: bool,
    #[cfg(feature = "tls")]
    pub(crate) peer_certificates: Option<crate::tls::PeerCertificates>,
    pub(crate) outgoing: mpsc::Sender<Command>,
    pub(crate) sessions: Sessions,
    /// Milliseconds since `epoch` when a frame last arrived.
    pub(crate) last_seen: AtomicU64,
    pub(crate) epoch: Instant,
    /// Set to make the session task close now, even with a full queue; `force_waker` wakes it.
    pub(crate) forced: AtomicBool,
    pub(crate) force_waker: AtomicWaker,
    pub(crate) force_code: std::sync::Mutex<Option<CloseFrame>>,
    pub(crate) closed: AtomicBool,
    /// Pings waiting for their pong: the payload and who waits.
    pub(crate) pong_waiters: std::sync::Mutex<Vec<([u8; 8], oneshot::Sender<()>)>>,
    /// The receiving end of `outgoing`, taken by the session's I/O task.
    pub(crate) commands: std::sync::Mutex<Option<mpsc::Receiver<Command>>>,
    /// Ends the session's task (a stop past its deadline).
    pub(crate) task: std::sync::OnceLock<tokio::task::AbortHandle>,
}

impl SessionInner {
    /// Notes that a frame arrived from the peer.
    pub(crate) fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_seen.store(ms, Ordering::Relaxed);
    }

    /// A pong arrived: wakes the ping waiting for this payload, if any.
    pub(crate) fn pong(&self, payload: &[u8]) {
        let mut waiters = self.pong_waiters.lock().expect("not poisoned");
        if let Some(i) = waiters.iter().position(|(token, _)| token[..] == *payload) {
            let (_, waiter) = waiters.swap_remove(i);
            let _ = waiter.send(());
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.0.id)
            .field("uri", &self.0.uri)
            .field("remote_addr", &self.0.remote_addr)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session's id: 32 hex digits from a CSPRNG, unique and unguessable.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The request URI (path and query).
    pub fn uri(&self) -> &http::Uri {
        &self.0.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }

    /// The value of query parameter `name`, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        query_pairs(self.0.uri.query().unwrap_or(""))
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// All query parameters, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(self.0.uri.query().unwrap_or("")).collect()
    }

    /// The request's cookies, in order (see [`parse_cookies`](super::parse_cookies)).
    pub fn cookies(&self) -> Vec<(String, String)> {
        super::options::parse_cookies(&self.0.headers)
    }

    /// The value of cookie `name`, the first if repeated.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The `Origin` header.
    pub fn origin(&self) -> Option<&str> {
        self.0
            .headers
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.0.remote_addr
    }

    /// The `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.0
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
    }

    /// The extensions agreed in the handshake, as the 101 sent them
    /// (`permessage-deflate; client_max_window_bits=15`, ...), if any.
    pub fn extensions(&self) -> Option<&str> {
        self.0.extensions.as_deref()
    }

    /// The server's address the connection arrived on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.0.local_addr
    }

    /// Whether the client is on this machine (a loopback address; websocket-sharp's `IsLocal`).
    pub fn is_local(&self) -> bool {
        self.0.remote_addr.is_some_and(|a| a.ip().is_loopback())
    }

    /// When the session started (websocket-sharp's `StartTime`).
    pub fn start_time(&self) -> std::time::SystemTime {
        self.0.started
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.0.protocol.as_deref()
    }

    /// Whether the connection came over TLS (`wss://`).
    pub fn is_secure(&self) -> bool {
        self.0.secure
    }

    /// The certificates the client presented over TLS, leaf first (mutual TLS).
    #[cfg(feature = "tls")]
    pub fn peer_certificates(&self) -> Option<&crate::tls::PeerCertificates> {
        self.0.peer_certificates.as_ref()
    }

    /// The authenticated user's name, when the service demands authentication.
    pub fn user(&self) -> Option<&str> {
        self.0.identity.as_ref().map(crate::auth::Identity::name)
    }

    /// The authenticated user: name, roles and scheme.
    pub fn identity(&self) -> Option<&crate::auth::Identity> {
        self.0.identity.as_ref()
    }

    /// The sessions of this session's service.
    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    /// Whether the session is still open.
    pub fn is_open(&self) -> bool {
        !self.0.closed.load(Ordering::Acquire)
    }

    /// Queues a message. From the session's own callbacks it goes onto the connection at
    /// once, waiting while the connection's output is at its high-water mark
    /// ([`Config::write_high_water`](wsharp_proto::Config::write_high_water)); from anywhere
    /// else it goes through the session's queue
    /// ([`ServiceOptions::send_queue`](super::ServiceOptions::send_queue)), waiting while that
    /// is full. Either way it is written by the session's task, in order with the session's
    /// other sends from the same place.
    ///
    /// # Errors
    /// [`Error::Send`] once the session is closed.
    pub async fn send(&self, message: impl Into<Message>) -> Result<()> {
        self.send_command(Command::Send(message.into())).await
    }

    /// Sends a message and returns once it is written to the socket, not when it is queued
    /// (websocket-sharp's `SendAsync` with its completion callback): the transport has taken
    /// its last byte. Costs a channel per message over [`send`](Self::send).
    ///
    /// ```no_run
    /// # async fn run(session: &wsharp::server::Session) -> wsharp::Result<()> {
    /// session.send_and_wait("written when this returns").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Send`] if the session closes before the message is written, or was closed.
    pub async fn send_and_wait(&self, message: impl Into<Message>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send_command(Command::Tracked(message.into(), tx))
            .await?;
        rx.await.map_err(|_| closed())?
    }

    /// Streams everything `reader` yields, to its end, as one message of `kind`, in parts of
    /// up to 64 KiB (websocket-sharp's `Send(Stream, int)` and `SendAsync(Stream, int, ...)`).
    /// The message never sits whole in memory; the session's task reads the next part when
    /// the connection's output is under its high-water mark, so a slow client slows the
    /// reader down. Meanwhile the session keeps receiving and answering pings, and the
    /// session's other sends wait for the message's end: its send queue is not read
    /// meanwhile, so broadcasts to it pile up there, and past
    /// [`ServiceOptions::send_queue`](super::ServiceOptions::send_queue) the service's
    /// [`Overflow`](super::Overflow) policy applies (with `Overflow::Close`, a long stream to
    /// a busy service can cost the session). Returns once the last part is queued, with the
    /// bytes read. Compressed as one message when permessage-deflate is on.
    ///
    /// A reader that fails after the first part left closes the session with 1011.
    ///
    /// ```no_run
    /// # async fn run(session: &wsharp::server::Session) -> wsharp::Result<()> {
    /// use wsharp::MessageKind;
    /// let file = tokio::fs::File::open("report.csv").await?;
    /// let sent = session.send_reader(MessageKind::Text, file).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The reader's [`Error::Io`]; [`Error::Send`] once the session is closed or for text
    /// that is not UTF-8.
    pub async fn send_reader(
        &self,
        kind: wsharp_proto::MessageKind,
        reader: impl tokio::io::AsyncRead + Send + 'static,
    ) -> Result<u64> {
        let (stream, rx) = OutboundStream::new(kind, reader);
        self.send_command(Command::Stream(stream)).await?;
        rx.await.map_err(|_| closed())?
    }

    /// Sends a file as one binary message, streamed from disk (websocket-sharp's
    /// `Send(FileInfo)`); see [`send_reader`](Self::send_reader). Returns its size.
    ///
    /// # Errors
    /// As [`send_reader`](Self::send_reader), and opening the file.
    pub async fn send_file(&self, path: impl AsRef<std::path::Path>) -> Result<u64> {
        let file = tokio::fs::File::open(path).await?;
        self.send_reader(wsharp_proto::MessageKind::Binary, file)
            .await
    }

    pub(crate) async fn send_command(&self, command: Command) -> Result<()> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let mut slot = Some(command);
        let local = std::future::poll_fn(|_| super::local_send::offer(&self.0, &mut slot)).await;
        if local {
            return Ok(());
        }
        let command = slot.take().expect("not sent locally");
        // Boxed: the channel's send future is large, and a callback's future would carry it
        // (and copy it) for every message, though callbacks send locally.
        Box::pin(self.0.outgoing.send(command))
            .await
            .map_err(|_| closed())
    }

    /// Pings the client and waits for its pong (websocket-sharp's `Ping()`): the round trip
    /// time, or [`Error::PongTimeout`] after `timeout`. Each ping carries 8 random bytes, so
    /// pings in flight at once are told apart. Messages go on meanwhile; called from the
    /// session's own callback, the callback waits while the session keeps reading.
    ///
    /// # Errors
    /// [`Error::PongTimeout`], or [`Error::Send`] once the session is closed.
    pub async fn ping_and_wait(&self, timeout: std::time::Duration) -> Result<std::time::Duration> {
        let token: [u8; 8] = rand::random();
        let (tx, rx) = oneshot::channel();
        self.0
            .pong_waiters
            .lock()
            .expect("not poisoned")
            .push((token, tx));
        let started = Instant::now();
        let answered = async {
            self.send(Message::Ping(bytes::Bytes::copy_from_slice(&token)))
                .await?;
            rx.await.map_err(|_| closed())
        };
        let outcome = tokio::time::timeout(timeout, answered).await;
        if !matches!(outcome, Ok(Ok(()))) {
            self.0
                .pong_waiters
                .lock()
                .expect("not poisoned")
                .retain(|(t, _)| *t != token);
        }
        match outcome {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::PongTimeout(timeout)),
        }
    }

    /// Whether the client answers a ping within the service's wait time (websocket-sharp's
    /// `IsAlive`, which pings too).
    pub async fn is_alive(&self) -> bool {
        let wait = self.0.sessions.wait_time();
        self.ping_and_wait(wait).await.is_ok()
    }

    /// Sends a ping without waiting for its pong.
    ///
    /// # Errors
    /// [`Error::Send`] once the session is closed or for a payload over 125 bytes.
    pub async fn ping(&self, payload: impl Into<bytes::Bytes>) -> Result<()> {
        let payload = payload.into();
        if payload.len() > 125 {
            return Err(Error::Send(wsharp_proto::SendError::ControlPayloadTooBig(
                payload.len(),
            )));
        }
        self.send(Message::Ping(payload)).await
    }

    /// Closes the session with `code` and `reason`.
    ///
    /// # Errors
    /// [`Error::Send`] for a code that may not be sent or a reason over 123 bytes.
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        let frame = CloseFrame::new(code, reason).map_err(Error::Send)?;
        self.force_close(Some(frame));
        Ok(())
    }

    /// Closes the session with a close frame that carries no code (websocket-sharp's `Close()`
    /// without arguments; the client sees 1005, no status received).
    pub fn close_without_code(&self) {
        self.force_close(None);
    }

    /// Makes the I/O task close with `frame` now, whatever is queued.
    pub(crate) fn force_close(&self, frame: Option<CloseFrame>) {
        *self.0.force_code.lock().expect("not poisoned") = frame;
        self.0.forced.store(true, Ordering::Release);
        self.0.force_waker.wake();
    }

    /// Time since a frame last arrived from the peer.
    pub fn idle_for(&self) -> std::time::Duration {
        let seen = self.0.last_seen.load(Ordering::Relaxed);
        self.0
            .epoch
            .elapsed()
            .saturating_sub(std::time::Duration::from_millis(seen))
    }
}

fn closed() -> Error {
    Error::Send(wsharp_proto::SendError::SendAfterClosing)
}

/// Splits a query string into percent-decoded pairs (`+` is a space).
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (
            crate::percent::decode(k, true),
            crate::percent::decode(v, true),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let pairs: Vec<_> = query_pairs("name=Nyan%20Cat&x=a+b&bad=%zz&empty=&flag").collect();
        assert_eq!(pairs[0], ("name".into(), "Nyan Cat".into()));
        assert_eq!(pairs[1], ("x".into(), "a b".into()));
        assert_eq!(pairs[2], ("bad".into(), "%zz".into()));
        assert_eq!(pairs[3], ("empty".into(), String::new()));
        assert_eq!(pairs[4], ("flag".into(), String::new()));
    }
}
