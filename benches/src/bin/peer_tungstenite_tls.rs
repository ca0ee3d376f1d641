//! `peer_tungstenite_tls --listen ADDR --tls-cert FILE --tls-key FILE`: tokio-tungstenite's echo
//! server over tokio-rustls (the same rustls and aws-lc-rs provider as wsharp's), as its users
//! write it: `TlsAcceptor::accept`, then `accept_async`, then text and binary messages forwarded
//! back; on a multi-thread tokio runtime with one worker thread. A TLS peer of the `suite`.

use std::sync::{Arc, OnceLock};

use clap::Parser;
use futures_util::{StreamExt, TryStreamExt, future};
use tokio::net::TcpStream;

/// tokio-tungstenite echo server over TLS.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9443")]
    listen: std::net::SocketAddr,
    /// The certificate chain (PEM).
    #[arg(long)]
    tls_cert: std::path::PathBuf,
    /// Its key (PEM).
    #[arg(long)]
    tls_key: std::path::PathBuf,
}

static TLS: OnceLock<tokio_rustls::TlsAcceptor> = OnceLock::new();

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = wsharp_bench::tls_server_config(&args.tls_cert, &args.tls_key)?;
    let _ = TLS.set(tokio_rustls::TlsAcceptor::from(Arc::new(config)));
    wsharp_bench::serve_one_worker(args.listen, echo)
}

async fn echo(tcp: TcpStream) {
    let Some(acceptor) = TLS.get() else {
        return;
    };
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let Ok(ws) = tokio_tungstenite::accept_async(tls).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
