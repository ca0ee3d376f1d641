//! The transmit path: messages framed, masked and queued for the I/O layer (RFC 6455 §5.2,
//! §5.3, §5.4).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use rand::RngCore;

use super::{COALESCE_MAX, Connection, PreparedMessage};
use crate::config::Role;
use crate::error::SendError;
use crate::frame::{FrameHeader, OpCode, apply_mask, encode_header};
use crate::message::Message;

/// Encoded frames waiting to be written: shared payloads in `queue`, then small frames
/// coalesced in `tail`.
#[derive(Default)]
pub(super) struct Outgoing {
    pub(super) queue: VecDeque<Bytes>,
    pub(super) tail: BytesMut,
    pub(super) len: usize,
    /// Bytes taken by the transport over the connection's life.
    pub(super) written: u64,
}

impl Outgoing {
    /// Makes sure the tail has memory: a pooled buffer, or a new one with `room` bytes. A tail
    /// grown from nothing would be reallocated (and copied) several times per burst of replies.
    pub(super) fn ready_tail(&mut self, room: usize) {
        if self.tail.capacity() == 0 {
            self.tail = crate::pool::take(room);
        }
    }

    pub(super) fn push_frame(&mut self, header: &FrameHeader, payload: Bytes) {
        self.len += payload.len();
        let before = self.tail.len();
        encode_header(header, &mut self.tail);
        self.len += self.tail.len() - before;
        if payload.len() <= COALESCE_MAX {
            let start = self.tail.len();
            self.tail.extend_from_slice(&payload);
            if let Some(mask) = header.mask {
                apply_mask(&mut self.tail[start..], mask, 0);
            }
            return;
        }
        if !self.tail.is_empty() {
            self.queue.push_back(self.tail.split().freeze());
        }
        let payload = match header.mask {
            None => payload,
            Some(mask) => {
                let mut owned = payload
                    .try_into_mut()
                    .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
                apply_mask(&mut owned, mask, 0);
                owned.freeze()
            }
        };
        self.queue.push_back(payload);
    }

    /// Queues an already encoded frame, shared rather than copied when large.
    pub(super) fn push_encoded(&mut self, frame: Bytes) {
        self.len += frame.len();
        if frame.len() <= COALESCE_MAX {
            self.tail.extend_from_slice(&frame);
            return;
        }
        if !self.tail.is_empty() {
            self.queue.push_back(self.tail.split().freeze());
        }
        self.queue.push_back(frame);
    }

    /// Drops everything queued (the transport can take no more).
    pub(super) fn discard(&mut self) {
        self.queue.clear();
        self.tail.clear();
        self.len = 0;
    }

    pub(super) fn advance(&mut self, mut n: usize) {
        self.len -= n;
        self.written += n as u64;
        while n > 0 {
            match self.queue.front_mut() {
                Some(front) if front.len() <= n => {
                    n -= front.len();
                    self.queue.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    return;
                }
                None if n == self.tail.len() => {
                    // All written: cleared, not advanced, so the buffer keeps its capacity.
                    self.tail.clear();
                    return;
                }
                None => {
                    self.tail.advance(n);
                    return;
                }
            }
        }
        if self.len == 0 {
            self.tail.clear();
        }
    }
}

