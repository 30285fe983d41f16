//! What the API keeps beside the chain: which agents each committed block changed (for the
//! cache), and the guide's materialized views, the agents' reputation and activity statistics.
//!
//! The [`Follower`] reads every committed block once, in order, from the receipts' logs: each
//! registry event names the agent it changed. The cache ([`crate::cache`]) asks it whether
//! anything an answer depends on changed since the answer was made; nothing is deleted on a
//! timer, and no answer is served from before a change the follower has seen (the statistics
//! of a periodic view excepted, which are as old as the view and counted as stale reads). The
//! API brings the follower to the chain's head before it answers anything, inside the same read
//! of the chain, so that a read after a transaction was acknowledged sees it.
//!
//! The [`StatsView`] holds per agent what the guide's views `mv_erc8004_agent_reputation` and
//! the activity statistics held. In its default mode it is kept [`Refresh::Incremental`]ly: each
//! event changes the sums it touches, at a constant cost per event, so it is as current as the
//! follower. [`Refresh::Periodic`] is the guide's setting (a full recomputation every 5 minutes
//! from cron): between refreshes it serves what it computed last, and a read of an agent changed
//! since is counted as a stale read. When the blocks it needs are no longer kept by the chain
//! (a follower far behind, or one just started), both are rebuilt from the registries' state.

use std::collections::HashMap;
use std::time::Duration;

use alloy_primitives::{Address, Log, B256, U256};
use alloy_sol_types::SolEvent;
use erc8004::abi::{
    IdentityRegistry as I, ReputationRegistry as R, ValidationRegistry as V, IDENTITY_REGISTRY, REPUTATION_REGISTRY,
    VALIDATION_REGISTRY,
};
use erc8004::chain::Chain;
use erc8004::registries::Registries;
use erc8004::reputation::{Summary, Tally};
use runtime::WallTime;

use crate::index::{OwnerIndex, RegistrationIndex};

/// What one registry event changed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change {
    /// A new agent (the end of the agent list grew).
    Registered(U256),
    /// The agent's identity record: its owner, URI or metadata.
    Identity(U256),
    /// Something else about the agent, not counted in its statistics (a response to feedback).
    Touched(U256),
    /// A new feedback entry.
    Feedback {
        agent: U256,
        first_of_client: bool,
        value: i128,
        decimals: u8,
    },
    /// A feedback entry revoked.
    Revoked { agent: U256, client: Address, index: u64 },
    /// A validation request.
    Requested(U256),
    /// A validation response (the latest replaces the one before).
    Responded { agent: U256, request: B256, response: u8 },
    /// A registry log this API does not read: everything is taken as changed.
    Unreadable,
}

/// The change `log` records, if it is a registry's.
fn change_of(log: &Log) -> Option<Change> {
    let topics = log.data.topics();
    let (signature, agent) = (*topics.first()?, topics.get(1).map(|t| U256::from_be_bytes(t.0)));
    let identity = || agent.map(Change::Identity).unwrap_or(Change::Unreadable);
    Some(match log.address {
        a if a == IDENTITY_REGISTRY => match signature {
            I::Registered::SIGNATURE_HASH => agent.map(Change::Registered).unwrap_or(Change::Unreadable),
            I::Transfer::SIGNATURE_HASH | I::Approval::SIGNATURE_HASH => topics
                .get(3)
                .map(|t| Change::Identity(U256::from_be_bytes(t.0)))
                .unwrap_or(Change::Unreadable),
            // Operators are not part of any answer.
            I::ApprovalForAll::SIGNATURE_HASH => return None,
            I::MetadataUpdate::SIGNATURE_HASH => match I::MetadataUpdate::decode_log_data(&log.data) {
                Ok(e) => Change::Identity(e._tokenId),
                Err(_) => Change::Unreadable,
            },
            I::MetadataSet::SIGNATURE_HASH | I::URIUpdated::SIGNATURE_HASH => identity(),
            _ => Change::Unreadable,
        },
        a if a == REPUTATION_REGISTRY => match signature {
            R::NewFeedback::SIGNATURE_HASH => match R::NewFeedback::decode_log_data(&log.data) {
                Ok(e) => Change::Feedback {
                    agent: e.agentId,
                    first_of_client: e.feedbackIndex == 1,
                    value: e.value,
                    decimals: e.valueDecimals,
                },
                Err(_) => Change::Unreadable,
            },
            R::FeedbackRevoked::SIGNATURE_HASH => match R::FeedbackRevoked::decode_log_data(&log.data) {
                Ok(e) => Change::Revoked {
                    agent: e.agentId,
                    client: e.clientAddress,
                    index: e.feedbackIndex,
                },
                Err(_) => Change::Unreadable,
            },
            R::ResponseAppended::SIGNATURE_HASH => agent.map(Change::Touched).unwrap_or(Change::Unreadable),
            _ => Change::Unreadable,
        },
        a if a == VALIDATION_REGISTRY => match signature {
            V::ValidationRequest::SIGNATURE_HASH => match V::ValidationRequest::decode_log_data(&log.data) {
                Ok(e) => Change::Requested(e.agentId),
                Err(_) => Change::Unreadable,
            },
            V::ValidationResponse::SIGNATURE_HASH => match V::ValidationResponse::decode_log_data(&log.data) {
                Ok(e) => Change::Responded {
                    agent: e.agentId,
                    request: e.requestHash,
                    response: e.response,
                },
                Err(_) => Change::Unreadable,
            },
            _ => Change::Unreadable,
        },
        _ => return None,
    })
}

