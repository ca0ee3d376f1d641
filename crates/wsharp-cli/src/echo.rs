//! `wsharp echo`: every text message comes back as text, every binary as binary.

use std::net::SocketAddr;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tracing::Instrument;
use wsharp::tls::ServerTls;
use wsharp::{ServerBuilder, WebSocket};

use crate::exit::{Failure, code};

/// Serves echo connections on `listen` until the process ends.
pub(crate) async fn echo(
    listen: SocketAddr,
    server: ServerBuilder,
    tls: Option<ServerTls>,
) -> Result<(), Failure> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::new(code::FAILURE, format!("cannot listen on {listen}: {e}")))?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    tracing::info!(
        "echo server listening on {scheme}://{}",
        listener.local_addr()?
    );
    // Shared: each connection's task holds a pointer, not a copy of the settings.
    let server = std::sync::Arc::new(server);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                continue;
            }
        };
        let server = std::sync::Arc::clone(&server);
        let span = tracing::info_span!("conn", %peer);
        let _ = tcp.set_nodelay(true);
        // One task type per transport, so that a plain connection's task is not sized for TLS.
        match tls.clone() {
            None => spawn_session(span, Box::pin(async move { server.accept(tcp).await })),
            Some(tls) => spawn_session(
                span,
                Box::pin(async move { server.accept_tls(&tls, tcp).await }),
            ),
        }
    }
}

/// Spawns a connection's task: its handshake, then the echo. The handshake comes boxed, with
/// what it needs inside, so that its state is freed once done and the task keeps only a
/// pointer to it. The socket is bound by `let` (a `match` keeps its scrutinee's slot until the
/// arm ends) and lent to the session (moved into the session's future, it would take a slot
/// there as well): every slot of the task's future is a copy of the socket per connection.
fn spawn_session<S, H>(span: tracing::Span, handshake: Pin<Box<H>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Future<Output = wsharp::Result<WebSocket<S>>> + Send + 'static,
{
    spawn(span, async move {
        let mut ws = match handshake.await {
            Ok(ws) => ws,
            Err(e) => return tracing::info!("handshake failed: {e}"),
        };
        echo_session(&mut ws).await;
    });
}

/// Spawns a connection's task, in its span unless that is disabled (a disabled span is then
/// not entered at every poll).
fn spawn(span: tracing::Span, session: impl Future<Output = ()> + Send + 'static) {
    if span.is_disabled() {
        tokio::spawn(session);
    } else {
        tokio::spawn(session.instrument(span));
    }
}

/// Echoes text and binary messages until the connection ends.
async fn echo_session<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocket<S>) {
    tracing::debug!(compressed = ws.is_compressed(), "open");
    while let Some(msg) = ws.recv().await {
        match msg {
            Ok(msg) if msg.is_data() => {
                // `recv` stops reading while replies wait unread.
                if let Err(e) = ws.queue(msg) {
                    tracing::debug!("send failed: {e}");
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::info!("connection failed: {e}"),
        }
    }
    if let Some(status) = ws.close_status() {
        tracing::debug!(code = status.code.0, reason = %status.reason, "closed");
    }
}
