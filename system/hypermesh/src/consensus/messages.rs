//! The signed messages: votes, timeouts and proposals, how each is signed and checked.
//!
//! What each signs, after [`super::DOMAIN`], its tag and the set's epoch (all integers
//! big-endian):
//!
//! | message | tag | fields signed |
//! |---|---|---|
//! | [`Vote`] | `vote/` | view, height, block digest |
//! | [`Timeout`] | `timeout/` | view, high QC's view, height and block digest |
//! | [`Proposal`] ([`ProposalHeader`]) | `proposal/` | view, block digest, justify's view, timeout certificate's view (a byte 0, or 1 and the view) |
//!
//! A signer's index is not signed: the key is the signer, and a set never gives one key two
//! indices. A proposal's signature covers its block by digest and its certificates by view:
//! the certificates verify themselves, and the block names its parent, so another valid
//! certificate of the same views cannot change what the proposal means.

use super::block::{Block, BlockError, GENESIS};
use super::certificate::{CertificateError, QuorumCertificate, TimeoutCertificate};
use super::crypto::{signed_bytes, verify_signature, Digest, Domain, Signature, ValidatorKey};
use super::validators::{ValidatorIndex, ValidatorSet};

/// What a quorum certificate certifies: a block at a height, voted for in a view. Votes sign it,
/// timeouts report the highest one their signer holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QcSummary {
    /// The view the votes were cast in (the block's view).
    pub view: u64,
    /// The block's height.
    pub height: u64,
    /// The block's digest.
    pub block: Digest,
}

impl QcSummary {
    /// The genesis certificate's: view 0, height 0, [`GENESIS`].
    pub const GENESIS: QcSummary = QcSummary {
        view: 0,
        height: 0,
        block: GENESIS,
    };

    /// Whether it follows the genesis convention: view 0, height 0 and the digest [`GENESIS`]
    /// go together. Anything with one of them is the genesis certificate; anything else is at
    /// view and height at least 1, for a block other than genesis.
    pub fn is_well_formed(&self) -> bool {
        if self.view == 0 || self.height == 0 || self.block == GENESIS {
            *self == QcSummary::GENESIS
        } else {
            true
        }
    }

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.view.to_be_bytes());
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.block);
    }
}

/// Why a signed message does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The signer index is outside the validator set.
    #[error("signer {0} is not in the validator set")]
    UnknownSigner(ValidatorIndex),
    /// The signature is not the signer's over this message in this epoch.
    #[error("bad signature from validator {0}")]
    BadSignature(ValidatorIndex),
    /// A vote at view or height 0, or for the genesis digest: genesis is certified by convention,
    /// never voted for.
    #[error("a vote for genesis (view 0, height 0 or the genesis digest)")]
    GenesisVote,
    /// A timeout whose high QC breaks the genesis convention ([`QcSummary::is_well_formed`]).
    #[error("the high QC {0:?} breaks the genesis convention")]
    MalformedHighQc(QcSummary),
    /// A timeout of `view` claiming a certificate from `view` or later: a replica holding a
    /// certificate of its view has left that view, it does not time out of it.
    #[error("a timeout of view {view} reports a high QC of view {high_qc_view}")]
    HighQcNotBelowView {
        /// The timeout's view.
        view: u64,
        /// The view of the high QC it reports.
        high_qc_view: u64,
    },
}

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key is not any validator's in the set.
    #[error("this key is not a validator's in epoch {0}")]
    NotAValidator(u64),
    /// The key is a validator's, not the one the block names as proposer.
    #[error("validator {signer} cannot sign a block proposed by {proposer}")]
    NotProposer {
        /// The key's index.
        signer: ValidatorIndex,
        /// The block's proposer.
        proposer: ValidatorIndex,
    },
}