/// The changes block `number` records, in order; `None` if the chain no longer keeps it.
fn changes_in(chain: &Chain, number: u64) -> Option<Vec<Change>> {
    let block = chain.block(number)?;
    let mut changes = Vec::new();
    for hash in &block.transactions {
        changes.extend(chain.receipt(hash)?.logs.iter().filter_map(change_of));
    }
    Some(changes)
}

/// What an answer depends on: the agents it shows (all they hold, or only their identity
/// records), whether it is the end of the agent list (which a registration extends), and whether
/// it shows the statistics view (which a periodic refresh changes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Depends {
    /// The agents whose state the answer shows.
    pub agents: Vec<U256>,
    /// The agents whose identity record (owner, URI, metadata) and nothing else it shows: their
    /// feedback and validations do not change it.
    pub identities: Vec<U256>,
    /// Whether it shows the end of the agent list.
    pub list_end: bool,
    /// Whether it shows the statistics view.
    pub stats: bool,
    /// Whether a registration, transfer or identity change of any agent may change it (which
    /// agents an owner holds, which match a registration filter).
    pub any_identity: bool,
    /// Whether feedback to any agent may change it (which agents match a tag or reputation
    /// filter).
    pub any_feedback: bool,
}

/// The committed blocks read so far, and when each agent last changed.
///
/// Changes are numbered by a generation that grows by one per block that changed anything; an
/// answer made at generation `g` is current while nothing it depends on changed after `g`.
#[derive(Debug, Default)]
pub struct Follower {
    /// The last block read (0: none).
    head: u64,
    /// The generation of the last change.
    generation: u64,
    /// Each agent's last change.
    changed: HashMap<U256, u64>,
    /// Each agent's last change of its identity record (a registration included).
    identity_changed: HashMap<U256, u64>,
    /// The last registration.
    list_end: u64,
    /// The last time everything changed (a rebuild, or a log not understood).
    everything: u64,
    /// The last time the statistics view was recomputed.
    stats: u64,
    /// The last registration or identity change of any agent.
    any_identity: u64,
    /// The last feedback given or revoked, to any agent.
    any_feedback: u64,
    /// Whether the follower has read the chain at all.
    started: bool,
    /// Whether a catch-up began and did not finish.
    interrupted: bool,
}

/// What bringing the follower to the head did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaughtUp {
    /// Blocks read.
    pub blocks: u64,
    /// Whether it read the state whole instead (the blocks it needed were not kept).
    pub rebuilt: bool,
}

impl Follower {
    /// The generation now: what an answer made now is stamped with.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The last block read.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Whether something `depends` names changed after generation `made`.
    pub fn changed_since(&self, depends: &Depends, made: u64) -> bool {
        self.everything > made
            || (depends.list_end && self.list_end > made)
            || (depends.stats && self.stats > made)
            || (depends.any_identity && self.any_identity > made)
            || (depends.any_feedback && self.any_feedback > made)
            || depends
                .agents
                .iter()
                .any(|agent| self.changed.get(agent).is_some_and(|&at| at > made))
            || depends
                .identities
                .iter()
                .any(|agent| self.identity_changed.get(agent).is_some_and(|&at| at > made))
    }

