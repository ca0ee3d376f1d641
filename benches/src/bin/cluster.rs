//! Cluster broadcast: one node broadcasts M messages to every session of every node through
//! a real Redis (`redis-server` started here on a free port), at 1, 2 and 3 nodes of N
//! sessions each, beside the same number of sessions on one node without a backplane. The
//! nodes run in this process, the clients in a second one (this binary with `--clients`), so
//! the CPU time read from /proc is the servers' alone.
//!
//! Reported per setup: deliveries per second (first broadcast to last receipt), latency from
//! the broadcast call to each receipt (p50, p99), and the server process' CPU time per
//! delivered message, with its ratio to the single node's.
//!
//! `cargo run --release -p wsharp-bench --bin cluster -- [--sessions N] [--messages M] [--size B]`

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use wsharp::Message;
use wsharp::cluster::{RedisBackplane, RedisOptions};
use wsharp::server::{Backplane, Behavior, Health, ServiceOptions, Session, WebSocketServer};
use wsharp_testkit::redis::RedisServer;

#[derive(Parser)]
struct Args {
    /// Sessions per node.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Broadcasts per setup.
    #[arg(long, default_value_t = 300)]
    messages: usize,
    /// Message size in bytes (at least 20: the send time travels in it).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Time between two broadcasts, in microseconds (0: back to back). Paced, each broadcast
    /// reaches its sessions on its own whatever the path, so the figures compare the paths
    /// rather than how many messages a session's write happens to batch.
    #[arg(long, default_value_t = 2000)]
    interval_us: u64,
    /// Node counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    nodes: Vec<usize>,
    /// Internal: act as the client process for these URLs.
    #[arg(long, value_delimiter = ',')]
    clients: Vec<String>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// User + system CPU seconds of this process, from /proc (100 ticks per second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// The client process: `sessions` connections to each URL; each reads `messages` messages,
/// the latency of each taken from the send time at its start. Prints `connected`, then
/// `p50_us p99_us last_receipt_ns`.
async fn clients(urls: Vec<String>, sessions: usize, messages: usize) {
    let mut conns = Vec::new();
    for url in &urls {
        for chunk in 0..sessions.div_ceil(250) {
            let n = 250.min(sessions - chunk * 250);
            let batch = (0..n).map(|_| wsharp::connect(url));
            for ws in futures_util::future::join_all(batch).await {
                conns.push(ws.expect("connect"));
            }
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u64>>();
    for mut ws in conns {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(messages);
            while latencies.len() < messages {
                let Some(Ok(m)) = ws.recv().await else { break };
                let Some(text) = m.as_text() else { continue };
                let sent: u64 = text[..20].trim().parse().unwrap_or(0);
                latencies.push(now_ns().saturating_sub(sent));
            }
            let _ = tx.send(latencies);
        });
    }
    drop(tx);
    println!("connected");
    let mut all = Vec::new();
    let mut last = 0;
    while let Some(latencies) = rx.recv().await {
        last = now_ns();
        all.extend(latencies);
    }
    all.sort_unstable();
    let pick = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)));
    println!(
        "{} {} {last} {}",
        pick(0.5).copied().unwrap_or(0) / 1000,
        pick(0.99).copied().unwrap_or(0) / 1000,
        all.len()
    );
}

struct Quiet;

impl Behavior for Quiet {
    async fn on_message(&mut self, _session: &Session, _message: Message) {}
}

/// One measured setup's figures.
struct Figures {
    deliveries: usize,
    per_second: f64,
    p50_us: u64,
    p99_us: u64,
    cpu_us: f64,
}

