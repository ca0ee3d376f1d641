//! Peers that stop reading or go silent: the keepalive and the close timeout end them in every
//! layer, and a stop never waits past its deadline (fault catalogue 39, 46, 47, 48).

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use wsharp::server::{Behavior, CloseStatus, ServiceOptions, Session, WebSocketServer};
use wsharp::{ClientBuilder, Config, Error, Message};

use crate::util::{UPGRADE, bounded, raw_accept};

/// What a [`Flood`] session reports.
#[derive(Debug)]
enum Seen {
    Opened,
    Closed(CloseStatus),
}

/// Sends megabytes to every session as soon as it opens, and reports its open and close.
struct Flood(UnboundedSender<Seen>);

impl Behavior for Flood {
    async fn on_open(&mut self, session: &Session) {
        let _ = self.0.send(Seen::Opened);
        let session = session.clone();
        tokio::spawn(async move {
            let chunk = Message::binary(vec![7u8; 256 << 10]);
            // Waits once the peer stops reading; ends when the session does.
            while session.send(chunk.clone()).await.is_ok() {}
        });
    }

    async fn on_message(&mut self, _: &Session, _: Message) {}

    async fn on_close(&mut self, _: &Session, info: &CloseStatus) {
        let _ = self.0.send(Seen::Closed(info.clone()));
    }
}

/// A raw client that upgrades to `path` and then never reads again.
async fn deaf_client(server: &WebSocketServer, path: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(format!("{}\r\n", UPGRADE.replace("/chat", path)).as_bytes())
        .await
        .unwrap();
    tcp
}

#[tokio::test]
async fn keepalive_ends_a_session_whose_peer_stopped_reading() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let (tx, mut seen) = unbounded_channel();
    let interval = Duration::from_millis(300);
    let options = ServiceOptions::default()
        .keepalive(Some(interval))
        .ignore_extensions()
        .config(Config::default().close_timeout(Duration::from_secs(60)));
    server
        .add_service_with("/flood", options, move || Flood(tx.clone()))
        .unwrap();
    server.start();
    let _deaf = deaf_client(&server, "/flood").await;
    assert!(matches!(bounded(seen.recv()).await, Some(Seen::Opened)));
    let started = Instant::now();
    let Some(Seen::Closed(info)) = bounded(seen.recv()).await else {
        panic!("expected the close");
    };
    let took = started.elapsed();
    // The peer is silent and its buffers are full: pinged after one interval, judged dead
    // after the next, without waiting for the 60 s close timeout or for the blocked writes.
    assert!(
        took < interval * 2 + Duration::from_millis(700),
        "session ended after {took:?}"
    );
    assert!(
        took >= interval * 2,
        "ended after {took:?}: before two intervals"
    );
    assert!(!info.was_clean, "{info:?}");
    assert_eq!(server.sessions("/flood").unwrap().count(), 0);
}

/// A started server whose stop deadline and sessions share `close_timeout`, with one service.
async fn stopping_server<B: Behavior>(
    close_timeout: Duration,
    path: &str,
    factory: impl Fn() -> B + Send + Sync + 'static,
) -> WebSocketServer {
    // The server's close timeout sets the stop's deadline.
    let server = WebSocketServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .config(Config::default().close_timeout(close_timeout));
    let options = ServiceOptions::default()
        .ignore_extensions()
        .config(Config::default().close_timeout(close_timeout));
    server.add_service_with(path, options, factory).unwrap();
    server.start();
    server
}

#[tokio::test]
async fn stop_ends_sessions_that_never_finish_the_close() {
    let close_timeout = Duration::from_millis(400);
    let (tx, mut seen) = unbounded_channel();
    let server = stopping_server(close_timeout, "/flood", move || Flood(tx.clone())).await;
    let mut deaf = Vec::new();
    for _ in 0..3 {
        deaf.push(deaf_client(&server, "/flood").await);
    }
    for _ in 0..3 {
        assert!(matches!(bounded(seen.recv()).await, Some(Seen::Opened)));
    }
    let sessions = server.sessions("/flood").unwrap();
    assert_eq!(sessions.count(), 3);
    let started = Instant::now();
    bounded(server.stop()).await;
    let took = started.elapsed();
    assert!(
        took < close_timeout + Duration::from_secs(2),
        "stop took {took:?}"
    );
    assert_eq!(sessions.count(), 0, "nothing left registered");
    // None of them could finish the close handshake: none ended cleanly.
    while let Ok(seen) = seen.try_recv() {
        let Seen::Closed(info) = seen else {
            panic!("{seen:?}");
        };
        assert!(!info.was_clean, "{info:?}");
    }
    drop(deaf);
}

/// A server that completes the handshake, then neither reads nor answers.
async fn silent_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        raw_accept(&mut tcp, None).await;
        tcp
    });
    (addr, task)
}

