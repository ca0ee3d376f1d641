//! WebSockets without an async runtime: the same sans-IO core driven over `std::io` streams.
//!
//! [`connect`] / [`ClientBuilder::connect_blocking`] open a client connection over
//! `std::net::TcpStream`; [`accept`] / [`ServerBuilder::accept_blocking`] upgrade a stream a
//! `std::net::TcpListener` accepted. Both give a [`WebSocket`] whose `recv`, `send` and `close`
//! block the calling thread. Limits, permessage-deflate, the handshake timeout and the close
//! timeout behave exactly as in the async layer.
//!
//! ```no_run
//! # fn run() -> wsharp::Result<()> {
//! let mut ws = wsharp::blocking::connect("ws://127.0.0.1:9001/echo")?;
//! ws.send("hello")?;
//! if let Some(reply) = ws.recv() {
//!     println!("{:?}", reply?);
//! }
//! ws.close(wsharp::CloseCode::NORMAL, "done")?;
//! while ws.recv().is_some() {}
//! # Ok(()) }
//! ```
//!
//! A server, one thread per connection:
//! ```no_run
//! # fn run() -> wsharp::Result<()> {
//! let listener = std::net::TcpListener::bind("127.0.0.1:9001")?;
//! for tcp in listener.incoming() {
//!     std::thread::spawn(move || {
//!         let Ok(mut ws) = wsharp::blocking::accept(tcp?) else { return Ok(()) };
//!         while let Some(Ok(msg)) = ws.recv() {
//!             if msg.is_data() {
//!                 ws.send(msg)?;
//!             }
//!         }
//!         Ok::<_, wsharp::Error>(())
//!     });
//! }
//! # Ok(()) }
//! ```

mod socket;
#[cfg(feature = "tls")]
mod tls;
mod transport;

pub use socket::WebSocket;
#[cfg(feature = "tls")]
pub use tls::TlsStream;
pub use transport::Transport;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;
#[cfg(any(feature = "client", feature = "server"))]
use std::time::Instant;

#[cfg(any(feature = "client", feature = "server"))]
use bytes::BytesMut;
#[cfg(any(feature = "client", feature = "server"))]
use wsharp_proto::handshake::HeadReader;

#[cfg(feature = "client")]
use crate::client::{Attempts, ClientBuilder, error_body_len, finish_handshake, host_port};
#[cfg(feature = "server")]
use crate::server::{ServerBuilder, encode_refusal, refusal_for};
#[cfg(any(feature = "client", feature = "server"))]
use {
    crate::error::{Error, Result},
    http::Request,
    wsharp_proto::handshake::HandshakeError,
};
#[cfg(feature = "client")]
use {
    std::net::ToSocketAddrs,
    wsharp_proto::handshake::{ClientHandshake, MAX_ERROR_BODY},
};
#[cfg(feature = "server")]
use {
    wsharp_proto::Limits,
    wsharp_proto::handshake::{encode_response, parse_request},
};

/// A byte stream the blocking layer can drive: `Read + Write`, plus the two socket controls it
/// needs to bound waits and to half-close.
///
/// Implemented for `TcpStream` and (on Unix) `UnixStream`. For a stream without timeouts, keep
/// the defaults: waits are then unbounded (the handshake and close timeouts cannot fire).
pub trait Stream: Read + Write {
    /// Bounds the next reads (`None`: no bound), as `TcpStream::set_read_timeout` does.
    ///
    /// # Errors
    /// As the socket reports them.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Bounds the next writes (`None`: no bound).
    ///
    /// # Errors
    /// As the socket reports them.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Closes the writing direction (sends FIN), keeping the reading one open.
    ///
    /// # Errors
    /// As the socket reports them.
    fn shutdown_write(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        Self::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        Self::set_write_timeout(self, timeout)
    }

    fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        Self::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        Self::set_write_timeout(self, timeout)
    }

    fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Opens a WebSocket to `url` with default settings, blocking until the handshake is done.