/// Starts `nodes` servers (with a backplane each unless `backplane` is false), connects
/// `sessions` clients to each, broadcasts from the first, and measures.
async fn run(
    redis: &RedisServer,
    args: &Args,
    nodes: usize,
    sessions: usize,
    backplane: bool,
) -> Figures {
    let prefix = format!("bench-{}-{}", nodes, now_ns());
    let mut servers = Vec::new();
    let mut planes = Vec::new();
    for i in 0..nodes {
        // Queues as deep as the burst: the measure is the cost of delivery, not of dropping.
        let options = ServiceOptions::default()
            .compression(None)
            .send_queue(args.messages + 16);
        let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
        let server = if backplane {
            let plane = RedisBackplane::new(
                RedisOptions::new(redis.url())
                    .prefix(&prefix)
                    .node_id(format!("n{i}"))
                    .outbox(args.messages + 16, Duration::from_secs(10))
                    .inbound(args.messages + 16),
            )
            .unwrap();
            planes.push(plane.clone());
            server.backplane(plane)
        } else {
            server
        };
        server.add_service_with("/b", options, || Quiet).unwrap();
        server.start();
        servers.push(server);
    }
    for plane in &planes {
        let mut health = plane.watch_health();
        tokio::time::timeout(
            Duration::from_secs(30),
            health.wait_for(|h| *h == Health::Up),
        )
        .await
        .expect("backplane up")
        .unwrap();
    }
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("ws://{}/b", s.local_addr()))
        .collect();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--clients")
        .arg(urls.join(","))
        .args(["--sessions", &sessions.to_string()])
        .args(["--messages", &args.messages.to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the client process");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(180), lines.next_line()).await;
    assert!(
        matches!(ready, Ok(Ok(Some(ref l))) if l == "connected"),
        "clients did not connect: {ready:?}"
    );
    let local = servers[0].sessions("/b").unwrap();
    // Every node has its sessions registered and counted before the first broadcast.
    let expected = nodes * sessions;
    let deadline = Instant::now() + Duration::from_secs(60);
    while local.cluster_count().await.unwrap_or(0) != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pad = "x".repeat(args.size.saturating_sub(21));
    let cpu_before = cpu_seconds();
    let started = now_ns();
    let mut pace = tokio::time::interval(Duration::from_micros(args.interval_us.max(1)));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..args.messages {
        if args.interval_us > 0 {
            pace.tick().await;
        }
        let text = format!("{:<20} {pad}", now_ns());
        local.broadcast(text).unwrap();
        tokio::task::yield_now().await;
    }
    let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
        .await
        .expect("deliveries within 300 s")
        .unwrap()
        .unwrap();
    let cpu = cpu_seconds() - cpu_before;
    let parts: Vec<u64> = line.split(' ').map(|p| p.parse().unwrap()).collect();
    let deliveries = parts[3] as usize;
    assert_eq!(
        deliveries,
        expected * args.messages,
        "every message delivered"
    );
    for plane in &planes {
        let stats = plane.stats();
        assert_eq!(
            (stats.gaps, stats.duplicates, stats.inbound_dropped),
            (0, 0, 0),
            "{stats:?}"
        );
    }
    for server in &servers {
        server.stop().await;
    }
    Figures {
        deliveries,
        per_second: deliveries as f64 / ((parts[2] - started) as f64 / 1e9),
        p50_us: parts[0],
        p99_us: parts[1],
        cpu_us: cpu * 1e6 / deliveries as f64,
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let _ = rlimit::increase_nofile_limit(rlimit::INFINITY);
    if !args.clients.is_empty() {
        clients(args.clients.clone(), args.sessions, args.messages).await;
        return;
    }
    assert!(args.size >= 21, "--size: at least 21 bytes");
    let redis = RedisServer::start();
    println!(
        "\n## Cluster broadcast: {} messages of {} B from one node, one every {} µs, {} sessions per node\n",
        args.messages, args.size, args.interval_us, args.sessions
    );
    println!(
        "| setup | sessions | deliveries/s | p50 µs | p99 µs | server CPU µs/delivery | CPU ratio to one node |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &nodes in &args.nodes {
        let total = nodes * args.sessions;
        let local = run(&redis, &args, 1, total, false).await;
        let cluster = run(&redis, &args, nodes, args.sessions, true).await;
        for (name, f) in [
            (format!("one node, in-process ({total} sessions)"), &local),
            (format!("{nodes} node(s) through Redis"), &cluster),
        ] {
            println!(
                "| {name} | {} | {:.0} | {} | {} | {:.3} | {:.2} |",
                f.deliveries / args.messages,
                f.per_second,
                f.p50_us,
                f.p99_us,
                f.cpu_us,
                f.cpu_us / local.cpu_us
            );
        }
    }
}
