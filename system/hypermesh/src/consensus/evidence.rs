//! Evidence of provable misbehaviour: two messages one validator signed that no honest validator
//! signs. Anyone holding the validator set checks it before acting on it.

use super::messages::{MessageError, ProposalHeader, Vote};
use super::validators::{ValidatorIndex, ValidatorSet};

/// Two conflicting signed messages from one validator.
///
/// An honest validator votes at most once per view and, as the leader, proposes at most one
/// block per view, so either pair, signed by one key in one view for two different things,
/// proves its signer Byzantine. Proposals are carried as their [`ProposalHeader`]s (the signed
/// part, without the blocks' transactions), so evidence stays a few hundred bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Two votes of one signer in one view, for different blocks (or heights).
    ConflictingVotes(Vote, Vote),
    /// Two proposals of one proposer in one view, for different blocks.
    ConflictingProposals(ProposalHeader, ProposalHeader),
}

/// Why evidence does not prove misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The two messages have different signers.
    #[error("signed by {first} and {second}, not by one validator")]
    DifferentSigners {
        /// The first message's signer.
        first: ValidatorIndex,
        /// The second's.
        second: ValidatorIndex,
    },
    /// The two messages are of different views.
    #[error("of views {first} and {second}, not of one view")]
    DifferentViews {
        /// The first message's view.
        first: u64,
        /// The second's.
        second: u64,
    },
    /// The two messages are for the same block: no conflict.
    #[error("both are for the same block")]
    NoConflict,
    /// The first message does not verify.
    #[error("first message: {0}")]
    First(MessageError),
    /// The second message does not verify.
    #[error("second message: {0}")]
    Second(MessageError),
}

impl Evidence {
    /// The validator it accuses (whether or not the evidence verifies).
    pub fn offender(&self) -> ValidatorIndex {
        match self {
            Evidence::ConflictingVotes(a, _) => a.signer,
            Evidence::ConflictingProposals(a, _) => a.proposer,
        }
    }

    /// The view of the first message.
    pub fn view(&self) -> u64 {
        match self {
            Evidence::ConflictingVotes(a, _) => a.view,
            Evidence::ConflictingProposals(a, _) => a.view,
        }
    }

    /// The validator it proves Byzantine: one signer, one view, two different blocks, both
    /// signatures valid under `set` (its epoch is the one the messages were signed in).
    pub fn verify(&self, set: &ValidatorSet) -> Result<ValidatorIndex, EvidenceError> {
        let ((first, second), (view_a, view_b), conflict) = match self {
            Evidence::ConflictingVotes(a, b) => (
                (a.signer, b.signer),
                (a.view, b.view),
                (a.block, a.height) != (b.block, b.height),
            ),
            Evidence::ConflictingProposals(a, b) => ((a.proposer, b.proposer), (a.view, b.view), a.block != b.block),
        };
        if first != second {
            return Err(EvidenceError::DifferentSigners { first, second });
        }
        if view_a != view_b {
            return Err(EvidenceError::DifferentViews {
                first: view_a,
                second: view_b,
            });
        }
        if !conflict {
            return Err(EvidenceError::NoConflict);
        }
        match self {
            Evidence::ConflictingVotes(a, b) => {
                a.verify(set).map_err(EvidenceError::First)?;
                b.verify(set).map_err(EvidenceError::Second)?;
            }
            Evidence::ConflictingProposals(a, b) => {
                a.verify(set).map_err(EvidenceError::First)?;
                b.verify(set).map_err(EvidenceError::Second)?;
            }
        }
        Ok(first)
    }
}
