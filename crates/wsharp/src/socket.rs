//! [`WebSocket`]: an open connection over any async byte stream, driving the sans-IO core.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker, ready};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use wsharp_proto::{
    CloseCode, CloseFrame, CloseStatus, Config, Connection, Event, Failure, Lifecycle, Message,
    Role, State,
};

use crate::error::{Error, Result};

mod streamed;
pub use streamed::Received;

/// The next message (or part of one) the core has for the application, with closes and
/// failures logged. A failure is to be reported once the close frame it queued is written.
#[inline]
pub(crate) fn next_event(conn: &mut Connection) -> Option<Result<Received, Failure>> {
    Some(match conn.poll_event()? {
        Event::Message(m) => Ok(Received::Message(m)),
        Event::Part(p) => Ok(Received::Part(p)),
        Event::Close(frame) => {
            tracing::debug!(code = ?frame.as_ref().map(|f| f.code.0), "close received");
            Ok(Received::Message(Message::Close(frame)))
        }
        Event::Failed(e) => {
            tracing::debug!(error = %e, code = e.close_code().0, "connection failed");
            Err(e)
        }
    })
}

/// Which half of a split socket is writing (both do: the receiving half writes pongs and close
/// replies).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Half {
    Recv = 0,
    Send = 1,
}

/// The write wakers of a split socket. tokio keeps one write waker per socket, so when both
/// halves wait to write, the later would take the earlier's wakeup and leave it hanging: each
/// half's waker is kept here, and the socket is given one that wakes both.
/// The receiving half's own waker is kept too: a close queued by the sending half must wake
/// it, since it keeps the close timeout.
#[derive(Debug, Default)]
pub(crate) struct SplitWakers {
    writers: Mutex<[Option<Waker>; 2]>,
    reader: Mutex<Option<Waker>>,
}

impl SplitWakers {
    fn register(&self, half: Half, waker: &Waker) {
        let mut slots = self.writers.lock().expect("not poisoned");
        let slot = &mut slots[half as usize];
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn register_reader(&self, waker: &Waker) {
        let mut slot = self.reader.lock().expect("not poisoned");
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn wake_reader(&self) {
        if let Some(waker) = self.reader.lock().expect("not poisoned").take() {
            waker.wake();
        }
    }
}

impl Wake for SplitWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let wakers = std::mem::take(&mut *self.writers.lock().expect("not poisoned"));
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}

/// The most slices handed to one vectored write.
const MAX_IOV: usize = 64;

/// An open WebSocket connection over the stream `S` (a `TcpStream`, a TLS stream, or anything
/// that is `AsyncRead + AsyncWrite`).
///
/// - [`recv`](Self::recv) yields messages, then the peer's [`Message::Close`], then `None`.
///   It also writes pending output (pongs, close replies) before it waits to read.
/// - [`send`](Self::send) queues a message and writes it out; [`feed`](Self::feed) only queues
///   (until [`Config::write_high_water`] bytes are pending) so that replies to one read leave in
///   one write: `while let Some(m) = ws.recv().await { ws.feed(m?).await? }` echoes with batching.
/// - [`close`](Self::close) sends a close frame; keep calling `recv` to see the peer's answer.
/// - It is a [`Stream`] of messages and a [`Sink`] of messages, and [`split`](Self::split)
///   gives owned halves for two tasks.
///
/// # Drop
/// Dropping the socket drops the stream: the TCP connection ends without a close frame and the
/// peer sees 1006 (no close frame), since no I/O can wait in `drop`. To end politely, call
/// [`close`](Self::close) and read to `None`, which takes at most the close timeout; or turn on
/// [`set_close_on_drop`](Self::set_close_on_drop), which sends close 1001 from `drop` when the
/// transport takes it at once. (The blocking socket, which can write in `drop`, always sends
/// 1001 there.)
///
/// # Cancel safety
/// `recv`, `flush` and `close` are cancel safe: dropping their future loses nothing. A `send` or
/// `feed` future dropped before it completes may not have queued its message.
pub struct WebSocket<S> {
    io: S,
    conn: Connection,
    protocol: Option<Box<str>>,
    /// Sleeps until the connection's next deadline ([`Connection::poll_timeout`]).
    timer: Option<Pin<Box<Sleep>>>,
    /// A failure held back until the close frame that reports it is written.
    failure: Option<Box<Failure>>,
    /// Set while split: the halves' write wakers and the waker that wakes both.
    split: Option<(Arc<SplitWakers>, Waker)>,
    /// What few sockets use, behind one pointer.
    extras: Option<Box<Extras<S>>>,
}

/// The rarely used state of a socket.
struct Extras<S> {
    /// Messages that arrived while [`WebSocket::ping_and_wait`] waited, for `recv`.
    held: VecDeque<Received>,
    /// Set by [`WebSocket::set_close_on_drop`]: sends close 1001 from `drop`.
    close_on_drop: Option<fn(&mut WebSocket<S>)>,
}

impl<S> Default for Extras<S> {
    fn default() -> Self {
        Self {
            held: VecDeque::new(),
            close_on_drop: None,
        }
    }
}

impl<S> Drop for WebSocket<S> {
    /// With [`set_close_on_drop`](WebSocket::set_close_on_drop), sends close 1001.
    fn drop(&mut self) {
        if let Some(close) = self.extras.as_mut().and_then(|e| e.close_on_drop.take()) {
            close(self);
        }
    }
}

/// Messages held while a ping waits for its pong, at most; past them it stops reading.
const MAX_HELD: usize = 64;

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("conn", &self.conn)
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a stream on which the opening handshake is done. `received` holds bytes that
    /// arrived after the handshake head (frames that shared its segment).
    pub fn from_parts(
        io: S,
        role: Role,
        config: Config,
        received: &[u8],
        protocol: Option<String>,
    ) -> Self {
        Self::from_connection(io, Connection::new(role, config), received, protocol)
    }

