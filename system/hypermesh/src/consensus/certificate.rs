//! Quorum and timeout certificates, what makes one valid, and the builders that aggregate votes
//! and timeouts into them.
//!
//! A certificate is a list of individual Ed25519 signatures with their signers' indices, sorted:
//! anyone holding the validator set of its epoch checks it alone, and each signature stays
//! attributable to its signer (what evidence needs).

use std::collections::BTreeMap;

use super::block::GENESIS;
use super::crypto::{verify_signature, Digest, Signature};
use super::messages::{check_high_qc, MessageError, QcSummary, Timeout, Vote};
use super::validators::{ValidatorIndex, ValidatorSet};

/// Why a certificate does not verify. Cheap structural checks come first, signatures last.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// A quorum certificate at view or height 0 that is not exactly
    /// [`QuorumCertificate::genesis`].
    #[error("a certificate at view or height 0 must be the genesis certificate")]
    NotGenesis,
    /// A timeout certificate of view 0: view 0 is genesis, nobody times out of it.
    #[error("a timeout certificate of view 0")]
    TimeoutOfGenesis,
    /// As many signers as signatures are needed.
    #[error("{signers} signer(s) but {signatures} signature(s)")]
    CountMismatch {
        /// Signers listed.
        signers: usize,
        /// Signatures listed.
        signatures: usize,
    },
    /// A signer listed twice.
    #[error("validator {0} is listed twice")]
    DuplicateSigner(ValidatorIndex),
    /// Signers are not in increasing order.
    #[error("signers not in increasing order at position {0}")]
    Unsorted(usize),
    /// A signer outside the validator set.
    #[error("signer {0} is not in the validator set")]
    UnknownSigner(ValidatorIndex),
    /// Fewer distinct signers than a quorum.
    #[error("{signers} signer(s), a quorum is {quorum}")]
    BelowQuorum {
        /// Distinct signers listed.
        signers: usize,
        /// The set's quorum.
        quorum: usize,
    },
    /// A timeout entry's high QC is malformed or not from before the certificate's view.
    #[error("validator {signer}'s entry: {error}")]
    BadHighQc {
        /// Whose entry.
        signer: ValidatorIndex,
        /// What is wrong.
        error: MessageError,
    },
    /// A signature that is not its signer's.
    #[error("bad signature from validator {0}")]
    BadSignature(ValidatorIndex),
}

/// Checks signer indices: strictly increasing (so distinct), all within the set, at least a
/// quorum of them.
fn check_signers(set: &ValidatorSet, signers: impl Iterator<Item = ValidatorIndex>) -> Result<(), CertificateError> {
    let mut count = 0;
    let mut previous: Option<ValidatorIndex> = None;
    for (position, signer) in signers.enumerate() {
        match previous {
            Some(p) if p == signer => return Err(CertificateError::DuplicateSigner(signer)),
            Some(p) if p > signer => return Err(CertificateError::Unsorted(position)),
            _ => {}
        }
        if !set.is_member(signer) {
            return Err(CertificateError::UnknownSigner(signer));
        }
        previous = Some(signer);
        count += 1;
    }
    if count < set.quorum() {
        return Err(CertificateError::BelowQuorum {
            signers: count,
            quorum: set.quorum(),
        });
    }
    Ok(())
}

fn check_signature(
    set: &ValidatorSet,
    signer: ValidatorIndex,
    message: &[u8],
    signature: &Signature,
) -> Result<(), CertificateError> {
    let key = &set.get(signer).expect("signers checked first").public_key;
    if verify_signature(key, message, signature) {
        Ok(())
    } else {
        Err(CertificateError::BadSignature(signer))
    }
}

/// Votes of a quorum for one block in one view: the block is certified.
///
/// **Genesis.** The chain's root is certified by convention: [`QuorumCertificate::genesis`]
/// (view 0, height 0, block [`GENESIS`], no signers) verifies under every set. Every other
/// certificate is at view and height at least 1 and needs a quorum. The first block (height 1)
/// extends genesis and is justified by it. Likewise each later epoch's start
/// ([`ValidatorSet::start`], the committed block that ended the epoch before) is certified
/// without signers under that epoch's set ([`QuorumCertificate::start_of`]), and the epoch's
/// first proposal is justified by it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumCertificate {
    /// The view the votes were cast in.
    pub view: u64,
    /// The certified block's height.
    pub height: u64,
    /// The certified block's digest.
    pub block: Digest,
    /// The signers' indices, strictly increasing.
    pub signers: Vec<ValidatorIndex>,
    /// Their signatures, in the same order.
    pub signatures: Vec<Signature>,
}

impl QuorumCertificate {
    /// The genesis certificate.
    pub fn genesis() -> QuorumCertificate {
        QuorumCertificate {
            view: 0,
            height: 0,
            block: GENESIS,
            signers: vec![],
            signatures: vec![],
        }
    }

