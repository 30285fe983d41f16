//! Isolation proofs between the cluster and the CA: the CA's check of them
//! (`trustchain serve --validators FILE`), over HyperMesh's [`IsolationProof`] and the
//! validators file every node reads.
//!
//! A replica that commits the removal of a validator keeps a proof of it; its node hands it to
//! the CA ([`crate::node`]), which revokes the validator's certificates, identity and key. The
//! CA needs no credential from the node: it checks the proof alone against the validator set of
//! the proof's epoch, as a light client would (every certificate a quorum of that set's keys in
//! its epoch, the two-chain commit rule, and the removal's own proof with the reporters the
//! replicas require). The sets after the file's follow from the proofs of each epoch's end, in
//! order ([`EpochChain`]).

use std::net::IpAddr;
use std::path::Path;

use hypermesh::consensus::{sha256, ConsensusConfig, EpochChain, EpochChainError, IsolationProof};
use trustchain_service::isolation::{IsolatedValidator, IsolationRefusal, IsolationVerifier, ShownIsolation};

use crate::validators::{InvalidFile, Validators};

/// The CA's check of isolation proofs for one validators file and the epochs after it.
pub struct ValidatorSetVerifier {
    file: Validators,
    chain: EpochChain,
}

impl ValidatorSetVerifier {
    /// The check for the validators file at `path`, with the replicas' default detection
    /// settings (the nodes run with them).
    pub fn load(path: &Path) -> Result<ValidatorSetVerifier, InvalidFile> {
        let file = Validators::load(path)?;
        ValidatorSetVerifier::new(file).map_err(|e| InvalidFile(format!("{}: {}", path.display(), e.0)))
    }

    /// The check for `file`.
    pub fn new(file: Validators) -> Result<ValidatorSetVerifier, InvalidFile> {
        let set = file.set().map_err(|e| InvalidFile(e.to_string()))?;
        let chain = EpochChain::new(set, ConsensusConfig::default().detection);
        Ok(ValidatorSetVerifier { file, chain })
    }

    /// Validators in the set.
    pub fn len(&self) -> usize {
        self.file.validators.len()
    }

    /// Whether the set is empty (never, for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.file.validators.is_empty()
    }

    fn check(&self, proof: &[u8]) -> Result<hypermesh::consensus::Followed, IsolationRefusal> {
        let proof = IsolationProof::decode(proof).map_err(|e| IsolationRefusal::Invalid(e.to_string()))?;
        self.chain.check(&proof).map_err(|e| match e {
            EpochChainError::Ahead { .. } => IsolationRefusal::Ahead(e.to_string()),
            _ => IsolationRefusal::Invalid(e.to_string()),
        })
    }
}

impl IsolationVerifier for ValidatorSetVerifier {
    fn verify(&self, proof: &[u8]) -> Result<ShownIsolation, IsolationRefusal> {
        let followed = self.check(proof)?;
        let isolated = followed
            .isolations
            .iter()
            .map(|isolation| {
                let entry = &self.file.validators[usize::from(isolation.accused)];
                let IpAddr::V6(addr) = entry.address.ip() else {
                    return Err(IsolationRefusal::Invalid(format!(
                        "validator {} ({}) has an address that is not IPv6",
                        isolation.accused, entry.name
                    )));
                };
                Ok(IsolatedValidator {
                    validator: isolation.accused,
                    name: entry.name.clone(),
                    addr,
                    key: entry.public_key.to_vec(),
                    height: isolation.height,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ShownIsolation {
            epoch: followed.epoch,
            isolated,
            ends_last_epoch: followed.next.is_some(),
        })
    }

    fn follow(&mut self, proof: &[u8]) -> Result<(), String> {
        let followed = self.check(proof).map_err(|r| match r {
            IsolationRefusal::Ahead(why) | IsolationRefusal::Invalid(why) => why,
        })?;
        if followed.next.is_none() {
            return Err(format!(
                "it shows the end of epoch {}, followed already",
                followed.epoch
            ));
        }
        self.chain.follow(followed);
        Ok(())
    }

    fn epoch(&self) -> u64 {
        self.chain.current().epoch()
    }

    fn chain_name(&self) -> String {
        // The first set's epoch and keys: what every later set and proof follows from.
        let mut named = self.file.epoch.to_be_bytes().to_vec();
        for v in &self.file.validators {
            named.extend_from_slice(&v.public_key);
        }
        sha256(&named)[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        self.file.validators.iter().map(|v| v.public_key.to_vec()).collect()
    }

    fn isolations_max(&self) -> usize {
        // The replicas never remove an epoch's last member.
        self.file.validators.len() - 1
    }
}
