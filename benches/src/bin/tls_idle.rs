//! `tls_idle [N]`: what wsharp's `wss` echo server holds per idle TLS connection, counted
//! byte by byte. The server (the loop `wsharp echo --tls-cert` runs: `ServerBuilder::accept_tls`,
//! then `recv` and `queue`) lives in this process on mimalloc with a counter; N clients in a
//! child process (this program with `--clients N ADDR`) each connect, echo one 40-byte message
//! and then sit idle. The growth of the counted heap and of the resident set, divided by N,
//! beside `tls_state`'s figures for rustls alone, tells what of a TLS connection is wsharp's.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::net::TcpListener;
use wsharp::ServerBuilder;
use wsharp::tls::{ClientTls, ServerTls};
use wsharp_bench::CountingMimalloc;

#[global_allocator]
static GLOBAL: CountingMimalloc = CountingMimalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--clients") {
        let n = args.next().and_then(|a| a.parse().ok()).expect("a count");
        clients(n, &args.next().expect("an address"));
        return;
    }
    let n: usize = first.and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("a cert");
    let tls = ServerTls::from_pem(
        certified.cert.pem().as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )
    .expect("a TLS configuration");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("a listener");
    let addr = listener.local_addr().expect("an address").to_string();
    runtime.spawn(serve(listener, tls));

    // Warm up the runtime, rustls and the allocator, and let those connections end.
    let warm = clients_process(20, &addr);
    finish(warm);
    std::thread::sleep(Duration::from_millis(300));
    let (heap0, rss0) = (
        CountingMimalloc::live_bytes(),
        wsharp_testkit::memory::rss_bytes(),
    );
    let held = clients_process(n, &addr);
    std::thread::sleep(Duration::from_millis(300));
    let (heap1, rss1) = (
        CountingMimalloc::live_bytes(),
        wsharp_testkit::memory::rss_bytes(),
    );
    println!(
        "wsharp wss echo, idle: {} bytes of heap and {} bytes of RSS per connection \
         ({n} connections, mimalloc)",
        heap1.saturating_sub(heap0) / n,
        rss1.saturating_sub(rss0) / n
    );
    finish(held);
    runtime.shutdown_background();
}

/// The echo server, as `wsharp echo` runs it.
async fn serve(listener: TcpListener, tls: ServerTls) {
    let server = std::sync::Arc::new(ServerBuilder::new());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (server, tls) = (std::sync::Arc::clone(&server), tls.clone());
        let handshake = Box::pin(async move { server.accept_tls(&tls, tcp).await });
        tokio::spawn(async move {
            let Ok(mut ws) = handshake.await else {
                return;
            };
            while let Some(Ok(msg)) = ws.recv().await {
                if msg.is_data() && ws.queue(msg).is_err() {
                    break;
                }
            }
        });
    }
}

/// Starts the clients' process and waits until its `n` connections are open and idle.
fn clients_process(n: usize, addr: &str) -> Child {
    let program = std::env::current_exe().expect("this program");
    let mut child = Command::new(program)
        .args(["--clients", &n.to_string(), addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the clients' process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("its output"))
        .read_line(&mut line)
        .expect("a line");
    assert_eq!(line.trim(), "ready", "the clients failed");
    child
}

/// Ends the clients' process (its input closes) and waits for it.
fn finish(mut child: Child) {
    drop(child.stdin.take());
    child.wait().expect("the clients end");
}

/// The clients' process: `n` connections, each echoing one message, held until standard input
/// closes.
fn clients(n: usize, addr: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let url = format!("wss://{addr}/");
        let mut sockets = Vec::with_capacity(n);
        for _ in 0..n {
            let mut ws = wsharp::ClientBuilder::new(&url)
                .tls(ClientTls::new().dangerous_accept_any_certificate())
                .connect()
                .await
                .expect("a connection");
            ws.send("a message of some forty bytes, echoed back")
                .await
                .expect("sent");
            ws.recv().await.expect("a message").expect("an echo");
            sockets.push(ws);
        }
        println!("ready");
        let _ = std::io::stdout().flush();
        let _ = std::io::stdin().read_line(&mut String::new());
    });
}
