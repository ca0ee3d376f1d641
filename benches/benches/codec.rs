//! Frame decoding cost: parse + unmask of one masked binary frame (64 KiB and 16 B) by
//! wsharp-proto's header parser and mask, by a whole wsharp `Connection` (copy in, parse, unmask,
//! message out), and by tungstenite's `WebSocket` (the same whole path), beside a plain 64 KiB
//! `copy_from_slice` as the memory-bandwidth yardstick.
//!
//! Then the encoding of a 16-byte server frame, beside tungstenite's.
//!
//! `cargo bench -p wsharp-bench --bench codec -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::io::{IoSlice, Read, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wsharp_proto::frame::{apply_mask, parse_header};
use wsharp_proto::{Config, Connection, Event, Message, Role};

/// One masked binary frame of `len` payload bytes, as a client sends it.
fn masked_frame(len: usize) -> Vec<u8> {
    let mut client = Connection::new(Role::Client, Config::default());
    client.send(Message::binary(vec![0xa5; len])).unwrap();
    let mut slices = [IoSlice::new(&[]); 8];
    let n = client.transmit_slices(&mut slices);
    slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
}

/// A stream that yields the same frame over and over, at most one frame per read (as a socket
/// does when small messages arrive one at a time), and swallows writes. tungstenite zero-fills
/// up to 128 KiB of its read buffer before each read, which dominates its small-frame figure.
struct Replay {
    wire: Vec<u8>,
    pos: usize,
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.wire[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos = (self.pos + n) % self.wire.len();
        Ok(n)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn decode(c: &mut Criterion) {
    for (name, len) in [("frame_64KiB", 64 << 10), ("frame_16B", 16)] {
        let wire = masked_frame(len);
        let mut group = c.benchmark_group(name);
        group.throughput(if len > 16 {
            Throughput::Bytes(len as u64)
        } else {
            Throughput::Elements(1)
        });

        let mut dst = vec![0; len];
        group.bench_function("memcpy", |b| {
            b.iter(|| dst.copy_from_slice(black_box(&wire[wire.len() - len..])));
        });

        // Unmasking twice restores the payload, so the frame is decoded in place, no copy.
        let mut buf = wire.clone();
        group.bench_function("wsharp_parse_unmask", |b| {
            b.iter(|| {
                let (header, at) = parse_header(black_box(&buf), Role::Server, 0, usize::MAX)
                    .unwrap()
                    .unwrap();
                apply_mask(&mut buf[at..], header.mask.unwrap(), 0);
                black_box(&buf);
            });
        });

        let mut conn = Connection::new(Role::Server, Config::default());
        group.bench_function("wsharp_connection", |b| {
            b.iter(|| {
                conn.handle_data(black_box(&wire));
                let Some(Event::Message(Message::Binary(data))) = conn.poll_event() else {
                    panic!("no message");
                };
                assert_eq!(data.len(), len);
            });
        });

        let replay = Replay {
            wire: wire.clone(),
            pos: 0,
        };
        let mut ws = tungstenite::WebSocket::from_raw_socket(
            replay,
            tungstenite::protocol::Role::Server,
            None,
        );
        group.bench_function("tungstenite_websocket", |b| {
            b.iter(|| {
                let msg = ws.read().unwrap();
                assert_eq!(msg.len(), len);
            });
        });
        group.finish();
    }
}

/// Encoding one unmasked 16-byte binary frame as a server sends it: wsharp's header encoder plus
/// the payload copy, a whole wsharp `Connection` (`send`, then the bytes taken as written), and
/// tungstenite's `Frame::format`.
fn encode(c: &mut Criterion) {
    let payload = bytes::Bytes::from_static(&[0xa5; 16]);
    let mut group = c.benchmark_group("encode_16B");
    group.throughput(Throughput::Elements(1));

    let mut out = bytes::BytesMut::with_capacity(64);
    group.bench_function("wsharp_encode_header", |b| {
        b.iter(|| {
            out.clear();
            let header = wsharp_proto::frame::FrameHeader {
                fin: true,
                rsv: 0,
                opcode: wsharp_proto::frame::OpCode::Binary,
                mask: None,
                payload_len: payload.len() as u64,
            };
            wsharp_proto::frame::encode_header(&header, &mut out);
            out.extend_from_slice(black_box(&payload));
            black_box(&out);
        });
    });

    let mut conn = Connection::new(Role::Server, Config::default());
    group.bench_function("wsharp_connection", |b| {
        b.iter(|| {
            conn.send(Message::Binary(black_box(payload.clone())))
                .unwrap();
            let n = conn.transmit_len();
            conn.advance_transmit(n);
        });
    });

    let mut wire = Vec::with_capacity(64);
    group.bench_function("tungstenite_frame", |b| {
        use tungstenite::protocol::frame::{Frame, coding};
        b.iter(|| {
            wire.clear();
            let frame = Frame::message(
                black_box(payload.clone()),
                coding::OpCode::Data(coding::Data::Binary),
                true,
            );
            frame.format(&mut wire).unwrap();
            black_box(&wire);
        });
    });
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
