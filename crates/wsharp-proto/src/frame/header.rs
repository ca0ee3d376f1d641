use bytes::{BufMut, BytesMut};

use crate::config::Role;
use crate::error::ProtocolError;

/// The longest frame header: 2 bytes, an 8-byte length and a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame's opcode (RFC 6455 §5.2). Reserved opcodes are rejected when parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Whether this is a control opcode (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }

    fn from_bits(bits: u8) -> Result<Self, ProtocolError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: the last frame of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the three low bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// The header of what remains of this frame's payload after its first `n` bytes: the
    /// length reduced and the masking key turned so that it applies from the remainder's start.
    pub fn rest_after(&self, n: usize) -> Self {
        let mask = self.mask.map(|key| {
            let shift = n % 4;
            std::array::from_fn(|i| key[(i + shift) % 4])
        });
        Self {
            payload_len: self.payload_len - n as u64,
            mask,
            ..*self
        }
    }
}

/// Parses a frame header from the front of `buf`, checking the rules a header alone decides:
/// opcode, reserved bits (`allowed_rsv` names those an extension claims), masking by `role`
/// (the role of the endpoint that receives), control-frame rules, minimal length encoding, and
/// `max_frame_size`.
///
/// `Ok(None)` means more bytes are needed; nothing is consumed. On success, returns the header
/// and its length in bytes.
///
/// # Errors
/// The rule the header breaks, mapped to a close code by [`ProtocolError::close_code`].
pub fn parse_header(
    buf: &[u8],
    role: Role,
    allowed_rsv: u8,
    max_frame_size: usize,
) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    let fin = b0 & 0x80 != 0;
    let rsv = (b0 >> 4) & 0x7;
    let opcode = OpCode::from_bits(b0 & 0x0F)?;
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    if rsv & !allowed_rsv != 0 {
        return Err(ProtocolError::ReservedBits(rsv));
    }
    if opcode.is_control() {
        if !fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
        if len7 > 125 {
            return Err(ProtocolError::ControlFrameTooBig(u64::from(len7)));
        }
    }
    match (role, masked) {
        (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
        (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
        _ => {}
    }
    let (payload_len, mut pos) = match len7 {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            let len = u64::from(u16::from_be_bytes([b[0], b[1]]));
            if len < 126 {
                return Err(ProtocolError::NonMinimalLength);
            }
            (len, 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            let len = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            if len >> 63 != 0 {
                return Err(ProtocolError::InvalidLength);
            }
            if len <= 0xFFFF {
                return Err(ProtocolError::NonMinimalLength);
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    if payload_len > max_frame_size as u64 {
        return Err(ProtocolError::FrameTooBig {
            size: payload_len,
            max: max_frame_size,
        });
    }
    let mask = if masked {
        let Some(m) = buf.get(pos..pos + 4) else {
            return Ok(None);
        };
        pos += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    Ok(Some((
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        },
        pos,
    )))
}

/// Appends the encoding of `header` to `out`.
pub fn encode_header(header: &FrameHeader, out: &mut BytesMut) {
    out.reserve(MAX_HEADER_LEN);
    out.put_u8(u8::from(header.fin) << 7 | header.rsv << 4 | header.opcode.bits());
    let mask_bit = if header.mask.is_some() { 0x80 } else { 0 };
    match header.payload_len {
        n @ 0..=125 => out.put_u8(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.put_u8(mask_bit | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(mask_bit | 127);
            out.put_u64(n);
        }
    }
    if let Some(mask) = header.mask {
        out.put_slice(&mask);
    }
}

#[cfg(test)]
mod rfc6455_5_2_base_framing {
    use super::*;

    const MAX: usize = 16 << 20;

    fn parse(buf: &[u8], role: Role) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        parse_header(buf, role, 0, MAX)
    }

    #[test]
    fn rfc_5_7_examples() {
        // A single-frame unmasked text message "Hello".
        let (h, n) = parse(&[0x81, 0x05, 0x48], Role::Client).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.mask, n),
            (true, OpCode::Text, 5, None, 2)
        );
        // A single-frame masked text message "Hello".
        let (h, n) = parse(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d], Role::Server)
            .unwrap()
            .unwrap();
        assert_eq!((h.mask, n), (Some([0x37, 0xfa, 0x21, 0x3d]), 6));
        // 256 bytes binary message in a single unmasked frame.
        let (h, n) = parse(&[0x82, 0x7E, 0x01, 0x00], Role::Client)
            .unwrap()
            .unwrap();
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
        // 64KiB binary message in a single unmasked frame.
        let (h, n) = parse(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0], Role::Client)
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn partial_headers_need_more() {
        let full = [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for i in 0..full.len() {
            assert_eq!(parse(&full[..i], Role::Server), Ok(None), "{i}");
        }
        assert!(parse(&full, Role::Server).unwrap().is_some());
    }

    #[test]
    fn rejections() {
        assert_eq!(
            parse(&[0x83, 0x80], Role::Server),
            Err(ProtocolError::ReservedOpcode(3))
        );
        assert_eq!(
            parse(&[0x8B, 0x80], Role::Server),
            Err(ProtocolError::ReservedOpcode(0xB))
        );
        assert_eq!(
            parse(&[0xC1, 0x80], Role::Server),
            Err(ProtocolError::ReservedBits(4))
        );
        assert!(parse_header(&[0xC1, 0x80], Role::Server, 0b100, MAX).is_ok());
        assert_eq!(
            parse(&[0x81, 0x00], Role::Server),
            Err(ProtocolError::UnmaskedFrame)
        );
        assert_eq!(
            parse(&[0x81, 0x80], Role::Client),
            Err(ProtocolError::MaskedFrame)
        );
        assert_eq!(
            parse(&[0x09, 0x80], Role::Server),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            parse(&[0x89, 0xFE], Role::Server),
            Err(ProtocolError::ControlFrameTooBig(126))
        );
        assert_eq!(
            parse(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], Role::Client),
            Err(ProtocolError::InvalidLength)
        );
        assert_eq!(
            parse(&[0x82, 0x7E, 0, 5], Role::Client),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            parse(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 200], Role::Client),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            parse(
                &[0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                Role::Client
            ),
            Err(ProtocolError::FrameTooBig {
                size: (1 << 63) - 1,
                max: MAX
            })
        );
    }

    #[test]
    fn encode_parse_round_trip() {
        for len in [0u64, 1, 125, 126, 65535, 65536, 1 << 24] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = FrameHeader {
                    fin: len % 2 == 0,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                };
                let mut out = BytesMut::new();
                encode_header(&h, &mut out);
                let role = if mask.is_some() {
                    Role::Server
                } else {
                    Role::Client
                };
                assert_eq!(
                    parse_header(&out, role, 0, 1 << 30),
                    Ok(Some((h, out.len())))
                );
            }
        }
    }
}
