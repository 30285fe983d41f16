//! Proof, for those outside the cluster, that a validator's isolation committed: the block that
//! carries its [`Removal`] and the certified blocks after it up to two in consecutive views (the
//! two-chain commit rule). Anyone holding the [`ValidatorSet`] checks it alone, as a light client
//! would; TrustChain's CA revokes the isolated validator's certificate on it (`POST /ca/isolate`),
//! so that STOQ refuses it everywhere, not only in consensus.
//!
//! A replica keeps one for each removal it commits live ([`super::Replica`], file
//! `removal.<accused>` under its mount) and says so with the probe `isolation_proof`.
//!
//! ```text
//! isolation_proof = version u8 (1) | count u16 | count × (length u32 | certified block)
//! ```
//!
//! Its first block carries the removal; each next block extends the one before (parent digest,
//! height + 1); every block comes with a quorum certificate of exactly it; and some block and the
//! one after it are in consecutive views, which commits every block up to the first of them.
//!
//! A removal ends its epoch, and the next epoch's blocks are certified by the next set, so a
//! light client checks a proof of a later epoch against the set that epoch has: an
//! [`EpochChain`] follows the epochs from the validators file on, one proof of each epoch's end
//! after the other, and derives each next set as the replicas do.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::certificate::CertificateError;
use super::control::{is_control, Removal};
use super::detection::DetectionConfig;
use super::validators::{epoch_of_view, ValidatorIndex, ValidatorSet, ValidatorSetError};
use super::wire::{CertifiedBlock, WireError};

/// The version of the encoding.
const VERSION: u8 = 1;

/// Most blocks one proof carries. A replica proves with the shortest chain it holds, usually two
/// blocks; a longer one means the removal committed through a long run of views that were not
/// consecutive.
pub const ISOLATION_PROOF_BLOCKS_MAX: usize = 8;

/// Largest encoded proof: [`ISOLATION_PROOF_BLOCKS_MAX`] of the largest certified blocks would
/// not fit, but blocks of that size are not proposed under the default batch limits.
pub const ISOLATION_PROOF_BYTES_MAX: usize = 4 * 1024 * 1024;

/// That a validator's removal committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsolationProof {
    /// The removal's block first, then the certified blocks that show it committed.
    pub chain: Vec<CertifiedBlock>,
}

/// A committed isolation, as a proof shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isolation {
    /// The validator isolated.
    pub accused: ValidatorIndex,
    /// The height of the block that carries its removal.
    pub height: u64,
}

/// Why bytes are not a proof of a committed isolation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsolationProofError {
    /// The encoding is malformed.
    #[error("the proof does not decode: {0}")]
    Encoding(String),
    /// A block of it does not decode.
    #[error("block {index} of the proof does not decode: {error}")]
    Block {
        /// Its position in the proof.
        index: usize,
        /// What is wrong.
        error: WireError,
    },
    /// Fewer than two blocks, or more than [`ISOLATION_PROOF_BLOCKS_MAX`].
    #[error("the proof carries {0} blocks; it needs 2 to {ISOLATION_PROOF_BLOCKS_MAX} (the removal's block, then certified blocks up to two in consecutive views)")]
    Length(usize),
    /// A block does not extend the one before it.
    #[error("block {index} (height {height}) does not extend block {} of the proof", index - 1)]
    Unlinked {
        /// Its position in the proof.
        index: usize,
        /// The height it claims.
        height: u64,
    },
    /// A block's certificate is of another block.
    #[error("block {index} (height {height}): its certificate is not of it")]
    NotItsCertificate {
        /// Its position in the proof.
        index: usize,
        /// Its height.
        height: u64,
    },
    /// A block's certificate does not verify under the validator set.
    #[error("block {index} (height {height}): its certificate does not verify: {error}")]
    Certificate {
        /// Its position in the proof.
        index: usize,
        /// Its height.
        height: u64,
        /// Why.
        error: CertificateError,
    },
    /// No two blocks of it are in consecutive views.
    #[error("no block of the proof is followed by one of the next view: nothing in it is shown committed")]
    NotCommitted,
    /// The first block carries no removal that holds.
    #[error("the first block (height {height}) carries no removal that holds{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    NoRemoval {
        /// Its height.
        height: u64,
        /// Why the last removal it carries does not hold, if it carries one.
        detail: Option<String>,
    },
}

