//! The tokio-tungstenite client doing what `wsharp bench --mask-each` does, for the client
//! comparison: `connections` connections on one current-thread runtime, each keeping `depth`
//! messages in flight; the echoes one read brings are answered with as many messages in one
//! flush. Prints one JSON object: messages, seconds, msgs_per_sec, errors and
//! client_cpu_us_per_msg, named as in `wsharp bench --json`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};

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

async fn run(args: Args) -> serde_json::Value {
    let mut sockets = Vec::new();
    for _ in 0..args.connections {
        let (ws, _) = tokio_tungstenite::connect_async(args.url.as_str())
            .await
            .expect("connect");
        sockets.push(ws);
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
