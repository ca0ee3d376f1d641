//! Per-origin sequence numbers of broadcasts, as a receiving node sees them: what repeats is a
//! duplicate, what is skipped is a gap (lost, and counted).

use std::collections::HashMap;
use std::time::Instant;

/// Senders followed at most; past them the one heard from longest ago is forgotten.
const MAX_ORIGINS: usize = 1024;

/// What to do with a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New: deliver it; `missed` broadcasts of its sender went missing just before it.
    Deliver { missed: u64 },
    /// Seen already: drop it.
    Duplicate,
}

/// The last sequence number seen from each sender (node and run).
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    last: HashMap<(String, u64), (u64, Instant)>,
}

impl Sequences {
    /// A broadcast `seq` from `origin`'s run `incarnation`. The first one heard from a sender
    /// sets where it stands (what it sent before this node listened is not a loss).
    pub(crate) fn broadcast(&mut self, origin: &str, incarnation: u64, seq: u64) -> Verdict {
        match self.entry(origin, incarnation, seq) {
            None => Verdict::Deliver { missed: 0 },
            Some(last) if seq <= *last => Verdict::Duplicate,
            Some(last) => {
                let missed = seq - *last - 1;
                *last = seq;
                Verdict::Deliver { missed }
            }
        }
    }

    /// A beacon: the sender's last broadcast was `seq`; returns how many never arrived.
    pub(crate) fn beacon(&mut self, origin: &str, incarnation: u64, seq: u64) -> u64 {
        match self.entry(origin, incarnation, seq) {
            Some(last) if seq > *last => {
                let missed = seq - *last;
                *last = seq;
                missed
            }
            _ => 0,
        }
    }

    /// The sender's last sequence number, or `None` when it is new (then recorded as `seq`).
    fn entry(&mut self, origin: &str, incarnation: u64, seq: u64) -> Option<&mut u64> {
        let key = (origin.to_owned(), incarnation);
        let now = Instant::now();
        if !self.last.contains_key(&key) {
            if self.last.len() >= MAX_ORIGINS
                && let Some(oldest) = self
                    .last
                    .iter()
                    .min_by_key(|(_, (_, seen))| *seen)
                    .map(|(k, _)| k.clone())
            {
                self.last.remove(&oldest);
            }
            self.last.insert(key, (seq, now));
            return None;
        }
        let (last, seen) = self.last.get_mut(&key).expect("present");
        *seen = now;
        Some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_duplicates_are_told_apart() {
        let mut s = Sequences::default();
        assert_eq!(s.broadcast("a", 1, 5), Verdict::Deliver { missed: 0 });
        assert_eq!(s.broadcast("a", 1, 6), Verdict::Deliver { missed: 0 });
        assert_eq!(s.broadcast("a", 1, 6), Verdict::Duplicate);
        assert_eq!(s.broadcast("a", 1, 9), Verdict::Deliver { missed: 2 });
        assert_eq!(s.broadcast("a", 1, 7), Verdict::Duplicate);
        // A beacon tells of the last ones lost.
        assert_eq!(s.beacon("a", 1, 12), 3);
        assert_eq!(s.beacon("a", 1, 12), 0);
        // Another run of the same node starts afresh.
        assert_eq!(s.broadcast("a", 2, 1), Verdict::Deliver { missed: 0 });
        assert_eq!(s.broadcast("b", 1, 1), Verdict::Deliver { missed: 0 });
    }
}
