//! A WebSocket inside an axum application: the route hands the upgraded request to wsharp.
//!
//! Usage: `cargo run -p wsharp-examples --example axum [ADDR] [--tls-cert FILE --tls-key FILE]`,
//! then connect to ws://127.0.0.1:3000/ws (or wss:// with the certificate: the whole
//! application is then served over TLS, with wsharp's reloadable `ServerTls`).

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
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let addr = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let app = axum::Router::new()
        .route("/ws", get(ws_route))
        .route("/", get(|| async { "wsharp inside axum" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let (Some(cert), Some(key)) = (flag("--tls-cert"), flag("--tls-key")) else {
        println!("listening on http://{}", listener.local_addr()?);
        return Ok(axum::serve(listener, app).await?);
    };
    // Over TLS: each connection's handshake with the (reloadable) ServerTls, then hyper serves
    // the axum application on it, upgrades included.
    let tls = wsharp::tls::ServerTls::from_pem_files(cert, key)?;
    println!("listening on https://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), tls.accept(tcp));
            let Ok(Ok(stream)) = handshake.await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
