//! 10 000 concurrent sessions on one server over loopback: a broadcast reaches them all and a
//! stop closes them all in time. The clients run in a second process (this binary, re-run with
//! `--clients`), so each side has its own descriptor limit. The server waits on events only:
//! its behaviour counts the sessions that opened, and the client process reports on its
//! standard output when every client has the broadcast and when every client saw its close.
//!
//! Prints the figures and a `test result:` line; exits non-zero on failure.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Semaphore;
use wsharp::server::{Behavior, ServiceOptions, Session, WebSocketServer};
use wsharp::{Config, Message};

const SESSIONS: usize = 10_000;
/// The most any one step may take before the test fails.
const STEP: Duration = Duration::from_secs(120);

/// Adds a permit to the semaphore for each session that opened; ignores messages.
struct Counted(Arc<Semaphore>);

impl Behavior for Counted {
    async fn on_open(&mut self, _: &Session) {
        self.0.add_permits(1);
    }

    async fn on_message(&mut self, _: &Session, _: Message) {}
}

fn rss_kib() -> u64 {
    wsharp_testkit::memory::status_kib(std::process::id(), "VmRSS").unwrap_or(0)
}

/// The client side: opens `n` connections and reports; reports once each has its first
/// message (the broadcast), or what arrived by the deadline; then reports the close codes
/// once every connection has ended.
async fn clients(url: String, n: usize) {
    let mut conns = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(500) {
        let batch = (chunk * 500..((chunk + 1) * 500).min(n)).map(|_| wsharp::connect(&url));
        for ws in futures_util::future::join_all(batch).await {
            conns.push(ws.expect("connect"));
        }
    }
    println!("connected {}", conns.len());
    let (arrivals, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for mut ws in conns {
        let arrivals = arrivals.clone();
        tasks.push(tokio::spawn(async move {
            let first = ws.recv().await;
            let got = matches!(first, Some(Ok(Message::Text(ref t))) if t.len() == 1024);
            let _ = arrivals.send((got, Instant::now()));
            let mut code = 0;
            while let Some(m) = ws.recv().await {
                if let Ok(Message::Close(Some(f))) = m {
                    code = f.code.0;
                }
            }
            code
        }));
    }
    drop(arrivals);
    let mut received = 0;
    let mut first = None::<Instant>;
    let mut last = None::<Instant>;
    let deadline = tokio::time::Instant::now() + STEP;
    for _ in 0..n {
        match tokio::time::timeout_at(deadline, arrived.recv()).await {
            Ok(Some((got, at))) => {
                received += usize::from(got);
                first = Some(first.map_or(at, |f| f.min(at)));
                last = Some(last.map_or(at, |l| l.max(at)));
            }
            Ok(None) | Err(_) => break,
        }
    }
    let spread = last
        .zip(first)
        .map_or(0, |(l, f)| l.duration_since(f).as_micros());
    println!("received {received} spread_us {spread}");
    let mut closed_1001 = 0;
    for t in tasks {
        let code = tokio::time::timeout_at(deadline + STEP, t)
            .await
            .map_or(0, |code| code.unwrap());
        closed_1001 += usize::from(code == 1001);
    }
    println!("closed {closed_1001}");
}

async fn run() -> Result<String, String> {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = WebSocketServer::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let options = ServiceOptions::default()
        .ignore_extensions()
        .config(Config::default().close_timeout(Duration::from_secs(2)));
    let opened = Arc::new(Semaphore::new(0));
    let counter = opened.clone();
    server
        .add_service_with("/Echo", options, move || Counted(counter.clone()))
        .unwrap();
    server.start();
    let rss_before = rss_kib();
    let url = format!("ws://{}/Echo", server.local_addr());
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--clients", &url, &SESSIONS.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Result<String, String> {
        match tokio::time::timeout(STEP, lines.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            other => Err(format!("client process: {other:?}")),
        }
    };
    let started = Instant::now();
    let line = next().await?;
    let connect_time = started.elapsed();
    if line != format!("connected {SESSIONS}") {
        return Err(line);
    }
    let sessions = server.sessions("/Echo").unwrap();
    // Every session's behaviour has started: each is in `sessions`.
    let all_open = tokio::time::timeout(STEP, opened.acquire_many(SESSIONS as u32)).await;
    if all_open.is_err() {
        return Err(format!(
            "{} of {SESSIONS} sessions opened in {STEP:?}",
            opened.available_permits()
        ));
    }
    let rss_after = rss_kib();
    let count = sessions.count();
    let text = "x".repeat(1024);
    let sent = Instant::now();
    let report = sessions.broadcast(text).map_err(|e| e.to_string())?;
    let queued_in = sent.elapsed();
    // The client process reports once every client has the broadcast (a stop right after the
    // broadcast is tested on its own, with fewer sessions, in the integration tests).
    let received = next().await?;
    let stop_started = Instant::now();
    server.stop().await;
    let stop_time = stop_started.elapsed();
    let closed = next().await?;
    let _ = child.wait().await;
    let per_session = (rss_after.saturating_sub(rss_before)) * 1024 / SESSIONS as u64;
    let summary = format!(
        "sessions {count}; connect {connect_time:?}; server RSS +{} KiB ({per_session} B/session); \
         broadcast queued {} in {queued_in:?}, {received}; stop took {stop_time:?}; {closed} with 1001",
        rss_after.saturating_sub(rss_before),
        report.queued,
    );
    let ok = count == SESSIONS
        && report.queued == SESSIONS
        && received.starts_with(&format!("received {SESSIONS} "))
        && closed == format!("closed {SESSIONS}")
        && stop_time < Duration::from_secs(3);
    if ok { Ok(summary) } else { Err(summary) }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some(i) = args.iter().position(|a| a == "--clients") {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        rt.block_on(clients(args[i + 1].clone(), args[i + 2].parse().unwrap()));
        return;
    }
    // Only the scale test lives here: a filter that excludes it (as `cargo test NAME` does for
    // other tests) runs nothing.
    if args
        .iter()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"ten_thousand_sessions".contains(a.as_str()))
    {
        println!("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out");
        return;
    }
    match rt.block_on(run()) {
        Ok(summary) => {
            println!("ten_thousand_sessions: {summary}");
            println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
        }
        Err(why) => {
            println!("ten_thousand_sessions FAILED: {why}");
            println!(
                "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
            );
            std::process::exit(1);
        }
    }
}
