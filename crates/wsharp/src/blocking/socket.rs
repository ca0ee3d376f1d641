//! The blocking [`WebSocket`].

use std::io::IoSlice;
use std::time::{Duration, Instant};

use wsharp_proto::{
    CloseCode, CloseFrame, CloseStatus, Config, Connection, Lifecycle, Message, State,
};

use super::{Stream, is_timeout};
use crate::error::{Error, Result};
use crate::socket::{Received, next_event};

mod streamed;

/// The most slices handed to one vectored write.
const MAX_IOV: usize = 64;
/// The most a blocking read asks for (its room is zero-filled first).
const MAX_READ: usize = 16 * 1024;

/// An open WebSocket connection over the blocking stream `S`.
///
/// - [`recv`](Self::recv) yields messages, then the peer's [`Message::Close`], then `None`; it
///   writes pending output (pongs, close replies) before it waits.
///   [`recv_timeout`](Self::recv_timeout) waits at most a given time.
/// - [`send`](Self::send) writes a message; [`feed`](Self::feed) queues it (up to
///   [`Config::write_high_water`] bytes) so that several leave in one write at the next
///   [`flush`](Self::flush).
/// - [`close`](Self::close) sends a close frame; keep calling `recv` to see the peer's answer.
///   The close timeout bounds that wait for streams with read timeouts (TCP, Unix sockets).
pub struct WebSocket<S: Stream> {
    io: S,
    conn: Connection,
    protocol: Option<String>,
    /// A failure held back until the close frame that reports it is written.
    failure: Option<wsharp_proto::Failure>,
    /// Messages that arrived while [`ping_and_wait`](Self::ping_and_wait) waited, for `recv`.
    held: std::collections::VecDeque<Received>,
    /// A ping waits for its pong; `pong_seen` once it came.
    pinging: bool,
    pong_seen: bool,
}

/// Messages held while a ping waits for its pong, at most.
const MAX_HELD: usize = 64;

impl<S: Stream> Drop for WebSocket<S> {
    /// An open connection sends close 1001 (going away) before the stream is dropped, as
    /// websocket-sharp's `Dispose` does; the write may take up to one second, and the peer's
    /// answer is not waited for.
    fn drop(&mut self) {
        if self.conn.state() != State::Open {
            return;
        }
        let Ok(frame) = CloseFrame::new(CloseCode::GOING_AWAY, "") else {
            return;
        };
        if self.conn.close(Some(frame)).is_ok() {
            let _ = self.io.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = self.flush();
            let _ = self.io.shutdown_write();
        }
    }
}

