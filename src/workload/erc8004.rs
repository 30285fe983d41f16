//! The `erc8004` workload: the ERC-8004 registries on HyperMesh consensus. The first
//! `consensus.validators` nodes run a replica whose state machine is the registries' chain
//! (`erc8004::chain::Chain`); every other node runs a registry client
//! (`erc8004::client::RegistryClient`) with a few wallets drawn from the seed, registering
//! agents, giving feedback, requesting and answering validations. The `[consensus]` table sets
//! the validators, the client interval and `client_stop`: when the clients stop submitting and
//! check the cluster (every replica's state digest, the receipt of every transaction they saw
//! included).
//!
//! Judged by the consensus checker (agreement, durability, halted replicas) and by the
//! registry's own figures ([`METRICS`]): replicas at one head hold the same state, no agent id
//! was acknowledged twice, every acknowledged transaction has its receipt. Byzantine validators
//! are not drawn for this workload (the parser refuses them).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use erc8004::chain::{Chain, ChainConfig, CHAIN_ID_DEFAULT};
use erc8004::client::{ClientConfig, RegistryClient};
use hypermesh::consensus::{Replica, ValidatorKey, MOUNT};
use hypermesh::testing;
use reports::Plot;
use runtime::host::{BareDatagrams, Host};
use runtime::{Actor, DetRng, Entropy};
use simulator::ActorFactory;

use super::consensus::{observed, quiet_from, up_at_end, validators_of, Consensus, Validators};
use super::{FinishedRun, Workload};
use crate::analysis::Analysis;
use crate::build::start_times;
use crate::scenario::Scenario;

/// Wallets each client holds.
const WALLETS_PER_CLIENT: u64 = 6;
/// How long a client waits for an answer before sending again.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// Sends of one transaction before its wallet is given up.
const SENDS_MAX: u32 = 5;
/// From the clients' stop to their check of the cluster.
const CHECK_AFTER_STOP: Duration = Duration::from_secs(2);
/// What a check takes (its rounds of asking again), at least.
const CHECK_TIME: Duration = Duration::from_secs(2);

/// The workload's own figures, beside the consensus checker's.
pub const METRICS: &[(&str, &str)] = &[
    ("registry_submitted", "registry transactions the clients submitted"),
    (
        "registry_included",
        "registry transactions acknowledged as included by f + 1 replicas (succeeded or reverted)",
    ),
    (
        "registry_reverted",
        "included transactions whose call reverted (status 0)",
    ),
    (
        "registry_refused",
        "transactions refused by the chain (a used nonce) or not admitted",
    ),
    (
        "registry_unknown",
        "transactions without an answer after every send (their wallet is retired)",
    ),
    (
        "agents_registered",
        "agent ids acknowledged to the clients that registered them",
    ),
    (
        "agent_id_collisions",
        "agent ids acknowledged more than once: must be 0 (ids are assigned by the state machine)",
    ),
    (
        "state_replicas_checked",
        "replicas that answered their head and state digest at the clients' check",
    ),
    (
        "state_replicas_at_head",
        "of them, replicas at the highest head answered (the others lag or diverge)",
    ),
    (
        "state_divergences",
        "replicas whose digest at the highest head differs from the most common one there, or that \
         answered two clients differently: must be 0",
    ),
    (
        "receipts_checked",
        "receipts of included transactions the clients asked a replica for at their check, answered",
    ),
    (
        "receipts_missing",
        "of those, receipts the replica did not hold: must be 0 (an acknowledged transaction is in the chain)",
    ),
    (
        "receipts_unanswered",
        "receipts asked for and never answered, after asking each of several replicas in turn: must be 0",
    ),
];

/// The workload (see the module documentation).
pub struct Erc8004;

