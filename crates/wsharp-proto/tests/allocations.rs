//! Limits hold before memory is allocated: a counting global allocator measures the peak.
//! One test function, so no other test allocates at the same time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wsharp_proto::{Config, Connection, Limits, Role, State};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(
    unsafe_code,
    reason = "a global allocator is unsafe to implement; it only counts"
)]
// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        // SAFETY: same layout, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: the pointer came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns how far the heap grew above its level at the start.
fn peak_growth(f: impl FnOnce()) -> usize {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst) - base
}

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

    // Fault 34: 1 MiB fragments against a 16 MiB message limit: 1009 on the 17th, and the
    // peak stays near the limit (the fragments kept plus one frame in the read buffer).
    let limit = 16 << 20;
    let frame_len = 1 << 20;
    let mut frame = masked_header(0x02, frame_len as u64);
    frame.extend(std::iter::repeat_n(0u8, frame_len));
    let mut continuation = frame.clone();
    continuation[0] = 0x00;
    let grew = peak_growth(|| {
        let limits = Limits::default().max_message_size(limit);
        let mut c = Connection::new(Role::Server, Config::default().limits(limits));
        c.handle_data(&frame);
        let mut sent = 1;
        while c.state() == State::Open {
            c.handle_data(&continuation);
            sent += 1;
            while c.poll_event().is_some() {}
        }
        assert_eq!(sent, 17);
        assert_eq!(c.failure().unwrap().close_code().0, 1009);
    });
    // The fragment buffer doubles up to the limit; while it moves, old and new coexist.
    assert!(
        grew <= limit + limit / 2 + 2 * frame_len + (64 << 10),
        "grew {grew} bytes"
    );
}
