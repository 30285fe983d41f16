//! Maps whose changes since the start of a transaction can be undone: how a call that reverts
//! halfway (a registration minted, then its third metadata entry refused) leaves the registries
//! exactly as they were, as the EVM's revert does.
//!
//! The registries live in memory; a replica's durable state is the committed log and the
//! snapshots of whole heights, so a crash mid-apply loses only memory, and replaying the log
//! applies the transaction whole again. What must hold in memory is that a refused call leaves
//! no trace: every write goes through a [`Table`], which records the value it replaced until the
//! transaction ends ([`Table::commit`] forgets them, [`Table::rollback`] puts them back).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ordered map with an undo log of the current transaction's writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table<K: Ord + Clone, V: Clone> {
    map: BTreeMap<K, V>,
    /// Each write of the transaction under way: the key and the value it replaced.
    undo: Vec<(K, Option<V>)>,
}

impl<K: Ord + Clone, V: Clone> Default for Table<K, V> {
    fn default() -> Self {
        Table {
            map: BTreeMap::new(),
            undo: Vec::new(),
        }
    }
}

impl<K: Ord + Clone, V: Clone> Table<K, V> {
    /// The value at `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Sets `key` to `value`, undoably.
    pub fn insert(&mut self, key: K, value: V) {
        let before = self.map.insert(key.clone(), value);
        self.undo.push((key, before));
    }

    /// Removes `key`'s value, undoably; the value removed.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let before = self.map.remove(key);
        if before.is_some() {
            self.undo.push((key.clone(), before.clone()));
        }
        before
    }

    /// Changes `key`'s value in place (starting from `default` if absent), undoably.
    pub fn update(&mut self, key: K, default: V, change: impl FnOnce(&mut V)) {
        let mut value = self.map.get(&key).cloned().unwrap_or(default);
        change(&mut value);
        self.insert(key, value);
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    /// The entries with keys in `range`, in key order.
    pub fn range<R: std::ops::RangeBounds<K>>(&self, range: R) -> impl Iterator<Item = (&K, &V)> {
        self.map.range(range)
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Ends the transaction: its writes stay.
    pub fn commit(&mut self) {
        self.undo.clear();
    }

    /// Ends the transaction: its writes are undone, newest first.
    pub fn rollback(&mut self) {
        while let Some((key, before)) = self.undo.pop() {
            match before {
                Some(value) => self.map.insert(key, value),
                None => self.map.remove(&key),
            };
        }
    }

    /// Whether a transaction's writes are pending.
    pub fn dirty(&self) -> bool {
        !self.undo.is_empty()
    }

    /// A table holding `map`, with no transaction under way (restoring a snapshot).
    pub fn from_map(map: BTreeMap<K, V>) -> Self {
        Table { map, undo: Vec::new() }
    }
}

/// A table is kept in snapshots as its entries in key order ([`pairs`]); no transaction is
/// ever under way in a snapshot.
impl<K: Ord + Clone + Serialize, V: Clone + Serialize> Serialize for Table<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        debug_assert!(self.undo.is_empty(), "a snapshot between transactions");
        pairs::serialize(&self.map, serializer)
    }
}

impl<'de, K: Ord + Clone + Deserialize<'de>, V: Clone + Deserialize<'de>> Deserialize<'de> for Table<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        pairs::deserialize(deserializer).map(Table::from_map)
    }
}

/// A map kept as its entries in key order (`[[key, value], …]`): keys may be tuples, which
/// JSON objects cannot key by. Reading refuses a key listed twice.
pub(crate) mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, K: Serialize, V: Serialize>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, K: Ord + Deserialize<'de>, V: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<K, V>, D::Error> {
        let entries: Vec<(K, V)> = Vec::deserialize(deserializer)?;
        let count = entries.len();
        let map: BTreeMap<K, V> = entries.into_iter().collect();
        if map.len() != count {
            return Err(serde::de::Error::custom("a map lists a key twice"));
        }
        Ok(map)
    }
}

/// What every journaled part of the state does at a transaction's end.
pub trait Journal {
    /// Keeps the transaction's writes.
    fn commit(&mut self);
    /// Undoes the transaction's writes.
    fn rollback(&mut self);
}

impl<K: Ord + Clone, V: Clone> Journal for Table<K, V> {
    fn commit(&mut self) {
        Table::commit(self);
    }
    fn rollback(&mut self) {
        Table::rollback(self);
    }
}

/// Lists kept per key, appended to only (a registry's clients of an agent, requests of a
/// validator), in insertion order: each item one entry, so appending costs a log, not a copy
/// of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: Deserialize<'de>, V: Deserialize<'de>"
))]
pub struct Lists<K: Ord + Clone, V: Clone> {
    items: Table<(K, u64), V>,
    lens: Table<K, u64>,
}

impl<K: Ord + Clone, V: Clone> Default for Lists<K, V> {
    fn default() -> Self {
        Lists {
            items: Table::default(),
            lens: Table::default(),
        }
    }
}

impl<K: Ord + Clone, V: Clone> Lists<K, V> {
    /// Appends `value` to `key`'s list, undoably.
    pub fn push(&mut self, key: K, value: V) {
        let len = self.len(&key);
        self.items.insert((key.clone(), len), value);
        self.lens.insert(key, len + 1);
    }

    /// The length of `key`'s list.
    pub fn len(&self, key: &K) -> u64 {
        self.lens.get(key).copied().unwrap_or(0)
    }

    /// `key`'s list, in insertion order.
    pub fn iter<'a>(&'a self, key: &K) -> impl Iterator<Item = &'a V> + 'a {
        self.items
            .range((key.clone(), 0)..(key.clone(), self.len(key)))
            .map(|(_, v)| v)
    }

    /// `key`'s list from position `start` on, in insertion order.
    pub fn iter_from<'a>(&'a self, key: &K, start: u64) -> impl Iterator<Item = &'a V> + 'a {
        let len = self.len(key);
        self.items
            .range((key.clone(), start.min(len))..(key.clone(), len))
            .map(|(_, v)| v)
    }

    /// Every list, by key: (key, position, item).
    pub fn entries(&self) -> impl Iterator<Item = (&K, u64, &V)> {
        self.items.iter().map(|((k, i), v)| (k, *i, v))
    }
}

impl<K: Ord + Clone, V: Clone> Journal for Lists<K, V> {
    fn commit(&mut self) {
        self.items.commit();
        self.lens.commit();
    }
    fn rollback(&mut self) {
        self.items.rollback();
        self.lens.rollback();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any writes then a rollback leave the table as before; a commit keeps them.
        #[test]
        fn a_rollback_undoes_exactly_the_transaction(
            before in proptest::collection::btree_map(0u8..16, 0u32..100, 0..10),
            writes in proptest::collection::vec((0u8..16, proptest::option::of(0u32..100)), 0..30),
        ) {
            let mut t = Table::from_map(before.clone());
            let mut expected = before.clone();
            for (k, v) in &writes {
                match v {
                    Some(v) => { t.insert(*k, *v); expected.insert(*k, *v); }
                    None => { t.remove(k); expected.remove(k); }
                }
            }
            let mut kept = t.clone();
            t.rollback();
            proptest::prop_assert_eq!(&t.map, &before);
            proptest::prop_assert!(!t.dirty());
            kept.commit();
            proptest::prop_assert_eq!(&kept.map, &expected);
            kept.rollback();
            proptest::prop_assert_eq!(&kept.map, &expected, "a rollback after a commit undoes nothing");
        }
    }
}
