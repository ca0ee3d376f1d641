//! [`ServerStream`]: a server's TLS connection on rustls' unbuffered API, with buffers that
//! exist only while bytes are in them.
//!
//! rustls' buffered `ServerConnection` (what tokio-rustls drives) keeps a 4 KiB receive buffer
//! for as long as the connection lives, reads the socket 4 KiB at a time, and queues each
//! encrypted record as its own allocation until it is written. Here the connection state is
//! rustls' and the bytes are ours: ciphertext is read up to 64 KiB at a time into a buffer
//! taken from a small per-thread pool (the same scheme as the WebSocket buffers in
//! `wsharp-proto`, over zero-filled `Vec`s because rustls decrypts in place) and given back
//! once processed and the socket would block; records are encrypted into one outgoing buffer
//! that goes back to the pool once sent. An idle connection holds no buffer at all.
//!
//! Written here because tokio-rustls drives only the buffered API; the client side stays on
//! tokio-rustls.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus, WriteTraffic,
};
use rustls::{CommonState, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes a pooled buffer holds: reads of up to four full TLS records, or a write batch.
const BUFFER: usize = 65 * 1024;
/// Buffers kept per thread.
const POOL_MAX: usize = 8;
/// The largest incoming buffer: a handshake message may span records, up to rustls' own
/// limit for one (64 KiB), plus a record.
const MAX_INCOMING: usize = 96 * 1024;
/// Plaintext encrypted per write call: a 64 KiB message and its header in one batch.
const WRITE_CHUNK: usize = 64 * 1024 + 16;
/// Room for a record's header, nonce, content type and tag, with margin.
const RECORD_OVERHEAD: usize = 64;
/// The most plaintext a TLS record carries.
const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;
/// A record header's bytes, which rustls' `max_fragment_size` counts.
const RECORD_HEADER: usize = 5;
/// The plaintext per record in the configurations wsharp builds (rustls' `max_fragment_size`
/// of [`MAX_FRAGMENT_SIZE`]): 64 bytes short of 16 KiB, so that the buffer rustls allocates to
/// encrypt a record (plaintext + 22 bytes) stays within 16 KiB. Allocators serve blocks up to
/// 16 KiB from small, quickly reused classes (mimalloc: four to a 64 KiB page); a block a few
/// bytes larger comes from a larger class whose many blocks are handed out in turn, so each
/// record's buffer would arrive cold in the cache.
const RECORD_PLAINTEXT: usize = 16 * 1024 - 64;
/// rustls' `max_fragment_size` for [`RECORD_PLAINTEXT`].
pub(crate) const MAX_FRAGMENT_SIZE: usize = RECORD_PLAINTEXT + RECORD_HEADER;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    /// Where the slices of a vectored write are joined into one record: at most
    /// one record's plaintext per thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A zero-filled buffer of at least `len` bytes, from this thread's pool if it has one.
fn take_buffer(len: usize) -> Vec<u8> {
    let mut buf = POOL
        .try_with(|pool| pool.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default();
    if buf.len() < len {
        buf.resize(len.max(BUFFER), 0);
    }
    buf
}

/// Gives `buf` back to this thread's pool (dropped if the pool is full or the buffer grew
/// large).
fn give_buffer(buf: Vec<u8>) {
    if buf.is_empty() || buf.len() > 4 * BUFFER {
        return;
    }
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    });
}

/// Ciphertext received and not yet processed: `buf[start..end]`; no allocation while empty.
#[derive(Default)]
struct Incoming {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Incoming {
    fn pending(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Drops `n` processed bytes from the front.
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into at the end: compacts, or grows up to [`MAX_INCOMING`].
    fn room(&mut self) -> io::Result<&mut [u8]> {
        if self.buf.is_empty() {
            self.buf = take_buffer(BUFFER);
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_INCOMING {
                let len = (self.buf.len() * 2).min(MAX_INCOMING);
                self.buf.resize(len, 0);
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS message too large",
                ));
            }
        }
        Ok(&mut self.buf[self.end..])
    }

    /// Gives the buffer back to the pool if nothing is waiting in it.
    fn release_if_empty(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            give_buffer(std::mem::take(&mut self.buf));
        }
    }
}

/// Ciphertext to send: `buf[sent..filled]`; no allocation while empty.
#[derive(Default)]
struct Outgoing {
    buf: Vec<u8>,
    sent: usize,
    filled: usize,
}

impl Outgoing {
    fn unsent(&self) -> usize {
        self.filled - self.sent
    }