    /// Reads the blocks committed since the last call, handing each change to `stats`; if the
    /// blocks needed are gone (or this is the first call, or the last one did not finish), reads
    /// the state whole instead.
    pub fn catch_up(&mut self, chain: &Chain, stats: &mut StatsView, now: WallTime) -> CaughtUp {
        let head = chain.head();
        let mut caught = CaughtUp::default();
        // A call that stopped half-way (a panic caught by the server) left changes unnoted:
        // start again from the state.
        let mut rebuild =
            !self.started || self.interrupted || (head > self.head && chain.oldest_kept() > self.head + 1);
        self.interrupted = true;
        if !rebuild {
            let registries = chain.registries();
            while self.head < head {
                let number = self.head + 1;
                let Some(changes) = changes_in(chain, number) else {
                    // Not kept after all: the state is the only source left.
                    rebuild = true;
                    break;
                };
                caught.blocks += 1;
                if !changes.is_empty() {
                    // Every change is noted before any is applied: the cache never trusts an
                    // answer the block changed, whatever happens to the statistics.
                    self.generation += 1;
                    for change in &changes {
                        self.note(change);
                    }
                    for change in &changes {
                        stats.apply(change, &registries);
                    }
                }
                self.head = number;
            }
        }
        if rebuild {
            self.started = true;
            self.head = head;
            self.generation += 1;
            self.everything = self.generation;
            stats.rebuild(&chain.registries(), now, self.head, self.generation);
            caught.rebuilt = true;
        }
        if stats.caught_up(&chain.registries(), now, self.head, self.generation) {
            self.generation += 1;
            self.stats = self.generation;
            stats.generation = self.generation;
        }
        self.interrupted = false;
        caught
    }

    fn note(&mut self, change: &Change) {
        let generation = self.generation;
        let agent = match change {
            Change::Unreadable => {
                self.everything = generation;
                return;
            }
            Change::Registered(agent) => {
                self.list_end = generation;
                self.any_identity = generation;
                self.identity_changed.insert(*agent, generation);
                agent
            }
            Change::Identity(agent) => {
                self.any_identity = generation;
                self.identity_changed.insert(*agent, generation);
                agent
            }
            Change::Touched(agent) | Change::Requested(agent) | Change::Responded { agent, .. } => agent,
            Change::Feedback { agent, .. } | Change::Revoked { agent, .. } => {
                self.any_feedback = generation;
                agent
            }
        };
        self.changed.insert(*agent, generation);
    }

    /// When agent `id` last changed (0: not since the follower started).
    fn changed_at(&self, id: U256) -> u64 {
        self.changed.get(&id).copied().unwrap_or(0).max(self.everything)
    }
}

/// One agent's statistics: the guide's reputation view (feedback, clients, the mean value) and
/// its activity (validations asked and answered).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Feedback entries given, revoked ones included.
    pub feedback: u64,
    /// Of those, revoked.
    pub revoked: u64,
    /// Clients that gave feedback.
    pub clients: u64,
    /// The feedback not revoked, from every client, summed as `getSummary` sums.
    pub active: Tally,
    /// Validation requests.
    pub validations: u64,
    /// Of those, answered.
    pub responded: u64,
    /// The latest responses to them, summed (0 to 100 each).
    pub response_sum: u64,
}

impl AgentStats {
    /// The mean of the feedback not revoked, from every client (not the trusted summary
    /// `/reputation` gives over named clients).
    pub fn mean(&self) -> Summary {
        self.active.summary()
    }

    /// The mean latest response over the answered requests, if any was answered.
    pub fn response_mean(&self) -> Option<f64> {
        (self.responded > 0).then(|| self.response_sum as f64 / self.responded as f64)
    }
}

/// How the statistics are kept current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Changed with every committed event (the default).
    Incremental,
    /// Recomputed whole from the state at most this often (the guide's cron: 5 minutes).
    Periodic(Duration),
}

