//! The reputation registry: clients give agents feedback (a signed value with 0 to 18 decimals,
//! two tags), revoke it, and anyone appends responses; `getSummary` averages a chosen set of
//! clients' feedback at 18 decimals and reports it at the most common decimals.
//!
//! Checks, reverts, events and arithmetic follow the reference `ReputationRegistryUpgradeable`
//! 2.0.0 (its identity calls, such as the self-feedback check, are calls to this chain's identity
//! registry, and their reverts bubble up unchanged).

use alloy_primitives::{keccak256, Address, Bytes, I256, U256};
use alloy_sol_types::{SolCall, SolEvent};

use crate::abi::ReputationRegistry::{self as R, ReputationRegistryCalls as Call};
use crate::abi::{IDENTITY_REGISTRY, REPUTATION_REGISTRY, VERSION};
use crate::registries::{require, Feedback, Frame, Registries, Revert};

/// Largest magnitude of a feedback value (the reference's `MAX_ABS_VALUE`, 1e38).
pub const VALUE_ABS_MAX: i128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;

/// Most decimals a feedback value may have.
pub const DECIMALS_MAX: u8 = 18;

/// The summary of a set of feedback (`getSummary`'s return).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Feedback counted.
    pub count: u64,
    /// Their mean, at `decimals` decimals (truncated toward zero, twice, and cut to 128 bits
    /// as the reference's unchecked cast does).
    pub value: i128,
    /// The most common decimals among them (ties to the fewest).
    pub decimals: u8,
}

/// `getSummary`'s arithmetic over `(value, decimals)` pairs: each scaled to 18 decimals in
/// 256-bit signed arithmetic, the mean truncated toward zero, then scaled to the most common
/// decimals (ties to the fewest) and truncated again, and cut to its low 128 bits.
pub fn summarize(feedback: impl IntoIterator<Item = (i128, u8)>) -> Summary {
    let mut tally = Tally::default();
    for (value, decimals) in feedback {
        tally.add(value, decimals);
    }
    tally.summary()
}

/// [`summarize`]'s running sums, kept as feedback comes and goes: a view that adds each new
/// entry and removes each revoked one holds the same summary as one computed again from the
/// whole set, at a constant cost per change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    /// The values counted, each at 18 decimals.
    sum: I256,
    /// How many.
    count: u64,
    /// How many had each number of decimals (for the mode).
    by_decimals: [u64; DECIMALS_MAX as usize + 1],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            sum: I256::ZERO,
            count: 0,
            by_decimals: [0; DECIMALS_MAX as usize + 1],
        }
    }
}

impl Tally {
    /// Counts one value with `decimals` decimals (at most [`DECIMALS_MAX`], as stored).
    pub fn add(&mut self, value: i128, decimals: u8) {
        assert!(decimals <= DECIMALS_MAX, "stored feedback has at most 18 decimals");
        self.sum += I256::try_from(value).expect("an i128 fits 256 bits") * ten_to(DECIMALS_MAX - decimals);
        self.count += 1;
        self.by_decimals[usize::from(decimals)] += 1;
    }

    /// Uncounts a value [`Tally::add`] counted.
    pub fn remove(&mut self, value: i128, decimals: u8) {
        assert!(decimals <= DECIMALS_MAX, "stored feedback has at most 18 decimals");
        let slot = &mut self.by_decimals[usize::from(decimals)];
        assert!(*slot > 0 && self.count > 0, "a value removed that was never added");
        *slot -= 1;
        self.count -= 1;
        self.sum -= I256::try_from(value).expect("an i128 fits 256 bits") * ten_to(DECIMALS_MAX - decimals);
    }

    /// The summary of the values counted now.
    pub fn summary(&self) -> Summary {
        let Tally {
            sum,
            count,
            ref by_decimals,
        } = *self;
        if count == 0 {
            return Summary {
                count: 0,
                value: 0,
                decimals: 0,
            };
        }
        let mut mode = 0u8;
        for d in 1..=DECIMALS_MAX {
            if by_decimals[usize::from(d)] > by_decimals[usize::from(mode)] {
                mode = d;
            }
        }
        let mean = sum / I256::try_from(count).expect("a u64 fits 256 bits");
        let scaled = mean / ten_to(DECIMALS_MAX - mode);
        let limbs = scaled.into_raw();
        let limbs = limbs.as_limbs();
        let low = u128::from(limbs[0]) | (u128::from(limbs[1]) << 64);
        Summary {
            count,
            value: low as i128,
            decimals: mode,
        }
    }
}

/// 10^`n` as a signed 256-bit integer.
fn ten_to(n: u8) -> I256 {
    I256::from_raw(U256::from(10u64).pow(U256::from(n)))
}

