//! Faults of the transport and of peers that misbehave, against raw TCP peers on loopback:
//! fault catalogue 20 (a refusal's body is read up to a cap), 41 (resets and EOF mid-frame
//! and mid-handshake) and 44 (a back-reference across messages without context takeover).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use wsharp::proto::handshake::{MAX_ERROR_BODY, accept_key};
use wsharp::server::{Behavior, CloseStatus, Session, WebSocketServer};
use wsharp::{ClientBuilder, CloseCode, Deflate, Error, HandshakeError, Message, ServerBuilder};

use crate::util::{UPGRADE, bounded, client_frame, python};

/// Reads an HTTP head from `tcp`; `None` at EOF.
async fn read_head(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => head.push(byte[0]),
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn key_of(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .expect("a key")
}

/// A raw server: each connection is handed to `serve` after its request head was read.
/// Returns the address and the count of connections accepted.
async fn raw_server<F, Fut>(serve: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(TcpStream, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let Some(head) = read_head(&mut tcp).await else {
                continue;
            };
            tokio::spawn(serve(tcp, head));
        }
    });
    (addr, accepted)
}

/// Holds `tcp` open until the peer closes it (or a bound passes).
async fn hold(mut tcp: TcpStream) {
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(crate::util::LIMIT, async {
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// A stream that counts the bytes read through it.
struct Counted<S>(S, Arc<AtomicUsize>);

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.0).poll_read(cx, buf))?;
        self.1
            .fetch_add(buf.filled().len() - before, Ordering::SeqCst);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

const OK_10_MB: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10000000\r\n\r\n";

/// Answers every upgrade with a 200 and a 10 MB body, then holds the connection open.
async fn ten_mb_server() -> SocketAddr {
    let (addr, _) = raw_server(|mut tcp, _| async move {
        if tcp.write_all(OK_10_MB.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'z'; 100_000];
        let write_all = async {
            for _ in 0..100 {
                if tcp.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        };
        // A client that stopped reading leaves the socket buffers full: give up after a while.
        let _ = tokio::time::timeout(Duration::from_secs(5), write_all).await;
        hold(tcp).await;
    })
    .await;
    addr
}

#[tokio::test]
async fn fault_20_a_200_with_a_10_mb_body_reads_only_a_capped_body() {
    let addr = ten_mb_server().await;
    // Over a stream that counts what the client reads.
    let read = Arc::new(AtomicUsize::new(0));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let result = bounded(
        ClientBuilder::new(format!("ws://{addr}/chat")).connect_on(Counted(tcp, read.clone())),
    )
    .await;
    let took = started.elapsed();
    match result {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus {
            status,
            headers,
            body,
        })) => {
            assert_eq!(status, 200);
            assert_eq!(headers["content-length"], "10000000");
            assert_eq!(body.len(), MAX_ERROR_BODY);
            assert!(body.iter().all(|&b| b == b'z'));
        }
        other => panic!("{other:?}"),
    }
    // The head, the capped body, and at most one read's overshoot of the head buffer.
    let read = read.load(Ordering::SeqCst);
    assert!(
        read <= OK_10_MB.len() + MAX_ERROR_BODY + 8192,
        "read {read} bytes of a 10 MB response"
    );
    // The client did not wait for the rest nor for the handshake timeout (10 s).
    assert!(took < Duration::from_secs(5), "{took:?}");

    // The same over the client's own TCP connection.
    let started = Instant::now();
    match bounded(wsharp::connect(&format!("ws://{addr}/chat"))).await {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, body, .. })) => {
            assert_eq!(status, 200);
            assert_eq!(body.len(), MAX_ERROR_BODY);
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // And from the blocking client.
    let blocking = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = ClientBuilder::new(format!("ws://{addr}/chat")).connect_blocking();
        (result.map(|_| ()), started.elapsed())
    });
    let (result, took) = bounded(blocking).await.unwrap();
    match result {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, body, .. })) => {
            assert_eq!(status, 200);
            assert_eq!(body.len(), MAX_ERROR_BODY);
            assert!(body.iter().all(|&b| b == b'z'));
        }
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn fault_20_a_302_is_reported_with_its_location_and_body_not_followed() {
    let (addr, accepted) = raw_server(|mut tcp, _| async move {
        let _ = tcp
            .write_all(
                b"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:1/elsewhere\r\nContent-Length: 13\r\n\r\nmoved for now",
            )
            .await;
        hold(tcp).await;
    })
    .await;
    match bounded(wsharp::connect(&format!("ws://{addr}/chat"))).await {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus {
            status,
            headers,
            body,
        })) => {
            assert_eq!(status, 302);
            assert_eq!(headers["location"], "ws://127.0.0.1:1/elsewhere");
            assert_eq!(&body[..], b"moved for now");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // The blocking client reports the same and does not follow either.
    let blocking = tokio::task::spawn_blocking(move || {
        ClientBuilder::new(format!("ws://{addr}/chat"))
            .connect_blocking()
            .map(|_| ())
    });
    match bounded(blocking).await.unwrap() {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus {
            status,
            body,
            headers,
        })) => {
            assert_eq!(status, 302);
            assert_eq!(headers["location"], "ws://127.0.0.1:1/elsewhere");
            assert_eq!(&body[..], b"moved for now");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    // Without a length, only what came with the head is kept, and the client does not wait for
    // a body that may never end.
    let (addr, _) = raw_server(|mut tcp, _| async move {
        let _ = tcp
            .write_all(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n\r\npartial")
            .await;
        hold(tcp).await;
    })
    .await;
    let started = Instant::now();
    match bounded(wsharp::connect(&format!("ws://{addr}/chat"))).await {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, body, .. })) => {
            assert_eq!(status, 302);
            assert!(b"partial".starts_with(&body), "{body:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Resets `tcp`: SO_LINGER 0, then close, so the kernel sends an RST instead of a FIN.
fn reset(tcp: TcpStream) {
    tcp.set_zero_linger().unwrap();
    drop(tcp);
}

/// The first 10 bytes of a 100-byte masked binary frame.
fn partial_client_frame() -> Vec<u8> {
    let mut frame = vec![0x82, 0x80 | 100, 1, 2, 3, 4];
    frame.extend_from_slice(&[0x55; 10]);
    frame
}

/// Upgrades a raw connection to `addr` (path `/chat`) and returns it after the 101.
async fn raw_upgrade(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("{UPGRADE}\r\n").as_bytes())
        .await
        .unwrap();
    let head = bounded(read_head(&mut tcp)).await.expect("a response");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

#[tokio::test]
async fn fault_41_a_reset_mid_frame_ends_a_server_connection_abnormally() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = ServerBuilder::new().accept(tcp).await.unwrap();
        let first = ws.recv().await;
        let then = ws.recv().await;
        (first, then, ws.close_status())
    });
    let mut tcp = raw_upgrade(addr).await;
    tcp.write_all(&partial_client_frame()).await.unwrap();
    reset(tcp);
    let (first, then, status) = bounded(server).await.unwrap();
    assert!(matches!(first, Some(Err(_))), "{first:?}");
    assert!(then.is_none(), "{then:?}");
    assert_eq!(status.map(|s| s.code), Some(CloseCode::ABNORMAL));
}

