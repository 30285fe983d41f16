//! Checkers for runs of TrustChain nodes: figures from what the nodes recorded (the probe
//! vocabulary of [`crate::node`]). Compiled only with the `testing` feature; the testbed's
//! `trustchain` workload and this crate's own tests use them.
//!
//! Nothing here names a backend: a run is handed over as [`Observed`] probes (when, which node,
//! what), so a run of the simulator, or of anything else that records probes, is judged the same
//! way. The figures are [`Figures`]: named values (`handshake_failures`, `nodes_enrolled`, …
//! listed with their meaning in [`METRICS`]) and the first few instances behind bad ones.

mod figures;

pub use figures::{analyse, refusal_class, METRICS, REVOKED_CLASS};

pub use runtime::testing::{Figures, Observed};
