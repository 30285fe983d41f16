//! The agent list's indexes, kept as blocks commit (a registration, a transfer or a new URI
//! changes one agent's entries), so a filtered list does not read every agent's record again:
//!
//! - [`OwnerIndex`], each owner's agents: `GET /api/v1/agents/?owner=0x…` costs the agents it
//!   returns (and one more, to tell whether a page follows), not the registry's size. The guide's "verify indexes exist" (its slow-query entry)
//!   is [`Search::Scan`]: without the index the search reads the registry's table front to back
//!   until its page is full, as a database without an index scans its table;
//! - [`RegistrationIndex`], what each agent's registration file says that the filters read
//!   (`active`, `supportedTrust`, the services' names), parsed once when its URI is set rather
//!   than on every request.
//!
//! Searches count the rows they examine ([`SearchTally`], `erc8004_search_rows_examined_total`),
//! the figure `registry-slow-query` compares.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alloy_primitives::{Address, U256};
use erc8004::registration;
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

impl crate::setting::Named for Search {
    const NAMED: &'static [(Search, &'static str)] = &[(Search::Indexed, "indexed"), (Search::Scan, "scan")];
}

/// The filtered lists' searches run (answers from the cache run none) and the rows they
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

    /// `owner`'s agents with ids above `after` (from the first if `None`), in id order.
    pub fn owned(&self, owner: Address, after: Option<U256>) -> impl Iterator<Item = U256> + '_ {
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        self.by_owner
            .get(&owner)
            .into_iter()
            .flat_map(move |owned| owned.range((start, std::ops::Bound::Unbounded)).copied())
    }
}

/// What an agent's registration file says that the list's filters read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Facts {
    /// Read from its `data:` URI.
    Read {
        /// `active`.
        active: bool,
        /// `supportedTrust`, lowercased.
        trust: Vec<String>,
        /// The services' names, lowercased.
        services: Vec<String>,
    },
    /// Elsewhere (`https://`, `ipfs://`): the API does not fetch it, so no filter on its
    /// contents matches the agent.
    Remote,
    /// No URI set, or a file that does not read (`GET /{id}/registration` says why).
    Unread,
}

impl Facts {
    /// The facts of the file at `uri`.
    pub fn of(uri: &str) -> Facts {
        match registration::from_uri(uri) {
            Ok(Some(file)) => Facts::Read {
                active: file.active,
                trust: file.supported_trust.iter().map(|t| t.to_lowercase()).collect(),
                services: file.services.iter().map(|s| s.name.to_lowercase()).collect(),
            },
            Ok(None) => Facts::Remote,
            Err(_) => Facts::Unread,
        }
    }
}

/// Each agent's [`Facts`].
#[derive(Debug, Default)]
pub struct RegistrationIndex {
    facts: HashMap<U256, Facts>,
}

impl RegistrationIndex {
    /// Reads agent `id`'s file again from its URI in `registries` (registered, or its URI set).
    pub fn update(&mut self, id: U256, registries: &Registries) {
        match registries.uri(id) {
            Some(uri) => self.facts.insert(id, Facts::of(uri)),
            None => self.facts.remove(&id),
        };
    }

    /// Made again from every agent in `registries`.
    pub fn rebuild(&mut self, registries: &Registries) {
        self.facts.clear();
        for id in registries.agent_ids() {
            self.update(id, registries);
        }
    }

    /// Agent `id`'s facts, if it is registered.
    pub fn facts(&self, id: U256) -> Option<&Facts> {
        self.facts.get(&id)
    }
}
