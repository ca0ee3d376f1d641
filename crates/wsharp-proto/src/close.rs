//! Close codes and close frames (RFC 6455 §5.5.1, §7.4).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, SendError};
use crate::message::Utf8Bytes;

/// A close status code (RFC 6455 §7.4). Unknown codes round-trip unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present. Never sent on the wire.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection ended without a close frame. Never sent on the wire.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: message data inconsistent with its type (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the server is restarting; a client may reconnect (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later, the server is overloaded (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway or proxy got an invalid response from the upstream server (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed. Never sent on the wire.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether this code may appear in a close frame on the wire (RFC 6455 §7.4.1, §7.4.2, and
    /// IANA's WebSocket close code registry): 1000-1003, 1007-1014, and 3000-4999. Refused:
    /// 1004 (reserved), 1005, 1006 and 1015 (never on the wire), and the unassigned rest of
    /// 0-2999.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How a connection ended, as the application sees it: the same shape in every layer (the
/// core, both sockets, a session's `on_close`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseStatus {
    /// The peer's close code; [`CloseCode::NO_STATUS`] (1005) if its close frame had none,
    /// [`CloseCode::ABNORMAL`] (1006) if it sent no close frame at all.
    pub code: CloseCode,
    /// The peer's close reason (empty for 1005 and 1006).
    pub reason: Utf8Bytes,
    /// Whether the close handshake completed: both close frames went through and the
    /// connection did not fail.
    pub was_clean: bool,
}

impl CloseStatus {
    /// The status of a connection that ended without a close frame from the peer: 1006, not
    /// clean.
    pub fn abnormal() -> Self {
        Self {
            code: CloseCode::ABNORMAL,
            reason: Utf8Bytes::default(),
            was_clean: false,
        }
    }
}

/// The most bytes a close reason may have: a control payload is at most 125 bytes, 2 are the code.
pub const MAX_REASON_LEN: usize = 123;

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, valid UTF-8 of at most [`MAX_REASON_LEN`] bytes.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`, checked as the API requires.
    ///
    /// # Errors
    /// [`SendError::InvalidCloseCode`] for a code that may not be sent (1005, 1006, 1015, and
    /// codes outside the registered ranges), [`SendError::CloseReasonTooLong`] for a reason
    /// over 123 bytes.
    pub fn new(code: CloseCode, reason: &str) -> Result<Self, SendError> {
        if !code.is_sendable() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(SendError::CloseReasonTooLong(reason.len()));
        }
        Ok(Self {
            code,
            reason: Utf8Bytes::from(reason.to_owned()),
        })
    }

    /// Parses a received close payload. `Ok(None)` for an empty payload (no status code).
    ///
    /// # Errors
    /// 1002 for a 1-byte payload or a code that may not be sent; 1007 for a reason that is not UTF-8.
    pub fn parse(payload: Bytes) -> Result<Option<Self>, ProtocolError> {
        match payload.len() {
            0 => Ok(None),
            1 => Err(ProtocolError::InvalidClosePayload),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason = Utf8Bytes::try_from(payload.slice(2..))
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
                Ok(Some(Self { code, reason }))
            }
        }
    }

    /// The payload of a close frame carrying this code and reason.
    pub fn to_payload(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(2 + self.reason.len());
        buf.put_u16(self.code.0);
        buf.extend_from_slice(self.reason.as_bytes());
        buf.freeze()
    }
}

#[cfg(test)]
mod rfc6455_7_4_close_codes {
    use super::*;

    #[test]
    fn sendable_ranges() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
        ] {
            assert!(CloseCode(ok).is_sendable(), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(bad).is_sendable(), "{bad}");
        }
    }

    #[test]
    fn parse_payloads() {
        assert_eq!(CloseFrame::parse(Bytes::new()), Ok(None));
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(&[3])),
            Err(ProtocolError::InvalidClosePayload)
        );
        let f = CloseFrame::parse(Bytes::from_static(b"\x03\xe8bye"))
            .unwrap()
            .unwrap();
        assert_eq!(f.code, CloseCode::NORMAL);
        assert_eq!(f.reason.as_str(), "bye");
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(b"\x03\xe8\xff"))
                .unwrap_err()
                .close_code(),
            CloseCode::INVALID_PAYLOAD
        );
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(b"\x03\xed")),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
    }

    #[test]
    fn registered_codes_1012_to_1014_are_received_and_sent() {
        for code in [1012u16, 1013, 1014] {
            let payload = Bytes::from(code.to_be_bytes().to_vec());
            let frame = CloseFrame::parse(payload).unwrap().unwrap();
            assert_eq!(frame.code, CloseCode(code));
            assert!(CloseFrame::new(CloseCode(code), "restart").is_ok());
        }
        assert_eq!(CloseCode::SERVICE_RESTART, CloseCode(1012));
        assert_eq!(CloseCode::TRY_AGAIN_LATER, CloseCode(1013));
        assert_eq!(CloseCode::BAD_GATEWAY, CloseCode(1014));
    }

    #[test]
    fn api_refuses_reserved_codes_and_long_reasons() {
        for code in [1004, 1005, 1006, 1015, 1016, 2999] {
            assert!(CloseFrame::new(CloseCode(code), "").is_err());
        }
        assert!(CloseFrame::new(CloseCode::NORMAL, &"a".repeat(123)).is_ok());
        assert_eq!(
            CloseFrame::new(CloseCode::NORMAL, &"a".repeat(124)),
            Err(SendError::CloseReasonTooLong(124))
        );
    }
}
