//! `wsharp echo`: every text message comes back as text, every binary as binary.

use std::net::SocketAddr;

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
        // The handshakes are boxed: their state is freed once done, not kept in the task.
        match tls.clone() {
            None => spawn(span, async move {
                match Box::pin(server.accept(tcp)).await {
                    Ok(ws) => echo_session(ws).await,
                    Err(e) => tracing::info!("handshake failed: {e}"),
                }
            }),
            Some(tls) => spawn(span, async move {
                match Box::pin(server.accept_tls(&tls, tcp)).await {
                    Ok(ws) => echo_session(ws).await,
                    Err(e) => tracing::info!("handshake failed: {e}"),
                }
            }),
        }
    }
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
async fn echo_session<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>) {
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
