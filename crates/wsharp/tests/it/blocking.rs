//! The blocking layer against our async server, the Python `websockets` library, raw sockets
//! that misbehave, and the async client (for `accept_blocking`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use wsharp::blocking;
use wsharp::{ClientBuilder, CloseCode, Config, Deflate, Error, Message, Refusal, ServerBuilder};

use crate::interop_python::python_echo_server;
use crate::util::{UPGRADE, bounded, echo_server, python, script};

/// A blocking client's checks against an echo server at `url`.
fn round_trips(url: &str, compression: Option<Deflate>) {
    let mut ws = ClientBuilder::new(url)
        .compression(compression)
        .config(Config::default().emit_control_frames(true))
        .connect_blocking()
        .unwrap();
    assert_eq!(ws.is_compressed(), compression.is_some());
    let big: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    for msg in [
        Message::text("héllo ✓"),
        Message::binary(vec![0u8, 1, 254, 255]),
        Message::text(""),
        Message::text("abc".repeat(10_000)),
        Message::binary(big),
    ] {
        ws.send(msg.clone()).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), msg);
    }
    ws.send(Message::Ping("still there?".into())).unwrap();
    assert_eq!(
        ws.recv().unwrap().unwrap(),
        Message::Pong("still there?".into())
    );
    ws.close(CloseCode::NORMAL, "done").unwrap();
    match ws.recv() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::NORMAL),
        other => panic!("{other:?}"),
    }
    assert!(ws.recv().is_none());
    assert_eq!(ws.close_status().unwrap().code, CloseCode::NORMAL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_against_async_server() {
    let plain = echo_server(ServerBuilder::new()).await;
    let deflate = echo_server(ServerBuilder::new().compression(Deflate::default())).await;
    tokio::task::spawn_blocking(move || {
        round_trips(&format!("ws://{plain}/"), None);
        round_trips(&format!("ws://{deflate}/"), Some(Deflate::default()));
        round_trips(
            &format!("ws://{deflate}/"),
            Some(Deflate::default().client_no_context_takeover(true)),
        );
    })
    .await
    .unwrap();
}

#[test]
fn blocking_client_against_python_server() {
    let (_server, port) = python_echo_server();
    round_trips(&format!("ws://127.0.0.1:{port}/"), None);
    // The server closes with a code and reason it was asked for.
    let mut ws = blocking::connect(&format!("ws://127.0.0.1:{port}/")).unwrap();
    ws.send("close 4001 going away now").unwrap();
    match ws.recv() {
        Some(Ok(Message::Close(Some(f)))) => {
            assert_eq!((f.code.0, f.reason.as_str()), (4001, "going away now"));
        }
        other => panic!("{other:?}"),
    }
    assert!(ws.recv().is_none());
}

/// A blocking server on a thread: `ServerBuilder::accept_blocking`, echoing until the close.
fn blocking_echo_server(server: ServerBuilder) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let server = server.clone();
            thread::spawn(move || {
                let Ok(mut ws) = server.accept_blocking(tcp) else {
                    return;
                };
                while let Some(Ok(msg)) = ws.recv() {
                    if msg.is_data() && ws.send(msg).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_and_python_clients_against_blocking_server() {
    let addr = blocking_echo_server(ServerBuilder::new().compression(Deflate::default()));
    let mut ws = bounded(
        ClientBuilder::new(format!("ws://{addr}/"))
            .compression(Deflate::default())
            .connect(),
    )
    .await
    .unwrap();
    assert!(ws.is_compressed());
    for i in 0..100 {
        let msg = Message::text(format!("message {i} ").repeat(i));
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(bounded(ws.recv()).await.unwrap().unwrap(), msg);
    }
    ws.close(CloseCode::GOING_AWAY, "bye").await.unwrap();
    match bounded(ws.recv()).await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::GOING_AWAY),
        other => panic!("{other:?}"),
    }

    let plain = blocking_echo_server(ServerBuilder::new());
    let out = bounded(
        tokio::process::Command::new(python())
            .arg(script("client.py"))
            .arg(format!("ws://{plain}/"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_client_with_compression_against_blocking_server() {
    let addr = blocking_echo_server(ServerBuilder::new().compression(Deflate::default()));
    let out = Command::new(python())
        .arg(script("deflate_client.py"))
        .arg(format!("ws://{addr}/"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn accept_blocking_refuses_bad_requests_and_applies_the_hook() {
    let addr = blocking_echo_server(ServerBuilder::new().on_request(
        |req: &http::Request<()>, _: &wsharp::UpgradeRequest| {
            if req.uri().path() == "/private" {
                Err(Refusal::new(http::StatusCode::FORBIDDEN).body("no"))
            } else {
                Ok(None)
            }
        },
    ));
    let exchange = |request: &str| {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).unwrap();
        out
    };
    let wrong_version = UPGRADE.replace("Version: 13", "Version: 8") + "\r\n";
    let answer = exchange(&wrong_version);
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    assert!(answer.contains("sec-websocket-version: 13"), "{answer}");
    let answer = exchange("POST / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    let private = UPGRADE.replace("GET /chat", "GET /private") + "\r\n";
    let answer = exchange(&private);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.ends_with("no"), "{answer}");
}

#[test]
fn handshake_timeout_bounds_a_server_that_never_answers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config::default().handshake_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let result = ClientBuilder::new(format!("ws://{addr}/"))
        .config(config.clone())
        .connect_blocking();
    assert!(matches!(result, Err(Error::HandshakeTimeout)), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(5));

    // And a client that never finishes its request, at the server.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut silent = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    silent.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let (tcp, _) = server.accept().unwrap();
    let start = Instant::now();
    let result = ServerBuilder::new().config(config).accept_blocking(tcp);
    assert!(matches!(result, Err(Error::HandshakeTimeout)), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(listener);
}

/// A raw server that completes the handshake, then runs `then` on the socket.
fn raw_server(then: impl FnOnce(TcpStream) + Send + 'static) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .unwrap();
        let accept = wsharp::proto::handshake::accept_key(key.trim().as_bytes());
        write!(
            tcp,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .unwrap();
        then(tcp);
    });
    addr
}

#[test]
fn recv_timeout_leaves_the_connection_usable() {
    // The server sends its message only once the client's first wait has timed out.
    let (timed_out, wait) = std::sync::mpsc::channel::<()>();
    let addr = raw_server(move |mut tcp| {
        wait.recv_timeout(Duration::from_secs(30))
            .expect("the client's first recv_timeout ended");
        tcp.write_all(&[0x81, 2, b'h', b'i']).unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest);
    });
    let mut ws = blocking::connect(&format!("ws://{addr}/")).unwrap();
    let start = Instant::now();
    let first = ws.recv_timeout(Duration::from_millis(50));
    let waited = start.elapsed();
    timed_out.send(()).unwrap();
    assert!(matches!(first, Some(Err(Error::Timeout))), "{first:?}");
    assert!(
        (Duration::from_millis(40)..Duration::from_secs(2)).contains(&waited),
        "{waited:?}"
    );
    let msg = ws.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(msg, Message::text("hi"));
}

#[test]
fn close_timeout_ends_a_wait_for_a_peer_that_never_answers() {
    let addr = raw_server(|mut tcp| {
        // Reads everything (our close frame included) and never answers.
        let mut sink = [0u8; 1024];
        while matches!(tcp.read(&mut sink), Ok(n) if n > 0) {}
    });
    let mut ws = ClientBuilder::new(format!("ws://{addr}/"))
        .config(Config::default().close_timeout(Duration::from_millis(300)))
        .connect_blocking()
        .unwrap();
    ws.close(CloseCode::NORMAL, "").unwrap();
    let start = Instant::now();
    match ws.recv() {
        Some(Err(Error::CloseTimeout)) => {}
        other => panic!("{other:?}"),
    }
    assert!(ws.recv().is_none());
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn a_masked_server_frame_is_answered_with_1002_before_the_socket_closes() {
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = raw_server(move |mut tcp| {
        tcp.write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2])
            .unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let _ = tcp.read_to_end(&mut got);
        tx.send(got).unwrap();
    });
    let mut ws = blocking::connect(&format!("ws://{addr}/")).unwrap();
    match ws.recv() {
        Some(Err(Error::Protocol(e))) => assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR),
        other => panic!("{other:?}"),
    }
    drop(ws);
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // A masked close frame (the client masks) whose unmasked code is 1002.
    assert_eq!(got[0], 0x88, "{got:?}");
    let key = &got[2..6];
    let code = [got[6] ^ key[0], got[7] ^ key[1]];
    assert_eq!(u16::from_be_bytes(code), 1002);
}

#[test]
fn an_unreachable_host_is_an_io_error() {
    // A port nothing listens on: bind one, note it, close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match blocking::connect(&format!("ws://127.0.0.1:{port}/")) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        blocking::connect("http://127.0.0.1/"),
        Err(Error::InvalidUrl(_))
    ));
}

#[test]
fn blocking_server_ends_after_the_close_handshake_without_the_clients_fin() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = ServerBuilder::new().accept_blocking(tcp).unwrap();
        let started = Instant::now();
        let mut seen = Vec::new();
        while let Some(m) = ws.recv() {
            seen.push(m.unwrap());
        }
        (started.elapsed(), seen)
    });
    let mut peer = TcpStream::connect(addr).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    peer.write_all(format!("{UPGRADE}\r\n").as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        peer.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    peer.write_all(&crate::util::client_frame(0x88, &[0x03, 0xe8]))
        .unwrap();
    // The client keeps its side open; the server ends on the handshake alone, well before the
    // close timeout (5 s), and closes TCP first, after its close frame.
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, [0x88, 2, 0x03, 0xe8]);
    let (elapsed, seen) = server.join().unwrap();
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(matches!(&seen[..], [Message::Close(Some(f))] if f.code == CloseCode::NORMAL));
}

/// Dropping an open blocking socket sends close 1001, as websocket-sharp's `Dispose` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_open_blocking_socket_sends_going_away() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = wsharp::accept(tcp).await.unwrap();
        ws.recv().await
    });
    tokio::task::spawn_blocking(move || {
        let ws = blocking::connect(&format!("ws://{addr}/")).unwrap();
        drop(ws);
    })
    .await
    .unwrap();
    match bounded(server).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => {
            assert_eq!(f.code, CloseCode::GOING_AWAY);
        }
        other => panic!("{other:?}"),
    }
}
