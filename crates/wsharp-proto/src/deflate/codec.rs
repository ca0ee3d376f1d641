//! The per-message deflate codec (RFC 7692 §7.2), bounded while inflating.
//!
//! State is allocated on first use. Without context takeover it is borrowed from a small
//! per-thread pool for one message and given back, so idle connections hold none.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::ProtocolError;
use crate::growth::grown_capacity;

/// The empty stored block a sync flush ends with; stripped on send, put back on receive.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];
/// Inflated output grows by at least this much at a time.
const CHUNK: usize = 32 << 10;
/// Most idle states kept per thread and kind.
const POOL_MAX: usize = 32;

thread_local! {
    static COMPRESSORS: RefCell<Vec<(u32, u8, Compress)>> = const { RefCell::new(Vec::new()) };
    static DECOMPRESSORS: RefCell<Vec<Decompress>> = const { RefCell::new(Vec::new()) };
}

/// Compresses outgoing messages.
pub struct Deflater {
    level: u32,
    window_bits: u8,
    no_context_takeover: bool,
    state: Option<Compress>,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("level", &self.level)
            .field("window_bits", &self.window_bits)
            .field("no_context_takeover", &self.no_context_takeover)
            .field("allocated", &self.state.is_some())
            .finish()
    }
}

impl Deflater {
    /// A compressor with this level (at most 9), window (9..=15) and context policy.
    pub fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Self {
        Self {
            // zlib knows levels 0..=9 only.
            level: level.min(9),
            window_bits: window_bits.clamp(9, 15),
            no_context_takeover,
            state: None,
        }
    }

    /// Whether compression state is held now (between messages: only with context takeover).
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Compresses one whole message into the payload to send (the sync-flush tail removed).
    pub fn compress(&mut self, input: &[u8]) -> Bytes {
        self.compress_part(input, true)
    }

    /// Compresses one part of a message sent in parts; `last` ends the message (its payload
    /// then ends without the sync-flush tail). Parts before the last are not flushed, so their
    /// output may be empty until zlib has a block ready; the state is held between parts.
    pub fn compress_part(&mut self, input: &[u8], last: bool) -> Bytes {
        let mut state = self.state.take().unwrap_or_else(|| self.take_state());
        let flush = if last {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            let before = state.total_in();
            // With enough output room a sync flush cannot fail; a full buffer is retried.
            let _ = state.compress_vec(&input[consumed..], &mut out, flush);
            consumed += (state.total_in() - before) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        if !last {
            self.state = Some(state);
            return Bytes::from(out);
        }
        // A sync flush ends with the tail, except when it had nothing new to flush.
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            // RFC 7692 §7.2.3.6: an empty message may be sent as a single 0x00 byte.
            out.push(0);
        }
        if self.no_context_takeover {
            state.reset();
            give_compressor(self.level, self.window_bits, state);
        } else {
            self.state = Some(state);
        }
        Bytes::from(out)
    }

    fn take_state(&self) -> Compress {
        let pooled = COMPRESSORS.with(|p| {
            let mut p = p.borrow_mut();
            let i = p
                .iter()
                .position(|(l, b, _)| *l == self.level && *b == self.window_bits)?;
            Some(p.swap_remove(i).2)
        });
        pooled.unwrap_or_else(|| {
            Compress::new_with_window_bits(Compression::new(self.level), false, self.window_bits)
        })
    }
}

fn give_compressor(level: u32, bits: u8, state: Compress) {
    COMPRESSORS.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push((level, bits, state));
        }
    });
}

/// Inflates incoming messages, frame by frame, never past a size limit.
///
/// Most senders end each message with a sync flush (RFC 7692 §7.2.1), so the stream runs on
/// from message to message. Some (websocket-sharp, .NET's `DeflateStream`) end each message as a
/// complete DEFLATE stream, its last block marked final, with bytes after it; RFC 7692 §7.2.3.3
/// allows that. Once a final block is inflated, the rest of the message is ignored and the
/// next message starts a new stream. Under context takeover that stream may refer back into
/// earlier messages, so from the first final block on the inflater keeps the last 32 KiB of
/// inflated data (the largest window) and hands it to each new stream as its dictionary.
pub struct Inflater {
    no_context_takeover: bool,
    state: Option<Decompress>,
    /// The current message's stream ended with a final block: ignore the rest of the message.
    ended: bool,
    /// Under context takeover, once the peer has ended a stream: the dictionary of its next one.
    window: Option<Box<Window>>,
}

