//! The ground truth a membership view is held against: *reachability*. `Y` is reachable from `X`
//! when `Y` is up and not paused and no cut blocks either direction between them. Every event
//! here changes it; a driver lists what it did to its nodes (a testbed turns its fault schedule
//! into these), and the checker replays them beside the probes.

use std::time::Duration;

/// What changed at some moment. Node lists hold run indices (`0..nodes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nodes started for the first time: the join.
    Start(Vec<u32>),
    /// Nodes crashed.
    Crash(Vec<u32>),
    /// Crashed nodes started again, remembering nothing of their view.
    Restart(Vec<u32>),
    /// Nodes stalled: unreachable, but their views survive.
    Pause(Vec<u32>),
    /// Stalled nodes run again.
    Resume(Vec<u32>),
    /// The network cut between sides `a` and `b`: both ways, or only `a` → `b` if `one_way`.
    Cut {
        /// One side.
        a: Vec<u32>,
        /// The other.
        b: Vec<u32>,
        /// Only messages from `a` to `b` are blocked.
        one_way: bool,
    },
    /// Every cut removed.
    Heal,
    /// One cut removed: the first in force between exactly these sides (others stay).
    Uncut {
        /// One side.
        a: Vec<u32>,
        /// The other.
        b: Vec<u32>,
        /// Whether it was one-way.
        one_way: bool,
    },
}

/// The kind of a change: simultaneous changes of one kind form one episode.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Join,
    Crash,
    Restart,
    Pause,
    Resume,
    Partition,
    PartitionOneWay,
    Heal,
}

impl Change {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Change::Start(_) => Kind::Join,
            Change::Crash(_) => Kind::Crash,
            Change::Restart(_) => Kind::Restart,
            Change::Pause(_) => Kind::Pause,
            Change::Resume(_) => Kind::Resume,
            Change::Cut { one_way: false, .. } => Kind::Partition,
            Change::Cut { one_way: true, .. } => Kind::PartitionOneWay,
            Change::Heal | Change::Uncut { .. } => Kind::Heal,
        }
    }
}

/// A change at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// True time since the start of the run.
    pub at: Duration,
    /// What changed.
    pub change: Change,
}

impl Event {
    /// `change` at `at`.
    pub fn new(at: Duration, change: Change) -> Self {
        Event { at, change }
    }
}
