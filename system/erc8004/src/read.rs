//! The registries read as the REST API shows them (`erc8004-api`): one agent, the agents in id
//! order a page at a time, an agent's feedback and validations. Reads only: nothing here changes
//! the state, and every answer is in a stable order (ids, then insertion).

use alloy_primitives::{Address, B256, U256};
use serde::Serialize;

use crate::registries::{Feedback, Registries, Validation};

/// An agent: its identity-registry record and how much the other registries hold about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// Its id (the ERC-721 token id).
    pub id: U256,
    /// Its owner.
    pub owner: Address,
    /// Its registration file's URI (`tokenURI`), empty if none was set.
    pub uri: String,
    /// The keys of its on-chain metadata, in order.
    pub metadata_keys: Vec<String>,
    /// Clients that gave it feedback.
    pub clients: u64,
    /// Feedback entries, revoked ones included.
    pub feedback: u64,
    /// Validation requests about it.
    pub validations: u64,
}

/// One feedback entry and who gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedbackEntry {
    /// The client who gave it.
    pub client: Address,
    /// Its index among that client's feedback to the agent (from 1, as the reference counts).
    pub index: u64,
    /// The entry.
    #[serde(flatten)]
    pub feedback: Feedback,
}

/// One validation request about an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidationEntry {
    /// The request's hash.
    pub request_hash: B256,
    /// The request and its latest response.
    #[serde(flatten)]
    pub validation: Validation,
}

impl Registries {
    /// How many agents were ever registered.
    pub fn agent_count(&self) -> usize {
        self.owners.len()
    }

    /// Whether agent `id` is registered.
    pub fn is_agent(&self, id: U256) -> bool {
        self.owners.contains(&id)
    }

    /// Agent `id`'s feedback entry `index` from `client` (from 1), if given.
    pub fn feedback_entry(&self, id: U256, client: Address, index: u64) -> Option<&Feedback> {
        self.feedback.get(&(id, client, index))
    }

    /// The validation request `hash` and its latest response, if it was made.
    pub fn validation_request(&self, hash: B256) -> Option<&Validation> {
        self.validations.get(&hash)
    }

    /// The ids of every agent, in order.
    pub fn agent_ids(&self) -> impl Iterator<Item = U256> + '_ {
        self.owners.iter().map(|(id, _)| *id)
    }

    /// Agent `id`'s registration file URI (empty if none was set), if it is registered.
    pub fn uri(&self, id: U256) -> Option<&str> {
        self.owners
            .get(&id)
            .map(|_| self.uris.get(&id).map_or("", String::as_str))
    }

    /// Agent `id`'s owner, if it is registered.
    pub fn owner(&self, id: U256) -> Option<Address> {
        self.owners.get(&id).copied()
    }

    /// Every agent with an id above `after` (from the first if `None`) and its owner, in id
    /// order: the registry's table read front to back, as a search without an index reads it.
    pub fn owners_after(&self, after: Option<U256>) -> impl Iterator<Item = (U256, Address)> + '_ {
        let start = after.map_or(Some(U256::ZERO), |id| id.checked_add(U256::from(1)));
        start
            .into_iter()
            .flat_map(move |start| self.owners.range(start..).map(|(id, owner)| (*id, *owner)))
    }

    /// Agent `id`, if it is registered.
    pub fn agent(&self, id: U256) -> Option<Agent> {
        let owner = *self.owners.get(&id)?;
        Some(Agent {
            id,
            owner,
            uri: self.uris.get(&id).cloned().unwrap_or_default(),
            metadata_keys: self
                .metadata
                .range((id, String::new())..)
                .take_while(|((agent, _), _)| *agent == id)
                .map(|((_, key), _)| key.clone())
                .collect(),
            clients: self.clients.len(&id),
            // Each client's entries are numbered from 1 without gaps: the last index of each
            // client is its count, so this costs a lookup per client, not a walk of every entry.
            feedback: self
                .clients
                .iter(&id)
                .map(|client| self.last_index.get(&(id, *client)).copied().unwrap_or(0))
                .sum(),
            validations: self.agent_validations.len(&id),
        })
    }

    /// Up to `limit` agents with ids above `after` (from the first if `None`), in id order: a
    /// page, and the cursor of the next (the last id) is the caller's to keep.
    pub fn agents_after(&self, after: Option<U256>, limit: usize) -> Vec<Agent> {
        let start = match after {
            Some(id) if id == U256::MAX => return Vec::new(),
            Some(id) => id + U256::from(1),
            None => U256::ZERO,
        };
        self.owners
            .range(start..)
            .take(limit)
            .filter_map(|(id, _)| self.agent(*id))
            .collect()
    }

    /// Agent `id`'s feedback, by client then index.
    pub fn feedback_entries(&self, id: U256) -> Vec<FeedbackEntry> {
        self.feedback
            .range((id, Address::ZERO, 0)..)
            .take_while(|((agent, _, _), _)| *agent == id)
            .map(|((_, client, index), feedback)| FeedbackEntry {
                client: *client,
                index: *index,
                feedback: feedback.clone(),
            })
            .collect()
    }

    /// Up to `limit` of agent `id`'s feedback entries after the one `after` names (client, index),
    /// from the first if `None`, by client then index: a page.
    pub fn feedback_page(&self, id: U256, after: Option<(Address, u64)>, limit: usize) -> Vec<FeedbackEntry> {
        let start = match after {
            Some((client, index)) => (id, client, index.saturating_add(1)),
            None => (id, Address::ZERO, 0),
        };
        self.feedback
            .range(start..)
            .take_while(|((agent, _, _), _)| *agent == id)
            .take(limit)
            .map(|((_, client, index), feedback)| FeedbackEntry {
                client: *client,
                index: *index,
                feedback: feedback.clone(),
            })
            .collect()
    }

    /// Up to `limit` of the validation requests about agent `id` from position `start` on (the
    /// list only grows, so a position is a stable cursor), in the order they were made.
    pub fn validation_page(&self, id: U256, start: u64, limit: usize) -> Vec<ValidationEntry> {
        self.agent_validations
            .iter_from(&id, start)
            .take(limit)
            .filter_map(|hash| {
                self.validations.get(hash).map(|v| ValidationEntry {
                    request_hash: *hash,
                    validation: v.clone(),
                })
            })
            .collect()
    }

    /// The validation requests about agent `id`, in the order they were made.
    pub fn validation_entries(&self, id: U256) -> Vec<ValidationEntry> {
        self.agent_validations
            .iter(&id)
            .filter_map(|hash| {
                self.validations.get(hash).map(|v| ValidationEntry {
                    request_hash: *hash,
                    validation: v.clone(),
                })
            })
            .collect()
    }
}
