//! `wsharp`: WebSocket command-line tool.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wsharp::{Config, Deflate, Limits, ServerBuilder};

mod bench;
mod connect;
mod echo;
mod exit;
mod log;
mod serve;
mod tls;

use exit::{Failure, exit_codes};

/// mimalloc: size classes without per-allocation headers or alignment padding keep an idle
/// connection at about 840 bytes (glibc's malloc: about 1 280; docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// WebSocket tool: servers and clients for testing and benchmarking.
#[derive(Debug, Parser)]
#[command(name = "wsharp", version, about, after_help = exit_codes!())]
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
    /// Connect to a WebSocket server: input lines become text messages, received messages go
    /// to standard output. At the end of input it closes and prints what still arrives until
    /// the server's close; the exit code tells how the connection ended.
    Connect(connect::ConnectArgs),
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
        #[command(flatten)]
        tls: tls::TlsArgs,
        /// Serve https and wss with a throw-away certificate for localhost, 127.0.0.1 and ::1,
        /// made at start; its fingerprints are logged.
        #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
        tls_self_signed: bool,
        #[command(flatten)]
        auth: serve::AuthArgs,
        #[command(flatten)]
        cluster: serve::ClusterArgs,
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
        #[command(flatten)]
        tls: tls::TlsArgs,
    },
    /// Measure an echo server: connections that each keep messages in flight; prints
    /// messages/s, MB/s and latency percentiles (a table, or JSON with --json).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A client's own chatter stays quiet by default; servers say what they serve.
    let default_level = match cli.command {
        Command::Connect(_) | Command::Bench(_) => "warn",
        _ => "info",
    };
    log::init(cli.quiet, cli.verbose, default_level);
    let result = match cli.command {
        Command::Bench(args) => bench::bench(args),
        Command::Connect(args) => on_runtime(false, connect::connect(args)),
        Command::Serve {
            listen,
            root,
            tls,
            tls_self_signed,
            auth,
            cluster,
        } => on_runtime(true, async move {
            let tls = if tls_self_signed {
                Some(tls.with_client_auth(tls::self_signed()?)?)
            } else {
                tls.server_tls()?
            };
            let auth = auth.authenticator()?;
            let backplane = cluster.backplane()?;
            serve::serve(listen, root, tls, auth, backplane).await
        }),
        Command::Echo {
            listen,
            max_message_size,
            max_frame_size,
            no_compression,
            tls,
        } => {
            let limits = Limits::default()
                .max_message_size(max_message_size)
                .max_frame_size(max_frame_size);
            let server = ServerBuilder::new()
                .config(Config::default().limits(limits))
                .compression((!no_compression).then(Deflate::default));
            on_runtime(true, async move {
                let tls = tls.server_tls()?;
                echo::echo(listen, server, tls).await
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Runs `work` on a tokio runtime: all cores for servers, one thread for clients.
fn on_runtime(
    multi_thread: bool,
    work: impl Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()?;
    let result = runtime.block_on(work);
    // A read of standard input may still block in its thread: do not wait for it.
    runtime.shutdown_background();
    result
}
