//! Feeds arbitrary bytes, in arbitrary read sizes, to a server and a client connection with
//! small limits, echoing every message, and decodes everything the connection writes. Checks
//! that nothing panics, output stays bounded, the frames sent are well formed (masked as the
//! role requires, control frames whole and short, fragments in order, RSV1 only where
//! permessage-deflate puts it), at most one close frame is sent and nothing after it, and:
//! - a failure for a violation sends exactly one close frame, with a sendable code equal to
//!   the failure's close code;
//! - a close from the peer is answered with exactly one close frame carrying its code;
//! - otherwise no close frame is sent.
//!
//! A second connection in the peer's role reads the same output and must see exactly the
//! messages that were sent, then the close, without failing.
#![no_main]

use std::io::IoSlice;

use libfuzzer_sys::fuzz_target;
use wsharp_proto::deflate::Deflate;
use wsharp_proto::{
    CloseCode, CloseFrame, Config, Connection, Event, Failure, Limits, Message, MessageKind, Part,
    Role, State,
};

const MAX_FRAME: usize = 4096;
const MAX_MESSAGE: usize = 8192;
const HIGH_WATER: usize = 4096;

/// One frame as it appeared on the wire, unmasked.
#[derive(Debug)]
struct Frame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: Vec<u8>,
}

/// Decodes the frames an endpoint of `role` wrote, independently of the crate's parser.
/// Panics on anything RFC 6455 §5.2 does not allow a sender to write, or a frame cut short.
fn decode(mut wire: &[u8], role: Role) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        assert!(wire.len() >= 2, "a frame cut short: {wire:?}");
        let (b0, b1) = (wire[0], wire[1]);
        let masked = b1 & 0x80 != 0;
        assert_eq!(
            masked,
            role == Role::Client,
            "a {role:?} frame with mask bit {masked}"
        );
        let (len, mut at) = match b1 & 0x7f {
            126 => {
                assert!(wire.len() >= 4, "a 16-bit length cut short");
                let len = u64::from(u16::from_be_bytes([wire[2], wire[3]]));
                assert!(len >= 126, "length {len} not in its shortest form");
                (len, 4)
            }
            127 => {
                assert!(wire.len() >= 10, "a 64-bit length cut short");
                let len = u64::from_be_bytes(wire[2..10].try_into().expect("8 bytes"));
                assert!(len >> 63 == 0, "64-bit length with its top bit set");
                assert!(len > 0xffff, "length {len} not in its shortest form");
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        let key = if masked {
            assert!(wire.len() >= at + 4, "a masking key cut short");
            let key: [u8; 4] = wire[at..at + 4].try_into().expect("4 bytes");
            at += 4;
            Some(key)
        } else {
            None
        };
        let len = usize::try_from(len).expect("a length that fits in memory");
        assert!(wire.len() - at >= len, "a payload cut short");
        let mut payload = wire[at..at + len].to_vec();
        if let Some(key) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        frames.push(Frame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode: b0 & 0x0f,
            payload,
        });
        wire = &wire[at + len..];
    }
    frames
}

/// Checks the sequence of frames: opcodes, control frames, fragmentation and RSV bits
/// (RFC 6455 §5.4, §5.5; RFC 7692 §6). Returns the close frames' payloads.
fn check_framing(frames: &[Frame], deflate: bool) -> Vec<&[u8]> {
    let mut open_message = false;
    let mut closes = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        assert!(closes.is_empty(), "frame {i} sent after the close: {f:?}");
        match f.opcode {
            0x8..=0xa => {
                assert!(f.fin, "a fragmented control frame: {f:?}");
                assert!(f.payload.len() <= 125, "a control frame over 125 bytes");
                assert_eq!(f.rsv, 0, "RSV bits on a control frame: {f:?}");
                if f.opcode == 0x8 {
                    closes.push(&f.payload[..]);
                }
            }
            0x1 | 0x2 => {
                assert!(!open_message, "a new message while one is open: {f:?}");
                assert!(
                    f.rsv == 0 || (deflate && f.rsv == 0b100),
                    "RSV bits {:#05b} on a data frame (deflate {deflate})",
                    f.rsv
                );
                open_message = !f.fin;
            }
            0x0 => {
                assert!(open_message, "a continuation without a message: {f:?}");
                assert_eq!(f.rsv, 0, "RSV bits on a continuation: {f:?}");
                open_message = !f.fin;
            }
            other => panic!("reserved opcode {other:#x} sent"),
        }
    }
    closes
}

/// A close payload we may send: empty, or a sendable code and a UTF-8 reason of at most 123
/// bytes (RFC 6455 §5.5.1, §7.4). Returns the code.
fn check_close_payload(payload: &[u8]) -> Option<CloseCode> {
    if payload.is_empty() {
        return None;
    }
    assert!(payload.len() >= 2, "a 1-byte close payload");
    let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
    assert!(code.is_sendable(), "close code {code} sent");
    assert!(
        (1000..=4999).contains(&code.0) && ![1004, 1005, 1006, 1015].contains(&code.0),
        "close code {code} sent"
    );
    assert!(
        std::str::from_utf8(&payload[2..]).is_ok(),
        "a close reason that is not UTF-8"
    );
    Some(code)
}

/// A failure for something the peer sent (not the transport ending or a timer).
fn is_violation(e: &Failure) -> bool {
    matches!(e, Failure::Protocol(_))
}

/// Moves up to 8 slices of pending output to `wire`.
fn drain_some(conn: &mut Connection, wire: &mut Vec<u8>) {
    let mut slices = [IoSlice::new(&[]); 8];
    let n = conn.transmit_slices(&mut slices);
    let before = wire.len();
    for s in &slices[..n] {
        wire.extend_from_slice(s);
    }
    conn.advance_transmit(wire.len() - before);
}

