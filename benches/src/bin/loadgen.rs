//! `loadgen --url ws://HOST:PORT/`: a WebSocket load generator on wsharp's client. Each of
//! `--connections` connections keeps `--depth` binary messages of `--size` bytes in flight
//! against an echo server (one more is sent for each echo received) for `--seconds`, then one
//! JSON line reports messages echoed, their rate, and the latency of each message (send to
//! echo) as p50/p99 in µs. Runs on a current-thread tokio runtime: one core.

use std::collections::VecDeque;
use std::time::Duration;

use clap::Parser;
use tokio::time::{Instant, timeout, timeout_at};
use wsharp::{ClientBuilder, CloseCode, Message, bytes::Bytes};

/// WebSocket echo load generator.
#[derive(Debug, Parser)]
struct Args {
    /// Echo server URL.
    #[arg(long)]
    url: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 16)]
    depth: usize,
    /// Length of the measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    messages: u64,
    latencies_us: Vec<u32>,
    error: bool,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args));
    Ok(())
}

async fn run(args: Args) {
    let payload = Bytes::from(vec![0x5a; args.size]);
    let mut sockets = Vec::new();
    let mut errors = 0;
    for _ in 0..args.connections {
        match ClientBuilder::new(args.url.as_str()).connect().await {
            Ok(ws) => sockets.push(ws),
            Err(e) => {
                eprintln!("loadgen: connect failed: {e}");
                errors += 1;
            }
        }
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(drive(ws, payload.clone(), args.depth, deadline)))
        .collect();
    let mut messages = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let tally = task.await.unwrap_or_else(|_| Tally {
            error: true,
            ..Tally::default()
        });
        messages += tally.messages;
        latencies.extend(tally.latencies_us);
        errors += u64::from(tally.error);
    }
    let secs = deadline.duration_since(start).as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or(0)
    };
    println!(
        "{{\"messages\":{messages},\"msgs_per_sec\":{:.0},\"mb_per_sec\":{:.2},\"p50_us\":{},\"p99_us\":{},\"errors\":{errors}}}",
        messages as f64 / secs,
        (messages * args.size as u64) as f64 / secs / 1e6,
        pct(0.50),
        pct(0.99),
    );
}

/// Keeps `depth` messages in flight on `ws` until `deadline`, then closes it.
async fn drive(
    mut ws: wsharp::WebSocket<wsharp::Transport>,
    payload: Bytes,
    depth: usize,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut sent = VecDeque::with_capacity(depth);
    let result: Result<(), Box<dyn std::error::Error + Send + Sync>> = async {
        for _ in 0..depth {
            ws.feed(Message::binary(payload.clone())).await?;
            sent.push_back(Instant::now());
        }
        ws.flush().await?;
        loop {
            let msg = match timeout_at(deadline, ws.recv()).await {
                Err(_) => return Ok(()),
                Ok(None) => return Err("the server closed the connection".into()),
                Ok(Some(msg)) => msg?,
            };
            let Message::Binary(data) = msg else { continue };
            if data.len() != payload.len() {
                return Err(format!("echo of {} bytes, sent {}", data.len(), payload.len()).into());
            }
            let sent_at = sent.pop_front().ok_or("an echo of nothing sent")?;
            let now = Instant::now();
            tally.messages += 1;
            tally
                .latencies_us
                .push(now.duration_since(sent_at).as_micros() as u32);
            ws.feed(Message::binary(payload.clone())).await?;
            sent.push_back(now);
            // Replies to a batch of echoes leave in one write.
            if !ws.connection().has_buffered_input() {
                ws.flush().await?;
            }
        }
    }
    .await;
    if let Err(e) = result {
        eprintln!("loadgen: connection failed: {e}");
        tally.error = true;
        return tally;
    }
    // Close politely, without letting a slow peer hold up the report.
    let _ = timeout(Duration::from_secs(2), async {
        ws.close(CloseCode::NORMAL, "").await?;
        while ws.recv().await.is_some() {}
        Ok::<_, wsharp::Error>(())
    })
    .await;
    tally
}