///
/// # Errors
/// See [`ClientBuilder::connect_blocking`].
#[cfg(feature = "client")]
pub fn connect(url: &str) -> Result<WebSocket<Transport>> {
    ClientBuilder::new(url).connect_blocking()
}

/// Performs the server side of the opening handshake on `stream` with default settings.
///
/// # Errors
/// See [`ServerBuilder::accept_blocking`].
#[cfg(feature = "server")]
pub fn accept<S: Stream>(stream: S) -> Result<WebSocket<S>> {
    ServerBuilder::new().accept_blocking(stream)
}

/// Time left until `deadline`, or a handshake timeout once it has passed.
#[cfg(any(feature = "client", feature = "server"))]
fn remaining(deadline: Instant) -> Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(Error::HandshakeTimeout)
}

/// A read or write that failed because its timeout ran out.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Writes all of `bytes` before `deadline`.
#[cfg(any(feature = "client", feature = "server"))]
fn write_before<S: Stream>(stream: &mut S, bytes: &[u8], deadline: Instant) -> Result<()> {
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    match stream.write_all(bytes).and_then(|()| stream.flush()) {
        Err(e) if is_timeout(&e) => Err(Error::HandshakeTimeout),
        other => Ok(other?),
    }
}

/// Reads into `reader` until it holds a whole head, before `deadline`.
#[cfg(any(feature = "client", feature = "server"))]
fn read_head<S: Stream>(
    stream: &mut S,
    reader: &mut HeadReader,
    deadline: Instant,
) -> Result<BytesMut> {
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(head) = reader.poll_head()? {
            return Ok(head);
        }
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed during the handshake",
                )
                .into());
            }
            Ok(n) => reader.buffer().extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(Error::HandshakeTimeout),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads the start of a refusal's body after its head, as the async client does: what came with
/// the head, and for a `Content-Length` body more up to [`MAX_ERROR_BODY`], before `deadline`.
#[cfg(feature = "client")]
fn read_error_body<S: Stream>(
    stream: &mut S,
    headers: &http::HeaderMap,
    mut received: BytesMut,
    deadline: Instant,
) -> bytes::Bytes {
    let Some(want) = error_body_len(headers) else {
        received.truncate(MAX_ERROR_BODY);
        return received.freeze();
    };
    let mut chunk = [0u8; 4096];
    while received.len() < want {
        let Ok(left) = remaining(deadline) else {
            break;
        };
        if stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        // Never more than the body still wanted: bytes past the cap stay unread.
        let room = (want - received.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    received.truncate(want);
    received.freeze()
}

/// Clears the timeouts the handshake set.
#[cfg(any(feature = "client", feature = "server"))]
fn clear_timeouts<S: Stream>(stream: &S) -> Result<()> {
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    Ok(())
}

#[cfg(feature = "client")]
impl ClientBuilder {
    /// Connects over TCP (and TLS for `wss://`, with [`tls`](Self::tls)'s settings) and
    /// performs the opening handshake, blocking the calling thread, all within
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout). Every address the host
    /// resolves to is tried in turn.
    ///
    /// ```no_run
    /// # fn run() -> wsharp::Result<()> {
    /// let mut ws = wsharp::ClientBuilder::new("ws://127.0.0.1:9001/")
    ///     .compression(wsharp::Deflate::default())
    ///     .connect_blocking()?;
    /// ws.send("hi")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_blocking(self) -> Result<WebSocket<Transport>> {
        self.connect_blocking_with_response().map(|(ws, _)| ws)
    }

    /// Connects as [`connect_blocking`](Self::connect_blocking) does and also returns the
    /// server's 101 response.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_blocking_with_response(
        self,
    ) -> Result<(WebSocket<Transport>, http::Response<()>)> {
        let mut attempts = Attempts::new(&self)?;
        let proxies = self.proxy_settings_checked()?;
        let deadline = Instant::now() + self.config.handshake_timeout;
        loop {
            let request = attempts.request();
            let (host, port) = host_port(request.uri());
            let tcp = match proxies.resolve(request.uri()) {
                Some(proxy) => {
                    proxy.connect_blocking(&host, port, &self.config.limits, deadline)?
                }
                None => tcp_to(&host, port, deadline)?,
            };
            tcp.set_nodelay(self.no_delay)?;
            let transport = match request.uri().scheme_str() {
                #[cfg(feature = "tls")]
                Some("wss") => {
                    let tls = self.tls.clone().unwrap_or_default();
                    let tls = tls::connect(&tls, &host, tcp, deadline)?;
                    Transport::tls_to(tls, request.uri().clone())
                }
                _ => Transport::tcp_to(tcp, request.uri().clone()),
            };
            match handshake(transport, &request, &self, deadline) {
                Ok((ws, mut response)) => {
                    attempts.accepted(&mut response);
                    return Ok((ws, response));
                }
                Err(e) => attempts.refused(e)?,
            }
        }
    }

    /// Performs the opening handshake over a stream the caller opened (a TLS stream, a proxy
    /// tunnel), blocking, within [`Config::handshake_timeout`](crate::Config::handshake_timeout).
    /// One stream carries one request: a 401 challenge is not answered on it (pre-authenticated
    /// Basic and a remembered Digest challenge are sent).
    ///
    /// # Errors
    /// As [`connect_blocking`](Self::connect_blocking), less the TCP part.
    pub fn connect_blocking_on<S: Stream>(self, stream: S) -> Result<WebSocket<S>> {
        let mut attempts = Attempts::new(&self)?;
        let request = attempts.request();
        let deadline = Instant::now() + self.config.handshake_timeout;
        match handshake(stream, &request, &self, deadline) {
            Ok((ws, mut response)) => {
                attempts.accepted(&mut response);
                Ok(ws)
            }
            Err(e) => Err(attempts.single_refusal(e)),
        }
    }
}

