//! From what the nodes recorded (probes) and what was done to them (the schedule) to the figures
//! scenarios assert on: the plumbing every workload shares. The checkers themselves live beside
//! their protocols (`hypermesh::testing`, `trustchain::testing`), and each workload
//! (`crate::workload`) calls its own.
//!
//! - [`truth`]: the ground truth of reachability, from the start times and the fault schedule;
//! - [`windows`]: the fault windows every plot shades;
//! - [`Analysis`]: a run's figures, merged over the protocols of a workload, and looked up by
//!   the assertions.

pub mod truth;
pub mod windows;

use std::collections::BTreeMap;

use simulator::FaultCounts;

use crate::workload::WORKLOADS;

pub use windows::fault_windows;

/// Every metric name a scenario may assert on, once each: each workload's, in the order of
/// [`WORKLOADS`]. A name several workloads report (`storage_errors`, `malformed_datagrams`) is
/// listed where it first appears, so a list of them shown to a user repeats nothing.
/// `faults.KIND` (a count of an injected fault) is also accepted.
pub fn metric_names() -> impl Iterator<Item = &'static str> {
    let mut seen = std::collections::BTreeSet::new();
    WORKLOADS
        .iter()
        .flat_map(|w| w.metrics().into_iter().map(|(name, _)| name))
        .chain(HARNESS_METRICS.iter().map(|(name, _)| *name))
        .filter(move |name| seen.insert(*name))
}

/// Metrics every run has, whatever its workload: (name, meaning).
pub const HARNESS_METRICS: &[(&str, &str)] = &[(
    crate::run::FAULTS_WITHOUT_EFFECT,
    "scheduled faults that changed nothing (a crash of nodes already down, a pause of a crashed node), unless a crash the simulator struck at a storage call got there first; swarm runs fail on any",
)];

/// The figures of one run, by metric name; `None` where a figure has no value (e.g. a pair was
/// never detected, so there is no honest maximum).
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// Metric name → value.
    pub metrics: BTreeMap<String, Option<f64>>,
    /// The first few instances behind bad figures (a false death: who, whom, when), so a
    /// failing seed can be read without a debugger.
    pub evidence: Vec<String>,
}

impl Analysis {
    /// The figures of two protocols' analyses of one run: a metric both report (a count such
    /// as `storage_errors`) is their sum; evidence is kept from both.
    pub fn merge(mut self, other: Analysis) -> Analysis {
        for (name, value) in other.metrics {
            let merged = match (self.metrics.get(&name).copied().flatten(), value) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            self.metrics.insert(name, merged);
        }
        self.evidence.extend(other.evidence);
        self
    }

    /// The value of `metric`, resolving `faults.KIND` against the run's fault counts.
    pub fn value(&self, metric: &str, faults: &FaultCounts) -> Option<f64> {
        if let Some(kind) = metric.strip_prefix("faults.") {
            return Some(faults.get(kind) as f64);
        }
        self.metrics.get(metric).copied().flatten()
    }
}

/// Every protocol's checker returns the same [`runtime::testing::Figures`].
impl From<runtime::testing::Figures> for Analysis {
    fn from(f: runtime::testing::Figures) -> Self {
        Analysis {
            metrics: f.metrics,
            evidence: f.evidence,
        }
    }
}
