//! The raw side of a WebSocket conversation, for tests that must send or check bytes that no
//! well-behaved client or server would: request heads, masked frames, a hand-written 101.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bounded;

/// An upgrade request's head, without its final empty line (tests add headers, then `\r\n`).
pub const UPGRADE: &str = "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Sends `request` on a new connection to `addr` and reads until the server closes it.
///
/// # Panics
/// When the connection cannot be made.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.write_all(request).await;
    let mut out = Vec::new();
    let _ = bounded(tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A masked client frame of at most 125 bytes: `b0` is FIN|RSV|opcode.
///
/// # Panics
/// For a longer payload.
pub fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    assert!(payload.len() < 126, "a short frame");
    let mut out = vec![b0, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads an HTTP head from `tcp`, byte by byte (so nothing after it is consumed).
///
/// # Panics
/// When the stream ends first, or the head is not UTF-8.
pub async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            bounded(tcp.read(&mut byte)).await.expect("read"),
            1,
            "head ended early"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("a UTF-8 head")
}

/// A raw server's side of the opening handshake on an accepted `tcp`: reads the request and
/// answers 101, with `extensions` as its `Sec-WebSocket-Extensions` if given.
///
/// # Panics
/// When the request has no key or the answer cannot be written.
pub async fn accept(tcp: &mut TcpStream, extensions: Option<&str>) {
    let head = read_head(tcp).await;
    let key = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("sec-websocket-key:")
                .then(|| l.split_once(':').map(|(_, v)| v.trim().to_owned()))
                .flatten()
        })
        .expect("a Sec-WebSocket-Key");
    let accept = wsharp_proto::handshake::accept_key(key.as_bytes());
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
    .expect("write the 101");
}
