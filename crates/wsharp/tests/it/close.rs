//! Close handshake and abnormal endings over TCP: fault catalogue 39 and 41, and split halves.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsharp::{CloseCode, Config, Error, Message, ServerBuilder};

use crate::util::{UPGRADE, bounded, client_frame, echo_server, raw_accept};

/// A raw client that completes the handshake and then does what the test says.
async fn raw_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("{UPGRADE}\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        bounded(tcp.read_exact(&mut b)).await.unwrap();
        head.push(b[0]);
    }
    tcp
}

#[tokio::test]
async fn fault_39_peer_that_never_answers_our_close() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let config = Config::default().close_timeout(Duration::from_millis(300));
        let mut ws = ServerBuilder::new()
            .config(config)
            .accept(tcp)
            .await
            .unwrap();
        ws.close(CloseCode::GOING_AWAY, "stopping").await.unwrap();
        let started = Instant::now();
        let mut seen = Vec::new();
        while let Some(m) = ws.recv().await {
            seen.push(m.map_err(|e| e.to_string()));
        }
        (started.elapsed(), seen, ws.close_status())
    });
    let mut peer = raw_client(addr).await;
    // The peer sends data after our close but never a close of its own.
    peer.write_all(&client_frame(0x81, b"late")).await.unwrap();
    let (elapsed, seen, status) = bounded(server).await.unwrap();
    assert_eq!(seen[0], Ok(Message::text("late")));
    assert!(
        matches!(&seen[1], Err(e) if e.contains("timed out")),
        "{seen:?}"
    );
    assert_eq!(status.unwrap().code, CloseCode::ABNORMAL);
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

/// Reads one masked client frame from `tcp`: its first byte and unmasked payload.
async fn read_client_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.unwrap();
    assert!(head[1] & 0x80 != 0, "a client frame is masked");
    let len = usize::from(head[1] & 0x7f);
    assert!(len < 126, "a short frame");
    let mut key = [0u8; 4];
    tcp.read_exact(&mut key).await.unwrap();
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await.unwrap();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
    (head[0], payload)
}

const CLIENT_CLOSE_TIMEOUT: Duration = Duration::from_millis(300);

/// A raw server that answers the upgrade, waits for the client's close, sends a data frame
/// after it and never a close of its own, then reads until the client ends the TCP
/// connection. The task returns the time from the client's close to that end, and what was
/// read after the close (or the error kind of a reset).
type Ending = (Duration, Result<Vec<u8>, std::io::ErrorKind>);

async fn never_closing_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<Ending>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .expect("a key");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            wsharp::proto::handshake::accept_key(key.as_bytes())
        );
        tcp.write_all(response.as_bytes()).await.unwrap();
        let (b0, payload) = read_client_frame(&mut tcp).await;
        let got_close = Instant::now();
        assert_eq!(b0, 0x88, "the client's close");
        assert_eq!(&payload[..2], &1000u16.to_be_bytes());
        tcp.write_all(&[0x81, 4, b'l', b'a', b't', b'e'])
            .await
            .unwrap();
        let mut rest = Vec::new();
        // EOF or a reset: either ends the connection.
        let ended = tcp.read_to_end(&mut rest).await;
        (
            got_close.elapsed(),
            ended.map(|_| rest).map_err(|e| e.kind()),
        )
    });
    (addr, server)
}

/// Connects to `addr` with the close timeout, closes, and checks what `recv` reports: the
/// late data message, then the close timeout, then the end, with 1006.
async fn close_unanswered(addr: std::net::SocketAddr) -> wsharp::WebSocket<wsharp::Transport> {
    let mut ws = bounded(
        wsharp::ClientBuilder::new(format!("ws://{addr}/"))
            .config(Config::default().close_timeout(CLIENT_CLOSE_TIMEOUT))
            .connect(),
    )
    .await
    .unwrap();
    ws.close(CloseCode::NORMAL, "bye").await.unwrap();
    let closed = Instant::now();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("late"),
        "data that arrives between our close and the peer's is delivered"
    );
    match bounded(ws.recv()).await {
        Some(Err(Error::CloseTimeout)) => {}
        other => panic!("expected the close timeout, got {other:?}"),
    }
    let waited = closed.elapsed();
    assert!(bounded(ws.recv()).await.is_none());
    assert_eq!(ws.close_status().unwrap().code, CloseCode::ABNORMAL);
    assert!(
        waited >= CLIENT_CLOSE_TIMEOUT - Duration::from_millis(20)
            && waited < Duration::from_secs(2),
        "the close timeout ended the wait after {waited:?}"
    );
    ws
}

