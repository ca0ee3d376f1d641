//! The envelope a node publishes: who sent it, its place in the sender's sequence, and the
//! message, in a small binary layout (the message's bytes travel as they are).
//!
//! ```text
//! "WSB1" kind:u8 origin_len:u8 origin incarnation:u64 seq:u64 sent_ms:u64 path_len:u16 path
//!        target_len:u8 target body...
//! body: Broadcast/Send: opcode:u8 payload | Close: code:u16 (0: none) reason | Probe,
//!       Beacon: nothing
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use wsharp_proto::{CloseCode, CloseFrame, Message};

use crate::server::Directed;

const MAGIC: &[u8; 4] = b"WSB1";

/// What an envelope carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// A broadcast to a service's sessions on every node; `seq` counts it.
    Broadcast(Message),
    /// A message for one session (`target`).
    Directed(Directed),
    /// The sender's liveness probe, to itself.
    Probe,
    /// The sender's last broadcast `seq`, so that the loss of the last ones is seen.
    Beacon,
}

/// One published envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) origin: String,
    /// Distinguishes a node's runs: a restarted node counts from 1 again.
    pub(crate) incarnation: u64,
    pub(crate) seq: u64,
    /// When the sender queued it, by the sender's clock (milliseconds since the epoch).
    pub(crate) sent_ms: u64,
    pub(crate) path: String,
    pub(crate) target: String,
    pub(crate) body: Body,
}

/// Why an envelope could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

impl Envelope {
    pub(crate) fn encode(&self) -> Bytes {
        let (kind, payload_len) = match &self.body {
            Body::Broadcast(m) | Body::Directed(Directed::Send(m)) => (
                if matches!(self.body, Body::Broadcast(_)) {
                    1
                } else {
                    2
                },
                1 + m.len(),
            ),
            Body::Directed(Directed::Close(f)) => (3, 2 + f.as_ref().map_or(0, |f| f.reason.len())),
            Body::Probe => (4, 0),
            Body::Beacon => (5, 0),
        };
        let mut out = BytesMut::with_capacity(
            4 + 1
                + 1
                + self.origin.len()
                + 24
                + 2
                + self.path.len()
                + 1
                + self.target.len()
                + payload_len,
        );
        out.put_slice(MAGIC);
        out.put_u8(kind);
        put_short(&mut out, &self.origin);
        out.put_u64(self.incarnation);
        out.put_u64(self.seq);
        out.put_u64(self.sent_ms);
        out.put_u16(self.path.len().min(u16::MAX as usize) as u16);
        out.put_slice(&self.path.as_bytes()[..self.path.len().min(u16::MAX as usize)]);
        put_short(&mut out, &self.target);
        match &self.body {
            Body::Broadcast(m) | Body::Directed(Directed::Send(m)) => {
                let (opcode, data): (u8, &[u8]) = match m {
                    Message::Text(t) => (1, t.as_bytes()),
                    Message::Binary(b) => (2, b),
                    Message::Ping(b) => (9, b),
                    Message::Pong(b) => (10, b),
                    Message::Close(_) => (8, &[]),
                };
                out.put_u8(opcode);
                if let Message::Close(Some(f)) = m {
                    out.put_u16(f.code.0);
                    out.put_slice(f.reason.as_bytes());
                } else {
                    out.put_slice(data);
                }
            }
            Body::Directed(Directed::Close(frame)) => {
                out.put_u16(frame.as_ref().map_or(0, |f| f.code.0));
                if let Some(f) = frame {
                    out.put_slice(f.reason.as_bytes());
                }
            }
            Body::Probe | Body::Beacon => {}
        }
        out.freeze()
    }

