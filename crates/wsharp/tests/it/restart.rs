//! Servers that start again after a stop (websocket-sharp's `Start` after `Stop`), say whether
//! they listen, and close a session without a code.

use wsharp::demo::Echo;
use wsharp::http_server::{HttpServer, HttpServerOptions};
use wsharp::server::WebSocketServer;
use wsharp::{CloseCode, Message};

use crate::util::bounded;

async fn echo_once(url: &str) {
    let mut ws = bounded(wsharp::connect(url)).await.unwrap();
    ws.send("again").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("again")
    );
}

#[tokio::test]
async fn both_servers_start_again_after_stop() {
    let ws_server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    ws_server.add_service("/Echo", || Echo).unwrap();
    let http = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    http.add_service("/Echo", || Echo).unwrap();
    let urls = [
        format!("ws://{}/Echo", ws_server.local_addr()),
        format!("ws://{}/Echo", http.local_addr()),
    ];
    assert!(!ws_server.is_listening() && !http.is_listening());
    for round in 0..2 {
        ws_server.try_start().unwrap();
        http.try_start().unwrap();
        assert!(
            ws_server.is_listening() && http.is_listening(),
            "round {round}"
        );
        for url in &urls {
            echo_once(url).await;
        }
        ws_server.stop().await;
        http.stop().await;
        assert!(
            !ws_server.is_listening() && !http.is_listening(),
            "round {round}"
        );
        for url in &urls {
            assert!(
                bounded(wsharp::connect(url)).await.is_err(),
                "stopped: {url}"
            );
        }
    }
}

#[tokio::test]
async fn a_session_closed_without_a_code() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    server.add_service("/Echo", || Echo).unwrap();
    server.start();
    let mut ws = bounded(wsharp::connect(&format!(
        "ws://{}/Echo",
        server.local_addr()
    )))
    .await
    .unwrap();
    let sessions = server.sessions("/Echo").unwrap();
    bounded(async {
        while sessions.count() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let id = sessions.ids().remove(0);
    sessions.close_session_without_code(&id).unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::Close(None)
    );
    assert!(bounded(ws.recv()).await.is_none());
    assert_eq!(ws.close_status().unwrap().code, CloseCode::NO_STATUS);
    assert!(sessions.close_session_without_code(&id).is_err());
    server.stop().await;
}

#[tokio::test]
async fn servers_bind_from_urls() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = WebSocketServer::bind_url(&format!("ws://127.0.0.1:{port}"))
        .await
        .unwrap();
    server.add_service("/Echo", || Echo).unwrap();
    server.start();
    echo_once(&format!("ws://127.0.0.1:{port}/Echo")).await;
    server.stop().await;
    let http = HttpServer::bind_url("http://127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    assert_ne!(http.local_addr().port(), 0);
    assert!(matches!(
        WebSocketServer::bind_url("ws://127.0.0.1:0/chat").await,
        Err(wsharp::Error::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn a_taken_path_is_an_error() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    server.add_service("/Echo", || Echo).unwrap();
    match server.add_service("/Echo/", || Echo) {
        Err(wsharp::Error::PathTaken(path)) => assert_eq!(path, "/Echo"),
        other => panic!("{other:?}"),
    }
    assert!(server.remove_service("/Echo"));
    server.add_service("/Echo", || Echo).unwrap();
    let http = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    http.add_service("/Chat", || Echo).unwrap();
    assert!(http.add_service("/Chat", || Echo).is_err());
}