/// The statistics of every agent.
#[derive(Debug)]
pub struct StatsView {
    refresh: Refresh,
    agents: HashMap<U256, AgentStats>,
    /// The latest response to each answered request (a new one replaces it in the sums).
    responses: HashMap<B256, u8>,
    /// When the view was last known to match the chain's head.
    current_at: Option<WallTime>,
    /// Whether it was behind the head at the last read.
    behind: bool,
    /// When a periodic view was last recomputed.
    refreshed_at: Option<WallTime>,
    /// The block it matches.
    head: u64,
    /// The follower's generation when it was last made current (for stale reads).
    generation: u64,
    /// The largest age seen when it was brought up to date.
    age_max: Duration,
    /// Reads of an agent changed since the view was made (only [`Refresh::Periodic`] has any).
    stale_reads: u64,
    /// Full recomputations.
    rebuilds: u64,
    /// Each owner's agents, kept event by event whatever `refresh` says.
    owners: OwnerIndex,
    /// Each agent's registration facts, kept the same way.
    registrations: RegistrationIndex,
}

impl StatsView {
    /// An empty view kept current as `refresh` says.
    pub fn new(refresh: Refresh) -> Self {
        StatsView {
            refresh,
            agents: HashMap::new(),
            responses: HashMap::new(),
            current_at: None,
            behind: false,
            refreshed_at: None,
            head: 0,
            generation: 0,
            age_max: Duration::ZERO,
            stale_reads: 0,
            rebuilds: 0,
            owners: OwnerIndex::default(),
            registrations: RegistrationIndex::default(),
        }
    }

    /// Each owner's agents.
    pub fn owners(&self) -> &OwnerIndex {
        &self.owners
    }

    /// Each agent's registration facts.
    pub fn registrations(&self) -> &RegistrationIndex {
        &self.registrations
    }

    /// Agent `id`'s statistics, and whether they are stale (the agent changed since the view
    /// was made, which `follower` tells; counted as a stale read).
    pub fn agent(&mut self, id: U256, follower: &Follower) -> (Option<&AgentStats>, bool) {
        let stale = follower.changed_at(id) > self.generation;
        self.stale_reads += u64::from(stale);
        (self.agents.get(&id), stale)
    }

    /// How stale what the view serves is at `now`: zero while it matches the chain's head (as
    /// of the last read), else the time since it last did (an upper bound on how long the
    /// oldest change it lacks has been committed).
    pub fn age(&self, now: WallTime) -> Duration {
        match self.current_at {
            Some(at) if self.behind => since(at, now),
            _ => Duration::ZERO,
        }
    }

    /// The largest [`StatsView::age`] any read saw.
    pub fn age_max(&self) -> Duration {
        self.age_max
    }

    /// Reads served from before a change (only [`Refresh::Periodic`] has any).
    pub fn stale_reads(&self) -> u64 {
        self.stale_reads
    }

    /// Full recomputations so far.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    /// The block the view matches.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Agents it holds.
    pub fn agents(&self) -> usize {
        self.agents.len()
    }

    fn apply(&mut self, change: &Change, registries: &Registries) {
        // The list's indexes are not the guide's materialized views: they follow every block.
        match *change {
            Change::Registered(agent) | Change::Identity(agent) => {
                self.owners.update(agent, registries);
                self.registrations.update(agent, registries);
            }
            Change::Unreadable => {
                self.owners.rebuild(registries);
                self.registrations.rebuild(registries);
            }
            _ => {}
        }
        if self.refresh != Refresh::Incremental {
            return;
        }
        match *change {
            Change::Registered(agent) => {
                self.agents.entry(agent).or_default();
            }
            Change::Identity(_) | Change::Touched(_) | Change::Unreadable => {}
            Change::Feedback {
                agent,
                first_of_client,
                value,
                decimals,
            } => {
                let stats = self.agents.entry(agent).or_default();
                stats.feedback += 1;
                stats.clients += u64::from(first_of_client);
                stats.active.add(value, decimals);
            }
            Change::Revoked { agent, client, index } => {
                let entry = registries
                    .feedback_entry(agent, client, index)
                    .expect("a revoked entry stays in the registry");
                let stats = self.agents.entry(agent).or_default();
                stats.revoked += 1;
                stats.active.remove(entry.value, entry.decimals);
            }
            Change::Requested(agent) => self.agents.entry(agent).or_default().validations += 1,
            Change::Responded {
                agent,
                request,
                response,
            } => {
                let stats = self.agents.entry(agent).or_default();
                match self.responses.insert(request, response) {
                    Some(before) => stats.response_sum -= u64::from(before),
                    None => stats.responded += 1,
                }
                stats.response_sum += u64::from(response);
            }
        }
    }

