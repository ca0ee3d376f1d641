//! One WebSocket connection's protocol state, after the opening handshake.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use rand::RngCore;

use crate::close::{CloseCode, CloseFrame};
use crate::config::{Config, Role};
use crate::deflate::{Deflate, Deflater, Inflater, Negotiated};
use crate::error::{ProtocolError, SendError};
use crate::frame::{FrameHeader, OpCode, apply_mask, encode_header, parse_header};
use crate::growth::{grown_capacity, shrink_grown};
use crate::message::{Message, Utf8Bytes};
use crate::utf8::Utf8Validator;

/// Payloads up to this size are copied next to their header so that many small frames leave in
/// one buffer; larger ones travel as their own `Bytes` in a vectored write.
const COALESCE_MAX: usize = 2048;
/// Received payloads up to this size are copied out of the receive buffer, so that it stays
/// whole for the next read and a message the application keeps does not hold it; larger ones
/// are handed over without a copy.
const COPY_MAX: usize = 4096;
/// A partial frame of at most this many bytes, held while the transport would block, is moved
/// to a buffer of its own size so that the read buffer goes back to the pool.
const COMPACT_MAX: usize = 4096;
/// Room offered past the end of a large frame. A read then comes back short when the frame is
/// all the socket holds, which tells the I/O layer the socket is drained (tokio then skips the
/// read that would only find it empty); when more is there, at most this many bytes of the
/// next frame land in this frame's buffer, and move with the next read's room.
const READ_SLACK: usize = 64;
/// Pongs queued but not yet taken by the transport, at most; past them only the latest ping is
/// answered, once the output drains. Enough for Autobahn's burst of ten pings (case 2.10).
const MAX_UNSENT_PONGS: u8 = 16;

/// Where the connection is in its life (RFC 6455 §4, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's. Received messages are still delivered.
    Closing,
    /// The close handshake finished, or the connection failed or ended. Flush what
    /// [`Connection::has_transmit`] holds, then close the transport.
    Closed,
}

/// What the connection has to tell the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text or binary message, or a ping or pong when
    /// [`Config::emit_control_frames`] is set.
    Message(Message),
    /// The peer's close frame (`None` if it carried no status code). A reply has been queued if
    /// the peer started the close.
    Close(Option<CloseFrame>),
    /// We failed the connection for this reason; a close frame with its code has been queued.
    Failed(ProtocolError),
}

/// The frame being received: its payload is collected in the receive buffer, and the first
/// `processed` bytes are already unmasked (and UTF-8-checked for text).
#[derive(Debug)]
struct InFrame {
    header: FrameHeader,
    processed: usize,
}

/// A WebSocket connection's protocol state. Performs no I/O and reads no clock.
///
/// Call order for the I/O layer:
/// 1. Incoming bytes: read into [`recv_room`](Self::recv_room) (or the spare capacity of
///    [`recv_buffer`](Self::recv_buffer), or pass a slice to [`handle_data`](Self::handle_data));
///    at end of stream call [`handle_eof`](Self::handle_eof). When a read would block, call
///    [`release_idle_buffers`](Self::release_idle_buffers).
/// 2. Application commands: [`send`](Self::send), [`close`](Self::close).
/// 3. After either: write what [`transmit_slices`](Self::transmit_slices) lends and report it with
///    [`advance_transmit`](Self::advance_transmit); then drain [`poll_event`](Self::poll_event).
/// 4. Time: sleep until [`poll_timeout`](Self::poll_timeout) (skip it while
///    [`needs_time`](Self::needs_time) is false) and call
///    [`handle_timeout`](Self::handle_timeout) when it passes; then back to 3. The connection
///    keeps the close timeout and the keepalive itself.
/// 5. Once [`State::Closed`] and nothing is left to transmit, shut the transport's write side
///    and read until its end; stop at once when [`is_expired`](Self::is_expired), or as a
///    server when [`is_close_handshake_done`](Self::is_close_handshake_done).
pub struct Connection {
    role: Role,
    /// Shared: many connections hold one copy.
    config: Arc<Config>,
    /// RSV bits an extension claims for data frames.
    allowed_rsv: u8,
    rbuf: BytesMut,
    frame: Option<InFrame>,
    /// The kind of the data message being received, if one is open.
    message: Option<OpCode>,
    message_size: u64,
    /// Frames of the data message being received so far.
    message_frames: usize,
    /// The fragments of the uncompressed message being received, joined.
    fragments: Vec<u8>,
    utf8: Utf8Validator,
    events: VecDeque<Event>,
    out: Outgoing,
    sent_close: bool,
    closed: bool,
    /// How the connection ended, once it has (boxed: an open connection holds a pointer).
    ending: Option<Box<Ending>>,
    mask_rng: Option<Box<dyn RngCore + Send + Sync>>,
    deflate: Option<Box<DeflateState>>,
    /// Whether the message being received is compressed (RSV1 on its first frame).
    compressed: bool,
    /// The size of the last frame received (header included) if it exceeded the read size, at
    /// most 16 times that: the room offered between frames.
    large_frame: usize,
    /// Pongs queued since the output last drained.
    pongs_unsent: u8,
    /// Deadlines and what they wait for; allocated once a timer is armed or a ping is held.
    timers: Option<Box<Timers>>,
}