impl Connection {
    /// Queues a message. Text and binary messages are split into frames of
    /// [`Config::fragment_size`](crate::Config::fragment_size) if set; a close message starts the close handshake.
    ///
    /// # Errors
    /// [`SendError::SendAfterClosing`] once a close frame was sent; [`SendError::ControlPayloadTooBig`] for a
    /// ping or pong over 125 bytes or a close code or reason the API refuses.
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        if self.close_sent_or_closed() {
            return Err(SendError::SendAfterClosing);
        }
        if message.is_data() && self.sending.is_some() {
            return Err(SendError::MessageInProgress);
        }
        match message {
            Message::Text(text) => self.send_data(OpCode::Text, text.into_bytes()),
            Message::Binary(data) => self.send_data(OpCode::Binary, data),
            Message::Ping(data) => self.send_control(OpCode::Ping, data)?,
            Message::Pong(data) => self.send_control(OpCode::Pong, data)?,
            Message::Close(frame) => self.close(frame)?,
        }
        Ok(())
    }

    /// Queues a ping whose pong is awaited: once a pong with the same payload arrives,
    /// [`take_pong_answered`](Self::take_pong_answered) says so, once (whether or not control
    /// frames are emitted). A later call replaces the awaited payload.
    ///
    /// ```
    /// use wsharp_proto::{Config, Connection, Role};
    /// let mut conn = Connection::new(Role::Client, Config::default());
    /// conn.ping_awaiting(bytes::Bytes::from_static(b"t0k3n")).unwrap();
    /// assert!(!conn.take_pong_answered());
    /// ```
    ///
    /// # Errors
    /// As [`send`](Self::send) for a ping.
    pub fn ping_awaiting(&mut self, payload: Bytes) -> Result<(), SendError> {
        self.send(Message::Ping(payload.clone()))?;
        let timers = self.timers_mut();
        timers.awaited_pong = Some(payload);
        timers.pong_answered = false;
        Ok(())
    }

    /// Whether the pong of [`ping_awaiting`](Self::ping_awaiting) arrived since the last call.
    pub fn take_pong_answered(&mut self) -> bool {
        self.timers
            .as_mut()
            .is_some_and(|t| std::mem::take(&mut t.pong_answered))
    }

    /// Queues a message prepared once for many connections. A server connection sends the
    /// prepared frame itself, shared, unless it must compress or fragment the message, in which
    /// case it encodes its own copy.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), SendError> {
        if self.close_sent_or_closed() {
            return Err(SendError::SendAfterClosing);
        }
        if self.sending.is_some() {
            return Err(SendError::MessageInProgress);
        }
        let len = prepared.message.len();
        let compresses = self
            .deflate
            .as_ref()
            .is_some_and(|d| d.deflater.is_some() && len >= d.threshold);
        let fragments = self
            .config
            .fragment_size
            .is_some_and(|size| len > size.max(1));
        if self.role == Role::Server && !compresses && !fragments {
            let room = self.read_size();
            self.out.ready_tail(room);
            self.out.push_encoded(prepared.frame.clone());
            Ok(())
        } else {
            self.send(prepared.message.clone())
        }
    }

    /// Whether bytes wait to be written.
    pub fn has_transmit(&self) -> bool {
        self.out.len > 0
    }

    /// How many bytes wait to be written.
    pub fn transmit_len(&self) -> usize {
        self.out.len
    }

    /// How many bytes the transport has taken ([`advance_transmit`](Self::advance_transmit))
    /// over the connection's life. With [`transmit_len`](Self::transmit_len) it tells when a
    /// message is written: the one queued last is out once this reaches the sum of both
    /// taken right after queuing it.
    pub fn transmitted(&self) -> u64 {
        self.out.written
    }

    /// The pending output when it is one contiguous slice (small frames coalesced, nothing
    /// shared queued before them): the I/O layer can then write it without building slices.
    pub fn transmit_contiguous(&self) -> Option<&[u8]> {
        self.out.queue.is_empty().then_some(&self.out.tail[..])
    }

    /// Fills `dst` with the pending output, in order; returns how many slices were filled.
    pub fn transmit_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for chunk in self
            .out
            .queue
            .iter()
            .map(|b| &b[..])
            .chain(std::iter::once(&self.out.tail[..]))
        {
            if n == dst.len() {
                break;
            }
            if !chunk.is_empty() {
                dst[n] = IoSlice::new(chunk);
                n += 1;
            }
        }
        n
    }

    /// Marks `n` bytes of the pending output as written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.advance(n);
        if self.out.len == 0 {
            self.pongs_unsent = 0;
            if let Some(payload) = self.timers.as_mut().and_then(|t| t.held_ping.take())
                && self.life == super::Life::Open
            {
                self.write_frame(OpCode::Pong, true, payload);
                self.pongs_unsent = 1;
            }
        }
    }

    pub(super) fn send_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), SendError> {
        if payload.len() > 125 {
            return Err(SendError::ControlPayloadTooBig(payload.len()));
        }
        self.write_frame(opcode, true, payload);
        Ok(())
    }

    /// Sends a data message's payload (or a part of it, ending it if `fin`) as one frame or
    /// fragments; `rsv` goes on the first.
    pub(super) fn send_frames(&mut self, opcode: OpCode, payload: Bytes, rsv: u8, fin: bool) {
        match self.config.fragment_size.map(|size| size.max(1)) {
            Some(size) if payload.len() > size => {
                let (mut opcode, mut rsv) = (opcode, rsv);
                let mut start = 0;
                while start < payload.len() {
                    let end = (start + size).min(payload.len());
                    self.write_frame_rsv(
                        opcode,
                        fin && end == payload.len(),
                        rsv,
                        payload.slice(start..end),
                    );
                    (opcode, rsv) = (OpCode::Continuation, 0);
                    start = end;
                }
            }
            _ => self.write_frame_rsv(opcode, fin, rsv, payload),
        }
    }

    pub(super) fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: Bytes) {
        self.write_frame_rsv(opcode, fin, 0, payload);
    }

    pub(super) fn write_frame_rsv(&mut self, opcode: OpCode, fin: bool, rsv: u8, payload: Bytes) {
        let mask = match self.role {
            Role::Server => None,
            Role::Client => {
                let mut key = [0u8; 4];
                match &mut self.mask_rng {
                    Some(rng) => rng.fill_bytes(&mut key),
                    None => rand::rng().fill_bytes(&mut key),
                }
                Some(key)
            }
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        // A control frame alone (a pong, a close) needs no read-sized buffer.
        let room = if opcode.is_control() {
            crate::frame::MAX_HEADER_LEN + 125
        } else {
            self.read_size()
        };
        self.out.ready_tail(room);
        self.out.push_frame(&header, payload);
    }
}
