//! Memory probes: the process's resident set, and a global allocator that counts live bytes
//! and their peak (install it with [`install_counting_allocator!`](crate::install_counting_allocator)
//! in a test binary of its own, so nothing else allocates while it measures).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The process's resident set size in bytes, from `/proc/self/statm` (4 KiB pages).
///
/// # Panics
/// Where `/proc` is missing.
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("a page count");
    pages * 4096
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`, ...); `None` if absent.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Counts the bytes allocated and not freed, and their peak. Reallocation goes through
/// `alloc` and `dealloc`, so a block that moves counts its old and new copy at once, as it is
/// really held.
#[derive(Debug)]
pub struct Counting;

#[allow(
    unsafe_code,
    reason = "a global allocator is unsafe to implement; this one only counts"
)]
// SAFETY: every call is forwarded unchanged to the system allocator; the counters are only
// arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

/// Makes [`Counting`] the test binary's global allocator.
#[macro_export]
macro_rules! install_counting_allocator {
    () => {
        #[global_allocator]
        static COUNTING_ALLOCATOR: $crate::memory::Counting = $crate::memory::Counting;
    };
}

/// Bytes allocated and not yet freed (0 unless [`Counting`] is the global allocator).
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// Runs `f` and returns how far the heap grew above its level at the start.
pub fn peak_growth(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst) - base
}
