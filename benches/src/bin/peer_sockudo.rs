//! `peer_sockudo --listen ADDR`: an echo server on sockudo-ws, written as its simple_echo example
//! is (its handshake helpers, then a `WebSocketStream` whose text and binary messages are sent
//! back; pings are answered by the stream), except that replies are fed (corked) while more
//! messages are ready and flushed before waiting, as tokio-tungstenite's `forward` does (sending
//! each reply with its own flush ran at a seventh of the rate). On a multi-thread tokio runtime
//! with one worker thread. A peer for the `suite` benchmark.

use bytes::BytesMut;
use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use sockudo_ws::handshake::{build_response, generate_accept_key, parse_request};
use sockudo_ws::protocol::Message;
use sockudo_ws::{Config, WebSocketStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Echo server on sockudo-ws.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9005")]
    listen: std::net::SocketAddr,
}

fn main() -> std::io::Result<()> {
    wsharp_bench::serve_one_worker(Args::parse().listen, echo)
}

async fn echo(tcp: TcpStream) {
    let Some(tcp) = handshake(tcp).await else {
        return;
    };
    let mut ws = WebSocketStream::server(tcp, Config::default());
    loop {
        let next = match ws.next().now_or_never() {
            Some(next) => next,
            None => {
                if ws.flush().await.is_err() {
                    return;
                }
                ws.next().await
            }
        };
        let Some(Ok(msg)) = next else { return };
        let sent = match msg {
            Message::Text(_) | Message::Binary(_) => ws.feed(msg).await,
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Reads the upgrade request and answers it, as the example does.
async fn handshake(mut tcp: TcpStream) -> Option<TcpStream> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if tcp.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
        if let Some((req, _)) = parse_request(&buf).ok()? {
            let response = build_response(&generate_accept_key(req.key), None, None);
            tcp.write_all(&response).await.ok()?;
            return Some(tcp);
        }
    }
}
