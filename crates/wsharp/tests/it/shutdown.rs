//! Fault catalogue 48 under load: a stop with 250 peers that answer the close and 250 that
//! never read nor answer anything, on a `WebSocketServer` and on an `HttpServer`. The stop
//! must return within the close timeout plus one second, and every peer, silent ones
//! included, must find a close frame with 1001 on its socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use wsharp::http_server::{HttpServer, HttpServerOptions};
use wsharp::server::{Behavior, CloseStatus, ServiceOptions, Session, WebSocketServer};
use wsharp::{CloseCode, Config, Message};

use crate::util::{UPGRADE, bounded};

const POLITE: usize = 250;
const SILENT: usize = 250;
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);
/// What a stop may take past its documented bound (close timeout + 1 s): the sessions still
/// open then are aborted, which takes a few milliseconds more (more on a loaded machine).
const SLACK: Duration = Duration::from_millis(400);

/// Counts opened sessions (a permit each) and sessions that ended with a clean close.
struct Counted {
    opened: Arc<Semaphore>,
    clean: Arc<AtomicUsize>,
}

impl Behavior for Counted {
    async fn on_open(&mut self, _: &Session) {
        self.opened.add_permits(1);
    }

    async fn on_message(&mut self, session: &Session, message: Message) {
        let _ = session.send(message).await;
    }

    async fn on_close(&mut self, _: &Session, close: &CloseStatus) {
        if close.was_clean {
            self.clean.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A wsharp client that answers the close: its task returns the code of the close it got.
async fn polite(url: &str) -> JoinHandle<Option<CloseCode>> {
    let mut ws = bounded(wsharp::connect(url)).await.expect("connect");
    tokio::spawn(async move {
        let mut code = None;
        while let Some(m) = ws.recv().await {
            if let Ok(Message::Close(frame)) = m {
                code = frame.map(|f| f.code);
            }
        }
        code
    })
}

/// A raw peer that upgrades and then neither reads nor writes until the test reads it.
async fn silent(addr: SocketAddr, path: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("{}\r\n", UPGRADE.replace("/chat", path)).as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        bounded(tcp.read_exact(&mut b)).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    tcp
}

/// The server under test, behind what the test needs of it.
enum Server {
    Ws(WebSocketServer),
    Http(HttpServer),
}

impl Server {
    fn addr(&self) -> SocketAddr {
        match self {
            Self::Ws(s) => s.local_addr(),
            Self::Http(s) => s.local_addr(),
        }
    }

    async fn stop(&self) {
        match self {
            Self::Ws(s) => s.stop().await,
            Self::Http(s) => s.stop().await,
        }
    }
}

/// Opens the peers, stops `server`, and checks the stop took at most `bound` and what every
/// peer got.
async fn stop_under_load(
    server: Server,
    opened: Arc<Semaphore>,
    clean: Arc<AtomicUsize>,
    bound: Duration,
) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let addr = server.addr();
    let url = format!("ws://{addr}/Echo");
    let mut polite_peers = Vec::with_capacity(POLITE);
    let mut silent_peers = Vec::with_capacity(SILENT);
    for _ in 0..POLITE.max(SILENT) {
        if polite_peers.len() < POLITE {
            polite_peers.push(polite(&url).await);
        }
        if silent_peers.len() < SILENT {
            silent_peers.push(silent(addr, "/Echo").await);
        }
    }
    // Every session is open (its on_open ran) before the stop.
    let all = u32::try_from(POLITE + SILENT).unwrap();
    bounded(opened.acquire_many(all)).await.unwrap().forget();

    let started = Instant::now();
    bounded(server.stop()).await;
    let took = started.elapsed();
    eprintln!("stop with {POLITE} polite and {SILENT} silent peers took {took:?}");
    assert!(
        took <= bound,
        "stop took {took:?} with a close timeout of {CLOSE_TIMEOUT:?}"
    );

    for (i, peer) in polite_peers.into_iter().enumerate() {
        let code = bounded(peer).await.unwrap();
        assert_eq!(code, Some(CloseCode::GOING_AWAY), "polite peer {i}");
    }
    assert_eq!(
        clean.load(Ordering::SeqCst),
        POLITE,
        "every polite peer completed the close handshake before the stop returned"
    );
    for (i, mut tcp) in silent_peers.into_iter().enumerate() {
        let mut got = Vec::new();
        bounded(tcp.read_to_end(&mut got))
            .await
            .unwrap_or_else(|e| panic!("silent peer {i}: {e}"));
        assert!(got.len() >= 4, "silent peer {i} got {got:?}");
        assert_eq!(got[0], 0x88, "silent peer {i}: a close frame, FIN set");
        let len = usize::from(got[1]);
        assert!(
            len < 126 && got.len() == 2 + len,
            "silent peer {i}: {got:?}"
        );
        assert_eq!(
            u16::from_be_bytes([got[2], got[3]]),
            1001,
            "silent peer {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_48_websocket_server_stop_with_500_peers_half_silent() {
    let server = WebSocketServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .config(Config::default().close_timeout(CLOSE_TIMEOUT));
    let opened = Arc::new(Semaphore::new(0));
    let clean = Arc::new(AtomicUsize::new(0));
    let (o, c) = (opened.clone(), clean.clone());
    server
        .add_service_with("/Echo", ServiceOptions::default(), move || Counted {
            opened: o.clone(),
            clean: c.clone(),
        })
        .unwrap();
    server.start();
    let bound = CLOSE_TIMEOUT + Duration::from_secs(1) + SLACK;
    stop_under_load(Server::Ws(server), opened, clean, bound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_48_stop_ends_silent_sessions_at_their_own_close_timeout() {
    // The sessions' close timeout is the stop's too: the silent ones give up at 500 ms, so
    // the stop returns well within the close timeout + 1 s, with nothing left to abort.
    let server = WebSocketServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .config(Config::default().close_timeout(CLOSE_TIMEOUT));
    let opened = Arc::new(Semaphore::new(0));
    let clean = Arc::new(AtomicUsize::new(0));
    let (o, c) = (opened.clone(), clean.clone());
    let options = ServiceOptions::default().config(Config::default().close_timeout(CLOSE_TIMEOUT));
    server
        .add_service_with("/Echo", options, move || Counted {
            opened: o.clone(),
            clean: c.clone(),
        })
        .unwrap();
    server.start();
    let bound = CLOSE_TIMEOUT + Duration::from_secs(1);
    stop_under_load(Server::Ws(server), opened, clean, bound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_48_http_server_stop_with_500_websocket_peers_half_silent() {
    let mut options = HttpServerOptions::default();
    options.close_timeout = CLOSE_TIMEOUT;
    let server = HttpServer::bind("127.0.0.1:0", options).await.unwrap();
    let opened = Arc::new(Semaphore::new(0));
    let clean = Arc::new(AtomicUsize::new(0));
    let (o, c) = (opened.clone(), clean.clone());
    server
        .add_service_with("/Echo", ServiceOptions::default(), move || Counted {
            opened: o.clone(),
            clean: c.clone(),
        })
        .unwrap();
    server.start();
    let bound = CLOSE_TIMEOUT + Duration::from_secs(1) + SLACK;
    stop_under_load(Server::Http(server), opened, clean, bound).await;
}
