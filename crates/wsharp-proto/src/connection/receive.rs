//! The receive path: frames parsed, unmasked and checked as they arrive (RFC 6455 §5.2-§5.6).

use bytes::{Buf, Bytes};

use super::{COPY_MAX, Connection, Event, Life, MAX_UNSENT_PONGS};
use crate::close::CloseFrame;
use crate::error::{Failure, ProtocolError};
use crate::frame::{FrameHeader, OpCode, apply_mask, parse_header};
use crate::growth::{grown_capacity, shrink_grown};
use crate::message::{Message, Utf8Bytes};
use crate::utf8::Utf8Validator;

/// The frame being received: its payload is collected in the receive buffer, and the first
/// `processed` bytes are already unmasked (and UTF-8-checked for text).
#[derive(Debug)]
pub(super) struct InFrame {
    pub(super) header: FrameHeader,
    pub(super) processed: usize,
}

impl Connection {
    /// Processes received bytes (copies them into the receive buffer first).
    pub fn handle_data(&mut self, data: &[u8]) {
        if !self.is_receiving() {
            return;
        }
        self.heard();
        self.rbuf.extend_from_slice(data);
    }

    /// The transport reached end of stream. Before the close handshake finished, that fails
    /// the connection ([`Failure::ResetWithoutClosingHandshake`], close status 1006)
    /// once the frames already received are processed; while
    /// [draining](super::Lifecycle::Draining) it finishes the connection.
    pub fn handle_eof(&mut self) {
        match self.life {
            Life::Draining => {
                self.life = Life::Finished;
                return;
            }
            Life::Finished => return,
            Life::Open | Life::Closing => {
                self.process(false);
                if self.is_receiving() {
                    self.set_closed();
                    if self.ending.as_ref().is_none_or(|e| e.peer_close.is_none()) {
                        self.events
                            .push_back(Event::Failed(Failure::ResetWithoutClosingHandshake));
                    }
                }
            }
            Life::Closed | Life::Expired => {}
        }
        self.ending_mut().eof = true;
    }

