use bytes::{BufMut, Bytes, BytesMut};
use http::header::{
    CONNECTION, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, Request, Response, StatusCode};

use super::key::{accept_key, generate_key};
use super::{HandshakeError, header_has_token, header_list};
use crate::config::Limits;

/// The most bytes of a refusal's body (a response other than 101) a client reads and keeps in
/// [`HandshakeError::UnexpectedStatus`]: 16 KiB, the default head limit. The rest is never read.
pub const MAX_ERROR_BODY: usize = 16 << 10;

/// The client side of the opening handshake.
#[derive(Debug)]
pub struct ClientHandshake;

/// The client's state after sending its request: waiting for the server's response.
#[derive(Debug, Clone)]
pub struct ExpectResponse {
    accept: String,
    protocols: Vec<String>,
    extensions: Vec<String>,
}

/// A successful handshake, as the client sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted {
    /// The server's 101 response.
    pub response: Response<()>,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The extensions the server accepted, as sent.
    pub extensions: Vec<String>,
}

impl ClientHandshake {
    /// Encodes the upgrade request for `request`: its URI's path and query, its headers
    /// (Host is derived from the URI if absent; Origin, Sec-WebSocket-Protocol and any other
    /// header are sent as given), plus a fresh key and version 13.
    ///
    /// Header values cannot hold CR or LF: `http::HeaderValue` refuses them when built.
    ///
    /// # Errors
    /// [`HandshakeError::InvalidRequest`] if the URI has no host.
    pub fn start<B>(request: &Request<B>) -> Result<(Bytes, ExpectResponse), HandshakeError> {
        let uri = request.uri();
        let mut out = BytesMut::with_capacity(256);
        out.put_slice(b"GET ");
        out.put_slice(uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
        out.put_slice(b" HTTP/1.1\r\n");
        if !request.headers().contains_key(HOST) {
            let authority = uri
                .authority()
                .ok_or_else(|| HandshakeError::InvalidRequest("the URI has no host".into()))?;
            put_header(&mut out, "host", authority.as_str().as_bytes());
        }
        let key = generate_key();
        put_header(&mut out, "upgrade", b"websocket");
        put_header(&mut out, "connection", b"Upgrade");
        put_header(&mut out, "sec-websocket-key", key.as_bytes());
        put_header(&mut out, "sec-websocket-version", b"13");
        for (name, value) in request.headers() {
            if name == UPGRADE
                || name == CONNECTION
                || name == SEC_WEBSOCKET_KEY
                || name == SEC_WEBSOCKET_VERSION
            {
                continue;
            }
            put_header(&mut out, name.as_str(), value.as_bytes());
        }
        out.put_slice(b"\r\n");
        let expect = ExpectResponse {
            accept: accept_key(key.as_bytes()),
            protocols: header_list(request.headers(), SEC_WEBSOCKET_PROTOCOL),
            extensions: header_list(request.headers(), SEC_WEBSOCKET_EXTENSIONS),
        };
        Ok((out.freeze(), expect))
    }
}

fn put_header(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

impl ExpectResponse {
    /// Checks the server's response head (RFC 6455 §4.1, steps 1-6 of the client's checks).
    ///
    /// # Errors
    /// [`HandshakeError::UnexpectedStatus`] for any status but 101 (with the headers),
    /// [`HandshakeError::InvalidAccept`], [`HandshakeError::UnexpectedProtocol`],
    /// [`HandshakeError::UnexpectedExtension`], and the head's own errors.
    pub fn check(&self, head: &[u8], limits: &Limits) -> Result<Accepted, HandshakeError> {
        let response = parse_response(head, limits)?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::UnexpectedStatus {
                status: response.status(),
                headers: Box::new(response.headers().clone()),
                body: Bytes::new(),
            });
        }
        let headers = response.headers();
        if !header_has_token(headers, UPGRADE, "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !header_has_token(headers, CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        if headers
            .get_all(SEC_WEBSOCKET_ACCEPT)
            .iter()
            .map(|v| v.as_bytes())
            .ne([self.accept.as_bytes()])
        {
            return Err(HandshakeError::InvalidAccept);
        }
        let chosen = header_list(headers, SEC_WEBSOCKET_PROTOCOL);
        let protocol = match chosen.as_slice() {
            [] => None,
            [one] if self.protocols.contains(one) => Some(one.clone()),
            _ => return Err(HandshakeError::UnexpectedProtocol(chosen.join(", "))),
        };
        let extensions = header_list(headers, SEC_WEBSOCKET_EXTENSIONS);
        if let Some(ext) = extensions.iter().find(|e| !self.offered_extension(e)) {
            return Err(HandshakeError::UnexpectedExtension(ext.clone()));
        }
        Ok(Accepted {
            response,
            protocol,
            extensions,
        })
    }

    /// The extension offers the request carried.
    pub fn offered_extensions(&self) -> &[String] {
        &self.extensions
    }

    fn offered_extension(&self, accepted: &str) -> bool {
        let name = accepted.split(';').next().unwrap_or("").trim();
        self.extensions.iter().any(|offer| {
            offer
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case(name)
        })
    }
}

/// Parses a response head (status line and headers, up to and including the blank line) within
/// `limits`' header count: the status and headers of any HTTP/1.1 response, such as a proxy's
/// answer to `CONNECT`.
///
/// ```
/// use wsharp_proto::Limits;
/// use wsharp_proto::handshake::parse_response;
/// let head = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=x\r\n\r\n";
/// let response = parse_response(head, &Limits::default())?;
/// assert_eq!(response.status(), 407);
/// # Ok::<(), wsharp_proto::handshake::HandshakeError>(())
/// ```
///
/// # Errors
/// [`HandshakeError::Malformed`] or [`HandshakeError::TooManyHeaders`].
pub fn parse_response(head: &[u8], limits: &Limits) -> Result<Response<()>, HandshakeError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(HandshakeError::Malformed("incomplete head".into()));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HandshakeError::TooManyHeaders {
                max: limits.max_headers,
            });
        }
        Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
    }
    let mut map = HeaderMap::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let name = http::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|e| HandshakeError::Malformed(e.to_string()))?;
        let value = http::HeaderValue::from_bytes(h.value)
            .map_err(|e| HandshakeError::Malformed(e.to_string()))?;
        map.append(name, value);
    }
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(resp.code.unwrap_or(0))
        .map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    *response.headers_mut() = map;
    Ok(response)
}

