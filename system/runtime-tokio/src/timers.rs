//! The node's pending timers, in firing order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use runtime::{Instant, TimerToken};

/// A min-heap of timers keyed by (deadline, insertion sequence), so timers due at the same
/// instant fire in the order they were set, as they do in the simulator.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, TimerToken)>>,
    next_seq: u64,
}

impl TimerQueue {
    /// Schedules `token` for `at`.
    pub(crate) fn push(&mut self, at: Instant, token: TimerToken) {
        self.heap.push(Reverse((at, self.next_seq, token)));
        self.next_seq = self.next_seq.wrapping_add(1);
    }

    /// The earliest deadline, if any timer is pending.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerToken> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, _, token))| token)
    }

    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_by_time_then_by_insertion() {
        let mut q = TimerQueue::default();
        q.push(Instant::from_nanos(30), 3);
        q.push(Instant::from_nanos(10), 1);
        q.push(Instant::from_nanos(10), 2);
        q.push(Instant::from_nanos(0), 0);
        let now = Instant::from_nanos(100);
        let fired: Vec<_> = std::iter::from_fn(|| q.pop_due(now)).collect();
        assert_eq!(fired, vec![0, 1, 2, 3]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn nothing_fires_before_its_deadline() {
        let mut q = TimerQueue::default();
        q.push(Instant::from_nanos(50), 7);
        assert_eq!(q.pop_due(Instant::from_nanos(49)), None);
        assert_eq!(q.next_deadline(), Some(Instant::from_nanos(50)));
        assert_eq!(q.pop_due(Instant::from_nanos(50)), Some(7));
        assert_eq!(q.next_deadline(), None);
    }
}
