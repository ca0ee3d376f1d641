//! The tokio-tungstenite client doing what `wsharp bench --mask-each` does, for the client
//! comparison: `connections` connections on one current-thread runtime, each keeping `depth`
//! messages in flight; the echoes one read brings are answered with as many messages in one
//! flush. Prints one JSON object: messages, seconds, msgs_per_sec, errors and
//! client_cpu_us_per_msg, named as in `wsharp bench --json`. A `wss://` URL goes over
//! tokio-rustls (aws-lc-rs), trusting the certificate given with `--ca`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::either::Either;

#[derive(Debug, Parser)]
struct Args {
    /// The echo server's URL.
    url: String,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 1024)]
    size: usize,
    #[arg(long, default_value_t = 16)]
    depth: usize,
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// The certificate (PEM) a `wss://` server is trusted by.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let figures = runtime.block_on(run(args));
    println!("{figures}");
}

type Socket = tokio_tungstenite::WebSocketStream<
    Either<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, tokio::net::TcpStream>,
>;

/// Connects over TCP with TCP_NODELAY, then TLS if `tls` is given, then the WebSocket.
async fn connect(url: &str, tls: Option<&tokio_rustls::TlsConnector>) -> Socket {
    let uri: tungstenite::http::Uri = url.parse().expect("a URL");
    let host = uri
        .host()
        .expect("a host")
        .trim_matches(['[', ']'])
        .to_owned();
    let default_port = if tls.is_some() { 443 } else { 80 };
    let port = uri.port_u16().unwrap_or(default_port);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let stream = match tls {
        Some(tls) => {
            let name = rustls_pki_types::ServerName::try_from(host).expect("a server name");
            Either::Left(tls.connect(name, tcp).await.expect("TLS handshake"))
        }
        None => Either::Right(tcp),
    };
    tokio_tungstenite::client_async(url, stream)
        .await
        .expect("WebSocket handshake")
        .0
}

/// A connector trusting the certificates in `ca`.
fn tls_connector(ca: &std::path::Path) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("the CA file") {
        roots.add(cert.expect("a PEM certificate")).expect("a CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn run(args: Args) -> serde_json::Value {
    let tls = args
        .url
        .starts_with("wss:")
        .then(|| tls_connector(args.ca.as_deref().expect("--ca for a wss:// URL")));
    let mut sockets = Vec::new();
    for _ in 0..args.connections {
        sockets.push(connect(&args.url, tls.as_ref()).await);
    }
    let payload = bytes::Bytes::from(vec![b'x'; args.size]);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let own_before = cpu_seconds(std::process::id());
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.duration);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let (payload, done, errors, depth) =
                (payload.clone(), done.clone(), errors.clone(), args.depth);
            tokio::spawn(async move {
                let result: Result<(), tungstenite::Error> = async {
                    for _ in 0..depth {
                        ws.feed(Message::Binary(payload.clone())).await?;
                    }
                    ws.flush().await?;
                    loop {
                        let first = match tokio::time::timeout_at(deadline, ws.next()).await {
                            Ok(Some(msg)) => msg?,
                            Ok(None) | Err(_) => return Ok(()),
                        };
                        let mut owed = u64::from(first.is_binary());
                        // Whatever else is already readable, without waiting.
                        while let Some(Some(msg)) = ws.next().now_or_never() {
                            owed += u64::from(msg?.is_binary());
                        }
                        done.fetch_add(owed, Ordering::Relaxed);
                        for _ in 0..owed {
                            ws.feed(Message::Binary(payload.clone())).await?;
                        }
                        ws.flush().await?;
                    }
                }
                .await;
                if result.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            })
        })
        .collect();
    for task in tasks {
        if task.await.is_err() {
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let messages = done.load(Ordering::Relaxed);
    let per_msg = |cpu: f64| (messages > 0).then(|| cpu / messages as f64 * 1e6);
    serde_json::json!({
        "messages": messages,
        "seconds": secs,
        "msgs_per_sec": (messages as f64 / secs).round(),
        "errors": errors.load(Ordering::Relaxed),
        "client_cpu_us_per_msg": per_msg(cpu_seconds(std::process::id()) - own_before),
    })
}

/// User + system CPU seconds of process `pid`, from /proc (100 ticks per second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}
