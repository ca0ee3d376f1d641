//! websocket-sharp's Example3: files from `./public` (or the built-in page at `/`, whose echo
//! test runs as it loads), `/Echo`, `/Chat` and `/ChatWithNyan` on the same port 4649, and a
//! POST handler that echoes the body.
//!
//! Usage: `cargo run -p wsharp-examples --example http_server [ADDR] [ROOT]`, then open
//! http://127.0.0.1:4649/ in a browser.

use wsharp::demo::{Chat, Echo, INDEX_HTML};
use wsharp::http::{Method, Request, Response};
use wsharp::http_server::{HttpServer, HttpServerOptions};

#[tokio::main]
async fn main() -> wsharp::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:4649".into());
    let root = args.next().unwrap_or_else(|| "./public".into());
    let options = HttpServerOptions::default()
        .document_root(root)
        .index_page(INDEX_HTML);
    let server = HttpServer::bind(addr.as_str(), options).await?;
    server.add_service("/Echo", || Echo)?;
    let chat = Chat::factory("");
    server.add_service("/Chat", chat)?;
    server.add_service("/ChatWithNyan", Chat::factory(" Nyan!"))?;
    server.on(Method::POST, |req: Request<bytes::Bytes>| async move {
        Response::new(req.into_body())
    });
    server.start();
    println!(
        "serving http://{0}/ with ws://{0}/Echo, ws://{0}/Chat and ws://{0}/ChatWithNyan. Press Enter to stop.",
        server.local_addr()
    );
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
    server.stop().await;
    Ok(())
}
