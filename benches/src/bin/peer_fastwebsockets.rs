//! `peer_fastwebsockets --listen ADDR`: an echo server on fastwebsockets, written as its
//! echo_server example is (hyper 1 serves the upgrade, a `FragmentCollector` reads whole
//! messages, text and binary frames are written back, auto_close and auto_pong on), on a
//! multi-thread tokio runtime with one worker thread. A peer for the `suite` benchmark.

use clap::Parser;
use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Echo server on fastwebsockets.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9003")]
    listen: std::net::SocketAddr,
}

fn main() -> std::io::Result<()> {
    wsharp_bench::serve_one_worker(Args::parse().listen, connection)
}

async fn connection(tcp: TcpStream) {
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service_fn(upgrade_request))
        .with_upgrades()
        .await;
}

async fn upgrade_request(
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, upgraded) = upgrade::upgrade(&mut req)?;
    // As in fastwebsockets' example: the echo task opts out of tokio's cooperative budget.
    tokio::spawn(async move {
        let _ = tokio::task::unconstrained(echo(upgraded)).await;
    });
    Ok(response)
}

async fn echo(upgraded: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = upgraded.await?;
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}
