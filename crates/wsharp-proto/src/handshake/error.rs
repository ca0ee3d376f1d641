use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// Why an opening handshake failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request or response head exceeded the size limit.
    #[error("handshake head exceeds {max} bytes")]
    HeadTooLarge {
        /// The limit.
        max: usize,
    },
    /// More header lines than the limit.
    #[error("more than {max} header lines")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// The request line exceeded its limit.
    #[error("request line exceeds {max} bytes")]
    UriTooLong {
        /// The limit.
        max: usize,
    },
    /// The head is not valid HTTP/1.1.
    #[error("malformed HTTP head: {0}")]
    Malformed(String),
    /// The peer spoke TLS where HTTP was expected: a TLS client on a plain port, or a TLS
    /// server on a `ws://` URL.
    #[error("the peer speaks TLS here, not plain HTTP (wss:// and ws:// mixed up?)")]
    TlsOnPlainConnection,
    /// The request method is not GET.
    #[error("method {0} is not GET")]
    MethodNotAllowed(String),
    /// The request is not HTTP/1.1 or later.
    #[error("HTTP/1.1 or later is required")]
    HttpVersion,
    /// The request has no Host header.
    #[error("missing Host header")]
    MissingHost,
    /// `Upgrade: websocket` is missing.
    #[error("missing 'Upgrade: websocket'")]
    MissingUpgrade,
    /// `Connection: Upgrade` is missing.
    #[error("missing 'Connection: Upgrade'")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` is missing, repeated, or not base64 of 16 bytes.
    #[error("missing or invalid Sec-WebSocket-Key")]
    InvalidKey,
    /// `Sec-WebSocket-Version` is not 13.
    #[error("unsupported Sec-WebSocket-Version (13 is supported)")]
    UnsupportedVersion,
    /// The server answered with another status than 101.
    #[error("server answered {status} instead of 101 Switching Protocols")]
    UnexpectedStatus {
        /// The status.
        status: StatusCode,
        /// The response headers.
        headers: Box<HeaderMap>,
        /// The start of the response body, at most
        /// [`MAX_ERROR_BODY`](super::MAX_ERROR_BODY) bytes: as much of a `Content-Length`
        /// body as arrives within the handshake timeout, or else the bytes that came with the
        /// head, as sent (a chunked body is not decoded). The clients fill it in;
        /// [`ExpectResponse::check`](super::ExpectResponse::check), which sees only the head,
        /// leaves it empty.
        body: Bytes,
    },
    /// The server's `Sec-WebSocket-Accept` does not match our key.
    #[error("wrong Sec-WebSocket-Accept")]
    InvalidAccept,
    /// The server chose a subprotocol we did not offer.
    #[error("server chose subprotocol {0:?}, which was not offered")]
    UnexpectedProtocol(String),
    /// The server named an extension (or parameter) we did not offer.
    #[error("server accepted extension {0:?}, which was not offered")]
    UnexpectedExtension(String),
    /// The request could not be built (an invalid URI or header).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The application refused the request with this status.
    #[error("refused with {0}")]
    Refused(StatusCode),
}

impl HandshakeError {
    /// The HTTP status a server answers this error with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Self::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::Refused(status) => *status,
            Self::UnexpectedStatus { status, .. } => *status,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}
