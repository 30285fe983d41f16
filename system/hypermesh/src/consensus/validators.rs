//! The validator set of an epoch: who votes, with which key, how many make a quorum, who leads
//! each view, and where the epoch's chain starts.
//!
//! # Epochs
//!
//! A set changes only at an epoch's end: a committed block that removes validators
//! ([`super::Removal`]) is the last block of its epoch, and the next epoch's set is the same
//! roster without them ([`ValidatorSet::next`]). Indices never change: a removed validator keeps
//! its index and its slot (its address, its key) but is no longer a member, so nothing it signs
//! in a later epoch counts and it leads no view.
//!
//! Views of epoch `e` run from [`first_view_of`]`(e)` (`e << 40`; view 1 for epoch 0), so the
//! epoch of any view is known from the view alone ([`epoch_of_view`]) and views never go back
//! when an epoch ends: a replica tells a message of a past epoch (stale) or of a coming one (it
//! is behind) from a forgery before checking any signature.

use std::collections::{BTreeMap, BTreeSet};

use super::crypto::PublicKey;
use super::messages::QcSummary;
use crate::membership::NodeId;

/// Views of epoch `e` start at `e << EPOCH_VIEW_SHIFT`: 2^40 views per epoch, 35 years of views
/// a millisecond apart.
pub const EPOCH_VIEW_SHIFT: u32 = 40;

/// Epochs a cluster may have: the first view of each fits a `u64`.
pub const EPOCHS_MAX: u64 = 1 << (64 - EPOCH_VIEW_SHIFT);

/// The epoch whose views include `view`.
pub fn epoch_of_view(view: u64) -> u64 {
    view >> EPOCH_VIEW_SHIFT
}

/// The first view of `epoch` (view 1 for epoch 0: view 0 is genesis's).
///
/// # Panics
///
/// If `epoch` is not below [`EPOCHS_MAX`] (a set refuses such an epoch).
pub fn first_view_of(epoch: u64) -> u64 {
    assert!(epoch < EPOCHS_MAX, "epoch {epoch} out of range");
    (epoch << EPOCH_VIEW_SHIFT).max(1)
}

/// A validator's position in its set: what signed messages and certificates name it by.
pub type ValidatorIndex = u16;

/// Most validators one set may hold. Signer indices are [`ValidatorIndex`] (`u16`), and a
/// certificate lists at most this many signers, which bounds its size on the wire.
pub const VALIDATORS_MAX: usize = 1024;

/// One validator: a member of the cluster, the name TrustChain certified for it, and the Ed25519
/// key of its certificate, which signs its votes, timeouts and proposals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Its membership id.
    pub node: NodeId,
    /// The node name its TrustChain certificate carries.
    pub name: String,
    /// The Ed25519 public key of its TrustChain leaf certificate (see
    /// [`super::ed25519_key_from_spki`]).
    pub public_key: PublicKey,
}

/// Why a validator set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validators: nobody could form a quorum.
    #[error("a validator set needs at least one validator")]
    Empty,
    /// More than [`VALIDATORS_MAX`].
    #[error("{0} validators, at most {VALIDATORS_MAX} allowed")]
    TooMany(usize),
    /// One node listed twice.
    #[error("node {0} is listed twice")]
    DuplicateNode(NodeId),
    /// One public key listed twice: one key would vote twice.
    #[error("validators {first} and {second} share a public key")]
    DuplicateKey {
        /// The first index with the key.
        first: ValidatorIndex,
        /// The second.
        second: ValidatorIndex,
    },
    /// One certified name listed twice.
    #[error("the name {0:?} is listed twice")]
    DuplicateName(String),
    /// An epoch at or past [`EPOCHS_MAX`].
    #[error("epoch {0} is out of range (at most {max})", max = EPOCHS_MAX - 1)]
    EpochOutOfRange(u64),
    /// A validator removed that is not a member.
    #[error("validator {0} is not a member of the set")]
    NotAMember(ValidatorIndex),
    /// A removal that would leave no member.
    #[error("removing them would leave no validator")]
    NoMemberLeft,
}

