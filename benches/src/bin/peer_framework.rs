//! `peer_framework [--http] --listen ADDR`: the server framework as a websocket-sharp user
//! writes it: an echo [`Behavior`] mounted at `/` on a [`WebSocketServer`] (or, with `--http`,
//! on an [`HttpServer`]), on a multi-thread tokio runtime with one worker thread, as the other
//! peers of the `suite` benchmark run.

use clap::Parser;
use wsharp::Message;
use wsharp::http_server::{HttpServer, HttpServerOptions};
use wsharp::server::{Behavior, Session, WebSocketServer};

/// Echo service on wsharp's server framework.
#[derive(Debug, Parser)]
struct Args {
    /// Mount the service on an HttpServer instead of a WebSocketServer.
    #[arg(long)]
    http: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9003")]
    listen: std::net::SocketAddr,
}

/// websocket-sharp's `Echo` behaviour: every text or binary message goes back.
struct Echo;

impl Behavior for Echo {
    async fn on_message(&mut self, session: &Session, message: Message) {
        let _ = session.send(message).await;
    }
}

fn main() -> wsharp::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if args.http {
            let server = HttpServer::bind(args.listen, HttpServerOptions::default()).await?;
            server.add_service("/", || Echo)?;
            server.start();
            std::future::pending::<()>().await;
        } else {
            let server = WebSocketServer::bind(args.listen).await?;
            server.add_service("/", || Echo)?;
            server.start();
            std::future::pending::<()>().await;
        }
        Ok(())
    })
}
