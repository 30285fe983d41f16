//! A set of node indices as a bitset: partitions test membership on every delivery.

use std::fmt;

/// A set of node indices.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct NodeSet {
    words: Vec<u64>,
}

impl NodeSet {
    /// The empty set.
    pub fn new() -> Self {
        NodeSet::default()
    }

    /// The set of `indices`.
    pub fn from_indices(indices: impl IntoIterator<Item = u32>) -> Self {
        let mut set = NodeSet::new();
        for i in indices {
            set.insert(i);
        }
        set
    }

    /// Every node index below `n`.
    pub fn all(n: usize) -> NodeSet {
        NodeSet::from_indices(0..n as u32)
    }

    /// Adds `node`.
    pub fn insert(&mut self, node: u32) {
        let word = (node / 64) as usize;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (node % 64);
    }

    /// Removes `node`; true if it was there.
    pub fn remove(&mut self, node: u32) -> bool {
        let present = self.contains(node);
        if present {
            self.words[(node / 64) as usize] &= !(1 << (node % 64));
        }
        present
    }

    /// Whether `node` is in the set.
    pub fn contains(&self, node: u32) -> bool {
        self.words
            .get((node / 64) as usize)
            .is_some_and(|w| w & (1 << (node % 64)) != 0)
    }

    /// Members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, bits)| {
            (0..64u32)
                .filter(move |b| bits & (1u64 << b) != 0)
                .map(move |b| w as u32 * 64 + b)
        })
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether it has no member.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }
}

impl fmt::Debug for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_iterate() {
        let set = NodeSet::from_indices([0, 63, 64, 999]);
        assert!(set.contains(63) && set.contains(999) && !set.contains(1) && !set.contains(5000));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 63, 64, 999]);
        assert_eq!(set.len(), 4);
    }
}
