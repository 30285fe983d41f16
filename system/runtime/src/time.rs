//! Time as protocols see it: a monotonic [`Instant`] for timeouts and a [`WallTime`] for anything
//! exchanged with other nodes. Both are plain numbers handed out by a backend's [`crate::Clock`].

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on a node's own monotonic clock, in nanoseconds since that clock's origin.
///
/// Monotonic clocks never jump, but they do run at the node's oscillator rate, so two nodes'
/// instants are not comparable: never send an `Instant` over the wire.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);

    /// An instant `nanos` after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_nanos(rhs)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an earlier minus a later instant is zero, never a panic.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.0 as f64 / 1e9)
    }
}

/// Wall-clock time as a node believes it, in nanoseconds since the Unix epoch.
///
/// It may be skewed, drift, and jump backwards or forwards (NTP steps): compare wall times from
/// different nodes only with an explicit tolerance.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(i64);

impl WallTime {
    /// The Unix epoch.
    pub const UNIX_EPOCH: WallTime = WallTime(0);

    /// A wall time `nanos` after the Unix epoch (negative: before it).
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        WallTime(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_unix_nanos(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch, rounded towards negative infinity.
    pub const fn as_unix_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Signed difference `self - other` in nanoseconds.
    pub const fn nanos_since(self, other: WallTime) -> i64 {
        self.0.saturating_sub(other.0)
    }
}

/// A duration's nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates_instead_of_panicking() {
        let a = Instant::from_nanos(10);
        let b = Instant::from_nanos(25);
        assert_eq!(b - a, Duration::from_nanos(15));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(
            Instant::from_nanos(u64::MAX - 1) + Duration::from_secs(1),
            Instant::from_nanos(u64::MAX)
        );
    }

    #[test]
    fn wall_millis_round_down_before_the_epoch() {
        assert_eq!(WallTime::from_unix_nanos(-1).as_unix_millis(), -1);
        assert_eq!(WallTime::from_unix_nanos(1_999_999).as_unix_millis(), 1);
    }
}
