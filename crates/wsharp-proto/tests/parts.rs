//! Messages sent and received in parts: fragment by fragment, compressed as one message, text
//! checked across parts, limits kept over the whole message.

use std::io::IoSlice;

use bytes::Bytes;
use wsharp_proto::deflate::Deflate;
use wsharp_proto::frame::{FrameHeader, OpCode, parse_header};
use wsharp_proto::{
    Config, Connection, Event, Failure, Limits, Message, MessageKind, Part, ProtocolError, Role,
    SendError,
};

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

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// The headers of the frames a client sent.
fn headers(mut wire: &[u8]) -> Vec<FrameHeader> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let (h, n) = parse_header(wire, Role::Server, 0b100, usize::MAX)
            .unwrap()
            .unwrap();
        out.push(h);
        wire = &wire[n + h.payload_len as usize..];
    }
    out
}

fn with_deflate(role: Role, config: Config) -> Connection {
    let mut c = Connection::new(role, config);
    let deflate = Deflate::default().threshold(64);
    let (negotiated, _) = deflate.negotiate(&["permessage-deflate"]).unwrap();
    c.set_deflate(&negotiated, &deflate);
    c
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_message_sent_in_parts_arrives_whole_with_pings_between_its_fragments() {
    let mut client = Connection::new(Role::Client, Config::default());
    let data = pattern(100_000);
    for (i, chunk) in data.chunks(30_000).enumerate() {
        let last = (i + 1) * 30_000 >= data.len();
        client
            .send_part(MessageKind::Binary, Bytes::copy_from_slice(chunk), last)
            .unwrap();
        if i == 0 {
            assert!(client.is_sending_parts());
            assert_eq!(
                client.send(Message::text("no")),
                Err(SendError::MessageInProgress)
            );
            client
                .send(Message::Ping(Bytes::from_static(b"mid")))
                .unwrap();
        }
    }
    assert!(!client.is_sending_parts());
    let wire = output(&mut client);
    let frames: Vec<_> = headers(&wire)
        .iter()
        .map(|h| (h.opcode, h.fin, h.payload_len))
        .collect();
    assert_eq!(
        frames,
        [
            (OpCode::Binary, false, 30_000),
            (OpCode::Ping, true, 3),
            (OpCode::Continuation, false, 30_000),
            (OpCode::Continuation, false, 30_000),
            (OpCode::Continuation, true, 10_000)
        ]
    );
    let mut server = Connection::new(Role::Server, Config::default());
    server.handle_data(&wire);
    assert_eq!(events(&mut server), [Event::Message(Message::binary(data))]);
}

#[test]
fn text_parts_are_checked_as_one_stream() {
    let mut c = Connection::new(Role::Client, Config::default());
    assert_eq!(
        c.send_part(MessageKind::Text, Bytes::from_static(b"\xff"), false),
        Err(SendError::InvalidUtf8)
    );
    assert!(!c.is_sending_parts(), "a refused first part opens nothing");
    assert!(!c.has_transmit());
    c.send_part(MessageKind::Text, Bytes::from_static(b"\xe2\x82"), false)
        .unwrap();
    assert_eq!(
        c.send_part(MessageKind::Binary, Bytes::new(), true),
        Err(SendError::PartKindChanged {
            started: MessageKind::Text,
            part: MessageKind::Binary
        })
    );
    // A last part that leaves the character unfinished is refused; the message stays open.
    assert_eq!(
        c.send_part(MessageKind::Text, Bytes::new(), true),
        Err(SendError::InvalidUtf8)
    );
    assert_eq!(
        c.send_part(MessageKind::Text, Bytes::from_static(b"\x41"), true),
        Err(SendError::InvalidUtf8),
        "a byte that cannot continue the character"
    );
    c.send_part(MessageKind::Text, Bytes::from_static(b"\xac = euro"), true)
        .unwrap();
    let mut server = Connection::new(Role::Server, Config::default());
    server.handle_data(&output(&mut c));
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::text("€ = euro"))]
    );
}

#[test]
fn a_close_may_end_a_message_in_parts_and_nothing_follows_it() {
    let mut c = Connection::new(Role::Client, Config::default());
    c.send_part(MessageKind::Binary, Bytes::from_static(b"half"), false)
        .unwrap();
    c.close(None).unwrap();
    assert_eq!(
        c.send_part(MessageKind::Binary, Bytes::from_static(b"rest"), true),
        Err(SendError::SendAfterClosing)
    );
}

