//! [`Transport`]: the stream a client connection runs over.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::socket::WebSocket;

/// The byte stream under a connection that [`connect`](crate::connect) opened: plain TCP for
/// `ws://`, TLS over TCP for `wss://`; and the URL it was opened to.
#[derive(Debug)]
pub struct Transport {
    stream: Io,
    url: Uri,
}

#[derive(Debug)]
enum Io {
    Tcp(TcpStream),
    /// Boxed: a TLS session's state is large.
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Transport {
    pub(crate) fn tcp_to(tcp: TcpStream, url: Uri) -> Self {
        Self {
            stream: Io::Tcp(tcp),
            url,
        }
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls_to(tls: tokio_rustls::client::TlsStream<TcpStream>, url: Uri) -> Self {
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
            Io::Tls(s) => s.get_ref().0,
        }
    }

    /// The TLS session, for a `wss://` connection: its protocol version, cipher suite, ALPN
    /// protocol and the server's certificates.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match &self.stream {
            Io::Tcp(_) => None,
            Io::Tls(s) => Some(s.get_ref().1),
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
    /// # async fn run() -> wsharp::Result<()> {
    /// let ws = wsharp::ClientBuilder::new("ws://127.0.0.1:9001/chat")
    ///     .follow_redirects(5)
    ///     .connect()
    ///     .await?;
    /// println!("connected to {}", ws.url());
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> &Uri {
        self.get_ref().url()
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().stream {
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().stream {
            Io::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Io::Tcp(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