    /// At least `len` writable bytes at the end.
    fn room(&mut self, len: usize) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = take_buffer(len);
        } else if self.buf.len() - self.filled < len {
            if self.sent > 0 {
                self.buf.copy_within(self.sent..self.filled, 0);
                self.filled -= self.sent;
                self.sent = 0;
            }
            if self.buf.len() - self.filled < len {
                self.buf.resize(self.filled + len, 0);
            }
        }
        &mut self.buf[self.filled..]
    }

    /// Runs `write` (an encoder or encrypter) on room for `len` bytes, and once more with the
    /// room it says it needs.
    fn append<E: std::fmt::Display>(
        &mut self,
        len: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, (Option<usize>, E)>,
    ) -> io::Result<()> {
        let n = match write(self.room(len)) {
            Ok(n) => n,
            Err((Some(required), _)) => {
                write(self.room(required)).map_err(|(_, e)| io::Error::other(e.to_string()))?
            }
            Err((None, e)) => return Err(io::Error::other(e.to_string())),
        };
        self.filled += n;
        Ok(())
    }

    fn encode(&mut self, encode: &mut EncodeTlsData<'_, ServerConnectionData>) -> io::Result<()> {
        self.append(RECORD_OVERHEAD, |room| {
            encode.encode(room).map_err(|e| match e {
                EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                    (Some(required_size), e)
                }
                e => (None, e),
            })
        })
    }

    fn encrypt(
        &mut self,
        traffic: &mut WriteTraffic<'_, ServerConnectionData>,
        data: &[u8],
        record: usize,
    ) -> io::Result<()> {
        let records = data.len().div_ceil(record).max(1);
        self.append(data.len() + records * RECORD_OVERHEAD, |room| {
            traffic.encrypt(data, room).map_err(encrypt_error)
        })
    }

    fn close_notify(
        &mut self,
        traffic: &mut WriteTraffic<'_, ServerConnectionData>,
    ) -> io::Result<()> {
        self.append(RECORD_OVERHEAD, |room| {
            traffic.queue_close_notify(room).map_err(encrypt_error)
        })
    }

    /// Everything was sent: back to the pool.
    fn release(&mut self) {
        self.sent = 0;
        self.filled = 0;
        give_buffer(std::mem::take(&mut self.buf));
    }
}

fn encrypt_error(e: EncryptError) -> (Option<usize>, EncryptError) {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            (Some(required_size), e)
        }
        e => (None, e),
    }
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn handshake_eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof")
}

/// A server's TLS connection over `S`: what [`ServerTls::accept`](super::ServerTls::accept)
/// returns and [`ServerBuilder::accept_tls`](crate::ServerBuilder::accept_tls) runs a
/// WebSocket over. It reads and writes plaintext; [`tls`](Self::tls) shows the session
/// (protocol version, cipher suite, ALPN protocol, the client's certificates).
///
/// [`poll_shutdown`](AsyncWrite::poll_shutdown) sends TLS close_notify, then shuts the
/// transport's write side. A read after the client ended TCP without close_notify fails with
/// `UnexpectedEof`, as tokio-rustls reports it. A TLS failure is an `io::Error` of kind
/// `InvalidData` carrying the `rustls::Error`.
pub struct ServerStream<S> {
    io: S,
    conn: UnbufferedServerConnection,
    incoming: Incoming,
    outgoing: Outgoing,
    /// Decrypted bytes no read has taken yet: `plain[taken..]` (only when a record did not fit
    /// the reader's buffer, or arrived while writing).
    plain: Vec<u8>,
    taken: usize,
    /// The transport reported end of stream.
    eof: bool,
    /// The client sent close_notify: no more data comes.
    peer_closed: bool,
    /// Our close_notify is queued: no more data goes.
    close_queued: bool,
    /// The plaintext one record carries under the configuration (its `max_fragment_size`).
    record_plaintext: usize,
}

/// How a run of [`ServerStream::drive`] ended.
enum Outcome {
    /// Plaintext was delivered (to the reader's buffer, or kept for it).
    Data,
    /// More ciphertext is needed from the client.
    NeedData,
    /// The client closed: no more data comes.
    PeerClosed,
    /// The plaintext was encrypted into the outgoing buffer.
    Encrypted,
    /// close_notify was queued, or the session is closed both ways and takes nothing more.
    Closed,
}

/// What a run of [`ServerStream::drive`] is for.
enum Goal<'a, 'b> {
    /// Decrypt into this buffer (and keep what does not fit).
    Read(&'a mut ReadBuf<'b>),
    /// Progress with the handshake; keep any data that arrives.
    Handshake,
    /// Encrypt this plaintext.
    Write(&'a [u8]),
    /// Queue close_notify.
    Close,
}

impl<S> ServerStream<S> {
    /// The transport underneath.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The transport underneath, mutably (reading or writing it directly breaks the session).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The TLS session: protocol version, cipher suite, ALPN protocol, the client's
    /// certificates.
    pub fn tls(&self) -> &CommonState {
        &self.conn
    }

    /// Bytes of buffer this connection holds now: 0 while idle.
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.buf.len() + self.outgoing.buf.len() + self.plain.capacity()
    }