fn assert_ended(until_eof: Duration, ended: Result<Vec<u8>, std::io::ErrorKind>) {
    assert!(
        until_eof < CLIENT_CLOSE_TIMEOUT + Duration::from_millis(700),
        "the server saw the connection end {until_eof:?} after the client's close"
    );
    if let Ok(rest) = ended {
        assert!(rest.is_empty(), "nothing after the close: {rest:?}");
    }
}

#[tokio::test]
async fn fault_39_client_whose_server_never_answers_our_close() {
    let (addr, server) = never_closing_server().await;
    let ws = close_unanswered(addr).await;
    drop(ws);
    let (until_eof, ended) = bounded(server).await.unwrap();
    assert_ended(until_eof, ended);
}

#[tokio::test]
async fn fault_39_client_ends_tcp_at_the_close_timeout_while_still_held() {
    let (addr, server) = never_closing_server().await;
    let ws = close_unanswered(addr).await;
    // The WebSocket is still held: the library itself must have ended the connection.
    let (until_eof, ended) = bounded(server).await.unwrap();
    assert_ended(until_eof, ended);
    drop(ws);
}

#[tokio::test]
async fn fault_41_reset_mid_frame_is_an_abnormal_end() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = wsharp::accept(tcp).await.unwrap();
        let first = ws.recv().await;
        let next = ws.recv().await;
        (first, next.is_none(), ws.close_status())
    });
    let mut peer = raw_client(addr).await;
    peer.write_all(&client_frame(0x81, b"partial frame")[..6])
        .await
        .unwrap();
    drop(peer);
    let (first, ended, status) = bounded(server).await.unwrap();
    assert!(
        matches!(first, Some(Err(Error::ResetWithoutClosingHandshake))),
        "{first:?}"
    );
    assert!(ended);
    assert_eq!(status.unwrap().code, CloseCode::ABNORMAL);
}

#[tokio::test]
async fn protocol_violation_gets_its_close_code_before_tcp_closes() {
    let addr = echo_server(ServerBuilder::new()).await;
    let mut peer = raw_client(addr).await;
    peer.write_all(&client_frame(0x81, b"ok")).await.unwrap();
    peer.write_all(&client_frame(0x83, b"")).await.unwrap();
    let mut got = Vec::new();
    bounded(peer.read_to_end(&mut got)).await.unwrap();
    // The echo, then a close frame with 1002, then EOF.
    assert_eq!(&got[..4], &[0x81, 2, b'o', b'k']);
    assert_eq!(got[4], 0x88);
    assert_eq!(u16::from_be_bytes([got[6], got[7]]), 1002);
}

#[tokio::test]
async fn clean_close_both_ways_and_split_halves() {
    let addr = echo_server(ServerBuilder::new()).await;
    let ws = bounded(wsharp::connect(&format!("ws://{addr}/")))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..100 {
            tx.send(format!("m{i}")).await.unwrap();
        }
        tx.close(CloseCode::NORMAL, "done").await.unwrap();
        tx
    });
    let mut got = Vec::new();
    while let Some(m) = bounded(rx.recv()).await {
        got.push(m.unwrap());
    }
    assert_eq!(got.len(), 101);
    assert_eq!(got[99], Message::text("m99"));
    assert!(matches!(&got[100], Message::Close(Some(f)) if f.code == CloseCode::NORMAL));
    let tx = writer.await.unwrap();
    let ws = rx.reunite(tx).unwrap();
    assert_eq!(ws.close_status().unwrap().code, CloseCode::NORMAL);
    assert!(matches!(
        bounded(async {
            let mut ws = ws;
            ws.send("after").await
        })
        .await,
        Err(Error::Send(wsharp::SendError::SendAfterClosing))
    ));
}

