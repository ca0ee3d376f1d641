//! Streamed response bodies (`Body::from_reader`, `Body::channel`) and `Abort` in `HttpServer`
//! handlers, against curl, Python `requests` and a raw client that does not read.

use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use wsharp::http::{Method, Request, Response};
use wsharp::http_server::{Abort, Body, HttpServer, HttpServerOptions};

use crate::util::{LIMIT, bounded, python};

const SIZE: usize = 8 << 20;

/// `len` bytes of a pattern that does not repeat every few chunks.
fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

/// A server whose GET handler answers `/reader` from a reader and `/channel` from a task
/// writing 100 000-byte chunks, both `data(SIZE)`.
async fn streaming_server() -> (HttpServer, Bytes) {
    let server = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    let expected = Bytes::from(data(SIZE));
    let body = expected.clone();
    server.on_body(Method::GET, move |req: Request<Bytes>| {
        let body = body.clone();
        async move {
            match req.uri().path() {
                "/reader" => Response::new(Body::from_reader(Cursor::new(body))),
                "/channel" => {
                    let (mut sender, streamed) = Body::channel(4);
                    tokio::spawn(async move {
                        for chunk in body.chunks(100_000) {
                            let chunk = body.slice_ref(chunk);
                            if sender.send(chunk).await.is_err() {
                                return;
                            }
                        }
                    });
                    Response::new(streamed)
                }
                _ => Response::new(Body::from("whole")),
            }
        }
    });
    server.start();
    (server, expected)
}

/// Runs curl with `args`; returns (exit code, stdout, stderr).
async fn curl(args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let out = bounded(
        tokio::process::Command::new("curl")
            .args(["-s", "-S", "--max-time", "20"])
            .args(args)
            .output(),
    )
    .await
    .expect("curl runs (scripts/test.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), out.stdout, stderr)
}

#[tokio::test]
async fn http_streamed_bodies_reach_curl_chunked() {
    let (server, expected) = streaming_server().await;
    let base = format!("http://{}", server.local_addr());
    for path in ["/reader", "/channel"] {
        let (code, body, log) = curl(&["-v", "-o", "-", &format!("{base}{path}")]).await;
        assert_eq!(code, Some(0), "{path}: {log}");
        let log = log.to_ascii_lowercase();
        assert!(
            log.contains("< transfer-encoding: chunked"),
            "{path}: {log}"
        );
        assert!(!log.contains("< content-length"), "{path}: {log}");
        assert_eq!(body.len(), SIZE, "{path}");
        assert!(body == expected, "{path}: the body arrived intact");
    }
    // A whole body still has its length.
    let (code, body, log) = curl(&["-v", "-o", "-", &format!("{base}/whole")]).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(body, b"whole");
    assert!(
        log.to_ascii_lowercase().contains("< content-length: 5"),
        "{log}"
    );
    server.stop().await;
}

#[tokio::test]
async fn http_streamed_bodies_reach_python_requests() {
    let (server, expected) = streaming_server().await;
    let script = r#"
import hashlib, sys, requests
for url in sys.argv[1:]:
    r = requests.get(url, stream=True, timeout=20)
    h, n = hashlib.sha256(), 0
    for chunk in r.iter_content(65536):
        h.update(chunk)
        n += len(chunk)
    print(r.status_code, r.headers.get("Transfer-Encoding"), n, h.hexdigest())
"#;
    let base = format!("http://{}", server.local_addr());
    let out = bounded(
        tokio::process::Command::new(python())
            .args(["-c", script])
            .arg(format!("{base}/reader"))
            .arg(format!("{base}/channel"))
            .output(),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest: String = Sha256::digest(&expected)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let line = format!("200 chunked {SIZE} {digest}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), [&line, &line]);
    server.stop().await;
}

/// Size of the chunks of the slow-client test, and their number: 64 MiB in all.
const CHUNK: usize = 64 << 10;
const CHUNKS: usize = 1024;

/// A reader of `CHUNKS * CHUNK` zero bytes that publishes how many it has given.
struct CountingReader {
    given: usize,
    count: Arc<watch::Sender<usize>>,
}

impl AsyncRead for CountingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = buf.remaining().min(CHUNKS * CHUNK - self.given);
        buf.put_slice(&vec![0; n]);
        self.given += n;
        self.count.send_replace(self.given);
        Poll::Ready(Ok(()))
    }
}

/// Reads a chunked body from `tcp` to its end, returning its length; `None` if the connection
/// ends before the last chunk.
async fn read_chunked(tcp: &mut TcpStream) -> Option<usize> {
    let mut buf = Vec::new();
    let mut pos = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut more = [0; 4096];
        let n = tcp.read(&mut more).await.unwrap();
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&more[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..pos]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let mut total = 0;
    let mut more = vec![0; 1 << 16];
    loop {
        // Needs a size line, then that many bytes and a CRLF.
        if let Some(eol) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
            let line = std::str::from_utf8(&buf[pos..pos + eol]).unwrap();
            let size = usize::from_str_radix(line, 16).unwrap();
            if buf.len() >= pos + eol + 2 + size + 2 {
                pos += eol + 2 + size + 2;
                if size == 0 {
                    return Some(total);
                }
                total += size;
                buf.drain(..pos);
                pos = 0;
                continue;
            }
        }
        let n = tcp.read(&mut more).await.unwrap();
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&more[..n]);
    }
}