/// Whether a stored tag passes a filter: an empty filter passes every tag.
fn tag_matches(filter: &str, tag: &str) -> bool {
    filter.is_empty() || filter == tag
}

impl Registries {
    /// Runs a call to the reputation registry; its ABI-encoded return.
    pub(crate) fn reputation(&mut self, f: &mut Frame, call: Call) -> Result<Bytes, Revert> {
        Ok(match call {
            Call::giveFeedback(c) => {
                require(c.valueDecimals <= DECIMALS_MAX, "too many decimals")?;
                require((-VALUE_ABS_MAX..=VALUE_ABS_MAX).contains(&c.value), "value too large")?;
                // The identity registry's isAuthorizedOrOwner: reverts for an unknown agent.
                let owner = self.owner_of(c.agentId)?;
                require(
                    !self.is_authorized(owner, f.sender, c.agentId),
                    "Self-feedback not allowed",
                )?;
                let index = self.last_index(c.agentId, f.sender) + 1;
                self.last_index.insert((c.agentId, f.sender), index);
                self.feedback.insert(
                    (c.agentId, f.sender, index),
                    Feedback {
                        value: c.value,
                        decimals: c.valueDecimals,
                        revoked: false,
                        tag1: c.tag1.clone(),
                        tag2: c.tag2.clone(),
                    },
                );
                if !self.is_client.contains(&(c.agentId, f.sender)) {
                    self.is_client.insert((c.agentId, f.sender), ());
                    self.clients.push(c.agentId, f.sender);
                }
                f.emit(
                    REPUTATION_REGISTRY,
                    R::NewFeedback {
                        agentId: c.agentId,
                        clientAddress: f.sender,
                        feedbackIndex: index,
                        value: c.value,
                        valueDecimals: c.valueDecimals,
                        indexedTag1: keccak256(c.tag1.as_bytes()),
                        tag1: c.tag1,
                        tag2: c.tag2,
                        endpoint: c.endpoint,
                        feedbackURI: c.feedbackURI,
                        feedbackHash: c.feedbackHash,
                    }
                    .encode_log_data(),
                );
                Vec::new()
            }
            Call::revokeFeedback(c) => {
                require(c.feedbackIndex > 0, "index must be > 0")?;
                require(
                    c.feedbackIndex <= self.last_index(c.agentId, f.sender),
                    "index out of bounds",
                )?;
                let key = (c.agentId, f.sender, c.feedbackIndex);
                let mut feedback = self
                    .feedback
                    .get(&key)
                    .cloned()
                    .expect("indexes up to the last are stored");
                require(!feedback.revoked, "Already revoked")?;
                feedback.revoked = true;
                self.feedback.insert(key, feedback);
                f.emit(
                    REPUTATION_REGISTRY,
                    R::FeedbackRevoked {
                        agentId: c.agentId,
                        clientAddress: f.sender,
                        feedbackIndex: c.feedbackIndex,
                    }
                    .encode_log_data(),
                );
                Vec::new()
            }
            Call::appendResponse(c) => {
                require(c.feedbackIndex > 0, "index must be > 0")?;
                require(!c.responseURI.is_empty(), "Empty URI")?;
                require(
                    c.feedbackIndex <= self.last_index(c.agentId, c.clientAddress),
                    "index out of bounds",
                )?;
                let feedback = (c.agentId, c.clientAddress, c.feedbackIndex);
                let key = (c.agentId, c.clientAddress, c.feedbackIndex, f.sender);
                if !self.response_counts.contains(&key) {
                    self.responders.push(feedback, f.sender);
                }
                self.response_counts.update(key, 0, |n| *n += 1);
                f.emit(
                    REPUTATION_REGISTRY,
                    R::ResponseAppended {
                        agentId: c.agentId,
                        clientAddress: c.clientAddress,
                        feedbackIndex: c.feedbackIndex,
                        responder: f.sender,
                        responseURI: c.responseURI,
                        responseHash: c.responseHash,
                    }
                    .encode_log_data(),
                );
                Vec::new()
            }
            Call::getLastIndex(c) => {
                R::getLastIndexCall::abi_encode_returns(&self.last_index(c.agentId, c.clientAddress))
            }
            Call::readFeedback(c) => {
                require(c.feedbackIndex > 0, "index must be > 0")?;
                require(
                    c.feedbackIndex <= self.last_index(c.agentId, c.clientAddress),
                    "index out of bounds",
                )?;
                let fb = self
                    .feedback
                    .get(&(c.agentId, c.clientAddress, c.feedbackIndex))
                    .expect("indexes up to the last are stored");
                R::readFeedbackCall::abi_encode_returns(&R::readFeedbackReturn {
                    value: fb.value,
                    valueDecimals: fb.decimals,
                    tag1: fb.tag1.clone(),
                    tag2: fb.tag2.clone(),
                    isRevoked: fb.revoked,
                })
            }
            Call::getSummary(c) => {
                if c.clientAddresses.is_empty() {
                    return Err(Revert::require("clientAddresses required"));
                }
                let summary = summarize(
                    self.feedback_of(c.agentId, &c.clientAddresses, &c.tag1, &c.tag2, false)
                        .map(|(_, _, fb)| (fb.value, fb.decimals)),
                );
                R::getSummaryCall::abi_encode_returns(&R::getSummaryReturn {
                    count: summary.count,
                    summaryValue: summary.value,
                    summaryValueDecimals: summary.decimals,
                })
            }
            Call::readAllFeedback(c) => {
                let clients: Vec<Address> = if c.clientAddresses.is_empty() {
                    self.clients.iter(&c.agentId).copied().collect()
                } else {
                    c.clientAddresses
                };
                let mut all = R::readAllFeedbackReturn {
                    clients: Vec::new(),
                    feedbackIndexes: Vec::new(),
                    values: Vec::new(),
                    valueDecimals: Vec::new(),
                    tag1s: Vec::new(),
                    tag2s: Vec::new(),
                    revokedStatuses: Vec::new(),
                };
                for (client, index, fb) in self.feedback_of(c.agentId, &clients, &c.tag1, &c.tag2, c.includeRevoked) {
                    all.clients.push(client);
                    all.feedbackIndexes.push(index);
                    all.values.push(fb.value);
                    all.valueDecimals.push(fb.decimals);
                    all.tag1s.push(fb.tag1.clone());
                    all.tag2s.push(fb.tag2.clone());
                    all.revokedStatuses.push(fb.revoked);
                }
                R::readAllFeedbackCall::abi_encode_returns(&all)
            }
            Call::getResponseCount(c) => {
                let count = self.response_count(c.agentId, c.clientAddress, c.feedbackIndex, &c.responders);
                R::getResponseCountCall::abi_encode_returns(&count)
            }
            Call::getClients(c) => {
                let clients: Vec<Address> = self.clients.iter(&c.agentId).copied().collect();
                R::getClientsCall::abi_encode_returns(&clients)
            }
            Call::getIdentityRegistry(_) => R::getIdentityRegistryCall::abi_encode_returns(&IDENTITY_REGISTRY),
            Call::getVersion(_) => R::getVersionCall::abi_encode_returns(&VERSION.to_owned()),
            Call::owner(_) => R::ownerCall::abi_encode_returns(&Address::ZERO),
        }
        .into())
    }

