//! What a handler learns of its peer (`PeerAddr`, `is_local`), the services an `HttpServer`
//! lists, and the URL a client socket tells (after a plain connect and after a redirect).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsharp::demo::Echo;
use wsharp::http::{Method, Request, Response, StatusCode, Uri};
use wsharp::http_server::{HttpServer, HttpServerOptions};
use wsharp::server::{LocalAddr, PeerAddr};
use wsharp::{ClientBuilder, Message, Refusal, ServerBuilder};

use crate::util::{bounded, echo_server};

/// Sends one GET with `Connection: close` from `tcp` and returns the response body.
async fn get(mut tcp: TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    bounded(tcp.write_all(request.as_bytes())).await.unwrap();
    let mut response = String::new();
    bounded(tcp.read_to_string(&mut response)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (_, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    body.to_owned()
}

#[tokio::test]
async fn a_handler_sees_the_peer_address_and_that_it_is_local() {
    let server = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    server.on(Method::GET, |req: Request<bytes::Bytes>| async move {
        let peer = req.extensions().get::<PeerAddr>().expect("the peer").0;
        let local = req.extensions().get::<LocalAddr>().expect("the local").0;
        let local_req = wsharp::server::is_local(&req);
        Response::new(format!("{peer} {local} {local_req}").into())
    });
    server.start();

    let tcp = bounded(TcpStream::connect(server.local_addr()))
        .await
        .unwrap();
    let client = tcp.local_addr().unwrap();
    let body = get(tcp, "/whoami").await;
    let mut words = body.split(' ');
    let peer: SocketAddr = words.next().unwrap().parse().unwrap();
    let local: SocketAddr = words.next().unwrap().parse().unwrap();
    assert_eq!(peer, client, "the handler saw the client's own address");
    assert_eq!(local, server.local_addr());
    assert_eq!(words.next(), Some("true"), "loopback is local");
    server.stop().await;
}

#[tokio::test]
async fn http_server_paths_follow_add_and_remove() {
    let server = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    assert!(server.paths().is_empty());
    server.add_service("/Echo", || Echo).unwrap();
    server.add_service("/Chat", || Echo).unwrap();
    assert_eq!(server.paths(), ["/Chat", "/Echo"]);
    assert!(server.remove_service("/Chat"));
    assert_eq!(server.paths(), ["/Echo"]);
    assert!(!server.remove_service("/Chat"));
    assert_eq!(server.paths().len(), 1);
}

/// A server that answers every upgrade with a 302 to `location`.
async fn redirecting_to(location: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        ServerBuilder::new().on_request(move |_: &Request<()>, _: &wsharp::UpgradeRequest| {
            Err(Refusal::new(StatusCode::FOUND).header("Location", &location))
        });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = server.accept(tcp).await;
        }
    });
    addr
}

#[tokio::test]
async fn the_client_tells_the_url_it_connected_to() {
    let echo = echo_server(ServerBuilder::new()).await;

    // A plain connect: the URL asked for, without the user-info.
    let mut ws =
        bounded(ClientBuilder::new(format!("ws://nobita:sekret@{echo}/chat?room=1")).connect())
            .await
            .unwrap();
    assert_eq!(ws.url().to_string(), format!("ws://{echo}/chat?room=1"));
    assert_eq!(ws.get_ref().url(), ws.url());
    ws.send("still there").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("still there")
    );

    // After a redirect: where it landed, as the 101's extensions say.
    let target = format!("ws://{echo}/landed");
    let redirect = redirecting_to(target.clone()).await;
    let (ws, response) = bounded(
        ClientBuilder::new(format!("ws://{redirect}/start"))
            .follow_redirects(1)
            .connect_with_response(),
    )
    .await
    .unwrap();
    assert_eq!(ws.url().to_string(), target);
    assert_eq!(response.extensions().get::<Uri>(), Some(ws.url()));
}

#[tokio::test]
async fn the_blocking_client_tells_the_url_it_connected_to() {
    let echo = echo_server(ServerBuilder::new()).await;
    let target = format!("ws://{echo}/landed");
    let redirect = redirecting_to(target.clone()).await;
    let plain = format!("ws://{echo}/plain");
    let urls = tokio::task::spawn_blocking(move || {
        let direct = wsharp::blocking::connect(&plain).unwrap();
        let redirected = ClientBuilder::new(format!("ws://{redirect}/start"))
            .follow_redirects(1)
            .connect_blocking()
            .unwrap();
        (direct.url().to_string(), redirected.url().to_string())
    });
    let (direct, redirected) = bounded(urls).await.unwrap();
    assert_eq!(direct, format!("ws://{echo}/plain"));
    assert_eq!(redirected, target);
}
