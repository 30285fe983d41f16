//! The validator set of an epoch: who votes, with which key, how many make a quorum, who leads
//! each view.

use std::collections::{BTreeMap, BTreeSet};

use super::crypto::PublicKey;
use crate::membership::NodeId;

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
}

/// The validators of one epoch, in index order.
///
/// With `n` validators the set tolerates `f = (n - 1) / 3` Byzantine ones and a quorum is
/// `n - f` (at least `2f + 1`): any two quorums share at least `f + 1` validators, so at least
/// one honest one. The leader of view `v` is the validator at index `v mod n` (round robin over
/// the indices, the same rule on every replica).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    epoch: u64,
    validators: Vec<Validator>,
}

impl ValidatorSet {
    /// The set of `epoch`, in the order given (a validator's index is its position). Refuses an
    /// empty set, more than [`VALIDATORS_MAX`], and any node, key or name listed twice.
    pub fn new(epoch: u64, validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
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
        Ok(ValidatorSet { epoch, validators })
    }

    /// The epoch this set governs: signed into every message, so nothing signed under one set
    /// verifies under another epoch's.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The validators, in index order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// How many validators (`n`).
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Always false: a set is never empty.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The Byzantine validators tolerated: `(n - 1) / 3`.
    pub fn f(&self) -> usize {
        (self.len() - 1) / 3
    }

    /// Signers a certificate needs: `n - f`, at least `2f + 1`.
    pub fn quorum(&self) -> usize {
        self.len() - self.f()
    }

    /// The leader of `view`: index `view mod n`.
    pub fn leader(&self, view: u64) -> ValidatorIndex {
        (view % self.len() as u64) as ValidatorIndex
    }

    /// The validator at `index`.
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
