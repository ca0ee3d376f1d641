//! permessage-deflate on a connection (RFC 7692 §6, §7.2): compressing what is sent, inflating
//! what arrives, under the message limit.

use bytes::Bytes;

use super::{COPY_MAX, Connection, Event};
#[cfg(feature = "deflate")]
use crate::config::Role;
#[cfg(feature = "deflate")]
use crate::deflate::{Deflate, Negotiated};
use crate::deflate::{Deflater, Inflater};
use crate::error::{ProtocolError, SendError};
use crate::frame::OpCode;
use crate::growth::shrink_grown;
use crate::message::Message;

/// permessage-deflate state of a connection.
#[derive(Debug)]
pub(super) struct DeflateState {
    /// `None` when the negotiated window is one the backend cannot make (8 bits): we then
    /// send uncompressed, which RFC 7692 allows for any message.
    pub(super) deflater: Option<Deflater>,
    pub(super) inflater: Inflater,
    pub(super) threshold: usize,
    /// The inflated message being received.
    pub(super) inflated: Vec<u8>,
    /// Bytes of the message being received already delivered in parts.
    pub(super) delivered: usize,
}

impl Connection {
    /// Turns on permessage-deflate as negotiated in the handshake, with `settings`' level and
    /// threshold. Call before any frame is exchanged. (With the `deflate` feature.)
    #[cfg(feature = "deflate")]
    pub fn set_deflate(&mut self, negotiated: &Negotiated, settings: &Deflate) {
        let (window, own_reset, peer_reset) = match self.role {
            Role::Server => (
                negotiated.server_max_window_bits,
                negotiated.server_no_context_takeover,
                negotiated.client_no_context_takeover,
            ),
            Role::Client => (
                negotiated.client_max_window_bits,
                negotiated.client_no_context_takeover,
                negotiated.server_no_context_takeover,
            ),
        };
        self.deflate = Some(Box::new(DeflateState {
            deflater: (window >= 9).then(|| Deflater::new(settings.level, window, own_reset)),
            inflater: Inflater::new(peer_reset),
            threshold: settings.threshold,
            inflated: Vec::new(),
            delivered: 0,
        }));
        self.allowed_rsv = 0b100;
    }

    /// Whether permessage-deflate is on.
    pub fn is_deflate(&self) -> bool {
        self.deflate.is_some()
    }

    /// Whether compression state is held right now (tells the idle memory cost).
    pub fn holds_deflate_state(&self) -> bool {
        self.deflate.as_ref().is_some_and(|d| {
            d.inflater.is_allocated() || d.deflater.as_ref().is_some_and(Deflater::is_allocated)
        })
    }

    /// Queues a text or binary message without compressing it, whatever was negotiated (other
    /// messages behave as with [`send`](Self::send)).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_uncompressed(&mut self, message: Message) -> Result<(), SendError> {
        if self.close_sent_or_closed() {
            return Err(SendError::SendAfterClosing);
        }
        if message.is_data() && self.sending.is_some() {
            return Err(SendError::MessageInProgress);
        }
        match message {
            Message::Text(text) => self.send_frames(OpCode::Text, text.into_bytes(), 0, true),
            Message::Binary(data) => self.send_frames(OpCode::Binary, data, 0, true),
            other => return self.send(other),
        }
        Ok(())
    }

    /// The inflate buffer, if permessage-deflate is on.
    pub(super) fn inflated(&self) -> Option<&Vec<u8>> {
        self.deflate.as_ref().map(|d| &d.inflated)
    }

    /// Frees the inflate buffer.
    pub(super) fn drop_inflated(&mut self) {
        if let Some(d) = self.deflate.as_mut() {
            d.inflated = Vec::new();
            d.delivered = 0;
        }
    }

    /// Inflates a frame of a compressed message; at FIN, returns the message's event.
    pub(super) fn inflate_frame(&mut self, payload: &[u8], fin: bool) -> Option<Event> {
        let deflate = self.deflate.as_mut()?;
        // In parts, what was delivered counts against the limit too.
        let limit = self
            .config
            .limits
            .max_message_size
            .saturating_sub(deflate.delivered);
        let start = deflate.inflated.len();
        if let Err(e) = deflate
            .inflater
            .inflate(payload, fin, &mut deflate.inflated, limit)
        {
            self.fail(e);
            return None;
        }
        let text = self.message == Some(OpCode::Text);
        if text && self.utf8.feed(&deflate.inflated[start..]).is_err() {
            self.fail(ProtocolError::InvalidUtf8);
            return None;
        }
        if self.in_parts {
            let data = Bytes::copy_from_slice(&deflate.inflated);
            deflate.inflated.clear();
            deflate.delivered = if fin {
                0
            } else {
                deflate.delivered + data.len()
            };
            return self.deliver_part(data, fin);
        }
        if !fin {
            return None;
        }
        let data = if deflate.inflated.len() <= COPY_MAX {
            // Small messages are copied out: the buffer stays for the next message, and a kept
            // message does not hold a buffer sized for growth.
            let data = Bytes::copy_from_slice(&deflate.inflated);
            deflate.inflated.clear();
            data
        } else {
            let mut inflated = std::mem::take(&mut deflate.inflated);
            shrink_grown(&mut inflated);
            Bytes::from(inflated)
        };
        self.message = None;
        self.compressed = false;
        self.deliver(text, data)
    }

    pub(super) fn send_data(&mut self, opcode: OpCode, payload: Bytes) {
        if let Some(deflate) = self.deflate.as_mut()
            && payload.len() >= deflate.threshold
            && let Some(deflater) = deflate.deflater.as_mut()
        {
            let compressed = deflater.compress(&payload);
            self.send_frames(opcode, compressed, 0b100, true);
        } else {
            self.send_frames(opcode, payload, 0, true);
        }
    }
}
