//! Measures a server's memory per open connection: starts `wsharp echo` (path in the first
//! argument), reads its RSS, opens N connections (second argument, default 1000) that each
//! exchange one message, and reads the RSS again. Runs once without compression, once with
//! permessage-deflate and context takeover, and once without context takeover.

use std::process::{Command, Stdio};
use std::time::Duration;

use wsharp::{ClientBuilder, Deflate, Message};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn measure(server: &str, n: usize, deflate: Option<Deflate>, port: u16) -> (u64, u64) {
    let mut child = Command::new(server)
        .args(["-q", "echo", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .spawn()
        .expect("start wsharp echo");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("ws://127.0.0.1:{port}/");
    // Warm up the runtime's threads and allocator before the baseline.
    for _ in 0..10 {
        let mut ws = ClientBuilder::new(&url)
            .compression(deflate)
            .connect()
            .await
            .expect("connect");
        ws.send("warm-up").await.unwrap();
        ws.recv().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib(child.id());
    let mut open = Vec::with_capacity(n);
    for i in 0..n {
        let mut ws = ClientBuilder::new(&url)
            .compression(deflate)
            .connect()
            .await
            .expect("connect");
        ws.send(Message::text(format!(
            "message {i}: some text that compresses, some text that compresses"
        )))
        .await
        .unwrap();
        let _ = ws.recv().await;
        open.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_kib(child.id());
    drop(open);
    let _ = child.kill();
    let _ = child.wait();
    (before, after)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "target/release/wsharp".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    println!(
        "| connections | setting | server RSS before (KiB) | after (KiB) | per connection (bytes) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let cases = [
        ("no compression", None),
        ("deflate, context takeover", Some(Deflate::default())),
        (
            "deflate, no context takeover",
            Some(
                Deflate::default()
                    .server_no_context_takeover(true)
                    .client_no_context_takeover(true),
            ),
        ),
    ];
    for (i, (name, deflate)) in cases.into_iter().enumerate() {
        let (before, after) = measure(&server, n, deflate, 19500 + i as u16).await;
        let per = (after.saturating_sub(before)) * 1024 / n as u64;
        println!("| {n} | {name} | {before} | {after} | {per} |");
    }
}