    /// Records that the follower reached `head` at `now`, before a read; a periodic view
    /// recomputes itself here once its interval has passed (`true`: it did).
    fn caught_up(&mut self, registries: &Registries, now: WallTime, head: u64, generation: u64) -> bool {
        let recomputed = match self.refresh {
            // Every change is in already.
            Refresh::Incremental => false,
            Refresh::Periodic(every) => {
                let due = self.refreshed_at.is_none_or(|at| since(at, now) >= every);
                if due {
                    self.recompute(registries);
                    self.refreshed_at = Some(now);
                } else if generation != self.generation {
                    // Behind until the next refresh (a block changed something since it was
                    // made): what it serves is stale.
                    self.behind = true;
                    self.age_max = self.age_max.max(self.age(now));
                    return false;
                }
                due
            }
        };
        self.behind = false;
        self.current_at = Some(now);
        self.head = head;
        self.generation = generation;
        recomputed
    }

    fn rebuild(&mut self, registries: &Registries, now: WallTime, head: u64, generation: u64) {
        // The list's indexes follow every block (`apply`): read whole only when the blocks
        // could not be, never on a periodic refresh of the statistics.
        self.owners.rebuild(registries);
        self.registrations.rebuild(registries);
        self.recompute(registries);
        self.refreshed_at = Some(now);
        self.current_at = Some(now);
        self.head = head;
        self.generation = generation;
    }

    /// Recomputes every agent's statistics from the state, as a `REFRESH MATERIALIZED VIEW` does.
    fn recompute(&mut self, registries: &Registries) {
        self.rebuilds += 1;
        self.agents.clear();
        self.responses.clear();
        for id in registries.agent_ids() {
            let mut stats = AgentStats::default();
            let mut last_client = None;
            for entry in registries.feedback_entries(id) {
                stats.feedback += 1;
                if last_client != Some(entry.client) {
                    stats.clients += 1;
                    last_client = Some(entry.client);
                }
                if entry.feedback.revoked {
                    stats.revoked += 1;
                } else {
                    stats.active.add(entry.feedback.value, entry.feedback.decimals);
                }
            }
            for entry in registries.validation_entries(id) {
                stats.validations += 1;
                if entry.validation.has_response {
                    stats.responded += 1;
                    stats.response_sum += u64::from(entry.validation.response);
                    self.responses.insert(entry.request_hash, entry.validation.response);
                }
            }
            self.agents.insert(id, stats);
        }
    }
}

/// The time from `then` to `now`, zero if the wall clock went back.
pub(crate) fn since(then: WallTime, now: WallTime) -> Duration {
    Duration::from_nanos(u64::try_from(now.as_unix_nanos().saturating_sub(then.as_unix_nanos())).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, Log, LogData, B256, U256};
    use alloy_sol_types::SolEvent;
    use erc8004::abi::{IdentityRegistry as I, IDENTITY_REGISTRY};

    use super::{change_of, Change};

    /// A transfer (and an approval) names its token in the third topic, after two addresses: a
    /// change of owner must reach the agent's cached answers even when nothing else is logged.
    #[test]
    fn a_transfer_names_the_agent_by_its_token_not_by_an_address() {
        let (from, to) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let transfer = I::Transfer {
            from,
            to,
            tokenId: U256::from(7),
        };
        let data: LogData = transfer.encode_log_data();
        let log = Log {
            address: IDENTITY_REGISTRY,
            data,
        };
        assert_eq!(change_of(&log), Some(Change::Identity(U256::from(7))));
        // Another contract's logs are none of the registries'.
        let elsewhere = Log {
            address: Address::repeat_byte(9),
            data: log.data.clone(),
        };
        assert_eq!(change_of(&elsewhere), None);
        // A registry log this API does not know takes everything as changed.
        let unknown = Log {
            address: IDENTITY_REGISTRY,
            data: LogData::new_unchecked(vec![B256::repeat_byte(3)], Default::default()),
        };
        assert_eq!(change_of(&unknown), Some(Change::Unreadable));
    }
}