#[tokio::test]
async fn fault_46_send_waits_when_the_peer_stops_reading() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let chunk_len = 64 << 10;
    // The peer completes the handshake and reads nothing until told to; then it reads every
    // message until the close.
    let (start_reading, go) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = wsharp::accept(tcp).await.unwrap();
        go.await.unwrap();
        let mut messages = 0usize;
        while let Some(m) = bounded(ws.recv()).await {
            match m.unwrap() {
                Message::Binary(b) => {
                    assert!(b.len() == chunk_len && b.iter().all(|&x| x == 0));
                    messages += 1;
                }
                Message::Close(_) => {}
                other => panic!("{other:?}"),
            }
        }
        messages
    });
    let high_water = 1 << 20;
    let config = Config::default().write_high_water(high_water);
    let mut ws = bounded(
        wsharp::ClientBuilder::new(format!("ws://{addr}/"))
            .config(config)
            .connect(),
    )
    .await
    .unwrap();
    let chunk = Message::binary(vec![0u8; chunk_len]);
    // Feeds complete until the socket buffers and our high-water mark are full; then a feed
    // waits (and, dropped while it waits, has queued nothing).
    let mut queued = 0usize;
    while tokio::time::timeout(Duration::from_millis(500), ws.feed(chunk.clone()))
        .await
        .is_ok_and(|fed| {
            fed.unwrap();
            true
        })
    {
        queued += 1;
        assert!(
            queued * chunk_len < 1 << 30,
            "queued 1 GiB without ever waiting"
        );
    }
    let pending = ws.connection().transmit_len();
    assert!(
        (high_water..=high_water + chunk_len + 64).contains(&pending),
        "{pending} bytes queued while waiting, high-water mark {high_water}"
    );
    // Once the peer reads, the waiting send goes through, and the peer has every message.
    start_reading.send(()).unwrap();
    bounded(ws.send(chunk.clone())).await.unwrap();
    queued += 1;
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    while bounded(ws.recv()).await.is_some() {}
    assert_eq!(bounded(peer).await.unwrap(), queued);
}

#[tokio::test]
async fn a_queue_echo_stops_reading_from_a_peer_that_does_not_read() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let high_water = 256 << 10;
    let most_queued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = {
        let most_queued = most_queued.clone();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = ServerBuilder::new()
                .config(Config::default().write_high_water(high_water))
                .accept(tcp)
                .await
                .unwrap();
            while let Some(Ok(message)) = ws.recv().await {
                ws.queue(message).unwrap();
                most_queued.fetch_max(
                    ws.connection().transmit_len(),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
        })
    };
    // The client sends and never reads its echoes.
    let mut ws = bounded(wsharp::ClientBuilder::new(format!("ws://{addr}/")).connect())
        .await
        .unwrap();
    let chunk = Message::binary(vec![1u8; 64 << 10]);
    let mut sent = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_millis(500), ws.send(chunk.clone())).await {
            Ok(Ok(())) => sent += 64 << 10,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => break,
        }
        assert!(
            sent < 1 << 30,
            "sent 1 GiB: the server never stopped reading"
        );
    }
    let most = most_queued.load(std::sync::atomic::Ordering::Relaxed);
    // One read's worth of echoes may be queued past the mark, no more.
    assert!(
        most >= high_water && most <= high_water + (256 << 10),
        "{most} queued"
    );
    server.abort();
}

#[tokio::test]
async fn server_ends_after_the_close_handshake_without_waiting_for_the_clients_fin() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = wsharp::accept(tcp).await.unwrap();
        let mut seen = Vec::new();
        while let Some(m) = ws.recv().await {
            seen.push(m.unwrap());
        }
        (seen, ws.close_status())
    });
    let mut peer = raw_client(addr).await;
    let mut close = client_frame(0x88, &[0x03, 0xe8]);
    close.splice(0..0, client_frame(0x81, b"last"));
    peer.write_all(&close).await.unwrap();
    // The client keeps its side open: the server's recv ends on the close handshake alone,
    // long before the close timeout (5 s) would end it.
    let (seen, status) = tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("the server waited for the client's FIN")
        .unwrap();
    assert_eq!(seen[0], Message::text("last"));
    assert!(matches!(seen[1], Message::Close(Some(ref f)) if f.code == CloseCode::NORMAL));
    assert_eq!(status.unwrap().code, CloseCode::NORMAL);
    // The server closed the TCP connection first, after its close frame.
    let mut got = Vec::new();
    bounded(peer.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, [0x88, 2, 0x03, 0xe8]);
}

/// A stream that reports each write that had to wait (the caller's waker is then what the
/// socket will wake).
struct WatchedWrites {
    tcp: TcpStream,
    waits: tokio::sync::mpsc::UnboundedSender<()>,
}

