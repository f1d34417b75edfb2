//! Which offset a worker may commit while jobs finish out of order.
//!
//! Jobs from one partition run concurrently and finish in any order, but a Kafka commit means
//! "everything before this offset is done". So the commit position of a partition is its lowest
//! offset still in flight, or one past the highest finished offset when none is in flight. A job
//! that never finishes (the worker crashed) holds the position back, and the job is delivered
//! again after a restart.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
struct PartitionState {
    in_flight: BTreeSet<i64>,
    highest_done: Option<i64>,
    committed: Option<i64>,
}

/// Offsets in flight and finished, per topic partition.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<(String, i32), PartitionState>,
}

impl OffsetTracker {
    /// Records that the message at `offset` is being processed.
    pub fn start(&mut self, topic: &str, partition: i32, offset: i64) {
        self.partitions
            .entry((topic.to_owned(), partition))
            .or_default()
            .in_flight
            .insert(offset);
    }

    /// Records that the message at `offset` is finished. Returns the offset to commit (the next
    /// one to consume) when the commit position moved forward.
    pub fn finish(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let state = self.partitions.get_mut(&(topic.to_owned(), partition))?;
        if !state.in_flight.remove(&offset) {
            return None;
        }
        state.highest_done = Some(state.highest_done.map_or(offset, |h| h.max(offset)));
        let position = match state.in_flight.first() {
            Some(&lowest) => lowest,
            None => state.highest_done? + 1,
        };
        if state.committed.is_some_and(|c| c >= position) {
            return None;
        }
        state.committed = Some(position);
        Some(position)
    }

    /// Forgets a partition this worker no longer owns; its jobs in flight will not commit.
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_owned(), partition));
    }

    /// Number of jobs in flight over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "rfo-jobs";

    #[test]
    fn in_order_finishes_commit_each_offset() {
        let mut tracker = OffsetTracker::default();
        tracker.start(T, 0, 10);
        tracker.start(T, 0, 11);
        assert_eq!(tracker.finish(T, 0, 10), Some(11));
        assert_eq!(tracker.finish(T, 0, 11), Some(12));
    }

    #[test]
    fn later_finish_waits_for_earlier_offset() {
        let mut tracker = OffsetTracker::default();
        for offset in 5..8 {
            tracker.start(T, 0, offset);
        }
        assert_eq!(tracker.finish(T, 0, 7), Some(5));
        assert_eq!(tracker.finish(T, 0, 6), None);
        assert_eq!(tracker.finish(T, 0, 5), Some(8));
    }

    #[test]
    fn partitions_are_independent() {
        let mut tracker = OffsetTracker::default();
        tracker.start(T, 0, 1);
        tracker.start(T, 1, 1);
        assert_eq!(tracker.finish(T, 1, 1), Some(2));
        assert_eq!(tracker.in_flight(), 1);
    }

    #[test]
    fn revoked_partition_does_not_commit() {
        let mut tracker = OffsetTracker::default();
        tracker.start(T, 3, 40);
        tracker.revoke(T, 3);
        assert_eq!(tracker.finish(T, 3, 40), None);
        assert_eq!(tracker.in_flight(), 0);
    }

    #[test]
    fn unknown_offset_is_ignored() {
        let mut tracker = OffsetTracker::default();
        tracker.start(T, 0, 1);
        assert_eq!(tracker.finish(T, 0, 99), None);
    }
}