impl Workload for Erc8004 {
    fn kind(&self) -> &'static str {
        "erc8004"
    }

    fn metrics(&self) -> Vec<(&'static str, &'static str)> {
        testing::consensus::METRICS.iter().chain(METRICS).copied().collect()
    }

    fn factory(&self, scenario: &Scenario, root: &DetRng) -> Box<dyn ActorFactory> {
        let plan = Consensus::plan(scenario);
        let validators = plan.validators as usize;
        let Validators {
            peers,
            seeds,
            set,
            config,
        } = validators_of(scenario, root);
        let starts = start_times(scenario, root);
        let f = (validators - 1) / 3;
        // Wallet keys from the seed: another seed, other wallets.
        let wallet_seed = root.fork(crate::build::stream::WALLETS).next_u64();
        let stop = plan
            .client_stop
            .unwrap_or(scenario.duration.saturating_sub(CHECK_AFTER_STOP + CHECK_TIME));
        let clients: Vec<ClientConfig> = (validators..scenario.nodes.len())
            .map(|i| ClientConfig {
                replicas: peers.clone(),
                process: i as u64,
                seed: wallet_seed,
                wallets: WALLETS_PER_CLIENT,
                chain_id: CHAIN_ID_DEFAULT,
                interval: plan.client_interval,
                answer_timeout: ANSWER_TIMEOUT,
                sends_max: SENDS_MAX,
                answers_required: f + 1,
                // `client_stop` is from the start of the run; a client counts from its own start.
                // The check comes CHECK_AFTER_STOP later, for the last transactions to commit.
                stop_after: stop.saturating_sub(starts[i]),
                verify_after: (stop + CHECK_AFTER_STOP).saturating_sub(starts[i]),
            })
            .collect();
        hypermesh::consensus::share_verifications(true);
        Box::new(move |node: u32| -> Box<dyn Actor> {
            let i = node as usize;
            if i >= validators {
                let client = RegistryClient::new(clients[i - validators].clone());
                return Box::new(Host::new(BareDatagrams).mount(MOUNT, client));
            }
            let replica = Replica::new(
                config.clone(),
                set.clone(),
                peers.clone(),
                i as u16,
                ValidatorKey::from_seed(&seeds[i]),
                Chain::new(ChainConfig::default()),
            );
            Box::new(Host::new(BareDatagrams).mount(MOUNT, replica))
        })
    }

    fn analyse(&self, run: &FinishedRun<'_>) -> Analysis {
        let validators = Consensus::plan(run.scenario).validators;
        let end = Duration::from_nanos(run.end.as_nanos());
        let judged = testing::consensus::Run {
            validators,
            byzantine: BTreeSet::new(),
            quiet_from: quiet_from(run.derived, run.applied, end),
            up_at_end: up_at_end(run.derived, run.applied, validators, end),
        };
        let mut analysis = Analysis::from(testing::consensus::analyse(run.probes.iter().map(observed), &judged));
        let clients = |name: &'static str| {
            run.probes
                .iter()
                .filter(move |r| r.node >= validators && r.probe.protocol == MOUNT.name && r.probe.name == name)
        };
        let count = |name: &'static str| clients(name).count() as f64;
        let mut agents: BTreeMap<u64, u64> = BTreeMap::new();
        for r in clients("erc_agent") {
            *agents.entry(r.probe.subject).or_default() += 1;
        }
        // Each replica's answers (head, digest), from every client that asked it.
        let mut heads: BTreeMap<u64, BTreeSet<i64>> = BTreeMap::new();
        let mut digests: BTreeMap<u64, BTreeSet<i64>> = BTreeMap::new();
        for r in clients("erc_head") {
            heads.entry(r.probe.subject).or_default().insert(r.probe.value);
        }
        for r in clients("erc_digest") {
            digests.entry(r.probe.subject).or_default().insert(r.probe.value);
        }
        let state = StateCheck::judge(&heads, &digests);
        let asked: i64 = clients("erc_receipts_asked").map(|r| r.probe.value).sum();
        let reverted = clients("erc_included").filter(|r| r.probe.value == 0).count() as f64;
        for (name, value) in [
            ("registry_submitted", count("erc_submitted")),
            ("registry_included", count("erc_included")),
            ("registry_reverted", reverted),
            ("registry_refused", count("erc_refused")),
            ("registry_unknown", count("erc_unknown")),
            ("agents_registered", agents.len() as f64),
            (
                "agent_id_collisions",
                agents.values().filter(|n| **n > 1).count() as f64,
            ),
            ("state_replicas_checked", heads.len() as f64),
            ("state_replicas_at_head", state.at_head as f64),
            ("state_divergences", state.divergences as f64),
            ("receipts_checked", count("erc_receipt")),
            ("receipts_unanswered", (asked as f64 - count("erc_receipt")).max(0.0)),
            (
                "receipts_missing",
                clients("erc_receipt").filter(|r| r.probe.value == 0).count() as f64,
            ),
        ] {
            analysis.metrics.insert(name.to_string(), Some(value));
        }
        analysis
    }

    fn plots(&self, _run: &FinishedRun<'_>) -> Vec<Plot> {
        Vec::new()
    }
}

