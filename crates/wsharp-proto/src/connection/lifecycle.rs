//! The connection's life as one state, and what it asks of the transport in each (RFC 6455
//! §7.1.1: the close handshake, then the TCP close, the server's first).
//!
//! ```text
//!  Open ──close()──► Closing ──peer's close──┐
//!   │                  │                     ▼
//!   ├──peer's close, failure, EOF───────► Flushing ──output written──► Shutdown
//!   │                  │                     │                           │ handle_shutdown()
//!   │                  └──close timeout──────┴──close timeout──► Shutdown ┤
//!   └──keepalive verdict (1011)──────────────────────────────► Shutdown   ▼
//!                                    Draining ◄── (client, or no clean handshake)
//!                                       │ EOF, read error, close timeout
//!                                       ▼
//!                                    Finished ◄── (server after a clean handshake, EOF seen,
//!                                                  or the timeout expired)
//! ```

use super::Connection;

/// The connection's life, inside the core. The public view is [`Lifecycle`] (what the
/// transport must do) and [`State`](super::State) (the RFC's three states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Life {
    Open,
    /// Our close frame is queued; the peer's has not come.
    Closing,
    /// No more frames: the close handshake finished, the connection failed or the peer's
    /// stream ended. What is queued still goes out.
    Closed,
    /// Nothing more is waited for (the close timeout passed, or the keepalive found the peer
    /// dead): the write side is to be shut at once.
    Expired,
    /// Our write side is shut; the peer's end of stream is awaited.
    Draining,
    /// Over: the transport can be dropped.
    Finished,
}

/// What the connection asks of its transport now. A driver matches on
/// [`Connection::lifecycle`] after every call and obeys; it never decides when to half-close or
/// to stop by itself. Exhaustive on purpose: a new state must reach every driver's `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Messages flow both ways: read, and write what is queued.
    Open,
    /// We sent a close frame and wait for the peer's: keep reading (messages are still
    /// delivered) and writing. The close timeout runs.
    Closing,
    /// No more frames come or go, but output is queued (a close frame, usually): write it
    /// out, and read nothing. The close timeout bounds the wait.
    Flushing,
    /// Write what the transport takes without waiting, shut its write side down (a FIN), then
    /// call [`Connection::handle_shutdown`]. Anything still queued after that is dropped.
    Shutdown,
    /// Our write side is shut: read until the peer's end of stream (what arrives is
    /// discarded) and report it with [`Connection::handle_eof`]. The close timeout bounds it.
    Draining,
    /// The connection is over: drop the transport.
    Finished,
}

impl Connection {
    /// What the transport must do now; see [`Lifecycle`] for each state's duties.
    #[inline]
    pub fn lifecycle(&self) -> Lifecycle {
        match self.life {
            Life::Open => Lifecycle::Open,
            Life::Closing => Lifecycle::Closing,
            Life::Closed if self.has_transmit() => Lifecycle::Flushing,
            Life::Closed | Life::Expired => Lifecycle::Shutdown,
            Life::Draining => Lifecycle::Draining,
            Life::Finished => Lifecycle::Finished,
        }
    }

    /// Whether the connection is over ([`Lifecycle::Finished`]).
    pub fn is_finished(&self) -> bool {
        self.life == Life::Finished
    }

    /// Whether the transport should be read now: in the open and closing states while the
    /// output is under [`Config::write_high_water`](crate::Config::write_high_water) (a peer
    /// that does not read what it is sent is not read from either: backpressure), and while
    /// draining. Write what is queued before asking.
    #[inline]
    pub fn wants_read(&self) -> bool {
        match self.life {
            Life::Open | Life::Closing => self.out.len < self.config.write_high_water,
            Life::Draining => true,
            Life::Closed | Life::Expired | Life::Finished => false,
        }
    }

    /// The transport's write side was shut down, as [`Lifecycle::Shutdown`] asked (or it could
    /// not be, the transport being gone). What is still queued is dropped. A server whose close
    /// handshake completed is then finished: nothing more is due from the client (RFC 6455
    /// §7.1.1 has the server close TCP first); otherwise the peer's end of stream is awaited,
    /// so that unread input never turns our FIN into a reset that destroys the close frame in
    /// flight.
    pub fn handle_shutdown(&mut self) {
        if !matches!(self.life, Life::Closed | Life::Expired) {
            return;
        }
        self.out.discard();
        let ending = self.ending.as_deref();
        let eof = ending.is_some_and(|e| e.eof);
        self.life = if self.life == Life::Expired
            || eof
            || (self.role == crate::Role::Server && self.is_close_handshake_done())
        {
            Life::Finished
        } else {
            Life::Draining
        };
    }

    /// The transport failed (a read or write error): the connection is over at once, with
    /// nothing more written or read. Its close status is 1006 unless the peer's close had
    /// arrived. No event is queued: the driver reports the transport's error itself.
    pub fn abort(&mut self) {
        if self.life == Life::Finished {
            return;
        }
        self.rbuf.clear();
        self.frame = None;
        self.out.discard();
        self.events.clear();
        self.ending_mut();
        self.life = Life::Finished;
    }

    /// Moves to `Closed` (no more frames) unless already past it.
    pub(super) fn set_closed(&mut self) {
        if matches!(self.life, Life::Open | Life::Closing) {
            self.life = Life::Closed;
        }
    }

    /// Whether no more frames may be sent: a close frame was queued or the connection ended.
    #[inline]
    pub(super) fn close_sent_or_closed(&self) -> bool {
        self.life != Life::Open
    }

    /// Whether received frames are still processed.
    #[inline]
    pub(super) fn is_receiving(&self) -> bool {
        matches!(self.life, Life::Open | Life::Closing)
    }
}
