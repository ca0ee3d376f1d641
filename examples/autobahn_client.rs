//! Follows the Autobahn fuzzing server: runs every case as an echo client, then asks it to
//! write its reports.
//!
//! Usage: `autobahn_client [ws://127.0.0.1:9001] [agent]`. For a `wss://` base URL, the CA
//! certificate in the PEM file `WSHARP_AUTOBAHN_CA` names is trusted (the runner then sits
//! behind a TLS relay).

use wsharp::tls::ClientTls;
use wsharp::{ClientBuilder, Config, Deflate, Message};

/// The client settings: the TLS trust for a relayed `wss://` run.
fn builder(url: &str) -> ClientBuilder {
    let mut tls = ClientTls::new();
    if let Some(ca) = std::env::var_os("WSHARP_AUTOBAHN_CA") {
        tls = tls.add_ca_pem_file(ca);
    }
    ClientBuilder::new(url).tls(tls)
}

async fn echo_case(url: &str) -> wsharp::Result<()> {
    // Offering client_no_context_takeover lets the runner's cases 13.2, 13.5 and 13.6 run.
    let deflate = Deflate::default().client_no_context_takeover(true);
    let mut ws = builder(url)
        .config(Config::default())
        .compression(deflate)
        .connect()
        .await?;
    // Errors end the stream; recv returns None once the close is done, so keep going.
    while let Some(msg) = ws.recv().await {
        if let Ok(msg @ (Message::Text(_) | Message::Binary(_))) = msg {
            ws.feed(msg).await?;
        }
    }
    Ok(())
}

async fn case_count(base: &str) -> wsharp::Result<u32> {
    let mut ws = builder(&format!("{base}/getCaseCount")).connect().await?;
    let mut count = None;
    while let Some(msg) = ws.recv().await {
        // The runner drops the TCP connection right after its close: an error here is expected.
        match msg {
            Ok(Message::Text(t)) => count = t.parse().ok(),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    count.ok_or_else(|| wsharp::Error::InvalidUrl("no case count received".into()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "wsharp".into());
    let count = case_count(&base).await?;
    eprintln!("running {count} cases as agent {agent}");
    // Two cases at a time: the runner allows it, and it halves the compression groups' time.
    let next = std::rc::Rc::new(std::cell::Cell::new(1));
    let worker = |next: std::rc::Rc<std::cell::Cell<u32>>| {
        let (base, agent) = (base.clone(), agent.clone());
        async move {
            loop {
                let case = next.get();
                if case > count {
                    break;
                }
                next.set(case + 1);
                if let Err(e) =
                    echo_case(&format!("{base}/runCase?case={case}&agent={agent}")).await
                {
                    eprintln!("case {case}: {e}");
                }
            }
        }
    };
    futures_util::future::join(worker(next.clone()), worker(next)).await;
    // The runner answers with 101 and drops the connection: that error is expected.
    if let Ok(mut ws) = builder(&format!("{base}/updateReports?agent={agent}"))
        .connect()
        .await
    {
        while let Some(Ok(_)) = ws.recv().await {}
    }
    Ok(())
}