    pub(crate) fn decode(mut buf: Bytes) -> Result<Self, Malformed> {
        if buf.len() < 5 || &buf[..4] != MAGIC {
            return Err(Malformed);
        }
        buf.advance(4);
        let kind = buf.get_u8();
        let origin = get_short(&mut buf)?;
        if buf.remaining() < 26 {
            return Err(Malformed);
        }
        let incarnation = buf.get_u64();
        let seq = buf.get_u64();
        let sent_ms = buf.get_u64();
        let path_len = buf.get_u16() as usize;
        let path = get_string(&mut buf, path_len)?;
        let target = get_short(&mut buf)?;
        let body = match kind {
            1 | 2 => {
                if buf.is_empty() {
                    return Err(Malformed);
                }
                let opcode = buf.get_u8();
                let message = match opcode {
                    1 => Message::text(
                        wsharp_proto::Utf8Bytes::try_from(buf).map_err(|_| Malformed)?,
                    ),
                    2 => Message::Binary(buf),
                    9 => Message::Ping(buf),
                    10 => Message::Pong(buf),
                    8 => Message::Close(close_frame(buf)?),
                    _ => return Err(Malformed),
                };
                if kind == 1 {
                    Body::Broadcast(message)
                } else {
                    Body::Directed(Directed::Send(message))
                }
            }
            3 => Body::Directed(Directed::Close(close_frame(buf)?)),
            4 => Body::Probe,
            5 => Body::Beacon,
            _ => return Err(Malformed),
        };
        Ok(Self {
            origin,
            incarnation,
            seq,
            sent_ms,
            path,
            target,
            body,
        })
    }
}

fn close_frame(mut buf: Bytes) -> Result<Option<CloseFrame>, Malformed> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.len() < 2 {
        return Err(Malformed);
    }
    let code = buf.get_u16();
    if code == 0 {
        return Ok(None);
    }
    let reason = std::str::from_utf8(&buf).map_err(|_| Malformed)?;
    CloseFrame::new(CloseCode(code), reason)
        .map(Some)
        .map_err(|_| Malformed)
}

fn put_short(out: &mut BytesMut, s: &str) {
    let len = s.len().min(255);
    out.put_u8(len as u8);
    out.put_slice(&s.as_bytes()[..len]);
}

fn get_short(buf: &mut Bytes) -> Result<String, Malformed> {
    if buf.is_empty() {
        return Err(Malformed);
    }
    let len = buf.get_u8() as usize;
    get_string(buf, len)
}

fn get_string(buf: &mut Bytes, len: usize) -> Result<String, Malformed> {
    if buf.remaining() < len {
        return Err(Malformed);
    }
    let bytes = buf.split_to(len);
    String::from_utf8(bytes.to_vec()).map_err(|_| Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(body: Body) {
        let envelope = Envelope {
            origin: "node-a".into(),
            incarnation: 7,
            seq: 42,
            sent_ms: 1_700_000_000_000,
            path: "/Chat".into(),
            target: "abcd".into(),
            body,
        };
        assert_eq!(Envelope::decode(envelope.encode()), Ok(envelope));
    }

    #[test]
    fn every_kind_survives_the_trip() {
        round_trip(Body::Broadcast(Message::text("héllo")));
        round_trip(Body::Broadcast(Message::binary(vec![0u8, 255])));
        round_trip(Body::Broadcast(Message::Ping(Bytes::from_static(b"p"))));
        round_trip(Body::Directed(Directed::Send(Message::text("one"))));
        round_trip(Body::Directed(Directed::Close(
            CloseFrame::new(CloseCode(4001), "bye").ok(),
        )));
        round_trip(Body::Directed(Directed::Close(None)));
        round_trip(Body::Probe);
        round_trip(Body::Beacon);
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let good = Envelope {
            origin: "n".into(),
            incarnation: 1,
            seq: 1,
            sent_ms: 0,
            path: "/p".into(),
            target: String::new(),
            body: Body::Broadcast(Message::text("x")),
        }
        .encode();
        for end in 0..good.len() - 1 {
            let _ = Envelope::decode(good.slice(..end));
        }
        assert_eq!(
            Envelope::decode(Bytes::from_static(b"nope")),
            Err(Malformed)
        );
        let mut bad_text = good.to_vec();
        *bad_text.last_mut().unwrap() = 0xff;
        assert_eq!(Envelope::decode(Bytes::from(bad_text)), Err(Malformed));
    }
}
