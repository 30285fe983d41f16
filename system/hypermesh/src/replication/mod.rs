//! Replication: what consensus orders, made durable and applied.
//!
//! - [`StateMachine`]: the deterministic machine replicas apply committed blocks to, with
//!   snapshots; [`kv::ListAppend`] is the reference machine (append-only lists, the workload
//!   linearizability checkers read).
//! - [`BlockLog`]: the log of committed blocks on a node's `Storage`, crash-safe and checked: a
//!   torn or lost write past the committed height is cut off, damage below it is reported as
//!   heights to fetch again from peers, a failed sync fails the log until recovered.
//! - [`Snapshots`]: the newest state snapshot, durable, so the log below it can be pruned.
//!
//! The log stores opaque records (the consensus layer's encoded, certified blocks): it knows
//! heights and bytes, not blocks.

pub mod kv;
mod log;
mod machine;
mod snapshot;

pub use log::{BlockLog, LogError, MarkerCopies, Recovery, BASE_BYTES_MAX, RECORD_BYTES_MAX, SEGMENT_BLOCKS};
pub use machine::{BlockInfo, Outcome, RestoreError, StateMachine};
pub use snapshot::{Snapshot, Snapshots};
