//! TLS for the blocking layer: rustls' own blocking stream over a `TcpStream`, with the
//! handshake bounded by the handshake timeout.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use rustls::{ClientConnection, ServerConnection, StreamOwned};

use super::{Stream, is_timeout, remaining};
use crate::error::{Error, Result};

/// A TLS stream over TCP for the blocking layer: `rustls::StreamOwned` with a client or server
/// connection.
pub type TlsStream<C> = StreamOwned<C, TcpStream>;

macro_rules! tls_stream {
    ($conn:ty) => {
        impl Stream for StreamOwned<$conn, TcpStream> {
            fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
                self.sock.set_read_timeout(timeout)
            }

            fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
                self.sock.set_write_timeout(timeout)
            }

            /// Sends TLS's close_notify, then the TCP FIN.
            fn shutdown_write(&mut self) -> std::io::Result<()> {
                self.conn.send_close_notify();
                let _ = self.flush();
                self.sock.shutdown(Shutdown::Write)
            }
        }
    };
}

tls_stream!(ClientConnection);
tls_stream!(ServerConnection);

/// Runs a TLS handshake to its end before `deadline`.
fn complete<C>(stream: &mut StreamOwned<C, TcpStream>, deadline: Instant) -> Result<()>
where
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<C::Data>>,
    C: Side,
{
    while stream.conn.is_handshaking() {
        let left = remaining(deadline)?;
        stream.sock.set_read_timeout(Some(left))?;
        stream.sock.set_write_timeout(Some(left))?;
        match stream.conn.complete_io(&mut stream.sock) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Err(Error::HandshakeTimeout),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The connection types a handshake runs on.
trait Side {
    type Data;
}

impl Side for ClientConnection {
    type Data = rustls::client::ClientConnectionData;
}

impl Side for ServerConnection {
    type Data = rustls::server::ServerConnectionData;
}

/// Connects TLS over `tcp` for `host` with `tls`'s settings, before `deadline`.
#[cfg(feature = "client")]
pub(super) fn connect(
    tls: &crate::tls::ClientTls,
    host: &str,
    tcp: TcpStream,
    deadline: Instant,
) -> Result<TlsStream<ClientConnection>> {
    let config = tls.build()?;
    let name = crate::tls::server_name(host)?;
    let conn = ClientConnection::new(config, name).map_err(crate::tls::TlsError::from)?;
    let mut stream = StreamOwned::new(conn, tcp);
    complete(&mut stream, deadline)?;
    Ok(stream)
}

/// Accepts TLS on `tcp` with `tls`, before `deadline`; returns the stream and what the request
/// should carry about it.
#[cfg(feature = "server")]
pub(super) fn accept(
    tls: &crate::tls::ServerTls,
    tcp: TcpStream,
    deadline: Instant,
) -> Result<(TlsStream<ServerConnection>, http::Extensions)> {
    let conn = ServerConnection::new(tls.config()).map_err(crate::tls::TlsError::from)?;
    let mut stream = StreamOwned::new(conn, tcp);
    complete(&mut stream, deadline)?;
    let mut extensions = http::Extensions::new();
    extensions.insert(crate::tls::Secure);
    if let Some(certs) = stream.conn.peer_certificates() {
        extensions.insert(crate::tls::PeerCertificates(
            certs.iter().cloned().collect(),
        ));
    }
    Ok((stream, extensions))
}
