//! Messages encoded once for many connections (a broadcast).

use bytes::{Bytes, BytesMut};

use crate::error::SendError;
use crate::frame::{FrameHeader, OpCode, encode_header};
use crate::message::Message;

/// A text or binary message encoded once, as a server sends it (one unmasked frame), for
/// [`Connection::send_prepared`](crate::Connection::send_prepared) on many connections: a broadcast builds its frame once.
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    pub(super) message: Message,
    pub(super) frame: Bytes,
}

impl PreparedMessage {
    /// Encodes `message`, a text or binary message.
    ///
    /// # Errors
    /// [`SendError::NotPreparable`] for a ping, pong or close: a close must go through each
    /// connection's close handshake (so nothing follows it and the peer's answer is expected),
    /// and control frames are per connection.
    pub fn new(message: Message) -> Result<Self, SendError> {
        let (opcode, payload) = match &message {
            Message::Text(t) => (OpCode::Text, t.clone().into_bytes()),
            Message::Binary(b) => (OpCode::Binary, b.clone()),
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {
                return Err(SendError::NotPreparable);
            }
        };
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut frame = BytesMut::with_capacity(crate::frame::MAX_HEADER_LEN + payload.len());
        encode_header(&header, &mut frame);
        frame.extend_from_slice(&payload);
        Ok(Self {
            message,
            frame: frame.freeze(),
        })
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The encoded frame.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }
}
