use bytes::{BufMut, BytesMut};
use http::header::{
    CONNECTION, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};

use super::key::{accept_key, is_valid_key};
use super::{HandshakeError, header_has_token, header_list};
use crate::config::Limits;

/// Parses a complete request head (as [`HeadReader`](super::HeadReader) returns it).
///
/// # Errors
/// [`HandshakeError::TooManyHeaders`] over `limits.max_headers`, [`HandshakeError::Malformed`]
/// for anything httparse or `http` refuses.
pub fn parse_request(head: &[u8], limits: &Limits) -> Result<Request<()>, HandshakeError> {
    // Room for the headers, left uninitialised: httparse fills what it uses.
    let mut headers: Vec<httparse::Header<'_>> = Vec::with_capacity(limits.max_headers);
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(head, headers.spare_capacity_mut()) {
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
    let malformed = |e: &dyn std::fmt::Display| HandshakeError::Malformed(e.to_string());
    // Built in place rather than through `http`'s builder, which moves the whole request at
    // every header.
    let mut request = Request::new(());
    *request.method_mut() =
        Method::from_bytes(req.method.unwrap_or_default().as_bytes()).map_err(|e| malformed(&e))?;
    *request.uri_mut() = req
        .path
        .unwrap_or_default()
        .parse()
        .map_err(|e| malformed(&e))?;
    *request.version_mut() = if req.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let headers = request.headers_mut();
    headers.reserve(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| malformed(&e))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|e| malformed(&e))?;
        headers.append(name, value);
    }
    Ok(request)
}

/// What a valid upgrade request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeRequest {
    /// The `Sec-WebSocket-Accept` value that answers its key.
    pub accept: String,
    /// The subprotocols offered, in the client's order of preference.
    pub protocols: Vec<String>,
    /// The extension offers, as sent (parsed by the extension that handles them).
    pub extensions: Vec<String>,
}

/// Checks an upgrade request (RFC 6455 §4.2.1).
///
/// # Errors
/// The first rule the request breaks; [`HandshakeError::status`] gives the status to answer.
pub fn check_request<B>(req: &Request<B>) -> Result<UpgradeRequest, HandshakeError> {
    if req.method() != Method::GET {
        return Err(HandshakeError::MethodNotAllowed(req.method().to_string()));
    }
    if req.version() < Version::HTTP_11 {
        return Err(HandshakeError::HttpVersion);
    }
    let headers = req.headers();
    if headers.get_all(HOST).iter().count() != 1 {
        return Err(HandshakeError::MissingHost);
    }
    if !header_has_token(headers, UPGRADE, "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !header_has_token(headers, CONNECTION, "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if headers
        .get_all(SEC_WEBSOCKET_VERSION)
        .iter()
        .map(HeaderValue::as_bytes)
        .ne([b"13".as_slice()])
    {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) if is_valid_key(key.as_bytes()) => key,
        _ => return Err(HandshakeError::InvalidKey),
    };
    Ok(UpgradeRequest {
        accept: accept_key(key.as_bytes()),
        protocols: header_list(headers, SEC_WEBSOCKET_PROTOCOL),
        extensions: header_list(headers, http::header::SEC_WEBSOCKET_EXTENSIONS),
    })
}

/// The 101 response to a checked request, with the chosen subprotocol, if any.
///
/// # Errors
/// [`HandshakeError::InvalidRequest`] if `protocol` is not a valid header value.
pub fn accept_response(
    upgrade: &UpgradeRequest,
    protocol: Option<&str>,
) -> Result<Response<()>, HandshakeError> {
    let invalid =
        |e: http::header::InvalidHeaderValue| HandshakeError::InvalidRequest(e.to_string());
    let mut resp = Response::new(());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&upgrade.accept).map_err(invalid)?,
    );
    if let Some(p) = protocol {
        headers.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(p).map_err(invalid)?,
        );
    }
    Ok(resp)
}

/// The response that refuses a request for `error`: its status, `Connection: close`, and for a
/// version mismatch `Sec-WebSocket-Version: 13` (RFC 6455 §4.4).
pub fn reject_response(error: &HandshakeError) -> Response<()> {
    let mut resp = Response::new(());
    *resp.status_mut() = error.status();
    let headers = resp.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    if matches!(error, HandshakeError::UnsupportedVersion) {
        headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    }
    if matches!(error, HandshakeError::MethodNotAllowed(_)) {
        headers.insert(http::header::ALLOW, HeaderValue::from_static("GET"));
    }
    resp
}

/// Appends the HTTP/1.1 encoding of `resp` and `body` to `out`, with a `Content-Length` for
/// any response other than 101.
pub fn encode_response(resp: &Response<()>, body: &[u8], out: &mut BytesMut) {
    let status = resp.status();
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in resp.headers() {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    if status != StatusCode::SWITCHING_PROTOCOLS
        && !resp.headers().contains_key(http::header::CONTENT_LENGTH)
    {
        out.put_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
}

#[cfg(test)]
mod rfc6455_4_2_server_handshake {
    use super::*;

    const GOOD: &str = "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn check(head: &str) -> Result<UpgradeRequest, HandshakeError> {
        check_request(&parse_request(head.as_bytes(), &Limits::default())?)
    }

    #[test]
    fn accepts_the_rfc_example() {
        let up = check(GOOD).unwrap();
        assert_eq!(up.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(up.protocols, ["chat", "superchat"]);
        let resp = accept_response(&up, Some("chat")).unwrap();
        let mut out = BytesMut::new();
        encode_response(&resp, b"", &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{text}"
        );
        assert!(text.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("sec-websocket-protocol: chat\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn tokens_are_case_insensitive_and_in_lists() {
        let head = GOOD
            .replace("Connection: Upgrade", "Connection: keep-alive, UpGrade")
            .replace("websocket", "WebSocket");
        assert!(check(&head).is_ok());
    }

    #[test]
    fn fault_catalogue_7_8_9_rejections() {
        let cases: &[(&str, &str, u16)] = &[
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 400),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "Sec-WebSocket-Key: !!!notbase64!!!!!!!!!!!\r\n",
                400,
            ),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "Sec-WebSocket-Key: AAAA\r\n",
                400,
            ),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                400,
            ),
            ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 426),
            ("GET", "POST", 405),
            ("HTTP/1.1", "HTTP/1.0", 400),
            ("Upgrade: websocket\r\n", "", 400),
            ("Connection: Upgrade\r\n", "Connection: keep-alive\r\n", 400),
            ("Host: server.example.com\r\n", "", 400),
        ];
        for (from, to, status) in cases {
            let head = GOOD.replacen(from, to, 1);
            let err = check(&head).expect_err(&head);
            assert_eq!(err.status().as_u16(), *status, "{head}: {err}");
            let resp = reject_response(&err);
            assert_eq!(resp.headers()[CONNECTION], "close");
            if *status == 426 {
                assert_eq!(resp.headers()[SEC_WEBSOCKET_VERSION], "13");
            }
        }
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for i in 0..2000 {
            head.push_str(&format!("a{i}: b\r\n"));
        }
        head.push_str("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        let err = parse_request(head.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(err.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[test]
    fn fault_catalogue_5_long_protocol_header_is_quick() {
        let head = GOOD.replace("chat, superchat", &format!("b{}x", " ".repeat(32_000)));
        let started = std::time::Instant::now();
        let up = check_request(
            &parse_request(
                head.as_bytes(),
                &Limits::default().max_handshake_size(64 << 10),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(up.protocols.iter().all(|p| p != "chat"));
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }
}