/// Reports each session's end.
struct Report(mpsc::UnboundedSender<CloseStatus>);

impl Behavior for Report {
    async fn on_message(&mut self, _: &Session, _: Message) {}
    async fn on_close(&mut self, _: &Session, close: &CloseStatus) {
        let _ = self.0.send(close.clone());
    }
}

#[tokio::test]
async fn fault_41_a_reset_mid_frame_ends_a_session_with_1006() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let (tx, mut closes) = mpsc::unbounded_channel();
    server
        .add_service("/chat", move || Report(tx.clone()))
        .unwrap();
    server.start();
    let sessions = server.sessions("/chat").unwrap();
    let mut tcp = raw_upgrade(server.local_addr()).await;
    tcp.write_all(&partial_client_frame()).await.unwrap();
    reset(tcp);
    let close = bounded(closes.recv()).await.unwrap();
    assert_eq!(close.code, CloseCode::ABNORMAL);
    assert!(!close.was_clean);
    bounded(async {
        while sessions.count() != 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    server.stop().await;
}

/// A raw server that answers the upgrade with a 101 and then does `then`.
async fn raw_101_server<F, Fut>(extensions: &'static str, then: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let then = Arc::new(then);
    let (addr, _) = raw_server(move |mut tcp, head| {
        let then = then.clone();
        async move {
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extensions}\r\n",
                accept_key(key_of(&head).as_bytes())
            );
            if tcp.write_all(response.as_bytes()).await.is_ok() {
                then(tcp).await;
            }
        }
    })
    .await;
    addr
}