fn keepalive_config(interval: Duration) -> Config {
    Config::default()
        .keepalive_interval(Some(interval))
        .close_timeout(Duration::from_secs(60))
}

#[tokio::test]
async fn fault_47_client_keepalive_finds_a_dead_server() {
    let (addr, server) = silent_server().await;
    let interval = Duration::from_millis(200);
    let mut ws = bounded(
        ClientBuilder::new(format!("ws://{addr}/"))
            .config(keepalive_config(interval))
            .connect(),
    )
    .await
    .unwrap();
    let _server_side = bounded(server).await.unwrap();
    let started = Instant::now();
    let result = bounded(ws.recv()).await;
    let took = started.elapsed();
    assert!(
        matches!(result, Some(Err(Error::KeepaliveTimeout))),
        "{result:?}"
    );
    assert!(
        took >= interval * 2 && took < interval * 2 + Duration::from_millis(600),
        "{took:?}"
    );
    assert!(bounded(ws.recv()).await.is_none(), "then the stream ends");
}

#[tokio::test]
async fn fault_47_blocking_client_keepalive_finds_a_dead_server() {
    let (addr, server) = silent_server().await;
    let interval = Duration::from_millis(200);
    let client = tokio::task::spawn_blocking(move || {
        let mut ws = ClientBuilder::new(format!("ws://{addr}/"))
            .config(keepalive_config(interval))
            .connect_blocking()
            .unwrap();
        let started = Instant::now();
        let result = ws.recv();
        (result, started.elapsed(), ws.recv().is_none())
    });
    let _server_side = bounded(server).await.unwrap();
    let (result, took, ended) = bounded(client).await.unwrap();
    assert!(
        matches!(result, Some(Err(Error::KeepaliveTimeout))),
        "{result:?}"
    );
    assert!(
        took >= interval * 2 && took < interval * 2 + Duration::from_millis(600),
        "{took:?}"
    );
    assert!(ended, "then the iterator ends");
}

#[tokio::test]
async fn a_live_peer_that_answers_pings_is_kept() {
    // The same keepalive against a server that answers: no timeout over many intervals.
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    server.add_service("/echo", || EchoOnly).unwrap();
    server.start();
    let interval = Duration::from_millis(100);
    let mut ws = bounded(
        ClientBuilder::new(format!("ws://{}/echo", server.local_addr()))
            .config(keepalive_config(interval).emit_control_frames(true))
            .connect(),
    )
    .await
    .unwrap();
    let mut pongs = 0;
    while pongs < 5 {
        match bounded(ws.recv()).await {
            Some(Ok(Message::Pong(_))) => pongs += 1,
            other => panic!("expected keepalive pongs, got {other:?}"),
        }
    }
    ws.send("still here").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("still here")
    );
}

struct EchoOnly;

impl Behavior for EchoOnly {
    async fn on_message(&mut self, session: &Session, message: Message) {
        if message.is_data() {
            let _ = session.send(message).await;
        }
    }
}

/// A behavior whose message callback never returns; reports when it is dropped.
struct Stuck(UnboundedSender<&'static str>);

impl Behavior for Stuck {
    async fn on_open(&mut self, _: &Session) {
        let _ = self.0.send("opened");
    }

    async fn on_message(&mut self, _: &Session, _: Message) {
        let _ = self.0.send("stuck");
        std::future::pending::<()>().await;
    }
}

impl Drop for Stuck {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
}

#[tokio::test]
async fn stop_ends_a_callback_that_never_returns() {
    let close_timeout = Duration::from_millis(300);
    let (tx, mut seen) = unbounded_channel();
    let server = stopping_server(close_timeout, "/stuck", move || Stuck(tx.clone())).await;
    let mut ws = bounded(wsharp::connect(&format!(
        "ws://{}/stuck",
        server.local_addr()
    )))
    .await
    .unwrap();
    assert_eq!(bounded(seen.recv()).await, Some("opened"));
    ws.send("hang").await.unwrap();
    assert_eq!(bounded(seen.recv()).await, Some("stuck"));
    let started = Instant::now();
    bounded(server.stop()).await;
    let took = started.elapsed();
    assert!(
        took < close_timeout + Duration::from_secs(3),
        "stop took {took:?}"
    );
    // The stuck callback's task is ended with its session, not left running.
    assert_eq!(bounded(seen.recv()).await, Some("dropped"));
    // The client saw the server's close (1001) answered by its own.
    let mut code = None;
    while let Some(msg) = bounded(ws.recv()).await {
        if let Ok(Message::Close(frame)) = msg {
            code = frame.map(|f| f.code.0);
        }
    }
    assert_eq!(code, Some(1001));
}
