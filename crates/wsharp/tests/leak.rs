//! Fault catalogue 41: connections that fail in every way, 10^4 times, leave nothing behind,
//! on the server and on the client. Its own test binary, so the heap it counts and the RSS it
//! reads are its tests' alone; the tests take turns.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsharp::demo::Echo;
use wsharp::server::{Sessions, WebSocketServer};
use wsharp::{CloseCode, Error, HandshakeError};

/// Held by each test for its whole run: the counters are process-wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

wsharp_testkit::install_counting_allocator!();

/// Bytes allocated and not yet freed, signed for differences.
fn live() -> isize {
    wsharp_testkit::memory::live_bytes() as isize
}

const UPGRADE: &str = "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// One failing connection, of three kinds in turn: an upgrade reset mid-frame, a request reset
/// mid-head, and a client refused with 404.
async fn fail_once(addr: std::net::SocketAddr, i: usize) {
    match i % 3 {
        0 => {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(UPGRADE.as_bytes()).await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed before the 101");
                head.extend_from_slice(&buf[..n]);
            }
            assert!(head.starts_with(b"HTTP/1.1 101"));
            // The first bytes of a 100-byte masked frame, then a reset.
            tcp.write_all(&[0x82, 0x80 | 100, 1, 2, 3, 4, 9, 9, 9])
                .await
                .unwrap();
            tcp.set_zero_linger().unwrap();
        }
        1 => {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut tcp = tcp;
            tcp.write_all(&UPGRADE.as_bytes()[..60]).await.unwrap();
            tcp.set_zero_linger().unwrap();
        }
        _ => match wsharp::connect(&format!("ws://{addr}/nope")).await {
            Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, .. })) => {
                assert_eq!(status, 404);
            }
            other => panic!("{other:?}"),
        },
    }
}

/// Waits until no session is open and only `baseline` tasks are alive (the failed connections'
/// tasks have ended), failing after 20 s.
async fn quiesce(sessions: &Sessions, baseline: usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sessions.count() != 0 || metrics.num_alive_tasks() > baseline {
        assert!(
            Instant::now() < deadline,
            "{} sessions and {} tasks still alive (baseline {baseline})",
            sessions.count(),
            metrics.num_alive_tasks()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// One thread: the buffer pools are per thread and bounded, and a task that moved to a second
// worker would fill that one's pool during the measurement (up to half a MiB that looks like a
// leak but is a cache).
#[tokio::test(flavor = "current_thread")]
async fn fault_41_ten_thousand_failed_connections_leave_memory_flat() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    server.add_service("/chat", || Echo).unwrap();
    server.start();
    let addr = server.local_addr();
    let sessions = server.sessions("/chat").unwrap();
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    // Warm up: thread-local buffer pools, tokio's registration slabs and the allocator's
    // arenas reach their working size.
    for i in 0..1_000 {
        fail_once(addr, i).await;
    }
    quiesce(&sessions, baseline).await;
    let (live_before, rss_before) = (live(), wsharp_testkit::memory::rss_bytes());

    for i in 0..10_000 {
        fail_once(addr, i).await;
    }
    quiesce(&sessions, baseline).await;
    let (live_after, rss_after) = (live(), wsharp_testkit::memory::rss_bytes());

    let live_growth = live_after - live_before;
    let rss_growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "10^4 failed connections in {:?}: heap {live_before} -> {live_after} bytes, RSS {rss_before} -> {rss_after} bytes",
        started.elapsed()
    );
    // A leak of 64 bytes per connection would show as 640 KB of heap.
    assert!(
        live_growth < 256 << 10,
        "the heap grew by {live_growth} bytes over 10^4 failed connections"
    );
    // RSS moves with the allocator's caching too: a leak of one 4 KiB page per connection
    // would show as 40 MB.
    assert!(
        rss_growth < 16 << 20,
        "RSS grew by {rss_growth} bytes over 10^4 failed connections"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    server.stop().await;
}

/// A raw server that fails each connection as its path says: `/rst` and `/eof` answer the
/// upgrade, send the start of a 100-byte frame and then reset or half-close; `/half` sends
/// half a response head and half-closes. It reads until the client has gone.
async fn failing_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let key = head
                    .lines()
                    .find_map(|l| l.strip_prefix("sec-websocket-key: "))
                    .unwrap_or_default();
                let mut out = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    wsharp::proto::handshake::accept_key(key.as_bytes())
                )
                .into_bytes();
                out.extend_from_slice(&[0x82, 100, 9, 9, 9, 9, 9, 9, 9, 9]);
                if head.starts_with("GET /half ") {
                    out.truncate(40);
                }
                if tcp.write_all(&out).await.is_err() {
                    return;
                }
                if head.starts_with("GET /rst ") {
                    tcp.set_zero_linger().unwrap();
                    return;
                }
                let _ = tcp.shutdown().await;
                let _ = tokio::time::timeout(Duration::from_secs(20), async {
                    while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                })
                .await;
            });
        }
    });
    addr
}

/// One failing client connection, of three kinds in turn: a reset mid-frame, an EOF
/// mid-frame, an EOF mid-handshake.
async fn fail_client_once(addr: std::net::SocketAddr, i: usize) {
    let path = ["rst", "eof", "half"][i % 3];
    let connected = wsharp::connect(&format!("ws://{addr}/{path}")).await;
    match (path, connected) {
        ("half", Err(Error::Io(e))) => {
            assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        }
        // A reset can overtake the 101 it follows.
        ("rst", Err(Error::Io(_))) => {}
        ("rst" | "eof", Ok(mut ws)) => {
            let first = ws.recv().await;
            assert!(matches!(first, Some(Err(_))), "{path}: {first:?}");
            assert!(ws.recv().await.is_none(), "{path}");
            assert_eq!(ws.close_status().map(|s| s.code), Some(CloseCode::ABNORMAL));
        }
        (path, other) => panic!("{path}: {other:?}"),
    }
}

/// Waits until only `baseline` tasks are alive, failing after 20 s.
async fn quiesce_tasks(baseline: usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = Instant::now() + Duration::from_secs(20);
    while metrics.num_alive_tasks() > baseline {
        assert!(
            Instant::now() < deadline,
            "{} tasks still alive (baseline {baseline})",
            metrics.num_alive_tasks()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// One thread: the buffer pools are per thread and bounded, and a task that moved to a second
// worker would fill that one's pool during the measurement (up to half a MiB that looks like a
// leak but is a cache).
#[tokio::test(flavor = "current_thread")]
async fn fault_41_ten_thousand_failed_client_connections_leave_memory_flat() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let addr = failing_server().await;
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    for i in 0..1_000 {
        fail_client_once(addr, i).await;
    }
    quiesce_tasks(baseline).await;
    let (live_before, rss_before) = (live(), wsharp_testkit::memory::rss_bytes());
    for i in 0..10_000 {
        fail_client_once(addr, i).await;
    }
    quiesce_tasks(baseline).await;
    let (live_after, rss_after) = (live(), wsharp_testkit::memory::rss_bytes());
    let live_growth = live_after - live_before;
    let rss_growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "10^4 failed client connections in {:?}: heap {live_before} -> {live_after} bytes, RSS {rss_before} -> {rss_after} bytes",
        started.elapsed()
    );
    assert!(
        live_growth < 256 << 10,
        "the heap grew by {live_growth} bytes over 10^4 failed client connections"
    );
    assert!(
        rss_growth < 16 << 20,
        "RSS grew by {rss_growth} bytes over 10^4 failed client connections"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
