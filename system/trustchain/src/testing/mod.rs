//! Checkers for runs of TrustChain nodes: figures from what the nodes recorded (the probe
//! vocabulary of [`crate::node`]). Compiled only with the `testing` feature; the testbed's
//! `trustchain` workload and this crate's own tests use them.
//!
//! Nothing here names a backend: a run is handed over as [`Observed`] probes (when, which node,
//! what), so a run of the simulator, or of anything else that records probes, is judged the same
//! way. The figures are [`Figures`]: named values (`handshake_failures`, `nodes_enrolled`, …
//! listed with their meaning in [`METRICS`]) and the first few instances behind bad ones.

use std::collections::BTreeMap;
use std::time::Duration;

use runtime::Probe;

mod figures;

pub use figures::{analyse, refusal_class, METRICS, REVOKED_CLASS};

/// One probe as a run recorded it.
#[derive(Copy, Clone, Debug)]
pub struct Observed<'a> {
    /// True time since the start of the run (not the node's clock).
    pub at: Duration,
    /// The recording node's index in the run (`0..nodes`).
    pub node: u32,
    /// What it recorded.
    pub probe: &'a Probe,
}

/// The figures of one run, by metric name; `None` where a figure has no value (e.g. a node
/// never enrolled, so there is no time until every node did).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Metric name → value.
    pub metrics: BTreeMap<String, Option<f64>>,
    /// The first few instances behind bad figures (a refused handshake: who, with whom, why).
    pub evidence: Vec<String>,
}

impl Figures {
    /// The value of `metric`; `None` if it has no value or is not one of these figures.
    pub fn get(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).copied().flatten()
    }
}
