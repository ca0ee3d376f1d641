//! The session context (websocket-sharp's `WebSocketContext`) and a service's response headers
//! (its `UserHeadersResponder`, which Example2 uses to answer a `RequestForID` with the
//! session's id).

use std::time::SystemTime;

use wsharp::http_server::{HttpServer, HttpServerOptions};
use wsharp::server::{Behavior, ServiceOptions, Session, WebSocketServer};
use wsharp::{ClientBuilder, Deflate, Message};

use crate::util::bounded;

/// Describes its session in one text message on open.
struct Describe;

impl Behavior for Describe {
    async fn on_open(&mut self, session: &Session) {
        let age = SystemTime::now()
            .duration_since(session.start_time())
            .expect("started in the past");
        let line = format!(
            "id={} host={} origin={} query={} cookie={} protocol={} extensions={} local={} remote_is_local={} secure={} young={}",
            session.id(),
            session.host().unwrap_or("-"),
            session.origin().unwrap_or("-"),
            session.query("room").unwrap_or_default(),
            session.cookie("lang").unwrap_or_default(),
            session.protocol().unwrap_or("-"),
            session.extensions().unwrap_or("-"),
            session.local_addr().map(|a| a.port()).unwrap_or_default(),
            session.is_local(),
            session.is_secure(),
            age.as_secs() < 60,
        );
        let _ = session.send(line).await;
    }

    async fn on_message(&mut self, _: &Session, _: Message) {}
}

fn options() -> ServiceOptions {
    ServiceOptions::default()
        .protocols(["chat"])
        .response_headers(|request, response, id| {
            if request.contains_key("RequestForID") {
                response.insert("ID", id.parse().unwrap());
            }
            // Handshake headers are not the responder's to set.
            response.insert("Sec-WebSocket-Accept", "forged".parse().unwrap());
        })
}

#[tokio::test]
async fn the_context_and_response_headers_on_both_servers() {
    let ws_server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    ws_server
        .add_service_with("/ctx", options(), || Describe)
        .unwrap();
    ws_server.start();
    let http = HttpServer::bind("127.0.0.1:0", HttpServerOptions::default())
        .await
        .unwrap();
    http.add_service_with("/ctx", options(), || Describe)
        .unwrap();
    http.start();
    for addr in [ws_server.local_addr(), http.local_addr()] {
        let (mut ws, response) = bounded(
            ClientBuilder::new(format!("ws://{addr}/ctx?room=blue"))
                .origin("http://example.test")
                .cookie("lang", "ja")
                .subprotocols(["chat"])
                .compression(Deflate::default())
                .header("RequestForID", "1234")
                .connect_with_response(),
        )
        .await
        .unwrap();
        let id = response.headers()["id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32);
        assert_ne!(response.headers()["sec-websocket-accept"], "forged");
        let text = bounded(ws.recv()).await.unwrap().unwrap();
        let expect = format!(
            "id={id} host={addr} origin=http://example.test query=blue cookie=ja protocol=chat extensions=permessage-deflate local={} remote_is_local=true secure=false young=true",
            addr.port()
        );
        assert_eq!(text.as_text().unwrap(), expect);
    }
    ws_server.stop().await;
    http.stop().await;
}