/// What a validator saw another do that an honest validator on a bad network might also seem
/// to do: not proof, so it counts only once enough distinct validators report it
/// ([`super::detection`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reason {
    /// A message from its address whose signature did not verify, or that did not decode.
    BadMessage = 1,
    /// A block stamped further from the reporter's clock than `clock_skew_max` allows.
    ClockSkew = 2,
    /// Votes later than `latency_tolerance` allows.
    Slow = 3,
}

impl Reason {
    /// The reason with this wire value.
    pub fn from_u8(value: u8) -> Option<Reason> {
        match value {
            1 => Some(Reason::BadMessage),
            2 => Some(Reason::ClockSkew),
            3 => Some(Reason::Slow),
            _ => None,
        }
    }

    /// Its name in probes' documentation and reports.
    pub fn name(self) -> &'static str {
        match self {
            Reason::BadMessage => "bad-message",
            Reason::ClockSkew => "clock-skew",
            Reason::Slow => "slow",
        }
    }
}

/// A validator's signed report that another misbehaved in a view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The validator reported.
    pub accused: ValidatorIndex,
    /// What it did.
    pub reason: Reason,
    /// The view it was seen in.
    pub view: u64,
    /// The reporter, the signer.
    pub reporter: ValidatorIndex,
    /// The reporter's signature.
    pub signature: Signature,
}

impl Report {
    fn signed_bytes(epoch: u64, accused: ValidatorIndex, reason: Reason, view: u64) -> Vec<u8> {
        signed_bytes(Domain::Report, epoch, |out| {
            out.extend_from_slice(&accused.to_be_bytes());
            out.push(reason as u8);
            out.extend_from_slice(&view.to_be_bytes());
        })
    }

    /// `key`'s report of `accused`.
    pub fn sign(
        set: &ValidatorSet,
        key: &ValidatorKey,
        accused: ValidatorIndex,
        reason: Reason,
        view: u64,
    ) -> Result<Report, SignError> {
        let reporter = signer_of(set, key)?;
        Ok(Report {
            accused,
            reason,
            view,
            reporter,
            signature: key.sign(&Report::signed_bytes(set.epoch(), accused, reason, view)),
        })
    }

    /// Whether the reporter is in `set`, signed it in `set`'s epoch, and accuses a validator of
    /// the set other than itself.
    pub fn verify(&self, set: &ValidatorSet) -> Result<(), MessageError> {
        if set.get(self.accused).is_none() || self.accused == self.reporter {
            return Err(MessageError::UnknownSigner(self.accused));
        }
        check_signature(
            set,
            self.reporter,
            &Report::signed_bytes(set.epoch(), self.accused, self.reason, self.view),
            &self.signature,
        )
    }
}

fn signer_of(set: &ValidatorSet, key: &ValidatorKey) -> Result<ValidatorIndex, SignError> {
    set.index_of_key(&key.public_key())
        .filter(|&i| set.is_member(i))
        .ok_or(SignError::NotAValidator(set.epoch()))
}

fn check_signature(
    set: &ValidatorSet,
    signer: ValidatorIndex,
    message: &[u8],
    signature: &Signature,
) -> Result<(), MessageError> {
    // A validator removed in an earlier epoch signs nothing that counts.
    let validator = set
        .get(signer)
        .filter(|_| set.is_member(signer))
        .ok_or(MessageError::UnknownSigner(signer))?;
    if verify_signature(&validator.public_key, message, signature) {
        Ok(())
    } else {
        Err(MessageError::BadSignature(signer))
    }
}

/// A replica's vote for a block proposed in `view`, sent to the leader of `view + 1` only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The view the block was proposed in.
    pub view: u64,
    /// The block's height.
    pub height: u64,
    /// The block's digest.
    pub block: Digest,
    /// The voter's index.
    pub signer: ValidatorIndex,
    /// The voter's signature.
    pub signature: Signature,
}

impl Vote {
    /// The bytes a vote for `summary` signs in `epoch`; a quorum certificate's signatures are
    /// over the same bytes.
    pub(crate) fn signed_bytes(epoch: u64, summary: &QcSummary) -> Vec<u8> {
        signed_bytes(Domain::Vote, epoch, |out| summary.put(out))
    }

