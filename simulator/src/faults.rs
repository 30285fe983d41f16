//! Fault actions a schedule can fire, and the per-kind counts that prove they fired.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{LinkChange, LinkModel, NodeSet};

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
    /// Ends every partition.
    Heal,
    /// Ends one partition (the first in force between exactly these sides), leaving any other:
    /// how a partition with a `duration` ends, so overlapping partitions each last their own.
    HealPartition {
        /// One side.
        a: NodeSet,
        /// The other side.
        b: NodeSet,
        /// Whether it was one-way.
        one_way: bool,
    },
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
    /// Replaces the base link model; open link windows still apply over it.
    SetLinks(LinkModel),
    /// Opens a link window (a loss burst, a latency spike) that changes only what it names,
    /// until the [`FaultAction::LinkWindowEnd`] with the same `id`. Windows stack.
    LinkWindow {
        /// Names the window for its end.
        id: u64,
        /// What it changes.
        change: LinkChange,
    },
    /// Closes link window `id`: the links follow the base and the windows still open.
    LinkWindowEnd {
        /// The window.
        id: u64,
    },
    /// The nodes' disks stop injecting faults (I/O errors, crashes at storage calls, rot on
    /// reading); what already rotted stays rotted. Ends a scenario's storage faults, so that a
    /// quiet phase is quiet.
    EndStorageFaults(NodeSet),
}

impl FaultAction {
    /// The name under which firing this action is counted.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::Partition { one_way: false, .. } => "partition",
            FaultAction::Partition { one_way: true, .. } => "partition_one_way",
            FaultAction::Heal | FaultAction::HealPartition { .. } => "heal",
            FaultAction::Crash(_) => "crash",
            FaultAction::Restart(_) => "restart",
            FaultAction::Pause { .. } => "pause",
            FaultAction::ClockJump { .. } => "clock_jump",
            FaultAction::ClockCorrect(_) => "clock_correction",
            FaultAction::SetLinks(_) | FaultAction::LinkWindow { .. } | FaultAction::LinkWindowEnd { .. } => {
                "link_change"
            }
            FaultAction::EndStorageFaults(_) => "storage_faults_end",
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
    "storage_faults_end",
    "partition_drop",
    "message_loss",
    "message_corruption",
    "message_reorder",
    "message_duplicate",
    "byzantine_mutation",
    "byzantine_drop",
    "byzantine_forge",
    "byzantine_reroute",
    "storage_io_error",
    "torn_write",
    "unsynced_write_lost",
    "writeback_lost",
    "crash_at_io",
    "bit_rot",
];

/// How often each kind of fault took effect during a run, in name order, and a digest of every
/// effect (kind, count, and the simulated time it happened at) that the run's trace hash covers:
/// two runs whose faults bit differently never share a hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    counts: BTreeMap<&'static str, u64>,
    digest: u64,
    /// The simulated time (ns) effects are stamped with, set by the simulator at every event.
    now_ns: u64,
}

impl serde::Serialize for FaultCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.counts.serialize(serializer)
    }
}

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
            *self.counts.entry(kind).or_insert(0) += n;
            let mut word = self.now_ns ^ n.rotate_left(40);
            for b in kind.bytes() {
                word = (word ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
            }
            self.digest = (self.digest.rotate_left(23) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    /// How often `kind` took effect.
    pub fn get(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// Every kind that took effect with its count, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(k, v)| (*k, *v))
    }

    /// The digest of every effect so far, in order.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Stamps effects from now on with simulated time `now_ns`.
    pub(crate) fn set_now(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
    }
}
