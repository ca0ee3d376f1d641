//! Messages sent and received in parts on the blocking socket (see the async socket's
//! [`send_reader`](crate::WebSocket::send_reader) and [`recv_part`](crate::WebSocket::recv_part)).

use std::io::Read;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use wsharp_proto::{CloseCode, CloseFrame, MessageKind};

use super::WebSocket;
use crate::blocking::Stream;
use crate::error::{Error, Result};
use crate::socket::Received;

/// The size of the parts a reader is sent in.
const SEND_CHUNK: usize = 64 << 10;

impl<S: Stream> WebSocket<S> {
    /// Sends one part of a message sent in parts (see
    /// [`Connection::send_part`](wsharp_proto::Connection::send_part)); the last part is
    /// written out before this returns.
    ///
    /// # Errors
    /// [`Error::Send`] as `send_part` says; [`Error::Io`] if the write fails.
    pub fn send_part(
        &mut self,
        kind: MessageKind,
        data: impl Into<Bytes>,
        last: bool,
    ) -> Result<()> {
        if self.conn.transmit_len() >= self.conn.config().write_high_water {
            self.flush()?;
        }
        self.conn.send_part(kind, data.into(), last)?;
        if last {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends everything `reader` yields, to its end, as one message of `kind`, in parts of
    /// 64 KiB, never holding the message whole (websocket-sharp's `Send(Stream, int)`).
    /// Returns the bytes read. A reader that fails after the first part left closes the
    /// connection with 1011, as the async [`send_reader`](crate::WebSocket::send_reader).
    ///
    /// ```no_run
    /// # fn run() -> wsharp::Result<()> {
    /// use wsharp::MessageKind;
    /// let mut ws = wsharp::blocking::connect("ws://127.0.0.1:9001/")?;
    /// let sent = ws.send_reader(MessageKind::Binary, std::io::stdin().lock())?;
    /// println!("{sent} bytes");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The reader's [`Error::Io`]; [`Error::Send`]; the transport's [`Error::Io`].
    pub fn send_reader<R: Read>(&mut self, kind: MessageKind, mut reader: R) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let (chunk, end) = match read_chunk(&mut reader, SEND_CHUNK) {
                Ok(read) => read,
                Err(e) => return Err(self.abandon_parts(e.into())),
            };
            total += chunk.len() as u64;
            if self.conn.transmit_len() >= self.conn.config().write_high_water {
                self.flush()?;
            }
            if let Err(e) = self.conn.send_part(kind, chunk, end) {
                return Err(self.abandon_parts(e.into()));
            }
            if end {
                self.flush()?;
                return Ok(total);
            }
        }
    }

    /// Sends a file as one binary message, streamed from disk (websocket-sharp's
    /// `Send(FileInfo)`). Returns its size.
    ///
    /// # Errors
    /// As [`send_reader`](Self::send_reader), and opening the file.
    pub fn send_file(&mut self, path: impl AsRef<Path>) -> Result<u64> {
        let file = std::fs::File::open(path)?;
        self.send_reader(MessageKind::Binary, file)
    }

    fn abandon_parts(&mut self, error: Error) -> Error {
        if self.conn.is_sending_parts() {
            tracing::debug!("the message's source failed midway: closing with 1011 ({error})");
            let frame = CloseFrame::new(CloseCode::INTERNAL_ERROR, "message source failed").ok();
            if self.conn.close(frame).is_ok() {
                let _ = self.flush();
            }
        }
        error
    }

    /// The next part of a message, or the next control message (see the async
    /// [`recv_part`](crate::WebSocket::recv_part)): messages that start from now on arrive in
    /// parts, a large one in the memory of a part.
    ///
    /// ```no_run
    /// # fn run() -> wsharp::Result<()> {
    /// use std::io::Write;
    /// use wsharp::Received;
    /// let mut ws = wsharp::blocking::connect("ws://127.0.0.1:9001/download")?;
    /// let mut out = std::io::stdout().lock();
    /// while let Some(received) = ws.recv_part() {
    ///     if let Received::Part(part) = received? {
    ///         out.write_all(&part.data)?;
    ///         if part.last {
    ///             break;
    ///         }
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_part(&mut self) -> Option<Result<Received>> {
        self.conn.set_receive_parts(true);
        if let Some(received) = self.held.pop_front() {
            return Some(Ok(received));
        }
        self.recv_until(None)
    }
}

/// Reads until `size` bytes or the end: the bytes, and whether the end was reached.
fn read_chunk<R: Read>(reader: &mut R, size: usize) -> std::io::Result<(Bytes, bool)> {
    let mut buf = BytesMut::zeroed(size);
    let mut filled = 0;
    while filled < size {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok((buf.freeze(), true));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((buf.freeze(), false))
}
