//! Where a node's probes go: a `tracing` event always, and a channel if someone is listening.

use runtime::{Instant, Probe};
use tokio::sync::mpsc::UnboundedSender;

/// A probe with the node that recorded it and when, on that node's monotonic clock.
///
/// Unlike the simulator's records, `at` is node-local: instants of different nodes are not
/// comparable, only their order within one node is meaningful.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProbeRecord {
    /// The recording node's index.
    pub node: usize,
    /// The node's monotonic time when it recorded the probe.
    pub at: Instant,
    /// What it recorded.
    pub probe: Probe,
}

/// The sending half of a probe channel. Unbounded because an actor cannot wait for a slow
/// consumer; the consumer (a test, a demo) is expected to keep up or stop the node.
pub type ProbeSender = UnboundedSender<ProbeRecord>;

/// Emits `record` as a `tracing` event and forwards it to `sink`, if any.
pub(crate) fn emit(record: ProbeRecord, sink: Option<&ProbeSender>) {
    tracing::debug!(
        target: "runtime_tokio::probe",
        node = record.node,
        at_ns = record.at.as_nanos(),
        name = record.probe.name,
        subject = record.probe.subject,
        value = record.probe.value,
        "probe"
    );
    if let Some(sink) = sink {
        // A closed channel means nobody is collecting any more; the tracing event still stands.
        let _ = sink.send(record);
    }
}
