//! Cluster membership and failure detection.
//!
//! # Why SWIM (with Lifeguard), not phi-accrual
//!
//! Phi-accrual needs a heartbeat stream from every monitored peer; monitoring everyone is O(n²)
//! messages per period. SWIM probes one peer per node per period, so the cluster sends O(n)
//! messages per period whatever its size, and the time until *some* node notices a failure is
//! bounded (round-robin probe order). Suspicion is then spread by gossip piggybacked on the probes
//! and by a small eager fan-out. Lifeguard's refinements cut false positives: a suspected node
//! refutes with a higher incarnation, and a suspicion needs `confirmation_required` independent
//! confirmations to time out quickly; alone it waits the longest.
//!
//! # Joins and anti-entropy
//!
//! A joiner asks one seed (its primary) for the member list and tells the others it is joining;
//! the primary announces it, with the others it admitted meanwhile, to every member in one
//! batch a second (each joiner in three consecutive batches, as an announcement is not
//! acknowledged), instead of gossip telling every node about every joiner twelve times over.
//! Catch-up pulls from the other seeds, in turn (their lists are the fullest early on), fill
//! what an announcement missed. Anti-entropy opens with a digest of the view and exchanges
//! lists only where views differ, so a settled cluster's exchanges cost a datagram, whatever
//! its size. ARCHITECTURE.md lists why each step is so.
//!
//! # The guide's settings
//!
//! - `latency_tolerance` (500 ms): the one-way delay the detector must tolerate. A probe is only
//!   given up after a full round trip at that tolerance (2 × 500 ms plus a margin), so latency
//!   alone never causes a suspicion.
//! - `clock_skew_max` (30 s): the detector itself uses only each node's monotonic clock, so wall
//!   clock skew cannot cause a suspicion; wall time appears only in join requests, and a node whose
//!   clock is off by more than this is refused membership with a reason, instead of joining and
//!   confusing everything that later compares timestamps.
//! - `confirmation_required` (3): Lifeguard's K, the independent suspicions that shorten the
//!   suspicion timeout to its minimum.
//!
//! # Probes recorded (see [`runtime::Probe`])
//!
//! | name | subject | value |
//! |---|---|---|
//! | `member` | node id | new state of that member in this node's view: 0 alive, 1 suspect, 2 dead |
//! | `majority` | view size | 1 if this node's side holds a majority of the membership, else 0 |
//! | `joined` | seed count answered (1 once a seed asked as primary answered, 0 for the first seed) | 1 |
//! | `join_refused` | refusing node id | wall-clock skew in ms |
//! | `refute` | own id | new incarnation |
//! | `storage_error` | 0 | 1 |
//! | `identity_refused` | the id the message's sender claimed | with an identity binding, a message refused whole: 1 the address's certified name maps to another member (or to none), 2 the transport authenticates nobody at the address |
//! | `ack_refused` | the probed member's id | 1: an ack with the number of a ping in flight, from neither the probed member's address nor a helper asked to probe it (for a relayed probe: not from the target's address); ignored |
//! | `announce_refused` | the id the announcement's sender claimed | 1: an announcement from anyone but a configured seed held alive at that address; ignored |
//! | `digest_refused` | the id the digest's sender claimed | 1: a digest whose record is not its sender's own, alive; ignored, not answered |
//! | `implausible_incarnation` | the accuser's claim's subject (this node) | 1: an accusation beyond [`INCARNATION_LEAD_MAX`], ignored |

mod broadcasts;
mod config;
mod incarnation;
mod members;
mod node;
mod suspicion;
pub mod wire;

pub use config::{ConfigError, IdentityBinding, MembershipConfig};
pub use members::MemberState;
pub use node::{MembershipNode, Timer, INCARNATION_LEAD_MAX, MOUNT};
pub use wire::NodeId;