    /// The certificate of `set`'s start without signatures: genesis's for the first epoch,
    /// the block that ended the epoch before for a later one.
    pub fn start_of(set: &ValidatorSet) -> QuorumCertificate {
        let start = set.start();
        QuorumCertificate {
            view: start.view,
            height: start.height,
            block: start.block,
            signers: vec![],
            signatures: vec![],
        }
    }

    /// What it certifies.
    pub fn summary(&self) -> QcSummary {
        QcSummary {
            view: self.view,
            height: self.height,
            block: self.block,
        }
    }

    /// Whether it is the genesis certificate or a quorum of `set`'s validators signed its vote
    /// in `set`'s epoch.
    pub fn verify(&self, set: &ValidatorSet) -> Result<(), CertificateError> {
        let summary = self.summary();
        if !summary.is_well_formed() {
            return Err(CertificateError::NotGenesis);
        }
        let unsigned = self.signers.is_empty() && self.signatures.is_empty();
        if summary == QcSummary::GENESIS {
            return if unsigned {
                Ok(())
            } else {
                Err(CertificateError::NotGenesis)
            };
        }
        if summary == set.start() && unsigned {
            // The epoch's start: committed by the epoch before, certified by convention here.
            return Ok(());
        }
        if self.signers.len() != self.signatures.len() {
            return Err(CertificateError::CountMismatch {
                signers: self.signers.len(),
                signatures: self.signatures.len(),
            });
        }
        check_signers(set, self.signers.iter().copied())?;
        let message = Vote::signed_bytes(set.epoch(), &summary);
        for (signer, signature) in self.signers.iter().zip(&self.signatures) {
            check_signature(set, *signer, &message, signature)?;
        }
        Ok(())
    }
}

/// One signer's part of a timeout certificate: its timeout, less the view they share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutEntry {
    /// The signer's index.
    pub signer: ValidatorIndex,
    /// The highest certificate it reported.
    pub high_qc: QcSummary,
    /// Its timeout's signature.
    pub signature: Signature,
}

/// Timeouts of a quorum for one view: the view ended, and the next leader may propose. Each
/// entry keeps its signer's high QC (signed), so the certificate proves the highest certificate
/// a quorum reported ([`TimeoutCertificate::high_qc_view_max`]), which the next proposal must
/// extend at least.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutCertificate {
    /// The view that timed out.
    pub view: u64,
    /// The signers' entries, by strictly increasing signer.
    pub entries: Vec<TimeoutEntry>,
}

impl TimeoutCertificate {
    /// The highest view among the entries' high QCs (0 with no entries).
    pub fn high_qc_view_max(&self) -> u64 {
        self.entries.iter().map(|e| e.high_qc.view).max().unwrap_or(0)
    }

    /// The highest high QC an entry reports (the first of the highest view), if any.
    pub fn high_qc_max(&self) -> Option<QcSummary> {
        self.entries
            .iter()
            .map(|e| e.high_qc)
            .reduce(|best, qc| if qc.view > best.view { qc } else { best })
    }

    /// Whether a quorum of `set`'s validators signed a timeout of this view in `set`'s epoch,
    /// each with a well-formed high QC from before the view.
    pub fn verify(&self, set: &ValidatorSet) -> Result<(), CertificateError> {
        if self.view == 0 {
            return Err(CertificateError::TimeoutOfGenesis);
        }
        check_signers(set, self.entries.iter().map(|e| e.signer))?;
        for e in &self.entries {
            check_high_qc(self.view, &e.high_qc).map_err(|error| CertificateError::BadHighQc {
                signer: e.signer,
                error,
            })?;
        }
        for e in &self.entries {
            let message = Timeout::signed_bytes(set.epoch(), self.view, &e.high_qc);
            check_signature(set, e.signer, &message, &e.signature)?;
        }
        Ok(())
    }
}

/// Why a vote or timeout was not added to a builder, or a certificate not built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// The builder collects for another epoch than the set given.
    #[error("the builder is for epoch {builder}, the set for epoch {set}")]
    EpochMismatch {
        /// The builder's epoch.
        builder: u64,
        /// The set's.
        set: u64,
    },
    /// A vote for another view, height or block than the builder's.
    #[error("a vote for {found:?}, the builder collects {expected:?}")]
    VoteMismatch {
        /// What the builder collects.
        expected: QcSummary,
        /// What the vote is for.
        found: QcSummary,
    },
    /// A timeout of another view than the builder's.
    #[error("a timeout of view {found}, the builder collects view {expected}")]
    ViewMismatch {
        /// The builder's view.
        expected: u64,
        /// The timeout's.
        found: u64,
    },
    /// The vote or timeout does not verify.
    #[error("{0}")]
    Invalid(#[from] MessageError),
    /// The signer already contributed.
    #[error("validator {0} already counted")]
    Duplicate(ValidatorIndex),
    /// Not yet a quorum.
    #[error("{have} of a quorum of {quorum}")]
    BelowQuorum {
        /// Signers collected.
        have: usize,
        /// The set's quorum.
        quorum: usize,
    },
}

