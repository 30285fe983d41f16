//! Fault actions a schedule can fire, and the per-kind counts that prove they fired.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{LinkModel, NodeSet};

/// Something the schedule does to the world at a point in simulated time.
#[derive(Clone, Debug)]
pub enum FaultAction {
    /// Cuts the network between `a` and `b`: both directions, or only `a` → `b` if `one_way`.
    Partition {
        /// One side.
        a: NodeSet,
        /// The other side.
        b: NodeSet,
        /// Block only messages from `a` to `b`.
        one_way: bool,
    },
    /// Removes every partition.
    Heal,
    /// Stops the nodes at once: timers and unsynced writes are lost, datagrams to them dropped.
    Crash(NodeSet),
    /// Starts crashed nodes again from their durable storage.
    Restart(NodeSet),
    /// Stalls the nodes (a long GC pause, a frozen VM): nothing runs for them, input waits.
    Pause {
        /// Whom.
        nodes: NodeSet,
        /// For how long.
        duration: Duration,
    },
    /// Steps the nodes' wall clocks by `delta_ns`.
    ClockJump {
        /// Whom.
        nodes: NodeSet,
        /// By how much (negative: backwards).
        delta_ns: i64,
    },
    /// NTP-like correction: the nodes' wall clocks are stepped back to true time.
    ClockCorrect(NodeSet),
    /// Replaces the default link model (a loss burst, a latency spike); the previous model is
    /// restored by a later `SetLinks` carrying it.
    SetLinks(LinkModel),
}

impl FaultAction {
    /// The name under which firing this action is counted.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::Partition { one_way: false, .. } => "partition",
            FaultAction::Partition { one_way: true, .. } => "partition_one_way",
            FaultAction::Heal => "heal",
            FaultAction::Crash(_) => "crash",
            FaultAction::Restart(_) => "restart",
            FaultAction::Pause { .. } => "pause",
            FaultAction::ClockJump { .. } => "clock_jump",
            FaultAction::ClockCorrect(_) => "clock_correction",
            FaultAction::SetLinks(_) => "link_change",
        }
    }
}

/// Every name a fault is counted under: scheduled actions ([`FaultAction::kind`]) and what the
/// network, storage and Byzantine models inject as they go. Scenario assertions on
/// `faults.KIND` are checked against it, so a misspelt kind is an error rather than a count of 0.
pub const FAULT_KINDS: &[&str] = &[
    "partition",
    "partition_one_way",
    "heal",
    "crash",
    "restart",
    "pause",
    "pause_overflow",
    "clock_jump",
    "clock_correction",
    "link_change",
    "partition_drop",
    "message_loss",
    "message_corruption",
    "message_reorder",
    "message_duplicate",
    "byzantine_mutation",
    "byzantine_drop",
    "byzantine_forge",
    "storage_io_error",
    "torn_write",
    "unsynced_write_lost",
];

/// How often each kind of fault fired during a run, in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct FaultCounts(BTreeMap<&'static str, u64>);

impl FaultCounts {
    /// Counts one more `kind`.
    pub fn add(&mut self, kind: &'static str) {
        self.add_n(kind, 1);
    }

    /// Counts `n` more `kind`.
    pub fn add_n(&mut self, kind: &'static str, n: u64) {
        debug_assert!(
            FAULT_KINDS.contains(&kind),
            "fault kind {kind:?} missing from FAULT_KINDS"
        );
        if n > 0 {
            *self.0.entry(kind).or_insert(0) += n;
        }
    }

    /// How often `kind` fired.
    pub fn get(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    /// Every kind that fired with its count, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }
}
