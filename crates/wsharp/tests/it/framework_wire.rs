//! The server framework on the wire, with raw TCP peers: fault catalogue 6 (bad extension
//! offers before a valid one), 11 (a frame in the upgrade's segment), 14 (cookies) and 28 (an
//! unmasked client frame) against `WebSocketServer`, and 11 against `HttpServer`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use wsharp::demo::Echo;
use wsharp::http_server::{HttpServer, HttpServerOptions};
use wsharp::server::{Behavior, CloseStatus, ServiceOptions, Session, WebSocketServer};
use wsharp::{CloseCode, Config, Deflate, Error, Message, Role, WebSocket};

use crate::util::{UPGRADE, bounded, client_frame, raw_exchange};

/// Reads an HTTP head byte by byte (so nothing after it is consumed); panics at EOF.
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        bounded(tcp.read_exact(&mut b))
            .await
            .unwrap_or_else(|e| panic!("EOF in the head after {head:?}: {e}"));
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    })
}

/// What a [`Counting`] session reports.
#[derive(Debug)]
enum Event {
    Error(String, CloseCode),
    Closed(CloseStatus),
}

/// Counts `on_message` calls; reports errors and the close.
struct Counting {
    messages: Arc<AtomicUsize>,
    events: UnboundedSender<Event>,
}

impl Behavior for Counting {
    async fn on_message(&mut self, _: &Session, _: Message) {
        self.messages.fetch_add(1, Ordering::SeqCst);
    }

    async fn on_error(&mut self, _: &Session, error: &Error) {
        let code = match error {
            Error::Protocol(e) => e.close_code(),
            _ => CloseCode::ABNORMAL,
        };
        let _ = self.events.send(Event::Error(error.to_string(), code));
    }

    async fn on_close(&mut self, _: &Session, close: &CloseStatus) {
        let _ = self.events.send(Event::Closed(close.clone()));
    }
}

#[tokio::test]
async fn fault_28_an_unmasked_frame_is_1002_with_no_callback() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let messages = Arc::new(AtomicUsize::new(0));
    let (tx, mut events) = unbounded_channel();
    let m = messages.clone();
    server
        .add_service("/chat", move || Counting {
            messages: m.clone(),
            events: tx.clone(),
        })
        .unwrap();
    server.start();
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(format!("{UPGRADE}\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(status_of(&read_head(&mut tcp).await), 101);
    // A complete, valid text frame, but unmasked.
    tcp.write_all(&[0x81, 5, b'h', b'e', b'l', b'l', b'o'])
        .await
        .unwrap();
    let mut got = Vec::new();
    bounded(tcp.read_to_end(&mut got)).await.unwrap();
    assert!(got.len() >= 4, "{got:?}");
    assert_eq!(got[0], 0x88, "a close frame: {got:?}");
    assert_eq!(u16::from_be_bytes([got[2], got[3]]), 1002);
    assert_eq!(
        got.len(),
        2 + usize::from(got[1]),
        "nothing after the close"
    );
    // The session's last callback has run: the count is final.
    let mut error = None;
    let close = loop {
        match bounded(events.recv()).await.expect("the session reports") {
            Event::Error(e, code) => error = Some((e, code)),
            Event::Closed(info) => break info,
        }
    };
    assert_eq!(messages.load(Ordering::SeqCst), 0, "no on_message call");
    let (text, code) = error.expect("on_error ran before on_close");
    assert_eq!(code, CloseCode::PROTOCOL_ERROR, "{text}");
    assert!(!close.was_clean, "{close:?}");
    server.stop().await;
}

/// The cookie lists a validator was called with, one per call.
type Calls = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// Records what the cookie validator was given; accepts `token=good` among them.
fn recording_validator() -> (ServiceOptions, Calls) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let options = ServiceOptions::default().cookies(
        move |cookies: &[(String, String)], _: &mut Vec<String>| {
            record.lock().unwrap().push(cookies.to_vec());
            cookies.iter().any(|(k, v)| k == "token" && v == "good")
        },
    );
    (options, seen)
}