impl IsolationProof {
    /// Its bytes.
    ///
    /// # Panics
    ///
    /// If it carries more than [`ISOLATION_PROOF_BLOCKS_MAX`] blocks (a bug of the caller).
    pub fn encode(&self) -> Bytes {
        assert!(
            self.chain.len() <= ISOLATION_PROOF_BLOCKS_MAX,
            "{} blocks in an isolation proof",
            self.chain.len()
        );
        let blocks: Vec<Bytes> = self.chain.iter().map(CertifiedBlock::encode).collect();
        let mut out = BytesMut::with_capacity(3 + blocks.iter().map(|b| 4 + b.len()).sum::<usize>());
        out.put_u8(VERSION);
        out.put_u16(blocks.len() as u16);
        for b in blocks {
            out.put_u32(b.len() as u32);
            out.put_slice(&b);
        }
        out.freeze()
    }

    /// Decodes a proof, naming what is wrong; checks nothing it claims ([`IsolationProof::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<IsolationProof, IsolationProofError> {
        let malformed = |what: String| IsolationProofError::Encoding(what);
        if bytes.len() > ISOLATION_PROOF_BYTES_MAX {
            return Err(malformed(format!(
                "{} bytes, at most {ISOLATION_PROOF_BYTES_MAX}",
                bytes.len()
            )));
        }
        let (&version, rest) = bytes.split_first().ok_or_else(|| malformed("empty".into()))?;
        if version != VERSION {
            return Err(malformed(format!("version {version}, this node speaks {VERSION}")));
        }
        let (count, mut rest) = take_be::<2>(rest).ok_or_else(|| malformed("cut short in its block count".into()))?;
        let count = usize::from(u16::from_be_bytes(count));
        if !(2..=ISOLATION_PROOF_BLOCKS_MAX).contains(&count) {
            return Err(IsolationProofError::Length(count));
        }
        let mut chain = Vec::with_capacity(count);
        for index in 0..count {
            let (length, tail) =
                take_be::<4>(rest).ok_or_else(|| malformed(format!("cut short in the length of block {index}")))?;
            let length = u32::from_be_bytes(length) as usize;
            if tail.len() < length {
                return Err(malformed(format!(
                    "block {index} is {length} bytes, {} remain",
                    tail.len()
                )));
            }
            let (block, tail) = tail.split_at(length);
            chain.push(CertifiedBlock::decode(block).map_err(|error| IsolationProofError::Block { index, error })?);
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(malformed(format!("{} bytes after the last block", rest.len())));
        }
        Ok(IsolationProof { chain })
    }

    /// The isolations it shows committed under `set`, where a removal by reports needs
    /// `threshold` distinct reporters (as the replicas' detection settings make it): every
    /// removal in its first block whose proof holds. Checks each link, each certificate (a quorum
    /// of `set`, in its epoch) and the two-chain commit rule. Every removal's proof is checked
    /// against `set` too (see [`IsolationProof::verify_across`] for proofs of earlier epochs).
    pub fn verify(&self, set: &ValidatorSet, threshold: usize) -> Result<Vec<Isolation>, IsolationProofError> {
        self.verify_across(set, &|_| Some((set, threshold)))
    }

    /// [`IsolationProof::verify`], with the proof of each removal checked against the set of
    /// the epoch it was signed in, and that set's reporter threshold (`sets_of(epoch)`, `None`
    /// for an epoch unknown): misbehaviour shown in one epoch can be committed in a later one.
    pub fn verify_across<'s>(
        &self,
        set: &'s ValidatorSet,
        sets_of: &dyn Fn(u64) -> Option<(&'s ValidatorSet, usize)>,
    ) -> Result<Vec<Isolation>, IsolationProofError> {
        let count = self.chain.len();
        if !(2..=ISOLATION_PROOF_BLOCKS_MAX).contains(&count) {
            return Err(IsolationProofError::Length(count));
        }
        for (index, record) in self.chain.iter().enumerate() {
            let block = &record.block;
            if block.check_limits().is_err() {
                return Err(IsolationProofError::Encoding(format!(
                    "block {index} breaks the block limits"
                )));
            }
            if index > 0 {
                let before = &self.chain[index - 1];
                if block.parent != before.qc.block || block.height != before.block.height + 1 {
                    return Err(IsolationProofError::Unlinked {
                        index,
                        height: block.height,
                    });
                }
            }
            let qc = &record.qc;
            if qc.view != block.view || qc.height != block.height || qc.block != block.digest() {
                return Err(IsolationProofError::NotItsCertificate {
                    index,
                    height: block.height,
                });
            }
            qc.verify(set).map_err(|error| IsolationProofError::Certificate {
                index,
                height: block.height,
                error,
            })?;
        }
        if !self.chain.windows(2).any(|w| w[1].block.view == w[0].block.view + 1) {
            return Err(IsolationProofError::NotCommitted);
        }
        let first = &self.chain[0].block;
        let mut detail = None;
        let mut isolations = Vec::new();
        for transaction in first.transactions.iter().filter(|t| is_control(t)) {
            let checked = Removal::decode(transaction).and_then(|r| {
                if !set.is_member(r.accused) {
                    return Err(format!(
                        "validator {} is not a member of epoch {}",
                        r.accused,
                        set.epoch()
                    ));
                }
                let epoch = r.proof_epoch()?;
                let (proof_set, threshold) =
                    sets_of(epoch).ok_or_else(|| format!("its proof was signed in epoch {epoch}, not known here"))?;
                r.verify(proof_set, threshold).map(|()| r)
            });
            match checked {
                Ok(removal) => {
                    if !isolations.iter().any(|i: &Isolation| i.accused == removal.accused) {
                        isolations.push(Isolation {
                            accused: removal.accused,
                            height: first.height,
                        });
                    }
                }
                Err(e) => detail = Some(e),
            }
        }
        if isolations.is_empty() {
            return Err(IsolationProofError::NoRemoval {
                height: first.height,
                detail,
            });
        }
        Ok(isolations)
    }

    /// The shortest proof for the removal in `records[at]`: `records` are consecutive committed
    /// blocks with their certificates, and `child`, if given, a certified block of the view after
    /// the last one's, extending it. `None` if neither shows `records[at]` committed within
    /// [`ISOLATION_PROOF_BLOCKS_MAX`] blocks.
    pub fn shortest(records: &[CertifiedBlock], at: usize, child: Option<&CertifiedBlock>) -> Option<IsolationProof> {
        let tail = records.get(at..)?;
        let chain: Vec<CertifiedBlock> = match tail.windows(2).position(|w| w[1].block.view == w[0].block.view + 1) {
            Some(j) => tail[..=j + 1].to_vec(),
            None => {
                let child = child?;
                tail.iter().chain(std::iter::once(child)).cloned().collect()
            }
        };
        (chain.len() <= ISOLATION_PROOF_BLOCKS_MAX).then_some(IsolationProof { chain })
    }
}

