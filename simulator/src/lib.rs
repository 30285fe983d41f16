//! The deterministic simulator: the runtime seams of the `runtime` crate implemented over virtual
//! time, seeded randomness and modelled faults.
//!
//! A run is a pure function of (configuration, seed, code). Everything that could vary between
//! two runs is pinned: one event queue ordered by (time, sequence number), one seed forked into
//! named streams, no wall clock, no threads, no iteration over hash maps. The
//! [`trace::TraceHasher`] folds every dispatched event into the run's `trace_hash`, so
//! "deterministic" is checked by comparing two hashes rather than assumed.
//!
//! Where faults live:
//! - [`network`]: per-link latency, jitter, loss, duplication, reordering, corruption, bandwidth,
//!   partitions (two-way and one-way), address families.
//! - [`clock`]: per-node offset, drift, steps and NTP-like correction.
//! - [`storage`]: unsynced writes lost on crash, torn writes, injected I/O errors.
//! - [`sim`]: node crash, restart from storage, pause; scheduled [`FaultAction`]s.
//! - [`byzantine`]: link interceptors that mutate, drop selectively or forge messages.
//!
//! Every fault that fires is counted by kind in [`faults::FaultCounts`].

pub mod byzantine;
pub mod clock;
mod fast_hash;
pub mod faults;
pub mod flood;
pub mod network;
mod node_set;
pub mod queue;
pub mod sim;
pub mod storage;
mod time;
pub mod trace;

pub use byzantine::{Intercepted, Interceptor, LinkEnds};
pub use clock::{ClockModel, SIM_EPOCH_UNIX_SECS};
pub use faults::{FaultAction, FaultCounts, FAULT_KINDS};
pub use network::{Latency, LinkChange, LinkModel, NetworkModel};
pub use node_set::NodeSet;
pub use sim::{
    ActorFactory, AppliedFault, NodeIndex, NodeSpec, ProbeRecord, RunStats, Simulation, PROBES_MAX,
    STALLED_DATAGRAMS_MAX,
};
pub use storage::StorageFaults;
pub use time::SimTime;
