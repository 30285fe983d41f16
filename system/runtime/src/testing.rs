//! What every protocol's checkers share: a run's probes as they were recorded ([`Observed`]) and
//! the figures a checker makes of them ([`Figures`]). The checkers themselves live beside their
//! protocol (`hypermesh::testing`, `trustchain::testing`, behind a `testing` feature); these
//! types name no backend, so a simulated run and a real one are judged alike.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Probe;

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

/// The figures of one run, by metric name; `None` where a figure has no value (a pair never
/// detected, a node never enrolled: there is no honest maximum).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Metric name → value.
    pub metrics: BTreeMap<String, Option<f64>>,
    /// The first few instances behind bad figures (a false death, a refused handshake: who,
    /// whom, when), so a failing run can be read without a debugger.
    pub evidence: Vec<String>,
}

impl Figures {
    /// The value of `metric`; `None` if it has no value or is not one of these figures.
    pub fn get(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).copied().flatten()
    }
}
