//! SOCKS5 (RFC 1928, user/password per RFC 1929) on the tokio-socks crate.

use tokio::net::TcpStream;
use tokio_socks::tcp::Socks5Stream;

use super::{Proxy, ProxyFailure, ProxyKind};

/// A TCP stream to `host:port` through the SOCKS5 `proxy`: the target's name resolved here
/// (`socks5://`) or by the proxy (`socks5h://`).
pub(super) async fn connect(proxy: &Proxy, host: &str, port: u16) -> crate::Result<TcpStream> {
    let tcp = proxy.reach().await?;
    let failed = |e: tokio_socks::Error| match e {
        tokio_socks::Error::Io(e) => proxy.error(ProxyFailure::Unreachable(e)),
        other => proxy.error(ProxyFailure::Protocol(format!("SOCKS5: {other}"))),
    };
    let stream = match (proxy.kind, proxy.auth.credentials()) {
        (ProxyKind::Socks5h, Some(c)) => {
            Socks5Stream::connect_with_password_and_socket(
                tcp,
                (host, port),
                c.user(),
                c.password(),
            )
            .await
        }
        (ProxyKind::Socks5h, None) => Socks5Stream::connect_with_socket(tcp, (host, port)).await,
        (_, credentials) => {
            let addr = tokio::net::lookup_host((host, port))
                .await?
                .next()
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{host} resolves to no address"),
                    )
                })?;
            match credentials {
                Some(c) => {
                    Socks5Stream::connect_with_password_and_socket(
                        tcp,
                        addr,
                        c.user(),
                        c.password(),
                    )
                    .await
                }
                None => Socks5Stream::connect_with_socket(tcp, addr).await,
            }
        }
    }
    .map_err(failed)?;
    tracing::debug!(proxy = %proxy, target = %format!("{host}:{port}"), "SOCKS5 connection open");
    Ok(stream.into_inner())
}

/// As [`connect`], blocking the calling thread before `deadline` (the exchange runs on a
/// runtime of its own, then the stream is handed over as a blocking one).
pub(super) fn connect_blocking(
    proxy: &Proxy,
    host: &str,
    port: u16,
    deadline: std::time::Instant,
) -> crate::Result<std::net::TcpStream> {
    let left = deadline
        .checked_duration_since(std::time::Instant::now())
        .ok_or(crate::Error::HandshakeTimeout)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tcp = runtime
        .block_on(tokio::time::timeout(left, connect(proxy, host, port)))
        .map_err(|_| crate::Error::HandshakeTimeout)??;
    let tcp = tcp.into_std()?;
    tcp.set_nonblocking(false)?;
    Ok(tcp)
}
