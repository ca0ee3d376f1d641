//! The per-message deflate codec (RFC 7692 §7.2), bounded while inflating.
//!
//! State is allocated on first use. Without context takeover it is borrowed from a small
//! per-thread pool for one message and given back, so idle connections hold none.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::ProtocolError;

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
    /// A compressor with this level, window (9..=15) and context policy.
    pub fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Self {
        Self {
            level,
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
        let mut state = self.state.take().unwrap_or_else(|| self.take_state());
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            let before = state.total_in();
            // With enough output room a sync flush cannot fail; a full buffer is retried.
            let _ = state.compress_vec(&input[consumed..], &mut out, FlushCompress::Sync);
            consumed += (state.total_in() - before) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
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
pub struct Inflater {
    no_context_takeover: bool,
    state: Option<Decompress>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("allocated", &self.state.is_some())
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
        }
    }

    /// Whether decompression state is held now.
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Inflates one frame's payload into `out`; with `fin`, also the message's end. Output is
    /// produced in bounded chunks and checked against `limit` as it grows, so a bomb stops
    /// within one chunk of the limit.
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
        let result = self.run(input, out, limit).and_then(|()| {
            if fin {
                self.run(&TAIL, out, limit)
            } else {
                Ok(())
            }
        });
        if result.is_err() {
            self.state = None;
        } else if fin
            && self.no_context_takeover
            && let Some(mut state) = self.state.take()
        {
            state.reset(false);
            DECOMPRESSORS.with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOL_MAX {
                    p.push(state);
                }
            });
        }
        result
    }

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
                let target = (out.capacity() * 2).max(out.len() + CHUNK).min(limit + 1);
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
                    // A final block ends the stream: only the sync tail may follow it.
                    if input.len() - consumed > 0 && input[consumed..] != TAIL {
                        return Err(ProtocolError::InvalidCompressedData(
                            "data after the final block",
                        ));
                    }
                    state.reset(false);
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
        for bad in [&[0xFF, 0xFF, 0xFF][..], &[0x07, 0xFF], &[0x03, 0x00, 0x61]] {
            let mut out = Vec::new();
            let res = Inflater::new(true).inflate(bad, true, &mut out, 1 << 20);
            assert!(
                matches!(res, Err(ProtocolError::InvalidCompressedData(_))),
                "{bad:?}: {res:?}"
            );
        }
        // A final block followed by more data.
        let mut out = Vec::new();
        let res = Inflater::new(true).inflate(
            &[0x01, 0x01, 0x00, 0xFE, 0xFF, b'a', 0x61, 0x62],
            true,
            &mut out,
            100,
        );
        assert!(
            matches!(res, Err(ProtocolError::InvalidCompressedData(_))),
            "{res:?}"
        );
    }
}
