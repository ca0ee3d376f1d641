//! WebSockets for tokio: client and server over the [`wsharp_proto`] sans-IO core.
//!
//! ```text
//!   TcpStream / TLS / any AsyncRead+AsyncWrite
//!        │ bytes read once into the core's buffer, frames written with one vectored write
//!        ▼
//!   WebSocket<S>  ── drives ──►  wsharp_proto::Connection (framing, UTF-8, close, limits)
//!        │ recv() / send() / close() / Stream + Sink / split()
//!        ▼
//!   your code
//! ```
//!
//! # Client
//! ```no_run
//! # async fn run() -> wsharp::Result<()> {
//! let mut ws = wsharp::ClientBuilder::new("ws://127.0.0.1:9001/chat")
//!     .subprotocols(["chat.v2"])
//!     .origin("http://localhost")
//!     .connect()
//!     .await?;
//! ws.send("hi").await?;
//! if let Some(reply) = ws.recv().await {
//!     println!("{:?}", reply?);
//! }
//! ws.close(wsharp::CloseCode::NORMAL, "bye").await?;
//! while ws.recv().await.is_some() {}
//! # Ok(()) }
//! ```
//!
//! # Server
//! ```no_run
//! # async fn run() -> wsharp::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! let server = wsharp::ServerBuilder::new().subprotocols(["chat.v2"]);
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let server = server.clone();
//!     tokio::spawn(async move {
//!         let Ok(mut ws) = server.accept(tcp).await else { return };
//!         while let Some(Ok(msg)) = ws.recv().await {
//!             if msg.is_data() && ws.feed(msg).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! # Features
//! - `client` (default): [`connect`], [`ClientBuilder`], the blocking `connect`.
//! - `server` (default): [`accept`], [`ServerBuilder`], the [`server`] framework, the blocking
//!   `accept`.
//! - `http-server` (default, implies `server`): [`http_server::HttpServer`] on hyper and the
//!   [`demo`] page. Without it, hyper is not compiled.
//!
//! With none of them, [`WebSocket`] and [`blocking::WebSocket`] still drive a connection over
//! any stream whose opening handshake was done elsewhere (see [`proto::handshake`]).
//!
//! # Defaults
//! Frames up to 16 MiB, messages up to 64 MiB, handshake heads up to 16 KiB and 100 headers,
//! a 10 s handshake timeout and a 5 s close timeout: see [`Config`] and [`Limits`].
#![forbid(unsafe_code)]

#[cfg(any(feature = "client", feature = "server"))]
pub mod auth;
pub mod blocking;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "redis")]
pub mod cluster;
#[cfg(feature = "http-server")]
pub mod demo;
mod error;
#[cfg(feature = "http-server")]
pub mod http_server;
#[cfg(any(feature = "client", feature = "server"))]
mod percent;
#[cfg(feature = "server")]
pub mod server;
mod socket;
mod split;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "client")]
mod transport;

#[cfg(feature = "cookies")]
pub use client::CookieJar;
#[cfg(feature = "client")]
pub use client::{
    ClientBuilder, Proxy, ProxyError, ProxyFailure, ProxyKind, ProxySettings, connect,
};
pub use error::{Error, Result};
#[cfg(feature = "server")]
pub use server::{OnRequest, Refusal, ServerBuilder, accept};
pub use socket::{Received, WebSocket};
pub use split::{RecvHalf, SendHalf};
#[cfg(feature = "client")]
pub use transport::Transport;

pub use wsharp_proto::deflate::Deflate;
pub use wsharp_proto::handshake::{HandshakeError, UpgradeRequest};
pub use wsharp_proto::{
    CloseCode, CloseFrame, CloseStatus, Config, Failure, Lifecycle, Limits, Message, MessageKind,
    Part, ProtocolError, Role, SendError, State, Utf8Bytes,
};
pub use wsharp_proto::{bytes, http};

/// The sans-IO protocol core.
pub use wsharp_proto as proto;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

/// The examples of `docs/proxy.md`, compiled as doctests.
#[cfg(all(doctest, feature = "client"))]
#[doc = include_str!("../../../docs/proxy.md")]
pub struct ProxyDocExamples;

/// The examples of `docs/auth.md`, compiled as doctests.
#[cfg(all(doctest, feature = "cookies", feature = "http-server"))]
#[doc = include_str!("../../../docs/auth.md")]
pub struct AuthDocExamples;

/// The examples of `docs/cluster.md`, compiled as doctests.
#[cfg(all(doctest, feature = "redis", feature = "http-server"))]
#[doc = include_str!("../../../docs/cluster.md")]
pub struct ClusterDocExamples;

/// Without the `deflate` feature, compression settings are kept but nothing is negotiated.
#[cfg(all(test, not(feature = "deflate"), feature = "client", feature = "server"))]
mod without_deflate {
    use crate::{ClientBuilder, Deflate, Message, ServerBuilder};

    #[tokio::test]
    async fn neither_side_offers_or_accepts_permessage_deflate() {
        let (client_io, server_io) = tokio::io::duplex(64 << 10);
        let server = ServerBuilder::new().compression(Deflate::default());
        let server = tokio::spawn(async move { server.accept(server_io).await });
        let client = ClientBuilder::new("ws://localhost/").compression(Deflate::default());
        let request = client.request().expect("a valid request");
        assert!(
            request
                .headers()
                .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
                .is_none(),
            "no offer in the request"
        );
        let mut ws = client.connect_on(client_io).await.expect("handshake");
        let mut accepted = server.await.expect("joined").expect("accepted");
        assert!(!ws.is_compressed() && !accepted.is_compressed());
        ws.send("plain").await.expect("sent");
        let got = accepted.recv().await.expect("a message").expect("no error");
        assert_eq!(got, Message::text("plain"));
    }
}