#[cfg(test)]
mod rfc6455_4_1_client_handshake {
    use super::*;

    fn request(protocols: Option<&str>) -> (String, ExpectResponse) {
        let mut b = Request::builder()
            .uri("ws://example.com:9001/chat?room=1")
            .header("origin", "http://example.com");
        if let Some(p) = protocols {
            b = b.header(SEC_WEBSOCKET_PROTOCOL, p);
        }
        let (bytes, expect) = ClientHandshake::start(&b.body(()).unwrap()).unwrap();
        (String::from_utf8(bytes.to_vec()).unwrap(), expect)
    }

    fn response(expect: &ExpectResponse, extra: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
            expect.accept
        )
    }

    #[test]
    fn request_carries_everything() {
        let (text, _) = request(Some("chat"));
        assert!(
            text.starts_with("GET /chat?room=1 HTTP/1.1\r\nhost: example.com:9001\r\n"),
            "{text}"
        );
        for needle in [
            "upgrade: websocket\r\n",
            "connection: Upgrade\r\n",
            "sec-websocket-version: 13\r\n",
            "origin: http://example.com\r\n",
            "sec-websocket-protocol: chat\r\n",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .unwrap();
        assert!(super::super::key::is_valid_key(key.as_bytes()));
    }

    #[test]
    fn accepts_a_correct_response() {
        let (_, expect) = request(Some("chat, superchat"));
        let ok = expect
            .check(
                response(&expect, "Sec-WebSocket-Protocol: superchat\r\n").as_bytes(),
                &Limits::default(),
            )
            .unwrap();
        assert_eq!(ok.protocol.as_deref(), Some("superchat"));
    }

    #[test]
    fn fault_catalogue_18_19_20_rejections() {
        let (_, expect) = request(Some("chat"));
        let limits = Limits::default();
        let bad_accept =
            response(&expect, "").replace(&expect.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(matches!(
            expect.check(bad_accept.as_bytes(), &limits),
            Err(HandshakeError::InvalidAccept)
        ));
        let other_protocol = response(&expect, "Sec-WebSocket-Protocol: other\r\n");
        assert!(matches!(
            expect.check(other_protocol.as_bytes(), &limits),
            Err(HandshakeError::UnexpectedProtocol(_))
        ));
        let ext = response(
            &expect,
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n",
        );
        assert!(matches!(
            expect.check(ext.as_bytes(), &limits),
            Err(HandshakeError::UnexpectedExtension(_))
        ));
        let not_101 = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n";
        match expect.check(not_101, &limits) {
            Err(HandshakeError::UnexpectedStatus {
                status, headers, ..
            }) => {
                assert_eq!(status, 401);
                assert!(headers.contains_key("www-authenticate"));
            }
            other => panic!("{other:?}"),
        }
    }
}
