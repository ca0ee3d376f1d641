//! The opening handshake (RFC 6455 §4) on `http` types: bytes in, `http::Request`/`Response` out,
//! and the other way round. hyper and axum users can call the checks directly.

mod client;
mod error;
mod head;
mod key;
mod server;

pub use client::{Accepted, ClientHandshake, ExpectResponse, MAX_ERROR_BODY, parse_response};
pub use error::HandshakeError;
pub use head::{HeadReader, MAX_REQUEST_LINE};
pub use key::{accept_key, generate_key};
pub use server::{
    UpgradeRequest, accept_response, check_request, encode_response, parse_request, reject_response,
};

use http::HeaderMap;

/// Whether any value of header `name` lists `token` (comma-separated, case-insensitive).
pub fn header_has_token(
    headers: &HeaderMap,
    name: impl http::header::AsHeaderName,
    token: &str,
) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The comma-separated items of every value of header `name`, trimmed, empty ones dropped.
pub fn header_list(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}
