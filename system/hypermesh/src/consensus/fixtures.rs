//! A committee of validators with their keys, and well-formed messages signed by it, for the
//! module's tests.

use bytes::Bytes;

use super::*;
use crate::membership::NodeId;

pub struct Committee {
    pub set: ValidatorSet,
    pub keys: Vec<ValidatorKey>,
}

impl Committee {
    /// `n` validators of `epoch`, validator `i` on node `i` with the key of seed `[i + 1; 32]`.
    pub fn new(n: usize, epoch: u64) -> Committee {
        let keys: Vec<_> = (0..n)
            .map(|i| {
                let mut seed = [0; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
                ValidatorKey::from_seed(&seed)
            })
            .collect();
        let validators = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Validator {
                node: NodeId(i as u64),
                name: format!("node-{i}"),
                public_key: k.public_key(),
            })
            .collect();
        Committee {
            set: ValidatorSet::new(epoch, validators).unwrap(),
            keys,
        }
    }

    /// The same validators and keys under another epoch.
    pub fn in_epoch(&self, epoch: u64) -> ValidatorSet {
        ValidatorSet::new(epoch, self.set.validators().to_vec()).unwrap()
    }

    pub fn vote(&self, signer: usize, summary: QcSummary) -> Vote {
        Vote::sign(&self.set, &self.keys[signer], summary).unwrap()
    }

    pub fn timeout(&self, signer: usize, view: u64, high_qc: QcSummary) -> Timeout {
        Timeout::sign(&self.set, &self.keys[signer], view, high_qc).unwrap()
    }

    /// The certificate of `signers`' votes for `summary` (any number of them, unchecked).
    pub fn qc(&self, summary: QcSummary, signers: &[usize]) -> QuorumCertificate {
        let votes: Vec<_> = signers.iter().map(|&i| self.vote(i, summary)).collect();
        QuorumCertificate {
            view: summary.view,
            height: summary.height,
            block: summary.block,
            signers: votes.iter().map(|v| v.signer).collect(),
            signatures: votes.iter().map(|v| v.signature).collect(),
        }
    }

    /// A quorum's certificate for `summary`, from the first validators.
    pub fn quorum_qc(&self, summary: QcSummary) -> QuorumCertificate {
        self.qc(summary, &(0..self.set.quorum()).collect::<Vec<_>>())
    }

    /// The timeout certificate of `entries` (signer, high QC), unchecked.
    pub fn tc(&self, view: u64, entries: &[(usize, QcSummary)]) -> TimeoutCertificate {
        TimeoutCertificate {
            view,
            entries: entries
                .iter()
                .map(|&(i, high_qc)| {
                    let t = self.timeout(i, view, high_qc);
                    TimeoutEntry {
                        signer: t.signer,
                        high_qc,
                        signature: t.signature,
                    }
                })
                .collect(),
        }
    }

    /// The block the leader of `view` proposes over `justify`, with two transactions.
    pub fn block(&self, view: u64, justify: &QuorumCertificate) -> Block {
        Block {
            height: justify.height + 1,
            view,
            parent: justify.block,
            proposer: self.set.leader(view),
            timestamp_ms: 1_790_000_000_000 + view,
            transactions: vec![Bytes::from_static(b"put k v"), Bytes::from(vec![view as u8; 40])],
        }
    }

    /// The proposal of the leader of `view` over `justify` (and `timeout`).
    pub fn proposal(&self, view: u64, justify: QuorumCertificate, timeout: Option<TimeoutCertificate>) -> Proposal {
        let block = self.block(view, &justify);
        let leader = usize::from(block.proposer);
        Proposal::sign(&self.set, &self.keys[leader], block, justify, timeout).unwrap()
    }
}

/// A summary of a block at `view` and `height` with a digest made from `tag`.
pub fn summary(view: u64, height: u64, tag: u8) -> QcSummary {
    QcSummary {
        view,
        height,
        block: sha256(&[tag]),
    }
}