#[tokio::test]
async fn fault_41_a_reset_mid_frame_ends_a_client_connection_abnormally() {
    let addr = raw_101_server("", |mut tcp| async move {
        let _ = tcp.write_all(&[0x82, 100, 1, 2, 3, 4, 5, 6, 7, 8]).await;
        let _ = tcp.flush().await;
        reset(tcp);
    })
    .await;
    let mut ws = bounded(wsharp::connect(&format!("ws://{addr}/chat")))
        .await
        .unwrap();
    let first = bounded(ws.recv()).await;
    assert!(matches!(first, Some(Err(_))), "{first:?}");
    assert!(bounded(ws.recv()).await.is_none());
    assert_eq!(ws.close_status().map(|s| s.code), Some(CloseCode::ABNORMAL));
}

#[tokio::test]
async fn fault_41_eof_mid_frame_ends_a_client_connection_abnormally() {
    // The first 10 bytes of a 100-byte binary frame, then a FIN; the server keeps reading
    // until the client closes its side.
    let addr = raw_101_server("", |mut tcp| async move {
        let _ = tcp.write_all(&[0x82, 100, 1, 2, 3, 4, 5, 6, 7, 8]).await;
        let _ = tcp.shutdown().await;
        hold(tcp).await;
    })
    .await;
    let mut ws = bounded(wsharp::connect(&format!("ws://{addr}/chat")))
        .await
        .unwrap();
    let first = bounded(ws.recv()).await;
    assert!(
        matches!(first, Some(Err(Error::ResetWithoutClosingHandshake))),
        "{first:?}"
    );
    assert!(bounded(ws.recv()).await.is_none());
    assert_eq!(ws.close_status().map(|s| s.code), Some(CloseCode::ABNORMAL));
}