#[test]
fn parts_are_compressed_as_one_message_with_rsv1_on_the_first_frame_only() {
    let mut client = with_deflate(Role::Client, Config::default());
    let text = "a streamed and compressible line of text\n".repeat(5_000);
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(8_192).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        client
            .send_part(
                MessageKind::Text,
                Bytes::copy_from_slice(chunk),
                i + 1 == chunks.len(),
            )
            .unwrap();
    }
    let wire = output(&mut client);
    assert!(
        wire.len() < text.len() / 20,
        "compressed: {} of {}",
        wire.len(),
        text.len()
    );
    let hs = headers(&wire);
    assert_eq!(hs[0].rsv, 0b100);
    assert!(hs[1..].iter().all(|h| h.rsv == 0));
    assert!(hs.last().unwrap().fin);
    let mut server = with_deflate(Role::Server, Config::default());
    server.handle_data(&wire);
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::text(text.clone()))]
    );
    // The next message on the same context still inflates.
    client
        .send_part(MessageKind::Text, Bytes::from(text.clone()), true)
        .unwrap();
    server.handle_data(&output(&mut client));
    assert_eq!(events(&mut server), [Event::Message(Message::text(text))]);
}

#[test]
fn a_single_small_part_follows_the_compression_threshold() {
    let mut client = with_deflate(Role::Client, Config::default());
    client
        .send_part(MessageKind::Binary, Bytes::from_static(b"tiny"), true)
        .unwrap();
    let wire = output(&mut client);
    assert_eq!(
        headers(&wire)[0].rsv,
        0,
        "under the threshold: not compressed"
    );
}

/// Parts received: their data joined, and whether each was the last.
fn received_parts(conn: &mut Connection) -> (Vec<u8>, Vec<bool>, Vec<usize>) {
    let (mut data, mut lasts, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for event in events(conn) {
        match event {
            Event::Part(Part { data: d, last, .. }) => {
                sizes.push(d.len());
                data.extend_from_slice(&d);
                lasts.push(last);
            }
            other => panic!("{other:?}"),
        }
    }
    (data, lasts, sizes)
}

#[test]
fn a_large_frame_is_received_in_pieces_of_about_the_read_size() {
    let read = 4_096;
    let mut client = Connection::new(Role::Client, Config::default());
    let data = pattern(1 << 20);
    client.send(Message::binary(data.clone())).unwrap();
    let wire = output(&mut client);
    let mut server = Connection::new(Role::Server, Config::default().read_buffer_size(read));
    server.set_receive_parts(true);
    let mut got = Vec::new();
    let mut largest_buffer = 0;
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let room = server.recv_buffer();
        let n = rest.len().min(room.capacity() - room.len()).min(read);
        room.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        largest_buffer = largest_buffer.max(server.buffer_capacity());
        while let Some(event) = server.poll_event() {
            let Event::Part(part) = event else {
                panic!("{event:?}")
            };
            assert!(server.is_receiving_parts() != part.last);
            got.push(part);
        }
    }
    assert!(got.len() > 100, "{} parts", got.len());
    assert!(got.iter().all(|p| p.data.len() <= 2 * read + 64));
    assert_eq!(got.iter().filter(|p| p.last).count(), 1);
    assert!(got.last().unwrap().last);
    let joined: Vec<u8> = got.iter().flat_map(|p| p.data.iter().copied()).collect();
    assert_eq!(joined, data);
    assert!(
        largest_buffer <= 8 * read,
        "held at most a few reads: {largest_buffer}"
    );
}

#[test]
fn fragments_are_parts_and_the_message_limit_still_counts_their_total() {
    let limits = Limits::default().max_message_size(10_000);
    let mut client = Connection::new(Role::Client, Config::default());
    for i in 0..3 {
        client
            .send_part(MessageKind::Binary, Bytes::from(vec![i; 3_000]), i == 2)
            .unwrap();
    }
    let mut server = Connection::new(Role::Server, Config::default().limits(limits));
    server.set_receive_parts(true);
    server.handle_data(&output(&mut client));
    let (data, lasts, _) = received_parts(&mut server);
    assert_eq!(data.len(), 9_000);
    assert_eq!(lasts, [false, false, true]);

    for i in 0..4 {
        client
            .send_part(MessageKind::Binary, Bytes::from(vec![i; 3_000]), i == 3)
            .unwrap();
    }
    server.handle_data(&output(&mut client));
    let events = events(&mut server);
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(matches!(
        events[3],
        Event::Failed(Failure::Protocol(ProtocolError::MessageTooBig { .. }))
    ));
}

