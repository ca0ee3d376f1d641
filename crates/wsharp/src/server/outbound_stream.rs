//! A message a session streams from a reader, part by part, driven by the session's task
//! between its other work: the connection keeps reading and answering pings meanwhile, and
//! other sends wait until the message's last part has left.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::AsyncRead;
use tokio::sync::oneshot;
use wsharp_proto::{CloseCode, CloseFrame, MessageKind};

use super::service::BoxIo;
use crate::error::Result;
use crate::socket::WebSocket;

/// The size of a part; a reader that has less ready sends what it has.
const CHUNK: usize = 64 << 10;

/// A streamed message in progress.
pub(crate) struct OutboundStream {
    kind: MessageKind,
    reader: Pin<Box<dyn AsyncRead + Send>>,
    buf: BytesMut,
    total: u64,
    done: Option<oneshot::Sender<Result<u64>>>,
}

impl std::fmt::Debug for OutboundStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundStream")
            .field("kind", &self.kind)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl OutboundStream {
    /// A stream of `reader` as one message of `kind`, and where its outcome will be told.
    pub(crate) fn new(
        kind: MessageKind,
        reader: impl AsyncRead + Send + 'static,
    ) -> (Box<Self>, oneshot::Receiver<Result<u64>>) {
        let (tx, rx) = oneshot::channel();
        let stream = Self {
            kind,
            reader: Box::pin(reader),
            buf: BytesMut::new(),
            total: 0,
            done: Some(tx),
        };
        (Box::new(stream), rx)
    }

    /// Queues the next part on `ws`: `Ready(true)` once the message is over (sent, or failed
    /// and reported), `Ready(false)` after a part, `Pending` while the reader has nothing.
    pub(crate) fn poll_part(
        &mut self,
        ws: &mut WebSocket<BoxIo>,
        cx: &mut Context<'_>,
    ) -> Poll<bool> {
        loop {
            if self.buf.capacity() == self.buf.len() {
                // Below CHUNK here: a full part is sent before the next read.
                self.buf.reserve(CHUNK - self.buf.len());
            }
            match tokio_util::io::poll_read_buf(self.reader.as_mut(), cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => {
                    let last = self.buf.split().freeze();
                    return Poll::Ready(match ws.queue_part(self.kind, last, true) {
                        Ok(()) => self.finish(ws, Ok(self.total)),
                        Err(e) => self.finish(ws, Err(e)),
                    });
                }
                Poll::Ready(Ok(n)) => {
                    self.total += n as u64;
                    if self.buf.len() >= CHUNK {
                        return Poll::Ready(self.send(ws));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(self.finish(ws, Err(e.into()))),
                Poll::Pending if self.buf.is_empty() => return Poll::Pending,
                Poll::Pending => return Poll::Ready(self.send(ws)),
            }
        }
    }

    /// Queues what was read as a part that is not the last; whether the message is over.
    fn send(&mut self, ws: &mut WebSocket<BoxIo>) -> bool {
        let part = self.buf.split().freeze();
        match ws.queue_part(self.kind, part, false) {
            Ok(()) => false,
            Err(e) => self.finish(ws, Err(e)),
        }
    }

    /// Reports the outcome; a message left unfinished closes the connection with 1011.
    fn finish(&mut self, ws: &mut WebSocket<BoxIo>, outcome: Result<u64>) -> bool {
        if outcome.is_err() && ws.connection().is_sending_parts() {
            let frame = CloseFrame::new(CloseCode::INTERNAL_ERROR, "message source failed").ok();
            let _ = ws.queue_close(frame);
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(outcome);
        }
        true
    }
}
