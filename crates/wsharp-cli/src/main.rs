//! `wsharp`: WebSocket command-line tool.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod serve;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use wsharp::{Config, Deflate, Limits, ServerBuilder};

/// WebSocket tool: servers and clients for testing and benchmarking.
#[derive(Debug, Parser)]
#[command(name = "wsharp", version, about)]
struct Cli {
    /// More logging (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server example: a browser page at / with an echo test and a chat, the
    /// /Echo and /Chat WebSocket services, and files from --root, on one port.
    ///
    /// Example: wsharp serve --listen 127.0.0.1:4649 --root ./public
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:4649")]
        listen: SocketAddr,
        /// Directory of files to serve beside the built-in page (default ./public; its own
        /// index.html replaces the page).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
    /// Run an echo server: every text message comes back as text, every binary as binary.
    ///
    /// Example: wsharp echo --listen 127.0.0.1:9001
    Echo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: SocketAddr,
        /// Largest message accepted, in bytes.
        #[arg(long, default_value_t = 64 << 20)]
        max_message_size: usize,
        /// Largest frame accepted, in bytes.
        #[arg(long, default_value_t = 16 << 20)]
        max_frame_size: usize,
        /// Refuse permessage-deflate (answer without extensions).
        #[arg(long)]
        no_compression: bool,
    },
}

/// Standard error that drops what it cannot write: a server whose log reader went away (a
/// closed pipe) must keep serving, not die on its next log line.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},hyper=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsharp: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { listen, root } => serve::serve(listen, root).await,
            Command::Echo {
                listen,
                max_message_size,
                max_frame_size,
                no_compression,
            } => {
                let limits = Limits::default()
                    .max_message_size(max_message_size)
                    .max_frame_size(max_frame_size);
                let server = ServerBuilder::new()
                    .config(Config::default().limits(limits))
                    .compression((!no_compression).then(Deflate::default));
                echo(listen, server).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsharp: {e}");
            ExitCode::from(1)
        }
    }
}

async fn echo(listen: SocketAddr, server: ServerBuilder) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!("echo server listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                continue;
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let mut ws = match server.accept(tcp).await {
                Ok(ws) => ws,
                Err(e) => {
                    tracing::debug!(%peer, "handshake failed: {e}");
                    return;
                }
            };
            while let Some(msg) = ws.recv().await {
                match msg {
                    Ok(msg) if msg.is_data() => {
                        if let Err(e) = ws.feed(msg).await {
                            tracing::debug!(%peer, "send failed: {e}");
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                }
            }
        });
    }
}
