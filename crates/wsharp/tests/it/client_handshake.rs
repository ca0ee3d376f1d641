//! Client handshake faults against scripted TCP servers: fault catalogue 11, 18-22.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wsharp::{ClientBuilder, Config, Error, HandshakeError, Message};

use crate::util::bounded;

/// A server that reads one request head and answers with `respond(accept_key)`.
async fn scripted(respond: impl Fn(&str) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head);
            let key = text
                .lines()
                .find_map(|l| l.strip_prefix("sec-websocket-key: "))
                .unwrap_or("")
                .to_owned();
            let accept = wsharp::proto::handshake::accept_key(key.as_bytes());
            let _ = tcp.write_all(&respond(&accept)).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    addr
}

fn ok_response(accept: &str, extra: &str) -> Vec<u8> {
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n").into_bytes()
}

async fn connect(
    addr: SocketAddr,
    protocols: &[&str],
) -> Result<wsharp::WebSocket<wsharp::Transport>, Error> {
    bounded(
        ClientBuilder::new(format!("ws://{addr}/"))
            .subprotocols(protocols.iter().copied())
            .connect(),
    )
    .await
}

#[tokio::test]
async fn fault_11_frame_in_the_response_segment_is_delivered() {
    let addr = scripted(|accept| {
        let mut r = ok_response(accept, "");
        r.extend_from_slice(&[0x81, 2, b'h', b'i']);
        r
    })
    .await;
    let mut ws = connect(addr, &[]).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("hi")
    );
}

#[tokio::test]
async fn fault_18_wrong_accept_key() {
    let addr = scripted(|_| ok_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "")).await;
    assert!(matches!(
        connect(addr, &[]).await,
        Err(Error::Handshake(HandshakeError::InvalidAccept))
    ));
}

#[tokio::test]
async fn fault_19_unoffered_protocol_or_extension() {
    let addr = scripted(|a| ok_response(a, "Sec-WebSocket-Protocol: other\r\n")).await;
    assert!(matches!(
        connect(addr, &["chat"]).await,
        Err(Error::Handshake(HandshakeError::UnexpectedProtocol(_)))
    ));
    let addr = scripted(|a| {
        ok_response(
            a,
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n",
        )
    })
    .await;
    assert!(matches!(
        connect(addr, &[]).await,
        Err(Error::Handshake(HandshakeError::UnexpectedExtension(_)))
    ));
}