fn with_cookies(lines: &[&[u8]]) -> Vec<u8> {
    let mut r = UPGRADE.as_bytes().to_vec();
    for line in lines {
        r.extend_from_slice(b"Cookie: ");
        r.extend_from_slice(line);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r
}

#[tokio::test]
async fn fault_14_cookie_headers_on_the_wire() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let (options, seen) = recording_validator();
    server.add_service_with("/chat", options, || Echo).unwrap();
    server.start();
    let addr = server.local_addr();
    let calls = || seen.lock().unwrap().clone();

    // A 16 KiB Cookie header: with the default head limit (16 KiB) the head is too large,
    // 431 before any validation.
    let mut big = b"token=good".to_vec();
    while big.len() < 16 << 10 {
        big.extend_from_slice(b"; filler=xxxxxxxxxxxxxxxxxxxxxxxx");
    }
    let resp = raw_exchange(addr, &with_cookies(&[&big])).await;
    assert_eq!(status_of(&resp), 431, "{resp}");
    assert!(calls().is_empty(), "the validator never saw it");

    // 1000 pairs (about 12 KiB, within the head limit): the validator sees the first 64, in
    // order, and the good token among them is accepted.
    let many: String = std::iter::once("token=good".to_owned())
        .chain((1..1000).map(|i| format!("c{i}=v{i}")))
        .collect::<Vec<_>>()
        .join("; ");
    let resp = {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&with_cookies(&[many.as_bytes()]))
            .await
            .unwrap();
        read_head(&mut tcp).await
    };
    assert_eq!(status_of(&resp), 101, "{resp}");
    let got = calls().pop().unwrap();
    assert_eq!(got.len(), 64);
    assert_eq!(got[0], ("token".to_owned(), "good".to_owned()));
    assert_eq!(got[63], ("c63".to_owned(), "v63".to_owned()));
    seen.lock().unwrap().clear();

    // obs-text and bytes that are not UTF-8 beside a good token: the pair that cannot be read
    // as text is skipped, the others are passed on; UTF-8 text in a value is kept.
    let resp = {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&with_cookies(&[
            b"bad=\xff\xfe; token=good; caf\xc3\xa9=x; name=caf\xc3\xa9",
        ]))
        .await
        .unwrap();
        read_head(&mut tcp).await
    };
    assert_eq!(status_of(&resp), 101, "{resp}");
    assert_eq!(
        calls(),
        [vec![
            ("token".to_owned(), "good".to_owned()),
            ("name".to_owned(), "café".to_owned()),
        ]]
    );
    seen.lock().unwrap().clear();

    // The same without the good token: the validator refuses, which is 403.
    let resp = raw_exchange(addr, &with_cookies(&[b"bad=\xff\xfe; token=\x80good"])).await;
    assert_eq!(status_of(&resp), 403, "{resp}");
    assert_eq!(calls(), [Vec::<(String, String)>::new()]);
    server.stop().await;
}

/// Sends the upgrade and a text frame in one write; returns the echo read after the 101.
async fn frame_with_the_upgrade(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut request = format!("{}\r\n", UPGRADE.replace("/chat", path)).into_bytes();
    request.extend_from_slice(&client_frame(0x81, b"in the same segment"));
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(&request).await.unwrap();
    let head = read_head(&mut tcp).await;
    assert_eq!(status_of(&head), 101, "{head}");
    let mut echo = vec![0u8; 2 + "in the same segment".len()];
    bounded(tcp.read_exact(&mut echo)).await.unwrap();
    echo
}

#[tokio::test]
async fn fault_11_a_frame_in_the_upgrade_segment_reaches_the_framework_servers() {
    let mut want = vec![0x81, 19];
    want.extend_from_slice(b"in the same segment");

    let ws_server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    ws_server.add_service("/Echo", || Echo).unwrap();
    ws_server.start();
    assert_eq!(
        frame_with_the_upgrade(ws_server.local_addr(), "/Echo").await,
        want,
        "WebSocketServer"
    );
    ws_server.stop().await;

    let http = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    http.add_service("/Echo", || Echo).unwrap();
    http.start();
    assert_eq!(
        frame_with_the_upgrade(http.local_addr(), "/Echo").await,
        want,
        "HttpServer"
    );
    http.stop().await;
}

#[tokio::test]
async fn fault_6_bad_offers_are_declined_and_a_later_valid_one_is_accepted() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    server
        .add_service_with(
            "/chat",
            ServiceOptions::default().compression(Deflate::default()),
            || Echo,
        )
        .unwrap();
    server.start();
    let offers = [
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits=",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits=9; client_max_window_bits=9",
        "permessage-deflate; unknown_param",
        "x-webkit-deflate-frame",
        "permessage-deflate; client_max_window_bits=10",
    ]
    .join(", ");
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(format!("{UPGRADE}Sec-WebSocket-Extensions: {offers}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut tcp).await;
    assert_eq!(status_of(&head), 101, "{head}");
    let agreed = header(&head, "sec-websocket-extensions").expect("an extension was accepted");
    assert_eq!(agreed, "permessage-deflate; client_max_window_bits=10");

    // Run the agreed compression over the raw connection and check messages both ways.
    let ours = Deflate::default().client_max_window_bits(Some(10));
    let negotiated = ours.accept_response(agreed).unwrap();
    let mut conn = wsharp::proto::Connection::new(Role::Client, Config::default());
    conn.set_deflate(&negotiated, &ours);
    let mut ws = WebSocket::from_connection(tcp, conn, &[], None);
    assert!(ws.is_compressed());
    for i in 0..50 {
        let text = format!("message {i}: {}", "compressible text ".repeat(i * 10));
        ws.send(text.clone()).await.unwrap();
        assert_eq!(
            bounded(ws.recv()).await.unwrap().unwrap(),
            Message::text(text)
        );
        let binary: Vec<u8> = (0..i * 100).map(|j| (j % 7) as u8).collect();
        ws.send(Message::binary(binary.clone())).await.unwrap();
        assert_eq!(
            bounded(ws.recv()).await.unwrap().unwrap(),
            Message::binary(binary)
        );
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    while let Some(m) = bounded(ws.recv()).await {
        m.unwrap();
    }
    assert_eq!(ws.close_status().unwrap().code, CloseCode::NORMAL);
    server.stop().await;
}