/// The last [`WINDOW`] bytes inflated, in order.
#[derive(Debug, Default)]
struct Window(Vec<u8>);

/// The largest DEFLATE window (RFC 1951 §2: distances reach back at most 32 768 bytes).
const WINDOW: usize = 32 << 10;

impl Window {
    /// Appends `data`, keeping only the last [`WINDOW`] bytes.
    fn push(&mut self, data: &[u8]) {
        if data.len() >= WINDOW {
            self.0.clear();
            self.0.extend_from_slice(&data[data.len() - WINDOW..]);
            return;
        }
        let excess = (self.0.len() + data.len()).saturating_sub(WINDOW);
        self.0.drain(..excess);
        self.0.extend_from_slice(data);
    }
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("allocated", &self.state.is_some())
            .field("ended", &self.ended)
            .field("window", &self.window.as_ref().map(|w| w.0.len()))
            .finish()
    }
}

impl Inflater {
    /// A decompressor; `no_context_takeover` when the peer resets its compressor per message.
    /// It always inflates with a 15-bit window, which accepts every smaller one.
    pub fn new(no_context_takeover: bool) -> Self {
        Self {
            no_context_takeover,
            state: None,
            ended: false,
            window: None,
        }
    }

    /// Whether decompression state is held now.
    pub fn is_allocated(&self) -> bool {
        self.state.is_some() || self.window.is_some()
    }

    /// Inflates one frame's payload into `out`; with `fin`, also the message's end. `out` holds
    /// the message inflated so far (empty at its first frame). Output is produced in bounded
    /// chunks and checked against `limit` as it grows, so a bomb stops within one chunk of the
    /// limit, and `out` never reserves more than `limit + 1` bytes.
    ///
    /// # Errors
    /// [`ProtocolError::MessageTooBig`] past `limit`; [`ProtocolError::InvalidCompressedData`]
    /// for a corrupt stream. Either way the state is discarded.
    pub fn inflate(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        let mut result = Ok(());
        if !self.ended {
            result = self.run(input, out, limit);
            if fin && result.is_ok() && !self.ended {
                result = self.run(&TAIL, out, limit);
            }
        }
        if result.is_err() {
            self.state = None;
            self.window = None;
            self.ended = false;
            return result;
        }
        if fin {
            self.end_message(out);
        }
        result
    }

    /// Readies the state for the next message.
    fn end_message(&mut self, message: &[u8]) {
        let ended = std::mem::take(&mut self.ended);
        if self.no_context_takeover {
            if let Some(mut state) = self.state.take() {
                state.reset(false);
                DECOMPRESSORS.with(|p| {
                    let mut p = p.borrow_mut();
                    if p.len() < POOL_MAX {
                        p.push(state);
                    }
                });
            }
            return;
        }
        if ended {
            // The peer ends its streams: keep what the next one may refer back to.
            self.window.get_or_insert_with(Box::default).push(message);
            if let Some(state) = self.state.as_mut() {
                state.reset(false);
                let window = self.window.as_ref().expect("just set");
                // A raw inflater takes a dictionary right after a reset; it cannot refuse one.
                let _ = state.set_dictionary(&window.0);
            }
        } else if let Some(window) = self.window.as_mut() {
            window.push(message);
        }
    }

