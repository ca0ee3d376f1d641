//! Feeds arbitrary bytes, in arbitrary read sizes, to a server and a client connection with
//! small limits; checks that nothing panics, output stays bounded, and a failure always queues
//! exactly one close frame with a sendable code.
#![no_main]

use std::io::IoSlice;

use libfuzzer_sys::fuzz_target;
use wsharp_proto::deflate::Deflate;
use wsharp_proto::{Config, Connection, Event, Limits, Message, Role, State};

fn run(role: Role, data: &[u8]) {
    let Some((&split, data)) = data.split_first() else { return };
    let chunk = usize::from(split % 64) + 1;
    let limits = Limits::default().max_frame_size(4096).max_message_size(8192);
    let config = Config::default().limits(limits).write_high_water(4096).emit_control_frames(split & 1 == 0);
    let mut conn = Connection::new(role, config);
    if split & 2 == 0 {
        // Exercise permessage-deflate too: RSV1 frames are inflated, bounded by the limit.
        let deflate = Deflate::default();
        let negotiated = deflate.negotiate(&["permessage-deflate"]).expect("plain offer").0;
        conn.set_deflate(&negotiated, &deflate);
    }
    let mut total_out = 0usize;
    for piece in data.chunks(chunk) {
        conn.handle_data(piece);
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m @ (Message::Text(_) | Message::Binary(_))) => {
                    assert!(m.len() <= 8192);
                    let _ = conn.send(m);
                }
                Event::Failed(e) => assert!(e.close_code().0 >= 1000),
                _ => {}
            }
        }
        let mut slices = [IoSlice::new(&[]); 8];
        let n = conn.transmit_slices(&mut slices);
        let len: usize = slices[..n].iter().map(|s| s.len()).sum();
        conn.advance_transmit(len);
        total_out += len;
        assert!(conn.transmit_len() <= 4096 + 8192 + 64);
    }
    conn.handle_eof();
    while conn.poll_event().is_some() {}
    assert_eq!(conn.state(), State::Closed);
    let _ = total_out;
}

fuzz_target!(|data: &[u8]| {
    run(Role::Server, data);
    run(Role::Client, data);
});
