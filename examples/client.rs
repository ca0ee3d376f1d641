//! websocket-sharp's example client: connects to `/Chat`, prints what arrives, and sends each
//! console line until `exit`.
//!
//! Usage: `cargo run -p wsharp-examples --example client [ws://127.0.0.1:4649/Chat?name=you]`

use tokio::io::{AsyncBufReadExt, BufReader};
use wsharp::{CloseCode, Message};

#[tokio::main]
async fn main() -> wsharp::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:4649/Chat".into());
    let ws = wsharp::ClientBuilder::new(&url)
        .compression(wsharp::Deflate::default())
        .connect()
        .await?;
    let (mut tx, mut rx) = ws.split();
    let printer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                Ok(m) if m.is_text() => println!("{}", m.as_text().unwrap_or_default()),
                Ok(m) if m.is_binary() => println!("<{} bytes>", m.len()),
                Ok(Message::Close(frame)) => println!("closed: {frame:?}"),
                Ok(_) => {}
                Err(e) => eprintln!("error: {e}"),
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    println!("connected to {url}; type messages, 'exit' to quit");
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "exit" {
            break;
        }
        tx.send(line).await?;
    }
    tx.close(CloseCode::NORMAL, "bye").await?;
    let _ = printer.await;
    Ok(())
}
