//! Limits hold before memory is allocated, in the client role (unmasked server frames) and, for
//! compressed messages split over several frames, in both roles. A counting global allocator
//! measures the peak. One test function, so no other test allocates at the same time.

use std::io::IoSlice;

use wsharp_proto::deflate::Deflate;
use wsharp_proto::frame::{OpCode, apply_mask, parse_header};
use wsharp_proto::growth::GROWTH_STEP_MAX;
use wsharp_proto::{Config, Connection, Event, Limits, Message, Role, State};

wsharp_testkit::install_counting_allocator!();
use wsharp_testkit::memory::peak_growth;

const KEY: [u8; 4] = [1, 2, 3, 4];

/// A frame header with a 64-bit length; masked (as a client sends) or not (as a server does).
fn header(b0: u8, len: u64, masked: bool) -> Vec<u8> {
    let mut h = vec![b0, if masked { 0xFF } else { 0x7F }];
    h.extend_from_slice(&len.to_be_bytes());
    if masked {
        h.extend_from_slice(&KEY);
    }
    h
}

/// A whole frame, its length in the shortest encoding, as `sender` sends it.
fn frame(b0: u8, payload: &[u8], sender: Role) -> Vec<u8> {
    let masked = sender == Role::Client;
    let m = if masked { 0x80 } else { 0 };
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&KEY);
    }
    let start = out.len();
    out.extend_from_slice(payload);
    if masked {
        apply_mask(&mut out[start..], KEY, 0);
    }
    out
}

/// The peer of `role`: who sends the frames that `role` receives.
fn peer(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Takes everything the connection wants to write.
fn output(conn: &mut Connection) -> Vec<u8> {
    let mut all = Vec::new();
    while conn.has_transmit() {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = conn.transmit_slices(&mut slices);
        let chunk: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        conn.advance_transmit(chunk.len());
        all.extend(chunk);
    }
    all
}

/// Asserts the connection failed with `code`, reported once and with no other event, and that
/// it wrote the close frame for it.
fn assert_failed_with(conn: &mut Connection, code: u16) {
    let mut failures = 0;
    while let Some(event) = conn.poll_event() {
        match event {
            Event::Failed(e) => {
                assert_eq!(e.close_code().0, code, "{e:?}");
                failures += 1;
            }
            other => panic!("unexpected event: {}", describe(&other)),
        }
    }
    assert_eq!(failures, 1);
    assert_close_sent(conn, code);
}

/// Asserts the connection is closed after a failure with `code` and that what it wrote is
/// exactly one close frame with that code, masked if and only if it is a client.
fn assert_close_sent(conn: &mut Connection, code: u16) {
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.failure().unwrap().close_code().0, code);
    let wire = output(conn);
    let (h, n) = parse_header(&wire, peer(conn.role()), 0, usize::MAX)
        .unwrap()
        .expect("a whole close frame");
    assert_eq!(h.opcode, OpCode::Close);
    assert!(h.fin);
    assert_eq!(h.mask.is_some(), conn.role() == Role::Client);
    let len = h.payload_len as usize;
    assert_eq!(wire.len(), n + len, "only the close frame is written");
    let mut payload = wire[n..].to_vec();
    if let Some(m) = h.mask {
        apply_mask(&mut payload, m, 0);
    }
    assert_eq!(payload[..2], code.to_be_bytes());
}

/// An event, with a message shown by its length only (they are large here).
fn describe(event: &Event) -> String {
    match event {
        Event::Message(Message::Binary(b)) => format!("a binary message of {} bytes", b.len()),
        Event::Message(Message::Text(t)) => format!("a text message of {} bytes", t.len()),
        other => format!("{other:?}"),
    }
}

/// A connection in `role` with permessage-deflate agreed (no parameters) under `config`.
fn deflate_connection(role: Role, config: Config) -> Connection {
    let settings = Deflate::default();
    let negotiated = match role {
        Role::Server => settings.negotiate(&["permessage-deflate"]).unwrap().0,
        Role::Client => settings.accept_response("permessage-deflate").unwrap(),
    };
    let mut c = Connection::new(role, config);
    c.set_deflate(&negotiated, &settings);
    assert!(c.is_deflate());
    c
}

