//! Revocation on consensus's word: `POST /ca/isolate` takes a proof that the cluster committed the
//! isolation of a validator, and revokes that validator's certificates, identity and key, so that
//! STOQ refuses it on every node once they fetch the revocation lists.
//!
//! The CA does not speak consensus: an [`IsolationVerifier`] does (the operator's, over the
//! validators file and HyperMesh's proofs). Nobody needs an operator's credential to ask: the
//! proof is the authority, checked alone against the validator set as a light client would, so
//! any replica that committed the removal can hand it in, and handing it in twice changes nothing.
//!
//! A committed block may also carry a removal the replicas refused when applying it, because
//! isolating one more would have left fewer validators than a quorum. A proof shows the block
//! committed, not what applying it decided, so the CA applies the same bound itself: it revokes
//! no more than [`IsolationVerifier::isolations_max`] of the set's validators (in the order
//! proofs arrive; the replicas hand in proofs only of removals they applied).

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

    /// The raw public keys of every validator of the set.
    fn keys(&self) -> Vec<Vec<u8>>;

    /// Validators of the set that may be out at once: the replicas refuse to isolate more
    /// (fewer than a quorum would be left to commit), and so does the CA, counting every
    /// validator whose key it revoked, for whatever reason.
    fn isolations_max(&self) -> usize;
}