/// The validators of one epoch: the roster (every validator the cluster started with, in index
/// order) and which of them are members in this epoch.
///
/// With `n` members the set tolerates `f = (n - 1) / 3` Byzantine ones and a quorum is
/// `n - f` members (at least `2f + 1`): any two quorums share at least `f + 1` validators, so
/// at least one honest one. The leader of view `v` is the member at position `v mod n` among
/// the members in index order (round robin, the same rule on every replica).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    epoch: u64,
    validators: Vec<Validator>,
    /// The members' indices, increasing.
    members: Vec<ValidatorIndex>,
    /// The committed block the epoch's chain starts from (genesis for the first epoch), as its
    /// certificate would summarize it.
    start: QcSummary,
}

impl ValidatorSet {
    /// The set of `epoch`, in the order given (a validator's index is its position). Refuses an
    /// empty set, more than [`VALIDATORS_MAX`], and any node, key or name listed twice.
    pub fn new(epoch: u64, validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        if epoch >= EPOCHS_MAX {
            return Err(ValidatorSetError::EpochOutOfRange(epoch));
        }
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > VALIDATORS_MAX {
            return Err(ValidatorSetError::TooMany(validators.len()));
        }
        let mut nodes = BTreeSet::new();
        let mut names = BTreeSet::new();
        let mut keys = BTreeMap::new();
        for (index, v) in validators.iter().enumerate() {
            if !nodes.insert(v.node) {
                return Err(ValidatorSetError::DuplicateNode(v.node));
            }
            if !names.insert(v.name.as_str()) {
                return Err(ValidatorSetError::DuplicateName(v.name.clone()));
            }
            if let Some(first) = keys.insert(&v.public_key, index) {
                return Err(ValidatorSetError::DuplicateKey {
                    first: first as ValidatorIndex,
                    second: index as ValidatorIndex,
                });
            }
        }
        let members = (0..validators.len() as ValidatorIndex).collect();
        Ok(ValidatorSet {
            epoch,
            validators,
            members,
            start: QcSummary::GENESIS,
        })
    }

    /// The set of the next epoch: the same roster without `removed`, its chain starting from
    /// `start` (the committed block that removed them). Refuses a validator that is not a
    /// member, a removal of every member, and an epoch past [`EPOCHS_MAX`].
    pub fn next(
        &self,
        removed: &BTreeSet<ValidatorIndex>,
        start: QcSummary,
    ) -> Result<ValidatorSet, ValidatorSetError> {
        if let Some(&gone) = removed.iter().find(|&&i| !self.is_member(i)) {
            return Err(ValidatorSetError::NotAMember(gone));
        }
        let epoch = self.epoch + 1;
        if epoch >= EPOCHS_MAX {
            return Err(ValidatorSetError::EpochOutOfRange(epoch));
        }
        let members: Vec<ValidatorIndex> = self.members.iter().copied().filter(|i| !removed.contains(i)).collect();
        if members.is_empty() {
            return Err(ValidatorSetError::NoMemberLeft);
        }
        Ok(ValidatorSet {
            epoch,
            validators: self.validators.clone(),
            members,
            start,
        })
    }

    /// The committed block this epoch's chain starts from: its first proposal extends it, and
    /// a certificate of it without signatures verifies (as genesis's does for the first epoch).
    pub fn start(&self) -> QcSummary {
        self.start
    }

    /// The first view of this epoch ([`first_view_of`]).
    pub fn first_view(&self) -> u64 {
        first_view_of(self.epoch)
    }

    /// The members' indices, increasing.
    pub fn members(&self) -> &[ValidatorIndex] {
        &self.members
    }

    /// Whether the validator at `index` is a member of this epoch's set (it votes, times out,
    /// leads and reports).
    pub fn is_member(&self, index: ValidatorIndex) -> bool {
        self.members.binary_search(&index).is_ok()
    }

    /// How many members (`n`).
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The epoch this set governs: signed into every message, so nothing signed under one set
    /// verifies under another epoch's.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The roster, in index order: members and validators removed in earlier epochs.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// How many validators the roster holds (members and removed ones): indices run below it.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Always false: a set is never empty.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The Byzantine members tolerated: `(n - 1) / 3`.
    pub fn f(&self) -> usize {
        (self.member_count() - 1) / 3
    }

