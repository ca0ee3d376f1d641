//! `wsharp echo`: every text message comes back as text, every binary as binary.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tracing::Instrument;
use wsharp::ServerBuilder;

use crate::exit::{Failure, code};

/// Serves echo connections on `listen` until the process ends.
pub(crate) async fn echo(listen: SocketAddr, server: ServerBuilder) -> Result<(), Failure> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::new(code::FAILURE, format!("cannot listen on {listen}: {e}")))?;
    tracing::info!("echo server listening on ws://{}", listener.local_addr()?);
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
        let session = async move {
            let _ = tcp.set_nodelay(true);
            // Boxed: the handshake's state is freed once it is done, not kept in the task.
            let mut ws = match Box::pin(server.accept(tcp)).await {
                Ok(ws) => ws,
                Err(e) => {
                    tracing::info!("handshake failed: {e}");
                    return;
                }
            };
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
        };
        // A disabled span (logging below info) is not entered at every poll.
        if span.is_disabled() {
            tokio::spawn(session);
        } else {
            tokio::spawn(session.instrument(span));
        }
    }
}