/// The epochs a light client (TrustChain's CA) has followed from its first set (the validators
/// file's): each epoch's set, each one after the first derived from the proof of the end of the
/// one before, as the replicas derive it (the same roster without the validators the epoch's
/// last block removed, its chain starting from that block).
///
/// What it cannot see: a replica skips a control transaction committed already within its
/// dedup window (`dedup_heights`), and a proof shows the block, not the window. A removal
/// refused once (its proof of an epoch not yet known) and committed again within the window
/// ends the epoch here and not on the replicas; every proof after it is then refused here
/// (its certificates are of a set this chain does not have), never accepted wrongly. Honest
/// replicas do not propose such a removal again.
#[derive(Clone, Debug)]
pub struct EpochChain {
    /// Consecutive epochs, the first set's epoch first.
    sets: Vec<ValidatorSet>,
    detection: DetectionConfig,
}

/// What a proof shows to an [`EpochChain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Followed {
    /// The epoch the proof's removal ended.
    pub epoch: u64,
    /// The validators its block removed, in block order.
    pub isolations: Vec<Isolation>,
    /// The next epoch's set, if the proof ends the last epoch the chain knows (then
    /// [`EpochChain::follow`] takes it); `None` for an end already followed.
    pub next: Option<ValidatorSet>,
}