#[test]
fn compressed_parts_are_inflated_frame_by_frame_under_the_limit() {
    let text = "compressed parts, inflated one frame at a time; ".repeat(4_000);
    let mut client = with_deflate(Role::Client, Config::default());
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(20_000).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        client
            .send_part(
                MessageKind::Text,
                Bytes::copy_from_slice(chunk),
                i + 1 == chunks.len(),
            )
            .unwrap();
    }
    let wire = output(&mut client);
    let mut server = with_deflate(Role::Server, Config::default());
    server.set_receive_parts(true);
    server.handle_data(&wire);
    let (data, lasts, _) = received_parts(&mut server);
    assert_eq!(data, text.as_bytes());
    assert_eq!(lasts.last(), Some(&true));

    // The same message against a limit under its inflated size fails with 1009.
    let limits = Limits::default().max_message_size(text.len() - 1);
    let mut strict = with_deflate(Role::Server, Config::default().limits(limits));
    strict.set_receive_parts(true);
    strict.handle_data(&wire);
    let events = events(&mut strict);
    assert!(
        matches!(
            events.last(),
            Some(Event::Failed(Failure::Protocol(
                ProtocolError::MessageTooBig { .. }
            )))
        ),
        "{events:?}"
    );
    let delivered: usize = events
        .iter()
        .filter_map(|e| match e {
            Event::Part(p) => Some(p.data.len()),
            _ => None,
        })
        .sum();
    assert!(delivered < text.len());
}

#[test]
fn invalid_text_fails_before_the_part_holding_it_is_delivered() {
    let mut client = Connection::new(Role::Client, Config::default());
    client
        .send_part(MessageKind::Binary, Bytes::from_static(b"fine"), false)
        .unwrap();
    let mut wire = output(&mut client);
    // Turn the binary first frame into text, then a continuation with a bad byte.
    wire[0] = (wire[0] & 0xF0) | 0x01;
    let mut bad = Connection::new(Role::Client, Config::default());
    bad.send(Message::binary(&b"\xc0\xaf"[..])).unwrap();
    let mut cont = output(&mut bad);
    cont[0] = 0x80; // FIN, continuation
    wire.extend_from_slice(&cont);
    let mut server = Connection::new(Role::Server, Config::default());
    server.set_receive_parts(true);
    server.handle_data(&wire);
    let events = events(&mut server);
    assert!(matches!(&events[0], Event::Part(p) if p.data == "fine" && !p.last));
    assert!(matches!(
        events[1],
        Event::Failed(Failure::Protocol(ProtocolError::InvalidUtf8))
    ));
    assert_eq!(events.len(), 2);
}

#[test]
fn the_way_a_message_is_received_is_fixed_at_its_first_frame() {
    let mut client = Connection::new(Role::Client, Config::default());
    client
        .send_part(MessageKind::Binary, Bytes::from_static(b"one"), false)
        .unwrap();
    let mut server = Connection::new(Role::Server, Config::default());
    server.handle_data(&output(&mut client));
    assert_eq!(events(&mut server), []);
    server.set_receive_parts(true);
    client
        .send_part(MessageKind::Binary, Bytes::from_static(b"two"), true)
        .unwrap();
    client.send(Message::binary(&b"three"[..])).unwrap();
    server.handle_data(&output(&mut client));
    assert_eq!(
        events(&mut server),
        [
            Event::Message(Message::binary(&b"onetwo"[..])),
            Event::Part(Part {
                kind: MessageKind::Binary,
                data: Bytes::from_static(b"three"),
                last: true
            })
        ]
    );
}

#[test]
fn a_compressed_message_whose_bytes_the_compressor_took_stays_open_on_a_refused_part() {
    let mut client = with_deflate(Role::Client, Config::default());
    // Repetitive text: zlib keeps it all, nothing is written yet.
    client
        .send_part(MessageKind::Text, Bytes::from("aaaa".repeat(1000)), false)
        .unwrap();
    assert!(!client.has_transmit(), "held by the compressor");
    assert_eq!(
        client.send_part(MessageKind::Text, Bytes::from_static(b"\xff"), false),
        Err(SendError::InvalidUtf8)
    );
    // Dropping it would leave its bytes in the compressor, in front of the next message.
    assert!(client.is_sending_parts());
    assert_eq!(
        client.send(Message::text("next")),
        Err(SendError::MessageInProgress)
    );
    client
        .send_part(MessageKind::Text, Bytes::from_static(b"!"), true)
        .unwrap();
    let mut server = with_deflate(Role::Server, Config::default());
    server.handle_data(&output(&mut client));
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::text("aaaa".repeat(1000) + "!"))]
    );
}
