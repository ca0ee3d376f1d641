//! [`Transport`]: the stream a blocking client connection runs over.

use std::io::{IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use http::Uri;

use super::{Stream, WebSocket};

/// The byte stream under a blocking client connection: plain TCP for `ws://`, TLS over TCP
/// for `wss://`; and the URL it was opened to.
#[derive(Debug)]
pub struct Transport {
    stream: Io,
    url: Uri,
}

// Built only by the client.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
#[derive(Debug)]
enum Io {
    Tcp(TcpStream),
    /// Boxed: a TLS session's state is large.
    #[cfg(feature = "tls")]
    Tls(Box<super::TlsStream<rustls::ClientConnection>>),
}

impl Transport {
    #[cfg(feature = "client")]
    pub(crate) fn tcp_to(tcp: TcpStream, url: Uri) -> Self {
        Self {
            stream: Io::Tcp(tcp),
            url,
        }
    }

    #[cfg(all(feature = "client", feature = "tls"))]
    pub(crate) fn tls_to(tls: super::TlsStream<rustls::ClientConnection>, url: Uri) -> Self {
        Self {
            stream: Io::Tls(Box::new(tls)),
            url,
        }
    }

    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match &self.stream {
            Io::Tcp(s) => s,
            #[cfg(feature = "tls")]
            Io::Tls(s) => &s.sock,
        }
    }

    /// The TLS session of a `wss://` connection.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match &self.stream {
            Io::Tcp(_) => None,
            Io::Tls(s) => Some(&s.conn),
        }
    }

    /// The URL connected to, after any redirects, without user-info (websocket-sharp's `Url`).
    pub fn url(&self) -> &Uri {
        &self.url
    }
}

impl WebSocket<Transport> {
    /// The URL connected to, after any redirects (websocket-sharp's `Url`); see
    /// [`Transport::url`].
    ///
    /// ```no_run
    /// # fn run() -> wsharp::Result<()> {
    /// let ws = wsharp::blocking::connect("ws://127.0.0.1:9001/chat")?;
    /// assert_eq!(ws.url().path(), "/chat");
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> &Uri {
        self.get_ref().url()
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.stream {
            Io::Tcp(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.stream {
            Io::Tcp(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match &mut self.stream {
            Io::Tcp(s) => s.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.stream {
            Io::Tcp(s) => s.flush(),
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.flush(),
        }
    }
}

impl Stream for Transport {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }

    fn shutdown_write(&mut self) -> std::io::Result<()> {
        match &mut self.stream {
            Io::Tcp(s) => s.shutdown(Shutdown::Write),
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.shutdown_write(),
        }
    }
}