    /// Inflates `input` into `out`. Stops at the end of a final block and sets `ended`.
    fn run(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), ProtocolError> {
        let state = self.state.get_or_insert_with(|| {
            DECOMPRESSORS
                .with(|p| p.borrow_mut().pop())
                .unwrap_or_else(|| Decompress::new_with_window_bits(false, 15))
        });
        let mut consumed = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(ProtocolError::MessageTooBig {
                        size: out.len() as u64,
                        max: limit,
                    });
                }
                // Never past one byte over the limit: that byte tells a message at the limit
                // from one past it.
                let cap = limit.saturating_add(1);
                let target = grown_capacity(out.capacity(), (out.len() + CHUNK).min(cap), cap);
                out.reserve_exact(target - out.len());
            }
            let (before_in, before_out) = (state.total_in(), state.total_out());
            let status = state
                .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::InvalidCompressedData("corrupt deflate stream"))?;
            consumed += (state.total_in() - before_in) as usize;
            let produced = state.total_out() - before_out;
            if out.len() > limit {
                return Err(ProtocolError::MessageTooBig {
                    size: out.len() as u64,
                    max: limit,
                });
            }
            match status {
                Status::StreamEnd => {
                    // A final block ends the message's data (RFC 7692 §7.2.3.3): what follows
                    // in this message (the sync tail, a padding byte) is ignored.
                    self.ended = true;
                    return Ok(());
                }
                Status::Ok | Status::BufError => {
                    if consumed == input.len() && out.len() < out.capacity() {
                        return Ok(());
                    }
                    if produced == 0
                        && consumed < input.len()
                        && out.len() < out.capacity()
                        && status == Status::BufError
                    {
                        return Err(ProtocolError::InvalidCompressedData(
                            "stalled deflate stream",
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(deflater: &mut Deflater, inflater: &mut Inflater, msg: &[u8]) -> Vec<u8> {
        let wire = deflater.compress(msg);
        let mut out = Vec::new();
        inflater.inflate(&wire, true, &mut out, 1 << 30).unwrap();
        out
    }

    #[test]
    fn round_trips_with_and_without_context_takeover() {
        for no_ctx in [false, true] {
            for bits in 9..=15 {
                let mut d = Deflater::new(6, bits, no_ctx);
                let mut i = Inflater::new(no_ctx);
                for n in 0..20 {
                    let msg = format!("message {n} {}", "abc".repeat(n * 40)).into_bytes();
                    assert_eq!(round_trip(&mut d, &mut i, &msg), msg);
                }
                assert_eq!(round_trip(&mut d, &mut i, b""), b"");
                assert_eq!(d.is_allocated(), !no_ctx);
                assert_eq!(i.is_allocated(), !no_ctx);
            }
        }
    }

    #[test]
    fn rfc7692_7_2_3_1_example() {
        // "Hello" compressed without context takeover.
        let mut i = Inflater::new(true);
        let mut out = Vec::new();
        i.inflate(
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            true,
            &mut out,
            100,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        // The same split over two frames.
        let mut out = Vec::new();
        i.inflate(&[0xf2, 0x48, 0xcd], false, &mut out, 100)
            .unwrap();
        i.inflate(&[0xc9, 0xc9, 0x07, 0x00], true, &mut out, 100)
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn fault_42_43_bombs_and_boundaries() {
        let zeros = vec![0u8; 4 << 20];
        let wire = Deflater::new(9, 15, true).compress(&zeros);
        assert!(wire.len() < 8 << 10);
        let mut out = Vec::new();
        let err = Inflater::new(true)
            .inflate(&wire, true, &mut out, 1 << 20)
            .unwrap_err();
        assert!(matches!(err, ProtocolError::MessageTooBig { .. }));
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
        for (limit, ok) in [
            (zeros.len(), true),
            (zeros.len() - 1, false),
            (zeros.len() - 2, false),
        ] {
            let mut out = Vec::new();
            let res = Inflater::new(true).inflate(&wire, true, &mut out, limit);
            assert_eq!(res.is_ok(), ok, "limit {limit}");
            if ok {
                assert_eq!(out.len(), zeros.len());
            }
        }
    }

    #[test]
    fn fault_44_corrupt_streams_fail_cleanly() {
        for bad in [&[0xFF, 0xFF, 0xFF][..], &[0x07, 0xFF]] {
            let mut out = Vec::new();
            let res = Inflater::new(true).inflate(bad, true, &mut out, 1 << 20);
            assert!(
                matches!(res, Err(ProtocolError::InvalidCompressedData(_))),
                "{bad:?}: {res:?}"
            );
        }
        // Corrupt before the final block: still refused.
        let mut out = Vec::new();
        let res = Inflater::new(false).inflate(&[0x07, 0xFF, 0x01, 0x00], true, &mut out, 100);
        assert!(
            matches!(res, Err(ProtocolError::InvalidCompressedData(_))),
            "{res:?}"
        );
    }

    /// A message compressed as a whole DEFLATE stream (final block set), as .NET's
    /// `DeflateStream` and websocket-sharp send it: `dict` primes the compressor with earlier
    /// messages, as a sender that keeps its context across finished streams does.
    fn finished_stream(data: &[u8], dict: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
        if !dict.is_empty() {
            c.set_dictionary(dict).unwrap();
        }
        let mut out = Vec::with_capacity(data.len() + 64);
        loop {
            let status = c
                .compress_vec(data, &mut out, FlushCompress::Finish)
                .unwrap();
            if status == Status::StreamEnd {
                break;
            }
            out.reserve(out.capacity());
        }
        out.extend_from_slice(extra);
        out
    }

    #[test]
    fn rfc7692_7_2_3_3_a_final_block_ends_the_message() {
        // "Hello" as one stored final block: RFC 7692 §7.2.3.3's example.
        let mut out = Vec::new();
        Inflater::new(false)
            .inflate(
                &[
                    0x01, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
                ],
                true,
                &mut out,
                100,
            )
            .unwrap();
        assert_eq!(out, b"Hello");
        // Whatever follows the final block in the message is ignored, in the same frame or
        // in later ones.
        for extra in [
            &b""[..],
            &[0x00],
            &TAIL,
            &[0x00, 0x00, 0xff, 0xff, 0x00],
            b"garbage",
        ] {
            for no_ctx in [false, true] {
                let mut i = Inflater::new(no_ctx);
                for n in 0..3 {
                    let msg = format!("message {n}: {}", "abc".repeat(50));
                    let wire = finished_stream(msg.as_bytes(), b"", extra);
                    let mut out = Vec::new();
                    let (a, b) = wire.split_at(wire.len() / 2);
                    i.inflate(a, false, &mut out, 1 << 20).unwrap();
                    i.inflate(b, false, &mut out, 1 << 20).unwrap();
                    i.inflate(extra, true, &mut out, 1 << 20).unwrap();
                    assert_eq!(out, msg.as_bytes(), "{extra:?} {no_ctx}");
                }
            }
        }
    }

    #[test]
    fn finished_streams_keep_the_window_under_context_takeover() {
        // Each message refers back into the ones before it, across finished streams.
        let mut i = Inflater::new(false);
        let mut history = Vec::new();
        for n in 0..40 {
            let msg = format!(
                "{n}: the same words again and again {}",
                "xyz".repeat(n * 37)
            );
            let dict = &history[history.len().saturating_sub(32 << 10)..];
            let wire = finished_stream(msg.as_bytes(), dict, &[0x00]);
            let mut out = Vec::new();
            i.inflate(&wire, true, &mut out, 1 << 20).unwrap();
            assert_eq!(out, msg.as_bytes(), "message {n}");
            history.extend_from_slice(msg.as_bytes());
        }
        // Sync-flushed messages after finished ones still share the stream's context.
        let mut d = Deflater::new(6, 15, false);
        let mut i = Inflater::new(false);
        let first = b"a first message, finished as a whole stream";
        let mut out = Vec::new();
        i.inflate(&finished_stream(first, b"", b""), true, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(out, first);
        let mut out = Vec::new();
        i.inflate(
            &d.compress(b"then sync-flushed ones"),
            true,
            &mut out,
            1 << 20,
        )
        .unwrap();
        assert_eq!(out, b"then sync-flushed ones");
    }

    #[test]
    fn a_back_reference_past_the_window_without_context_takeover_fails() {
        // The sender refers back into the previous message, but the peer promised to reset.
        let first = b"0123456789abcdefghij0123456789abcdefghij";
        let wire = finished_stream(first, first, b"");
        let mut i = Inflater::new(true);
        let mut out = Vec::new();
        let res = i.inflate(&wire, true, &mut out, 1 << 20);
        assert!(
            matches!(res, Err(ProtocolError::InvalidCompressedData(_))),
            "{res:?}"
        );
    }
}