/// What the clients' check found of the replicas' states: which replicas stood at the highest head
/// any replica answered, and how many of the replicas there disagree with the most common digest.
#[derive(Debug, PartialEq, Eq)]
struct StateCheck {
    /// Replicas that answered one head, the highest answered.
    at_head: u64,
    /// Replicas at that head whose digest is not the most common one, plus replicas that answered
    /// different digests to different clients (a replica's state at one head is one state).
    divergences: u64,
}

impl StateCheck {
    /// Judges each replica's answers: `heads` and `digests` hold, per replica, every value any
    /// client was told.
    fn judge(heads: &BTreeMap<u64, BTreeSet<i64>>, digests: &BTreeMap<u64, BTreeSet<i64>>) -> StateCheck {
        let top = heads.values().flatten().max().copied();
        let at_head: Vec<u64> = heads
            .iter()
            .filter(|(_, h)| h.len() == 1 && h.first().copied() == top)
            .map(|(replica, _)| *replica)
            .collect();
        let mut tally: BTreeMap<i64, u64> = BTreeMap::new();
        for replica in &at_head {
            if let Some(d) = digests.get(replica).filter(|d| d.len() == 1) {
                *tally.entry(*d.first().expect("one")).or_default() += 1;
            }
        }
        let common = tally.values().max().copied().unwrap_or(0);
        let split = digests.values().filter(|d| d.len() > 1).count() as u64;
        StateCheck {
            at_head: at_head.len() as u64,
            divergences: at_head.len() as u64 - common + split,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per replica, the values the clients were told.
    fn told(values: &[(u64, &[i64])]) -> BTreeMap<u64, BTreeSet<i64>> {
        values.iter().map(|(r, v)| (*r, v.iter().copied().collect())).collect()
    }

    #[test]
    fn replicas_at_one_head_with_one_digest_agree() {
        let heads = told(&[(0, &[9]), (1, &[9]), (2, &[9])]);
        let digests = told(&[(0, &[7]), (1, &[7]), (2, &[7])]);
        assert_eq!(
            StateCheck::judge(&heads, &digests),
            StateCheck {
                at_head: 3,
                divergences: 0
            }
        );
    }

    #[test]
    fn a_replica_with_another_state_at_the_head_is_a_divergence() {
        let heads = told(&[(0, &[9]), (1, &[9]), (2, &[9])]);
        let digests = told(&[(0, &[7]), (1, &[5]), (2, &[7])]);
        assert_eq!(
            StateCheck::judge(&heads, &digests),
            StateCheck {
                at_head: 3,
                divergences: 1
            }
        );
    }

    #[test]
    fn a_replica_telling_two_clients_two_states_is_a_divergence() {
        let heads = told(&[(0, &[9]), (1, &[9])]);
        let digests = told(&[(0, &[7]), (1, &[7, 5])]);
        // Replica 1 is not counted in the tally (two digests) and counted as split.
        assert_eq!(
            StateCheck::judge(&heads, &digests),
            StateCheck {
                at_head: 2,
                divergences: 2
            }
        );
    }

    #[test]
    fn a_replica_behind_the_head_is_not_at_it_and_not_judged_divergent() {
        let heads = told(&[(0, &[9]), (1, &[8]), (2, &[9])]);
        let digests = told(&[(0, &[7]), (1, &[3]), (2, &[7])]);
        assert_eq!(
            StateCheck::judge(&heads, &digests),
            StateCheck {
                at_head: 2,
                divergences: 0
            }
        );
    }
}
