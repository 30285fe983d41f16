//! Checkers for runs of HyperMesh nodes: what the nodes recorded (their probes), judged against
//! what was done to them (the ground truth of reachability). Compiled only with the `testing`
//! feature; the testbed's `membership` workload and this crate's own tests use them.
//!
//! Nothing here names a backend: a run is handed over as [`Observed`] probes (when, which node,
//! what) and its ground truth as [`truth::Event`]s, so a run of the simulator, or of anything
//! else that records probes, is judged the same way. The figures are [`Figures`]: named values
//! (`false_deaths`, `detection_ms_p99`, … listed with their meaning in
//! [`membership::METRICS`]) and the first few instances behind bad ones.
//!
//! [`consensus`] judges runs of consensus replicas: agreement, durability across restarts,
//! liveness after the faults, and the clients' history through [`history`].
//!
//! [`history`] judges clients' histories of the replicated list-append machine instead of
//! probes: an Elle-style search for dependency cycles, aborted and garbage reads, against strict
//! serializability.
//!
//! ```ignore
//! let probes = sim.probes().iter().map(|r| Observed {
//!     at: Duration::from_nanos(r.at.as_nanos()),
//!     node: r.node,
//!     probe: &r.probe,
//! });
//! let figures = membership::analyse(probes, &truth, &run);
//! assert_eq!(figures.get("false_deaths"), Some(0.0));
//! ```

use std::fmt;
use std::time::Duration;

pub mod adversary;
pub mod consensus;
pub mod history;
pub mod membership;
mod percentile;
pub mod truth;

pub use percentile::percentile;

pub use runtime::testing::{Figures, Observed};

/// A time since the start of the run as evidence prints it: seconds to the millisecond
/// (`12.345s`), computed as nanoseconds over 1e9 like the simulator's own clock display.
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.0.as_nanos() as f64 / 1e9)
    }
}
