//! A small per-thread pool of I/O buffers.
//!
//! A connection holds a receive or transmit buffer only while bytes are in it: it takes one from
//! this pool when a read or a send needs room and gives it back once the buffer is empty and the
//! transport would block. Busy connections then cost no allocation per wakeup, and idle ones
//! hold nothing. The pool keeps at most [`POOL_MAX`] buffers per thread.

use std::cell::RefCell;

use bytes::BytesMut;

/// Buffers kept per thread.
pub(crate) const POOL_MAX: usize = 8;

thread_local! {
    static POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `room` bytes: a pooled one if this thread has one.
pub(crate) fn take(room: usize) -> BytesMut {
    match POOL.try_with(|pool| pool.borrow_mut().pop()).ok().flatten() {
        Some(mut buf) => {
            buf.reserve(room);
            buf
        }
        None => BytesMut::with_capacity(room),
    }
}

/// Gives `buf` back for reuse if it is empty and can take `room` bytes without allocating
/// (no message still holds the part of its memory it needs), and is not over four times that
/// large; drops it otherwise.
pub(crate) fn give(mut buf: BytesMut, room: usize) {
    if !buf.is_empty() || !buf.try_reclaim(room) || buf.capacity() > room.saturating_mul(4) {
        return;
    }
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    });
}

/// Buffers pooled on this thread.
#[cfg(test)]
pub(crate) fn pooled() -> usize {
    POOL.try_with(|pool| pool.borrow().len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_a_given_buffer_and_drops_shared_or_full_ones() {
        let start = pooled();
        let mut buf = take(4096);
        buf.extend_from_slice(&[1; 100]);
        let ptr = buf.as_ptr();
        // Not empty: dropped.
        give(buf.split(), 4096);
        assert_eq!(pooled(), start);
        give(buf, 4096);
        assert_eq!(pooled(), start + 1);
        let again = take(4096);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty() && again.capacity() >= 4096);

        // A buffer whose memory a message still holds cannot offer the room: dropped.
        let mut buf = again;
        buf.extend_from_slice(&[2; 4000]);
        let message = buf.split_to(4000).freeze();
        give(buf, 4096);
        assert_eq!(pooled(), start);
        assert_eq!(&message[..], &[2; 4000]);

        // Once the message is gone the same memory is whole again and is kept.
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(&[3; 4000]);
        drop(buf.split_to(4000).freeze());
        give(buf, 4096);
        assert_eq!(pooled(), start + 1);
        let _ = take(4096);

        // Nor one much larger than the room asked for.
        give(BytesMut::with_capacity(1 << 16), 1 << 12);
        assert_eq!(pooled(), start);
    }

    #[test]
    fn keeps_at_most_pool_max() {
        for _ in 0..POOL_MAX + 3 {
            give(BytesMut::with_capacity(4096), 4096);
        }
        assert_eq!(pooled(), POOL_MAX);
    }
}
