//! Benchmarks of wsharp beside tokio-tungstenite, fastwebsockets, tokio-websockets and sockudo-ws:
//! echo servers built on each peer (`peer_tungstenite`, `peer_fastwebsockets`,
//! `peer_tokio_websockets`, `peer_sockudo`), a driver that runs them all under
//! `wsharp bench` (the load generator, on wsharp's client) and prints ratios (`suite`), and a
//! criterion bench of frame parsing (`benches/codec.rs`). See `docs/performance.md`.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// Serves `listen` on a multi-thread tokio runtime with one worker, as every peer of the suite
/// runs: each accepted connection gets TCP_NODELAY and its own task running `serve`.
///
/// # Errors
/// If the runtime cannot start or the address cannot be bound.
pub fn serve_one_worker<F>(listen: SocketAddr, serve: fn(TcpStream) -> F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            tokio::spawn(serve(tcp));
        }
    })
}
