//! The session task: one task per session drives its connection and runs its callbacks.
//!
//! The task reads a message, runs the behavior's callback on it, and moves what the callback
//! sent straight onto the connection ([`local_send`](super::local_send)), so an echo costs
//! no more than the raw [`WebSocket`] loop: no second task, no channel, no wakeup. While a
//! callback waits on something else, the connection goes on: output is written, pings are
//! answered and the timers run, and messages that arrive meanwhile wait in a bounded queue
//! ([`ServiceOptions::receive_queue`](super::ServiceOptions::receive_queue)); when it is
//! full, the socket is not read. Sends from other tasks arrive through the session's channel,
//! taken while the output is under its high-water mark.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};
use wsharp_proto::{CloseCode, CloseFrame, CloseStatus, Message};

use super::behavior::Behavior;
use super::local_send;
use super::outbound_stream::OutboundStream;
use super::service::BoxIo;
use super::session::{Command, Session, SessionInner};
use crate::error::Error;
use crate::socket::WebSocket;

/// Messages handled between two looks at the session's channel, so that sends from other
/// tasks are not starved by a peer that keeps the socket readable.
const COMMANDS_EVERY: u32 = 64;

/// What a callback is called with.
enum HandlerEvent {
    Message(Message),
    Error(Error),
}

/// How a callback ended.
#[derive(PartialEq, Eq)]
enum Outcome {
    Done,
    Panicked,
    /// The session ended and the callback had not returned within the close timeout.
    Abandoned,
}

/// Sends in progress that outlive their command: a streamed message, and messages whose
/// senders wait to learn they are written.
#[derive(Default)]
struct InFlight {
    stream: Option<Box<OutboundStream>>,
    /// Commands that came after the stream, for when it ends (only those sent in the same
    /// poll as the stream: later ones wait for room, which a stream leaves none of).
    deferred: VecDeque<Command>,
    /// Where each tracked message ends in the connection's output (its
    /// [`transmitted`](wsharp_proto::Connection::transmitted) count once written), in order.
    tracked: VecDeque<(u64, oneshot::Sender<Result<(), Error>>)>,
}

impl InFlight {
    /// Tells the senders of the messages now written.
    fn settle(&mut self, ws: &WebSocket<BoxIo>) {
        let written = ws.connection().transmitted();
        while self.tracked.front().is_some_and(|(end, _)| *end <= written) {
            if let Some((_, done)) = self.tracked.pop_front() {
                let _ = done.send(Ok(()));
            }
        }
    }
}

/// Queues a command's message; a refusal (after a close) is only logged (a tracked or
/// streamed message's sender is told).
fn queue(ws: &mut WebSocket<BoxIo>, in_flight: &mut InFlight, command: Command) {
    if in_flight.stream.is_some() {
        in_flight.deferred.push_back(command);
        return;
    }
    let result = match command {
        Command::Send(m) => ws.queue(m),
        Command::Prepared(p) => ws.queue_prepared(&p),
        Command::Tracked(m, done) => match ws.queue(m) {
            Ok(()) => {
                let conn = ws.connection();
                let end = conn.transmitted() + conn.transmit_len() as u64;
                in_flight.tracked.push_back((end, done));
                Ok(())
            }
            Err(e) => {
                let _ = done.send(Err(e));
                return;
            }
        },
        Command::Stream(stream) => {
            in_flight.stream = Some(stream);
            return;
        }
    };
    if let Err(e) = result {
        tracing::trace!("send skipped: {e}");
    }
}

/// The connection side of the session task.
struct Driver {
    ws: WebSocket<BoxIo>,
    inner: Arc<SessionInner>,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    /// Messages that arrived while a callback ran.
    pending: VecDeque<HandlerEvent>,
    receive_queue: usize,
    emit_on_ping: bool,
    high_water: usize,
    ended: bool,
    since_commands: u32,
    /// Messages arrived since the session's activity time was last noted.
    heard: bool,
    in_flight: InFlight,
}

impl Driver {
    fn queue(&mut self, command: Command) {
        queue(&mut self.ws, &mut self.in_flight, command);
    }

    fn note_activity(&mut self) {
        if std::mem::take(&mut self.heard) {
            self.inner.touch();
        }
    }

