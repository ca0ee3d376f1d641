//! `wsharp bench URL`: an echo load generator. Each connection keeps `--depth` messages in
//! flight (one more is sent for each echo), on a current-thread runtime: one core. Frames are
//! masked once and sent as they are (pre-built), unless `--mask-each` sends every message
//! through the client's normal path with a fresh masking key.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout, timeout_at};
use wsharp::bytes::Bytes;
use wsharp::proto::{Config, Connection, Role};
use wsharp::{ClientBuilder, CloseCode, Deflate, Message};

use crate::exit::{Failure, code};

/// Options of `wsharp bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  wsharp bench ws://127.0.0.1:9001/\n",
    "  wsharp bench -c 256 -s 16 -d 16 --duration 10 ws://127.0.0.1:9001/\n",
    "  wsharp bench --count 100000 --json --server-pid $(pidof wsharp) ws://127.0.0.1:9001/\n",
))]
pub(crate) struct BenchArgs {
    /// The echo server's URL.
    url: String,
    /// Concurrent connections.
    #[arg(short, long, default_value_t = 16)]
    connections: usize,
    /// Payload bytes per message.
    #[arg(short, long, default_value_t = 1024)]
    size: usize,
    /// Messages in flight per connection (pipelining depth).
    #[arg(short, long, default_value_t = 16)]
    depth: usize,
    /// Seconds to run (default 3; with --count, an optional upper bound).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Stop after this many echoed messages in all.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Send text messages instead of binary.
    #[arg(long)]
    text: bool,
    /// Offer permessage-deflate without context takeover in either direction (messages then
    /// go through the client's send path, as with --mask-each).
    #[arg(long)]
    compression: bool,
    /// Send every message through the client's send path (a fresh masking key each, as a real
    /// client does) instead of writing frames masked once: measures the client, not the server.
    #[arg(long)]
    mask_each: bool,
    /// Measure opening handshakes instead: each connection slot opens a connection, completes
    /// the close handshake, and starts over; reports handshakes per second.
    #[arg(long)]
    handshakes: bool,
    /// Also report the server's CPU time (from /proc/PID/stat) per message.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// For wss://: also trust the CA certificates in this PEM file.
    #[arg(long = "ca", value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// For wss://: accept any server certificate (benchmarks against throw-away ones).
    #[arg(long)]
    insecure: bool,
}

/// What the connections measured together.
struct Tally {
    messages: Arc<AtomicU64>,
    latencies: Histogram<u64>,
    errors: u64,
}