/// The connection's clock-driven state: the close timeout and the keepalive. Time comes in as
/// arguments; nothing here reads a clock.
#[derive(Debug, Default)]
struct Timers {
    /// When the close handshake gives up, or, once closed, the wait for the transport's end.
    close_deadline: Option<Instant>,
    /// The keepalive's next check.
    keepalive_at: Option<Instant>,
    /// A keepalive ping is out, sent at the last check.
    ping_outstanding: bool,
    /// Frames arrived since the last keepalive check.
    heard: bool,
    /// Nothing more is to be waited for: the close timeout passed or the peer was found dead.
    expired: bool,
    /// The latest ping not answered yet because earlier pongs wait in the output.
    held_ping: Option<Bytes>,
}

/// The peer's close frame and our failure, once there is one.
#[derive(Debug, Default)]
struct Ending {
    /// `Some` once the peer's close frame arrived (`Some(None)`: it had no status code).
    peer_close: Option<Option<CloseFrame>>,
    failure: Option<ProtocolError>,
}

/// permessage-deflate state of a connection.
#[derive(Debug)]
struct DeflateState {
    /// `None` when the negotiated window is one the backend cannot make (8 bits): we then
    /// send uncompressed, which RFC 7692 allows for any message.
    deflater: Option<Deflater>,
    inflater: Inflater,
    threshold: usize,
    /// The inflated message being received.
    inflated: Vec<u8>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("buffered_in", &self.rbuf.len())
            .field("buffered_out", &self.out.len)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection in the open state, right after the handshake. Pass an `Arc<Config>` to
    /// share one copy of the settings among many connections.
    pub fn new(role: Role, config: impl Into<Arc<Config>>) -> Self {
        Self {
            role,
            config: config.into(),
            allowed_rsv: 0,
            rbuf: BytesMut::new(),
            frame: None,
            message: None,
            message_size: 0,
            message_frames: 0,
            fragments: Vec::new(),
            utf8: Utf8Validator::new(),
            events: VecDeque::new(),
            out: Outgoing::default(),
            sent_close: false,
            closed: false,
            ending: None,
            mask_rng: None,
            deflate: None,
            compressed: false,
            large_frame: 0,
            pongs_unsent: 0,
            timers: None,
        }
    }

    fn timers_mut(&mut self) -> &mut Timers {
        self.timers.get_or_insert_with(Box::default)
    }

    /// Notes that the peer sent something (the keepalive's sign of life).
    #[inline]
    fn heard(&mut self) {
        if let Some(t) = self.timers.as_mut() {
            t.heard = true;
        }
    }

    /// The keepalive's interval and timeout, if it is on: a zero interval is off, a zero or
    /// missing timeout is the interval.
    fn keepalive(&self) -> Option<(std::time::Duration, std::time::Duration)> {
        let interval = self.config.keepalive_interval.filter(|i| !i.is_zero())?;
        let timeout = self
            .config
            .keepalive_timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(interval);
        Some((interval, timeout))
    }

    /// Whether [`poll_timeout`](Self::poll_timeout) may return a deadline: `false` while the
    /// connection is open without keepalive, so that a driver need not read the clock.
    #[inline]
    pub fn needs_time(&self) -> bool {
        self.keepalive().is_some() || self.sent_close || self.closed
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due, if ever. `now` starts the
    /// timers that start now: the keepalive on the first call ([`Config::keepalive_interval`]),
    /// the close timeout once the connection leaves [`State::Open`] ([`Config::close_timeout`]:
    /// it bounds the close handshake and then the wait for the transport's end). Call it after
    /// every other call, and sleep until the instant it returns.
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        let open = !self.sent_close && !self.closed;
        if open {
            let (interval, _) = self.keepalive()?;
            let t = self.timers_mut();
            return Some(*t.keepalive_at.get_or_insert_with(|| later(now, interval)));
        }
        let close_timeout = self.config.close_timeout;
        let t = self.timers_mut();
        if t.expired {
            return None;
        }
        Some(
            *t.close_deadline
                .get_or_insert_with(|| later(now, close_timeout)),
        )
    }

    /// Time passed: acts on the deadlines that `now` reached. The close timeout fails a close
    /// handshake the peer never finished ([`ProtocolError::CloseTimeout`]) and, once closed,
    /// ends the wait for the transport ([`is_expired`](Self::is_expired)). The keepalive sends
    /// a ping after [`Config::keepalive_interval`] without a frame from the peer, and fails the
    /// connection with 1011 ([`ProtocolError::KeepaliveTimeout`]) if nothing arrives within
    /// [`Config::keepalive_timeout`] of it. Drain [`poll_event`](Self::poll_event) and the
    /// output after it.
    pub fn handle_timeout(&mut self, now: Instant) {
        let keepalive = self.keepalive();
        let Some(t) = self.timers.as_mut() else {
            return;
        };
        if t.close_deadline.is_some_and(|d| now >= d) {
            t.close_deadline = None;
            t.expired = true;
            if !self.closed {
                self.closed = true;
                self.events
                    .push_back(Event::Failed(ProtocolError::CloseTimeout));
            }
            return;
        }
        if self.sent_close || self.closed || t.keepalive_at.is_none_or(|at| now < at) {
            return;
        }
        let Some((interval, timeout)) = keepalive else {
            return;
        };
        let heard = std::mem::take(&mut t.heard);
        if heard {
            t.ping_outstanding = false;
            t.keepalive_at = Some(later(now, interval));
        } else if t.ping_outstanding {
            // The peer is gone: say so, and do not wait for an answer to our close.
            t.expired = true;
            self.fail(ProtocolError::KeepaliveTimeout);
        } else {
            t.ping_outstanding = true;
            t.keepalive_at = Some(later(now, timeout));
            self.write_frame(OpCode::Ping, true, Bytes::new());
        }
    }

