//! The server framework: services, behaviors, sessions, broadcast, stop, and the HTTP server.
//! Fault catalogue 10, 12-14, 17, 46-48 and 50.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use wsharp::demo::{Chat, Echo, INDEX_HTML};
use wsharp::http::{Method, Request, Response};
use wsharp::http_server::{HttpServer, HttpServerOptions};
use wsharp::server::{
    Behavior, CloseStatus, Overflow, ServiceOptions, Session, WebSocketServer, allow_origins,
};
use wsharp::{ClientBuilder, CloseCode, Config, Error, HandshakeError, Message};

use crate::util::{UPGRADE, bounded, raw_exchange};

/// What a [`Tracked`] session reports, with the session's id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// The session is in its service's `Sessions`.
    Opened(String),
    /// A pong arrived (with `emit_on_ping`); the session's idle time restarted before.
    Pong(String),
    /// The session has left its service's `Sessions`.
    Closed(String),
}

/// Echoes data messages and reports its session's life on a channel, so that tests wait on
/// what the server did rather than for a while.
struct Tracked(UnboundedSender<Seen>);

impl Tracked {
    /// A factory for a service, and the receiving end of its reports.
    fn factory() -> (
        impl Fn() -> Self + Send + Sync + 'static,
        UnboundedReceiver<Seen>,
    ) {
        let (tx, rx) = unbounded_channel();
        (move || Self(tx.clone()), rx)
    }
}

impl Behavior for Tracked {
    async fn on_open(&mut self, session: &Session) {
        let _ = self.0.send(Seen::Opened(session.id().to_owned()));
    }

    async fn on_message(&mut self, session: &Session, message: Message) {
        match message {
            Message::Pong(_) => {
                let _ = self.0.send(Seen::Pong(session.id().to_owned()));
            }
            m if m.is_data() => {
                let _ = session.send(m).await;
            }
            _ => {}
        }
    }

    async fn on_close(&mut self, session: &Session, _: &CloseStatus) {
        let _ = self.0.send(Seen::Closed(session.id().to_owned()));
    }
}

/// The next report, failing the test if none comes within the test step limit.
async fn next_seen(seen: &mut UnboundedReceiver<Seen>) -> Seen {
    bounded(seen.recv())
        .await
        .expect("the service's sessions are gone")
}

/// Waits for `n` sessions to open; returns their ids.
async fn opened(seen: &mut UnboundedReceiver<Seen>, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < n {
        match next_seen(seen).await {
            Seen::Opened(id) => ids.push(id),
            other => panic!("waiting for {n} sessions to open, got {other:?}"),
        }
    }
    ids
}

/// Waits until `condition` holds, checking every few milliseconds; fails the test with `what`
/// after 10 s. For conditions of time passing (a session idle past a wait time), not events.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "still not {what} after 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn server() -> WebSocketServer {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    server.add_service("/Echo", || Echo).unwrap();
    let chat = Chat::factory("");
    server.add_service("/Chat", chat).unwrap();
    let nyan = Chat::factory(" Nyan!");
    server.add_service("/ChatWithNyan", nyan).unwrap();
    server.start();
    server
}