    /// Wraps a stream and a connection set up by the caller (with permessage-deflate on, say).
    pub fn from_connection(
        io: S,
        mut conn: Connection,
        received: &[u8],
        protocol: Option<String>,
    ) -> Self {
        if !received.is_empty() {
            conn.handle_data(received);
        }
        Self {
            io,
            conn,
            protocol: protocol.map(String::into_boxed_str),
            timer: None,
            failure: None,
            split: None,
            extras: None,
        }
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The protocol state.
    pub fn state(&self) -> State {
        self.conn.state()
    }

    /// The code and reason of the connection's end, once closed: the peer's close code, 1005 if
    /// it sent none, 1006 if it sent no close frame at all.
    pub fn close_status(&self) -> Option<CloseStatus> {
        self.conn.close_status()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The underlying stream, mutably. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The sans-IO connection this drives.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The next message: text, binary, ping/pong if [`Config::emit_control_frames`], then the
    /// peer's close, then `None`.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the peer broke the protocol (we have sent the close code) or the
    /// connection ended abnormally; [`Error::Io`] when the transport failed. Both end the stream.
    pub async fn recv(&mut self) -> Option<Result<Message>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Pings the peer and waits for its pong (websocket-sharp's `Ping()`): the round trip time,
    /// or [`Error::PongTimeout`] after `timeout`. The ping carries 8 random bytes and only the
    /// pong that echoes them counts. Messages that arrive meanwhile are kept for
    /// [`recv`](Self::recv), in order, up to 64; past them it stops reading until the
    /// timeout. The connection is unchanged by a timeout.
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// use std::time::Duration;
    /// let mut ws = wsharp::connect("ws://127.0.0.1:9001/").await?;
    /// let rtt = ws.ping_and_wait(Duration::from_secs(5)).await?;
    /// println!("round trip: {rtt:?}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::PongTimeout`]; [`Error::Send`] when the connection is closing or closed; the
    /// connection's own errors.
    pub async fn ping_and_wait(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<std::time::Duration> {
        let token: [u8; 8] = rand::random();
        self.conn
            .ping_awaiting(bytes::Bytes::copy_from_slice(&token))?;
        let started = std::time::Instant::now();
        let answered = std::future::poll_fn(|cx| {
            loop {
                if self.conn.take_pong_answered() {
                    return Poll::Ready(Ok(()));
                }
                let room = self.extras.as_ref().is_none_or(|e| e.held.len() < MAX_HELD);
                match self.poll_drive_any(cx, room) {
                    Poll::Ready(Some(Ok(message))) => {
                        self.extras
                            .get_or_insert_with(Box::default)
                            .held
                            .push_back(message);
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                    Poll::Ready(None) => {
                        return Poll::Ready(Err(Error::Send(
                            wsharp_proto::SendError::SendAfterClosing,
                        )));
                    }
                    Poll::Pending => {
                        return if self.conn.take_pong_answered() {
                            Poll::Ready(Ok(()))
                        } else {
                            Poll::Pending
                        };
                    }
                }
            }
        });
        match tokio::time::timeout(timeout, answered).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::PongTimeout(timeout)),
        }
    }

    /// Whether the peer answers a ping within `timeout` (websocket-sharp's `IsAlive`, which
    /// pings too).
    pub async fn is_alive(&mut self, timeout: std::time::Duration) -> bool {
        self.ping_and_wait(timeout).await.is_ok()
    }

    /// Queues `message` and writes everything pending.
    ///
    /// # Errors
    /// [`Error::Send`] after a close frame was sent or for an invalid control payload;
    /// [`Error::Io`] if the write fails.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<()> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queues `message` without waiting; it leaves with the next write ([`flush`](Self::flush),
    /// or the next [`recv`](Self::recv), which writes pending output before it reads).
    ///
    /// Meant for answering messages from the receive loop: `recv` stops reading from a peer
    /// that does not read its replies once [`Config::write_high_water`] bytes wait, so such a
    /// loop stays bounded, and it keeps no send future in the task. Elsewhere use
    /// [`feed`](Self::feed) or [`send`](Self::send), which wait for the queue to drain.
    ///
    /// ```no_run
    /// # async fn echo(mut ws: wsharp::WebSocket<tokio::net::TcpStream>) -> wsharp::Result<()> {
    /// while let Some(message) = ws.recv().await {
    ///     ws.queue(message?)?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Send`] after a close frame was sent or for an invalid control payload.
    pub fn queue(&mut self, message: impl Into<Message>) -> Result<()> {
        self.conn.send(message.into())?;
        Ok(())
    }

    /// Queues a prepared message without waiting, as [`queue`](Self::queue) does.
    ///
    /// # Errors
    /// As [`queue`](Self::queue).
    pub fn queue_prepared(&mut self, prepared: &wsharp_proto::PreparedMessage) -> Result<()> {
        self.conn.send_prepared(prepared)?;
        Ok(())
    }

    /// Starts the close handshake with `frame` without waiting; the next
    /// [`recv`](Self::recv) writes it and waits for the peer's answer.
    ///
    /// # Errors
    /// [`Error::Send`] for a code the API refuses.
    pub fn queue_close(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        self.conn.close(frame)?;
        Ok(())
    }

    /// Queues `message`, first writing pending output if [`Config::write_high_water`] bytes wait.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn feed(&mut self, message: impl Into<Message>) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_ready_to_send(cx)).await?;
        self.conn.send(message.into())?;
        Ok(())
    }

    /// Queues a text or binary message uncompressed even when permessage-deflate is on, and
    /// writes everything pending.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_uncompressed(&mut self, message: impl Into<Message>) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_ready_to_send(cx)).await?;
        self.conn.send_uncompressed(message.into())?;
        self.flush().await
    }

    /// Whether permessage-deflate was negotiated.
    pub fn is_compressed(&self) -> bool {
        self.conn.is_deflate()
    }

    /// Makes dropping the socket while it is open send close 1001 (going away), as
    /// websocket-sharp's `Dispose` and the blocking socket do. Off by default, since `drop`
    /// cannot wait: the close frame (and what was queued before it) is written only if the
    /// transport takes it at once, which a socket with room in its send buffer does; the
    /// peer's answer is not awaited. To end politely for sure, call [`close`](Self::close)
    /// and read to `None`.
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// let mut ws = wsharp::connect("ws://127.0.0.1:9001/").await?;
    /// ws.set_close_on_drop(true);
    /// ws.send("bye").await?;
    /// drop(ws); // the peer sees 1001
    /// # Ok(()) }
    /// ```
    pub fn set_close_on_drop(&mut self, on: bool) {
        let close: Option<fn(&mut Self)> = if on { Some(Self::close_now) } else { None };
        if on || self.extras.is_some() {
            self.extras.get_or_insert_with(Box::default).close_on_drop = close;
        }
    }

    /// Queues close 1001 and writes what the transport takes without waiting.
    fn close_now(&mut self) {
        if self.conn.state() != State::Open {
            return;
        }
        let Ok(frame) = CloseFrame::new(CloseCode::GOING_AWAY, "") else {
            return;
        };
        if self.conn.close(Some(frame)).is_ok() {
            let mut cx = Context::from_waker(Waker::noop());
            if let Poll::Ready(Ok(())) = self.poll_write_with(&mut cx) {
                let _ = Pin::new(&mut self.io).poll_shutdown(&mut cx);
            }
        }
    }

    /// A message kept while a ping waited, if any.
    fn take_held(&mut self) -> Option<Received> {
        self.extras.as_mut()?.held.pop_front()
    }

    /// Writes everything pending.
    ///
    /// # Errors
    /// [`Error::Io`] if the write fails.
    pub async fn flush(&mut self) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_write_pending(cx)).await
    }

    /// Starts the close handshake with `code` and `reason` and writes the close frame. Keep
    /// calling [`recv`](Self::recv) to receive what the peer still sends and its close; it
    /// returns `None` once the handshake is over or the close timeout passed.
    ///
    /// # Errors
    /// [`Error::Send`] for a code that may not be sent (1005, 1006, 1015, ...) or a reason over
    /// 123 bytes; [`Error::Io`] if the write fails.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        let frame = CloseFrame::new(code, reason)?;
        self.conn.close(Some(frame))?;
        self.flush().await
    }

    /// Queues a message prepared once for many connections (see
    /// [`PreparedMessage`](wsharp_proto::PreparedMessage)), waiting first if
    /// [`Config::write_high_water`] bytes are pending.
    ///
    /// # Errors
    /// As [`feed`](Self::feed).
    pub async fn feed_prepared(&mut self, prepared: &wsharp_proto::PreparedMessage) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_ready_to_send(cx)).await?;
        self.conn.send_prepared(prepared)?;
        Ok(())
    }

    /// Starts the close handshake with `frame` (`None`: no status code) and writes it; does
    /// nothing if a close frame was already sent.
    ///
    /// # Errors
    /// [`Error::Send`] for a code the API refuses; [`Error::Io`] if the write fails.
    pub async fn close_with(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        self.conn.close(frame)?;
        self.flush().await
    }

    /// Splits into a sending and a receiving half, each usable from its own task, in the
    /// order of futures' `StreamExt::split` (sink first), as tokio-tungstenite code expects:
    /// `let (write, read) = ws.split();`. Both halves write (the receiving one answers pings and
    /// closes), and each is woken when the socket can take more, whichever waited last.
    pub fn split(self) -> (crate::split::SendHalf<S>, crate::split::RecvHalf<S>)
    where
        S: Send,
    {
        crate::split::split(self)
    }

    /// A split socket's sending half started the close: the receiving half, which keeps the
    /// close timeout and reads the peer's answer, must look again.
    fn closing_from_the_send_half(&self) {
        if let Some((wakers, _)) = &self.split {
            wakers.wake_reader();
        }
    }

    /// Turns on (or off) the write wakers of a split socket.
    pub(crate) fn set_split(&mut self, split: bool) {
        self.split = split.then(|| {
            let wakers = Arc::new(SplitWakers::default());
            let both = Waker::from(wakers.clone());
            (wakers, both)
        });
    }

    fn poll_ready_to_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.conn.transmit_len() >= self.conn.config().write_high_water {
            ready!(self.poll_write_pending(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes everything pending for `half` (the sending half unless split).
    fn poll_write_pending_as(&mut self, half: Half, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let Some((wakers, both)) = &self.split else {
            return self.poll_write_with(cx);
        };
        wakers.register(half, cx.waker());
        let both = both.clone();
        self.poll_write_with(&mut Context::from_waker(&both))
    }

    fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_write_pending_as(Half::Send, cx)
    }

    fn poll_write_with(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while self.conn.has_transmit() {
            let io = Pin::new(&mut self.io);
            // One contiguous slice (the usual case) goes out with a plain write (`send`),
            // cheaper in the kernel than `writev` and with no slice list to build.
            let written = ready!(match self.conn.transmit_contiguous() {
                Some(bytes) => io.poll_write(cx, bytes),
                None => {
                    let mut slices = [IoSlice::new(&[]); MAX_IOV];
                    let n = self.conn.transmit_slices(&mut slices);
                    io.poll_write_vectored(cx, &slices[..n])
                }
            })?;
            if written == 0 {
                return Poll::Ready(Err(
                    std::io::Error::from(std::io::ErrorKind::WriteZero).into()
                ));
            }
            self.conn.advance_transmit(written);
        }
        Pin::new(&mut self.io).poll_flush(cx).map_err(Error::from)
    }

    /// Sleeps until the connection's next deadline; returns whether it passed (then
    /// [`Connection::handle_timeout`] has run and the caller should look at the connection
    /// again). The clock is read only when the connection has a deadline to keep.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.conn.needs_time() {
            self.timer = None;
            return false;
        }
        let now = Instant::now();
        let Some(at) = self.conn.poll_timeout(now.into_std()) else {
            self.timer = None;
            return false;
        };
        let at = Instant::from_std(at);
        if at <= now {
            self.conn.handle_timeout(now.into_std());
            return true;
        }
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() != at {
                    timer.as_mut().reset(at);
                }
                timer
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        if timer.as_mut().poll(cx).is_ready() {
            self.conn.handle_timeout(Instant::now().into_std());
            return true;
        }
        false
    }

    /// Drives the connection: writes pending output, reads, and returns the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        self.conn.set_receive_parts(false);
        if let Some(received) = self.take_held() {
            return Poll::Ready(Some(received.into_message()));
        }
        if self.conn.is_receiving_parts() {
            return Poll::Ready(Some(Err(Error::MessageInParts)));
        }
        if let Some((wakers, _)) = &self.split {
            wakers.register_reader(cx.waker());
        }
        self.poll_drive(cx, true)
    }

    /// [`poll_drive_any`](Self::poll_drive_any) for whole messages: a part (of a message
    /// that started while parts were wanted) is [`Error::MessageInParts`].
    #[inline]
    pub(crate) fn poll_drive(
        &mut self,
        cx: &mut Context<'_>,
        receive: bool,
    ) -> Poll<Option<Result<Message>>> {
        self.poll_drive_any(cx, receive)
            .map(|item| item.map(|r| r.and_then(Received::into_message)))
    }

    /// The driver: obeys [`Connection::lifecycle`], and when `receive`, reads and returns
    /// the next message or part (`None` once the connection is over). Without `receive` it
    /// reads nothing and returns nothing; when a deadline passes it wakes the task, so that
    /// the caller looks at the connection again.
    pub(crate) fn poll_drive_any(
        &mut self,
        cx: &mut Context<'_>,
        receive: bool,
    ) -> Poll<Option<Result<Received>>> {
        loop {
            if receive && self.failure.is_none() {
                match next_event(&mut self.conn) {
                    Some(Ok(m)) => {
                        if matches!(m, Received::Message(Message::Ping(_))) {
                            // Send the pong now: the caller may not poll again for a while.
                            let _ = self.poll_write_pending_as(Half::Recv, cx);
                        }
                        return Poll::Ready(Some(Ok(m)));
                    }
                    // Reported once its close frame is out (or cannot be written).
                    Some(Err(e)) => self.failure = Some(Box::new(e)),
                    None => {}
                }
            }
            let lifecycle = self.conn.lifecycle();
            match lifecycle {
                Lifecycle::Finished => {
                    return Poll::Ready(self.failure.take().map(|e| Err((*e).into())));
                }
                Lifecycle::Flushing => match self.poll_write_pending_as(Half::Recv, cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        tracing::debug!("could not write the close frame: {e}");
                        self.conn.abort();
                    }
                    // The close timeout bounds the wait for a peer that does not read.
                    Poll::Pending => {
                        if !self.poll_timer(cx) {
                            return Poll::Pending;
                        }
                    }
                },
                Lifecycle::Shutdown => {
                    // What the transport takes at once goes out; the rest is dropped.
                    if self.conn.has_transmit() {
                        let _ = self.poll_write_pending_as(Half::Recv, cx);
                    }
                    match Pin::new(&mut self.io).poll_shutdown(cx) {
                        Poll::Ready(_) => self.conn.handle_shutdown(),
                        Poll::Pending => {
                            // Waited for within the close timeout, and not past it.
                            if !self.poll_timer(cx) {
                                if self.timer.is_some() {
                                    return Poll::Pending;
                                }
                                self.conn.handle_shutdown();
                            }
                        }
                    }
                }
                Lifecycle::Open | Lifecycle::Closing | Lifecycle::Draining => {
                    if let Some(e) = self.failure.take() {
                        return Poll::Ready(Some(Err((*e).into())));
                    }
                    if let Poll::Ready(Err(e)) = self.poll_write_pending_as(Half::Recv, cx) {
                        self.conn.abort();
                        if lifecycle == Lifecycle::Draining {
                            continue;
                        }
                        return Poll::Ready(Some(Err(e)));
                    }
                    if !receive || !self.conn.wants_read() {
                        // Not receiving, or backpressure: the peer does not read what we owe
                        // it, so we stop reading from it. The timers still run (a dead peer is
                        // found by the keepalive).
                        if self.poll_timer(cx) {
                            if receive {
                                continue;
                            }
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                        return Poll::Pending;
                    }
                    if lifecycle != Lifecycle::Open && self.poll_timer(cx) {
                        // A peer that keeps sending after our close still meets the close timeout.
                        continue;
                    }
                    let mut room = self.conn.recv_room();
                    match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut room) {
                        Poll::Ready(Ok(0)) => self.conn.handle_eof(),
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(e)) => {
                            self.conn.abort();
                            if lifecycle != Lifecycle::Draining {
                                return Poll::Ready(Some(Err(e.into())));
                            }
                        }
                        Poll::Pending => {
                            // Idle until the socket is readable: hold no buffer meanwhile.
                            self.conn.release_idle_buffers();
                            if !self.poll_timer(cx) {
                                return Poll::Pending;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_ready_to_send(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        let this = self.get_mut();
        let close = matches!(item, Message::Close(_));
        this.conn.send(item)?;
        if close {
            this.closing_from_the_send_half();
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_write_pending(cx)
    }

    /// Sends a close frame with code 1000 (unless one was sent) and writes it out.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.conn.state() == State::Open {
            this.conn.close(Some(
                CloseFrame::new(CloseCode::NORMAL, "").expect("1000 is sendable"),
            ))?;
            this.closing_from_the_send_half();
        }
        this.poll_write_pending(cx)
    }
}