    /// Whether there is nothing more to wait for: the close timeout passed (after the close
    /// handshake, it bounds the wait for the peer to end the transport) or the keepalive found
    /// the peer dead. Write what output the transport takes at once, then drop it.
    pub fn is_expired(&self) -> bool {
        self.timers.as_ref().is_some_and(|t| t.expired)
    }

    /// Turns on permessage-deflate as negotiated in the handshake, with `settings`' level and
    /// threshold. Call before any frame is exchanged.
    pub fn set_deflate(&mut self, negotiated: &Negotiated, settings: &Deflate) {
        let (window, own_reset, peer_reset) = match self.role {
            Role::Server => (
                negotiated.server_max_window_bits,
                negotiated.server_no_context_takeover,
                negotiated.client_no_context_takeover,
            ),
            Role::Client => (
                negotiated.client_max_window_bits,
                negotiated.client_no_context_takeover,
                negotiated.server_no_context_takeover,
            ),
        };
        self.deflate = Some(Box::new(DeflateState {
            deflater: (window >= 9).then(|| Deflater::new(settings.level, window, own_reset)),
            inflater: Inflater::new(peer_reset),
            threshold: settings.threshold,
            inflated: Vec::new(),
        }));
        self.allowed_rsv = 0b100;
    }

    /// Whether permessage-deflate is on.
    pub fn is_deflate(&self) -> bool {
        self.deflate.is_some()
    }

    /// Whether compression state is held right now (tells the idle memory cost).
    pub fn holds_deflate_state(&self) -> bool {
        self.deflate.as_ref().is_some_and(|d| {
            d.inflater.is_allocated() || d.deflater.as_ref().is_some_and(Deflater::is_allocated)
        })
    }

