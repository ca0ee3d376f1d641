//! [`Transport`]: the stream a blocking client connection runs over.

use std::io::{IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use super::Stream;

/// The byte stream under a blocking client connection: plain TCP for `ws://`, TLS over TCP
/// for `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Transport {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: a TLS session's state is large).
    #[cfg(feature = "tls")]
    Tls(Box<super::TlsStream<rustls::ClientConnection>>),
}

impl Transport {
    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Tcp(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(s) => &s.sock,
        }
    }

    /// The TLS session of a `wss://` connection.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match self {
            Self::Tcp(_) => None,
            Self::Tls(s) => Some(&s.conn),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s.flush(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.flush(),
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
        match self {
            Self::Tcp(s) => s.shutdown(Shutdown::Write),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.shutdown_write(),
        }
    }
}
