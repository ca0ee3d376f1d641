//! The addresses of a connection, in the extensions of the requests read from it.

use std::net::SocketAddr;

use http::Request;

/// The server's address a connection arrived on, in the extensions of every request an
/// [`HttpServer`](crate::http_server::HttpServer) reads from it (websocket-sharp's
/// `LocalEndPoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalAddr(pub SocketAddr);

/// The peer's address, in the extensions of every request an
/// [`HttpServer`](crate::http_server::HttpServer) reads (websocket-sharp's `RemoteEndPoint`).
///
/// ```
/// use wsharp::bytes::Bytes;
/// use wsharp::http::{Request, Response};
/// use wsharp::server::PeerAddr;
///
/// async fn whoami(req: Request<Bytes>) -> Response<Bytes> {
///     match req.extensions().get::<PeerAddr>() {
///         Some(PeerAddr(peer)) => Response::new(Bytes::from(peer.to_string())),
///         None => Response::new(Bytes::from_static(b"unknown")),
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Whether `request` came from this machine (websocket-sharp's `IsLocal`): its [`PeerAddr`] is
/// a loopback address or the IP address of its [`LocalAddr`]. `false` without a `PeerAddr`.
///
/// ```
/// use wsharp::bytes::Bytes;
/// use wsharp::http::{Request, Response, StatusCode};
///
/// async fn admin(req: Request<Bytes>) -> Response<Bytes> {
///     let mut response = Response::new(Bytes::new());
///     if !wsharp::server::is_local(&req) {
///         *response.status_mut() = StatusCode::FORBIDDEN;
///     }
///     response
/// }
/// ```
pub fn is_local<B>(request: &Request<B>) -> bool {
    let Some(PeerAddr(peer)) = request.extensions().get::<PeerAddr>() else {
        return false;
    };
    // An IPv4 peer of a dual-stack listener shows as ::ffff:a.b.c.d.
    let peer = peer.ip().to_canonical();
    peer.is_loopback()
        || request
            .extensions()
            .get::<LocalAddr>()
            .is_some_and(|LocalAddr(local)| local.ip().to_canonical() == peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: Option<&str>, local: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(peer) = peer {
            request
                .extensions_mut()
                .insert(PeerAddr(peer.parse().unwrap()));
        }
        if let Some(local) = local {
            request
                .extensions_mut()
                .insert(LocalAddr(local.parse().unwrap()));
        }
        request
    }

    #[test]
    fn loopback_or_the_local_ip_is_local() {
        assert!(is_local(&request(Some("127.0.0.1:5000"), None)));
        assert!(is_local(&request(Some("[::1]:5000"), None)));
        assert!(is_local(&request(Some("[::ffff:127.0.0.1]:5000"), None)));
        let here = Some("192.0.2.7:80");
        assert!(is_local(&request(Some("192.0.2.7:5000"), here)));
        assert!(is_local(&request(Some("[::ffff:192.0.2.7]:5000"), here)));
        assert!(!is_local(&request(Some("192.0.2.8:5000"), here)));
        assert!(!is_local(&request(Some("192.0.2.7:5000"), None)));
        assert!(!is_local(&request(None, Some("127.0.0.1:80"))));
    }
}
