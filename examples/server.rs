//! websocket-sharp's Example2: `/Echo`, `/Chat` and `/ChatWithNyan` on port 4649; a client that
//! sends a `RequestForID` header gets its session's id back in an `ID` header, as Example2's
//! `UserHeadersResponder` does.
//!
//! Usage: `cargo run -p wsharp-examples --example server [ADDR]`, then connect with
//! `cargo run -p wsharp-examples --example client`.

use wsharp::demo::{Chat, Echo};
use wsharp::server::{ServiceOptions, WebSocketServer};

#[tokio::main]
async fn main() -> wsharp::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4649".into());
    let server = WebSocketServer::bind(addr.as_str()).await?;
    server.add_service("/Echo", || Echo)?;
    let with_id = ServiceOptions::default().response_headers(|request, response, id| {
        if request.contains_key("RequestForID")
            && let Ok(id) = id.parse()
        {
            response.insert("ID", id);
        }
    });
    server.add_service_with("/Chat", with_id, Chat::factory(""))?;
    // As AddWebSocketService<Chat>("/ChatWithNyan", s => s.Suffix = " Nyan!").
    let nyan = Chat::factory(" Nyan!");
    server.add_service_with("/ChatWithNyan", ServiceOptions::default(), nyan)?;
    server.start();
    println!(
        "listening on ws://{}: /Echo, /Chat, /ChatWithNyan. Press Enter to stop.",
        server.local_addr()
    );
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
    server.stop().await;
    Ok(())
}
