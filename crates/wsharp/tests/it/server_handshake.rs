//! Server handshake faults over real TCP: fault catalogue 1-11.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsharp::http::{Request, StatusCode};
use wsharp::{Config, Message, Refusal, ServerBuilder, UpgradeRequest};

use crate::util::{UPGRADE, bounded, client_frame, echo_server, raw_exchange};

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

#[tokio::test]
async fn fault_1_request_line_too_long_is_414() {
    let addr = echo_server(ServerBuilder::new()).await;
    let request = format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000));
    let resp = raw_exchange(addr, request.as_bytes()).await;
    assert_eq!(status_of(&resp), 414);
    assert!(resp.to_ascii_lowercase().contains("connection: close"));
}

#[tokio::test]
async fn fault_2_huge_header_is_431_at_the_limit() {
    let addr = echo_server(ServerBuilder::new()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nX-Big: ").await.unwrap();
    // Keep sending up to 20 MB; the server answers once 16 KiB have come and stops reading.
    let chunk = vec![b'a'; 64 << 10];
    let mut sent = 0;
    while sent < 20 << 20 {
        match tokio::time::timeout(Duration::from_millis(200), tcp.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
    let mut out = Vec::new();
    let _ = bounded(tcp.read_to_end(&mut out)).await;
    assert_eq!(status_of(&String::from_utf8_lossy(&out)), 431);
    assert!(
        sent < 20 << 20,
        "the server should stop reading long before 20 MB"
    );
}

#[tokio::test]
async fn fault_3_too_many_headers_is_431_and_the_server_goes_on() {
    let addr = echo_server(
        ServerBuilder::new().limits(wsharp::Limits::default().max_handshake_size(64 << 10)),
    )
    .await;
    let mut request = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..2000 {
        request.push_str(&format!("h{i}: v\r\n"));
    }
    request.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert_eq!(
        status_of(&raw_exchange(addr, request.as_bytes()).await),
        431
    );
    let mut ws = bounded(wsharp::connect(&format!("ws://{addr}/")))
        .await
        .unwrap();
    ws.send("still here").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("still here")
    );
}

#[tokio::test]
async fn fault_4_slow_and_silent_clients_hit_the_handshake_deadline() {
    let timeout = Duration::from_millis(400);
    let addr =
        echo_server(ServerBuilder::new().config(Config::default().handshake_timeout(timeout)))
            .await;
    let started = Instant::now();
    // Silent connections, and one that dribbles a byte every 100 ms: the deadline is not
    // extended per byte.
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let dribble = async {
        for b in UPGRADE.bytes() {
            if slow.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut buf = [0u8; 64];
        matches!(slow.read(&mut buf).await, Ok(0) | Err(_))
    };
    // A normal client still gets through while they wait.
    let mut ws = bounded(wsharp::connect(&format!("ws://{addr}/")))
        .await
        .unwrap();
    ws.send("hi").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("hi")
    );
    assert!(bounded(dribble).await, "the slow client was closed");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}, deadline {timeout:?}"
    );
    for mut s in silent {
        let mut buf = [0u8; 16];
        assert!(matches!(bounded(s.read(&mut buf)).await, Ok(0) | Err(_)));
    }
}

#[tokio::test]
async fn fault_6_bad_extension_offers_are_declined_not_fatal() {
    let addr = echo_server(ServerBuilder::new()).await;
    let request = format!(
        "{UPGRADE}Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7; server_max_window_bits=abc, x; b=\"\\c\\c\r\n\r\n"
    );
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = bounded(tcp.read(&mut buf)).await.unwrap();
    let resp = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert_eq!(status_of(&resp), 101);
    assert!(!resp.contains("sec-websocket-extensions"));
}

#[tokio::test]
async fn fault_8_version_mismatch_is_426_naming_13() {
    let addr = echo_server(ServerBuilder::new()).await;
    let request = UPGRADE.replace("Version: 13", "Version: 8") + "\r\n";
    let resp = raw_exchange(addr, request.as_bytes()).await;
    assert_eq!(status_of(&resp), 426);
    assert!(
        resp.to_ascii_lowercase()
            .contains("sec-websocket-version: 13")
    );
}

#[tokio::test]
async fn fault_9_method_and_version() {
    let addr = echo_server(ServerBuilder::new()).await;
    assert_eq!(
        status_of(&raw_exchange(addr, (UPGRADE.replace("GET", "POST") + "\r\n").as_bytes()).await),
        405
    );
    assert_eq!(
        status_of(
            &raw_exchange(
                addr,
                (UPGRADE.replace("HTTP/1.1", "HTTP/1.0") + "\r\n").as_bytes()
            )
            .await
        ),
        400
    );
    let mixed = UPGRADE.replace("Connection: Upgrade", "Connection: keep-alive, UpGrade") + "\r\n";
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(mixed.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = bounded(tcp.read(&mut buf)).await.unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 101);
}

#[tokio::test]
async fn fault_10_refused_upgrade_with_a_pipelined_request_closes() {
    let refuse = |_: &Request<()>, _: &UpgradeRequest| {
        Err(Refusal::new(StatusCode::FORBIDDEN).body("origin not allowed"))
    };
    let addr = echo_server(ServerBuilder::new().on_request(refuse)).await;
    let two = format!("{UPGRADE}Origin: https://evil.example\r\n\r\n{UPGRADE}\r\n");
    let resp = raw_exchange(addr, two.as_bytes()).await;
    assert_eq!(status_of(&resp), 403);
    assert!(resp.to_ascii_lowercase().contains("connection: close"));
    assert_eq!(
        resp.matches("HTTP/1.1").count(),
        1,
        "the second request was never answered: {resp}"
    );
}

#[tokio::test]
async fn fault_11_frame_in_the_handshake_segment_is_delivered() {
    let addr = echo_server(ServerBuilder::new()).await;
    let mut bytes = format!("{UPGRADE}\r\n").into_bytes();
    bytes.extend(client_frame(0x81, b"early"));
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&bytes).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(b"early") {
        let n = bounded(tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.ends_with(&[0x81, 5, b'e', b'a', b'r', b'l', b'y']));
}

#[tokio::test]
async fn subprotocol_is_chosen_from_the_offer() {
    let addr = echo_server(ServerBuilder::new().subprotocols(["v2", "v1"])).await;
    let ws = bounded(
        wsharp::ClientBuilder::new(format!("ws://{addr}/"))
            .subprotocols(["v1", "v3"])
            .connect(),
    )
    .await
    .unwrap();
    assert_eq!(ws.protocol(), Some("v1"));
    let ws = bounded(
        wsharp::ClientBuilder::new(format!("ws://{addr}/"))
            .subprotocols(["v3"])
            .connect(),
    )
    .await
    .unwrap();
    assert_eq!(ws.protocol(), None);
}