#[tokio::test]
async fn fault_20_non_101_carries_status_and_headers() {
    let addr = scripted(|_| {
        let mut r = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 10000000\r\n\r\n".to_vec();
        r.extend(std::iter::repeat_n(b'z', 1 << 20));
        r
    })
    .await;
    // A 401 is an authentication error, with the status, the headers and the challenge.
    match connect(addr, &[]).await {
        Err(Error::Auth(e)) => {
            assert_eq!(e.status, 401);
            assert!(e.headers.contains_key("www-authenticate"));
            assert_eq!(e.challenges[0].realm(), Some("x"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn fault_21_dribbled_response_headers_hit_the_limit() {
    let addr = scripted(|_| {
        let mut r = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        for i in 0..40_000 {
            r.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
        }
        r
    })
    .await;
    assert!(matches!(
        connect(addr, &[]).await,
        Err(Error::Handshake(HandshakeError::HeadTooLarge { .. }))
    ));
    // And a server that never finishes answering hits the handshake timeout.
    let addr = scripted(|_| b"HTTP/1.1 101 Switching Protocols\r\n".to_vec()).await;
    let config = Config::default().handshake_timeout(Duration::from_millis(300));
    let res = bounded(
        ClientBuilder::new(format!("ws://{addr}/"))
            .config(config)
            .connect(),
    )
    .await;
    assert!(matches!(res, Err(Error::HandshakeTimeout)), "{res:?}");
}

#[tokio::test]
async fn fault_22_crlf_in_headers_is_refused_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("ws://{addr}/");
    let bad = [
        ClientBuilder::new(&url).header("x-a", "b\r\nInjected: 1"),
        ClientBuilder::new(&url).header("x-a\r\n", "b"),
        ClientBuilder::new(&url).origin("http://a\r\nx: y"),
        ClientBuilder::new(&url).subprotocols(["chat\r\nx: y"]),
    ];
    for builder in bad {
        assert!(matches!(
            builder.connect().await,
            Err(Error::Handshake(HandshakeError::InvalidRequest(_)))
        ));
    }
    let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(accepted.is_err(), "nothing may connect");
    assert!(matches!(
        wsharp::connect("http://x/").await,
        Err(Error::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn fault_21_a_response_head_dribbled_forever_times_out_at_the_handshake_deadline() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Reads the request, then sends a head that never ends, one byte every 50 ms, until the
    // client goes away; reports how many bytes it sent.
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&buf[..n]);
        }
        let endless = b"HTTP/1.1 101 Switching Protocols\r\n"
            .iter()
            .chain(b"X-Slow: y\r\n".iter().cycle());
        let mut sent = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        for byte in endless {
            tick.tick().await;
            if tcp.write_all(&[*byte]).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let started = std::time::Instant::now();
    let res = bounded(
        ClientBuilder::new(format!("ws://{addr}/"))
            .config(Config::default().handshake_timeout(TIMEOUT))
            .connect(),
    )
    .await;
    let took = started.elapsed();
    assert!(matches!(res, Err(Error::HandshakeTimeout)), "{res:?}");
    // Each byte arrives well within any per-read timeout: only a deadline for the whole
    // handshake ends this at 300 ms.
    assert!(
        took >= TIMEOUT - Duration::from_millis(10) && took < TIMEOUT + Duration::from_millis(700),
        "the handshake timed out after {took:?}"
    );
    // The client closed the connection: the server's writes fail and it stops, after a few
    // bytes only.
    let sent = bounded(server).await.unwrap();
    assert!(sent < 40, "{sent} bytes sent");
}

#[tokio::test]
async fn fault_22_crlf_in_the_url_is_refused_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let urls = [
        format!("ws://{addr}/a\r\nX: y"),
        format!("ws://{addr}/a?q=\r\n"),
        format!("ws://{addr}/a?q=1\r\nX-Injected: 1\r\n\r\nGET / HTTP/1.1"),
        format!("ws://{addr}/a\nX: y"),
        format!("ws://{addr}/a\rX: y"),
        format!("ws://{addr}/\r\n/a"),
        format!("ws://{addr}\r\nX: y/"),
    ];
    for url in &urls {
        let res = wsharp::connect(url).await;
        assert!(matches!(res, Err(Error::InvalidUrl(_))), "{url:?}: {res:?}");
        let res = tokio::task::spawn_blocking({
            let url = url.clone();
            move || wsharp::blocking::connect(&url).map(|_| ())
        })
        .await
        .unwrap();
        assert!(
            matches!(res, Err(Error::InvalidUrl(_))),
            "blocking {url:?}: {res:?}"
        );
    }
    // Nothing connected: the first connection the listener holds is a probe made now.
    let probe = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (_, first) = bounded(listener.accept()).await.unwrap();
    assert_eq!(
        first,
        probe.local_addr().unwrap(),
        "an earlier connection reached the listener"
    );
}

/// TCP_NODELAY is on unless the builder turns it off, in both layers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_delay_on_by_default_and_configurable() {
    let addr = crate::util::echo_server(wsharp::ServerBuilder::new()).await;
    let url = format!("ws://{addr}/");
    let on = bounded(ClientBuilder::new(&url).connect()).await.unwrap();
    assert!(on.get_ref().tcp().nodelay().unwrap());
    let off = bounded(ClientBuilder::new(&url).no_delay(false).connect())
        .await
        .unwrap();
    assert!(!off.get_ref().tcp().nodelay().unwrap());
    let blocking = tokio::task::spawn_blocking(move || {
        let ws = ClientBuilder::new(&url)
            .no_delay(false)
            .connect_blocking()
            .unwrap();
        ws.get_ref().tcp().nodelay().unwrap()
    })
    .await
    .unwrap();
    assert!(!blocking);
}