async fn next_text(ws: &mut wsharp::WebSocket<wsharp::Transport>) -> String {
    match bounded(ws.recv()).await {
        Some(Ok(Message::Text(t))) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

#[tokio::test]
async fn echo_and_chat_services() {
    let server = server().await;
    let base = format!("ws://{}", server.local_addr());
    let mut echo = bounded(wsharp::connect(&format!("{base}/Echo")))
        .await
        .unwrap();
    echo.send("hello").await.unwrap();
    assert_eq!(next_text(&mut echo).await, "hello");

    let mut alice = bounded(wsharp::connect(&format!("{base}/Chat?name=alice")))
        .await
        .unwrap();
    assert_eq!(next_text(&mut alice).await, "alice has logged in!");
    let mut anon = bounded(wsharp::connect(&format!("{base}/Chat/")))
        .await
        .unwrap();
    assert_eq!(next_text(&mut anon).await, "Anon#1 has logged in!");
    assert_eq!(next_text(&mut alice).await, "Anon#1 has logged in!");
    alice.send("hi all").await.unwrap();
    assert_eq!(next_text(&mut alice).await, "alice: hi all");
    assert_eq!(next_text(&mut anon).await, "alice: hi all");
    anon.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(next_text(&mut alice).await, "Anon#1 got logged off...");

    let mut nyan = bounded(wsharp::connect(&format!("{base}/ChatWithNyan?name=cat")))
        .await
        .unwrap();
    assert_eq!(next_text(&mut nyan).await, "cat has logged in!");
    nyan.send("meow").await.unwrap();
    assert_eq!(next_text(&mut nyan).await, "cat: meow Nyan!");
    assert_eq!(server.sessions("/Chat").unwrap().count(), 1);
    assert_eq!(server.sessions("/ChatWithNyan").unwrap().count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_removed_services_get_404() {
    let server = server().await;
    let resp = raw_exchange(
        server.local_addr(),
        format!("{}\r\n", UPGRADE.replace("/chat", "/nowhere")).as_bytes(),
    )
    .await;
    assert_eq!(status_of(&resp), 404);
    let base = format!("ws://{}", server.local_addr());
    let mut ws = bounded(wsharp::connect(&format!("{base}/Echo")))
        .await
        .unwrap();
    assert!(server.remove_service("/Echo"));
    match bounded(ws.recv()).await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::GOING_AWAY),
        other => panic!("{other:?}"),
    }
    let refused = bounded(wsharp::connect(&format!("{base}/Echo"))).await;
    assert!(
        matches!(refused, Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, .. })) if status == 404)
    );
    server.add_service("/Echo", || Echo).unwrap();
    assert!(
        bounded(wsharp::connect(&format!("{base}/Echo")))
            .await
            .is_ok(),
        "added back while running"
    );
}

#[tokio::test]
async fn fault_12_13_14_validators_and_48_connection_cap() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().port();
    let options = ServiceOptions::default()
        .origin(allow_origins(["https://app.example"]))
        .hosts([format!("127.0.0.1:{port}")])
        .cookies(|cookies: &[(String, String)], set: &mut Vec<String>| {
            set.push("seen=1; Path=/".into());
            cookies.iter().any(|(k, v)| k == "token" && v == "good")
        })
        .max_connections(2);
    let (tracked, mut seen) = Tracked::factory();
    server.add_service_with("/app", options, tracked).unwrap();
    server.start();
    let addr = server.local_addr();
    let request = |origin: Option<&str>, host: &str, cookie: &str| {
        let mut r = UPGRADE
            .replace("/chat", "/app")
            .replace("Host: localhost", &format!("Host: {host}"));
        if let Some(o) = origin {
            r.push_str(&format!("Origin: {o}\r\n"));
        }
        r.push_str(&format!("Cookie: {cookie}\r\n\r\n"));
        r
    };
    let host = format!("127.0.0.1:{port}");
    for (origin, host, cookie, status) in [
        (
            Some("https://evil.example"),
            host.as_str(),
            "token=good",
            403,
        ),
        (Some("null"), &host, "token=good", 403),
        (Some("http://app.example"), &host, "token=good", 403),
        (Some("https://app.example:8443"), &host, "token=good", 403),
        (None, &host, "token=good", 403),
        (
            Some("https://app.example"),
            "evil.example:1",
            "token=good",
            403,
        ),
        (Some("https://app.example"), &host, "token=bad", 403),
    ] {
        let resp = raw_exchange(addr, request(origin, host, cookie).as_bytes()).await;
        assert_eq!(
            status_of(&resp),
            status,
            "{origin:?} {host} {cookie}: {resp}"
        );
        assert!(resp.to_ascii_lowercase().contains("connection: close"));
    }
    let url = format!("ws://{addr}/app");
    let ok = || {
        ClientBuilder::new(&url)
            .origin("https://app.example")
            .header("cookie", "token=good")
            .connect()
    };
    let first = bounded(ok()).await.unwrap();
    let _second = bounded(ok()).await.unwrap();
    let ids = opened(&mut seen, 2).await;
    let third = bounded(ok()).await;
    assert!(
        matches!(third, Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, .. })) if status == 503),
        "{third:?}"
    );
    drop(first);
    // Once the first session has left, there is room again: the next upgrade is accepted, and
    // its response carries the validator's cookie.
    match next_seen(&mut seen).await {
        Seen::Closed(id) => assert!(ids.contains(&id), "{id} was not open"),
        other => panic!("waiting for the first session to close, got {other:?}"),
    }
    let resp = {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request(Some("https://app.example"), &host, "token=good").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = bounded(tcp.read(&mut buf)).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase()
    };
    assert_eq!(status_of(&resp), 101, "{resp}");
    assert!(resp.contains("set-cookie: seen=1; path=/"), "{resp}");
}

