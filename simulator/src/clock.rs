//! Per-node clocks: what a node's monotonic and wall clocks read at a given true time.
//!
//! One oscillator drives both clocks, so drift (in parts per billion) makes a node's timers run
//! fast or slow as well as its wall clock. Offsets, steps and corrections touch only the wall
//! clock: monotonic clocks never jump, as on a real host.

use runtime::{Instant, WallTime};

use crate::SimTime;

/// The wall-clock reading of a perfect clock at the start of every run: 2026-01-01T00:00:00Z.
/// Fixed, so that a run never depends on when it happens.
pub const SIM_EPOCH_UNIX_SECS: i64 = 1_767_225_600;

/// Drift beyond ±1000 ppm is not a clock but a broken oscillator; refusing it keeps time
/// conversion exact.
pub const DRIFT_PPB_MAX: i64 = 1_000_000;

/// How one node's clock deviates from true time.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ClockModel {
    /// Wall-clock offset at the start, in nanoseconds (positive: ahead).
    pub offset_ns: i64,
    /// Oscillator rate error in parts per billion (1 ppm = 1000 ppb; positive: fast).
    pub drift_ppb: i64,
}

/// A node's clock during a run: its model plus steps applied so far.
#[derive(Clone, Debug)]
pub struct NodeClock {
    model: ClockModel,
    step_ns: i64,
}

impl NodeClock {
    /// A clock following `model`, drift clamped to ±[`DRIFT_PPB_MAX`].
    pub fn new(model: ClockModel) -> Self {
        let drift_ppb = model.drift_ppb.clamp(-DRIFT_PPB_MAX, DRIFT_PPB_MAX);
        NodeClock {
            model: ClockModel { drift_ppb, ..model },
            step_ns: 0,
        }
    }

    fn drift_ns(&self, t: SimTime) -> i64 {
        (i128::from(t.as_nanos()) * i128::from(self.model.drift_ppb) / 1_000_000_000) as i64
    }

    /// The node's monotonic clock at true time `t`.
    pub fn monotonic(&self, t: SimTime) -> Instant {
        Instant::from_nanos(t.as_nanos().saturating_add_signed(self.drift_ns(t)))
    }

    /// The earliest true time at which the monotonic clock reads at least `local`.
    pub fn true_time_of(&self, local: Instant) -> SimTime {
        let rate = 1_000_000_000i128 + i128::from(self.model.drift_ppb);
        let guess = (i128::from(local.as_nanos()) * 1_000_000_000 / rate).max(0) as u64;
        // Integer division can land a nanosecond or two early; step forward to the exact time.
        let mut t = SimTime::from_nanos(guess);
        while self.monotonic(t) < local {
            t = SimTime::from_nanos(t.as_nanos() + 1);
        }
        t
    }

    /// The node's wall clock at true time `t`.
    pub fn wall(&self, t: SimTime) -> WallTime {
        let true_wall = i128::from(SIM_EPOCH_UNIX_SECS) * 1_000_000_000 + i128::from(t.as_nanos());
        let error = i128::from(self.model.offset_ns) + i128::from(self.drift_ns(t)) + i128::from(self.step_ns);
        WallTime::from_unix_nanos((true_wall + error) as i64)
    }

    /// The wall clock's error against true time at `t`, in nanoseconds.
    pub fn wall_error_ns(&self, t: SimTime) -> i64 {
        self.model.offset_ns + self.drift_ns(t) + self.step_ns
    }

    /// Steps the wall clock by `delta_ns` (a manual change or a bad NTP server).
    pub fn step(&mut self, delta_ns: i64) {
        self.step_ns = self.step_ns.saturating_add(delta_ns);
    }

    /// NTP-like correction at `t`: steps the wall clock back to true time. Drift continues, so
    /// the error grows again until the next correction.
    /// Whether the clock moved (it was not already at true time).
    pub fn correct(&mut self, t: SimTime) -> bool {
        let step = -(self.model.offset_ns + self.drift_ns(t));
        let moved = step != self.step_ns;
        self.step_ns = step;
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_moves_wall_clock_only() {
        let clock = NodeClock::new(ClockModel {
            offset_ns: 2 * 3_600_000_000_000,
            drift_ppb: 0,
        });
        let t = SimTime::from_millis(1500);
        assert_eq!(clock.monotonic(t).as_nanos(), t.as_nanos());
        assert_eq!(clock.wall_error_ns(t), 7_200_000_000_000);
    }

    #[test]
    fn drift_makes_timers_fire_early_or_late_in_true_time() {
        let fast = NodeClock::new(ClockModel {
            offset_ns: 0,
            drift_ppb: 100_000,
        }); // +100 ppm
        let local = Instant::from_nanos(10_000_000_000);
        let t = fast.true_time_of(local);
        assert!(t.as_nanos() < 10_000_000_000);
        assert!(fast.monotonic(t) >= local);
        assert!(fast.monotonic(SimTime::from_nanos(t.as_nanos() - 1)) < local);
    }

    #[test]
    fn correction_removes_accumulated_error() {
        let mut clock = NodeClock::new(ClockModel {
            offset_ns: 5_000_000_000,
            drift_ppb: 50_000,
        });
        clock.step(1_000_000);
        let t = SimTime::from_millis(60_000);
        assert_ne!(clock.wall_error_ns(t), 0);
        clock.correct(t);
        assert_eq!(clock.wall_error_ns(t), 0);
    }
}
