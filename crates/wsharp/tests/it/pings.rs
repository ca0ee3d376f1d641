//! Pings that answer (websocket-sharp's `Ping`, `IsAlive`, `Broadping`, `PingTo`, `Sweep`):
//! round trip times from pongs, silence as a timeout, and a sweep that judges sessions by their
//! pongs, not by their traffic.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsharp::server::{Behavior, ServiceOptions, Session, WebSocketServer};
use wsharp::{Error, Message};

use crate::util::{UPGRADE, bounded, client_frame, read_head};

/// Does nothing with messages.
struct Quiet;

impl Behavior for Quiet {
    async fn on_message(&mut self, _: &Session, _: Message) {}
}

/// Answers "alive" or "silent" to any message by pinging its own client from the callback.
struct AskAlive;

impl Behavior for AskAlive {
    async fn on_message(&mut self, session: &Session, _: Message) {
        let answer = if session.is_alive().await {
            "alive"
        } else {
            "silent"
        };
        let _ = session.send(answer).await;
    }
}

async fn server() -> WebSocketServer {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let options = ServiceOptions::default()
        .keep_clean(false, Duration::from_secs(2))
        .config(wsharp::Config::default().close_timeout(Duration::from_millis(300)));
    server
        .add_service_with("/quiet", options.clone(), || Quiet)
        .unwrap();
    server
        .add_service_with("/ask", options, || AskAlive)
        .unwrap();
    server.start();
    server
}

