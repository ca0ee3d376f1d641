//! Time as an input: the close timeout and the keepalive (RFC 6455 §7.1.1, §5.5.2).

use std::time::Instant;

use bytes::Bytes;

use super::{Connection, Event, Life};
use crate::error::Failure;
use crate::frame::OpCode;

/// The connection's clock-driven state: the close timeout and the keepalive. Time comes in as
/// arguments; nothing here reads a clock.
#[derive(Debug, Default)]
pub(super) struct Timers {
    /// When the close handshake gives up, or, once closed, the wait for the transport's end.
    pub(super) close_deadline: Option<Instant>,
    /// The keepalive's next check.
    pub(super) keepalive_at: Option<Instant>,
    /// A keepalive ping is out, sent at the last check.
    pub(super) ping_outstanding: bool,
    /// Frames arrived since the last keepalive check.
    pub(super) heard: bool,
    /// The latest ping not answered yet because earlier pongs wait in the output.
    pub(super) held_ping: Option<Bytes>,
    /// The payload of a ping whose pong is awaited ([`Connection::ping_awaiting`]).
    pub(super) awaited_pong: Option<Bytes>,
    /// The awaited pong arrived and was not yet taken.
    pub(super) pong_answered: bool,
}

/// `now + after`, or far in the future when that overflows.
pub(super) fn later(now: Instant, after: std::time::Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 86_400))
}

impl Connection {
    pub(super) fn timers_mut(&mut self) -> &mut Timers {
        self.timers.get_or_insert_with(Box::default)
    }

    /// Notes that the peer sent something (the keepalive's sign of life).
    #[inline]
    pub(super) fn heard(&mut self) {
        if let Some(t) = self.timers.as_mut() {
            t.heard = true;
        }
    }

    /// The keepalive's interval and timeout, if it is on: a zero interval is off, a zero or
    /// missing timeout is the interval.
    pub(super) fn keepalive(&self) -> Option<(std::time::Duration, std::time::Duration)> {
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
        self.life != Life::Open || self.keepalive().is_some()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due, if ever. `now` starts the
    /// timers that start now: the keepalive on the first call ([`Config::keepalive_interval`](crate::Config::keepalive_interval)),
    /// the close timeout once the connection leaves [`State::Open`](crate::State::Open) ([`Config::close_timeout`](crate::Config::close_timeout):
    /// it bounds the close handshake and then the wait for the transport's end). Call it after
    /// every other call, and sleep until the instant it returns.
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        match self.life {
            Life::Open => {
                let (interval, _) = self.keepalive()?;
                let t = self.timers_mut();
                return Some(*t.keepalive_at.get_or_insert_with(|| later(now, interval)));
            }
            Life::Expired | Life::Finished => return None,
            Life::Closing | Life::Closed | Life::Draining => {}
        }
        let close_timeout = self.config.close_timeout;
        let t = self.timers_mut();
        Some(
            *t.close_deadline
                .get_or_insert_with(|| later(now, close_timeout)),
        )
    }

    /// Time passed: acts on the deadlines that `now` reached. The close timeout fails a close
    /// handshake the peer never finished ([`Failure::CloseTimeout`]) and, once closed,
    /// ends the wait for the transport (the [lifecycle](Self::lifecycle) moves to
    /// [`Shutdown`](crate::Lifecycle::Shutdown), or from draining to finished). The keepalive sends
    /// a ping after [`Config::keepalive_interval`](crate::Config::keepalive_interval) without a frame from the peer, and fails the
    /// connection with 1011 ([`Failure::KeepaliveTimeout`]) if nothing arrives within
    /// [`Config::keepalive_timeout`](crate::Config::keepalive_timeout) of it. Drain [`poll_event`](Self::poll_event) and the
    /// output after it.
    pub fn handle_timeout(&mut self, now: Instant) {
        let keepalive = self.keepalive();
        let Some(t) = self.timers.as_mut() else {
            return;
        };
        if t.close_deadline.is_some_and(|d| now >= d) {
            t.close_deadline = None;
            match self.life {
                Life::Closing => {
                    self.events.push_back(Event::Failed(Failure::CloseTimeout));
                    self.life = Life::Expired;
                }
                Life::Closed => self.life = Life::Expired,
                Life::Draining => self.life = Life::Finished,
                Life::Open | Life::Expired | Life::Finished => {}
            }
            return;
        }
        if self.life != Life::Open || t.keepalive_at.is_none_or(|at| now < at) {
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
            self.fail(Failure::KeepaliveTimeout);
            self.life = Life::Expired;
        } else {
            t.ping_outstanding = true;
            t.keepalive_at = Some(later(now, timeout));
            self.write_frame(OpCode::Ping, true, Bytes::new());
        }
    }
}
