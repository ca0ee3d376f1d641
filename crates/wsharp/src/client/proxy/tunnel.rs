//! HTTP CONNECT (RFC 9110 §9.3.6): a tunnel through an HTTP proxy, with one answer to a 407
//! (Basic or Digest, the same code as a server's 401), and the proxy's reply read exactly to
//! its end, so bytes after it stay in the socket for TLS or the upgrade.

use std::io::{Read, Write};
use std::time::Instant;

use http::StatusCode;
use http::header::PROXY_AUTHENTICATE;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use wsharp_proto::Limits;
use wsharp_proto::handshake::parse_response;

use super::{Proxy, ProxyFailure};
use crate::auth::{AuthError, AuthFailure, Challenge};

/// The `CONNECT` request for `host:port`, with `Proxy-Authorization` when given.
fn request(authority: &str, authorization: Option<&http::HeaderValue>) -> Vec<u8> {
    let mut out = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    if let Some(value) = authorization {
        out.extend_from_slice(b"Proxy-Authorization: ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `host:port` as a request target (IPv6 in brackets).
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What to do after a reply.
enum Next {
    /// The tunnel is open.
    Open,
    /// Try again on a new connection with this `Proxy-Authorization`.
    Retry(http::HeaderValue),
}

/// Decides on the proxy's reply `head` to a CONNECT that carried credentials of `sent`.
fn decide(
    proxy: &Proxy,
    head: &[u8],
    limits: &Limits,
    target: &str,
    sent: bool,
) -> crate::Result<Next> {
    let reply = parse_response(head, limits)
        .map_err(|e| proxy.error(ProxyFailure::Protocol(format!("bad reply: {e}"))))?;
    let status = reply.status();
    if status.is_success() {
        // A 2xx to CONNECT has no body (RFC 9110 §9.3.6): what follows is the tunnel's.
        return Ok(Next::Open);
    }
    if status != StatusCode::PROXY_AUTHENTICATION_REQUIRED {
        return Err(proxy.error(ProxyFailure::Refused {
            status,
            headers: Box::new(reply.headers().clone()),
        }));
    }
    let challenges = Challenge::parse_headers(reply.headers().get_all(PROXY_AUTHENTICATE));
    let fail = |failure| {
        proxy.error(ProxyFailure::Auth(AuthError {
            status,
            failure,
            challenges: challenges.clone(),
            headers: reply.headers().clone(),
        }))
    };
    if proxy.auth.credentials().is_none() {
        return Err(fail(AuthFailure::NoCredentials));
    }
    if sent {
        proxy.auth.forget();
        return Err(fail(AuthFailure::Refused));
    }
    // The proxy's credentials cross to the proxy only: Basic's warning is about the target.
    let answer = proxy
        .auth
        .answer(&challenges, "CONNECT", target, true)
        .map_err(fail)?;
    tracing::debug!(proxy = %proxy, scheme = answer.scheme, "answering the proxy's challenge");
    Ok(Next::Retry(answer.authorization))
}

/// Reads one reply head byte by byte, never past its blank line, within `limits`.
async fn read_reply_head<S: AsyncRead + Unpin>(
    io: &mut S,
    limits: &Limits,
) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= limits.max_handshake_size {
            return Err(too_long());
        }
        head.push(io.read_u8().await?);
    }
    Ok(head)
}

fn too_long() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the proxy's reply is longer than the handshake limit",
    )
}

/// Opens a tunnel to `host:port` through `proxy`.
pub(super) async fn connect(
    proxy: &Proxy,
    host: &str,
    port: u16,
    limits: &Limits,
) -> crate::Result<tokio::net::TcpStream> {
    let target = authority(host, port);
    let mut authorization = proxy
        .auth
        .first("CONNECT", &target, true)
        .map(|a| a.authorization);
    loop {
        let mut tcp = proxy.reach().await?;
        let sent = authorization.is_some();
        tcp.write_all(&request(&target, authorization.as_ref()))
            .await
            .map_err(|e| proxy.error(ProxyFailure::Unreachable(e)))?;
        let head = read_reply_head(&mut tcp, limits)
            .await
            .map_err(|e| proxy.error(ProxyFailure::Protocol(format!("no reply: {e}"))))?;
        match decide(proxy, &head, limits, &target, sent)? {
            Next::Open => {
                tracing::debug!(proxy = %proxy, %target, "tunnel open");
                return Ok(tcp);
            }
            Next::Retry(value) => authorization = Some(value),
        }
    }
}

