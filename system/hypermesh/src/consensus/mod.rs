//! Byzantine fault-tolerant consensus: the data types, signatures, certificates, evidence, wire
//! format, and [`Replica`], the protocol on a node's host.
//!
//! # The protocol these types serve: chained HotStuff-2
//!
//! The family is chained HotStuff-2 (Malkhi and Nayak, 2023). Views are numbered from 1; the
//! leader of view `v` is [`ValidatorSet::leader`]`(v)`, round robin over the validator indices.
//!
//! - The leader proposes a [`Block`] extending the block of the highest [`QuorumCertificate`]
//!   it knows, carried in the [`Proposal`] as `justify`. It enters its view with a certificate
//!   of the previous view, or with a [`TimeoutCertificate`] of it (then `justify` must be at
//!   least as high as every high QC that certificate reports).
//! - Replicas send their signed [`Vote`] to the leader of the next view only (linear messages);
//!   a quorum of votes (`n - f`, at least `2f + 1`) is a certificate, built with [`QcBuilder`]
//!   and carried by the next proposal.
//! - A block commits when it and its child are certified in consecutive views (the two-chain
//!   rule).
//! - On a timeout, replicas send a signed [`Timeout`] with a summary of their highest
//!   certificate ([`QcSummary`]); a quorum of them ([`TcBuilder`]) lets the next leader propose.
//!
//! What this module gives that protocol: every message signed with the validator's Ed25519 key,
//! the key of its TrustChain certificate ([`Validator`], [`ed25519_key_from_spki`]); signatures
//! domain-separated by message kind and by the validator set's epoch ([`DOMAIN`]); certificates
//! anyone holding the [`ValidatorSet`] verifies alone; [`Proposal::verify`], every check of a
//! proposal that does not depend on a replica's state; [`Evidence`] of equivocation that anyone
//! checks before acting on it; and a strict, bounded wire format ([`wire`]).
//!
//! # Genesis
//!
//! The chain's root is the genesis block: height 0, view 0, digest [`GENESIS`] (all zeros). It
//! is never encoded, proposed or voted for. [`QuorumCertificate::genesis`] (view 0, height 0,
//! [`GENESIS`], no signers) certifies it by convention and verifies under every set; any other
//! certificate, vote or high QC touching view 0, height 0 or [`GENESIS`] is refused. The first
//! proposal is in view 1, at height 1, with parent [`GENESIS`] and `justify` the genesis
//! certificate.
//!
//! # Limits
//!
//! | limit | value | bounds |
//! |---|---|---|
//! | [`VALIDATORS_MAX`] | 1024 | a set; so signers of a certificate (indices are `u16`) |
//! | [`TRANSACTIONS_PER_BLOCK_MAX`] | 4096 | transactions in a block |
//! | [`TRANSACTION_BYTES_MAX`] | 64 KiB | one transaction |
//! | [`BLOCK_BYTES_MAX`] | 512 KiB | an encoded block |
//! | [`wire::MESSAGE_BYTES_MAX`] | about 690 KiB | an encoded message (the largest proposal), within STOQ's 1 MiB frame |
//!
//! The decoder refuses anything beyond them, naming the field and its offset.

mod block;
mod certificate;
pub mod checkpoint;
pub mod client;
mod config;
pub mod control;
mod crypto;
pub mod detection;
mod evidence;
pub mod isolation;
mod messages;
pub mod replica;
mod validators;
pub mod wire;

pub use block::{
    Block, BlockError, BLOCK_BYTES_MAX, BLOCK_HEADER_BYTES, GENESIS, TRANSACTIONS_PER_BLOCK_MAX, TRANSACTION_BYTES_MAX,
};
pub use certificate::{
    AggregateError, CertificateError, QcBuilder, QuorumCertificate, TcBuilder, TimeoutCertificate, TimeoutEntry,
};
pub use config::{ConfigError, ConsensusConfig};
pub use crypto::{
    ed25519_key_from_spki, sha256, share_verifications, take_verifications, verify_signature, Digest, KeyError,
    PublicKey, Signature, ValidatorKey, DOMAIN, ED25519_SPKI_PREFIX, SIGNATURE_BYTES,
};
pub use evidence::{Evidence, EvidenceError};
pub use isolation::{
    EpochChain, EpochChainError, Followed, Isolation, IsolationProof, IsolationProofError, ISOLATION_PROOF_BLOCKS_MAX,
    ISOLATION_PROOF_BYTES_MAX,
};
pub use messages::{
    MessageError, Proposal, ProposalError, ProposalHeader, QcSummary, Reason, Report, SignError, Timeout, Vote,
};
pub use replica::{Outgoing, Replica, ReplicaStats, Tamper, MOUNT};
pub use validators::{
    epoch_of_view, first_view_of, Validator, ValidatorIndex, ValidatorSet, ValidatorSetError, VALIDATORS_MAX,
};
pub use wire::{
    Answer, AnswerKind, Blocks, CertifiedBlock, Consistency, Fetch, Message, Query, QueryAnswer, SnapshotChunk,
    SnapshotOffer, Submit, WireError, SNAPSHOT_CHUNK_BYTES_MAX,
};

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