    /// Hands plaintext kept for the reader to `buf`; whether there was any.
    fn take_plain(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.taken == self.plain.len() {
            return false;
        }
        let n = (self.plain.len() - self.taken).min(buf.remaining());
        buf.put_slice(&self.plain[self.taken..self.taken + n]);
        self.taken += n;
        if self.taken == self.plain.len() {
            self.plain = Vec::new();
            self.taken = 0;
        }
        true
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerStream<S> {
    /// Runs the server side of the TLS handshake on `io` with `config`.
    pub(crate) async fn accept(io: S, config: Arc<ServerConfig>) -> io::Result<Self> {
        let record_plaintext = config
            .max_fragment_size
            .map_or(MAX_RECORD_PLAINTEXT, |size| {
                size.saturating_sub(RECORD_HEADER)
            })
            .clamp(1, MAX_RECORD_PLAINTEXT);
        let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let mut stream = Self {
            io,
            conn,
            incoming: Incoming::default(),
            outgoing: Outgoing::default(),
            plain: Vec::new(),
            taken: 0,
            eof: false,
            peer_closed: false,
            close_queued: false,
            record_plaintext,
        };
        std::future::poll_fn(|cx| stream.poll_handshake(cx)).await?;
        Ok(stream)
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.conn.is_handshaking() {
                // The last flight (and session tickets) go out before the stream is handed
                // over.
                return self.poll_send(cx);
            }
            match self.drive(cx, Goal::Handshake)? {
                Outcome::NeedData | Outcome::Data => {}
                Outcome::PeerClosed | Outcome::Encrypted | Outcome::Closed => {
                    return Poll::Ready(Err(handshake_eof()));
                }
            }
            if !self.conn.is_handshaking() {
                continue;
            }
            // The client answers only what it has received.
            ready!(self.poll_send(cx))?;
            if ready!(self.poll_fill(cx))? == 0 {
                return Poll::Ready(Err(handshake_eof()));
            }
        }
    }

    /// Runs rustls' state machine over the received ciphertext toward `goal`: encodes
    /// handshake records into the outgoing buffer, hands decrypted data to the reader (or keeps
    /// it), and stops where `goal` is met or more ciphertext is needed.
    fn drive(&mut self, cx: &mut Context<'_>, mut goal: Goal<'_, '_>) -> io::Result<Outcome> {
        let mut delivered = false;
        loop {
            if let Goal::Read(buf) = &goal
                && delivered
                && buf.remaining() == 0
            {
                return Ok(Outcome::Data);
            }
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(self.incoming.pending());
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    self.incoming.consume(discard);
                    self.send_alert(cx);
                    return Err(tls_error(e));
                }
            };
            let reading = matches!(goal, Goal::Read(_) | Goal::Handshake);
            let outcome = match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let mut payload = record.map_err(tls_error)?.payload;
                        if let Goal::Read(buf) = &mut goal {
                            let n = payload.len().min(buf.remaining());
                            buf.put_slice(&payload[..n]);
                            payload = &payload[n..];
                        }
                        self.plain.extend_from_slice(payload);
                        delivered = true;
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    self.outgoing.encode(&mut encode)?;
                    None
                }
                // Queued, in order, in the outgoing buffer: as good as sent.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    // Writing may go on after the client's close_notify.
                    reading.then_some(if delivered {
                        Outcome::Data
                    } else {
                        Outcome::PeerClosed
                    })
                }
                ConnectionState::Closed => {
                    self.peer_closed = true;
                    Some(match goal {
                        Goal::Write(_) | Goal::Close => Outcome::Closed,
                        _ if delivered => Outcome::Data,
                        _ => Outcome::PeerClosed,
                    })
                }
                ConnectionState::WriteTraffic(mut traffic) => Some(match goal {
                    Goal::Write(data) => {
                        self.outgoing
                            .encrypt(&mut traffic, data, self.record_plaintext)?;
                        Outcome::Encrypted
                    }
                    Goal::Close => {
                        self.outgoing.close_notify(&mut traffic)?;
                        self.close_queued = true;
                        Outcome::Closed
                    }
                    _ if delivered => Outcome::Data,
                    _ => Outcome::NeedData,
                }),
                ConnectionState::BlockedHandshake => {
                    if !reading {
                        return Err(io::Error::new(
                            io::ErrorKind::NotConnected,
                            "the TLS handshake is not complete",
                        ));
                    }
                    Some(if delivered {
                        Outcome::Data
                    } else {
                        Outcome::NeedData
                    })
                }
                // wsharp's configurations never enable early data.
                ConnectionState::ReadEarlyData(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected TLS early data",
                    ));
                }
                other => {
                    return Err(io::Error::other(format!("unexpected TLS state {other:?}")));
                }
            };
            self.incoming.consume(discard);
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
    }

    /// After a failure: the alert rustls queued about it, written if the transport takes it
    /// at once.
    fn send_alert(&mut self, cx: &mut Context<'_>) {
        let status = self.conn.process_tls_records(&mut []);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state
            && self.outgoing.encode(&mut encode).is_ok()
        {
            let _ = self.poll_send(cx);
        }
    }

    /// Writes the outgoing buffer out, then gives it back to the pool.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let out = &mut self.outgoing;
        while out.sent < out.filled {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &out.buf[out.sent..out.filled]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            out.sent += n;
        }
        out.release();
        Poll::Ready(Ok(()))
    }

    /// Reads ciphertext from the transport; returns how much (0 at end of stream). While
    /// nothing waits to be processed and the transport has nothing, the buffer goes back to the
    /// pool.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.eof {
            return Poll::Ready(Ok(0));
        }
        let mut buf = ReadBuf::new(self.incoming.room()?);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                self.incoming.end += n;
                if n == 0 {
                    self.eof = true;
                    self.incoming.release_if_empty();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                self.incoming.release_if_empty();
                Poll::Pending
            }
        }
    }

    /// Encrypts all of `data` into the outgoing buffer.
    fn encrypt(&mut self, cx: &mut Context<'_>, data: &[u8]) -> io::Result<()> {
        match self.drive(cx, Goal::Write(data))? {
            Outcome::Encrypted => Ok(()),
            _ => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Encrypts up to [`WRITE_CHUNK`] bytes of `bufs`, filling records across slices (a frame's
    /// header and its payload, many short messages): every record but the last is full.
    /// `scratch` joins the pieces of a record; returns the bytes taken.
    fn encrypt_slices(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        scratch: &mut Vec<u8>,
    ) -> io::Result<usize> {
        scratch.clear();
        let mut taken = 0;
        for b in bufs {
            let cut = b.len() > WRITE_CHUNK - taken;
            let mut b = &b[..b.len().min(WRITE_CHUNK - taken)];
            taken += b.len();
            let record = self.record_plaintext;
            if scratch.len() + b.len() < record {
                scratch.extend_from_slice(b);
                continue;
            }
            if !scratch.is_empty() {
                let fill = record - scratch.len();
                scratch.extend_from_slice(&b[..fill]);
                self.encrypt(cx, scratch)?;
                scratch.clear();
                b = &b[fill..];
            }
            let whole = b.len() - b.len() % record;
            if whole > 0 {
                self.encrypt(cx, &b[..whole])?;
            }
            if cut {
                // The rest of a long write goes in whole records on the next call.
                taken -= b.len() - whole;
                break;
            }
            scratch.extend_from_slice(&b[whole..]);
        }
        if !scratch.is_empty() {
            self.encrypt(cx, scratch)?;
        }
        Ok(taken)
    }

    /// Sends what is queued if the transport takes it now; only an error stops the caller.
    fn try_send(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.poll_send(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Ok(()),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ServerStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.take_plain(buf) {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.peer_closed {
                return Poll::Ready(Ok(()));
            }
            let outcome = this.drive(cx, Goal::Read(buf))?;
            // Handshake records (a key update's answer, session tickets) go out as they come.
            if this.outgoing.unsent() > 0 {
                this.try_send(cx)?;
            }
            if matches!(outcome, Outcome::Data | Outcome::PeerClosed) {
                return Poll::Ready(Ok(()));
            }
            if ready!(this.poll_fill(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed connection without sending TLS close_notify",
                )));
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ServerStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    /// Encrypts up to 64 KiB of `bufs` into one batch of records and writes it
    /// out. One batch may wait unsent behind the transport while the next is encrypted; more
    /// makes the write wait.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.close_queued {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if this.outgoing.unsent() >= WRITE_CHUNK {
            this.try_send(cx)?;
            if this.outgoing.unsent() >= WRITE_CHUNK {
                return Poll::Pending;
            }
        }
        let taken = match SCRATCH
            .try_with(|scratch| this.encrypt_slices(cx, bufs, &mut scratch.borrow_mut()))
        {
            Ok(taken) => taken,
            // While the thread's locals are torn down (a socket dropped then).
            Err(_) => this.encrypt_slices(cx, bufs, &mut Vec::new()),
        }?;
        // Out now if the transport takes it; otherwise the next write or the flush waits for it.
        this.try_send(cx)?;
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued && !this.conn.is_handshaking() {
            // A failed session has nothing to close; the transport is shut all the same.
            let _ = this.drive(cx, Goal::Close);
            this.close_queued = true;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<S> std::fmt::Debug for ServerStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStream")
            .field("protocol_version", &self.conn.protocol_version())
            .field("handshaking", &self.conn.is_handshaking())
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}
