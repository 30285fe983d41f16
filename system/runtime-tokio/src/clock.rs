//! The node's clocks: a monotonic one counted from the node's start, and the host's wall clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runtime::{Instant, WallTime};

/// How far ahead to park when a deadline is beyond what the host's `Instant` can represent. The
/// driver re-checks the deadline when it wakes, so this only bounds the sleep, never fires early.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The host's wall clock. A host clock set before 1970 yields a negative time rather than an
/// error, because the seam's `WallTime` is signed for exactly that reason.
pub fn host_wall_now() -> WallTime {
    let nanos = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    };
    WallTime::from_unix_nanos(nanos)
}

/// A node's clock. Its origin is the moment the node started, so `Instant`s are small numbers
/// local to this process, exactly as the runtime seam says they must be treated.
#[derive(Copy, Clone, Debug)]
pub(crate) struct NodeClock {
    origin: std::time::Instant,
}

impl NodeClock {
    /// A clock whose origin is now.
    pub(crate) fn start() -> Self {
        NodeClock {
            origin: std::time::Instant::now(),
        }
    }

    /// Monotonic time since the origin.
    pub(crate) fn now(&self) -> Instant {
        // u64 nanoseconds last 584 years; saturating keeps the clock monotonic even past that.
        Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// The host's wall clock.
    pub(crate) fn wall_now(&self) -> WallTime {
        host_wall_now()
    }

    /// The tokio instant at which the node's clock reads `at`.
    pub(crate) fn deadline(&self, at: Instant) -> tokio::time::Instant {
        match self.origin.checked_add(Duration::from_nanos(at.as_nanos())) {
            Some(instant) => tokio::time::Instant::from_std(instant),
            None => tokio::time::Instant::now() + FAR_FUTURE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_starts_near_zero_and_advances() {
        let clock = NodeClock::start();
        let a = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        let b = clock.now();
        assert!(
            a < Instant::from_nanos(1_000_000_000),
            "origin is not the node's start: {a}"
        );
        assert!(b - a >= Duration::from_millis(2));
    }

    #[test]
    fn wall_clock_is_the_hosts() {
        let clock = NodeClock::start();
        let ours = clock.wall_now().as_unix_nanos();
        let host = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        assert!((host - ours).abs() < 1_000_000_000);
    }

    #[test]
    fn deadlines_beyond_the_hosts_range_do_not_panic() {
        let clock = NodeClock::start();
        let far = clock.deadline(Instant::from_nanos(u64::MAX));
        assert!(far > tokio::time::Instant::now());
        let soon = clock.deadline(Instant::from_nanos(5_000_000));
        assert!(soon <= tokio::time::Instant::now() + Duration::from_millis(5));
    }
}
