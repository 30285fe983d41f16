//! Revocation on consensus's word: `POST /ca/isolate` takes a proof that the cluster committed the
//! isolation of a validator, and revokes that validator's certificates, identity and key, so that
//! STOQ refuses it on every node once they fetch the revocation lists.
//!
//! The CA does not speak consensus: an [`IsolationVerifier`] does (the operator's, over the
//! validators file and HyperMesh's proofs). Nobody needs an operator's credential to ask: the
//! proof is the authority, checked alone against the validator set as a light client would, so
//! any replica that committed the removal can hand it in, and handing it in twice changes nothing.

use std::net::Ipv6Addr;

/// Largest body `/ca/isolate` takes: a proof of a few certified blocks.
pub const ISOLATION_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// A validator a proof shows isolated, as the validator set names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsolatedValidator {
    /// Its index in the validator set.
    pub validator: u16,
    /// The node name its certificates carry.
    pub name: String,
    /// Its address.
    pub addr: Ipv6Addr,
    /// Its raw public key, as its certificates carry it.
    pub key: Vec<u8>,
    /// The height of the block whose removal isolated it.
    pub height: u64,
}

/// Checks isolation proofs against a validator set.
pub trait IsolationVerifier: Send {
    /// The validators `proof` shows isolated by a committed removal, or why it does not show any.
    fn verify(&self, proof: &[u8]) -> Result<Vec<IsolatedValidator>, String>;

    /// The validator set's epoch, for answers.
    fn epoch(&self) -> u64;
}
