//! The Merkle tree of RFC 9162 §2.1: leaf hashes `SHA-256(0x00 || entry)`, interior nodes
//! `SHA-256(0x01 || left || right)`, the left subtree always the largest power of two smaller
//! than the whole. Inclusion and consistency proofs are made and verified exactly as the RFC
//! specifies (§2.1.3, §2.1.4).
//!
//! Storage: every *complete* subtree's hash is kept, level by level (`levels[h][i]` covers leaves
//! `i·2^h .. (i+1)·2^h`). An append adds one leaf hash and completes at most `log2 n` subtrees
//! (one on average); any root or proof then needs `O(log n)` stored hashes plus the hashes of the
//! at most `log2 n` incomplete subtrees on the right edge, which are computed on demand. Memory is
//! about two hashes per leaf.

use ring::digest::{Context, SHA256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    digest(&[&[]])
}

fn digest(parts: &[&[u8]]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    digest(&[&[0x00], entry])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    digest(&[&[0x01], left, right])
}

/// The largest power of two strictly below `n` (`n` ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Why a proof could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    NoSuchLeaf {
        /// The index asked for.
        index: u64,
        /// The tree size asked for.
        size: u64,
    },
    /// The tree size asked for is larger than the log.
    #[error("tree size {asked} is beyond the log's {have} entries")]
    SizeBeyondLog {
        /// The size asked for.
        asked: u64,
        /// The log's size.
        have: u64,
    },
    /// A consistency proof from a larger tree to a smaller one, or from the empty tree.
    #[error("no consistency proof from size {old} to size {new}: need 0 < old <= new")]
    BadRange {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
}