#[test]
fn limits_are_checked_before_allocating_in_every_role() {
    // Fault 26, client role: a length with the most significant bit set is a protocol error.
    let grew = peak_growth(|| {
        let mut c = Connection::new(Role::Client, Config::default());
        c.handle_data(&header(0x82, 1 << 63, false));
        assert_failed_with(&mut c, 1002);
    });
    assert!(grew < 64 << 10, "grew {grew} bytes");
    // 2^63-1, and one byte over the default 16 MiB frame limit: 1009 at the header, without
    // allocating for the payload.
    let max_frame = Limits::default().max_frame_size;
    for len in [(1u64 << 63) - 1, max_frame as u64 + 1] {
        let grew = peak_growth(|| {
            let mut c = Connection::new(Role::Client, Config::default());
            c.handle_data(&header(0x82, len, false));
            assert_failed_with(&mut c, 1009);
        });
        assert!(grew < 64 << 10, "grew {grew} bytes for a {len}-byte header");
    }
    // And a frame just over a 1 MiB message limit.
    let grew = peak_growth(|| {
        let limits = Limits::default().max_message_size(1 << 20);
        let mut c = Connection::new(Role::Client, Config::default().limits(limits));
        c.handle_data(&header(0x82, (1 << 20) + 1, false));
        assert_failed_with(&mut c, 1009);
    });
    assert!(grew < 64 << 10, "grew {grew} bytes");

    // Faults 34, 42 and 43: the same bound as the server-role test, the limit plus
    // `GROWTH_STEP_MAX`, plus the frame being read and the receive buffer it was copied into.
    let limit = Limits::default().max_message_size;
    let slack = GROWTH_STEP_MAX + 3 * (1 << 20);

    // Fault 34, client role: 1 000 unmasked frames of 1 MiB, FIN only on the last: 1009 on the
    // 65th.
    let frame_len = 1 << 20;
    let first = frame(0x02, &vec![0u8; frame_len], Role::Server);
    let mut continuation = first.clone();
    continuation[0] = 0x00;
    let grew = peak_growth(|| {
        let mut c = Connection::new(Role::Client, Config::default());
        c.handle_data(&first);
        assert_eq!(c.poll_event(), None);
        let mut sent = 1;
        while sent < 1000 {
            c.handle_data(&continuation);
            sent += 1;
            match c.poll_event() {
                None => {}
                Some(Event::Failed(e)) => {
                    assert_eq!(e.close_code().0, 1009, "{e:?}");
                    break;
                }
                Some(other) => panic!("frame {sent}: {}", describe(&other)),
            }
        }
        assert_eq!(sent, 65);
        assert_close_sent(&mut c, 1009);
    });
    assert!(
        grew <= limit + slack,
        "grew {grew} bytes for a {limit}-byte limit"
    );
    drop((first, continuation));

    // Fault 42: a deflate bomb, 256 MiB of zeros in about 255 KiB.
    let bomb = deflate_bomb(256 << 20);
    assert!(bomb.len() < 300 << 10, "{} bytes", bomb.len());

    // Client role, one frame: 1009, and the inflate buffer stops at the limit.
    let wire = frame(0xC2, &bomb, Role::Server);
    let grew = peak_growth(|| {
        let mut c = deflate_connection(Role::Client, Config::default());
        c.handle_data(&wire);
        assert_failed_with(&mut c, 1009);
    });
    assert!(
        grew <= limit + slack,
        "client: grew {grew} bytes for a {limit}-byte limit"
    );
    drop(wire);

    // Both roles, the bomb split over 2 and over 64 frames: the fragments inflate into one
    // message, which stops at the limit while the fragments still arrive.
    for role in [Role::Server, Role::Client] {
        // 256 MiB in equal parts against 64 MiB: the first of 2 parts passes the limit, and
        // the 16th or 17th of 64.
        for (pieces, most) in [(2, 1), (64, 17)] {
            let chunk = bomb.len().div_ceil(pieces);
            let frames: Vec<Vec<u8>> = bomb
                .chunks(chunk)
                .enumerate()
                .map(|(i, part)| {
                    let b0 = match i {
                        0 => 0x42,
                        i if i + 1 == pieces => 0x80,
                        _ => 0x00,
                    };
                    frame(b0, part, peer(role))
                })
                .collect();
            assert_eq!(frames.len(), pieces);
            let grew = peak_growth(|| {
                let mut c = deflate_connection(role, Config::default());
                let mut fed = 0;
                for f in &frames {
                    c.handle_data(f);
                    fed += 1;
                    match c.poll_event() {
                        None => {}
                        Some(Event::Failed(e)) => {
                            assert_eq!(e.close_code().0, 1009, "{e:?}");
                            break;
                        }
                        Some(other) => panic!("{role:?}, {pieces} frames: {}", describe(&other)),
                    }
                }
                assert!(
                    fed <= most,
                    "{role:?}: failed after {fed} of {pieces} frames"
                );
                assert_close_sent(&mut c, 1009);
            });
            assert!(
                grew <= limit + slack,
                "{role:?}, {pieces} frames: grew {grew} bytes for a {limit}-byte limit"
            );
        }
    }
    drop(bomb);

    // Fault 43, client role, at the default limit: a message that inflates to exactly 64 MiB
    // is delivered whole; one or two bytes more fail with 1009; none holds much more.
    for (size, ok) in [(limit, true), (limit + 1, false), (limit + 2, false)] {
        let wire = frame(0xC2, &deflate_bomb_exact(size), Role::Server);
        let grew = peak_growth(|| {
            let mut c = deflate_connection(Role::Client, Config::default());
            c.handle_data(&wire);
            if ok {
                match c.poll_event() {
                    Some(Event::Message(Message::Binary(b))) => {
                        assert_eq!(b.len(), size);
                        assert!(b.iter().all(|&x| x == 0));
                    }
                    other => panic!("{size}: {:?}", other.as_ref().map(describe)),
                }
                assert_eq!(c.state(), State::Open);
            } else {
                assert_failed_with(&mut c, 1009);
            }
        });
        assert!(
            grew <= limit + slack,
            "{size}: grew {grew} bytes for a {limit}-byte limit"
        );
    }
}

/// `len` zeros (a multiple of 1 MiB), compressed as a permessage-deflate payload (sync flush,
/// tail removed).
fn deflate_bomb(len: usize) -> Vec<u8> {
    assert_eq!(len % (1 << 20), 0);
    deflate_bomb_exact(len)
}

/// `len` zeros, compressed as a permessage-deflate payload (sync flush, tail removed).
fn deflate_bomb_exact(len: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(512 << 10);
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        left -= n;
        let flush = if left == 0 {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let before = c.total_in();
        c.compress_vec(&zeros[..n], &mut out, flush).unwrap();
        assert_eq!(c.total_in() - before, n as u64, "output room suffices");
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}
