//! Lifeguard's suspicion timeout: long when one node suspects alone, shrinking towards the
//! minimum as independent confirmations arrive.

use std::collections::BTreeSet;
use std::time::Duration;

use runtime::Instant;

use super::wire::NodeId;

/// A live suspicion of one member.
#[derive(Clone, Debug)]
pub(crate) struct Suspicion {
    started: Instant,
    min: Duration,
    max: Duration,
    confirmations_wanted: u32,
    confirmed_by: BTreeSet<NodeId>,
}

impl Suspicion {
    /// A suspicion raised at `started` by `by`.
    pub(crate) fn new(started: Instant, by: NodeId, min: Duration, max: Duration, confirmations_wanted: u32) -> Self {
        Suspicion {
            started,
            min,
            max: max.max(min),
            confirmations_wanted,
            confirmed_by: BTreeSet::from([by]),
        }
    }

    /// When this suspicion began.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Starts the timeout over from `now`, keeping the confirmations.
    pub(crate) fn restart(&mut self, now: Instant) {
        self.started = now;
    }

    /// Records a suspicion by `by`; true if it is a new, independent one.
    pub(crate) fn confirm(&mut self, by: NodeId) -> bool {
        self.confirmed_by.len() < self.confirmations_wanted as usize + 1 && self.confirmed_by.insert(by)
    }

    /// When the member is declared dead: `max − (max − min) · log(C + 1) / log(K + 1)` after the
    /// start, C being confirmations beyond the first suspicion.
    pub(crate) fn deadline(&self) -> Instant {
        let confirmations = (self.confirmed_by.len() - 1) as f64;
        let wanted = f64::from(self.confirmations_wanted);
        let fraction = (libm::log(confirmations + 1.0) / libm::log(wanted + 1.0)).min(1.0);
        let timeout = self.max.as_secs_f64() - (self.max - self.min).as_secs_f64() * fraction;
        self.started + Duration::from_secs_f64(timeout.max(self.min.as_secs_f64()))
    }
}

/// The minimum and maximum suspicion timeouts for a cluster of `members`.
pub(crate) fn timeouts(members: usize, probe_interval: Duration, mult: u32, max_mult: u32) -> (Duration, Duration) {
    let scale = libm::log10(members.max(1) as f64).max(1.0);
    let min = probe_interval.mul_f64(f64::from(mult) * scale);
    (min, min * max_mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmations_shrink_the_timeout_to_the_minimum() {
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(12));
        let mut s = Suspicion::new(Instant::ZERO, NodeId(1), min, max, 3);
        assert_eq!(s.deadline(), Instant::ZERO + max);
        assert!(s.confirm(NodeId(2)));
        assert!(!s.confirm(NodeId(2)), "the same node twice is not independent");
        let one = s.deadline();
        assert!(one < Instant::ZERO + max && one > Instant::ZERO + min);
        s.confirm(NodeId(3));
        s.confirm(NodeId(4));
        assert_eq!(s.deadline(), Instant::ZERO + min);
    }

    #[test]
    fn timeouts_grow_with_the_log_of_the_cluster() {
        let (min50, _) = timeouts(50, Duration::from_millis(500), 4, 6);
        let (min1000, max1000) = timeouts(1000, Duration::from_millis(500), 4, 6);
        assert!(min1000 > min50);
        assert_eq!(max1000, min1000 * 6);
    }
}
