//! HyperMesh: the cluster layer of the stack.
//!
//! So far: [`membership`], which finds the other nodes from a static seed list (bootstrap
//! phase 0), detects failures with a SWIM-style detector refined by Lifeguard, and tells every
//! node which side of a partition it is on and whether that side holds a majority.
//!
//! Everything here is a sans-IO [`runtime::Actor`]: it runs unchanged in the deterministic
//! simulator and on real sockets.
//!
//! With the `testing` feature, `testing` holds the checkers that turn a run's probes into
//! figures (detection and death times, false deaths, convergence), for this crate's tests and
//! the testbed.

pub mod consensus;
pub mod membership;
pub mod replication;
#[cfg(feature = "testing")]
pub mod testing;
