//! `peer_tungstenite --listen ADDR`: an echo server on tokio-tungstenite, written as its
//! echo-server example is (`accept_async`, then text and binary messages forwarded back), on a
//! multi-thread tokio runtime with one worker thread. A peer for the `suite` benchmark.

use clap::Parser;
use futures_util::{StreamExt, TryStreamExt, future};
use tokio::net::TcpStream;

/// Echo server on tokio-tungstenite.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9002")]
    listen: std::net::SocketAddr,
}

fn main() -> std::io::Result<()> {
    wsharp_bench::serve_one_worker(Args::parse().listen, echo)
}

async fn echo(tcp: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
