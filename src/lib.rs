//! The testbed harness: declarative fault scenarios run against the stack in the deterministic
//! simulator, and checked.
//!
//! - [`scenario`]: the TOML format, validated with `file:line` errors, and printed back;
//! - [`workload`]: what a scenario runs on its nodes: one [`workload::Workload`] per
//!   `workload.kind`, registered in [`workload::WORKLOADS`];
//! - [`build`]: a scenario and a seed → a ready simulation, everything drawn recorded;
//! - [`run`]: one run and its summary; [`sweep`]: many seeds in parallel, in shards;
//!   [`shrink`]: a smaller scenario failing the same way;
//! - [`analysis`]: the plumbing between a finished run and its figures (ground truth, fault
//!   windows, merged figures); the checkers live beside their protocols
//!   (`hypermesh::testing`, `trustchain::testing`);
//! - [`assertion`]: `metric op threshold`, checked against the figures;
//! - [`cli`]: the bodies of the `testbed` commands.

pub mod analysis;
pub mod assertion;
pub mod build;
pub mod cli;
pub mod limits;
pub mod progress;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod sweep;
pub mod workload;
