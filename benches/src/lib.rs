//! Benchmarks of wsharp beside tokio-tungstenite, fastwebsockets, tokio-websockets and sockudo-ws:
//! echo servers built on each peer (`peer_tungstenite`, `peer_fastwebsockets`,
//! `peer_tokio_websockets`, `peer_sockudo`), a driver that runs them all under
//! `wsharp bench` (the load generator, on wsharp's client) and prints ratios (`suite`), and a
//! criterion bench of frame parsing (`benches/codec.rs`). See `docs/performance.md`.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// A rustls server configuration with aws-lc-rs (the provider wsharp uses by default) from a
/// PEM certificate chain and key: what the TLS peers of the suite serve with.
///
/// # Errors
/// If the files cannot be read or do not make a configuration.
pub fn tls_server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    let chain = rustls_pki_types::CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(std::io::Error::other)?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key).map_err(std::io::Error::other)?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(std::io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

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
