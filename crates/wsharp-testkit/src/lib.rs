//! What wsharp's test suites share: launchers for the real peers (Python `websockets`, Node
//! `ws`, headless Chromium) that fail the test with a clear message when a peer is missing, a
//! raw side of the opening handshake for tests that must send bytes no client would, bounded
//! waits, and memory probes (the process's RSS, a counting global allocator).
//!
//! Not published; a dev-dependency of the workspace's crates. It depends on `wsharp-proto`
//! only, so that the types a test sees are its own crate's.

pub mod certs;
mod dir;
pub mod memory;
pub mod peers;
pub mod proxies;
pub mod raw;
pub mod redis;

pub use dir::TempDir;

use std::time::Duration;

/// Every await in the tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Waits until `check` holds, looking every 20 ms, failing the test after [`LIMIT`] with
/// `what`. For state another process or task reaches in its own time (a record written, a
/// count updated), where there is no event to await.
///
/// # Panics
/// When `check` does not hold within [`LIMIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {LIMIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `f`, failing the test if it takes longer than [`LIMIT`].
///
/// # Panics
/// When `f` does not finish within [`LIMIT`].
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step timed out")
}
