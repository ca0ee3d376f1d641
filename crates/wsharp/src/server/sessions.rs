//! [`Sessions`]: the open sessions of one service (websocket-sharp's `WebSocketSessionManager`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use wsharp_proto::{CloseCode, CloseFrame, Message, PreparedMessage};

use super::backplane::{Directed, Link};
use super::options::Overflow;
use super::session::{Command, Session};
use crate::error::{Error, Result};

/// The open sessions of a service. Cheap to clone.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Inner>);

#[derive(Default)]
struct Inner {
    map: RwLock<HashMap<String, Session>>,
    overflow: RwLock<Overflow>,
    wait_time: RwLock<Duration>,
    /// The server's backplane, once the service is mounted on a server that has one.
    link: RwLock<Option<Link>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("count", &self.count())
            .finish()
    }
}

/// The outcome of a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Broadcast {
    /// Sessions the message was queued for.
    pub queued: usize,
    /// Sessions whose queue was full ([`Overflow`] decided what happened to them).
    pub overflowed: usize,
    /// Whether the message was handed to the server's backplane for the other nodes (queued
    /// there: see [`Backplane::publish`](super::Backplane::publish)).
    pub published: bool,
}

impl Sessions {
    pub(crate) fn with_policy(overflow: Overflow, wait_time: Duration) -> Self {
        let s = Self::default();
        *s.0.overflow.write().expect("not poisoned") = overflow;
        *s.0.wait_time.write().expect("not poisoned") = wait_time;
        s
    }

    pub(crate) fn insert(&self, session: Session) {
        let id = session.id().to_owned();
        self.0
            .map
            .write()
            .expect("not poisoned")
            .insert(id.clone(), session);
        if let Some(link) = self.link() {
            link.backplane.session_opened(&link.path, &id);
        }
    }

    pub(crate) fn remove(&self, id: &str) {
        let removed = self.0.map.write().expect("not poisoned").remove(id);
        if removed.is_some()
            && let Some(link) = self.link()
        {
            link.backplane.session_closed(&link.path, id);
        }
    }

    /// Links the service to the server's backplane; its open sessions are registered.
    pub(crate) fn attach(&self, link: Link) {
        for id in self.ids() {
            link.backplane.session_opened(&link.path, &id);
        }
        *self.0.link.write().expect("not poisoned") = Some(link);
    }

    fn link(&self) -> Option<Link> {
        self.0.link.read().expect("not poisoned").clone()
    }

    /// The number of sessions of this service on every node of the cluster (this node's
    /// [`count`](Self::count) without a backplane). Every other method of `Sessions` is about
    /// this node's sessions, except [`broadcast`](Self::broadcast), [`send_to`](Self::send_to)
    /// and [`close_session`](Self::close_session), which reach the whole cluster.
    ///
    /// # Errors
    /// [`Error::Backplane`] when the backplane cannot answer.
    pub async fn cluster_count(&self) -> Result<usize> {
        match self.link() {
            Some(link) => Ok(link.backplane.cluster_count(&link.path).await?),
            None => Ok(self.count()),
        }
    }

