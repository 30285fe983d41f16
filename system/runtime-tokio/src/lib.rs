//! The production backend of the runtime seams: tokio, real UDP sockets bound IPv6-only, real
//! files and OS randomness.
//!
//! A protocol [`runtime::Actor`] runs here unchanged from the simulator. [`RealEnv`] implements
//! every seam for one node; [`drive`] is the event loop that feeds it datagrams and timers;
//! [`run_node`] runs one node until told to stop; [`LocalCluster`] runs several on loopback in one
//! process for tests and demos. [`HttpsServer`] serves a [`runtime::HttpService`] over HTTPS.
//!
//! Differences from the simulator an actor may notice: time is real (timers fire late, never
//! early), datagrams are lost only when the host drops them (a full send buffer is counted in
//! [`NodeStats::sends_dropped`]), and `Instant`s start at the node's start.

// This crate is a backend: it is where the OS clock, threads, tokio tasks, sockets and OS
// randomness that `clippy.toml` keeps out of protocol code are allowed, to implement the seams.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod clock;
pub use clock::host_wall_now;
mod cluster;
mod cpu;
mod driver;
mod env;
mod error;
mod files;
mod https;
mod https_client;
mod memory;
mod node;
mod probes;
mod seeds;
#[cfg(test)]
mod test_dir;
mod timers;
mod udp;
mod uring;

pub use cluster::{ClusterOutcome, LocalCluster};
pub use cpu::process_cpu_time;
pub use driver::{drive, NodeStats, RECV_BUFFER_BYTES};
pub use env::{NodeSpec, RealEnv, SocketBuffers, SOCKET_BUFFER_BYTES_DEFAULT};
pub use error::BackendError;
pub use files::DirStorage;
pub use https::{CertificateSlot, ErrorStyle, HttpsConfig, HttpsError, HttpsServer, ServerFigures, ServerLoad};
pub use https_client::{HttpsClient, HttpsClientError};
pub use memory::release_free_memory;
pub use node::{run_node, run_node_uring};
pub use probes::{ProbeRecord, ProbeSender};
pub use seeds::{resolve_seed, resolve_seeds, SeedError};
pub use udp::{SEGMENTS_MAX, SEND_QUEUE_MAX};
pub use uring::{drive_uring, RECV_BUFFERS, SEND_SLOTS};
