//! Owned halves of a [`WebSocket`], for a reading task and a writing task.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use wsharp_proto::{CloseCode, CloseFrame, Message};

use crate::error::{Error, Result};
use crate::socket::WebSocket;

/// The receiving half of a split [`WebSocket`]. It also writes the pongs and close replies
/// the connection owes, so keep it polled.
#[derive(Debug)]
pub struct RecvHalf<S> {
    inner: SplitStream<WebSocket<S>>,
}

/// The sending half of a split [`WebSocket`].
#[derive(Debug)]
pub struct SendHalf<S> {
    inner: SplitSink<WebSocket<S>, Message>,
}

pub(crate) fn split<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocket<S>,
) -> (SendHalf<S>, RecvHalf<S>) {
    ws.set_split(true);
    let (sink, stream) = StreamExt::split(ws);
    (SendHalf { inner: sink }, RecvHalf { inner: stream })
}

impl<S: AsyncRead + AsyncWrite + Unpin> RecvHalf<S> {
    /// The next message, as [`WebSocket::recv`].
    pub async fn recv(&mut self) -> Option<Result<Message>> {
        self.inner.next().await
    }

    /// Puts the halves back together.
    ///
    /// # Errors
    /// Gives both halves back if they come from different sockets.
    pub fn reunite(self, other: SendHalf<S>) -> Result<WebSocket<S>, (Self, SendHalf<S>)> {
        let mut ws = self
            .inner
            .reunite(other.inner)
            .map_err(|e| (Self { inner: e.1 }, SendHalf { inner: e.0 }))?;
        ws.set_split(false);
        Ok(ws)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SendHalf<S> {
    /// Sends a message and writes it out, as [`WebSocket::send`].
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<()> {
        self.inner.send(message.into()).await
    }

    /// Queues a message, as [`WebSocket::feed`].
    ///
    /// # Errors
    /// As [`WebSocket::feed`].
    pub async fn feed(&mut self, message: impl Into<Message>) -> Result<()> {
        self.inner.feed(message.into()).await
    }

    /// Writes everything pending.
    ///
    /// # Errors
    /// As [`WebSocket::flush`].
    pub async fn flush(&mut self) -> Result<()> {
        self.inner.flush().await
    }

    /// Sends a close frame, as [`WebSocket::close`].
    ///
    /// # Errors
    /// As [`WebSocket::close`].
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        let frame = CloseFrame::new(code, reason).map_err(Error::Send)?;
        self.inner.send(Message::Close(Some(frame))).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_util::Stream for RecvHalf<S> {
    type Item = Result<Message>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Messages go out as with [`WebSocket`]'s own `Sink`: `poll_ready` waits while
/// [`Config::write_high_water`](wsharp_proto::Config::write_high_water) bytes are pending,
/// `poll_close` sends a close frame with 1000 (unless one was sent) and writes it.
impl<S: AsyncRead + AsyncWrite + Unpin> futures_util::Sink<Message> for SendHalf<S> {
    type Error = Error;

    fn poll_ready(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<()>> {
        self.inner.poll_ready_unpin(cx)
    }

    fn start_send(mut self: std::pin::Pin<&mut Self>, item: Message) -> Result<()> {
        self.inner.start_send_unpin(item)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<()>> {
        self.inner.poll_flush_unpin(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<()>> {
        self.inner.poll_close_unpin(cx)
    }
}