    /// `key`'s vote for `summary` (view, height, block) in `set`'s epoch.
    pub fn sign(set: &ValidatorSet, key: &ValidatorKey, summary: QcSummary) -> Result<Vote, SignError> {
        let signer = signer_of(set, key)?;
        Ok(Vote {
            view: summary.view,
            height: summary.height,
            block: summary.block,
            signer,
            signature: key.sign(&Vote::signed_bytes(set.epoch(), &summary)),
        })
    }

    /// What it votes for.
    pub fn summary(&self) -> QcSummary {
        QcSummary {
            view: self.view,
            height: self.height,
            block: self.block,
        }
    }

    /// Whether the signer is in `set` and signed this vote in `set`'s epoch, and the vote is not
    /// for genesis.
    pub fn verify(&self, set: &ValidatorSet) -> Result<(), MessageError> {
        let summary = self.summary();
        if summary.view == 0 || !summary.is_well_formed() {
            return Err(MessageError::GenesisVote);
        }
        check_signature(
            set,
            self.signer,
            &Vote::signed_bytes(set.epoch(), &summary),
            &self.signature,
        )
    }
}

/// A replica's signed statement that `view` ended without a certificate it saw, with the
/// highest quorum certificate it holds. 2f + 1 of them form a [`TimeoutCertificate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeout {
    /// The view that timed out.
    pub view: u64,
    /// The highest certificate the signer holds (below `view`).
    pub high_qc: QcSummary,
    /// The signer's index.
    pub signer: ValidatorIndex,
    /// The signer's signature.
    pub signature: Signature,
}

impl Timeout {
    /// The bytes a timeout of `view` reporting `high_qc` signs in `epoch`; a timeout
    /// certificate's entries are checked against the same bytes.
    pub(crate) fn signed_bytes(epoch: u64, view: u64, high_qc: &QcSummary) -> Vec<u8> {
        signed_bytes(Domain::Timeout, epoch, |out| {
            out.extend_from_slice(&view.to_be_bytes());
            high_qc.put(out);
        })
    }

    /// `key`'s timeout of `view`, reporting `high_qc`, in `set`'s epoch.
    pub fn sign(set: &ValidatorSet, key: &ValidatorKey, view: u64, high_qc: QcSummary) -> Result<Timeout, SignError> {
        let signer = signer_of(set, key)?;
        Ok(Timeout {
            view,
            high_qc,
            signer,
            signature: key.sign(&Timeout::signed_bytes(set.epoch(), view, &high_qc)),
        })
    }

    /// Checks the high QC against the view and the genesis convention, then the signature.
    pub fn verify(&self, set: &ValidatorSet) -> Result<(), MessageError> {
        check_high_qc(self.view, &self.high_qc)?;
        check_signature(
            set,
            self.signer,
            &Timeout::signed_bytes(set.epoch(), self.view, &self.high_qc),
            &self.signature,
        )
    }
}

/// A timeout's (or timeout certificate entry's) high QC: well formed and from before `view`.
pub(crate) fn check_high_qc(view: u64, high_qc: &QcSummary) -> Result<(), MessageError> {
    if !high_qc.is_well_formed() {
        return Err(MessageError::MalformedHighQc(*high_qc));
    }
    if high_qc.view >= view {
        return Err(MessageError::HighQcNotBelowView {
            view,
            high_qc_view: high_qc.view,
        });
    }
    Ok(())
}

/// The signed part of a proposal: enough to check its signature without the block's
/// transactions, so evidence of two proposals stays small ([`super::Evidence`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalHeader {
    /// The block's view.
    pub view: u64,
    /// The block's proposer, the signer.
    pub proposer: ValidatorIndex,
    /// The block's digest.
    pub block: Digest,
    /// The view of the certificate the block extends.
    pub justify_view: u64,
    /// The view of the timeout certificate carried, if any.
    pub timeout_view: Option<u64>,
    /// The proposer's signature.
    pub signature: Signature,
}

