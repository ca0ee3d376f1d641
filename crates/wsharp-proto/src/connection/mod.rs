//! One WebSocket connection's protocol state, after the opening handshake.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use rand::RngCore;

use crate::close::CloseFrame;
use crate::config::{Config, Role};
use crate::error::Failure;
use crate::frame::OpCode;
use crate::message::Message;
use crate::utf8::Utf8Validator;

mod buffers;
mod close_handshake;
mod compression;
mod lifecycle;
mod parts;
mod prepared;
mod receive;
mod timers;
mod transmit;

use close_handshake::Ending;
use compression::DeflateState;
use lifecycle::Life;
pub use lifecycle::Lifecycle;
use parts::Sending;
pub use prepared::PreparedMessage;
use receive::InFrame;
use timers::Timers;
use transmit::Outgoing;

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
    /// A part of a data message, when [`Connection::set_receive_parts`] is on.
    Part(crate::message::Part),
    /// The peer's close frame (`None` if it carried no status code). A reply has been queued if
    /// the peer started the close.
    Close(Option<CloseFrame>),
    /// The connection ended without a close handshake: we failed it for a protocol error (a
    /// close frame with its code has been queued), the peer vanished, or a timeout passed.
    Failed(Failure),
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
/// 5. The connection's end: obey [`lifecycle`](Self::lifecycle), which says when to stop
///    reading, when to shut the write side down (then call
///    [`handle_shutdown`](Self::handle_shutdown)) and when the connection is
///    [finished](Lifecycle::Finished). A transport that fails calls [`abort`](Self::abort).
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
    /// Where the connection is in its life.
    life: Life,
    /// How the connection ended, once it has (boxed: an open connection holds a pointer).
    ending: Option<Box<Ending>>,
    mask_rng: Option<Box<dyn RngCore + Send + Sync>>,
    deflate: Option<Box<DeflateState>>,
    /// Whether the message being received is compressed (RSV1 on its first frame).
    compressed: bool,
    /// Whether data messages starting now are delivered in parts.
    parts_wanted: bool,
    /// Whether the message being received is delivered in parts.
    in_parts: bool,
    /// The message being sent in parts, if one is open.
    sending: Option<Box<Sending>>,
    /// The size of the last frame received (header included) if it exceeded the read size, at
    /// most 16 times that: the room offered between frames.
    large_frame: usize,
    /// Pongs queued since the output last drained.
    pongs_unsent: u8,
    /// Deadlines and what they wait for; allocated once a timer is armed or a ping is held.
    timers: Option<Box<Timers>>,
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
            life: Life::Open,
            ending: None,
            mask_rng: None,
            deflate: None,
            compressed: false,
            parts_wanted: false,
            in_parts: false,
            sending: None,
            large_frame: 0,
            pongs_unsent: 0,
            timers: None,
        }
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
        match self.life {
            Life::Open => State::Open,
            Life::Closing => State::Closing,
            _ => State::Closed,
        }
    }
}