/// Runs the benchmark and prints its figures.
pub(crate) fn bench(args: BenchArgs) -> Result<(), Failure> {
    if args.depth == 0 || args.connections == 0 {
        return Err(Failure::new(
            code::USAGE,
            "--connections and --depth must be at least 1",
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: BenchArgs) -> Result<(), Failure> {
    let mut tls = wsharp::tls::ClientTls::new();
    if let Some(ca) = &args.ca {
        tls = tls.add_ca_pem_file(ca);
    }
    if args.insecure {
        tls = tls.dangerous_accept_any_certificate();
    }
    let builder =
        ClientBuilder::new(args.url.as_str())
            .tls(tls)
            .compression(args.compression.then(|| {
                Deflate::default()
                    .client_no_context_takeover(true)
                    .server_no_context_takeover(true)
            }));
    if args.handshakes {
        return handshakes(&args, builder).await;
    }
    let mut sockets = Vec::with_capacity(args.connections);
    let mut errors = 0;
    let mut first_error = None;
    for _ in 0..args.connections {
        match builder.clone().connect().await {
            Ok(ws) => sockets.push(ws),
            Err(e) => {
                tracing::debug!("connect failed: {e}");
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if sockets.is_empty() {
        let e = first_error.expect("at least one connection was tried");
        return Err(Failure::connecting(&args.url, &e));
    }

    let payload = Bytes::from(vec![b'x'; args.size]);
    let duration = match (args.duration, args.count) {
        (Some(s), _) => Some(
            Duration::try_from_secs_f64(s)
                .map_err(|_| Failure::new(code::USAGE, format!("--duration {s}")))?,
        ),
        (None, None) => Some(Duration::from_secs(3)),
        (None, Some(_)) => None,
    };
    let cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
    let start = Instant::now();
    let deadline = duration.map(|d| start + d);
    let done = Arc::new(AtomicU64::new(0));
    let budget = args.count.map(|n| Arc::new(AtomicU64::new(n)));
    let progress = progress_bar(args.count, duration);
    let message = if args.text {
        Message::text(String::from_utf8(payload.to_vec()).expect("ASCII"))
    } else {
        Message::binary(payload)
    };
    let sender = if args.mask_each || args.compression {
        Sender::Client(message)
    } else {
        Sender::prebuilt(message, args.depth)
    };
    let own_cpu = || cpu_seconds(std::process::id()).ok();
    let own_cpu_before = own_cpu();
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| {
            tokio::spawn(drive(
                ws,
                sender.clone(),
                args.depth,
                deadline,
                Arc::clone(&done),
                budget.clone(),
            ))
        })
        .collect();
    let ticker = {
        let done = Arc::clone(&done);
        let progress = progress.clone();
        let count_mode = args.count.is_some();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                progress.set_position(if count_mode {
                    done.load(Ordering::Relaxed)
                } else {
                    start.elapsed().as_millis() as u64
                });
            }
        })
    };
    let mut latencies = latency_histogram();
    for task in tasks {
        match task.await {
            Ok(Ok(h)) => latencies.add(&h).expect("histograms of one shape"),
            Ok(Err((h, e))) => {
                latencies.add(&h).expect("histograms of one shape");
                tracing::warn!("connection failed: {e}");
                errors += 1;
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = start.elapsed();
    ticker.abort();
    progress.finish_and_clear();
    let cpu = Cpu {
        server: match (args.server_pid, cpu_before) {
            (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
            _ => None,
        },
        own: own_cpu_before.and_then(|before| Some(own_cpu()? - before)),
    };
    let tally = Tally {
        messages: done,
        latencies,
        errors,
    };
    report(&args, &tally, elapsed, cpu);
    if tally.messages.load(Ordering::Relaxed) == 0 {
        return Err(Failure::new(code::FAILURE, "no message was echoed"));
    }
    Ok(())
}

/// The handshake mode: `connections` slots each open, close and reopen connections.
async fn handshakes(args: &BenchArgs, builder: ClientBuilder) -> Result<(), Failure> {
    let duration = Duration::try_from_secs_f64(args.duration.unwrap_or(3.0))
        .map_err(|_| Failure::new(code::USAGE, "--duration"))?;
    let cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
    let start = Instant::now();
    let deadline = start + duration;
    let budget = args.count.map(AtomicU64::new).map(Arc::new);
    let done = Arc::new(AtomicU64::new(0));
    let slots: Vec<_> = (0..args.connections)
        .map(|_| {
            let builder = builder.clone();
            let done = Arc::clone(&done);
            let budget = budget.clone();
            tokio::spawn(async move {
                let mut latencies = latency_histogram();
                let take = || {
                    budget.as_ref().is_none_or(|b| {
                        b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                            .is_ok()
                    })
                };
                while Instant::now() < deadline && take() {
                    let began = Instant::now();
                    let mut ws = builder.clone().connect().await?;
                    ws.close(CloseCode::NORMAL, "").await?;
                    while ws.recv().await.is_some() {}
                    latencies.saturating_record(began.elapsed().as_micros() as u64);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, wsharp::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = latency_histogram();
    let mut errors = 0;
    let mut first_error = None;
    for slot in slots {
        match slot.await {
            Ok(Ok(h)) => latencies.add(&h).expect("histograms of one shape"),
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = start.elapsed();
    let cpu = Cpu {
        server: match (args.server_pid, cpu_before) {
            (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
            _ => None,
        },
        own: None,
    };
    let tally = Tally {
        messages: done,
        latencies,
        errors,
    };
    report(args, &tally, elapsed, cpu);
    match (tally.messages.load(Ordering::Relaxed), first_error) {
        (0, Some(e)) => Err(Failure::connecting(&args.url, &e)),
        (0, None) => Err(Failure::new(code::FAILURE, "no handshake completed")),
        _ => Ok(()),
    }
}

/// Latencies from 1 µs to an hour, to 3 significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

fn progress_bar(count: Option<u64>, duration: Option<Duration>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match (count, duration) {
        (Some(n), _) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} messages, {per_sec}")
                .expect("valid template"),
        ),
        (None, d) => ProgressBar::new(d.map_or(0, |d| d.as_millis() as u64)).with_style(
            ProgressStyle::with_template("{bar:40} {elapsed} of the run").expect("valid template"),
        ),
    }
}

type Outcome = Result<Histogram<u64>, (Histogram<u64>, wsharp::Error)>;

/// How a connection sends its messages.
#[derive(Clone)]
enum Sender {
    /// `depth` copies of one masked frame, written straight to the socket.
    Prebuilt { frames: Bytes, frame_len: usize },
    /// Through the client's send path.
    Client(Message),
}

impl Sender {
    /// `depth` copies of `message`'s frame, masked once by a client connection.
    fn prebuilt(message: Message, depth: usize) -> Self {
        let mut client = Connection::new(Role::Client, Config::default());
        client.send(message).expect("a data message is sendable");
        let mut slices = [std::io::IoSlice::new(&[]); 4];
        let n = client.transmit_slices(&mut slices);
        let frame: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        Self::Prebuilt {
            frame_len: frame.len(),
            frames: frame.repeat(depth).into(),
        }
    }

    /// Queues (client path) or writes (pre-built) `n` messages; `n` is at most the depth.
    async fn send(
        &self,
        ws: &mut wsharp::WebSocket<wsharp::Transport>,
        n: usize,
    ) -> wsharp::Result<()> {
        match self {
            Self::Prebuilt { frames, frame_len } => {
                ws.get_mut().write_all(&frames[..n * frame_len]).await?;
            }
            Self::Client(message) => {
                for _ in 0..n {
                    ws.feed(message.clone()).await?;
                }
                ws.flush().await?;
            }
        }
        Ok(())
    }
}

/// Keeps `depth` messages in flight on `ws` until `deadline` or the shared budget runs out,
/// then closes it.
async fn drive(
    mut ws: wsharp::WebSocket<wsharp::Transport>,
    sender: Sender,
    depth: usize,
    deadline: Option<Instant>,
    done: Arc<AtomicU64>,
    budget: Option<Arc<AtomicU64>>,
) -> Outcome {
    let mut latencies = latency_histogram();
    let take = || {
        budget.as_ref().is_none_or(|b| {
            b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        })
    };
    let mut sent = std::collections::VecDeque::with_capacity(depth);
    let result: wsharp::Result<()> = async {
        let now = Instant::now();
        while sent.len() < depth && take() {
            sent.push_back(now);
        }
        sender.send(&mut ws, sent.len()).await?;
        // Echoes taken since the last write, each owing one more message.
        let mut owed = 0;
        while !sent.is_empty() {
            let next = match deadline {
                Some(d) => match timeout_at(d, ws.recv()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(()),
                },
                None => ws.recv().await,
            };
            let Some(msg) = next else {
                return Err(std::io::Error::other("the server closed the connection").into());
            };
            if !msg?.is_data() {
                continue;
            }
            let sent_at = sent.pop_front().expect("checked non-empty");
            let now = Instant::now();
            done.fetch_add(1, Ordering::Relaxed);
            latencies.saturating_record(now.duration_since(sent_at).as_micros() as u64);
            if take() {
                owed += 1;
                sent.push_back(now);
            }
            // The messages owed for one read's echoes leave in one write.
            if owed > 0 && !ws.connection().has_buffered_input() {
                sender.send(&mut ws, owed).await?;
                owed = 0;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        return Err((latencies, e));
    }
    // Close politely, without letting a slow server hold up the report.
    let _ = timeout(Duration::from_secs(2), async {
        ws.close(CloseCode::NORMAL, "").await?;
        while ws.recv().await.is_some() {}
        Ok::<_, wsharp::Error>(())
    })
    .await;
    Ok(latencies)
}

/// The CPU time (user + system) process `pid` has used, in seconds. /proc counts it in
/// USER_HZ ticks, which Linux fixes at 100 per second for user space.
fn cpu_seconds(pid: u32) -> Result<f64, Failure> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| {
        Failure::new(
            code::USAGE,
            format!("--server-pid {pid}: cannot read its CPU time: {e}"),
        )
    })?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) as f64 / 100.0),
        _ => Err(Failure::new(
            code::FAILURE,
            format!("/proc/{pid}/stat: unexpected format"),
        )),
    }
}

/// CPU seconds used during the run.
struct Cpu {
    /// By the server (with `--server-pid`).
    server: Option<f64>,
    /// By this load generator (echo mode).
    own: Option<f64>,
}

fn report(args: &BenchArgs, tally: &Tally, elapsed: Duration, cpu: Cpu) {
    let messages = tally.messages.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64();
    let rate = messages as f64 / secs;
    let mb = if args.handshakes {
        0.0
    } else {
        (messages * args.size as u64) as f64 / secs / 1e6
    };
    let h = &tally.latencies;
    let pct = |p: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(p)
        }
    };
    let max = if h.is_empty() { 0 } else { h.max() };
    let per_msg = |cpu: Option<f64>| {
        cpu.filter(|_| messages > 0)
            .map(|c| c / messages as f64 * 1e6)
    };
    let (server_per_msg, own_per_msg) = (per_msg(cpu.server), per_msg(cpu.own));
    if args.json {
        let figures = serde_json::json!({
            "mode": if args.handshakes { "handshakes" } else { "echo" },
            "url": args.url,
            "connections": args.connections,
            "size": args.size,
            "depth": args.depth,
            "compression": args.compression,
            "mask_each": args.mask_each || args.compression,
            "seconds": secs,
            "messages": messages,
            "msgs_per_sec": rate.round(),
            "mb_per_sec": (mb * 100.0).round() / 100.0,
            "p50_us": pct(0.50),
            "p90_us": pct(0.90),
            "p99_us": pct(0.99),
            "max_us": max,
            "errors": tally.errors,
            "server_cpu_seconds": cpu.server,
            "server_cpu_us_per_msg": server_per_msg,
            "client_cpu_seconds": cpu.own,
            "client_cpu_us_per_msg": own_per_msg,
        });
        println!("{figures}");
        return;
    }
    let unit = if args.handshakes {
        println!(
            "{}: handshakes from {} connection slots, {secs:.2} s",
            args.url, args.connections
        );
        println!("  handshakes     {messages:>12}");
        println!("  handshakes/s   {rate:>12.0}");
        "handshake"
    } else {
        println!(
            "{}: {} connections, {} B {}, depth {}{}, {secs:.2} s",
            args.url,
            args.connections,
            args.size,
            if args.text { "text" } else { "binary" },
            args.depth,
            if args.compression {
                ", permessage-deflate"
            } else {
                ""
            },
        );
        println!("  messages       {messages:>12}");
        println!("  messages/s     {rate:>12.0}");
        println!("  MB/s           {mb:>12.2}");
        "message"
    };
    println!(
        "  latency µs     p50 {} | p90 {} | p99 {} | max {max}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
    );
    println!("  errors         {:>12}", tally.errors);
    if let (Some(cpu), Some(per)) = (cpu.server, server_per_msg) {
        println!("  server CPU     {cpu:>10.2} s ({per:.2} µs/{unit})");
    }
    if let (Some(cpu), Some(per)) = (cpu.own, own_per_msg) {
        println!("  bench CPU      {cpu:>10.2} s ({per:.2} µs/{unit})");
    }
}
