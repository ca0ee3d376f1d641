//! Benchmarks of wsharp beside tokio-tungstenite, fastwebsockets, tokio-websockets and sockudo-ws:
//! echo servers built on each peer (`peer_tungstenite`, `peer_fastwebsockets`,
//! `peer_tokio_websockets`, `peer_sockudo`), a driver that runs them all under
//! `wsharp bench` (the load generator, on wsharp's client) and prints ratios (`suite`), and a
//! criterion bench of frame parsing (`benches/codec.rs`). See `docs/performance.md`.

use std::alloc::{GlobalAlloc, Layout};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// mimalloc, the allocator `wsharp` ships with, counting the bytes the program holds: the
/// memory tools (`tls_state`, `tls_idle`) install it so that their heap figures and their RSS
/// figures come from the allocator a wsharp server runs on.
#[derive(Debug)]
pub struct CountingMimalloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);

impl CountingMimalloc {
    /// Bytes allocated and not yet freed.
    pub fn live_bytes() -> usize {
        LIVE.load(Ordering::Relaxed)
    }
}

#[allow(
    unsafe_code,
    reason = "a global allocator is unsafe to implement; this one forwards and counts"
)]
// SAFETY: every call is forwarded unchanged to mimalloc; the counter is only arithmetic.
unsafe impl GlobalAlloc for CountingMimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which mimalloc shares.
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}