/// Why a proof does not extend or confirm an [`EpochChain`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochChainError {
    /// The proof does not show a committed isolation under its epoch's set.
    #[error(transparent)]
    Proof(#[from] IsolationProofError),
    /// The proof is of an epoch after the last one known: the proofs of the ends before it
    /// come first.
    #[error("the proof is of epoch {epoch}, and the epochs known here end at epoch {last}: the proof of epoch {last}'s end comes first")]
    Ahead {
        /// The proof's epoch.
        epoch: u64,
        /// The last epoch known.
        last: u64,
    },
    /// The proof is of an epoch before the first set's.
    #[error("the proof is of epoch {epoch}, before the first epoch known here ({first})")]
    Before {
        /// The proof's epoch.
        epoch: u64,
        /// The first epoch known.
        first: u64,
    },
    /// The proof is of an epoch already ended, by another block than the one it shows: blocks
    /// certified after an epoch's last block are never applied.
    #[error(
        "epoch {epoch} ended at height {ended}; the proof shows the removal at height {shown}, which was never applied"
    )]
    NotTheEnd {
        /// The proof's epoch.
        epoch: u64,
        /// The height of the block that ended it.
        ended: u64,
        /// The height of the block the proof shows.
        shown: u64,
    },
    /// The removals leave no set the replicas would enter.
    #[error("the next epoch cannot follow: {0}")]
    NoNextEpoch(ValidatorSetError),
}

impl EpochChain {
    /// A chain starting at `first` (the validators file's set), where a removal by reports
    /// needs the reporters `detection` asks for (it must match the replicas').
    pub fn new(first: ValidatorSet, detection: DetectionConfig) -> EpochChain {
        EpochChain {
            sets: vec![first],
            detection,
        }
    }

    /// The last epoch's set.
    pub fn current(&self) -> &ValidatorSet {
        self.sets.last().expect("an epoch chain holds its first set")
    }

    /// The set of `epoch`, if followed.
    pub fn set_of(&self, epoch: u64) -> Option<&ValidatorSet> {
        let index = epoch.checked_sub(self.sets[0].epoch())?;
        self.sets.get(usize::try_from(index).ok()?)
    }

    /// What `proof` shows, checked against the set of its epoch (told by its first block's
    /// view): the removals of its first block, each judged in block order as the replicas
    /// judge them (a member, its proof checked against the set of the epoch it was signed in,
    /// a member left after it). A proof of an epoch already followed must show the block that
    /// ended it.
    pub fn check(&self, proof: &IsolationProof) -> Result<Followed, EpochChainError> {
        let Some(first) = proof.chain.first() else {
            return Err(IsolationProofError::Length(0).into());
        };
        let epoch = epoch_of_view(first.block.view);
        let (first_epoch, last) = (self.sets[0].epoch(), self.current().epoch());
        if epoch < first_epoch {
            return Err(EpochChainError::Before {
                epoch,
                first: first_epoch,
            });
        }
        let Some(set) = self.set_of(epoch) else {
            return Err(EpochChainError::Ahead { epoch, last });
        };
        let sets_of = |e: u64| self.set_of(e).map(|s| (s, self.detection.threshold(s.f())));
        let shown = proof.verify_across(set, &sets_of)?;
        let mut removed = BTreeSet::new();
        let mut isolations = Vec::with_capacity(shown.len());
        for isolation in shown {
            // The replicas refuse a removal that would leave no member.
            if set
                .members()
                .iter()
                .all(|m| *m == isolation.accused || removed.contains(m))
            {
                continue;
            }
            removed.insert(isolation.accused);
            isolations.push(isolation);
        }
        let start = first.qc.summary();
        if epoch < last {
            let ended = self
                .set_of(epoch + 1)
                .expect("an epoch before the last has a next")
                .start();
            if ended != start {
                return Err(EpochChainError::NotTheEnd {
                    epoch,
                    ended: ended.height,
                    shown: start.height,
                });
            }
            return Ok(Followed {
                epoch,
                isolations,
                next: None,
            });
        }
        let next = set.next(&removed, start).map_err(EpochChainError::NoNextEpoch)?;
        Ok(Followed {
            epoch,
            isolations,
            next: Some(next),
        })
    }

    /// Takes the next epoch `followed` shows ([`EpochChain::check`] of a proof of the last
    /// epoch's end); nothing for an end already followed.
    ///
    /// # Panics
    ///
    /// If `followed.next` is not the epoch after the last (not checked against this chain).
    pub fn follow(&mut self, followed: Followed) {
        if let Some(next) = followed.next {
            assert_eq!(
                next.epoch(),
                self.current().epoch() + 1,
                "an epoch chain follows one epoch at a time"
            );
            self.sets.push(next);
        }
    }
}

/// The first `N` bytes of `data` and the rest.
fn take_be<const N: usize>(data: &[u8]) -> Option<([u8; N], &[u8])> {
    let head = data.get(..N)?;
    Some((head.try_into().ok()?, &data[N..]))
}