struct Panicky(Arc<AtomicUsize>);

impl Behavior for Panicky {
    async fn on_message(&mut self, session: &Session, message: Message) {
        if let Message::Text(t) = &message
            && t.as_str() == "boom"
        {
            panic!("handler failure (expected by the test)");
        }
        self.0.fetch_add(1, Ordering::SeqCst);
        let _ = session.send(message).await;
    }
}

#[tokio::test]
async fn fault_50_a_panicking_handler_closes_only_its_session_with_1011() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    server
        .add_service("/p", move || Panicky(c.clone()))
        .unwrap();
    server.start();
    let url = format!("ws://{}/p", server.local_addr());
    let mut victim = bounded(wsharp::connect(&url)).await.unwrap();
    let mut other = bounded(wsharp::connect(&url)).await.unwrap();
    victim.send("boom").await.unwrap();
    match bounded(victim.recv()).await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::INTERNAL_ERROR),
        other => panic!("{other:?}"),
    }
    other.send("still fine").await.unwrap();
    assert_eq!(
        bounded(other.recv()).await.unwrap().unwrap(),
        Message::text("still fine")
    );
    assert!(
        bounded(wsharp::connect(&url)).await.is_ok(),
        "the accept loop goes on"
    );
}

#[tokio::test]
async fn fault_48_stop_closes_everyone_within_the_close_timeout() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let options = ServiceOptions::default()
        .config(Config::default().close_timeout(Duration::from_millis(500)));
    server.add_service_with("/Echo", options, || Echo).unwrap();
    server.start();
    let addr = server.local_addr();
    let mut polite = Vec::new();
    for _ in 0..20 {
        polite.push(
            bounded(wsharp::connect(&format!("ws://{addr}/Echo")))
                .await
                .unwrap(),
        );
    }
    // Peers that complete the handshake and then never answer anything.
    let mut silent = Vec::new();
    for _ in 0..20 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(format!("{}\r\n", UPGRADE.replace("/chat", "/Echo")).as_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let _ = bounded(tcp.read(&mut buf)).await.unwrap();
        silent.push(tcp);
    }
    assert_eq!(server.sessions("/Echo").unwrap().count(), 40);
    let started = Instant::now();
    server.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "stop took {took:?}");
    for ws in &mut polite {
        match bounded(ws.recv()).await {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::GOING_AWAY),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        TcpStream::connect(addr).await.is_err() || {
            let r = raw_exchange(addr, b"GET / HTTP/1.1\r\n\r\n").await;
            r.is_empty()
        }
    );
}

#[tokio::test]
async fn stop_delivers_what_was_queued_before_its_close() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let (tracked, mut seen) = Tracked::factory();
    server
        .add_service_with("/q", ServiceOptions::default().ignore_extensions(), tracked)
        .unwrap();
    server.start();
    let url = format!("ws://{}/q", server.local_addr());
    const CLIENTS: usize = 10;
    const MESSAGES: usize = 20;
    let mut readers = Vec::new();
    for _ in 0..CLIENTS {
        let mut ws = bounded(wsharp::connect(&url)).await.unwrap();
        // Each client reads everything until the server's close, and answers that close.
        readers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(m) = bounded(ws.recv()).await {
                got.push(m.map_err(|e| e.to_string()));
            }
            got
        }));
    }
    opened(&mut seen, CLIENTS).await;
    let sessions = server.sessions("/q").unwrap();
    for i in 0..MESSAGES {
        let report = sessions.broadcast(format!("message {i}")).unwrap();
        assert_eq!(report.queued, CLIENTS, "message {i}");
    }
    // Stop right after the broadcasts: what was queued goes out before the 1001.
    bounded(server.stop()).await;
    for reader in readers {
        let got = bounded(reader).await.unwrap();
        let texts: Vec<String> = got
            .iter()
            .filter_map(|m| match m {
                Ok(Message::Text(t)) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        let expected: Vec<String> = (0..MESSAGES).map(|i| format!("message {i}")).collect();
        assert_eq!(texts, expected, "delivered before the close: {got:?}");
        assert!(
            matches!(got.last(), Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::GOING_AWAY),
            "{got:?}"
        );
    }
}

#[tokio::test]
async fn fault_47_keepalive_closes_a_dead_peer() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let options = ServiceOptions::default()
        .keepalive(Some(Duration::from_millis(300)))
        .config(Config::default().close_timeout(Duration::from_millis(300)));
    server.add_service_with("/k", options, || Echo).unwrap();
    server.start();
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(format!("{}\r\n", UPGRADE.replace("/chat", "/k")).as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = bounded(tcp.read_to_end(&mut sink)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "closed after {took:?}");
    assert!(
        sink.windows(2).any(|w| w == [0x89, 0x00]),
        "it was pinged first"
    );
    // A live client answers the pings and stays.
    let mut live = bounded(wsharp::connect(&format!("ws://{}/k", server.local_addr())))
        .await
        .unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(1200), live.recv()).await;
    assert!(
        quiet.is_err(),
        "nothing but pings (answered inside recv) for 4 intervals: {quiet:?}"
    );
    live.send("alive").await.unwrap();
    assert_eq!(
        bounded(live.recv()).await.unwrap().unwrap(),
        Message::text("alive")
    );
}

