//! The memory of `wsharp echo` as the operating system sees it (peak RSS), under a deflate
//! bomb: fault catalogue item 42 at the process level.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};

/// A field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> usize {
    let name = field.trim_end_matches(':');
    wsharp_testkit::memory::status_kib(pid, name)
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status")) as usize
}

/// `len` zeros as a permessage-deflate payload.
fn bomb(len: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(512 << 10);
    let chunks = len / zeros.len();
    for i in 0..chunks {
        let flush = if i + 1 == chunks {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        c.compress_vec(&zeros, &mut out, flush).unwrap();
    }
    out.truncate(out.len() - 4);
    out
}

#[test]
fn a_deflate_bomb_costs_wsharp_echo_at_most_the_message_limit() {
    // As shipped (mimalloc's defaults): its arenas commit eagerly, which measured here as
    // 10 to 14 MiB of peak RSS over what the library holds (78 MiB in all, where 138 MiB was
    // measured before message buffers stopped doubling past 1 MiB).
    bomb_peak_rss(&[], 20 << 20);
    // With mimalloc committing on demand, the process peak is the library's own bound: the
    // limit, the 1 MiB growth step and the read buffers.
    bomb_peak_rss(&[("MIMALLOC_ARENA_EAGER_COMMIT", "0")], 4 << 20);
}

/// Sends a 256 MiB deflate bomb to a `wsharp echo` started with `env`, and checks that its peak
/// RSS grew by at most the 64 MiB message limit plus `slack`.
fn bomb_peak_rss(env: &[(&str, &str)], slack: usize) {
    let (server, port) =
        common::start_with_env(&["echo", "--listen", "127.0.0.1:0"], "ws://127.0.0.1:", env);
    let pid = server.0.id();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("permessage-deflate"), "{head}");

    // 256 MiB of zeros in about 255 KiB against the default 64 MiB message limit.
    let payload = bomb(256 << 20);
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![0xC2, 0x80 | 127];
    frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    // Peak RSS from here on (writing 5 to clear_refs resets VmHWM to the current RSS).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let before = status_kib(pid, "VmRSS:");
    tcp.write_all(&frame).unwrap();
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    assert!(
        reply.len() >= 4 && reply[0] == 0x88 && reply[2..4] == 1009u16.to_be_bytes(),
        "a close with 1009: {:02x?}",
        &reply[..reply.len().min(16)]
    );
    let peak = status_kib(pid, "VmHWM:");
    let grew = peak.saturating_sub(before) << 10;
    let limit = 64 << 20;
    let bound = limit + slack;
    eprintln!(
        "{env:?}: peak RSS grew {} KiB for a {} KiB limit",
        grew >> 10,
        limit >> 10
    );
    assert!(
        grew <= bound,
        "peak RSS grew {grew} bytes for a {limit}-byte limit"
    );
}