#[cfg(test)]
mod tests {
    use super::super::control::Proof;
    use super::super::fixtures::Committee;
    use super::super::messages::{QcSummary, Reason, Report};
    use super::super::QuorumCertificate;
    use super::*;

    /// A certified chain over genesis: one block per view in `views`, the first carrying the
    /// removal of validator 3 by reports of 0 and 1.
    fn chain(c: &Committee, views: &[u64]) -> Vec<CertifiedBlock> {
        let mut justify = QuorumCertificate::genesis();
        let mut out: Vec<CertifiedBlock> = Vec::new();
        for (i, &view) in views.iter().enumerate() {
            let mut block = c.block(view, &justify);
            if i == 0 {
                block.transactions.push(removal_of(c, 3));
            }
            let qc = c.quorum_qc(QcSummary {
                view,
                height: block.height,
                block: block.digest(),
            });
            justify = qc.clone();
            out.push(CertifiedBlock { block, qc });
        }
        out
    }

    fn removal_of(c: &Committee, accused: ValidatorIndex) -> Bytes {
        let reports = [0usize, 1]
            .iter()
            .map(|&r| Report::sign(&c.set, &c.keys[r], accused, Reason::Slow, 5).unwrap())
            .collect();
        Removal {
            accused,
            proof: Proof::Reports(reports),
        }
        .encode()
    }

    #[test]
    fn a_removal_followed_by_a_two_chain_is_a_committed_isolation() {
        let c = Committee::new(4, 1);
        let proof = IsolationProof::shortest(&chain(&c, &[1, 2]), 0, None).unwrap();
        let decoded = IsolationProof::decode(&proof.encode()).unwrap();
        assert_eq!(decoded, proof);
        assert_eq!(decoded.verify(&c.set, 2), Ok(vec![Isolation { accused: 3, height: 1 }]));
        // Views 1, 3, 4: committed through the pair (3, 4), three blocks.
        let longer = IsolationProof::shortest(&chain(&c, &[1, 3, 4, 5]), 0, None).unwrap();
        assert_eq!(longer.chain.len(), 3, "the shortest proof stops at the first two-chain");
        assert!(longer.verify(&c.set, 2).is_ok());
    }

    #[test]
    fn what_does_not_show_a_committed_isolation_is_refused_and_named() {
        let c = Committee::new(4, 1);
        let good = chain(&c, &[1, 2]);
        let verify = |chain: Vec<CertifiedBlock>, threshold| IsolationProof { chain }.verify(&c.set, threshold);

        // Views 1 and 3: certified, but not shown committed.
        assert_eq!(verify(chain(&c, &[1, 3]), 2), Err(IsolationProofError::NotCommitted));
        assert!(IsolationProof::shortest(&chain(&c, &[1, 3]), 0, None).is_none());
        // One block only.
        assert_eq!(verify(good[..1].to_vec(), 2), Err(IsolationProofError::Length(1)));
        // A certificate of too few validators.
        let mut weak = good.clone();
        let s = weak[1].qc.summary();
        weak[1].qc = c.qc(s, &[0, 1]);
        assert!(matches!(
            verify(weak, 2),
            Err(IsolationProofError::Certificate {
                index: 1,
                height: 2,
                ..
            })
        ));
        // A block swapped for another with the same certificate.
        let mut swapped = good.clone();
        swapped[1].block.timestamp_ms += 1;
        assert!(matches!(
            verify(swapped, 2),
            Err(IsolationProofError::NotItsCertificate { index: 1, .. })
        ));
        // A second block of another chain.
        let other = chain(&c, &[2, 3]);
        let unlinked = vec![good[0].clone(), other[1].clone()];
        assert!(matches!(
            verify(unlinked, 2),
            Err(IsolationProofError::Unlinked { index: 1, .. })
        ));
        // Reports from two validators, three required.
        assert!(matches!(
            verify(good.clone(), 3),
            Err(IsolationProofError::NoRemoval { height: 1, detail: Some(d) }) if d.contains("3 needed")
        ));
        // Another epoch's validators did not sign it.
        assert!(matches!(
            IsolationProof { chain: good.clone() }.verify(&c.in_epoch(2), 2),
            Err(IsolationProofError::Certificate { index: 0, .. })
        ));
        // No removal in the first block.
        let plain = chain(&c, &[1, 2, 3]);
        assert!(matches!(
            verify(plain[1..].to_vec(), 2),
            Err(IsolationProofError::NoRemoval {
                height: 2,
                detail: None
            })
        ));
    }

