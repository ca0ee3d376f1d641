//! Handshake settings at their edges, in both roles: zero means none at all, never a hang.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsharp::{ClientBuilder, Config, Error, Limits, ServerBuilder};

use crate::util::{UPGRADE, bounded};

#[tokio::test]
async fn a_zero_handshake_timeout_gives_up_at_once_in_both_roles() {
    // Server: the request cannot have arrived in no time.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        ServerBuilder::new()
            .config(Config::default().handshake_timeout(Duration::ZERO))
            .accept(tcp)
            .await
            .map(|_| ())
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let result = bounded(server).await.unwrap();
    assert!(matches!(result, Err(Error::HandshakeTimeout)), "{result:?}");
    let mut rest = Vec::new();
    let _ = bounded(tcp.read_to_end(&mut rest)).await;

    // Client: a server that answers nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _held = tokio::spawn(async move { listener.accept().await });
    let result = bounded(
        ClientBuilder::new(format!("ws://{addr}/"))
            .config(Config::default().handshake_timeout(Duration::ZERO))
            .connect(),
    )
    .await;
    assert!(matches!(result, Err(Error::HandshakeTimeout)), "{result:?}");
}

/// Sends a plain upgrade request to a server with `limits`; returns the status line.
async fn status_with(limits: Limits) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = ServerBuilder::new().limits(limits).accept(tcp).await;
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("{UPGRADE}\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = bounded(tcp.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn zero_head_limits_refuse_every_request() {
    let request_len = UPGRADE.len() + 2;
    // With no room at all, not even the request line fits: 414.
    let zero = status_with(Limits::default().max_handshake_size(0)).await;
    assert!(zero.contains("414"), "{zero:?}");
    assert!(
        status_with(Limits::default().max_headers(0))
            .await
            .contains("431")
    );
    // At the edge: a limit of exactly the request's size accepts it, one byte less refuses it.
    assert!(
        status_with(Limits::default().max_handshake_size(request_len))
            .await
            .contains("101")
    );
    assert!(
        status_with(Limits::default().max_handshake_size(request_len - 1))
            .await
            .contains("431")
    );
    assert!(
        status_with(Limits::default().max_headers(5))
            .await
            .contains("101")
    );
    assert!(
        status_with(Limits::default().max_headers(4))
            .await
            .contains("431")
    );
}