/// A TCP connection to the first address of `host` that answers, before `deadline`.
#[cfg(feature = "client")]
fn tcp_to(host: &str, port: u16, deadline: Instant) -> Result<TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(tcp) => return Ok(tcp),
            Err(e) if is_timeout(&e) => last = Some(Error::HandshakeTimeout),
            Err(e) => last = Some(e.into()),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )
        .into()
    }))
}

#[cfg(feature = "client")]
fn handshake<S: Stream>(
    mut stream: S,
    request: &Request<()>,
    settings: &ClientBuilder,
    deadline: Instant,
) -> Result<(WebSocket<S>, http::Response<()>)> {
    let (bytes, expect) = ClientHandshake::start(request)?;
    write_before(&mut stream, &bytes, deadline)?;
    let mut reader = HeadReader::new(settings.config.limits.max_handshake_size);
    let head = read_head(&mut stream, &mut reader, deadline)?;
    let (conn, protocol, response) = match finish_handshake(
        &expect,
        &head,
        request,
        settings.config.clone(),
        settings.compression,
    ) {
        Ok(agreed) => agreed,
        Err(Error::Handshake(HandshakeError::UnexpectedStatus {
            status, headers, ..
        })) => {
            let body = read_error_body(&mut stream, &headers, reader.into_rest(), deadline);
            let _ = clear_timeouts(&stream);
            return Err(HandshakeError::UnexpectedStatus {
                status,
                headers,
                body,
            }
            .into());
        }
        Err(e) => return Err(e),
    };
    clear_timeouts(&stream)?;
    let ws = WebSocket::from_connection(stream, conn, &reader.into_rest(), protocol);
    Ok((ws, response))
}