impl<S: Stream> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::WebSocket")
            .field("conn", &self.conn)
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl<S: Stream> WebSocket<S> {
    /// Wraps a stream and a connection whose opening handshake is done; `received` holds bytes
    /// that arrived after the handshake head.
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
            protocol,
            failure: None,
            held: std::collections::VecDeque::new(),
            pinging: false,
            pong_seen: false,
        }
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Whether permessage-deflate was negotiated.
    pub fn is_compressed(&self) -> bool {
        self.conn.is_deflate()
    }

    /// The protocol state.
    pub fn state(&self) -> State {
        self.conn.state()
    }

    /// The code and reason of the connection's end, once closed (1005: the peer's close had no
    /// code; 1006: it sent no close frame).
    pub fn close_status(&self) -> Option<CloseStatus> {
        self.conn.close_status()
    }

    /// The connection's settings.
    pub fn config(&self) -> &Config {
        self.conn.config()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The underlying stream, mutably. Reading or writing it directly corrupts the connection;
    /// its read timeout is managed by `recv`.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The next message, waiting as long as it takes: text, binary, ping/pong if
    /// [`Config::emit_control_frames`], then the peer's close, then `None`.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the peer broke the protocol (we sent the close code) or the
    /// connection ended abnormally; [`Error::Io`] when the transport failed. Both end it.
    pub fn recv(&mut self) -> Option<Result<Message>> {
        self.recv_whole(None)
    }

    /// The next whole message, waiting at most until `deadline`.
    fn recv_whole(&mut self, deadline: Option<Instant>) -> Option<Result<Message>> {
        self.conn.set_receive_parts(false);
        if let Some(received) = self.held.pop_front() {
            return Some(received.into_message());
        }
        if self.conn.is_receiving_parts() {
            return Some(Err(Error::MessageInParts));
        }
        self.recv_until(deadline)
            .map(|r| r.and_then(Received::into_message))
    }

    /// Pings the peer and waits for its pong (websocket-sharp's `Ping()`): the round trip time,
    /// or [`Error::PongTimeout`] after `timeout`. Only the pong that echoes the ping's 8 random
    /// bytes counts. Messages that arrive meanwhile are kept for [`recv`](Self::recv), up to
    /// 64; past them the wait ends early with `PongTimeout`.
    ///
    /// # Errors
    /// [`Error::PongTimeout`]; [`Error::Send`] when the connection is closing or closed; the
    /// connection's own errors.
    pub fn ping_and_wait(&mut self, timeout: Duration) -> Result<Duration> {
        let token: [u8; 8] = rand::random();
        self.conn
            .ping_awaiting(bytes::Bytes::copy_from_slice(&token))?;
        self.flush()?;
        let started = Instant::now();
        let deadline = started + timeout;
        self.pinging = true;
        let result = loop {
            if std::mem::take(&mut self.pong_seen) || self.conn.take_pong_answered() {
                break Ok(started.elapsed());
            }
            if self.held.len() >= MAX_HELD {
                break Err(Error::PongTimeout(timeout));
            }
            match self.recv_until(Some(deadline)) {
                Some(Ok(m)) => self.held.push_back(m),
                Some(Err(Error::Timeout)) if self.pong_seen => {}
                Some(Err(Error::Timeout)) => break Err(Error::PongTimeout(timeout)),
                Some(Err(e)) => break Err(e),
                None => break Err(Error::Send(wsharp_proto::SendError::SendAfterClosing)),
            }
        };
        self.pinging = false;
        self.pong_seen = false;
        result
    }

    /// Whether the peer answers a ping within `timeout` (websocket-sharp's `IsAlive`).
    pub fn is_alive(&mut self, timeout: Duration) -> bool {
        self.ping_and_wait(timeout).is_ok()
    }

    /// As [`recv`](Self::recv), but gives up after `timeout` with [`Error::Timeout`], which
    /// leaves the connection usable: call again to keep waiting.
    ///
    /// # Errors
    /// As `recv`, and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Result<Message>> {
        self.recv_whole(Some(Instant::now() + timeout))
    }

    /// Queues `message` and writes everything pending.
    ///
    /// # Errors
    /// [`Error::Send`] after a close frame was sent or for an invalid control payload;
    /// [`Error::Io`] if the write fails.
    pub fn send(&mut self, message: impl Into<Message>) -> Result<()> {
        self.feed(message)?;
        self.flush()
    }

    /// Queues `message`, first writing pending output if [`Config::write_high_water`] bytes
    /// wait.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn feed(&mut self, message: impl Into<Message>) -> Result<()> {
        if self.conn.transmit_len() >= self.conn.config().write_high_water {
            self.flush()?;
        }
        self.conn.send(message.into())?;
        Ok(())
    }

    /// Sends a text or binary message uncompressed even when permessage-deflate is on.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_uncompressed(&mut self, message: impl Into<Message>) -> Result<()> {
        if self.conn.transmit_len() >= self.conn.config().write_high_water {
            self.flush()?;
        }
        self.conn.send_uncompressed(message.into())?;
        self.flush()
    }

    /// Writes everything pending (in vectored writes when it is in pieces).
    ///
    /// # Errors
    /// [`Error::Io`] if the write fails.
    pub fn flush(&mut self) -> Result<()> {
        while self.conn.has_transmit() {
            let written = match match self.conn.transmit_contiguous() {
                Some(bytes) => self.io.write(bytes),
                None => {
                    let mut slices = [IoSlice::new(&[]); MAX_IOV];
                    let n = self.conn.transmit_slices(&mut slices);
                    self.io.write_vectored(&slices[..n])
                }
            } {
                Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
                Ok(written) => written,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.conn.advance_transmit(written);
        }
        self.io.flush()?;
        Ok(())
    }

    /// Starts the close handshake with `code` and `reason` and writes the close frame. Keep
    /// calling [`recv`](Self::recv) until `None` to receive the peer's answer.
    ///
    /// # Errors
    /// [`Error::Send`] for a code that may not be sent (1005, 1006, 1015, ...) or a reason over
    /// 123 bytes; [`Error::Io`] if the write fails.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        let frame = CloseFrame::new(code, reason)?;
        self.close_with(Some(frame))
    }

    /// Starts the close handshake with `frame` (`None`: no status code); does nothing if a
    /// close frame was already sent.
    ///
    /// # Errors
    /// As [`close`](Self::close).
    pub fn close_with(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        self.conn.close(frame)?;
        self.flush()
    }

    /// The driver: obeys [`Connection::lifecycle`], reads, and returns the next message or
    /// part.
    fn recv_until(&mut self, deadline: Option<Instant>) -> Option<Result<Received>> {
        loop {
            if self.failure.is_none() {
                match next_event(&mut self.conn) {
                    Some(Ok(m)) => {
                        if matches!(m, Received::Message(Message::Ping(_))) {
                            // Send the pong now: the caller may not call again for a while.
                            let _ = self.flush();
                        }
                        return Some(Ok(m));
                    }
                    // Reported once its close frame is out (or cannot be written).
                    Some(Err(e)) => self.failure = Some(e),
                    None => {}
                }
            }
            let lifecycle = self.conn.lifecycle();
            match lifecycle {
                Lifecycle::Finished => return self.failure.take().map(|e| Err(e.into())),
                Lifecycle::Flushing => {
                    if let Err(e) = self.flush_within_close_timeout() {
                        tracing::debug!("could not write the close frame: {e}");
                        match e {
                            // The close deadline: the core decides what it means.
                            Error::Io(e) if is_timeout(&e) => {
                                self.conn.handle_timeout(Instant::now());
                            }
                            _ => self.conn.abort(),
                        }
                    }
                }
                Lifecycle::Shutdown => {
                    if self.conn.has_transmit() {
                        // What the transport takes at once goes out; the rest is dropped.
                        let _ = self.io.set_write_timeout(Some(Duration::from_millis(1)));
                        let _ = self.flush();
                        let _ = self.io.set_write_timeout(None);
                    }
                    let _ = self.io.shutdown_write();
                    self.conn.handle_shutdown();
                }
                Lifecycle::Open | Lifecycle::Closing | Lifecycle::Draining => {
                    if let Some(e) = self.failure.take() {
                        return Some(Err(e.into()));
                    }
                    // Blocking writes drain the output, so the high-water mark holds reading
                    // back here as it does in the async layer.
                    if let Err(e) = self.flush() {
                        self.conn.abort();
                        if lifecycle == Lifecycle::Draining {
                            continue;
                        }
                        return Some(Err(e));
                    }
                    let now = Instant::now();
                    let timer = if self.conn.needs_time() {
                        self.conn.poll_timeout(now)
                    } else {
                        None
                    };
                    if timer.is_some_and(|t| t <= now) {
                        self.conn.handle_timeout(now);
                        continue;
                    }
                    if self.pinging && self.conn.take_pong_answered() {
                        // The pong a ping waits for: back to `ping_and_wait`.
                        self.pong_seen = true;
                        return Some(Err(Error::Timeout));
                    }
                    if deadline.is_some_and(|d| d <= now) {
                        return Some(Err(Error::Timeout));
                    }
                    let wait_until = match (deadline, timer) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    if let Err(e) = self.io.set_read_timeout(wait_until.map(|t| t - now)) {
                        return Some(Err(e.into()));
                    }
                    match self.read() {
                        Ok(0) => self.conn.handle_eof(),
                        Ok(_) => {}
                        Err(e) if is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => {
                        }
                        Err(e) => {
                            self.conn.abort();
                            if lifecycle != Lifecycle::Draining {
                                return Some(Err(e.into()));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes what is pending, giving up at the connection's close deadline.
    fn flush_within_close_timeout(&mut self) -> Result<()> {
        let now = Instant::now();
        let bound = self.conn.poll_timeout(now).map(|d| {
            d.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        });
        self.io.set_write_timeout(bound)?;
        let result = self.flush();
        self.io.set_write_timeout(None)?;
        result
    }

    /// Reads once into the core's receive buffer.
    fn read(&mut self) -> std::io::Result<usize> {
        let room = self.conn.recv_room();
        let limit = room.limit();
        let buf = room.into_inner();
        let start = buf.len();
        let room = (buf.capacity() - start).min(limit).clamp(1, MAX_READ);
        buf.resize(start + room, 0);
        let result = self.io.read(&mut buf[start..]);
        buf.truncate(start + *result.as_ref().unwrap_or(&0));
        result
    }
}

impl<S: Stream> Iterator for WebSocket<S> {
    type Item = Result<Message>;

    /// The next message, as [`recv`](WebSocket::recv).
    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}