#[tokio::test]
async fn fault_41_eof_mid_handshake_on_the_server() {
    let half = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n";
    // ServerBuilder: accept reports the EOF at once, not at the handshake timeout (10 s).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let started = Instant::now();
        let result = ServerBuilder::new().accept(tcp).await.map(|_| ());
        (result, started.elapsed())
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(half).await.unwrap();
    tcp.shutdown().await.unwrap();
    let (result, took) = bounded(server).await.unwrap();
    match result {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(5), "{took:?}");

    // WebSocketServer: the connection is closed at once, and a reset mid-head is survived too.
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    server.add_service("/chat", || wsharp::demo::Echo).unwrap();
    server.start();
    let addr = server.local_addr();
    let started = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(half).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut out = Vec::new();
    let _ = bounded(tcp.read_to_end(&mut out)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(half).await.unwrap();
    reset(tcp);
    let mut ws = bounded(wsharp::connect(&format!("ws://{addr}/chat")))
        .await
        .unwrap();
    ws.send("still here").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("still here")
    );
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn fault_41_eof_and_reset_mid_handshake_on_the_client() {
    let (eof, _) = raw_server(|mut tcp, _| async move {
        let _ = tcp
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: webso")
            .await;
        let _ = tcp.shutdown().await;
        hold(tcp).await;
    })
    .await;
    let started = Instant::now();
    match bounded(wsharp::connect(&format!("ws://{eof}/chat"))).await {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let (rst, _) = raw_server(|mut tcp, _| async move {
        let _ = tcp
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: webso")
            .await;
        let _ = tcp.flush().await;
        reset(tcp);
    })
    .await;
    match bounded(wsharp::connect(&format!("ws://{rst}/chat"))).await {
        Err(Error::Io(_)) => {}
        other => panic!("{other:?}"),
    }
}

/// Two messages compressed by Python's zlib as one raw DEFLATE stream with sync flushes (each
/// without its `00 00 ff ff` tail): the second is the first again, so it is a back-reference
/// into the first message.
fn back_reference_payloads() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let script = r#"
import zlib
m = b"wsharp back-reference across messages; " * 3
c = zlib.compressobj(6, zlib.DEFLATED, -15)
a = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
b = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
tail = b"\x00\x00\xff\xff"
if not (a.endswith(tail) and b.endswith(tail) and len(b) < len(m) // 4):
    raise SystemExit("unexpected compressor output")
print(m.hex())
print(a[:-4].hex())
print(b[:-4].hex())
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(|l| {
        (0..l.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    });
    (
        lines.next().unwrap(),
        lines.next().unwrap(),
        lines.next().unwrap(),
    )
}

/// Reads one unmasked frame: its first byte and its payload.
async fn read_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0, "a server frame is not masked");
    let len = match head[1] & 0x7f {
        126 => usize::from(tcp.read_u16().await.unwrap()),
        127 => usize::try_from(tcp.read_u64().await.unwrap()).unwrap(),
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await.unwrap();
    (head[0], payload)
}

/// Sends the two compressed messages to a server that negotiated `offer`; returns the frames
/// the server sent back, up to a close frame or the second data frame.
async fn send_back_reference(offer: &str, first: &[u8], second: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let addr = crate::util::echo_server(ServerBuilder::new().compression(Deflate::default())).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("{UPGRADE}Sec-WebSocket-Extensions: {offer}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = bounded(read_head(&mut tcp)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("sec-websocket-extensions: {offer}")),
        "{head}"
    );
    // FIN, RSV1 (compressed), binary.
    tcp.write_all(&client_frame(0xC2, first)).await.unwrap();
    tcp.write_all(&client_frame(0xC2, second)).await.unwrap();
    let mut frames = Vec::new();
    loop {
        let frame = bounded(read_frame(&mut tcp)).await;
        let op = frame.0 & 0x0f;
        frames.push(frame);
        if op == 8 || frames.len() == 2 {
            return frames;
        }
    }
}

#[tokio::test]
async fn fault_44_a_back_reference_across_messages_without_context_takeover_is_1007_server() {
    let (_, first, second) = back_reference_payloads();
    // With context takeover the second message is valid: both are echoed.
    let frames = send_back_reference("permessage-deflate", &first, &second).await;
    assert_eq!(
        frames.iter().map(|f| f.0 & 0x0f).collect::<Vec<_>>(),
        [2, 2],
        "{frames:?}"
    );
    // Without it the client's compressor was to start afresh: the reference points before the
    // message's start, which must fail the connection with 1007, not inflate garbage.
    let frames = send_back_reference(
        "permessage-deflate; client_no_context_takeover",
        &first,
        &second,
    )
    .await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].0 & 0x0f, 2, "the first message is echoed");
    let (b0, close) = &frames[1];
    assert_eq!(b0 & 0x0f, 8, "{frames:?}");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1007);
}

#[tokio::test]
async fn fault_44_a_back_reference_across_messages_without_context_takeover_is_1007_client() {
    let (message, first, second) = back_reference_payloads();
    let (first, second) = (Arc::new(first), Arc::new(second));
    let (tx, mut received) = mpsc::unbounded_channel();
    let addr = raw_101_server(
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n",
        move |mut tcp| {
            let (first, second, tx) = (first.clone(), second.clone(), tx.clone());
            async move {
                for payload in [&first, &second] {
                    let mut frame = vec![0xC2, u8::try_from(payload.len()).unwrap()];
                    frame.extend_from_slice(payload);
                    let _ = tcp.write_all(&frame).await;
                }
                // The client's answer: a masked close frame.
                let mut head = [0u8; 2];
                if tcp.read_exact(&mut head).await.is_ok() {
                    let mut rest = vec![0u8; 4 + usize::from(head[1] & 0x7f)];
                    if tcp.read_exact(&mut rest).await.is_ok() {
                        let code = u16::from_be_bytes([rest[4] ^ rest[0], rest[5] ^ rest[1]]);
                        let _ = tx.send((head[0], code));
                    }
                }
                hold(tcp).await;
            }
        },
    )
    .await;
    let mut ws = bounded(
        ClientBuilder::new(format!("ws://{addr}/chat"))
            .compression(Deflate::default().server_no_context_takeover(true))
            .connect(),
    )
    .await
    .unwrap();
    assert!(ws.is_compressed());
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::binary(message)
    );
    match bounded(ws.recv()).await {
        Some(Err(Error::Protocol(e))) => assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD),
        other => panic!("{other:?}"),
    }
    let (b0, code) = bounded(received.recv()).await.unwrap();
    assert_eq!((b0 & 0x0f, code), (8, 1007));
}
