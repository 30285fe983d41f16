//! The agent list's owner index: `GET /api/v1/agents/?owner=0x…` answered from a map of each
//! owner's agents, kept as blocks commit (a registration or a transfer changes one agent's
//! entry), so a search costs the agents it returns, not the registry's size. The guide's
//! "verify indexes exist" (its slow-query entry) is [`Search::Scan`]: without the index the
//! search reads the registry's table front to back until its page is full, as a database
//! without an index scans its table. Both count the rows they examine
//! (`erc8004_search_rows_examined_total`), the figure `registry-slow-query` compares.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alloy_primitives::{Address, U256};
use erc8004::registries::Registries;

/// How the owner filter finds its agents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Search {
    /// From the owner index (the default).
    #[default]
    Indexed,
    /// By reading every agent after the cursor (the guide's missing index).
    Scan,
}

/// The owner filter's searches run (answers from the cache run none) and the rows they
/// examined: the guide's `pg_stat_statements`, rows per search its mean cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchTally {
    /// Searches run.
    pub searches: u64,
    /// Rows they examined.
    pub rows_examined: u64,
}

/// Each owner's agents.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    owner_of: HashMap<U256, Address>,
    by_owner: BTreeMap<Address, BTreeSet<U256>>,
}

impl OwnerIndex {
    /// Brings agent `id`'s entry to its owner in `registries` (registered, or transferred).
    pub fn update(&mut self, id: U256, registries: &Registries) {
        let now = registries.owner(id);
        let was = self.owner_of.get(&id).copied();
        if now == was {
            return;
        }
        if let Some(was) = was {
            if let Some(owned) = self.by_owner.get_mut(&was) {
                owned.remove(&id);
                if owned.is_empty() {
                    self.by_owner.remove(&was);
                }
            }
            self.owner_of.remove(&id);
        }
        if let Some(now) = now {
            self.owner_of.insert(id, now);
            self.by_owner.entry(now).or_default().insert(id);
        }
    }

    /// Made again from every agent in `registries`.
    pub fn rebuild(&mut self, registries: &Registries) {
        self.owner_of.clear();
        self.by_owner.clear();
        for (id, owner) in registries.owners_after(None) {
            self.owner_of.insert(id, owner);
            self.by_owner.entry(owner).or_default().insert(id);
        }
    }

    /// Agents indexed.
    pub fn len(&self) -> usize {
        self.owner_of.len()
    }

    /// Whether no agent is indexed.
    pub fn is_empty(&self) -> bool {
        self.owner_of.is_empty()
    }
}

/// Up to `limit` agents of `owner` with ids above `after`, in id order, and the rows examined to
/// find them: from `index`, or by reading the registry's table.
pub fn owned_after(
    search: Search,
    index: &OwnerIndex,
    registries: &Registries,
    owner: Address,
    after: Option<U256>,
    limit: usize,
) -> (Vec<U256>, u64) {
    match search {
        Search::Indexed => {
            let Some(owned) = index.by_owner.get(&owner) else {
                return (Vec::new(), 0);
            };
            let ids: Vec<U256> = match after {
                Some(after) => owned
                    .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .take(limit)
                    .copied()
                    .collect(),
                None => owned.iter().take(limit).copied().collect(),
            };
            let rows = ids.len() as u64;
            (ids, rows)
        }
        Search::Scan => {
            let mut rows = 0;
            let mut ids = Vec::new();
            for (id, held_by) in registries.owners_after(after) {
                rows += 1;
                if held_by == owner {
                    ids.push(id);
                    if ids.len() == limit {
                        break;
                    }
                }
            }
            (ids, rows)
        }
    }
}
