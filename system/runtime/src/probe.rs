//! Probes: what an actor says it observed, for the harness to measure and assert on.

/// One observation an actor records through [`crate::Probes`]: a named event about a subject.
///
/// In the simulator probes are timestamped, folded into the run's trace hash and analysed into
/// the figures scenarios assert on; in production they become `tracing` events. The vocabulary
/// (`name`s and what `subject` and `value` mean) belongs to each protocol and is documented there.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Probe {
    /// The protocol that recorded it (its mount name on a [`crate::host::Host`]); empty for an
    /// actor that runs alone.
    pub protocol: &'static str,
    /// What happened, e.g. `"suspect"`.
    pub name: &'static str,
    /// Whom it is about, e.g. a node id.
    pub subject: u64,
    /// A figure that goes with it (a count, an incarnation, a flag).
    pub value: i64,
}

impl Probe {
    /// A probe named `name` about `subject` with `value`.
    pub const fn new(name: &'static str, subject: u64, value: i64) -> Self {
        Probe {
            protocol: "",
            name,
            subject,
            value,
        }
    }

    /// The same probe, recorded by `protocol`.
    pub const fn scoped(self, protocol: &'static str) -> Self {
        Probe { protocol, ..self }
    }
}
