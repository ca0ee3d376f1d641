//! The backplane's counters, shared by its tasks.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::server::BackplaneStats;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) publish_dropped: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) probe_failures: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> BackplaneStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut stats = BackplaneStats::default();
        stats.published = get(&self.published);
        stats.publish_dropped = get(&self.publish_dropped);
        stats.delivered = get(&self.delivered);
        stats.gaps = get(&self.gaps);
        stats.duplicates = get(&self.duplicates);
        stats.rejected = get(&self.rejected);
        stats.reconnects = get(&self.reconnects);
        stats.probe_failures = get(&self.probe_failures);
        stats
    }
}
