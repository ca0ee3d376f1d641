//! `peer_tokio_websockets --listen ADDR`: an echo server on tokio-websockets, written as its
//! echo_server example is (`ServerBuilder::accept`, unlimited frame size and limits, text and
//! binary messages sent back, the task unconstrained by tokio's budget), on a multi-thread tokio
//! runtime with one worker thread. A peer for the `suite` benchmark. Feeding replies and flushing
//! once would not batch them: its stream flushes queued frames each time it is polled for the
//! next message, so every reply leaves in a write of its own.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_websockets::{Config, Limits, ServerBuilder};

/// Echo server on tokio-websockets.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9004")]
    listen: std::net::SocketAddr,
}

fn main() -> std::io::Result<()> {
    wsharp_bench::serve_one_worker(Args::parse().listen, |tcp| {
        tokio::task::unconstrained(echo(tcp))
    })
}

async fn echo(tcp: TcpStream) {
    let Ok((_request, mut ws)) = ServerBuilder::new()
        .config(Config::default().frame_size(usize::MAX))
        .limits(Limits::unlimited())
        .accept(tcp)
        .await
    else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}
