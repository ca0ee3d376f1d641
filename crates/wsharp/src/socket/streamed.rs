//! Messages sent and received in parts on the async socket: a file or reader streamed as one
//! message, and a large message read piece by piece, each in the memory of one part.

use std::path::Path;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use wsharp_proto::{CloseCode, CloseFrame, Message, MessageKind, Part};

use super::WebSocket;
use crate::error::{Error, Result};

/// What [`WebSocket::recv_part`] returns: a part of a text or binary message, or a message
/// that is never split (ping, pong, close).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A control message: a ping or pong (with
    /// [`Config::emit_control_frames`](crate::Config::emit_control_frames)) or the peer's
    /// close. (From [`WebSocket::recv_part`], never a text or binary message.)
    Message(Message),
    /// The next part of a text or binary message.
    Part(Part),
}

impl Received {
    /// The message, or [`Error::MessageInParts`] for a part.
    pub(crate) fn into_message(self) -> Result<Message> {
        match self {
            Self::Message(m) => Ok(m),
            Self::Part(_) => Err(Error::MessageInParts),
        }
    }
}

/// The size of the parts a reader is sent in.
pub(crate) const SEND_CHUNK: usize = 64 << 10;

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Sends one part of a message sent in parts (see
    /// [`Connection::send_part`](wsharp_proto::Connection::send_part)), waiting first while
    /// [`Config::write_high_water`](crate::Config::write_high_water) bytes are pending; the
    /// last part is written out before this returns.
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// use wsharp::proto::MessageKind;
    /// let mut ws = wsharp::connect("ws://127.0.0.1:9001/").await?;
    /// ws.send_part(MessageKind::Text, "first half, ", false).await?;
    /// ws.send_part(MessageKind::Text, "second half", true).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Send`] as `send_part` says; [`Error::Io`] if the write fails.
    pub async fn send_part(
        &mut self,
        kind: MessageKind,
        data: impl Into<Bytes>,
        last: bool,
    ) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_ready_to_send(cx)).await?;
        self.conn.send_part(kind, data.into(), last)?;
        if last {
            self.flush().await?;
        }
        Ok(())
    }

    /// Queues one part of a message sent in parts without waiting, as
    /// [`queue`](Self::queue) does for whole messages.
    ///
    /// # Errors
    /// [`Error::Send`] as [`Connection::send_part`](wsharp_proto::Connection::send_part) says.
    pub fn queue_part(
        &mut self,
        kind: MessageKind,
        data: impl Into<Bytes>,
        last: bool,
    ) -> Result<()> {
        self.conn.send_part(kind, data.into(), last)?;
        Ok(())
    }

    /// Sends everything `reader` yields, to its end, as one message of `kind`, in parts of
    /// 64 KiB (websocket-sharp's `Send(Stream, int)`, without reading the stream into memory
    /// first): the message never sits whole in memory, whatever its size. Compressed as one
    /// message when permessage-deflate is on. Returns the bytes read.
    ///
    /// If the reader fails (or text turns out not to be UTF-8) after the first part left,
    /// the message cannot be finished: the connection is closed with 1011 and the error
    /// returned. Before that, nothing was sent and the connection is unchanged.
    ///
    /// Not cancel safe: dropped midway, the message stays open and whole messages are
    /// refused ([`SendError::MessageInProgress`](crate::SendError::MessageInProgress)).
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// use wsharp::proto::MessageKind;
    /// let mut ws = wsharp::connect("ws://127.0.0.1:9001/").await?;
    /// let log = tokio::fs::File::open("server.log").await?;
    /// let sent = ws.send_reader(MessageKind::Text, log).await?;
    /// println!("{sent} bytes");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The reader's [`Error::Io`]; [`Error::Send`] as
    /// [`Connection::send_part`](wsharp_proto::Connection::send_part) says; the
    /// transport's [`Error::Io`].
    pub async fn send_reader<R: AsyncRead + Unpin>(
        &mut self,
        kind: MessageKind,
        mut reader: R,
    ) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let (chunk, end) = match read_chunk(&mut reader, SEND_CHUNK).await {
                Ok(read) => read,
                Err(e) => return Err(self.abandon_parts(e.into()).await),
            };
            total += chunk.len() as u64;
            std::future::poll_fn(|cx| self.poll_ready_to_send(cx)).await?;
            if let Err(e) = self.conn.send_part(kind, chunk, end) {
                return Err(self.abandon_parts(e.into()).await);
            }
            if end {
                self.flush().await?;
                return Ok(total);
            }
        }
    }

    /// Sends a file as one binary message, streamed from disk in parts (websocket-sharp's
    /// `Send(FileInfo)`); see [`send_reader`](Self::send_reader). Returns its size.
    ///
    /// # Errors
    /// As [`send_reader`](Self::send_reader), and opening the file.
    pub async fn send_file(&mut self, path: impl AsRef<Path>) -> Result<u64> {
        let file = tokio::fs::File::open(path).await?;
        self.send_reader(MessageKind::Binary, file).await
    }

    /// A message whose source failed after its first part left: the connection is closed
    /// with 1011 (the peer must not take the unfinished message for a whole one).
    async fn abandon_parts(&mut self, error: Error) -> Error {
        if self.conn.is_sending_parts() {
            tracing::debug!("the message's source failed midway: closing with 1011 ({error})");
            let frame = CloseFrame::new(CloseCode::INTERNAL_ERROR, "message source failed").ok();
            if self.conn.close(frame).is_ok() {
                let _ = self.flush().await;
            }
        }
        error
    }

    /// The next part of a message, or the next control message: text and binary messages
    /// that start from now on arrive in [`Part`]s (a frame's payload, or a piece of a large
    /// frame as it arrives), so a large message is read in the memory of a part, while
    /// [`Limits::max_message_size`](crate::Limits) still bounds its total. A message that
    /// starts while [`recv`](Self::recv) is used arrives whole.
    ///
    /// ```no_run
    /// # async fn run() -> wsharp::Result<()> {
    /// use tokio::io::AsyncWriteExt;
    /// use wsharp::Received;
    /// let mut ws = wsharp::connect("ws://127.0.0.1:9001/download").await?;
    /// let mut file = tokio::fs::File::create("download.bin").await?;
    /// while let Some(received) = ws.recv_part().await {
    ///     match received? {
    ///         Received::Part(part) => {
    ///             file.write_all(&part.data).await?;
    ///             if part.last {
    ///                 break;
    ///             }
    ///         }
    ///         Received::Message(other) => println!("{other:?}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn recv_part(&mut self) -> Option<Result<Received>> {
        std::future::poll_fn(|cx| self.poll_recv_part(cx)).await
    }

    /// Polls for the next part or control message (see [`recv_part`](Self::recv_part)).
    pub fn poll_recv_part(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Received>>> {
        self.conn.set_receive_parts(true);
        if let Some(received) = self.take_held() {
            return Poll::Ready(Some(Ok(received)));
        }
        if let Some((wakers, _)) = &self.split {
            wakers.register_reader(cx.waker());
        }
        self.poll_drive_any(cx, true)
    }
}

/// Reads until `size` bytes or the end: the bytes, and whether the end was reached.
pub(crate) async fn read_chunk<R: AsyncRead + Unpin>(
    reader: &mut R,
    size: usize,
) -> std::io::Result<(Bytes, bool)> {
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        let mut limited = (&mut *reader).take((size - buf.len()) as u64);
        if limited.read_buf(&mut buf).await? == 0 {
            return Ok((buf.freeze(), true));
        }
    }
    Ok((buf.freeze(), false))
}