#[tokio::test]
async fn fault_46_broadcast_never_waits_for_a_slow_client() {
    for overflow in [Overflow::Drop, Overflow::Close] {
        let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
        let options = ServiceOptions::default()
            .send_queue(4)
            .overflow(overflow)
            .ignore_extensions()
            .config(Config::default().close_timeout(Duration::from_secs(1)));
        let (tracked, mut seen) = Tracked::factory();
        server.add_service_with("/b", options, tracked).unwrap();
        server.start();
        let addr = server.local_addr();
        // A client that never reads.
        let mut stuck = TcpStream::connect(addr).await.unwrap();
        stuck
            .write_all(format!("{}\r\n", UPGRADE.replace("/chat", "/b")).as_bytes())
            .await
            .unwrap();
        let mut fast = bounded(wsharp::connect(&format!("ws://{addr}/b")))
            .await
            .unwrap();
        let sessions = server.sessions("/b").unwrap();
        let ids = opened(&mut seen, 2).await;
        let big = vec![7u8; 256 << 10];
        let mut overflowed = 0;
        let started = Instant::now();
        for _ in 0..64 {
            let report = sessions.broadcast(Message::binary(big.clone())).unwrap();
            overflowed += report.overflowed;
            // The fast client keeps up.
            assert_eq!(
                bounded(fast.recv()).await.unwrap().unwrap().len(),
                big.len()
            );
        }
        assert!(
            overflowed > 0,
            "the stuck client's queue filled ({overflow:?})"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        if overflow == Overflow::Close {
            match next_seen(&mut seen).await {
                Seen::Closed(id) => assert!(ids.contains(&id), "{id} was not open"),
                other => panic!("waiting for the slow session to close, got {other:?}"),
            }
            assert_eq!(sessions.count(), 1, "only the slow session was closed");
        }
        drop(stuck);
    }
}

#[tokio::test]
async fn sessions_api() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    // b will not answer its close: a short close timeout bounds how long its session lingers.
    // Pongs reach the behaviour, which reports them.
    let wait_time = Duration::from_millis(500);
    let options = ServiceOptions::default()
        .keep_clean(false, wait_time)
        .emit_on_ping(true)
        .config(Config::default().close_timeout(Duration::from_millis(500)));
    let (tracked, mut seen) = Tracked::factory();
    server.add_service_with("/s", options, tracked).unwrap();
    server.start();
    let url = format!("ws://{}/s", server.local_addr());
    let mut a = bounded(
        ClientBuilder::new(&url)
            .config(Config::default().emit_control_frames(true))
            .connect(),
    )
    .await
    .unwrap();
    let _b = bounded(wsharp::connect(&url)).await.unwrap();
    let sessions = server.sessions("/s").unwrap();
    let mut opened_ids = opened(&mut seen, 2).await;
    let mut ids = sessions.ids();
    assert_eq!(ids.len(), 2);
    ids.sort();
    opened_ids.sort();
    assert_eq!(ids, opened_ids);
    assert!(
        ids.iter()
            .all(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
    );
    assert_ne!(ids[0], ids[1]);
    sessions.broadcast("to all").unwrap();
    assert_eq!(
        bounded(a.recv()).await.unwrap().unwrap(),
        Message::text("to all")
    );
    // Neither client sends anything: both go idle past the wait time.
    until("both sessions inactive", || {
        sessions.inactive_ids().len() == 2
    })
    .await;
    assert!(sessions.active_ids().is_empty());
    // b never reads, so it never answers pings: after a broadping only a is active, from the
    // moment its pong arrived.
    sessions.broadping("p").unwrap();
    assert_eq!(
        bounded(a.recv()).await.unwrap().unwrap(),
        Message::Ping("p".into())
    );
    bounded(a.flush()).await.unwrap();
    let a_id = match next_seen(&mut seen).await {
        Seen::Pong(id) => id,
        other => panic!("waiting for a's pong, got {other:?}"),
    };
    assert_eq!(sessions.active_ids(), std::slice::from_ref(&a_id));
    let inactive = sessions.inactive_ids();
    assert_eq!(inactive.len(), 1);
    let b_id = inactive[0].clone();
    assert_ne!(a_id, b_id);
    sessions.send_to(&a_id, "just you").await.unwrap();
    assert_eq!(
        bounded(a.recv()).await.unwrap().unwrap(),
        Message::text("just you")
    );
    // The sweep pings both: a answers while it reads, b does not.
    let (swept, ping) = tokio::join!(sessions.sweep(), bounded(a.recv()));
    assert_eq!(swept, 1, "the sweep closes b");
    assert!(matches!(ping, Some(Ok(Message::Ping(_)))), "{ping:?}");
    // b never answers the close: its session ends at the close timeout (a's pong to the
    // sweep's ping may be seen first).
    loop {
        match next_seen(&mut seen).await {
            Seen::Pong(id) if id == a_id => {}
            other => {
                assert_eq!(other, Seen::Closed(b_id.clone()));
                break;
            }
        }
    }
    assert!(sessions.get(&b_id).is_none());
    assert!(sessions.get(&a_id).is_some(), "the sweep left a open");
    sessions
        .close_session(&a_id, CloseCode(4000), "bye a")
        .await
        .unwrap();
    match bounded(a.recv()).await {
        Some(Ok(Message::Close(Some(f)))) => {
            assert_eq!((f.code.0, f.reason.as_str()), (4000, "bye a"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn fault_10_17_http_server_files_handlers_and_upgrades() {
    let root = std::env::temp_dir().join(format!("wsharp-root-{}", std::process::id()));
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello file\n").unwrap();
    std::fs::write(root.join("sub/page.html"), "<p>sub</p>").unwrap();
    let options = HttpServerOptions::default()
        .document_root(&root)
        .index_page(INDEX_HTML);
    let server = HttpServer::bind("127.0.0.1:0", options).await.unwrap();
    server.add_service("/Echo", || Echo).unwrap();
    server.on(Method::POST, |req: Request<bytes::Bytes>| async move {
        let mut body = b"you sent: ".to_vec();
        body.extend_from_slice(req.body());
        Response::new(bytes::Bytes::from(body))
    });
    server.start();
    let addr = server.local_addr();
    let get = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
    };

    let resp = raw_exchange(addr, get("/hello.txt", "").as_bytes()).await;
    assert_eq!(status_of(&resp), 200);
    assert!(
        resp.to_ascii_lowercase()
            .contains("content-type: text/plain")
    );
    assert!(resp.ends_with("hello file\n"));
    let etag = resp
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("etag: ")
                .map(str::to_owned)
        })
        .unwrap();
    let resp = raw_exchange(
        addr,
        get("/hello.txt", &format!("If-None-Match: {etag}\r\n")).as_bytes(),
    )
    .await;
    assert_eq!(status_of(&resp), 304);
    let resp = raw_exchange(
        addr,
        get("/hello.txt", "").replace("GET", "HEAD").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&resp), 200);
    assert!(resp.to_ascii_lowercase().contains("content-length: 11"));
    assert!(!resp.contains("hello file"));
    let resp = raw_exchange(addr, get("/sub/page.html", "").as_bytes()).await;
    assert!(
        resp.to_ascii_lowercase()
            .contains("content-type: text/html")
    );
    let resp = raw_exchange(addr, get("/", "").as_bytes()).await;
    assert!(resp.contains("<title>wsharp</title>"), "built-in page at /");
    for bad in [
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/..%5c..%5cetc/passwd",
        "/C:/Windows/win.ini",
        "/%00",
        "/sub/../../etc/passwd",
    ] {
        let resp = raw_exchange(addr, get(bad, "").as_bytes()).await;
        let code = status_of(&resp);
        assert!(code == 400 || code == 404, "{bad}: {code}");
        assert!(!resp.contains("root:"), "{bad} leaked a file");
    }
    assert_eq!(
        status_of(&raw_exchange(addr, get("/missing", "").as_bytes()).await),
        404
    );
    let post = "POST /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nabcde";
    let resp = raw_exchange(addr, post.as_bytes()).await;
    assert!(resp.ends_with("you sent: abcde"), "{resp}");
    assert_eq!(
        status_of(&raw_exchange(addr, get("/x", "").replace("GET", "PUT").as_bytes()).await),
        405
    );

    // WebSocket upgrades on the same port.
    let mut ws = bounded(
        ClientBuilder::new(format!("ws://{addr}/Echo"))
            .compression(wsharp::Deflate::default())
            .connect(),
    )
    .await
    .unwrap();
    assert!(ws.is_compressed());
    ws.send("over http").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("over http")
    );
    let resp = raw_exchange(
        addr,
        format!("{}\r\n", UPGRADE.replace("/chat", "/nowhere")).as_bytes(),
    )
    .await;
    assert_eq!(status_of(&resp), 404);
    // Fault 10: a refused upgrade with a request pipelined behind it.
    let two = format!(
        "{}Sec-WebSocket-Version: 8\r\n\r\n{}",
        UPGRADE
            .replace("Sec-WebSocket-Version: 13\r\n", "")
            .replace("/chat", "/Echo"),
        get("/hello.txt", "")
    );
    let resp = raw_exchange(addr, two.as_bytes()).await;
    assert_eq!(status_of(&resp), 426, "{resp}");
    assert!(resp.to_ascii_lowercase().contains("connection: close"));
    assert!(
        !resp.contains("hello file"),
        "the pipelined request was not served: {resp}"
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&root);
}

struct Pings;

impl Behavior for Pings {
    async fn on_message(&mut self, session: &Session, message: Message) {
        if let Message::Ping(p) = message {
            let _ = session
                .send(Message::text(format!(
                    "saw ping {}",
                    String::from_utf8_lossy(&p)
                )))
                .await;
        }
    }
}

#[tokio::test]
async fn dual_stack_binding_and_emit_on_ping() {
    let server = WebSocketServer::bind_port(0).await.unwrap();
    server
        .add_service_with("/p", ServiceOptions::default().emit_on_ping(true), || Pings)
        .unwrap();
    server.start();
    let port = server.local_addr().port();
    for host in ["127.0.0.1", "[::1]"] {
        let mut ws = bounded(wsharp::connect(&format!("ws://{host}:{port}/p")))
            .await
            .unwrap();
        ws.send(Message::Ping("hi".into())).await.unwrap();
        assert_eq!(
            bounded(ws.recv()).await.unwrap().unwrap(),
            Message::text("saw ping hi"),
            "{host}"
        );
    }
}

#[tokio::test]
async fn hyper_handler_hands_the_upgrade_to_wsharp() {
    use http_body_util::Full;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let service =
            hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                let up = match wsharp::http_server::upgrade(
                    req,
                    &wsharp::ServerBuilder::new().subprotocols(["v1"]),
                ) {
                    Ok(up) => up,
                    Err(refusal) => {
                        return Ok::<_, std::convert::Infallible>(
                            refusal
                                .into_response()
                                .map(|b| Full::new(bytes::Bytes::from(b))),
                        );
                    }
                };
                tokio::spawn(async move {
                    let mut ws = up.websocket.await.unwrap();
                    while let Some(Ok(m)) = ws.recv().await {
                        if m.is_data() {
                            ws.send(m).await.unwrap();
                        }
                    }
                });
                Ok(up.response.map(Full::new))
            });
        let io = hyper_util::rt::TokioIo::new(tcp);
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .with_upgrades()
            .await;
    });
    let mut ws = bounded(
        ClientBuilder::new(format!("ws://{addr}/"))
            .subprotocols(["v1"])
            .connect(),
    )
    .await
    .unwrap();
    assert_eq!(ws.protocol(), Some("v1"));
    ws.send("through hyper").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("through hyper")
    );
}