impl ProposalHeader {
    fn signed_bytes(epoch: u64, view: u64, block: &Digest, justify_view: u64, timeout_view: Option<u64>) -> Vec<u8> {
        signed_bytes(Domain::Proposal, epoch, |out| {
            out.extend_from_slice(&view.to_be_bytes());
            out.extend_from_slice(block);
            out.extend_from_slice(&justify_view.to_be_bytes());
            match timeout_view {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        })
    }

    /// Whether the proposer is in `set` and signed this header in `set`'s epoch.
    pub fn verify(&self, set: &ValidatorSet) -> Result<(), MessageError> {
        check_signature(
            set,
            self.proposer,
            &ProposalHeader::signed_bytes(
                set.epoch(),
                self.view,
                &self.block,
                self.justify_view,
                self.timeout_view,
            ),
            &self.signature,
        )
    }
}

/// Why a proposal is not valid on its own (what can be checked without the replica's state).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// The block breaks the limits.
    #[error("block: {0}")]
    Block(#[from] BlockError),
    /// The proposer's signature does not verify.
    #[error("signature: {0}")]
    Signature(MessageError),
    /// The proposer does not lead the block's view.
    #[error("validator {proposer} proposed in view {view}, led by {leader}")]
    NotLeader {
        /// The block's view.
        view: u64,
        /// Who proposed.
        proposer: ValidatorIndex,
        /// Who leads the view.
        leader: ValidatorIndex,
    },
    /// The block's parent or height is not the justifying certificate's block and height + 1.
    #[error("the block (height {height}) does not extend the justified block (height {justify_height})")]
    NotExtendingJustify {
        /// The block's height.
        height: u64,
        /// The justifying certificate's height.
        justify_height: u64,
    },
    /// The justifying certificate is from the block's view or later: a parent is certified
    /// before its child is proposed.
    #[error("a block of view {view} justified by a QC of view {justify_view}")]
    JustifyNotBeforeView {
        /// The block's view.
        view: u64,
        /// The justifying certificate's view.
        justify_view: u64,
    },
    /// Neither a certificate of the previous view nor a timeout certificate of it justifies
    /// entering the block's view.
    #[error("view {view} entered with neither a QC nor a TC of the view before (QC of view {justify_view})")]
    ViewNotJustified {
        /// The block's view.
        view: u64,
        /// The justifying certificate's view.
        justify_view: u64,
    },
    /// The timeout certificate is not of the view before the block's.
    #[error("a timeout certificate of view {timeout_view} carried into view {view}")]
    TimeoutNotPreviousView {
        /// The block's view.
        view: u64,
        /// The timeout certificate's view.
        timeout_view: u64,
    },
    /// The block extends a certificate older than one a quorum reported in the timeout
    /// certificate: it could fork a block some honest replica locked.
    #[error("justify of view {justify_view} is below the timeout certificate's highest QC (view {high_qc_view})")]
    JustifyBelowTimeoutHighQc {
        /// The justifying certificate's view.
        justify_view: u64,
        /// The highest QC view in the timeout certificate.
        high_qc_view: u64,
    },
    /// The justifying certificate does not verify.
    #[error("justify: {0}")]
    Justify(CertificateError),
    /// The timeout certificate does not verify.
    #[error("timeout certificate: {0}")]
    Timeout(CertificateError),
}

/// A leader's proposal: a block extending the block certified by `justify`, entering the
/// block's view with `justify` (a certificate of the previous view) or with `timeout` (a timeout
/// certificate of the previous view, when `justify` is older), signed by the block's proposer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The proposed block.
    pub block: Block,
    /// The certificate of the block's parent.
    pub justify: QuorumCertificate,
    /// The timeout certificate of the previous view, when the previous view produced no
    /// certificate.
    pub timeout: Option<TimeoutCertificate>,
    /// The proposer's signature over [`Proposal::header`].
    pub signature: Signature,
}