impl tokio::io::AsyncRead for WatchedWrites {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for WatchedWrites {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf);
        if polled.is_pending() {
            let _ = self.waits.send(());
        }
        polled
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if polled.is_pending() {
            let _ = self.waits.send(());
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The halves share one socket and both write. Here the send half waits for a peer that
/// stopped reading; a ping then wakes the receive half, which waits to write too. tokio keeps
/// one write waker per socket, so without a waker per half the send half's wakeup is taken by
/// the receive half, and its send hangs once the peer reads again.
#[tokio::test]
async fn split_halves_both_wake_when_the_socket_drains() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ping_tx, ping_now) = tokio::sync::oneshot::channel::<()>();
    let (read_tx, read_now) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        raw_accept(&mut tcp, None).await;
        // Once the client's send waits, ping it without reading anything.
        ping_now.await.unwrap();
        tcp.write_all(&[0x89, 0x02, b'h', b'i']).await.unwrap();
        // Once its receive half has waited to write too, read everything.
        read_now.await.unwrap();
        let mut sink = vec![0u8; 1 << 20];
        let mut total = 0usize;
        while let Ok(n) = bounded(tcp.read(&mut sink)).await {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let (waits_tx, mut waits) = tokio::sync::mpsc::unbounded_channel();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let ws = bounded(
        wsharp::ClientBuilder::new(format!("ws://{addr}/"))
            .config(Config::default().close_timeout(Duration::from_millis(500)))
            .connect_on(WatchedWrites {
                tcp,
                waits: waits_tx,
            }),
    )
    .await
    .unwrap();
    let (mut tx, mut rx) = ws.split();
    let (blocked_tx, blocked) = tokio::sync::oneshot::channel::<()>();
    let sender = tokio::spawn(async move {
        let chunk = Message::binary(vec![1u8; 256 << 10]);
        let mut sent = 0;
        let mut blocked_tx = Some(blocked_tx);
        // Sends until a send waits for the socket, reports it, and finishes that send.
        loop {
            let send = tx.send(chunk.clone());
            tokio::pin!(send);
            match tokio::time::timeout(Duration::from_millis(300), &mut send).await {
                Ok(result) => {
                    result.unwrap();
                    sent += 1;
                }
                Err(_) => {
                    blocked_tx.take().unwrap().send(()).unwrap();
                    bounded(send).await.unwrap();
                    sent += 1;
                    break;
                }
            }
        }
        tx.close(CloseCode::NORMAL, "done").await.unwrap();
        sent
    });
    let receiver = tokio::spawn(async move { while let Some(Ok(_)) = rx.recv().await {} });
    bounded(blocked).await.unwrap();
    // The send half's write waited; drop the waits seen so far, then ping.
    while waits.try_recv().is_ok() {}
    ping_tx.send(()).unwrap();
    // The ping wakes the receive half, whose write waits as well: its waker is now the one
    // the socket holds.
    bounded(waits.recv()).await.unwrap();
    read_tx.send(()).unwrap();
    // Once the peer reads, the waiting send finishes at once (a woken task takes microseconds;
    // five seconds only tells a hang from a slow machine).
    let sent = tokio::time::timeout(Duration::from_secs(5), sender)
        .await
        .expect("the send half was not woken when the socket drained")
        .unwrap();
    assert!(sent > 1, "the socket filled after {sent} sends");
    let total = bounded(peer).await.unwrap();
    assert!(
        total >= sent * (256 << 10),
        "the peer read {total} bytes of {sent} sends"
    );
    receiver.abort();
}

/// Accepts one connection and reports how it ended: the close code received, or the error.
async fn one_session_ending() -> (String, tokio::sync::oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = ServerBuilder::new().accept(tcp).await.unwrap();
        let mut seen = Vec::new();
        let ending = loop {
            match ws.recv().await {
                Some(Ok(Message::Close(frame))) => {
                    break format!("close {:?}", frame.map(|f| f.code.0));
                }
                Some(Ok(m)) => seen.push(m.as_text().unwrap_or("?").to_owned()),
                Some(Err(e)) => break format!("error {e}"),
                None => break "end".to_owned(),
            }
        };
        let _ = tx.send(format!("{} then {ending}", seen.join(",")));
    });
    (url, rx)
}

#[tokio::test]
async fn an_async_socket_set_to_close_on_drop_sends_1001() {
    let (url, ending) = one_session_ending().await;
    let mut ws = bounded(wsharp::connect(&url)).await.unwrap();
    ws.set_close_on_drop(true);
    ws.queue("queued before the drop").unwrap();
    drop(ws);
    assert_eq!(
        bounded(ending).await.unwrap(),
        "queued before the drop then close Some(1001)"
    );

    // Without it, dropping ends the TCP connection without a close frame.
    let (url, ending) = one_session_ending().await;
    let mut ws = bounded(wsharp::connect(&url)).await.unwrap();
    ws.set_close_on_drop(true);
    ws.set_close_on_drop(false);
    drop(ws);
    let ending = bounded(ending).await.unwrap();
    assert!(
        ending.starts_with(" then error connection reset"),
        "{ending}"
    );
}
