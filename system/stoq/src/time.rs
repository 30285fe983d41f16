//! quinn-proto measures time in `std::time::Instant`, which has no constructor but `now()`.
//! STOQ maps the node's monotonic clock (`runtime::Instant`, nanoseconds since the node's
//! start) onto an anchor read once per process: quinn-proto only ever compares and subtracts
//! instants, so the anchor's value never reaches its behaviour, and a simulated run stays a
//! pure function of its seed. This is the one place STOQ touches `std::time`.

use std::sync::OnceLock;
use std::time::Instant as StdInstant;

use runtime::{Duration, Instant};

static ANCHOR: OnceLock<StdInstant> = OnceLock::new();

/// Converts between the node's clock and quinn-proto's instants.
#[derive(Copy, Clone, Debug)]
pub(crate) struct QuicClock {
    anchor: StdInstant,
}

impl QuicClock {
    // quinn-proto takes `std::time::Instant`s and only ever subtracts them: one arbitrary anchor
    // per process, plus the node's clock, gives it instants whose differences are the node's.
    // The anchor's value never reaches protocol behaviour, so determinism holds.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn new() -> Self {
        QuicClock {
            anchor: *ANCHOR.get_or_init(StdInstant::now),
        }
    }

    pub(crate) fn to_quic(self, t: Instant) -> StdInstant {
        self.anchor + Duration::from_nanos(t.as_nanos())
    }

    pub(crate) fn to_node(self, t: StdInstant) -> Instant {
        let nanos = t.saturating_duration_since(self.anchor).as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_round_trips_exactly() {
        let c = QuicClock::new();
        for ns in [0u64, 1, 999_999_999, 86_400 * 1_000_000_000 + 7] {
            let t = Instant::from_nanos(ns);
            assert_eq!(c.to_node(c.to_quic(t)), t);
        }
    }
}