    /// Queues a text or binary message without compressing it, whatever was negotiated (other
    /// messages behave as with [`send`](Self::send)).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_uncompressed(&mut self, message: Message) -> Result<(), SendError> {
        if self.sent_close || self.closed {
            return Err(SendError::SendAfterClosing);
        }
        match message {
            Message::Text(text) => self.send_frames(OpCode::Text, text.into_bytes(), 0),
            Message::Binary(data) => self.send_frames(OpCode::Binary, data, 0),
            other => return self.send(other),
        }
        Ok(())
    }

    /// Replaces the source of masking keys (client role). By default each key comes from the
    /// thread-local CSPRNG (`rand::rng()`); RFC 6455 §10.3 requires unpredictable keys.
    pub fn set_mask_rng(&mut self, rng: Box<dyn RngCore + Send + Sync>) {
        self.mask_rng = Some(rng);
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        if self.closed {
            State::Closed
        } else if self.sent_close {
            State::Closing
        } else {
            State::Open
        }
    }

    /// The code and reason the application should see for the end of the connection, once
    /// closed: the peer's close code (1005 if its close had none), or 1006 if the connection
    /// ended without a close frame from the peer.
    pub fn close_status(&self) -> Option<(CloseCode, Utf8Bytes)> {
        if !self.closed {
            return None;
        }
        Some(
            match self.ending.as_ref().and_then(|e| e.peer_close.as_ref()) {
                Some(Some(frame)) => (frame.code, frame.reason.clone()),
                Some(None) => (CloseCode::NO_STATUS, Utf8Bytes::default()),
                None => (CloseCode::ABNORMAL, Utf8Bytes::default()),
            },
        )
    }

    /// Whether the close handshake completed: both close frames were exchanged and the
    /// connection did not fail. Nothing more is due from the peer, so a server may then close
    /// the transport at once instead of reading until the peer's end of stream (RFC 6455 §7.1.1:
    /// the server closes the TCP connection first).
    pub fn is_close_handshake_done(&self) -> bool {
        self.closed
            && self.sent_close
            && self
                .ending
                .as_ref()
                .is_some_and(|e| e.peer_close.is_some() && e.failure.is_none())
    }

    /// Why we failed the connection, if we did.
    pub fn failure(&self) -> Option<&ProtocolError> {
        self.ending.as_ref().and_then(|e| e.failure.as_ref())
    }

    /// How the connection ended, recorded from the first close frame or failure on.
    fn ending_mut(&mut self) -> &mut Ending {
        self.ending.get_or_insert_with(Box::default)
    }

    /// The inflate buffer, if permessage-deflate is on.
    fn inflated(&self) -> Option<&Vec<u8>> {
        self.deflate.as_ref().map(|d| &d.inflated)
    }

    /// Frees the inflate buffer.
    fn drop_inflated(&mut self) {
        if let Some(d) = self.deflate.as_mut() {
            d.inflated = Vec::new();
        }
    }

    /// The receive buffer, with room for a read appended at its end
    /// ([`Config::read_buffer_size`], or more while a large frame arrives). Read into its spare
    /// capacity; [`poll_event`](Self::poll_event) then parses frames as it is asked for them,
    /// one message at a time, so that replies to a message leave before the outcome of any later
    /// frame (a protocol error in the next frame closes the connection only after the
    /// application saw this message).
    pub fn recv_buffer(&mut self) -> &mut BytesMut {
        self.prepare_read();
        &mut self.rbuf
    }

    /// [`recv_buffer`](Self::recv_buffer)'s spare room as the next read should fill it: all
    /// of it, but while a frame larger than [`Config::read_buffer_size`] arrives, only up to
    /// 64 bytes past that frame's end, and between such frames one frame's worth and 64 bytes.
    /// Each large frame then arrives in a buffer of its own size and leaves without a copy,
    /// where a read that ran far into the next frame would make the buffer grow (and copy) for
    /// its tail; the 64 bytes make a read short when the socket holds no more, so that the
    /// I/O layer knows it is drained without another read.
    pub fn recv_room(&mut self) -> bytes::buf::Limit<&mut BytesMut> {
        let limit = self.prepare_read();
        bytes::BufMut::limit(&mut self.rbuf, limit)
    }

    /// [`Config::read_buffer_size`], at least 1.
    fn read_size(&self) -> usize {
        self.config.read_buffer_size.max(1)
    }

    /// Makes room for the next read; returns the most bytes it should take.
    fn prepare_read(&mut self) -> usize {
        let read_size = self.read_size();
        let (want, limit) = match &self.frame {
            Some(InFrame { header, .. }) => {
                // The room grows with what has arrived, so a header that claims a huge
                // payload reserves nothing before its bytes come.
                let rest = (header.payload_len as usize)
                    .saturating_sub(self.rbuf.len())
                    .min(self.rbuf.len().max(read_size));
                if header.payload_len as usize > read_size {
                    (rest + READ_SLACK, rest + READ_SLACK)
                } else {
                    (read_size, usize::MAX)
                }
            }
            None if self.large_frame > 0 => {
                let room = self.large_frame + READ_SLACK;
                (room, room)
            }
            None => (read_size, usize::MAX),
        };
        if self.rbuf.capacity() == 0 {
            self.rbuf = crate::pool::take(want);
        } else if self.rbuf.capacity() - self.rbuf.len() < want {
            self.rbuf.reserve(want);
        }
        limit.max(1)
    }

    /// Gives back the buffers that hold nothing: the receive buffer between frames (to this
    /// thread's buffer pool), the reassembly and inflate buffers between messages, and the
    /// output buffers once written. A partial frame, or output the peer has not taken yet, of a
    /// few bytes moves to a buffer of its own size. Call it when the transport has nothing to read (a read would block), so that an
    /// idle connection holds no buffer; the next read takes one again.
    pub fn release_idle_buffers(&mut self) {
        let read_size = self.read_size();
        if self.rbuf.is_empty() {
            crate::pool::give(std::mem::take(&mut self.rbuf), read_size);
        } else if self.rbuf.len() <= COMPACT_MAX && self.rbuf.capacity() >= 4 * self.rbuf.len() {
            let partial = BytesMut::from(&self.rbuf[..]);
            let mut buf = std::mem::replace(&mut self.rbuf, partial);
            buf.clear();
            crate::pool::give(buf, read_size);
        }
        if self.fragments.is_empty() && self.fragments.capacity() > 0 {
            self.fragments = Vec::new();
        }
        if self.inflated().is_some_and(Vec::is_empty) {
            self.drop_inflated();
        }
        if self.events.is_empty() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        if self.out.len == 0 {
            if self.out.queue.capacity() > 0 {
                self.out.queue = VecDeque::new();
            }
            crate::pool::give(std::mem::take(&mut self.out.tail), read_size);
        } else if self.out.tail.len() <= COMPACT_MAX
            && self.out.tail.capacity() >= 4 * self.out.tail.len()
        {
            // Output the peer has not taken yet: kept in a buffer of its size.
            let pending = BytesMut::from(&self.out.tail[..]);
            let mut buf = std::mem::replace(&mut self.out.tail, pending);
            buf.clear();
            crate::pool::give(buf, read_size);
        }
    }

    /// Bytes of buffer memory the connection holds (capacity, used or not), compression state
    /// aside.
    pub fn buffer_capacity(&self) -> usize {
        self.rbuf.capacity()
            + self.fragments.capacity()
            + self.inflated().map_or(0, Vec::capacity)
            + self.out.tail.capacity()
            + self.out.queue.iter().map(Bytes::len).sum::<usize>()
    }

    /// Processes received bytes (copies them into the receive buffer first).
    pub fn handle_data(&mut self, data: &[u8]) {
        if self.closed {
            return;
        }
        self.heard();
        self.rbuf.extend_from_slice(data);
    }

    /// The transport reached end of stream.
    pub fn handle_eof(&mut self) {
        self.process(false);
        if !self.closed {
            self.closed = true;
            if self.ending.as_ref().is_none_or(|e| e.peer_close.is_none()) {
                self.events
                    .push_back(Event::Failed(ProtocolError::ResetWithoutClosingHandshake));
            }
        }
    }

    /// The next event, if any: parses received frames until one completes a message, a
    /// close, or a failure, or the buffered bytes run out.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if self.rbuf.is_empty() {
            // Nothing to parse (a frame's header alone takes two bytes).
            self.drop_grown_buffer();
            return None;
        }
        // The common case, a message, comes back directly rather than through the queue.
        self.process(true).or_else(|| self.events.pop_front())
    }

    /// Whether received bytes wait to be parsed (poll events before reading more).
    pub fn has_buffered_input(&self) -> bool {
        !self.rbuf.is_empty() && !self.closed
    }

    /// Queues a message. Text and binary messages are split into frames of
    /// [`Config::fragment_size`] if set; a close message starts the close handshake.
    ///
    /// # Errors
    /// [`SendError::SendAfterClosing`] once a close frame was sent; [`SendError::Invalid`] for a
    /// ping or pong over 125 bytes or a close code or reason the API refuses.
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        if self.sent_close || self.closed {
            return Err(SendError::SendAfterClosing);
        }
        match message {
            Message::Text(text) => self.send_data(OpCode::Text, text.into_bytes()),
            Message::Binary(data) => self.send_data(OpCode::Binary, data),
            Message::Ping(data) => self.send_control(OpCode::Ping, data)?,
            Message::Pong(data) => self.send_control(OpCode::Pong, data)?,
            Message::Close(frame) => self.close(frame)?,
        }
        Ok(())
    }

    /// Starts the close handshake with `frame` (`None`: no status code). Does nothing if a close
    /// frame was already sent.
    ///
    /// # Errors
    /// [`SendError::Invalid`] for a code that may not be sent (1005, 1006, 1015, ...) or a reason
    /// over 123 bytes; nothing is sent.
    pub fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), SendError> {
        if let Some(f) = &frame {
            CloseFrame::new(f.code, f.reason.as_str())?;
        }
        if !self.sent_close && !self.closed {
            self.send_close_frame(frame.as_ref());
        }
        Ok(())
    }

    /// Queues a message prepared once for many connections. A server connection sends the
    /// prepared frame itself, shared, unless it must compress or fragment the message, in which
    /// case it encodes its own copy.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), SendError> {
        if self.sent_close || self.closed {
            return Err(SendError::SendAfterClosing);
        }
        let len = prepared.message.len();
        let compresses = self
            .deflate
            .as_ref()
            .is_some_and(|d| d.deflater.is_some() && len >= d.threshold);
        let fragments = self
            .config
            .fragment_size
            .is_some_and(|size| len > size.max(1));
        if self.role == Role::Server && !compresses && !fragments {
            let room = self.read_size();
            self.out.ready_tail(room);
            self.out.push_encoded(prepared.frame.clone());
            Ok(())
        } else {
            self.send(prepared.message.clone())
        }
    }

    /// Whether bytes wait to be written.
    pub fn has_transmit(&self) -> bool {
        self.out.len > 0
    }

    /// How many bytes wait to be written.
    pub fn transmit_len(&self) -> usize {
        self.out.len
    }

    /// The pending output when it is one contiguous slice (small frames coalesced, nothing
    /// shared queued before them): the I/O layer can then write it without building slices.
    pub fn transmit_contiguous(&self) -> Option<&[u8]> {
        self.out.queue.is_empty().then_some(&self.out.tail[..])
    }

    /// Fills `dst` with the pending output, in order; returns how many slices were filled.
    pub fn transmit_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for chunk in self
            .out
            .queue
            .iter()
            .map(|b| &b[..])
            .chain(std::iter::once(&self.out.tail[..]))
        {
            if n == dst.len() {
                break;
            }
            if !chunk.is_empty() {
                dst[n] = IoSlice::new(chunk);
                n += 1;
            }
        }
        n
    }

    /// Marks `n` bytes of the pending output as written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.advance(n);
        if self.out.len == 0 {
            self.pongs_unsent = 0;
            if let Some(payload) = self.timers.as_mut().and_then(|t| t.held_ping.take())
                && !self.sent_close
            {
                self.write_frame(OpCode::Pong, true, payload);
                self.pongs_unsent = 1;
            }
        }
    }

    /// Frees an empty receive buffer that a large frame grew past four reads' worth.
    fn drop_grown_buffer(&mut self) {
        if self.rbuf.capacity() > 4 * self.read_size() {
            self.rbuf = BytesMut::new();
        }
    }

    /// Parses buffered frames: until an event is ready when `one_event` (it is returned, or
    /// queued if it came from a failure), else all of them (their events queued).
    fn process(&mut self, one_event: bool) -> Option<Event> {
        while !one_event || self.events.is_empty() {
            if self.closed {
                self.rbuf.clear();
                return None;
            }
            // `skip`: header bytes still at the front of the buffer. They are dropped with the
            // payload, so that a buffer whose frames all arrived whole is cleared, not advanced
            // (it then keeps its whole capacity for the next read without a reclaim).
            let (frame, skip) = match self.frame.take() {
                Some(frame) => (frame, 0),
                None => match parse_header(
                    &self.rbuf,
                    self.role,
                    self.allowed_rsv,
                    self.config.limits.max_frame_size,
                ) {
                    Ok(None) => {
                        if self.rbuf.is_empty() {
                            self.drop_grown_buffer();
                        }
                        return None;
                    }
                    Err(e) => {
                        self.fail(e);
                        continue;
                    }
                    Ok(Some((header, len))) => {
                        self.heard();
                        let read_size = self.read_size();
                        let total = len.saturating_add(header.payload_len as usize);
                        self.large_frame = if total > read_size {
                            total.min(read_size.saturating_mul(16))
                        } else {
                            0
                        };
                        if let Err(e) = self.start_frame(&header) {
                            self.fail(e);
                            continue;
                        }
                        let frame = InFrame {
                            header,
                            processed: 0,
                        };
                        (frame, len)
                    }
                },
            };
            let InFrame {
                header,
                mut processed,
            } = frame;
            let len = header.payload_len as usize;
            let available = (self.rbuf.len() - skip).min(len);
            if available > processed {
                self.heard();
                let fresh = &mut self.rbuf[skip + processed..skip + available];
                if let Some(mask) = header.mask {
                    apply_mask(fresh, mask, processed);
                }
                if self.message == Some(OpCode::Text)
                    && !self.compressed
                    && !header.opcode.is_control()
                    && self.utf8.feed(fresh).is_err()
                {
                    self.fail(ProtocolError::InvalidUtf8);
                    continue;
                }
                processed = available;
            }
            if available < len {
                self.rbuf.advance(skip);
                self.frame = Some(InFrame { header, processed });
                return None;
            }
            let payload = if len <= COPY_MAX {
                let payload = Bytes::copy_from_slice(&self.rbuf[skip..skip + len]);
                if skip + len == self.rbuf.len() {
                    self.rbuf.clear();
                } else {
                    self.rbuf.advance(skip + len);
                }
                payload
            } else {
                self.rbuf.advance(skip);
                self.rbuf.split_to(len).freeze()
            };
            if let Some(event) = self.end_frame(&header, payload) {
                if one_event {
                    return Some(event);
                }
                self.events.push_back(event);
            }
        }
        None
    }

    /// Checks what the header alone decides against the connection's state.
    fn start_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let max = self.config.limits.max_message_size;
        let rsv1 = header.rsv & 0b100 != 0;
        if rsv1 && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            // RSV1 marks a compressed message on its first frame only (RFC 7692 §6).
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        match header.opcode {
            OpCode::Text | OpCode::Binary => {
                self.compressed = rsv1;
                if self.message.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                if header.payload_len > max as u64 {
                    return Err(ProtocolError::MessageTooBig {
                        size: header.payload_len,
                        max,
                    });
                }
                self.message = Some(header.opcode);
                self.message_size = header.payload_len;
                self.message_frames = 1;
                self.utf8 = Utf8Validator::new();
            }
            OpCode::Continuation => {
                if self.message.is_none() {
                    return Err(ProtocolError::UnexpectedContinuation);
                }
                let size = self.message_size + header.payload_len;
                if size > max as u64 {
                    return Err(ProtocolError::MessageTooBig { size, max });
                }
                let max_frames = self.config.limits.max_fragments.max(1);
                if self.message_frames >= max_frames {
                    return Err(ProtocolError::TooManyFragments { max: max_frames });
                }
                self.message_size = size;
                self.message_frames += 1;
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
        }
        Ok(())
    }

    /// Acts on a complete frame; returns the event it makes, if any (a failure is queued).
    fn end_frame(&mut self, header: &FrameHeader, payload: Bytes) -> Option<Event> {
        match header.opcode {
            OpCode::Ping => {
                // RFC 6455 §5.5.3 lets us answer only the latest of pings not yet answered:
                // past a few pongs the output has not taken, the latest ping waits for it to
                // drain, so a ping flood from a peer that does not read costs no memory.
                if !self.sent_close {
                    // (With nothing queued the pong goes out whatever the high-water mark.)
                    if self.pongs_unsent < MAX_UNSENT_PONGS
                        && (self.out.len == 0 || self.out.len < self.config.write_high_water)
                    {
                        self.write_frame(OpCode::Pong, true, payload.clone());
                        self.pongs_unsent += 1;
                    } else {
                        self.timers_mut().held_ping = Some(payload.clone());
                    }
                }
                self.config
                    .emit_control_frames
                    .then(|| Event::Message(Message::Ping(payload)))
            }
            OpCode::Pong => self
                .config
                .emit_control_frames
                .then(|| Event::Message(Message::Pong(payload))),
            OpCode::Close => match CloseFrame::parse(payload) {
                Err(e) => {
                    self.fail(e);
                    None
                }
                Ok(frame) => {
                    if !self.sent_close {
                        let reply = frame.as_ref().map(|f| CloseFrame {
                            code: f.code,
                            reason: Utf8Bytes::default(),
                        });
                        self.send_close_frame(reply.as_ref());
                    }
                    self.closed = true;
                    self.message = None;
                    self.fragments = Vec::new();
                    self.drop_inflated();
                    self.ending_mut().peer_close = Some(frame.clone());
                    Some(Event::Close(frame))
                }
            },
            OpCode::Text | OpCode::Binary | OpCode::Continuation if self.compressed => {
                self.inflate_frame(&payload, header.fin)
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if !header.fin {
                    self.append_fragment(&payload);
                    return None;
                }
                let kind = self.message.take();
                let data = if self.fragments.is_empty() {
                    payload
                } else {
                    self.append_fragment(&payload);
                    let mut joined = std::mem::take(&mut self.fragments);
                    shrink_grown(&mut joined);
                    Bytes::from(joined)
                };
                self.deliver(kind == Some(OpCode::Text), data)
            }
        }
    }

    /// A complete data message's event; a text message must end on a code point boundary
    /// (else the connection fails and the failure is queued).
    fn deliver(&mut self, text: bool, data: Bytes) -> Option<Event> {
        let message = if text {
            if self.utf8.finish().is_err() {
                self.fail(ProtocolError::InvalidUtf8);
                return None;
            }
            #[allow(
                unsafe_code,
                reason = "the bytes were validated incrementally as they arrived"
            )]
            // SAFETY: every byte of `data` went through `self.utf8` (raw frames as they were
            // unmasked, compressed ones as they were inflated) and `finish` just confirmed that
            // the message ends on a character boundary.
            unsafe {
                Message::Text(Utf8Bytes::from_utf8_unchecked(data))
            }
        } else {
            Message::Binary(data)
        };
        Some(Event::Message(message))
    }

    /// Inflates a frame of a compressed message; at FIN, returns the message's event.
    fn inflate_frame(&mut self, payload: &[u8], fin: bool) -> Option<Event> {
        let limit = self.config.limits.max_message_size;
        let deflate = self.deflate.as_mut()?;
        let start = deflate.inflated.len();
        if let Err(e) = deflate
            .inflater
            .inflate(payload, fin, &mut deflate.inflated, limit)
        {
            self.fail(e);
            return None;
        }
        let text = self.message == Some(OpCode::Text);
        if text && self.utf8.feed(&deflate.inflated[start..]).is_err() {
            self.fail(ProtocolError::InvalidUtf8);
            return None;
        }
        if !fin {
            return None;
        }
        let data = if deflate.inflated.len() <= COPY_MAX {
            // Small messages are copied out: the buffer stays for the next message, and a kept
            // message does not hold a buffer sized for growth.
            let data = Bytes::copy_from_slice(&deflate.inflated);
            deflate.inflated.clear();
            data
        } else {
            let mut inflated = std::mem::take(&mut deflate.inflated);
            shrink_grown(&mut inflated);
            Bytes::from(inflated)
        };
        self.message = None;
        self.compressed = false;
        self.deliver(text, data)
    }

    /// Appends a fragment; the buffer grows as [`grown_capacity`] says, never past the message
    /// limit.
    fn append_fragment(&mut self, payload: &[u8]) {
        let needed = self.fragments.len() + payload.len();
        if needed > self.fragments.capacity() {
            let capacity = grown_capacity(
                self.fragments.capacity(),
                needed,
                self.config.limits.max_message_size,
            );
            // Exact: `reserve` may double past what it is asked.
            self.fragments
                .reserve_exact(capacity - self.fragments.len());
        }
        self.fragments.extend_from_slice(payload);
    }

    /// Fails the connection (RFC 6455 §7.1.7): queues a close frame with the error's code unless
    /// one was sent, stops processing input, and reports the error.
    fn fail(&mut self, error: ProtocolError) {
        if !self.sent_close {
            let frame = CloseFrame {
                code: error.close_code(),
                reason: Utf8Bytes::from(truncate_reason(&error.to_string())),
            };
            self.send_close_frame(Some(&frame));
        }
        self.rbuf.clear();
        self.frame = None;
        self.message = None;
        self.fragments = Vec::new();
        self.compressed = false;
        self.drop_inflated();
        self.closed = true;
        self.events.push_back(Event::Failed(error.clone()));
        self.ending_mut().failure = Some(error);
    }

    fn send_close_frame(&mut self, frame: Option<&CloseFrame>) {
        let payload = frame.map_or_else(Bytes::new, CloseFrame::to_payload);
        self.write_frame(OpCode::Close, true, payload);
        self.sent_close = true;
    }

    fn send_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), ProtocolError> {
        if payload.len() > 125 {
            return Err(ProtocolError::ControlPayloadTooBig(payload.len()));
        }
        self.write_frame(opcode, true, payload);
        Ok(())
    }

    fn send_data(&mut self, opcode: OpCode, payload: Bytes) {
        if let Some(deflate) = self.deflate.as_mut()
            && payload.len() >= deflate.threshold
            && let Some(deflater) = deflate.deflater.as_mut()
        {
            let compressed = deflater.compress(&payload);
            self.send_frames(opcode, compressed, 0b100);
        } else {
            self.send_frames(opcode, payload, 0);
        }
    }

    /// Sends a data message's payload as one frame or fragments; `rsv` goes on the first.
    fn send_frames(&mut self, opcode: OpCode, payload: Bytes, rsv: u8) {
        match self.config.fragment_size.map(|size| size.max(1)) {
            Some(size) if payload.len() > size => {
                let (mut opcode, mut rsv) = (opcode, rsv);
                let mut start = 0;
                while start < payload.len() {
                    let end = (start + size).min(payload.len());
                    self.write_frame_rsv(
                        opcode,
                        end == payload.len(),
                        rsv,
                        payload.slice(start..end),
                    );
                    (opcode, rsv) = (OpCode::Continuation, 0);
                    start = end;
                }
            }
            _ => self.write_frame_rsv(opcode, true, rsv, payload),
        }
    }

    fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: Bytes) {
        self.write_frame_rsv(opcode, fin, 0, payload);
    }

    fn write_frame_rsv(&mut self, opcode: OpCode, fin: bool, rsv: u8, payload: Bytes) {
        let mask = match self.role {
            Role::Server => None,
            Role::Client => {
                let mut key = [0u8; 4];
                match &mut self.mask_rng {
                    Some(rng) => rng.fill_bytes(&mut key),
                    None => rand::rng().fill_bytes(&mut key),
                }
                Some(key)
            }
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        // A control frame alone (a pong, a close) needs no read-sized buffer.
        let room = if opcode.is_control() {
            crate::frame::MAX_HEADER_LEN + 125
        } else {
            self.read_size()
        };
        self.out.ready_tail(room);
        self.out.push_frame(&header, payload);
    }
}