    /// The next event, if any: parses received frames until one completes a message, a
    /// close, or a failure, or the buffered bytes run out.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if self.rbuf.is_empty() {
            // Nothing to parse (a frame's header alone takes two bytes).
            self.drop_grown_buffer();
            return None;
        }
        // The common case, a message, comes back directly rather than through the queue.
        self.process(true).or_else(|| self.events.pop_front())
    }

    /// Whether received bytes wait to be parsed (poll events before reading more).
    pub fn has_buffered_input(&self) -> bool {
        !self.rbuf.is_empty() && self.is_receiving()
    }

    /// Parses buffered frames: until an event is ready when `one_event` (it is returned, or
    /// queued if it came from a failure), else all of them (their events queued).
    pub(super) fn process(&mut self, one_event: bool) -> Option<Event> {
        while !one_event || self.events.is_empty() {
            if !self.is_receiving() {
                self.rbuf.clear();
                return None;
            }
            // `skip`: header bytes still at the front of the buffer. They are dropped with the
            // payload, so that a buffer whose frames all arrived whole is cleared, not advanced
            // (it then keeps its whole capacity for the next read without a reclaim).
            let (frame, skip) = match self.frame.take() {
                Some(frame) => (frame, 0),
                None => match parse_header(
                    &self.rbuf,
                    self.role,
                    self.allowed_rsv,
                    self.config.limits.max_frame_size,
                ) {
                    Ok(None) => {
                        if self.rbuf.is_empty() {
                            self.drop_grown_buffer();
                        }
                        return None;
                    }
                    Err(e) => {
                        self.fail(e);
                        continue;
                    }
                    Ok(Some((header, len))) => {
                        self.heard();
                        let read_size = self.read_size();
                        let total = len.saturating_add(header.payload_len as usize);
                        self.large_frame = if total > read_size {
                            total.min(read_size.saturating_mul(16))
                        } else {
                            0
                        };
                        if let Err(e) = self.start_frame(&header) {
                            self.fail(e);
                            continue;
                        }
                        let frame = InFrame {
                            header,
                            processed: 0,
                        };
                        (frame, len)
                    }
                },
            };
            let InFrame {
                header,
                mut processed,
            } = frame;
            let len = header.payload_len as usize;
            let available = (self.rbuf.len() - skip).min(len);
            if available > processed {
                self.heard();
                let fresh = &mut self.rbuf[skip + processed..skip + available];
                if let Some(mask) = header.mask {
                    apply_mask(fresh, mask, processed);
                }
                if self.message == Some(OpCode::Text)
                    && !self.compressed
                    && !header.opcode.is_control()
                    && self.utf8.feed(fresh).is_err()
                {
                    self.fail(ProtocolError::InvalidUtf8);
                    continue;
                }
                processed = available;
            }
            if available < len {
                self.rbuf.advance(skip);
                if self.in_parts
                    && !self.compressed
                    && !header.opcode.is_control()
                    && processed >= self.read_size()
                {
                    // A piece of a large frame, delivered before the rest arrives.
                    let piece = self.rbuf.split_to(processed).freeze();
                    let header = header.rest_after(processed);
                    self.frame = Some(InFrame {
                        header,
                        processed: 0,
                    });
                    if let Some(event) = self.deliver_part(piece, false) {
                        if one_event {
                            return Some(event);
                        }
                        self.events.push_back(event);
                    }
                    continue;
                }
                self.frame = Some(InFrame { header, processed });
                return None;
            }
            let payload = if len <= COPY_MAX {
                let payload = Bytes::copy_from_slice(&self.rbuf[skip..skip + len]);
                if skip + len == self.rbuf.len() {
                    self.rbuf.clear();
                } else {
                    self.rbuf.advance(skip + len);
                }
                payload
            } else {
                self.rbuf.advance(skip);
                self.rbuf.split_to(len).freeze()
            };
            if let Some(event) = self.end_frame(&header, payload) {
                if one_event {
                    return Some(event);
                }
                self.events.push_back(event);
            }
        }
        None
    }

    /// Checks what the header alone decides against the connection's state.
    pub(super) fn start_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let max = self.config.limits.max_message_size;
        let rsv1 = header.rsv & 0b100 != 0;
        if rsv1 && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            // RSV1 marks a compressed message on its first frame only (RFC 7692 §6).
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        match header.opcode {
            OpCode::Text | OpCode::Binary => {
                self.compressed = rsv1;
                if self.message.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                if header.payload_len > max as u64 {
                    return Err(ProtocolError::MessageTooBig {
                        size: header.payload_len,
                        max,
                    });
                }
                self.message = Some(header.opcode);
                self.in_parts = self.parts_wanted;
                self.message_size = header.payload_len;
                self.message_frames = 1;
                self.utf8 = Utf8Validator::new();
            }
            OpCode::Continuation => {
                if self.message.is_none() {
                    return Err(ProtocolError::UnexpectedContinuation);
                }
                let size = self.message_size + header.payload_len;
                if size > max as u64 {
                    return Err(ProtocolError::MessageTooBig { size, max });
                }
                let max_frames = self.config.limits.max_fragments.max(1);
                if self.message_frames >= max_frames {
                    return Err(ProtocolError::TooManyFragments { max: max_frames });
                }
                self.message_size = size;
                self.message_frames += 1;
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
        }
        Ok(())
    }

    /// Acts on a complete frame; returns the event it makes, if any (a failure is queued).
    pub(super) fn end_frame(&mut self, header: &FrameHeader, payload: Bytes) -> Option<Event> {
        match header.opcode {
            OpCode::Ping => {
                // RFC 6455 §5.5.3 lets us answer only the latest of pings not yet answered:
                // past a few pongs the output has not taken, the latest ping waits for it to
                // drain, so a ping flood from a peer that does not read costs no memory.
                if self.life == Life::Open {
                    // (With nothing queued the pong goes out whatever the high-water mark.)
                    if self.pongs_unsent < MAX_UNSENT_PONGS
                        && (self.out.len == 0 || self.out.len < self.config.write_high_water)
                    {
                        self.write_frame(OpCode::Pong, true, payload.clone());
                        self.pongs_unsent += 1;
                    } else {
                        self.timers_mut().held_ping = Some(payload.clone());
                    }
                }
                self.config
                    .emit_control_frames
                    .then(|| Event::Message(Message::Ping(payload)))
            }
            OpCode::Pong => {
                if let Some(t) = self.timers.as_mut()
                    && t.awaited_pong.as_ref() == Some(&payload)
                {
                    t.awaited_pong = None;
                    t.pong_answered = true;
                }
                self.config
                    .emit_control_frames
                    .then(|| Event::Message(Message::Pong(payload)))
            }
            OpCode::Close => match CloseFrame::parse(payload) {
                Err(e) => {
                    self.fail(e);
                    None
                }
                Ok(frame) => {
                    if self.life == Life::Open {
                        let reply = frame.as_ref().map(|f| CloseFrame {
                            code: f.code,
                            reason: Utf8Bytes::default(),
                        });
                        self.send_close_frame(reply.as_ref());
                    }
                    self.set_closed();
                    self.message = None;
                    self.fragments = Vec::new();
                    self.drop_inflated();
                    self.ending_mut().peer_close = Some(frame.clone());
                    Some(Event::Close(frame))
                }
            },
            OpCode::Text | OpCode::Binary | OpCode::Continuation if self.compressed => {
                self.inflate_frame(&payload, header.fin)
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation if self.in_parts => {
                self.deliver_part(payload, header.fin)
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if !header.fin {
                    self.append_fragment(&payload);
                    return None;
                }
                let kind = self.message.take();
                let data = if self.fragments.is_empty() {
                    payload
                } else {
                    self.append_fragment(&payload);
                    let mut joined = std::mem::take(&mut self.fragments);
                    shrink_grown(&mut joined);
                    Bytes::from(joined)
                };
                self.deliver(kind == Some(OpCode::Text), data)
            }
        }
    }

    /// A complete data message's event; a text message must end on a code point boundary
    /// (else the connection fails and the failure is queued).
    pub(super) fn deliver(&mut self, text: bool, data: Bytes) -> Option<Event> {
        let message = if text {
            if self.utf8.finish().is_err() {
                self.fail(ProtocolError::InvalidUtf8);
                return None;
            }
            #[allow(
                unsafe_code,
                reason = "the bytes were validated incrementally as they arrived"
            )]
            // SAFETY: every byte of `data` went through `self.utf8` (raw frames as they were
            // unmasked, compressed ones as they were inflated) and `finish` just confirmed that
            // the message ends on a character boundary.
            unsafe {
                Message::Text(Utf8Bytes::from_utf8_unchecked(data))
            }
        } else {
            Message::Binary(data)
        };
        Some(Event::Message(message))
    }

    /// Appends a fragment; the buffer grows as [`grown_capacity`] says, never past the message
    /// limit.
    pub(super) fn append_fragment(&mut self, payload: &[u8]) {
        let needed = self.fragments.len() + payload.len();
        if needed > self.fragments.capacity() {
            let capacity = grown_capacity(
                self.fragments.capacity(),
                needed,
                self.config.limits.max_message_size,
            );
            // Exact: `reserve` may double past what it is asked.
            self.fragments
                .reserve_exact(capacity - self.fragments.len());
        }
        self.fragments.extend_from_slice(payload);
    }
}
