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

use bytes::{BufMut, Bytes, BytesMut};

use super::certificate::CertificateError;
use super::control::{is_control, Removal};
use super::validators::{ValidatorIndex, ValidatorSet};
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
