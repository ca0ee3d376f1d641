//! `wsharp serve`: the HTTP server example's setup (the page, `/Echo` and `/Chat`).

use std::net::SocketAddr;
use std::path::PathBuf;

use wsharp::demo::{Chat, Echo, INDEX_HTML};
use wsharp::http_server::{HttpServer, HttpServerOptions};

use crate::exit::{Failure, code};

/// Serves the built-in page at `/` (unless `root` has its own `index.html`), the files of
/// `root`, and the `/Echo` and `/Chat` services, until Ctrl-C; then closes every session with
/// 1001.
pub(crate) async fn serve(
    listen: SocketAddr,
    root: Option<PathBuf>,
    tls: Option<wsharp::tls::ServerTls>,
) -> Result<(), Failure> {
    let root = root.unwrap_or_else(|| PathBuf::from("./public"));
    let secure = tls.is_some();
    let mut options = HttpServerOptions::default()
        .document_root(&root)
        .index_page(INDEX_HTML);
    if let Some(tls) = tls {
        options = options.tls(tls);
    }
    let server = HttpServer::bind(listen, options)
        .await
        .map_err(|e| Failure::new(code::FAILURE, format!("cannot listen on {listen}: {e}")))?;
    server.add_service("/Echo", || Echo);
    server.add_service("/Chat", Chat::factory(""));
    server.start();
    let addr = server.local_addr();
    let (http, ws) = if secure {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    tracing::info!(
        "serving {http}://{addr}/ with {ws}://{addr}/Echo and {ws}://{addr}/Chat (files from {})",
        root.display()
    );
    tokio::signal::ctrl_c().await?;
    tracing::info!("stopping: closing every session with 1001");
    server.stop().await;
    Ok(())
}
