//! Messages compressed as whole DEFLATE streams (final block set, sometimes one 0x00 after it),
//! as websocket-sharp and .NET's `DeflateStream` send them, made by an independent encoder
//! (Python's zlib with Z_FINISH), sent as raw frames at our server and from a raw server at our
//! client, with and without context takeover, in one frame or two (RFC 7692 §7.2.3.3).

use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsharp::Deflate;
use wsharp::{ClientBuilder, Message, ServerBuilder};

use crate::util::{bounded, python, raw_accept, read_head, script};

/// (text, compressed payload) pairs from the Python encoder.
fn finished_messages(context: bool, extra_zero: bool) -> Vec<(String, Vec<u8>)> {
    let mut cmd = Command::new(python());
    cmd.arg(script("finished_deflate.py"));
    if context {
        cmd.arg("--context");
    }
    if extra_zero {
        cmd.arg("--extra-zero");
    }
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "finished_deflate.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (text, payload) = line.split_once(' ').expect("two fields");
            (String::from_utf8(hex(text)).unwrap(), hex(payload))
        })
        .collect();
    assert!(messages.len() >= 20, "{} messages", messages.len());
    messages
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A frame of any length, masked when `mask` is given.
fn frame(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![b0];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// The frames of one compressed text message: whole, or split in two at the middle.
fn message_frames(payload: &[u8], split: bool, mask: Option<[u8; 4]>) -> Vec<u8> {
    if !split || payload.len() < 2 {
        return frame(0xC1, payload, mask);
    }
    let (a, b) = payload.split_at(payload.len() / 2);
    let mut out = frame(0x41, a, mask);
    out.extend(frame(0x80, b, mask));
    out
}

#[tokio::test]
async fn websocket_sharp_style_messages_reach_our_server() {
    for context in [true, false] {
        for extra_zero in [false, true] {
            for split in [false, true] {
                let messages = finished_messages(context, extra_zero);
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = ServerBuilder::new().compression(Deflate::default());
                let received = tokio::spawn(async move {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let mut ws = server.accept(tcp).await.unwrap();
                    assert!(ws.is_compressed());
                    let mut got = Vec::new();
                    while let Some(msg) = ws.recv().await {
                        match msg.unwrap() {
                            Message::Text(t) => got.push(t.to_string()),
                            Message::Close(_) => {}
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    got
                });
                let mut tcp = TcpStream::connect(addr).await.unwrap();
                let offer = if context {
                    "permessage-deflate"
                } else {
                    "permessage-deflate; client_no_context_takeover"
                };
                tcp.write_all(
                    format!(
                        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                         Sec-WebSocket-Extensions: {offer}\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
                let head = read_head(&mut tcp).await;
                assert!(head.starts_with("HTTP/1.1 101"), "{head}");
                assert!(head.contains("permessage-deflate"), "{head}");
                let mut wire = Vec::new();
                for (_, payload) in &messages {
                    wire.extend(message_frames(payload, split, Some([9, 8, 7, 6])));
                }
                wire.extend(frame(0x88, &1000u16.to_be_bytes(), Some([1, 2, 3, 4])));
                tcp.write_all(&wire).await.unwrap();
                let mut rest = Vec::new();
                let _ = bounded(tcp.read_to_end(&mut rest)).await;
                let got = bounded(received).await.unwrap();
                let want: Vec<String> = messages.into_iter().map(|(t, _)| t).collect();
                assert_eq!(
                    got, want,
                    "context {context}, extra zero {extra_zero}, split {split}"
                );
                // Our answer was a clean close: 1000 echoed.
                assert_eq!(rest, [0x88, 0x02, 0x03, 0xE8], "server's close");
            }
        }
    }
}

#[tokio::test]
async fn websocket_sharp_style_messages_reach_our_client() {
    for context in [true, false] {
        for extra_zero in [false, true] {
            for split in [false, true] {
                let messages = finished_messages(context, extra_zero);
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let wire_messages = messages.clone();
                let server = tokio::spawn(async move {
                    let (mut tcp, _) = listener.accept().await.unwrap();
                    let extension = if context {
                        "permessage-deflate"
                    } else {
                        "permessage-deflate; server_no_context_takeover"
                    };
                    raw_accept(&mut tcp, Some(extension)).await;
                    let mut wire = Vec::new();
                    for (_, payload) in &wire_messages {
                        wire.extend(message_frames(payload, split, None));
                    }
                    wire.extend(frame(0x88, &1000u16.to_be_bytes(), None));
                    tcp.write_all(&wire).await.unwrap();
                    // Read the client's close, then end the connection.
                    let mut buf = [0u8; 64];
                    let n = bounded(tcp.read(&mut buf)).await.unwrap();
                    buf[..n].to_vec()
                });
                let mut ws = bounded(
                    ClientBuilder::new(format!("ws://{addr}/"))
                        .compression(Deflate::default())
                        .connect(),
                )
                .await
                .unwrap();
                assert!(ws.is_compressed());
                let mut got = Vec::new();
                while let Some(msg) = bounded(ws.recv()).await {
                    match msg.unwrap() {
                        Message::Text(t) => got.push(t.to_string()),
                        Message::Close(frame) => assert_eq!(frame.unwrap().code.0, 1000),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                let want: Vec<String> = messages.into_iter().map(|(t, _)| t).collect();
                assert_eq!(
                    got, want,
                    "context {context}, extra zero {extra_zero}, split {split}"
                );
                let close = bounded(server).await.unwrap();
                assert_eq!(close.len(), 8, "a masked close with its code: {close:?}");
                assert_eq!(close[0], 0x88);
            }
        }
    }
}
