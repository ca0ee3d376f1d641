//! Limits hold before memory is allocated: a counting global allocator measures the peak.
//! One test function, so no other test allocates at the same time.

use wsharp_proto::deflate::Deflate;
use wsharp_proto::growth::GROWTH_STEP_MAX;
use wsharp_proto::{Config, Connection, Event, Limits, Message, Role, State};

wsharp_testkit::install_counting_allocator!();
use wsharp_testkit::memory::peak_growth;

fn masked_header(b0: u8, len: u64) -> Vec<u8> {
    let mut h = vec![b0, 0xFF];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[1, 2, 3, 4]);
    h
}

#[test]
fn limits_are_checked_before_allocating() {
    // Fault 26: a 2^63-1 length is refused with 1009 without allocating for it.
    let grew = peak_growth(|| {
        let mut c = Connection::new(Role::Server, Config::default());
        c.handle_data(&masked_header(0x82, (1 << 63) - 1));
        while c.poll_event().is_some() {}
        assert_eq!(c.state(), State::Closed);
        assert_eq!(c.failure().unwrap().close_code().0, 1009);
    });
    assert!(grew < 64 << 10, "grew {grew} bytes");

    // A frame just over a 1 MiB message limit: refused at its header.
    let grew = peak_growth(|| {
        let limits = Limits::default().max_message_size(1 << 20);
        let mut c = Connection::new(Role::Server, Config::default().limits(limits));
        c.handle_data(&masked_header(0x82, (1 << 20) + 1));
        while c.poll_event().is_some() {}
        assert_eq!(c.failure().unwrap().close_code().0, 1009);
    });
    assert!(grew < 64 << 10, "grew {grew} bytes");

    // Faults 34 and 42: under the default limits (64 MiB messages), each way a message can
    // grow holds at most the limit plus `GROWTH_STEP_MAX`, plus the frame being read (and the
    // receive buffer it was copied into here). Reallocation counts its old and new block at once.
    let limit = Limits::default().max_message_size;
    let slack = GROWTH_STEP_MAX + 3 * (1 << 20);

    // 1 000 frames of 1 MiB, FIN only on the last: 1009 on the 65th, peak near the limit.
    let frame_len = 1 << 20;
    let mut frame = masked_header(0x02, frame_len as u64);
    frame.extend(std::iter::repeat_n(0u8, frame_len));
    let mut continuation = frame.clone();
    continuation[0] = 0x00;
    let grew = peak_growth(|| {
        let mut c = Connection::new(Role::Server, Config::default());
        c.handle_data(&frame);
        let mut sent = 1;
        while c.state() == State::Open && sent < 1000 {
            c.handle_data(&continuation);
            sent += 1;
            while c.poll_event().is_some() {}
        }
        assert_eq!(sent, 65);
        assert_eq!(c.failure().unwrap().close_code().0, 1009);
    });
    assert!(
        grew <= limit + slack,
        "grew {grew} bytes for a {limit}-byte limit"
    );

    // A 64 MiB message in 64 fragments is accepted, and held once.
    let mut last = frame.clone();
    last[0] = 0x80;
    let grew = peak_growth(|| {
        let mut c = Connection::new(Role::Server, Config::default());
        c.handle_data(&frame);
        for _ in 1..63 {
            c.handle_data(&continuation);
            assert_eq!(c.poll_event(), None);
        }
        c.handle_data(&last);
        match c.poll_event() {
            Some(Event::Message(Message::Binary(data))) => assert_eq!(data.len(), limit),
            other => panic!("expected the message, got {other:?}"),
        }
    });
    assert!(
        grew <= limit + slack,
        "grew {grew} bytes for a {limit}-byte message"
    );

    // A deflate bomb: 256 MiB of zeros in about 255 KiB, against the 64 MiB limit: 1009, and
    // the inflate buffer stops at the limit.
    let bomb = deflate_bomb(256 << 20);
    assert!(bomb.len() < 300 << 10, "{} bytes", bomb.len());
    let mut wire = masked_header(0xC2, bomb.len() as u64);
    let start = wire.len();
    wire.extend_from_slice(&bomb);
    wsharp_proto::frame::apply_mask(&mut wire[start..], [1, 2, 3, 4], 0);
    let grew = peak_growth(|| {
        let mut c = Connection::new(Role::Server, Config::default());
        let negotiated = Deflate::default()
            .negotiate(&["permessage-deflate"])
            .unwrap()
            .0;
        c.set_deflate(&negotiated, &Deflate::default());
        c.handle_data(&wire);
        while c.poll_event().is_some() {}
        assert_eq!(c.failure().unwrap().close_code().0, 1009);
    });
    assert!(
        grew <= limit + slack,
        "grew {grew} bytes for a {limit}-byte limit"
    );
}

/// `len` zeros, compressed as a permessage-deflate payload (sync flush, tail removed).
fn deflate_bomb(len: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(512 << 10);
    for i in 0..len / zeros.len() {
        let flush = if i + 1 == len / zeros.len() {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let before = c.total_in();
        c.compress_vec(&zeros, &mut out, flush).unwrap();
        assert_eq!(
            c.total_in() - before,
            zeros.len() as u64,
            "output room suffices"
        );
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}
