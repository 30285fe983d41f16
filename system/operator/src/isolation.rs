//! Isolation proofs between the cluster and the CA: the CA's check of them
//! (`trustchain serve --validators FILE`), over HyperMesh's [`IsolationProof`] and the
//! validators file every node reads.
//!
//! A replica that commits the removal of a validator keeps a proof of it; its node hands it to
//! the CA ([`crate::node`]), which revokes the validator's certificates, identity and key. The
//! CA needs no credential from the node: it checks the proof alone against the validator set, as
//! a light client would (every certificate a quorum of the set's keys in its epoch, the two-chain
//! commit rule, and the removal's own proof with the reporters the replicas require).

use std::net::IpAddr;
use std::path::Path;

use hypermesh::consensus::{ConsensusConfig, IsolationProof, ValidatorSet};
use trustchain_service::isolation::{IsolatedValidator, IsolationVerifier};

use crate::validators::{InvalidFile, Validators};

/// The CA's check of isolation proofs for one validators file.
pub struct ValidatorSetVerifier {
    file: Validators,
    set: ValidatorSet,
    threshold: usize,
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
        let threshold = ConsensusConfig::default().detection.threshold(set.f());
        Ok(ValidatorSetVerifier { file, set, threshold })
    }

    /// Validators in the set.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether the set is empty (never, for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.set.len() == 0
    }
}

impl IsolationVerifier for ValidatorSetVerifier {
    fn verify(&self, proof: &[u8]) -> Result<Vec<IsolatedValidator>, String> {
        let proof = IsolationProof::decode(proof).map_err(|e| e.to_string())?;
        let shown = proof.verify(&self.set, self.threshold).map_err(|e| e.to_string())?;
        shown
            .into_iter()
            .map(|isolation| {
                let entry = &self.file.validators[usize::from(isolation.accused)];
                let IpAddr::V6(addr) = entry.address.ip() else {
                    return Err(format!(
                        "validator {} ({}) has an address that is not IPv6",
                        isolation.accused, entry.name
                    ));
                };
                Ok(IsolatedValidator {
                    validator: isolation.accused,
                    name: entry.name.clone(),
                    addr,
                    key: entry.public_key.to_vec(),
                    height: isolation.height,
                })
            })
            .collect()
    }

    fn epoch(&self) -> u64 {
        self.set.epoch()
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        self.file.validators.iter().map(|v| v.public_key.to_vec()).collect()
    }

    fn isolations_max(&self) -> usize {
        // The Byzantine validators the file's set tolerates: more revoked on proofs of that set
        // would say the set itself was not to be trusted.
        self.set.len() - self.set.quorum()
    }
}
