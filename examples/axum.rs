//! A WebSocket inside an axum application: the route hands the upgraded request to wsharp.
//!
//! Usage: `cargo run -p wsharp-examples --example axum`, then connect to ws://127.0.0.1:3000/ws.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use wsharp::ServerBuilder;
use wsharp::http_server::upgrade;

async fn ws_route(req: Request) -> Response {
    let up = match upgrade(
        req,
        &ServerBuilder::new().compression(wsharp::Deflate::default()),
    ) {
        Ok(up) => up,
        Err(refusal) => return refusal.into_response().map(Body::from),
    };
    tokio::spawn(async move {
        let Ok(mut ws) = up.websocket.await else {
            return;
        };
        while let Some(Ok(msg)) = ws.recv().await {
            if msg.is_data() && ws.send(msg).await.is_err() {
                break;
            }
        }
    });
    up.response.map(Body::from)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let app = axum::Router::new()
        .route("/ws", get(ws_route))
        .route("/", get(|| async { "wsharp inside axum" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