impl Proposal {
    /// `key`'s proposal of `block`, which must name `key`'s index as its proposer.
    ///
    /// # Panics
    ///
    /// If the block breaks the limits ([`Block::check_limits`]).
    pub fn sign(
        set: &ValidatorSet,
        key: &ValidatorKey,
        block: Block,
        justify: QuorumCertificate,
        timeout: Option<TimeoutCertificate>,
    ) -> Result<Proposal, SignError> {
        let signer = signer_of(set, key)?;
        if signer != block.proposer {
            return Err(SignError::NotProposer {
                signer,
                proposer: block.proposer,
            });
        }
        let message = ProposalHeader::signed_bytes(
            set.epoch(),
            block.view,
            &block.digest(),
            justify.view,
            timeout.as_ref().map(|t| t.view),
        );
        Ok(Proposal {
            block,
            justify,
            timeout,
            signature: key.sign(&message),
        })
    }

    /// Its signed part.
    ///
    /// # Panics
    ///
    /// If the block breaks the limits (a decoded proposal never does).
    pub fn header(&self) -> ProposalHeader {
        ProposalHeader {
            view: self.block.view,
            proposer: self.block.proposer,
            block: self.block.digest(),
            justify_view: self.justify.view,
            timeout_view: self.timeout.as_ref().map(|t| t.view),
            signature: self.signature,
        }
    }

    /// Everything about the proposal that holds or fails whatever the replica's state, cheapest
    /// checks first: the block within the limits; proposed by the leader of its view; extending
    /// `justify`'s block at the next height; its view entered with a certificate of the previous
    /// view, or with a timeout certificate of it and a `justify` at least as high as every QC
    /// that certificate reports; the signature; then both certificates.
    pub fn verify(&self, set: &ValidatorSet) -> Result<(), ProposalError> {
        self.verify_trusting_justify(set)?;
        self.justify.verify(set).map_err(ProposalError::Justify)
    }

    /// [`Proposal::verify`] without verifying `justify`'s signatures, for a replica that has
    /// already verified that very certificate (the costliest check: a quorum of signatures).
    pub fn verify_trusting_justify(&self, set: &ValidatorSet) -> Result<(), ProposalError> {
        let block = &self.block;
        block.check_limits()?;
        let leader = set.leader(block.view);
        if block.proposer != leader {
            return Err(ProposalError::NotLeader {
                view: block.view,
                proposer: block.proposer,
                leader,
            });
        }
        if block.parent != self.justify.block || Some(block.height) != self.justify.height.checked_add(1) {
            return Err(ProposalError::NotExtendingJustify {
                height: block.height,
                justify_height: self.justify.height,
            });
        }
        if self.justify.view >= block.view {
            return Err(ProposalError::JustifyNotBeforeView {
                view: block.view,
                justify_view: self.justify.view,
            });
        }
        let previous = block.view.checked_sub(1);
        match &self.timeout {
            None if Some(self.justify.view) == previous => {}
            // An epoch's first view is entered by the epoch's start, not by a certificate of
            // the view before it (a view of the epoch before, whose set may differ).
            None if block.view == set.first_view() && self.justify.summary() == set.start() => {}
            None => {
                return Err(ProposalError::ViewNotJustified {
                    view: block.view,
                    justify_view: self.justify.view,
                })
            }
            Some(tc) if Some(tc.view) != previous => {
                return Err(ProposalError::TimeoutNotPreviousView {
                    view: block.view,
                    timeout_view: tc.view,
                })
            }
            Some(tc) => {
                let high_qc_view = tc.high_qc_view_max();
                if self.justify.view < high_qc_view {
                    return Err(ProposalError::JustifyBelowTimeoutHighQc {
                        justify_view: self.justify.view,
                        high_qc_view,
                    });
                }
            }
        }
        self.header().verify(set).map_err(ProposalError::Signature)?;
        if let Some(tc) = &self.timeout {
            tc.verify(set).map_err(ProposalError::Timeout)?;
        }
        Ok(())
    }
}
