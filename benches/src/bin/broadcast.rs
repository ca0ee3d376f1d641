//! Broadcast: one text message to N sessions (default 10 000, 1 KiB), timed from the call to the
//! last delivery, with wsharp's `Sessions::broadcast` (the frame built once and shared) beside a
//! tokio-tungstenite server that loops over its sessions and sends to each. The clients run in
//! a second process (this binary with `--clients`), so both sides have their own descriptors;
//! times cross the process boundary as wall-clock nanoseconds.
//!
//! `cargo run --release -p wsharp-bench --bin broadcast -- [--sessions N] [--size B] [--rounds R]`

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, Command};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as TtMessage;
use wsharp::Message;
use wsharp::server::{Behavior, ServiceOptions, Session, WebSocketServer};

#[derive(Parser)]
struct Args {
    /// Sessions to broadcast to.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Broadcasts per server; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Internal: act as the client process for this URL.
    #[arg(long)]
    clients: Option<String>,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// The client process: `n` connections; for each round (a line on stdin), wait for one message
/// on every connection and print the first and last arrival times.
async fn clients(url: String, n: usize, rounds: usize) {
    let mut conns = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(500) {
        let batch = (chunk * 500..((chunk + 1) * 500).min(n)).map(|_| wsharp::connect(&url));
        for ws in futures_util::future::join_all(batch).await {
            conns.push(ws.expect("connect"));
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u128>();
    for mut ws in conns {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.recv().await {
                if m.is_data() && tx.send(now_ns()).is_err() {
                    break;
                }
            }
        });
    }
    println!("connected");
    for _ in 0..rounds {
        let (mut first, mut last) = (u128::MAX, 0);
        for _ in 0..n {
            let at = rx.recv().await.expect("a delivery");
            first = first.min(at);
            last = last.max(at);
        }
        println!("{first} {last}");
    }
}

struct Quiet;

impl Behavior for Quiet {
    async fn on_message(&mut self, _session: &Session, _message: Message) {}
}

async fn spawn_clients(
    url: &str,
    args: &Args,
) -> (
    Child,
    ChildStdin,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--clients",
            url,
            "--sessions",
            &args.sessions.to_string(),
            "--rounds",
            &args.rounds.to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the client process");
    let stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(180), lines.next_line()).await;
    assert!(
        matches!(ready, Ok(Ok(Some(ref l))) if l == "connected"),
        "clients did not connect: {ready:?}"
    );
    (child, stdin, lines)
}

/// Runs the rounds: `broadcast` sends one message to everyone; returns, per round, the time
/// from the call to the last delivery and the first-to-last spread.
async fn measure<F, Fut>(args: &Args, url: &str, broadcast: F) -> Vec<(Duration, Duration)>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let (_child, _stdin, mut lines) = spawn_clients(url, args).await;
    let mut out = Vec::new();
    for _ in 0..args.rounds {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = now_ns();
        broadcast().await;
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let (first, last) = line.split_once(' ').unwrap();
        let (first, last): (u128, u128) = (first.parse().unwrap(), last.parse().unwrap());
        out.push((
            Duration::from_nanos((last - started) as u64),
            Duration::from_nanos((last - first) as u64),
        ));
    }
    out
}

type TtSink = SplitSink<WebSocketStream<TcpStream>, TtMessage>;

async fn tungstenite_server() -> (String, Arc<tokio::sync::Mutex<Vec<TtSink>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let sinks = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let accepted = sinks.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let sinks = accepted.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (sink, mut stream) = ws.split();
                sinks.lock().await.push(sink);
                while let Some(Ok(_)) = stream.next().await {}
            });
        }
    });
    (url, sinks)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args = Args::parse();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(url) = &args.clients {
        rt.block_on(clients(url.clone(), args.sessions, args.rounds));
        return;
    }
    rt.block_on(async {
        let text = "x".repeat(args.size);

        let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
        server
            .add_service_with(
                "/b",
                ServiceOptions::default().ignore_extensions().send_queue(16),
                || Quiet,
            )
            .expect("a free path");
        server.start();
        let sessions = server.sessions("/b").unwrap();
        let url = format!("ws://{}/b", server.local_addr());
        let ours = measure(&args, &url, || {
            let report = sessions.broadcast(text.as_str()).unwrap();
            assert_eq!(report.queued, args.sessions);
            async {}
        })
        .await;
        server.stop().await;

        let (url, sinks) = tungstenite_server().await;
        let theirs = measure(&args, &url, || {
            let sinks = sinks.clone();
            let text = text.clone();
            async move {
                for sink in sinks.lock().await.iter_mut() {
                    let _ = sink.send(TtMessage::text(text.clone())).await;
                }
            }
        })
        .await;

        let n = args.sessions as u32;
        let (ours_last, ours_spread) = (
            median(ours.iter().map(|r| r.0).collect()),
            median(ours.iter().map(|r| r.1).collect()),
        );
        let (tt_last, tt_spread) = (
            median(theirs.iter().map(|r| r.0).collect()),
            median(theirs.iter().map(|r| r.1).collect()),
        );
        println!(
            "broadcast of {} B to {} sessions, median of {} rounds",
            args.size, args.sessions, args.rounds
        );
        println!("| server | call to last delivery | per recipient | first to last |");
        println!("| --- | --- | --- | --- |");
        println!(
            "| wsharp `Sessions::broadcast` | {ours_last:?} | {:?} | {ours_spread:?} |",
            ours_last / n
        );
        println!(
            "| tokio-tungstenite send loop | {tt_last:?} | {:?} | {tt_spread:?} |",
            tt_last / n
        );
        println!(
            "ratio (tokio-tungstenite / wsharp, call to last delivery): {:.2}",
            tt_last.as_secs_f64() / ours_last.as_secs_f64()
        );
        let _ = tokio::io::stdout().flush().await;
    });
}