    /// A certified chain of `c.set`'s epoch over `justify`: one block per view `first view +
    /// offset`, each certified by the set's first quorum of members, the first block carrying
    /// `first`.
    fn epoch_blocks(
        c: &Committee,
        justify: QuorumCertificate,
        offsets: &[u64],
        first: Vec<Bytes>,
    ) -> Vec<CertifiedBlock> {
        let signers: Vec<usize> = c.set.members()[..c.set.quorum()]
            .iter()
            .map(|&m| usize::from(m))
            .collect();
        let mut justify = justify;
        let mut out: Vec<CertifiedBlock> = Vec::new();
        for (i, &offset) in offsets.iter().enumerate() {
            let mut block = c.block(c.set.first_view() + offset, &justify);
            if i == 0 {
                block.transactions = first.clone();
            }
            let qc = c.qc(
                QcSummary {
                    view: block.view,
                    height: block.height,
                    block: block.digest(),
                },
                &signers,
            );
            justify = qc.clone();
            out.push(CertifiedBlock { block, qc });
        }
        out
    }

    /// The removal of `accused` on the reports of `reporters`, signed in `c.set`'s epoch.
    fn reported(c: &Committee, accused: ValidatorIndex, reporters: &[usize]) -> Bytes {
        reported_under(&c.set, c, accused, reporters)
    }

    /// The removal of `accused` on the reports of `reporters`, signed in `set`'s epoch.
    fn reported_under(set: &ValidatorSet, c: &Committee, accused: ValidatorIndex, reporters: &[usize]) -> Bytes {
        let view = set.first_view() + 5;
        let reports = reporters
            .iter()
            .map(|&r| Report::sign(set, &c.keys[r], accused, Reason::Slow, view).unwrap())
            .collect();
        Removal {
            accused,
            proof: Proof::Reports(reports),
        }
        .encode()
    }

    #[test]
    fn an_epoch_chain_follows_each_removal_into_the_next_set_and_checks_later_proofs_against_it() {
        let mut c = Committee::new(4, 0);
        let detection = DetectionConfig::default();
        let mut light = EpochChain::new(c.set.clone(), detection);
        // Epoch 0 ends with validator 3's removal (reports of 0, 1 and 2: the guide's 3).
        let third = reported(&c, 3, &[0, 1, 2]);
        // Validator 2's removal, reported in epoch 0 by 0, 1 and 3, is committed in epoch 1.
        let second = reported(&c, 2, &[0, 1, 3]);
        let end_of_0 = IsolationProof {
            chain: epoch_blocks(&c, QuorumCertificate::genesis(), &[0, 1], vec![third.clone()]),
        };
        let other_block_of_0 = IsolationProof {
            chain: epoch_blocks(&c, QuorumCertificate::genesis(), &[2, 3], vec![second.clone()]),
        };
        let set_0 = c.set.clone();
        c.set = set_0
            .next(&BTreeSet::from([3]), end_of_0.chain[0].qc.summary())
            .unwrap();
        let end_of_1 = IsolationProof {
            chain: epoch_blocks(&c, QuorumCertificate::start_of(&c.set), &[0, 1], vec![second]),
        };

        // Epoch 1's proof before epoch 0's end is followed: refused, naming what comes first.
        assert_eq!(
            light.check(&end_of_1),
            Err(EpochChainError::Ahead { epoch: 1, last: 0 })
        );
        let followed = light.check(&end_of_0).unwrap();
        assert_eq!(followed.isolations, vec![Isolation { accused: 3, height: 1 }]);
        assert_eq!(followed.next.as_ref(), Some(&c.set));
        light.follow(followed);
        assert_eq!(light.current(), &c.set);
        // Epoch 1's certificates are of the three left; its removal's reports of epoch 0.
        let followed = light.check(&end_of_1).unwrap();
        assert_eq!(followed.isolations, vec![Isolation { accused: 2, height: 2 }]);
        light.follow(followed);
        assert_eq!(light.current().members(), &[0, 1]);
        assert_eq!(light.current().epoch(), 2);
        // An end already followed is shown again (every replica hands its proof in).
        let again = light.check(&end_of_0).unwrap();
        assert_eq!((again.isolations.len(), again.next), (1, None));
        // Another certified block of epoch 0 with a removal was never applied.
        assert_eq!(
            light.check(&other_block_of_0),
            Err(EpochChainError::NotTheEnd {
                epoch: 0,
                ended: 1,
                shown: 1
            })
        );
        // Epoch 1's proof checked against epoch 0's set fails: the sets differ.
        assert!(matches!(
            end_of_1.verify(&set_0, 3),
            Err(IsolationProofError::Certificate { .. })
        ));
    }

