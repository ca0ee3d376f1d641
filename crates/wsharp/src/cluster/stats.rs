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
    pub(crate) inbound_dropped: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) probe_failures: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> BackplaneStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BackplaneStats {
            published: get(&self.published),
            publish_dropped: get(&self.publish_dropped),
            delivered: get(&self.delivered),
            gaps: get(&self.gaps),
            duplicates: get(&self.duplicates),
            rejected: get(&self.rejected),
            inbound_dropped: get(&self.inbound_dropped),
            reconnects: get(&self.reconnects),
            probe_failures: get(&self.probe_failures),
        }
    }
}
