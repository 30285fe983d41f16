//! Bounds on what a scenario may ask for, so a typo cannot exhaust the machine.

/// Most nodes in one simulation.
pub const NODES_MAX: u32 = 10_000;
/// Most swarm faults of one kind per seed.
pub const SWARM_FAULTS_MAX: u32 = 64;