/// Waits until `n` sessions are open on `path`.
async fn sessions(server: &WebSocketServer, path: &str, n: usize) -> wsharp::server::Sessions {
    let sessions = server.sessions(path).unwrap();
    bounded(async {
        while sessions.count() < n {
            tokio::task::yield_now().await;
        }
    })
    .await;
    sessions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_all_ping_to_and_is_alive() {
    let server = server().await;
    let url = format!("ws://{}/quiet", server.local_addr());
    // `reader` reads (and so answers pings); `deaf` never reads.
    let mut reader = bounded(wsharp::connect(&url)).await.unwrap();
    let reading = tokio::spawn(async move { while let Some(Ok(_)) = reader.recv().await {} });
    let deaf = bounded(wsharp::connect(&url)).await.unwrap();
    let sessions = sessions(&server, "/quiet", 2).await;

    let answers = bounded(sessions.ping_all(Duration::from_secs(2))).await;
    assert_eq!(answers.len(), 2);
    let answered: Vec<_> = answers.iter().filter(|(_, rtt)| rtt.is_some()).collect();
    assert_eq!(answered.len(), 1, "{answers:?}");
    let (alive, rtt) = answered[0];
    assert!(rtt.unwrap() < Duration::from_secs(2));
    let silent = answers.keys().find(|id| *id != alive).unwrap().clone();

    assert!(
        bounded(sessions.ping_to(alive, Duration::from_secs(5)))
            .await
            .is_ok()
    );
    match bounded(sessions.ping_to(&silent, Duration::from_millis(200))).await {
        Err(Error::PongTimeout(d)) => assert_eq!(d, Duration::from_millis(200)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        bounded(sessions.ping_to("no-such-id", Duration::from_secs(1))).await,
        Err(Error::Send(_))
    ));
    assert!(bounded(sessions.get(alive).unwrap().is_alive()).await);
    assert!(!bounded(sessions.get(&silent).unwrap().is_alive()).await);
    drop(deaf);
    reading.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_callback_pings_its_own_client() {
    let server = server().await;
    let mut ws = bounded(wsharp::connect(&format!(
        "ws://{}/ask",
        server.local_addr()
    )))
    .await
    .unwrap();
    ws.send("are you there?").await.unwrap();
    // recv answers the callback's ping while it waits for the reply.
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("alive")
    );
    server.stop().await;
}

/// A client that sends all the time but never answers a ping is swept; one that answers stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_judges_by_pongs_not_traffic() {
    let server = server().await;
    let addr = server.local_addr();
    let mut answering = bounded(wsharp::connect(&format!("ws://{addr}/quiet")))
        .await
        .unwrap();
    let answers = tokio::spawn(async move { while let Some(Ok(_)) = answering.recv().await {} });
    let mut chatty = TcpStream::connect(addr).await.unwrap();
    chatty
        .write_all(UPGRADE.replace("/chat", "/quiet").as_bytes())
        .await
        .unwrap();
    chatty.write_all(b"\r\n").await.unwrap();
    assert!(read_head(&mut chatty).await.starts_with("HTTP/1.1 101"));
    let sessions = sessions(&server, "/quiet", 2).await;
    let chatter = tokio::spawn(async move {
        // A text frame every few milliseconds, whatever arrives (pings included) unread.
        let frame = client_frame(0x81, b"still here");
        while chatty.write_all(&frame).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut rest = Vec::new();
        let _ = chatty.read_to_end(&mut rest).await;
    });
    // The chatty client is heard from all the time, but only the other answers pings.
    assert_eq!(bounded(sessions.sweep()).await, 1);
    bounded(async {
        while sessions.count() > 1 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let kept = sessions.ids().remove(0);
    assert!(
        bounded(sessions.ping_to(&kept, Duration::from_secs(5)))
            .await
            .is_ok(),
        "the session kept is the one that answers"
    );
    chatter.abort();
    answers.abort();
    server.stop().await;
}

/// The client's ping against Python `websockets` (which answers pings itself): a round trip
/// time, and the echoes that arrived meanwhile still come out of `recv` in order.
#[tokio::test]
async fn the_client_pings_python_websockets() {
    let (_server, port) = crate::interop_python::python_echo_server();
    let mut ws = bounded(wsharp::connect(&format!("ws://127.0.0.1:{port}/")))
        .await
        .unwrap();
    for text in ["one", "two", "three"] {
        ws.send(text).await.unwrap();
    }
    let rtt = bounded(ws.ping_and_wait(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(rtt < Duration::from_secs(10));
    assert!(bounded(ws.is_alive(Duration::from_secs(10))).await);
    for text in ["one", "two", "three"] {
        assert_eq!(
            bounded(ws.recv()).await.unwrap().unwrap(),
            Message::text(text)
        );
    }
}

/// A server that never answers pings: the ping times out, and the connection goes on.
#[tokio::test]
async fn an_unanswered_client_ping_times_out_and_the_connection_goes_on() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        crate::util::raw_accept(&mut tcp, None).await;
        // Reads the client's frames and answers nothing but one text message at the end.
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        // Client frames are masked: unmask them to find the text.
        while !unmasked_texts(&seen).iter().any(|t| t == "hello") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed first");
            seen.extend_from_slice(&buf[..n]);
        }
        tcp.write_all(&[0x81, 2, b'o', b'k']).await.unwrap();
        tcp
    });
    let mut ws = bounded(wsharp::connect(&format!("ws://{addr}/")))
        .await
        .unwrap();
    match bounded(ws.ping_and_wait(Duration::from_millis(200))).await {
        Err(Error::PongTimeout(d)) => assert_eq!(d, Duration::from_millis(200)),
        other => panic!("{other:?}"),
    }
    ws.send("hello").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("ok")
    );
    drop(bounded(server).await.unwrap());
}

/// The text payloads of the masked client frames in `bytes` (whole frames only).
fn unmasked_texts(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while bytes.len() >= 6 {
        let len = usize::from(bytes[1] & 0x7f);
        if len > 125 || bytes.len() < 6 + len {
            break;
        }
        let mask = [bytes[2], bytes[3], bytes[4], bytes[5]];
        let payload: Vec<u8> = bytes[6..6 + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        if bytes[0] & 0x0f == 1 {
            out.push(String::from_utf8_lossy(&payload).into_owned());
        }
        bytes = &bytes[6 + len..];
    }
    out
}

/// The blocking client pings too, against Python `websockets`.
#[tokio::test]
async fn the_blocking_client_pings_python_websockets() {
    let (_server, port) = crate::interop_python::python_echo_server();
    tokio::task::spawn_blocking(move || {
        let mut ws = wsharp::blocking::connect(&format!("ws://127.0.0.1:{port}/")).unwrap();
        ws.send("one").unwrap();
        ws.send("two").unwrap();
        let rtt = ws.ping_and_wait(Duration::from_secs(10)).unwrap();
        assert!(rtt < Duration::from_secs(10));
        assert!(ws.is_alive(Duration::from_secs(10)));
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("one"));
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("two"));
    })
    .await
    .unwrap();
}
