//! What can go wrong, in three kinds: what the peer did ([`ProtocolError`], each with the
//! close code we answer it with), how a connection ended without a close handshake
//! ([`Failure`]), and what the caller asked that cannot be done ([`SendError`]).

use crate::close::CloseCode;

/// A violation of RFC 6455 by the peer, or a limit it crossed. The connection is failed with
/// its [`close_code`](Self::close_code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame used an opcode RFC 6455 reserves.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// RSV1, RSV2 or RSV3 was set and no extension claims it.
    #[error("reserved bits {0:#05b} set without an extension that defines them")]
    ReservedBits(u8),
    /// A client frame without a mask (server role).
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server frame with a mask (client role).
    #[error("server frame is masked")]
    MaskedFrame,
    /// A control frame with more than 125 bytes of payload.
    #[error("control frame of {0} bytes exceeds 125")]
    ControlFrameTooBig(u64),
    /// A control frame without FIN.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A 64-bit length with its most significant bit set.
    #[error("frame length has its most significant bit set")]
    InvalidLength,
    /// A length not in its shortest form (RFC 6455 §5.2: "the minimal number of bytes MUST be used").
    #[error("frame length is not minimally encoded")]
    NonMinimalLength,
    /// A continuation frame with no message open.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new data frame while a fragmented message is still open.
    #[error("new data frame while a fragmented message is open")]
    ExpectedContinuation,
    /// A frame larger than the frame limit.
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    FrameTooBig {
        /// The frame's payload length.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A message larger than the message limit.
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    MessageTooBig {
        /// The message size reached so far.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A data message in more frames than the fragment limit.
    #[error("message in more than {max} frames")]
    TooManyFragments {
        /// The limit.
        max: usize,
    },
    /// A text message or close reason that is not UTF-8.
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A close frame with a 1-byte payload.
    #[error("close frame with a 1-byte payload")]
    InvalidClosePayload,
    /// A close frame with a code that may not be sent (1005, 1006, 1015, unassigned codes).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A compressed frame could not be inflated.
    #[error("invalid compressed data: {0}")]
    InvalidCompressedData(&'static str),
}

impl ProtocolError {
    /// The close code we send when failing the connection for this reason (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::InvalidCompressedData(_) => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooBig { .. }
            | Self::MessageTooBig { .. }
            | Self::TooManyFragments { .. } => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// Why a connection ended without a completed close handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The peer broke the protocol; we failed the connection with the error's close code.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The peer's stream ended without a close handshake.
    #[error("connection reset without a closing handshake")]
    ResetWithoutClosingHandshake,
    /// The close handshake did not finish within the close timeout.
    #[error("close handshake timed out")]
    CloseTimeout,
    /// The peer went quiet: no frame in answer to our keepalive ping in time.
    #[error("keepalive timeout")]
    KeepaliveTimeout,
}

impl Failure {
    /// The close code for this ending: the one sent for a protocol error or a dead peer, 1006
    /// (never on the wire) for an end without a close frame.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::Protocol(e) => e.close_code(),
            Self::ResetWithoutClosingHandshake | Self::CloseTimeout => CloseCode::ABNORMAL,
            // As Python `websockets` closes a connection whose pong never came.
            Self::KeepaliveTimeout => CloseCode::INTERNAL_ERROR,
        }
    }
}

/// Why a message or close could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A close frame was already sent: nothing more may follow it.
    #[error("the connection is closing or closed: nothing may be sent after a close frame")]
    SendAfterClosing,
    /// Only text and binary messages can be prepared once for many connections; a close goes
    /// through each connection's close handshake.
    #[error("only text and binary messages can be prepared")]
    NotPreparable,
    /// A close code that may not be sent (1005, 1006, 1015, unassigned codes).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    #[error("close reason of {0} bytes exceeds 123")]
    CloseReasonTooLong(usize),
    /// A ping or pong payload over 125 bytes.
    #[error("control payload of {0} bytes exceeds 125")]
    ControlPayloadTooBig(usize),
    /// A whole message while a message sent in parts is not finished: its last part must come
    /// first (control frames may go between parts).
    #[error("a message sent in parts is not finished: send its last part first")]
    MessageInProgress,
    /// A part whose kind is not the kind of the message it continues.
    #[error("a part of a {started:?} message cannot be {part:?}")]
    PartKindChanged {
        /// The kind the message started with.
        started: crate::message::MessageKind,
        /// The kind of the part refused.
        part: crate::message::MessageKind,
    },
    /// Text parts that are not UTF-8 (checked across parts: a character may be split between
    /// two); the part was not sent and the message is still open.
    #[error("the text part is not valid UTF-8")]
    InvalidUtf8,
}
