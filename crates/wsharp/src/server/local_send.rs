//! Sends from a session's own callbacks, queued on its connection without a channel.
//!
//! A session's callbacks run in the task that reads its socket. While that task polls a
//! callback, it points this thread at the session; [`Session::send`](super::Session::send) on
//! that same session then puts the message in an outbox that the task moves onto the
//! connection as soon as the poll returns: no queue, no wakeup, no second task. A send from
//! anywhere else (another task, another session) takes the session's bounded channel.

use std::cell::{Cell, RefCell};
use std::task::Poll;

use super::session::{Command, SessionInner};

thread_local! {
    /// The session whose callback this thread is polling, if any (compared, never read).
    static CURRENT: Cell<*const SessionInner> = const { Cell::new(std::ptr::null()) };
    static OUTBOX: RefCell<Outbox> = const { RefCell::new(Outbox::new()) };
}

/// What a callback sent during one poll.
pub(crate) struct Outbox {
    pub(crate) commands: Vec<Command>,
    /// Bytes queued in this poll.
    bytes: usize,
    /// Bytes the connection's output can still take before its high-water mark.
    room: usize,
    /// A send found no room and waits: poll the callback again once the output has drained.
    pub(crate) blocked: bool,
}

impl Outbox {
    pub(crate) const fn new() -> Self {
        Self {
            commands: Vec::new(),
            bytes: 0,
            room: 0,
            blocked: false,
        }
    }
}

/// Polls a callback with `session` current on this thread; what it sent is swapped into
/// `outbox` (whose own vector, emptied, is reused).
pub(crate) fn enter<T>(
    session: &SessionInner,
    room: usize,
    outbox: &mut Outbox,
    poll: impl FnOnce() -> T,
) -> T {
    let previous = CURRENT.replace(session);
    OUTBOX.with_borrow_mut(|o| {
        std::mem::swap(&mut o.commands, &mut outbox.commands);
        o.bytes = 0;
        o.room = room;
        o.blocked = false;
    });
    let result = poll();
    CURRENT.set(previous);
    OUTBOX.with_borrow_mut(|o| {
        std::mem::swap(&mut o.commands, &mut outbox.commands);
        outbox.blocked = o.blocked;
    });
    result
}

/// Whether this thread is polling `session`'s callback.
pub(crate) fn is_current(session: &SessionInner) -> bool {
    std::ptr::eq(CURRENT.get(), session)
}

/// Queues `command` in the outbox if the connection's output has room (the first send of a
/// poll always has some when the output is under its mark). `Pending` leaves it in `slot`:
/// the session task polls the callback again once the output has drained.
pub(crate) fn offer(slot: &mut Option<Command>) -> Poll<()> {
    OUTBOX.with_borrow_mut(|o| {
        if o.bytes >= o.room {
            o.blocked = true;
            return Poll::Pending;
        }
        let command = slot.take().expect("offered once");
        o.bytes += command.len();
        o.commands.push(command);
        Poll::Ready(())
    })
}