    #[test]
    fn an_epoch_chain_never_removes_its_last_member_nor_takes_an_epoch_before_its_first() {
        let mut c = Committee::new(4, 0);
        let mut light = EpochChain::new(c.set.clone(), DetectionConfig::default());
        let both = vec![reported(&c, 2, &[0, 1, 3]), reported(&c, 3, &[0, 1, 2])];
        let first = IsolationProof {
            chain: epoch_blocks(&c, QuorumCertificate::genesis(), &[0, 1], both.clone()),
        };
        let followed = light.check(&first).unwrap();
        light.follow(followed);
        assert_eq!(light.current().members(), &[0, 1]);
        c.set = light.current().clone();
        // Both members removed in one block, each on reports of epoch 0: the first only.
        let epoch_0 = light.set_of(0).unwrap();
        let last_two = vec![
            reported_under(epoch_0, &c, 0, &[1, 2, 3]),
            reported_under(epoch_0, &c, 1, &[0, 2, 3]),
        ];
        let proof = IsolationProof {
            chain: epoch_blocks(&c, QuorumCertificate::start_of(&c.set), &[0, 1], last_two),
        };
        let followed = light.check(&proof).unwrap();
        assert_eq!(
            followed.isolations.iter().map(|i| i.accused).collect::<Vec<_>>(),
            vec![0]
        );
        assert_eq!(followed.next.unwrap().members(), &[1]);

        // A chain from the validators file's epoch 1 does not know epoch 0.
        let later = EpochChain::new(Committee::new(4, 1).set, DetectionConfig::default());
        assert_eq!(later.check(&first), Err(EpochChainError::Before { epoch: 0, first: 1 }));
    }

    proptest::proptest! {
        /// The CA reads proofs from anyone: edited ones never panic, and what still decodes
        /// either fails to verify or shows exactly what the original showed.
        #[test]
        fn edited_proofs_never_panic_nor_show_another_isolation(
            edits in proptest::collection::vec((proptest::prelude::any::<u16>(), proptest::prelude::any::<u8>()), 1..6),
            cut in proptest::prelude::any::<u16>(),
        ) {
            let c = Committee::new(4, 1);
            let original = IsolationProof::shortest(&chain(&c, &[1, 2]), 0, None).unwrap();
            let mut bytes = original.encode().to_vec();
            for (at, value) in edits {
                let at = usize::from(at) % bytes.len();
                bytes[at] = value;
            }
            bytes.truncate(bytes.len() - usize::from(cut) % 4);
            if let Ok(proof) = IsolationProof::decode(&bytes) {
                if let Ok(shown) = proof.verify(&c.set, 2) {
                    proptest::prop_assert_eq!(shown, vec![Isolation { accused: 3, height: 1 }]);
                }
            }
        }
    }

    #[test]
    fn malformed_bytes_are_refused_with_where() {
        let c = Committee::new(4, 1);
        let bytes = IsolationProof::shortest(&chain(&c, &[1, 2]), 0, None).unwrap().encode();
        for cut in [0, 1, 2, 3, 10, bytes.len() - 1] {
            assert!(IsolationProof::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(
            IsolationProof::decode(&longer),
            Err(IsolationProofError::Encoding("1 bytes after the last block".into()))
        );
        let mut version = bytes.to_vec();
        version[0] = 9;
        assert!(
            matches!(IsolationProof::decode(&version), Err(IsolationProofError::Encoding(e)) if e.contains("version 9"))
        );
        let mut count = bytes.to_vec();
        count[1..3].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(IsolationProof::decode(&count), Err(IsolationProofError::Length(9)));
        let mut body = bytes.to_vec();
        body[7] ^= 0xff; // inside the first block's height
        assert!(IsolationProof::decode(&body).is_ok(), "a changed field decodes");
        assert!(
            IsolationProof::decode(&body).unwrap().verify(&c.set, 2).is_err(),
            "and does not verify"
        );
    }
}
