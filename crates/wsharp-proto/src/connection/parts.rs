//! Messages sent and received in parts: a message too large to hold, streamed fragment by
//! fragment (RFC 6455 §5.4), compressed as one message when permessage-deflate is on.

use bytes::Bytes;

use super::{Connection, Event};
use crate::error::{ProtocolError, SendError};
use crate::frame::OpCode;
use crate::message::{MessageKind, Part};
use crate::utf8::Utf8Validator;

/// A message being sent in parts.
#[derive(Debug)]
pub(super) struct Sending {
    kind: MessageKind,
    /// Whether its first frame is written (later frames are continuations).
    started: bool,
    /// Whether the compressor has taken some of it (its output may not have come yet): the
    /// message can then no longer be dropped without a trace.
    fed: bool,
    /// Whether it is compressed (decided at its first part).
    compressed: bool,
    /// Text: checked across parts.
    utf8: Utf8Validator,
}

impl Connection {
    /// Queues one part of a data message sent in parts: the first call starts a message of
    /// `kind`, each call sends `data` as the next fragment(s), and the call with `last` ends it.
    /// Pings, pongs and a close may go between parts; a whole data message may not
    /// ([`SendError::MessageInProgress`]). Only the current part is held, so a message of any
    /// size is sent in the memory of one part.
    ///
    /// With permessage-deflate the message is compressed as one (parts are not flushed one by
    /// one), unless it is a single part under the compression threshold. Text parts are checked
    /// as one UTF-8 stream: a character may be split between two parts.
    ///
    /// ```
    /// use wsharp_proto::{Config, Connection, Event, Message, MessageKind, Role};
    /// use bytes::Bytes;
    ///
    /// let mut client = Connection::new(Role::Client, Config::default());
    /// client.send_part(MessageKind::Text, Bytes::from_static(b"caf\xc3"), false).unwrap();
    /// client.send_part(MessageKind::Text, Bytes::from_static(b"\xa9!"), true).unwrap();
    ///
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// let mut slices = [std::io::IoSlice::new(&[]); 8];
    /// let n = client.transmit_slices(&mut slices);
    /// let wire: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
    /// server.handle_data(&wire);
    /// assert_eq!(server.poll_event(), Some(Event::Message(Message::text("café!"))));
    /// ```
    ///
    /// # Errors
    /// [`SendError::SendAfterClosing`] once a close frame was sent;
    /// [`SendError::PartKindChanged`] for a part of another kind than its message;
    /// [`SendError::InvalidUtf8`] for text that is not UTF-8 (or a last part that ends inside
    /// a character). On error nothing is queued and the message stays open.
    pub fn send_part(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        last: bool,
    ) -> Result<(), SendError> {
        if self.close_sent_or_closed() {
            return Err(SendError::SendAfterClosing);
        }
        let sending = match self.sending.as_mut() {
            Some(sending) if sending.kind != kind => {
                return Err(SendError::PartKindChanged {
                    started: sending.kind,
                    part: kind,
                });
            }
            Some(sending) => sending,
            None => {
                let compressed = self
                    .deflate
                    .as_ref()
                    .is_some_and(|d| d.deflater.is_some() && (!last || data.len() >= d.threshold));
                self.sending.insert(Box::new(Sending {
                    kind,
                    started: false,
                    fed: false,
                    compressed,
                    utf8: Utf8Validator::new(),
                }))
            }
        };
        if kind == MessageKind::Text {
            let mut utf8 = sending.utf8.clone();
            if utf8.feed(&data).is_err() || (last && utf8.finish().is_err()) {
                if !sending.started && !sending.fed {
                    self.sending = None;
                }
                return Err(SendError::InvalidUtf8);
            }
            sending.utf8 = utf8;
        }
        let (started, compressed) = (sending.started, sending.compressed);
        sending.fed |= compressed && !data.is_empty();
        let payload = if compressed {
            match self.deflate.as_mut().and_then(|d| d.deflater.as_mut()) {
                Some(deflater) => deflater.compress_part(&data, last),
                None => data,
            }
        } else {
            data
        };
        if payload.is_empty() && !last {
            // Nothing to send yet (zlib holds it, or the part was empty).
            return Ok(());
        }
        let (opcode, rsv) = match (started, kind) {
            (true, _) => (OpCode::Continuation, 0),
            (false, MessageKind::Text) => (OpCode::Text, if compressed { 0b100 } else { 0 }),
            (false, MessageKind::Binary) => (OpCode::Binary, if compressed { 0b100 } else { 0 }),
        };
        self.send_frames(opcode, payload, rsv, last);
        if last {
            self.sending = None;
        } else if let Some(sending) = self.sending.as_mut() {
            sending.started = true;
        }
        Ok(())
    }

    /// Whether a message sent in parts is started and not yet ended.
    pub fn is_sending_parts(&self) -> bool {
        self.sending.is_some()
    }

    /// Delivers the data messages that start from now on in parts, as [`Event::Part`]s, instead
    /// of whole ([`Event::Message`]); `false` goes back to whole messages. A message already
    /// started keeps the way it started. Parts are each received frame's payload, and pieces
    /// of a frame as they arrive once a frame's received bytes reach the read buffer size, so
    /// an uncompressed message held in parts costs the memory of one part. A compressed frame
    /// is received and inflated whole: its part is that frame's inflated payload (senders that
    /// fragment, as browsers and `websockets` do for large messages, keep it small). The
    /// message limit still bounds the message's total size either way.
    ///
    /// ```
    /// use wsharp_proto::{Config, Connection, Event, Message, MessageKind, Part, Role};
    ///
    /// let mut client = Connection::new(Role::Client, Config::default());
    /// client.send(Message::binary(vec![7u8; 10])).unwrap();
    /// let mut slices = [std::io::IoSlice::new(&[]); 8];
    /// let n = client.transmit_slices(&mut slices);
    /// let wire: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
    ///
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// server.set_receive_parts(true);
    /// server.handle_data(&wire);
    /// let Some(Event::Part(Part { kind, data, last })) = server.poll_event() else { panic!() };
    /// assert_eq!((kind, &data[..], last), (MessageKind::Binary, &[7u8; 10][..], true));
    /// ```
    pub fn set_receive_parts(&mut self, on: bool) {
        self.parts_wanted = on;
    }

    /// Whether a message received in parts is started and its last part not yet delivered.
    pub fn is_receiving_parts(&self) -> bool {
        self.in_parts && self.message.is_some()
    }

    /// A part of the message being received; with `last`, its end (a text message must then
    /// end on a character boundary, else the failure is queued and `None` returned).
    pub(super) fn deliver_part(&mut self, data: Bytes, last: bool) -> Option<Event> {
        let kind = match self.message {
            Some(OpCode::Text) => MessageKind::Text,
            _ => MessageKind::Binary,
        };
        if last {
            if kind == MessageKind::Text && self.utf8.finish().is_err() {
                self.fail(ProtocolError::InvalidUtf8);
                return None;
            }
            self.message = None;
            self.compressed = false;
        } else if data.is_empty() {
            return None;
        }
        Some(Event::Part(Part { kind, data, last }))
    }
}
