//! How the buffer of a message being received grows: bounded by the message limit, including
//! the moment it grows.

/// Buffers for a message grow by doubling up to this size, then straight to the message limit.
/// A buffer that kept doubling would, when it moves, hold its old and its new copy at once
/// (and an allocator may keep the old pages), up to twice the limit. So a message in reassembly
/// or inflation holds at most `max_message_size + 1` bytes, plus at most this much while the
/// jump happens; the unused part is given back when the message is delivered.
pub const GROWTH_STEP_MAX: usize = 1 << 20;

/// The capacity a message buffer of `current` bytes grows to so that it holds `needed`
/// (`needed <= cap`), for a buffer that may hold at most `cap` bytes.
pub(crate) fn grown_capacity(current: usize, needed: usize, cap: usize) -> usize {
    let doubled = current.saturating_mul(2).max(needed).max(4096);
    if doubled <= GROWTH_STEP_MAX {
        doubled.min(cap)
    } else {
        cap.max(needed)
    }
}

/// Gives back the unused part of a message buffer, once whole, if it is large.
pub(crate) fn shrink_grown(buf: &mut Vec<u8>) {
    if buf.capacity() > buf.len() + buf.len() / 2 {
        buf.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_jumps_to_the_cap() {
        let cap = 64 << 20;
        assert_eq!(grown_capacity(0, 10, cap), 4096);
        assert_eq!(grown_capacity(4096, 4097, cap), 8192);
        assert_eq!(
            grown_capacity(GROWTH_STEP_MAX / 2, GROWTH_STEP_MAX / 2 + 1, cap),
            GROWTH_STEP_MAX
        );
        assert_eq!(
            grown_capacity(GROWTH_STEP_MAX, GROWTH_STEP_MAX + 1, cap),
            cap
        );
        // Never past the cap, even when doubling would be.
        assert_eq!(grown_capacity(3000, 3001, 5000), 5000);
        assert_eq!(grown_capacity(0, 1, 1), 1);
    }
}