/// An append-only Merkle tree over leaf hashes.
#[derive(Clone, Debug, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        MerkleTree::default()
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends an entry; returns its leaf index.
    pub fn append(&mut self, entry: &[u8]) -> u64 {
        self.append_hash(leaf_hash(entry))
    }

    /// Appends an already computed leaf hash; returns its leaf index.
    pub fn append_hash(&mut self, leaf: Hash) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let index = self.levels[0].len() as u64 - 1;
        let mut h = 0;
        while self.levels[h].len().is_multiple_of(2) {
            let n = self.levels[h].len();
            let parent = node_hash(&self.levels[h][n - 2], &self.levels[h][n - 1]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
        }
        index
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first()?.get(usize::try_from(index).ok()?).copied()
    }

    /// MTH over leaves `start .. start + size`. Ranges reached by the RFC's recursion from
    /// `0 .. n` are either complete aligned subtrees (stored) or split into a complete left part
    /// and a smaller right part.
    fn subtree(&self, start: u64, size: u64) -> Hash {
        debug_assert!(size >= 1);
        if size.is_power_of_two() && start.is_multiple_of(size) {
            let h = size.trailing_zeros() as usize;
            return self.levels[h][(start >> h) as usize];
        }
        let k = split(size);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, size - k))
    }

    /// The root of the tree's first `size` leaves (the tree as it was at that size).
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        Ok(if size == 0 { empty_root() } else { self.subtree(0, size) })
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.root_at(self.size()).expect("the current size is in range")
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            return Err(ProofError::SizeBeyondLog {
                asked: size,
                have: self.size(),
            });
        }
        Ok(())
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1),
    /// leaf-side hash first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::NoSuchLeaf { index, size });
        }
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path);
        Ok(path)
    }

    /// PATH(m, D[start .. start + n]): recursing before pushing puts the sibling nearest the leaf
    /// first, the RFC's order.
    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) {
        if n == 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.subtree(start, k));
        }
    }

    /// The proof that the tree of `old` leaves is a prefix of the tree of `new` leaves
    /// (RFC 9162 §2.1.4.1). Empty when `old == new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new)?;
        if old == 0 || old > new {
            return Err(ProofError::BadRange { old, new });
        }
        let mut proof = Vec::new();
        self.subproof(old, 0, new, true, &mut proof);
        Ok(proof)
    }

    /// SUBPROOF(m, D[start .. start + n], b).
    fn subproof(&self, m: u64, start: u64, n: u64, whole: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !whole {
                out.push(self.subtree(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, whole, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.subtree(start, k));
        }
    }
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has the wrong length for these tree sizes")]
    WrongLength,
    /// The hashes do not lead to the expected root.
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
    /// Old size zero or above the new size.
    #[error("no consistency between sizes {old} and {new}")]
    BadRange {
        /// Older size.
        old: u64,
        /// Newer size.
        new: u64,
    },
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with root `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(VerifyError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(VerifyError::WrongLength);
    }
    if r == *root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch)
    }
}

/// Verifies that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if old == 0 || old > new {
        return Err(VerifyError::BadRange { old, new });
    }
    if old == new {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else if !proof.is_empty() {
            Err(VerifyError::WrongLength)
        } else {
            Err(VerifyError::RootMismatch)
        };
    }
    // When `old` is a power of two its root is itself the first node of the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(VerifyError::WrongLength);
    };
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(VerifyError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(VerifyError::WrongLength);
    }
    if fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// MTH straight from the RFC's definition, for comparison.
    fn reference_root(entries: &[Vec<u8>]) -> Hash {
        match entries.len() {
            0 => empty_root(),
            1 => leaf_hash(&entries[0]),
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&entries[..k]), &reference_root(&entries[k..]))
            }
        }
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The eight-entry test vector used across Certificate Transparency implementations.
    const ENTRIES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn roots_match_the_ct_test_vector() {
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut tree = MerkleTree::new();
        for (entry, root) in ENTRIES.iter().zip(ROOTS) {
            tree.append(&unhex(entry));
            assert_eq!(hex(&tree.root()), root, "size {}", tree.size());
        }
    }

    #[test]
    fn every_proof_of_small_trees_verifies_and_tampering_is_caught() {
        let entries: Vec<Vec<u8>> = (0..33u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut tree = MerkleTree::new();
        for e in &entries {
            tree.append(e);
        }
        for n in 1..=entries.len() as u64 {
            let root = tree.root_at(n).unwrap();
            assert_eq!(root, reference_root(&entries[..n as usize]));
            for m in 0..n {
                let proof = tree.inclusion_proof(m, n).unwrap();
                let leaf = tree.leaf(m).unwrap();
                verify_inclusion(&leaf, m, n, &proof, &root).unwrap();
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert_eq!(
                        verify_inclusion(&leaf, m, n, &bad, &root),
                        Err(VerifyError::RootMismatch)
                    );
                    assert!(verify_inclusion(first, m, n, &proof, &root).is_err(), "another leaf");
                }
                if m + 1 < n {
                    assert!(
                        verify_inclusion(&leaf, m + 1, n, &proof, &root).is_err(),
                        "another index"
                    );
                }
            }
            for m in 1..=n {
                let proof = tree.consistency_proof(m, n).unwrap();
                let old_root = tree.root_at(m).unwrap();
                verify_consistency(m, n, &old_root, &root, &proof).unwrap();
                if m < n {
                    let mut wrong = old_root;
                    wrong[5] ^= 0x40;
                    assert!(verify_consistency(m, n, &wrong, &root, &proof).is_err());
                    assert!(verify_consistency(m, n, &old_root, &root, &proof[..proof.len() - 1]).is_err());
                }
            }
        }
    }

    #[test]
    fn bad_requests_are_errors_not_panics() {
        let mut tree = MerkleTree::new();
        tree.append(b"a");
        assert_eq!(
            tree.inclusion_proof(1, 1),
            Err(ProofError::NoSuchLeaf { index: 1, size: 1 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 2),
            Err(ProofError::SizeBeyondLog { asked: 2, have: 1 })
        );
        assert_eq!(
            tree.consistency_proof(0, 1),
            Err(ProofError::BadRange { old: 0, new: 1 })
        );
        assert_eq!(
            tree.consistency_proof(2, 1),
            Err(ProofError::BadRange { old: 2, new: 1 })
        );
        let root = tree.root();
        assert_eq!(
            verify_inclusion(&root, 3, 2, &[], &root),
            Err(VerifyError::IndexOutOfRange { index: 3, size: 2 })
        );
        assert!(verify_consistency(0, 0, &root, &root, &[]).is_err());
    }

    proptest! {
        #[test]
        fn large_random_trees_prove_inclusion_and_consistency(n in 2u64..5000, picks in proptest::collection::vec(any::<u64>(), 8)) {
            let mut tree = MerkleTree::new();
            for i in 0..n {
                tree.append(&i.to_be_bytes());
            }
            for p in picks {
                let size = 1 + p % n;
                let index = (p >> 20) % size;
                let root = tree.root_at(size).unwrap();
                let proof = tree.inclusion_proof(index, size).unwrap();
                prop_assert!(proof.len() <= 64);
                prop_assert_eq!(verify_inclusion(&tree.leaf(index).unwrap(), index, size, &proof, &root), Ok(()));
                let old = 1 + (p >> 40) % size;
                let cproof = tree.consistency_proof(old, size).unwrap();
                prop_assert_eq!(verify_consistency(old, size, &tree.root_at(old).unwrap(), &root, &cproof), Ok(()));
            }
        }
    }
}