    /// How many feedbacks `client` gave `agent` (its last index).
    fn last_index(&self, agent: U256, client: Address) -> u64 {
        self.last_index.get(&(agent, client)).copied().unwrap_or(0)
    }

    /// The feedback of `clients` (in their order, repeats included) to `agent` that passes the
    /// tag filters, revoked ones only if `include_revoked`: (client, index, feedback).
    fn feedback_of<'a>(
        &'a self,
        agent: U256,
        clients: &'a [Address],
        tag1: &'a str,
        tag2: &'a str,
        include_revoked: bool,
    ) -> impl Iterator<Item = (Address, u64, &'a Feedback)> + 'a {
        clients.iter().flat_map(move |&client| {
            (1..=self.last_index(agent, client)).filter_map(move |index| {
                let fb = self.feedback.get(&(agent, client, index))?;
                let shown =
                    (include_revoked || !fb.revoked) && tag_matches(tag1, &fb.tag1) && tag_matches(tag2, &fb.tag2);
                shown.then_some((client, index, fb))
            })
        })
    }

    /// `getResponseCount`: responses to one feedback, every feedback of one client (index 0),
    /// or every feedback of every client (client zero; the index is then ignored), from the
    /// given responders (repeats counted again) or from all.
    fn response_count(&self, agent: U256, client: Address, index: u64, responders: &[Address]) -> u64 {
        let of_feedback = |client: Address, index: u64| -> u64 {
            let feedback = (agent, client, index);
            let counted = |r: &Address| {
                self.response_counts
                    .get(&(agent, client, index, *r))
                    .copied()
                    .unwrap_or(0)
            };
            if responders.is_empty() {
                self.responders.iter(&feedback).map(counted).sum()
            } else {
                responders.iter().map(counted).sum()
            }
        };
        if client.is_zero() {
            self.clients
                .iter(&agent)
                .flat_map(|&c| (1..=self.last_index(agent, c)).map(move |i| (c, i)))
                .map(|(c, i)| of_feedback(c, i))
                .sum()
        } else if index == 0 {
            (1..=self.last_index(agent, client))
                .map(|i| of_feedback(client, i))
                .sum()
        } else {
            of_feedback(client, index)
        }
    }
}