/// A text or binary message encoded once, as a server sends it (one unmasked frame), for
/// [`Connection::send_prepared`] on many connections: a broadcast builds its frame once.
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    message: Message,
    frame: Bytes,
}

impl PreparedMessage {
    /// Encodes `message`, a text or binary message.
    ///
    /// # Errors
    /// [`SendError::NotPreparable`] for a ping, pong or close: a close must go through each
    /// connection's close handshake (so nothing follows it and the peer's answer is expected),
    /// and control frames are per connection.
    pub fn new(message: Message) -> Result<Self, SendError> {
        let (opcode, payload) = match &message {
            Message::Text(t) => (OpCode::Text, t.clone().into_bytes()),
            Message::Binary(b) => (OpCode::Binary, b.clone()),
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {
                return Err(SendError::NotPreparable);
            }
        };
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut frame = BytesMut::with_capacity(crate::frame::MAX_HEADER_LEN + payload.len());
        encode_header(&header, &mut frame);
        frame.extend_from_slice(&payload);
        Ok(Self {
            message,
            frame: frame.freeze(),
        })
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The encoded frame.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }
}

/// `now + after`, or far in the future when that overflows.
fn later(now: Instant, after: std::time::Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 86_400))
}

/// A close reason cut to at most 123 bytes on a character boundary.
fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(crate::close::MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// Encoded frames waiting to be written: shared payloads in `queue`, then small frames
/// coalesced in `tail`.
#[derive(Default)]
struct Outgoing {
    queue: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

impl Outgoing {
    /// Makes sure the tail has memory: a pooled buffer, or a new one with `room` bytes. A tail
    /// grown from nothing would be reallocated (and copied) several times per burst of replies.
    fn ready_tail(&mut self, room: usize) {
        if self.tail.capacity() == 0 {
            self.tail = crate::pool::take(room);
        }
    }

    fn push_frame(&mut self, header: &FrameHeader, payload: Bytes) {
        self.len += payload.len();
        let before = self.tail.len();
        encode_header(header, &mut self.tail);
        self.len += self.tail.len() - before;
        if payload.len() <= COALESCE_MAX {
            let start = self.tail.len();
            self.tail.extend_from_slice(&payload);
            if let Some(mask) = header.mask {
                apply_mask(&mut self.tail[start..], mask, 0);
            }
            return;
        }
        if !self.tail.is_empty() {
            self.queue.push_back(self.tail.split().freeze());
        }
        let payload = match header.mask {
            None => payload,
            Some(mask) => {
                let mut owned = payload
                    .try_into_mut()
                    .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
                apply_mask(&mut owned, mask, 0);
                owned.freeze()
            }
        };
        self.queue.push_back(payload);
    }

    /// Queues an already encoded frame, shared rather than copied when large.
    fn push_encoded(&mut self, frame: Bytes) {
        self.len += frame.len();
        if frame.len() <= COALESCE_MAX {
            self.tail.extend_from_slice(&frame);
            return;
        }
        if !self.tail.is_empty() {
            self.queue.push_back(self.tail.split().freeze());
        }
        self.queue.push_back(frame);
    }

    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            match self.queue.front_mut() {
                Some(front) if front.len() <= n => {
                    n -= front.len();
                    self.queue.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    return;
                }
                None if n == self.tail.len() => {
                    // All written: cleared, not advanced, so the buffer keeps its capacity.
                    self.tail.clear();
                    return;
                }
                None => {
                    self.tail.advance(n);
                    return;
                }
            }
        }
        if self.len == 0 {
            self.tail.clear();
        }
    }
}
