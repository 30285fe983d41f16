//! Test benches shared by membership's integration tests.

pub mod bench;
pub mod cluster;