fn same_epoch(builder: u64, set: &ValidatorSet) -> Result<(), AggregateError> {
    if builder == set.epoch() {
        Ok(())
    } else {
        Err(AggregateError::EpochMismatch {
            builder,
            set: set.epoch(),
        })
    }
}

/// Collects verified votes for one block in one view until a quorum certifies it.
#[derive(Clone, Debug)]
pub struct QcBuilder {
    epoch: u64,
    summary: QcSummary,
    votes: BTreeMap<ValidatorIndex, Signature>,
}

impl QcBuilder {
    /// A builder for votes on `summary` under `set`.
    pub fn new(set: &ValidatorSet, summary: QcSummary) -> QcBuilder {
        QcBuilder {
            epoch: set.epoch(),
            summary,
            votes: BTreeMap::new(),
        }
    }

    /// Adds `vote` once it verifies under `set` and is for the builder's block; returns how many
    /// distinct signers it holds. Refuses another block, another epoch's set, an invalid vote,
    /// and a second vote from one signer.
    pub fn add(&mut self, set: &ValidatorSet, vote: &Vote) -> Result<usize, AggregateError> {
        same_epoch(self.epoch, set)?;
        if vote.summary() != self.summary {
            return Err(AggregateError::VoteMismatch {
                expected: self.summary,
                found: vote.summary(),
            });
        }
        if self.votes.contains_key(&vote.signer) {
            return Err(AggregateError::Duplicate(vote.signer));
        }
        vote.verify(set)?;
        self.votes.insert(vote.signer, vote.signature);
        Ok(self.votes.len())
    }

    /// How many distinct signers it holds.
    pub fn len(&self) -> usize {
        self.votes.len()
    }

    /// Whether it holds no vote.
    pub fn is_empty(&self) -> bool {
        self.votes.is_empty()
    }

    /// The certificate of every vote collected, once they are a quorum of `set`.
    pub fn build(&self, set: &ValidatorSet) -> Result<QuorumCertificate, AggregateError> {
        same_epoch(self.epoch, set)?;
        if self.votes.len() < set.quorum() {
            return Err(AggregateError::BelowQuorum {
                have: self.votes.len(),
                quorum: set.quorum(),
            });
        }
        Ok(QuorumCertificate {
            view: self.summary.view,
            height: self.summary.height,
            block: self.summary.block,
            signers: self.votes.keys().copied().collect(),
            signatures: self.votes.values().copied().collect(),
        })
    }
}

/// Collects verified timeouts of one view until a quorum forms a timeout certificate.
#[derive(Clone, Debug)]
pub struct TcBuilder {
    epoch: u64,
    view: u64,
    entries: BTreeMap<ValidatorIndex, TimeoutEntry>,
}

impl TcBuilder {
    /// A builder for timeouts of `view` under `set`.
    pub fn new(set: &ValidatorSet, view: u64) -> TcBuilder {
        TcBuilder {
            epoch: set.epoch(),
            view,
            entries: BTreeMap::new(),
        }
    }

    /// Adds `timeout` once it verifies under `set` and is of the builder's view; returns how
    /// many distinct signers it holds. Refuses another view, another epoch's set, an invalid
    /// timeout, and a second timeout from one signer.
    pub fn add(&mut self, set: &ValidatorSet, timeout: &Timeout) -> Result<usize, AggregateError> {
        same_epoch(self.epoch, set)?;
        if timeout.view != self.view {
            return Err(AggregateError::ViewMismatch {
                expected: self.view,
                found: timeout.view,
            });
        }
        if self.entries.contains_key(&timeout.signer) {
            return Err(AggregateError::Duplicate(timeout.signer));
        }
        timeout.verify(set)?;
        self.entries.insert(
            timeout.signer,
            TimeoutEntry {
                signer: timeout.signer,
                high_qc: timeout.high_qc,
                signature: timeout.signature,
            },
        );
        Ok(self.entries.len())
    }

    /// How many distinct signers it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no timeout.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The certificate of every timeout collected, once they are a quorum of `set`.
    pub fn build(&self, set: &ValidatorSet) -> Result<TimeoutCertificate, AggregateError> {
        same_epoch(self.epoch, set)?;
        if self.entries.len() < set.quorum() {
            return Err(AggregateError::BelowQuorum {
                have: self.entries.len(),
                quorum: set.quorum(),
            });
        }
        Ok(TimeoutCertificate {
            view: self.view,
            entries: self.entries.values().cloned().collect(),
        })
    }
}