    fn all(&self) -> Vec<Session> {
        self.0
            .map
            .read()
            .expect("not poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// How many sessions are open.
    pub fn count(&self) -> usize {
        self.0.map.read().expect("not poisoned").len()
    }

    /// The ids of the open sessions.
    pub fn ids(&self) -> Vec<String> {
        self.0
            .map
            .read()
            .expect("not poisoned")
            .keys()
            .cloned()
            .collect()
    }

    /// The ids of sessions heard from within the wait time (websocket-sharp's `ActiveIDs`).
    pub fn active_ids(&self) -> Vec<String> {
        let wait = *self.0.wait_time.read().expect("not poisoned");
        self.all()
            .into_iter()
            .filter(|s| s.idle_for() <= wait)
            .map(|s| s.id().to_owned())
            .collect()
    }

    /// The ids of sessions silent for longer than the wait time (websocket-sharp's
    /// `InactiveIDs`). Pair with [`broadping`](Self::broadping) to give them a chance to answer.
    pub fn inactive_ids(&self) -> Vec<String> {
        let wait = *self.0.wait_time.read().expect("not poisoned");
        self.all()
            .into_iter()
            .filter(|s| s.idle_for() > wait)
            .map(|s| s.id().to_owned())
            .collect()
    }

    /// The session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.0.map.read().expect("not poisoned").get(id).cloned()
    }

    /// Sends a message to one session, waiting while its queue is full. With a backplane, a
    /// session on another node is reached through it: the call returns once that node has
    /// received the message, which its session's queue then takes without waiting (its
    /// [`Overflow`] policy applies).
    ///
    /// # Errors
    /// [`Error::Send`] if there is no open session with that id on this node and no backplane;
    /// [`Error::Backplane`] when no node holds it or its node cannot be reached.
    pub async fn send_to(&self, id: &str, message: impl Into<Message>) -> Result<()> {
        match self.get(id) {
            Some(s) => s.send(message).await,
            None => self.route(id, Directed::Send(message.into())).await,
        }
    }

    /// A directed message for a session that is not here: through the backplane, if any.
    async fn route(&self, id: &str, directed: Directed) -> Result<()> {
        match self.link() {
            Some(link) => Ok(link.backplane.route(&link.path, id, directed).await?),
            None => Err(Error::Send(wsharp_proto::SendError::SendAfterClosing)),
        }
    }

    /// Delivers a directed message from another node to a session here, without waiting.
    pub(crate) fn deliver_directed(&self, id: &str, directed: Directed) -> bool {
        let Some(session) = self.get(id) else {
            return false;
        };
        match directed {
            Directed::Close(frame) => session.force_close(frame),
            Directed::Send(message) => {
                if let Err(TrySendError::Full(_)) =
                    session.0.outgoing.try_send(Command::Send(message))
                {
                    self.overflowed(&session);
                }
            }
        }
        true
    }

    /// Sends a message to one session and returns once it is written (see
    /// [`Session::send_and_wait`]; websocket-sharp's `SendToAsync` with its callback).
    ///
    /// # Errors
    /// [`Error::Send`] if there is no open session with that id or it closes first.
    pub async fn send_and_wait_to(&self, id: &str, message: impl Into<Message>) -> Result<()> {
        match self.get(id) {
            Some(s) => s.send_and_wait(message).await,
            None => Err(Error::Send(wsharp_proto::SendError::SendAfterClosing)),
        }
    }

    /// Streams `reader` to one session as one message (see [`Session::send_reader`];
    /// websocket-sharp's `SendTo(Stream, int, id)`).
    ///
    /// # Errors
    /// As [`Session::send_reader`], and [`Error::Send`] if there is no open session with that
    /// id.
    pub async fn send_reader_to(
        &self,
        id: &str,
        kind: wsharp_proto::MessageKind,
        reader: impl tokio::io::AsyncRead + Send + 'static,
    ) -> Result<u64> {
        match self.get(id) {
            Some(s) => s.send_reader(kind, reader).await,
            None => Err(Error::Send(wsharp_proto::SendError::SendAfterClosing)),
        }
    }

    /// Broadcasts what `reader` yields, to its end, as one message (websocket-sharp's
    /// `Broadcast(Stream, int)`). Unlike a send to one session, the message is read into
    /// memory first, once, at most `max_len` bytes: every session's queue then shares that
    /// one copy, encoded once, where streaming it would hold a part per session and let the
    /// slowest session hold back the rest. Returns the bytes read and the broadcast's report.
    ///
    /// ```no_run
    /// # async fn run(sessions: &wsharp::server::Sessions) -> wsharp::Result<()> {
    /// use wsharp::MessageKind;
    /// let notice = tokio::fs::File::open("notice.txt").await?;
    /// let (len, report) = sessions.broadcast_reader(MessageKind::Text, notice, 1 << 20).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The reader's [`Error::Io`], of kind `InvalidData` past `max_len` bytes or for text
    /// that is not UTF-8.
    pub async fn broadcast_reader(
        &self,
        kind: wsharp_proto::MessageKind,
        reader: impl tokio::io::AsyncRead + Unpin,
        max_len: usize,
    ) -> Result<(usize, Broadcast)> {
        use tokio::io::AsyncReadExt;
        let mut data = Vec::new();
        let read = reader
            .take(max_len as u64 + 1)
            .read_to_end(&mut data)
            .await?;
        if read > max_len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the message is longer than {max_len} bytes"),
            )
            .into());
        }
        let message = match kind {
            wsharp_proto::MessageKind::Binary => Message::binary(data),
            wsharp_proto::MessageKind::Text => {
                let text = String::from_utf8(data).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "text is not UTF-8")
                })?;
                Message::text(text)
            }
        };
        Ok((read, self.broadcast(message)?))
    }

    /// Sends a message to every session. A text or binary frame is encoded once and shared; a
    /// session whose queue is full is never waited for: the service's [`Overflow`] policy
    /// applies. A close message closes every session through its own close handshake.
    ///
    /// # Errors
    /// [`Error::Send`] for an invalid control payload or close frame.
    ///
    /// With a backplane the message is then published once for the other nodes, which deliver
    /// it to their sessions the same way ([`Broadcast::published`]).
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<Broadcast> {
        let message = message.into();
        let link = self.link();
        let copy = link.as_ref().map(|_| message.clone());
        let mut report = self.broadcast_local(message)?;
        if let (Some(link), Some(message)) = (link, copy) {
            link.backplane.publish(&link.path, &message);
            report.published = true;
        }
        Ok(report)
    }

    /// Delivers a broadcast to this node's sessions only.
    pub(crate) fn broadcast_local(&self, message: Message) -> Result<Broadcast> {
        match message {
            Message::Close(frame) => {
                if let Some(f) = &frame {
                    CloseFrame::new(f.code, f.reason.as_str()).map_err(Error::Send)?;
                }
                let sessions = self.all();
                for s in &sessions {
                    s.force_close(frame.clone());
                }
                Ok(Broadcast {
                    queued: sessions.len(),
                    ..Broadcast::default()
                })
            }
            Message::Ping(payload) | Message::Pong(payload) if payload.len() > 125 => Err(
                Error::Send(wsharp_proto::SendError::ControlPayloadTooBig(payload.len())),
            ),
            control @ (Message::Ping(_) | Message::Pong(_)) => {
                Ok(self.offer(|| Command::Send(control.clone())))
            }
            data => {
                let prepared = PreparedMessage::new(data)?;
                Ok(self.offer(|| Command::Prepared(prepared.clone())))
            }
        }
    }

    /// Queues `make()` for every session without waiting, applying the overflow policy.
    fn offer(&self, make: impl Fn() -> Command) -> Broadcast {
        let mut report = Broadcast::default();
        for session in self.all() {
            match session.0.outgoing.try_send(make()) {
                Ok(()) => report.queued += 1,
                Err(TrySendError::Full(_)) => {
                    report.overflowed += 1;
                    self.overflowed(&session);
                }
                Err(TrySendError::Closed(_)) => {}
            }
        }
        report
    }

    /// A session's queue was full: the overflow policy decides.
    fn overflowed(&self, session: &Session) {
        if *self.0.overflow.read().expect("not poisoned") == Overflow::Close {
            let frame = CloseFrame::new(CloseCode::POLICY_VIOLATION, "too slow to keep up").ok();
            session.force_close(frame);
        }
    }

    /// Pings every session (websocket-sharp's `Broadping`); their pongs refresh
    /// [`active_ids`](Self::active_ids).
    ///
    /// # Errors
    /// [`Error::Send`] for a payload over 125 bytes.
    pub fn broadping(&self, payload: impl Into<bytes::Bytes>) -> Result<Broadcast> {
        // This node's sessions only, as every other liveness method.
        self.broadcast_local(Message::Ping(payload.into()))
    }

    /// Closes one session with `code` and `reason`, on whatever node holds it when the server
    /// has a backplane.
    ///
    /// # Errors
    /// [`Error::Send`] if there is no such session here and no backplane, or the code or
    /// reason is refused; [`Error::Backplane`] when no node holds it or its node cannot be
    /// reached.
    pub async fn close_session(&self, id: &str, code: CloseCode, reason: &str) -> Result<()> {
        match self.get(id) {
            Some(s) => s.close(code, reason).await,
            None => {
                let frame = CloseFrame::new(code, reason).map_err(Error::Send)?;
                self.route(id, Directed::Close(Some(frame))).await
            }
        }
    }

    /// Closes one session with a close frame that carries no code (websocket-sharp's
    /// `CloseSession(id)`).
    ///
    /// # Errors
    /// [`Error::Send`] if there is no such session.
    pub fn close_session_without_code(&self, id: &str) -> Result<()> {
        match self.get(id) {
            Some(s) => {
                s.close_without_code();
                Ok(())
            }
            None => Err(Error::Send(wsharp_proto::SendError::SendAfterClosing)),
        }
    }

    /// Ends every session's task at once, without a close handshake (a stop past its
    /// deadline); returns how many were still open.
    pub(crate) fn abort_all(&self) -> usize {
        let sessions: Vec<Session> = self
            .0
            .map
            .write()
            .expect("not poisoned")
            .drain()
            .map(|(_, s)| s)
            .collect();
        let link = self.link();
        for s in &sessions {
            s.0.closed.store(true, std::sync::atomic::Ordering::Release);
            if let Some(task) = s.0.task.get() {
                task.abort();
            }
            if let Some(link) = &link {
                link.backplane.session_closed(&link.path, s.id());
            }
        }
        sessions.len()
    }

    /// Closes every session with `frame` at once.
    pub(crate) fn close_all(&self, frame: Option<CloseFrame>) {
        for s in self.all() {
            s.force_close(frame.clone());
        }
    }

    /// The wait time (websocket-sharp's `WaitTime`).
    pub(crate) fn wait_time(&self) -> Duration {
        *self.0.wait_time.read().expect("not poisoned")
    }

    /// Pings one session and waits for its pong (websocket-sharp's `PingTo`): the round trip
    /// time.
    ///
    /// # Errors
    /// [`Error::PongTimeout`] after `timeout`; [`Error::Send`] if there is no open session with
    /// that id.
    pub async fn ping_to(&self, id: &str, timeout: Duration) -> Result<Duration> {
        match self.get(id) {
            Some(s) => s.ping_and_wait(timeout).await,
            None => Err(Error::Send(wsharp_proto::SendError::SendAfterClosing)),
        }
    }

    /// Pings every session at once and waits up to `timeout` for the pongs (websocket-sharp's
    /// `Broadping`): each session's id with its round trip time, or `None` if it did not answer.
    ///
    /// ```no_run
    /// # async fn run(sessions: wsharp::server::Sessions) {
    /// use std::time::Duration;
    /// let answers = sessions.ping_all(Duration::from_secs(1)).await;
    /// let silent = answers.values().filter(|rtt| rtt.is_none()).count();
    /// # }
    /// ```
    pub async fn ping_all(&self, timeout: Duration) -> HashMap<String, Option<Duration>> {
        let sessions = self.all();
        let pings = sessions
            .iter()
            .map(|s| async move { (s.id().to_owned(), s.ping_and_wait(timeout).await.ok()) });
        futures_util::future::join_all(pings)
            .await
            .into_iter()
            .collect()
    }

    /// Pings every session and closes, with 1001, those that do not answer within the wait
    /// time (websocket-sharp's `Sweep`): sessions are judged by their pongs, so a client that
    /// sends but never answers pings is swept too. Returns how many were closed.
    pub async fn sweep(&self) -> usize {
        let answers = self.ping_all(self.wait_time()).await;
        let mut swept = 0;
        for (id, rtt) in answers {
            if rtt.is_none()
                && let Some(s) = self.get(&id)
            {
                s.force_close(CloseFrame::new(CloseCode::GOING_AWAY, "inactive").ok());
                swept += 1;
            }
        }
        swept
    }
}