#[cfg(feature = "server")]
impl ServerBuilder {
    /// Reads the upgrade request from `stream` and answers it, blocking the calling thread,
    /// within [`Config::handshake_timeout`](crate::Config::handshake_timeout): 101 and a
    /// [`WebSocket`], or the fitting 4xx (or the [`on_request`](Self::on_request) hook's
    /// refusal) with `Connection: close` and an error.
    ///
    /// # Errors
    /// [`Error::Handshake`] for a refused request, [`Error::HandshakeTimeout`], [`Error::Io`].
    pub fn accept_blocking<S: Stream>(&self, stream: S) -> Result<WebSocket<S>> {
        let deadline = Instant::now() + self.get_config().handshake_timeout;
        self.accept_blocking_until(stream, deadline, http::Extensions::new())
    }

    /// Runs the TLS handshake with `tls` on `tcp`, then accepts the upgrade as
    /// [`accept_blocking`](Self::accept_blocking) does, both within the handshake timeout. The
    /// client's certificates are in the request's extensions for the hook, as with
    /// [`accept_tls`](Self::accept_tls).
    ///
    /// # Errors
    /// `Error::Tls` for a failed TLS handshake, and as
    /// [`accept_blocking`](Self::accept_blocking).
    #[cfg(feature = "tls")]
    pub fn accept_blocking_tls(
        &self,
        tls: &crate::tls::ServerTls,
        tcp: TcpStream,
    ) -> Result<WebSocket<TlsStream<rustls::ServerConnection>>> {
        let deadline = Instant::now() + self.get_config().handshake_timeout;
        let (stream, extensions) = tls::accept(tls, tcp, deadline)?;
        self.accept_blocking_until(stream, deadline, extensions)
    }

    fn accept_blocking_until<S: Stream>(
        &self,
        mut stream: S,
        deadline: Instant,
        extensions: http::Extensions,
    ) -> Result<WebSocket<S>> {
        let config = self.get_config();
        let request = read_request(&mut stream, &config.limits, deadline)?;
        let (mut request, rest) = match request {
            Ok(parsed) => parsed,
            Err(e) => return Err(refuse(&mut stream, &e, None, deadline)),
        };
        request.extensions_mut().extend(extensions);
        let (response, conn, protocol) = match self.decide(&request) {
            Ok(decision) => decision,
            Err(refusal) => {
                let e = HandshakeError::Refused(refusal.response().status());
                return Err(refuse(&mut stream, &e, Some(refusal), deadline));
            }
        };
        let mut out = BytesMut::with_capacity(256);
        encode_response(&response, b"", &mut out);
        write_before(&mut stream, &out, deadline)?;
        clear_timeouts(&stream)?;
        tracing::debug!(uri = %request.uri(), protocol = ?protocol, "upgrade accepted");
        Ok(WebSocket::from_connection(stream, conn, &rest, protocol))
    }
}

#[cfg(feature = "server")]
type Parsed = std::result::Result<(Request<()>, BytesMut), HandshakeError>;

/// Reads and parses the request head; a malformed one is `Ok(Err(..))`, to be refused.
#[cfg(feature = "server")]
fn read_request<S: Stream>(stream: &mut S, limits: &Limits, deadline: Instant) -> Result<Parsed> {
    let mut reader = HeadReader::new(limits.max_handshake_size);
    let head = match read_head(stream, &mut reader, deadline) {
        Ok(head) => head,
        Err(Error::Handshake(e)) => return Ok(Err(e)),
        Err(e) => return Err(e),
    };
    Ok(parse_request(&head, limits).map(|request| (request, reader.into_rest())))
}

/// Writes the refusal (best effort), half-closes, and returns the error to report.
#[cfg(feature = "server")]
fn refuse<S: Stream>(
    stream: &mut S,
    error: &HandshakeError,
    custom: Option<crate::Refusal>,
    deadline: Instant,
) -> Error {
    let out = encode_refusal(refusal_for(error, custom));
    let _ = write_before(stream, &out, deadline + Duration::from_secs(1));
    let _ = stream.shutdown_write();
    Error::Handshake(error.clone())
}