    /// Signers a certificate needs: `n - f` members, at least `2f + 1`.
    pub fn quorum(&self) -> usize {
        self.member_count() - self.f()
    }

    /// The leader of `view`: the member at position `view mod n`.
    pub fn leader(&self, view: u64) -> ValidatorIndex {
        self.members[(view % self.member_count() as u64) as usize]
    }

    /// The validator at `index` in the roster, member or not.
    pub fn get(&self, index: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(usize::from(index))
    }

    /// The index of the validator on `node`.
    pub fn index_of(&self, node: NodeId) -> Option<ValidatorIndex> {
        self.validators
            .iter()
            .position(|v| v.node == node)
            .map(|i| i as ValidatorIndex)
    }

    /// The index of the validator whose key is `public_key`.
    pub fn index_of_key(&self, public_key: &PublicKey) -> Option<ValidatorIndex> {
        self.validators
            .iter()
            .position(|v| &v.public_key == public_key)
            .map(|i| i as ValidatorIndex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::ValidatorKey;

    fn validator(i: u64) -> Validator {
        Validator {
            node: NodeId(i),
            name: format!("node-{i}"),
            public_key: ValidatorKey::from_seed(&[i as u8; 32]).public_key(),
        }
    }

    fn set(n: u64) -> ValidatorSet {
        ValidatorSet::new(3, (0..n).map(validator).collect()).unwrap()
    }

    #[test]
    fn quorum_math() {
        for (n, f, quorum) in [
            (1, 0, 1),
            (2, 0, 2),
            (3, 0, 3),
            (4, 1, 3),
            (5, 1, 4),
            (7, 2, 5),
            (100, 33, 67),
        ] {
            let set = set(n);
            assert_eq!((set.len(), set.f(), set.quorum()), (n as usize, f, quorum), "n = {n}");
            assert!(set.quorum() > 2 * set.f());
            // Two quorums overlap in at least f + 1 validators.
            assert!(2 * set.quorum() - set.len() > set.f());
        }
    }

    #[test]
    fn leaders_rotate_over_every_index() {
        let set = set(4);
        let leaders: Vec<_> = (0..9).map(|v| set.leader(v)).collect();
        assert_eq!(leaders, [0, 1, 2, 3, 0, 1, 2, 3, 0]);
        assert_eq!(set.leader(u64::MAX), (u64::MAX % 4) as u16);
    }

    #[test]
    fn lookups() {
        let set = set(4);
        assert_eq!(set.epoch(), 3);
        assert_eq!(set.index_of(NodeId(2)), Some(2));
        assert_eq!(set.index_of(NodeId(9)), None);
        assert_eq!(set.index_of_key(&validator(3).public_key), Some(3));
        assert_eq!(set.get(1), Some(&validator(1)));
        assert_eq!(set.get(4), None);
        assert!(!set.is_empty());
    }

    #[test]
    fn the_next_epoch_keeps_the_roster_and_counts_only_its_members() {
        let first = set(7);
        let start = QcSummary {
            view: first_view_of(3) + 9,
            height: 40,
            block: [9; 32],
        };
        let next = first.next(&BTreeSet::from([2, 5]), start).unwrap();
        assert_eq!(
            (next.epoch(), next.len(), next.member_count(), next.f(), next.quorum()),
            (4, 7, 5, 1, 4)
        );
        assert_eq!(next.members(), [0, 1, 3, 4, 6]);
        assert!(!next.is_member(2) && next.is_member(3) && !next.is_member(7));
        assert_eq!(next.get(2), Some(&validator(2)), "a removed validator keeps its slot");
        assert_eq!(next.start(), start);
        // Its views follow the last of the epoch before, whatever happened there.
        assert_eq!(next.first_view(), 4 << EPOCH_VIEW_SHIFT);
        assert_eq!(epoch_of_view(next.first_view()), 4);
        assert_eq!(epoch_of_view(next.first_view() - 1), 3);
        assert_eq!((first_view_of(0), epoch_of_view(1)), (1, 0));
        // Every member leads once in five views; the removed never.
        let leaders: BTreeSet<_> = (0..5).map(|v| next.leader(next.first_view() + v)).collect();
        assert_eq!(leaders, BTreeSet::from([0, 1, 3, 4, 6]));
        assert_eq!(
            next.next(&BTreeSet::from([2]), start),
            Err(ValidatorSetError::NotAMember(2))
        );
        assert_eq!(
            next.next(&next.members().iter().copied().collect(), start),
            Err(ValidatorSetError::NoMemberLeft)
        );
        assert_eq!(
            ValidatorSet::new(EPOCHS_MAX, vec![validator(0)]),
            Err(ValidatorSetError::EpochOutOfRange(EPOCHS_MAX))
        );
    }

    #[test]
    fn a_removed_validator_signs_nothing_that_counts_and_the_start_needs_no_signature() {
        use crate::consensus::fixtures::{summary, Committee};
        use crate::consensus::{QuorumCertificate, Vote};
        let mut c = Committee::new(4, 0);
        let start = summary(30, 12, 1);
        c.set = c.set.next(&BTreeSet::from([3]), start).unwrap();
        let view = c.set.first_view() + 2;
        // Three members are a quorum of the three left; the removed one signs nothing.
        let block = summary(view, 14, 2);
        assert!(c.qc(block, &[0, 1, 2]).verify(&c.set).is_ok());
        assert!(c.qc(block, &[0, 1]).verify(&c.set).is_err());
        assert!(Vote::sign(&c.set, &c.keys[3], block).is_err());
        let roster = Committee::new(4, 0);
        let theirs = Vote::sign(&roster.set, &roster.keys[3], block).unwrap();
        assert!(theirs.verify(&c.set).is_err());
        // The epoch's start verifies without signatures under its own set only.
        let start_qc = QuorumCertificate::start_of(&c.set);
        assert_eq!(start_qc.summary(), start);
        assert!(start_qc.verify(&c.set).is_ok());
        assert!(start_qc.verify(&roster.set).is_err());
        // The first view's proposal extends the start, with no certificate of the view before.
        let first = c.proposal(c.set.first_view(), start_qc.clone(), None);
        assert_eq!(first.verify(&c.set), Ok(()));
        let later = c.proposal(c.set.first_view() + 1, start_qc, None);
        assert!(
            later.verify(&c.set).is_err(),
            "past the first view it needs a timeout certificate"
        );
    }

    #[test]
    fn bad_sets_are_refused_by_name() {
        assert_eq!(ValidatorSet::new(0, vec![]), Err(ValidatorSetError::Empty));
        let mut node = validator(1);
        node.node = NodeId(0);
        assert_eq!(
            ValidatorSet::new(0, vec![validator(0), node]),
            Err(ValidatorSetError::DuplicateNode(NodeId(0)))
        );
        let mut key = validator(2);
        key.public_key = validator(0).public_key;
        assert_eq!(
            ValidatorSet::new(0, vec![validator(0), validator(1), key]),
            Err(ValidatorSetError::DuplicateKey { first: 0, second: 2 })
        );
        let mut name = validator(1);
        name.name = "node-0".into();
        assert_eq!(
            ValidatorSet::new(0, vec![validator(0), name]),
            Err(ValidatorSetError::DuplicateName("node-0".into()))
        );
        let many: Vec<_> = (0..=VALIDATORS_MAX as u64)
            .map(|i| Validator {
                node: NodeId(i),
                name: format!("node-{i}"),
                public_key: [0; 32],
            })
            .collect();
        assert_eq!(
            ValidatorSet::new(0, many.clone()),
            Err(ValidatorSetError::TooMany(VALIDATORS_MAX + 1))
        );
        // The limit itself is accepted (keys made distinct).
        let at_limit: Vec<_> = many[..VALIDATORS_MAX]
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, mut v)| {
                v.public_key[..2].copy_from_slice(&(i as u16).to_be_bytes());
                v
            })
            .collect();
        assert_eq!(ValidatorSet::new(0, at_limit).unwrap().len(), VALIDATORS_MAX);
    }
}
