//! Signed tree heads: the log's signature over (size, timestamp, root), so anyone holding the
//! log's public key can check that a root really is the log's, and compare two heads through a
//! consistency proof.
//!
//! Ed25519: signatures are deterministic (a simulated run repeats bit for bit, unlike ECDSA's
//! random nonces), keys derive from a 32-byte seed (from the simulation seed in tests and
//! simulations, from OS entropy in production), and signing and verifying take microseconds.

use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use super::merkle::Hash;

/// Domain separation: a tree-head signature can never be mistaken for another signed message.
const CONTEXT: &[u8] = b"TrustChain CT tree head v1\0";

/// A signed tree head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// Entries covered.
    pub tree_size: u64,
    /// When it was signed, milliseconds since the Unix epoch by the log's wall clock.
    pub timestamp_ms: u64,
    /// The Merkle root of the first `tree_size` entries.
    pub root_hash: Hash,
    /// Ed25519 signature over [`SignedTreeHead::signed_bytes`].
    pub signature: [u8; 64],
}

impl SignedTreeHead {
    /// The exact bytes signed.
    pub fn signed_bytes(tree_size: u64, timestamp_ms: u64, root_hash: &Hash) -> Vec<u8> {
        let mut m = Vec::with_capacity(CONTEXT.len() + 8 + 8 + 32);
        m.extend_from_slice(CONTEXT);
        m.extend_from_slice(&tree_size.to_be_bytes());
        m.extend_from_slice(&timestamp_ms.to_be_bytes());
        m.extend_from_slice(root_hash);
        m
    }

    /// Checks the signature with the log's 32-byte Ed25519 public key.
    pub fn verify(&self, log_public_key: &[u8]) -> Result<(), BadSignature> {
        UnparsedPublicKey::new(&signature::ED25519, log_public_key)
            .verify(
                &Self::signed_bytes(self.tree_size, self.timestamp_ms, &self.root_hash),
                &self.signature,
            )
            .map_err(|_| BadSignature)
    }
}

/// A signature that does not verify under the key given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the tree head's signature does not verify with this log key")]
pub struct BadSignature;

/// The log's signing key.
pub struct LogKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl LogKey {
    /// The key derived from `seed` (keep it secret: it is the private key).
    pub fn from_seed(seed: &[u8; 32]) -> LogKey {
        LogKey {
            pair: Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are an Ed25519 seed"),
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("Ed25519 public keys are 32 bytes")
    }

    /// Signs a head.
    pub fn sign(&self, tree_size: u64, timestamp_ms: u64, root_hash: Hash) -> SignedTreeHead {
        let sig = self
            .pair
            .sign(&SignedTreeHead::signed_bytes(tree_size, timestamp_ms, &root_hash));
        SignedTreeHead {
            tree_size,
            timestamp_ms,
            root_hash,
            signature: sig.as_ref().try_into().expect("Ed25519 signatures are 64 bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_verify_under_the_log_key_only_and_any_change_breaks_them() {
        let key = LogKey::from_seed(&[7; 32]);
        let other = LogKey::from_seed(&[8; 32]);
        let sth = key.sign(42, 1_700_000_000_000, [3; 32]);
        assert_eq!(sth.verify(&key.public_key()), Ok(()));
        assert_eq!(sth.verify(&other.public_key()), Err(BadSignature));
        let mut changed = sth.clone();
        changed.tree_size = 43;
        assert_eq!(changed.verify(&key.public_key()), Err(BadSignature));
        assert_eq!(
            sth.verify(&[0u8; 5]),
            Err(BadSignature),
            "a malformed key is a failure, not a panic"
        );
        // Deterministic: the same key and head sign to the same bytes.
        assert_eq!(key.sign(42, 1_700_000_000_000, [3; 32]), sth);
    }
}
