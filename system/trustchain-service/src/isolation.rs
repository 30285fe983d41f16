//! Revocation on consensus's word: `POST /ca/isolate` takes a proof that the cluster committed the
//! isolation of a validator, and revokes that validator's certificates, identity and key, so that
//! STOQ refuses it on every node once they fetch the revocation lists.
//!
//! The CA does not speak consensus: an [`IsolationVerifier`] does (the operator's, over the
//! validators file and HyperMesh's proofs). Nobody needs an operator's credential to ask: the
//! proof is the authority, checked alone against the validator set as a light client would, so
//! any replica that committed the removal can hand it in, and handing it in twice changes nothing.
//!
//! A removal ends its epoch, and the next epoch's blocks are certified by the next set: the
//! verifier follows the epochs from the validators file on, one proof of an epoch's end after
//! the other, and the CA keeps each proof that took it into a new epoch in its storage
//! (`isolation.<chain>.<epoch>`), to follow them again when it restarts. A proof of an epoch
//! the CA has not reached yet is refused with `409` and `"refusal": "epoch_ahead"`: its sender
//! hands it in again once the earlier ends are in (some replica holds each).
//!
//! The CA never revokes the last validator of the set ([`IsolationVerifier::isolations_max`]),
//! counting every validator whose key it revoked, for whatever reason.

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

/// What a proof shows to an [`IsolationVerifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShownIsolation {
    /// The epoch whose end the proof shows.
    pub epoch: u64,
    /// The validators its removal isolated.
    pub isolated: Vec<IsolatedValidator>,
    /// Whether it ends the last epoch the verifier knows: the CA keeps it, then the verifier
    /// follows it into the next epoch ([`IsolationVerifier::follow`]).
    pub ends_last_epoch: bool,
}

/// Why a proof is not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsolationRefusal {
    /// The proof is of an epoch after the last one known: the proofs of the ends before it come
    /// first, and the proof may hold then.
    Ahead(String),
    /// The proof does not show a committed isolation, and never will.
    Invalid(String),
}

/// Checks isolation proofs against a validator set and the epochs that followed it.
pub trait IsolationVerifier: Send {
    /// What `proof` shows, or why it shows nothing (yet).
    fn verify(&self, proof: &[u8]) -> Result<ShownIsolation, IsolationRefusal>;

    /// Follows `proof`, which [`IsolationVerifier::verify`] showed to end the last epoch, into
    /// the next epoch; the reason if it does not.
    fn follow(&mut self, proof: &[u8]) -> Result<(), String>;

    /// The last epoch known, for answers.
    fn epoch(&self) -> u64;

    /// Names the epochs followed from this verifier's first set: the same for the same set,
    /// another for another (the proofs the CA keeps are of one chain of epochs).
    fn chain_name(&self) -> String;

    /// The raw public keys of every validator of the set.
    fn keys(&self) -> Vec<Vec<u8>>;

    /// Validators of the set that may be out at once: the replicas never remove the last
    /// member, and the CA never revokes more than this many of the set's validators, counting
    /// every validator whose key it revoked, for whatever reason.
    fn isolations_max(&self) -> usize;
}