/// Waits until `count` stops changing for half a second (within [`LIMIT`]); returns its value.
async fn stalled(count: &mut watch::Receiver<usize>) -> usize {
    bounded(async {
        while tokio::time::timeout(Duration::from_millis(500), count.changed())
            .await
            .is_ok_and(|changed| changed.is_ok())
        {}
    })
    .await;
    *count.borrow_and_update()
}

#[tokio::test]
async fn http_a_slow_client_holds_back_the_channel_and_the_reader() {
    let server = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    let (sent_tx, mut sent) = watch::channel(0);
    let (given_tx, mut given) = watch::channel(0);
    let sent_tx = Arc::new(sent_tx);
    let given_tx = Arc::new(given_tx);
    server.on_body(Method::GET, move |req: Request<Bytes>| {
        let (sent_tx, given_tx) = (sent_tx.clone(), given_tx.clone());
        async move {
            if req.uri().path() == "/reader" {
                let reader = CountingReader {
                    given: 0,
                    count: given_tx,
                };
                return Response::new(Body::from_reader(reader));
            }
            let (mut sender, body) = Body::channel(4);
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![0; CHUNK]);
                for i in 1..=CHUNKS {
                    if sender.send(chunk.clone()).await.is_err() {
                        return;
                    }
                    sent_tx.send_replace(i * CHUNK);
                }
            });
            Response::new(body)
        }
    });
    server.start();

    for (path, count) in [("/channel", &mut sent), ("/reader", &mut given)] {
        // A client with a small receive window that sends its request and reads nothing.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 << 10).unwrap();
        let mut tcp = bounded(socket.connect(server.local_addr())).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        bounded(tcp.write_all(request.as_bytes())).await.unwrap();
        let held = stalled(count).await;
        // The kernel's buffers (a few MiB at most), hyper's and the channel's: far from 64 MiB.
        assert!(
            held > 0 && held < 16 << 20,
            "{path}: {held} bytes produced while the client did not read"
        );
        let total = bounded(read_chunked(&mut tcp)).await;
        assert_eq!(total, Some(CHUNKS * CHUNK), "{path}");
        assert_eq!(
            *count.borrow(),
            CHUNKS * CHUNK,
            "{path}: all produced once read"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn http_an_aborting_handler_closes_the_connection_and_the_server_goes_on() {
    let server = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    server.on(Method::GET, |req: Request<Bytes>| async move {
        if req.uri().path() == "/abort" {
            return Abort::response();
        }
        Response::new(Bytes::from_static(b"still here"))
    });
    server.start();
    let base = format!("http://{}", server.local_addr());
    let (code, body, log) = curl(&[&format!("{base}/abort")]).await;
    assert_eq!(code, Some(52), "curl: empty reply from server: {log}");
    assert!(body.is_empty());
    let (code, body, log) = curl(&[&format!("{base}/next")]).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(body, b"still here");
    server.stop().await;
}

#[tokio::test]
async fn http_an_aborted_stream_ends_without_its_last_chunk() {
    let server = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    let seen = Arc::new(Notify::new());
    let go_on = seen.clone();
    server.on_body(Method::GET, move |req: Request<Bytes>| {
        let go_on = go_on.clone();
        async move {
            let (mut sender, body) = Body::channel(1);
            if req.uri().path() == "/abort" {
                tokio::spawn(async move {
                    sender.send("partial").await.unwrap();
                    go_on.notified().await;
                    sender.abort();
                });
            } else {
                tokio::spawn(async move { sender.send("complete").await });
            }
            Response::new(body)
        }
    });
    server.start();

    let mut tcp = bounded(TcpStream::connect(server.local_addr()))
        .await
        .unwrap();
    bounded(tcp.write_all(b"GET /abort HTTP/1.1\r\nHost: localhost\r\n\r\n"))
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    while !received.ends_with(b"partial\r\n") {
        let n = bounded(tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    seen.notify_one();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(LIMIT, tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection is closed");
    assert!(
        rest.is_empty(),
        "no last chunk: {}",
        String::from_utf8_lossy(&rest)
    );

    let (code, body, log) = curl(&[&format!("http://{}/next", server.local_addr())]).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(body, b"complete");
    server.stop().await;
}
