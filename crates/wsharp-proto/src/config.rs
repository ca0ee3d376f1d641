//! Roles, limits and per-connection settings. Plain data with documented defaults.

use std::time::Duration;

/// Which end of the connection this endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that opened the connection: masks what it sends.
    Client,
    /// The end that accepted it: requires masked frames.
    Server,
}

/// Size limits. Every one is checked before memory is allocated for what it bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest frame payload accepted. Default 16 MiB (as tungstenite), enough for Autobahn's
    /// 16 MiB single frames. Over it: close 1009.
    pub max_frame_size: usize,
    /// Largest message accepted, summed over its fragments (and, with compression, counted after
    /// inflating). Default 64 MiB. Over it: close 1009.
    pub max_message_size: usize,
    /// Largest opening handshake head (request or response line and headers). Default 16 KiB.
    /// Over it: 431 (server) or an error (client).
    pub max_handshake_size: usize,
    /// Most header lines in a handshake. Default 100. Over it: 431 or an error.
    pub max_headers: usize,
    /// Most frames one data message may arrive in, empty ones included. Default 131 072:
    /// twice what Autobahn's largest case sends (4 MiB in 64-byte fragments) and what
    /// websocket-sharp needs for 64 MiB in its 1016-byte fragments. Over it: close 1009. It
    /// bounds the work a peer can cause with a stream of tiny fragments.
    pub max_fragments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_handshake_size: 16 << 10,
            max_headers: 100,
            max_fragments: 1 << 17,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`Limits::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Limits::max_handshake_size`].
    pub fn max_handshake_size(mut self, bytes: usize) -> Self {
        self.max_handshake_size = bytes;
        self
    }

    /// Sets [`Limits::max_headers`].
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Sets [`Limits::max_fragments`] (`0` is treated as `1`: a message has at least one frame).
    pub fn max_fragments(mut self, count: usize) -> Self {
        self.max_fragments = count;
        self
    }
}

/// Settings of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Size limits.
    pub limits: Limits,
    /// Split outgoing data messages into frames of at most this many payload bytes. Default
    /// `None`: one frame per message. (websocket-sharp fragments at 1016 bytes.) `Some(0)` is
    /// treated as `Some(1)`.
    pub fragment_size: Option<usize>,
    /// Hand received pings and pongs to the application (websocket-sharp's `EmitOnPing`).
    /// Pings are answered either way. Default `false`.
    pub emit_control_frames: bool,
    /// How long to wait for the peer's close frame (and, as a client, for the server to close
    /// the TCP connection) after ours. Default 5 s. Kept by the connection
    /// ([`Connection::poll_timeout`](crate::Connection::poll_timeout)).
    pub close_timeout: Duration,
    /// Keepalive: after this long without a frame from the peer, send it a ping. Default
    /// `None` (off; a zero interval is off too). Kept by the connection, in every role and I/O
    /// layer.
    pub keepalive_interval: Option<Duration>,
    /// Keepalive: how long after its ping the peer may stay silent before the connection fails
    /// with 1011 (keepalive timeout). Default `None` (and zero): as long as the interval. So a
    /// dead peer is found within interval + timeout.
    pub keepalive_timeout: Option<Duration>,
    /// How long the whole opening handshake may take. Default 10 s. Enforced by the I/O layer.
    pub handshake_timeout: Duration,
    /// Outgoing bytes buffered before `send` waits for the socket to drain. Default 1 MiB.
    pub write_high_water: usize,
    /// Room offered to each read from the transport (more while a large frame arrives).
    /// Default 64 KiB: one read takes what a burst of pipelined frames brings. Buffers are held
    /// only while bytes are in them and are reused through a per-thread pool.
    pub read_buffer_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            fragment_size: None,
            emit_control_frames: false,
            close_timeout: Duration::from_secs(5),
            keepalive_interval: None,
            keepalive_timeout: None,
            handshake_timeout: Duration::from_secs(10),
            write_high_water: 1 << 20,
            read_buffer_size: 64 << 10,
        }
    }
}

impl Config {
    /// Sets [`Config::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`Config::fragment_size`]; `0` is treated as `1`.
    pub fn fragment_size(mut self, bytes: Option<usize>) -> Self {
        self.fragment_size = bytes.map(|b| b.max(1));
        self
    }

    /// Sets [`Config::emit_control_frames`].
    pub fn emit_control_frames(mut self, emit: bool) -> Self {
        self.emit_control_frames = emit;
        self
    }

    /// Sets [`Config::close_timeout`].
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`Config::keepalive_interval`].
    pub fn keepalive_interval(mut self, interval: Option<Duration>) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// Sets [`Config::keepalive_timeout`].
    pub fn keepalive_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// Sets [`Config::handshake_timeout`].
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`Config::write_high_water`].
    pub fn write_high_water(mut self, bytes: usize) -> Self {
        self.write_high_water = bytes;
        self
    }

    /// Sets [`Config::read_buffer_size`]; `0` is treated as `1`.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(1);
        self
    }
}
