//! Workloads: what runs on every node of a scenario (`workload.kind`), and how a run of it is
//! judged. Each is one [`Workload`] implementation registered in [`WORKLOADS`]; the scenario
//! parser checks `workload.kind` and assertion metric names against this list, the builder asks
//! the scenario's workload for its actors, and a finished run for its figures and plots.
//!
//! Adding one (ARCHITECTURE.md, "Adding a workload"): implement [`Workload`] in a module here,
//! with its checker beside its protocol (a `testing` module behind the protocol crate's `testing`
//! feature), add it to [`WORKLOADS`], give it a scenario table in `scenario/` if it has settings
//! of its own, and ship a scenario that exercises it.

pub mod consensus;
pub mod erc8004;
pub mod membership;
pub mod registry_api;
pub mod stoq;
pub mod trustchain;

use reports::Plot;
use runtime::DetRng;
use simulator::{ActorFactory, AppliedFault, ProbeRecord, RunStats, SimTime};

use crate::analysis::Analysis;
use crate::build::Derived;
use crate::scenario::Scenario;

/// What a scenario runs on its nodes, and how a run of it is judged.
pub trait Workload: Sync {
    /// Its name in a scenario file: `[workload] kind = "…"`.
    fn kind(&self) -> &'static str;

    /// Every figure [`Workload::analyse`] produces: (name, meaning). A scenario may assert on
    /// these (`scenarios/README.md` lists them).
    fn metrics(&self) -> Vec<(&'static str, &'static str)>;

    /// What each node runs in `scenario`: node index → a fresh actor (called again for a node
    /// restarted after a crash). `root` is the seed's root stream: a workload that draws
    /// (keys, tokens) forks a stream of its own from it (`crate::build::stream`), so its draws
    /// never shift another's.
    fn factory(&self, scenario: &Scenario, root: &DetRng) -> Box<dyn ActorFactory>;

    /// The figures of a finished run.
    fn analyse(&self, run: &FinishedRun<'_>) -> Analysis;

    /// The plots of a finished run for the report (series over simulated time).
    fn plots(&self, run: &FinishedRun<'_>) -> Vec<Plot>;

    /// A man in the middle the run needs on every link (the consensus workload's twins), drawn
    /// from `root` like the actors.
    fn interceptor(&self, _scenario: &Scenario, _root: &DetRng) -> Option<Box<dyn simulator::Interceptor>> {
        None
    }

    /// Whether its figures need the wall time each node's handlers took
    /// ([`FinishedRun::handler_time`]); timing costs two clock readings per event.
    fn times_handlers(&self) -> bool {
        false
    }
}

/// Every workload a scenario may name, in the order error messages list them.
pub static WORKLOADS: &[&dyn Workload] = &[
    &membership::Membership,
    &trustchain::TrustChain,
    &consensus::Consensus,
    &erc8004::Erc8004,
    &registry_api::RegistryApi,
];

/// The workload named `kind`, if there is one.
pub fn by_kind(kind: &str) -> Option<&'static dyn Workload> {
    WORKLOADS.iter().copied().find(|w| w.kind() == kind)
}

/// A run once the simulation has ended: what a workload analyses and plots.
pub struct FinishedRun<'a> {
    /// The scenario as run.
    pub scenario: &'a Scenario,
    /// Every probe the nodes recorded, in time order.
    pub probes: &'a [ProbeRecord],
    /// What was drawn from the seed: starts and the fault schedule.
    pub derived: &'a Derived,
    /// The faults as the simulator applied them, with the nodes each changed (and the crashes
    /// struck at storage calls, which no schedule lists).
    pub applied: &'a [AppliedFault],
    /// Nodes in the run.
    pub nodes: usize,
    /// When the run ended.
    pub end: SimTime,
    /// The simulator's traffic and activity counts.
    pub stats: &'a RunStats,
    /// Wall time each node's handlers took, by node, when the workload
    /// [times handlers](Workload::times_handlers): the one figure of a run that is not a function
    /// of (scenario, seed, code), so never asserted on.
    pub handler_time: Option<&'a [std::time::Duration]>,
}
