//! Sends from a session's own callbacks, queued on its connection without a channel.
//!
//! A session's callbacks run in the task that reads its socket. While that task polls a
//! callback, it points this thread at the session; [`Session::send`](super::Session::send) on
//! that same session then puts the message in an outbox that the task moves onto the
//! connection as soon as the poll returns: no queue, no wakeup, no second task. A send from
//! anywhere else (another task, another session) takes the session's bounded channel.

use std::cell::RefCell;
use std::task::Poll;

use super::session::{Command, SessionInner};

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local::new()) };
}

/// The callback this thread is polling, and what it sent in this poll.
struct Local {
    /// The session whose callback is being polled (compared, never read); null outside.
    current: *const SessionInner,
    /// The first message sent in this poll (the usual one), then the others.
    first: Option<Command>,
    more: Vec<Command>,
    /// Bytes queued in this poll.
    bytes: usize,
    /// Bytes the connection's output can still take before its high-water mark.
    room: usize,
    /// A send found no room and waits.
    blocked: bool,
}

impl Local {
    const fn new() -> Self {
        Self {
            current: std::ptr::null(),
            first: None,
            more: Vec::new(),
            bytes: 0,
            room: 0,
            blocked: false,
        }
    }
}

/// Polls a callback with `session` current on this thread, then hands each message it sent
/// to `sent`, in order. Returns the poll's result and whether a send waits for room (poll the
/// callback again once the output has drained).
pub(crate) fn enter<T>(
    session: &SessionInner,
    room: usize,
    poll: impl FnOnce() -> T,
    mut sent: impl FnMut(Command),
) -> (T, bool) {
    let previous = LOCAL.with_borrow_mut(|l| {
        l.bytes = 0;
        l.room = room;
        l.blocked = false;
        std::mem::replace(&mut l.current, session)
    });
    let result = poll();
    let blocked = LOCAL.with_borrow_mut(|l| {
        l.current = previous;
        if let Some(command) = l.first.take() {
            sent(command);
            if !l.more.is_empty() {
                l.more.drain(..).for_each(&mut sent);
            }
        }
        l.blocked
    });
    (result, blocked)
}

/// Queues `slot`'s command in the outbox if this thread is polling `session`'s callback:
/// `Ready(true)` once queued; `Pending` while the connection's output has no room (the first
/// send of a poll always has some when the output is under its mark); `Ready(false)` when the
/// send must take the channel instead.
pub(crate) fn offer(session: &SessionInner, slot: &mut Option<Command>) -> Poll<bool> {
    LOCAL.with_borrow_mut(|l| {
        if !std::ptr::eq(l.current, session) {
            return Poll::Ready(false);
        }
        if l.bytes >= l.room {
            l.blocked = true;
            return Poll::Pending;
        }
        let command = slot.take().expect("offered once");
        l.bytes += command.len();
        if l.first.is_none() {
            l.first = Some(command);
        } else {
            l.more.push(command);
        }
        Poll::Ready(true)
    })
}