/// As [`connect`], blocking, before `deadline`.
pub(super) fn connect_blocking(
    proxy: &Proxy,
    host: &str,
    port: u16,
    limits: &Limits,
    deadline: Instant,
) -> crate::Result<std::net::TcpStream> {
    use std::net::ToSocketAddrs;
    let target = authority(host, port);
    let mut authorization = proxy
        .auth
        .first("CONNECT", &target, true)
        .map(|a| a.authorization);
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or(crate::Error::HandshakeTimeout)?;
        let unreachable = |e| proxy.error(ProxyFailure::Unreachable(e));
        let addr = (proxy.host.as_str(), proxy.port)
            .to_socket_addrs()
            .map_err(unreachable)?
            .next()
            .ok_or_else(|| unreachable(std::io::ErrorKind::NotFound.into()))?;
        let mut tcp = std::net::TcpStream::connect_timeout(&addr, left).map_err(unreachable)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(left))?;
        let sent = authorization.is_some();
        tcp.write_all(&request(&target, authorization.as_ref()))
            .map_err(unreachable)?;
        let mut head = Vec::with_capacity(256);
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= limits.max_handshake_size {
                return Err(proxy.error(ProxyFailure::Protocol(too_long().to_string())));
            }
            match tcp.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                Ok(_) => {
                    return Err(proxy.error(ProxyFailure::Protocol(
                        "no reply: the proxy closed the connection".into(),
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(crate::Error::HandshakeTimeout);
                }
                Err(e) => return Err(proxy.error(ProxyFailure::Protocol(format!("no reply: {e}")))),
            }
        }
        match decide(proxy, &head, limits, &target, sent)? {
            Next::Open => {
                tcp.set_read_timeout(None)?;
                return Ok(tcp);
            }
            Next::Retry(value) => authorization = Some(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_target_in_authority_form() {
        let value = http::HeaderValue::from_static("Basic dTpw");
        let bytes = request(&authority("::1", 443), Some(&value));
        assert_eq!(
            bytes,
            b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
    }

    /// Fault catalogue 23: unknown schemes listed first, upper case; Basic is answered.
    #[test]
    fn a_407_with_unknown_schemes_first_is_answered_with_basic() {
        let proxy = Proxy::parse("http://u:p@127.0.0.1:3128").unwrap();
        let head = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NEGOTIATE, NTLM, BASIC realm=\"x\"\r\n\r\n";
        match decide(&proxy, head, &Limits::default(), "h:1", false).unwrap() {
            Next::Retry(v) => assert_eq!(v.to_str().unwrap(), "Basic dTpw"),
            Next::Open => panic!("not open"),
        }
        // A second 407 after credentials: a clear error, no loop.
        match decide(&proxy, head, &Limits::default(), "h:1", true) {
            Err(crate::Error::Proxy(e)) => match e.failure {
                ProxyFailure::Auth(a) => assert_eq!(a.failure, AuthFailure::Refused),
                other => panic!("{other:?}"),
            },
            _ => panic!("expected a proxy error"),
        }
    }

    #[test]
    fn refusals_and_garbage() {
        let proxy = Proxy::parse("127.0.0.1:3128").unwrap();
        let refused = decide(
            &proxy,
            b"HTTP/1.1 403 Forbidden\r\n\r\n",
            &Limits::default(),
            "h:1",
            false,
        );
        assert!(
            matches!(refused, Err(crate::Error::Proxy(e)) if matches!(e.failure, ProxyFailure::Refused { status, .. } if status == 403))
        );
        let garbage = decide(
            &proxy,
            b"SSH-2.0-OpenSSH\r\n\r\n",
            &Limits::default(),
            "h:1",
            false,
        );
        assert!(
            matches!(garbage, Err(crate::Error::Proxy(e)) if matches!(e.failure, ProxyFailure::Protocol(_)))
        );
        let none = decide(
            &proxy,
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=x\r\n\r\n",
            &Limits::default(),
            "h:1",
            false,
        );
        assert!(
            matches!(none, Err(crate::Error::Proxy(e)) if matches!(&e.failure, ProxyFailure::Auth(a) if a.failure == AuthFailure::NoCredentials))
        );
    }

    /// Fault catalogue 24: the reply and the first tunnel bytes in one segment; a reply that
    /// never ends is bounded.
    #[tokio::test]
    async fn the_reply_is_read_exactly_to_its_end() {
        let mut bytes: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01tunnel";
        let head = read_reply_head(&mut bytes, &Limits::default())
            .await
            .unwrap();
        assert!(head.ends_with(b"established\r\n\r\n"));
        assert_eq!(bytes, b"\x16\x03\x01tunnel");
        let endless = vec![b'a'; 1 << 20];
        let mut endless: &[u8] = &endless;
        let err = read_reply_head(&mut endless, &Limits::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
