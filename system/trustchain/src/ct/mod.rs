//! Certificate transparency (RFC 9162): the Merkle tree and its proofs ([`merkle`]), the
//! persistent append-only log ([`log`]) and signed tree heads ([`sth`]).

pub mod log;
pub mod merkle;
pub mod sth;

pub use log::{verify, CtError, CtLog, Recovery, Verification, ENTRY_BYTES_MAX};
pub use merkle::{leaf_hash, verify_consistency, verify_inclusion, Hash, MerkleTree, ProofError, VerifyError};
pub use sth::{BadSignature, LogKey, SignedTreeHead};
