use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsharp::ServerBuilder;

/// Every await in these tests is bounded by this.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

pub(crate) async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step timed out")
}

/// The venv Python with the `websockets` package. scripts/test.sh creates it.
pub(crate) fn python() -> PathBuf {
    let path = std::env::var_os("WSHARP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    assert!(
        path.exists(),
        "no Python with `websockets` at {}: run scripts/test.sh (it creates .venv) or set WSHARP_PYTHON",
        path.display()
    );
    path
}

pub(crate) fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/py")
        .join(name)
}

/// An echo server on a free loopback port, accepting with `server`; returns its address.
pub(crate) async fn echo_server(server: ServerBuilder) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = server.accept(tcp).await else {
                    return;
                };
                while let Some(msg) = ws.recv().await {
                    match msg {
                        Ok(m) if m.is_data() => {
                            if ws.send(m).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => {}
                    }
                }
            });
        }
    });
    addr
}

/// Sends `request` on a raw TCP connection and reads until the server closes it.
pub(crate) async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let _ = tcp.write_all(request).await;
    let mut out = Vec::new();
    let _ = bounded(tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) const UPGRADE: &str = "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// A masked client frame.
pub(crate) fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    assert!(payload.len() < 126);
    let mut out = vec![b0, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads an HTTP head from `tcp`, byte by byte (so nothing after it is consumed).
pub(crate) async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            bounded(tcp.read(&mut byte)).await.unwrap(),
            1,
            "head ended early"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A raw server's side of the opening handshake on an accepted `tcp`: reads the request and
/// answers 101, with `extensions` as its `Sec-WebSocket-Extensions` if given.
pub(crate) async fn raw_accept(tcp: &mut TcpStream, extensions: Option<&str>) {
    let head = read_head(tcp).await;
    let key = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("sec-websocket-key:")
                .then(|| l.split_once(':').unwrap().1.trim().to_owned())
        })
        .expect("a Sec-WebSocket-Key");
    let accept = wsharp::proto::handshake::accept_key(key.as_bytes());
    let extensions = extensions
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .unwrap_or_default();
    tcp.write_all(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n{extensions}\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
}