fn run(role: Role, data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split % 64) + 1;
    let limits = Limits::default()
        .max_frame_size(MAX_FRAME)
        .max_message_size(MAX_MESSAGE);
    let config = Config::default()
        .limits(limits)
        .write_high_water(HIGH_WATER)
        .emit_control_frames(split & 1 == 0);
    let mut conn = Connection::new(role, config);
    let deflate = (split & 2 == 0).then(|| {
        // Exercise permessage-deflate too: RSV1 frames are inflated, bounded by the limit.
        let settings = Deflate::default();
        let negotiated = settings
            .negotiate(&["permessage-deflate"])
            .expect("plain offer")
            .0;
        (negotiated, settings)
    });
    if let Some((negotiated, settings)) = &deflate {
        conn.set_deflate(negotiated, settings);
    }
    // Messages received in parts, echoed in parts.
    if split & 64 != 0 {
        conn.set_receive_parts(true);
    }
    // The message being received in parts: its kind, its bytes, whether its echo goes well.
    let mut partial: Option<(MessageKind, Vec<u8>, bool)> = None;

    let mut wire = Vec::new();
    let mut sent = Vec::new();
    let mut failures = Vec::new();
    let mut peer_closes = Vec::new();
    let mut handle = |conn: &mut Connection, event: Event| match event {
        Event::Message(m @ (Message::Text(_) | Message::Binary(_))) => {
            assert!(m.len() <= MAX_MESSAGE, "a message over the limit delivered");
            if conn.send(m.clone()).is_ok() {
                sent.push(m);
            }
        }
        Event::Message(_) => {}
        Event::Part(Part { kind, data, last }) => {
            let (started, bytes, echoing) = partial.get_or_insert_with(|| (kind, Vec::new(), true));
            assert_eq!(*started, kind, "a part of another kind");
            bytes.extend_from_slice(&data);
            assert!(bytes.len() <= MAX_MESSAGE, "parts over the limit delivered");
            if *echoing && conn.send_part(kind, data, last).is_err() {
                *echoing = false;
            }
            if last && let Some((kind, bytes, echoed)) = partial.take() {
                if echoed {
                    sent.push(match kind {
                        MessageKind::Text => {
                            Message::text(String::from_utf8(bytes).expect("text parts are UTF-8"))
                        }
                        MessageKind::Binary => Message::binary(bytes),
                    });
                }
            }
        }
        Event::Close(frame) => peer_closes.push(frame),
        Event::Failed(e) => failures.push(e),
    };
    for piece in data.chunks(chunk) {
        conn.handle_data(piece);
        while let Some(event) = conn.poll_event() {
            handle(&mut conn, event);
        }
        drain_some(&mut conn, &mut wire);
        assert!(conn.transmit_len() <= HIGH_WATER + MAX_MESSAGE + 64);
    }
    conn.handle_eof();
    while let Some(event) = conn.poll_event() {
        handle(&mut conn, event);
    }
    assert_eq!(conn.state(), State::Closed);
    while conn.has_transmit() {
        drain_some(&mut conn, &mut wire);
    }

    let frames = decode(&wire, role);
    let closes = check_framing(&frames, deflate.is_some());
    assert!(closes.len() <= 1, "{} close frames sent", closes.len());
    let sent_code = closes.first().map(|p| check_close_payload(p));
    let violation = failures.iter().find(|e| is_violation(e));
    assert!(
        failures.len() <= 1,
        "more than one failure reported: {failures:?}"
    );
    assert!(
        peer_closes.len() <= 1,
        "more than one peer close reported: {peer_closes:?}"
    );
    match (violation, peer_closes.first()) {
        (Some(e), peer) => {
            assert!(peer.is_none(), "a failure after the peer's close: {e:?}");
            let expected = e.close_code();
            assert!(
                expected.is_sendable(),
                "{e:?} maps to unsendable {expected}"
            );
            assert_eq!(
                sent_code,
                Some(Some(expected)),
                "failing for {e:?} sent close {sent_code:?}"
            );
            assert_eq!(conn.failure(), Some(e));
        }
        (None, Some(frame)) => assert_eq!(
            sent_code,
            Some(frame.as_ref().map(|f| f.code)),
            "the peer's close {frame:?} answered with {sent_code:?}"
        ),
        (None, None) => assert_eq!(sent_code, None, "a close frame sent unprompted"),
    }

    // The peer's view of the same bytes: the messages sent, in order, then the close.
    let peer_role = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut peer = Connection::new(peer_role, Config::default());
    if let Some((negotiated, settings)) = &deflate {
        peer.set_deflate(negotiated, settings);
    }
    peer.handle_data(&wire);
    let mut received = Vec::new();
    let mut peer_saw_close = None;
    while let Some(event) = peer.poll_event() {
        match event {
            Event::Message(m) => {
                assert!(peer_saw_close.is_none(), "a message after the close");
                if matches!(m, Message::Text(_) | Message::Binary(_)) {
                    received.push(m);
                }
            }
            Event::Close(frame) => peer_saw_close = Some(frame.map(|f: CloseFrame| f.code)),
            Event::Part(_) => unreachable!("the peer reads whole messages"),
            Event::Failed(e) => panic!("the peer failed on what was sent: {e:?}"),
        }
    }
    assert_eq!(received, sent, "the peer did not read what was sent");
    assert_eq!(peer_saw_close, sent_code, "the peer read another close");
}

fuzz_target!(|data: &[u8]| {
    run(Role::Server, data);
    run(Role::Client, data);
});