    /// Takes a forced close (`Session::close`, a stop, a sweep): what was queued before it
    /// leaves first, then the close frame; the close handshake runs in the driver.
    fn take_forced_close(&mut self) {
        if !self.inner.forced.load(Ordering::Relaxed)
            || !self.inner.forced.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let frame = self.inner.force_code.lock().expect("not poisoned").take();
        while let Ok(command) = self.commands.try_recv() {
            self.queue(command);
        }
        if let Err(e) = self.ws.queue_close(frame) {
            tracing::trace!("close skipped: {e}");
        }
    }

    /// Takes commands from other tasks while the output is under its mark (while a message
    /// is streamed, its parts instead). Returns whether any was queued.
    fn poll_commands(&mut self, cx: &mut Context<'_>) -> bool {
        self.in_flight.settle(&self.ws);
        let mut queued = false;
        while self.ws.connection().transmit_len() < self.high_water {
            if let Some(stream) = self.in_flight.stream.as_mut() {
                match stream.poll_part(&mut self.ws, cx) {
                    Poll::Ready(finished) => {
                        if finished {
                            self.in_flight.stream = None;
                            // What was sent after the stream, in order, up to the next stream.
                            while self.in_flight.stream.is_none()
                                && let Some(command) = self.in_flight.deferred.pop_front()
                            {
                                queue(&mut self.ws, &mut self.in_flight, command);
                            }
                        }
                        queued = true;
                        continue;
                    }
                    Poll::Pending => break,
                }
            }
            if !self.commands_open {
                break;
            }
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(command)) => {
                    self.queue(command);
                    queued = true;
                }
                Poll::Ready(None) => self.commands_open = false,
                Poll::Pending => break,
            }
        }
        queued
    }

    /// Drives the connection; with `receive`, until a message for the behavior arrives.
    /// `Ready(None)`: the connection is over.
    fn poll_io(&mut self, cx: &mut Context<'_>, receive: bool) -> Poll<Option<HandlerEvent>> {
        loop {
            self.take_forced_close();
            match self.ws.poll_drive(cx, receive) {
                Poll::Ready(Some(message)) => {
                    self.since_commands += 1;
                    if self.since_commands >= COMMANDS_EVERY {
                        self.since_commands = 0;
                        self.poll_commands(cx);
                    }
                    // The activity time is noted once per batch of reads, not per message.
                    self.heard = true;
                    let event = match message {
                        Ok(Message::Pong(payload)) if !self.emit_on_ping => {
                            self.inner.pong(&payload);
                            continue;
                        }
                        Ok(Message::Ping(_)) if !self.emit_on_ping => continue,
                        Ok(Message::Pong(payload)) => {
                            self.inner.pong(&payload);
                            HandlerEvent::Message(Message::Pong(payload))
                        }
                        Ok(Message::Close(_)) => continue,
                        Ok(m) => HandlerEvent::Message(m),
                        Err(e) => HandlerEvent::Error(e),
                    };
                    return Poll::Ready(Some(event));
                }
                Poll::Ready(None) => {
                    self.note_activity();
                    self.in_flight.settle(&self.ws);
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    self.note_activity();
                    self.since_commands = 0;
                    if self.poll_commands(cx) {
                        continue;
                    }
                    self.inner.force_waker.register(cx.waker());
                    if self.inner.forced.load(Ordering::Acquire) {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// The next event for the behavior; `None` once the connection is over.
    async fn next_event(&mut self) -> Option<HandlerEvent> {
        std::future::poll_fn(|cx| {
            if let Some(event) = self.pending.pop_front() {
                return Poll::Ready(Some(event));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            self.poll_io(cx, true)
        })
        .await
    }

    /// Runs one callback to its end while the connection goes on. The callback is pinned by
    /// the caller and polled in place (a panic is caught at each poll), so that no callback
    /// future is moved per message.
    async fn run_callback<F: Future<Output = ()>>(&mut self, mut callback: Pin<&mut F>) -> Outcome {
        let mut abandon: Option<Pin<Box<tokio::time::Sleep>>> = None;
        std::future::poll_fn(|cx| {
            loop {
                // While a message is streamed, the callback's own sends wait for its end.
                let streaming = self.in_flight.stream.is_some();
                let room = if streaming {
                    0
                } else {
                    self.high_water
                        .saturating_sub(self.ws.connection().transmit_len())
                };
                let (ws, in_flight) = (&mut self.ws, &mut self.in_flight);
                let (result, blocked) = local_send::enter(
                    &self.inner,
                    room,
                    || std::panic::catch_unwind(AssertUnwindSafe(|| callback.as_mut().poll(cx))),
                    |command| queue(ws, in_flight, command),
                );
                match result {
                    Ok(Poll::Ready(())) => return Poll::Ready(Outcome::Done),
                    Err(_) => return Poll::Ready(Outcome::Panicked),
                    Ok(Poll::Pending) => {}
                }
                if self.ended {
                    // Nothing more will come; a callback that never returns is given the
                    // close timeout, then dropped with the behavior.
                    let close_timeout = self.ws.connection().config().close_timeout;
                    let sleep =
                        abandon.get_or_insert_with(|| Box::pin(tokio::time::sleep(close_timeout)));
                    return match sleep.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(Outcome::Abandoned),
                        Poll::Pending => Poll::Pending,
                    };
                }
                let receive = self.pending.len() < self.receive_queue;
                match self.poll_io(cx, receive) {
                    Poll::Ready(Some(event)) => self.pending.push_back(event),
                    Poll::Ready(None) => {}
                    Poll::Pending => {
                        let room_again = self.ws.connection().transmit_len() < self.high_water
                            && self.in_flight.stream.is_none();
                        if !(blocked && room_again) {
                            return Poll::Pending;
                        }
                    }
                }
            }
        })
        .await
    }

    /// Drives the connection to its end without a behavior (after a callback panicked).
    async fn drain(&mut self) {
        while self.next_event().await.is_some() {}
    }
}

/// Runs a session until its connection ends and its behavior has seen the end.
pub(crate) async fn run<B: Behavior>(
    mut behavior: B,
    ws: WebSocket<BoxIo>,
    inner: Arc<SessionInner>,
    emit_on_ping: bool,
    receive_queue: usize,
) {
    let session = Session(inner.clone());
    let commands = inner
        .commands
        .lock()
        .expect("not poisoned")
        .take()
        .expect("run once");
    let high_water = ws.connection().config().write_high_water;
    let mut driver = Driver {
        ws,
        inner: inner.clone(),
        commands,
        commands_open: true,
        pending: VecDeque::new(),
        receive_queue: receive_queue.max(1),
        emit_on_ping,
        high_water,
        ended: false,
        since_commands: 0,
        heard: false,
        in_flight: InFlight::default(),
    };
    // Everything logged for this session, the behaviour's own logs included, carries this span.
    let span = tracing::info_span!("session", id = %inner.id, peer = ?inner.remote_addr, path = %inner.uri.path());
    let body = async move {
        tracing::debug!(protocol = ?inner.protocol, "session open");
        let s = &session;
        let mut outcome = driver.run_callback(pin!(behavior.on_open(s))).await;
        while outcome == Outcome::Done {
            let Some(event) = driver.next_event().await else {
                break;
            };
            outcome = match event {
                HandlerEvent::Message(m) => {
                    driver.run_callback(pin!(behavior.on_message(s, m))).await
                }
                HandlerEvent::Error(e) => driver.run_callback(pin!(behavior.on_error(s, &e))).await,
            };
        }
        if outcome == Outcome::Panicked {
            tracing::warn!("a callback panicked: closing the session with 1011");
            s.force_close(CloseFrame::new(CloseCode::INTERNAL_ERROR, "internal error").ok());
            driver.drain().await;
        }
        let info = driver
            .ws
            .close_status()
            .unwrap_or_else(CloseStatus::abnormal);
        tracing::debug!(code = info.code.0, reason = %info.reason, "session closed");
        inner.closed.store(true, Ordering::Release);
        // Pings still waiting learn that no pong will come.
        inner.pong_waiters.lock().expect("not poisoned").clear();
        inner.sessions.remove(&inner.id);
        drop(driver);
        match outcome {
            Outcome::Done => {
                let _ = AssertUnwindSafe(behavior.on_close(s, &info))
                    .catch_unwind()
                    .await;
            }
            Outcome::Abandoned => tracing::warn!(
                "a callback still ran a close timeout after the session ended: dropped"
            ),
            Outcome::Panicked => {}
        }
    };
    tracing::Instrument::instrument(body, span).await;
}
