//! The `consensus` workload: HotStuff-2 replicas (`hypermesh::consensus::Replica`, applying
//! committed blocks to the list-append machine) on the first `consensus.validators` nodes, and a
//! load client (`hypermesh::consensus::client::LoadClient`) on each of the others (but a node given
//! to a validator's twin, `twins.rs`), all over bare datagrams. Byzantine validators, listed or
//! drawn by swarm mode, come from `crate::build::adversaries`. Its figures come from
//! `hypermesh::testing::consensus`: agreement, durability across restarts, the clients' history
//! checked for strict serializability, and liveness after the faults stop ([`quiet_from`]).
//!
//! Validator keys are drawn from the seed ([`crate::build::stream::CONSENSUS`]), so a run is a
//! function of (scenario, seed). Clients are never crashed, restarted or paused (a client keeps
//! no state, and one restarted would reuse transaction ids): the parser refuses a fault that
//! names one, and random draws keep to the validators (`Scenario::faultable_nodes`).

mod phases;
mod plots;
mod twins;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use hypermesh::consensus::client::{LoadClient, LoadConfig};
use hypermesh::consensus::{Replica, Validator, ValidatorKey, ValidatorSet, MOUNT};
use hypermesh::membership::NodeId;
use hypermesh::replication::kv::ListAppend;
use hypermesh::testing::adversary::{Adversary, Behaviour};
use hypermesh::testing::{self, Observed};
use reports::Plot;
use runtime::host::{BareDatagrams, Host};
use runtime::{Actor, DetRng, Entropy};
use simulator::{ActorFactory, ProbeRecord};

use super::{FinishedRun, Workload};
use crate::analysis::Analysis;
use crate::build::{node_addrs, start_times, stream};
use crate::scenario::{ConsensusPlan, Scenario};

pub use phases::{quiet_from, up_at_end};

/// The workload's own figures, beside the checker's (`hypermesh::testing::consensus::METRICS`).
pub const METRICS: &[(&str, &str)] = &[
    (
        "quiet_new_heights",
        "heights first committed by any honest replica after the faults stopped: unlike quiet_commits, \
         a restarted replica replaying its log or catching up on heights others had already committed adds none, \
         so above 0 means the cluster itself moved on",
    ),
    (
        "honest_validator_seconds",
        "honest validators times the run's simulated seconds: the time over which honest_marked could have \
         happened (a sweep sums both into a false-positive rate per node-second)",
    ),
    (
        "committed_txns",
        "transactions in the blocks committed (each height counted once)",
    ),
    (
        "messages_per_txn",
        "datagrams every node sent (consensus, catch-up, client submissions and answers) per committed transaction",
    ),
    (
        "bytes_per_txn",
        "payload bytes of those datagrams per committed transaction",
    ),
    (
        "verifications_per_txn",
        "Ed25519 signature verifications every node asked for per committed transaction (each counted, \
         though the simulator shares results between replicas on one thread: what real nodes would each do)",
    ),
    (
        "handler_us_per_txn",
        "wall microseconds the validators' handlers took, summed over validators, per committed transaction: \
         the CPU a commit costs the cluster (varies with the machine, so never asserted)",
    ),
];

/// Sides a twin's network takes in turn ([`twins::Twins`]).
const TWIN_SIDES: usize = 64;
/// The shortest time a twin's side lasts; a seed draws up to [`TWIN_PERIOD_SPREAD`] times it.
const TWIN_PERIOD_MIN: Duration = Duration::from_millis(100);
/// The longest period over the shortest.
const TWIN_PERIOD_SPREAD: f64 = 20.0;

/// Submissions of one client over which a window of keys lives (see `LoadConfig::key_lifetime`).
const KEY_WINDOW_SUBMISSIONS: u32 = 100;

/// Replicas on the validators, load clients on the rest; see the module documentation.
pub struct Consensus;

impl Consensus {
    /// The scenario's `[consensus]` settings; the parser gives every scenario of this kind one.
    pub(crate) fn plan(scenario: &Scenario) -> &ConsensusPlan {
        scenario
            .consensus
            .as_ref()
            .expect("a consensus scenario has its [consensus] settings")
    }
}

impl Workload for Consensus {
    fn kind(&self) -> &'static str {
        "consensus"
    }

    fn metrics(&self) -> Vec<(&'static str, &'static str)> {
        testing::consensus::METRICS.iter().chain(METRICS).copied().collect()
    }

    fn factory(&self, scenario: &Scenario, root: &DetRng) -> Box<dyn ActorFactory> {
        let plan = Self::plan(scenario);
        let validators = plan.validators as usize;
        let Validators {
            peers,
            seeds,
            set,
            config,
        } = validators_of(scenario, root);
        let starts = start_times(scenario, root);
        // With adversaries, clients sign their transactions (the machines apply only those) and
        // believe an outcome once f + 1 replicas gave it: a Byzantine replica could otherwise
        // alter a forwarded transaction or lie in its answer.
        let byzantine = crate::build::adversaries(scenario, root);
        let guarded = !byzantine.is_empty();
        let f = (validators - 1) / 3;
        let client_seed = |i: usize| -> [u8; 32] {
            let mut seed = [0xc1; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            seed
        };
        let client_keys: std::collections::BTreeMap<u64, hypermesh::consensus::PublicKey> = (validators
            ..scenario.nodes.len())
            .map(|i| (i as u64, ValidatorKey::from_seed(&client_seed(i)).public_key()))
            .collect();
        // Every replica of the run verifies the same certificates on this thread: once is enough
        // (results and traces are unchanged; see hypermesh::consensus::share_verifications).
        hypermesh::consensus::share_verifications(true);
        // The run's verifications are counted from here (the thread runs one simulation at a
        // time; `analyse` takes the count on the same thread).
        hypermesh::consensus::take_verifications();
        let clients: Vec<LoadConfig> = (validators..scenario.nodes.len())
            .map(|i| {
                let mut c = LoadConfig::new(peers.clone(), i as u64);
                c.interval = plan.client_interval;
                // A window of keys lives for a client's KEY_WINDOW_SUBMISSIONS submissions (2 s at
                // the default 20 ms), so lists, and the reads that return them whole, stay as
                // short under heavy load as under light: otherwise answers, not consensus, would
                // fill the bytes and memory a heavy run measures.
                c.key_lifetime = plan.client_interval * KEY_WINDOW_SUBMISSIONS;
                c.linearizable_reads = plan.linearizable_reads;
                if guarded {
                    c.signing_seed = Some(client_seed(i));
                    c.answers_required = f + 1;
                }
                // `client_stop` is from the start of the run; a client counts from its own start.
                c.stop_after = plan.client_stop.map(|stop| stop.saturating_sub(starts[i]));
                c
            })
            .collect();
        // A twin runs validator `original`'s replica, with its key, on a node that would run a
        // client.
        let twins: Vec<(usize, usize)> = byzantine
            .iter()
            .filter_map(|(original, b)| match b {
                Behaviour::Twins(twin) => Some((*twin as usize, *original as usize)),
                _ => None,
            })
            .collect();
        Box::new(move |node: u32| -> Box<dyn Actor> {
            let twin_of = twins.iter().find(|(t, _)| *t == node as usize).map(|(_, o)| *o);
            let (i, twin) = match twin_of {
                Some(original) => (original, true),
                None => (node as usize, false),
            };
            if i >= validators {
                let client = LoadClient::new(clients[i - validators].clone());
                return Box::new(Host::new(BareDatagrams).mount(MOUNT, client));
            }
            let machine = if guarded {
                ListAppend::with_clients(client_keys.clone())
            } else {
                ListAppend::default()
            };
            let mut replica = Replica::new(
                config.clone(),
                set.clone(),
                peers.clone(),
                i as u16,
                ValidatorKey::from_seed(&seeds[i]),
                machine,
            );
            let behaviour = byzantine
                .iter()
                .find(|(n, b)| *n as usize == i && !matches!(b, Behaviour::Twins(_)) && !twin);
            if let Some((_, behaviour)) = behaviour {
                let adversary = Adversary::new(
                    behaviour.clone(),
                    set.clone(),
                    ValidatorKey::from_seed(&seeds[i]),
                    i as u16,
                    peers.clone(),
                );
                replica = replica.with_tamper(Box::new(adversary));
            }
            Box::new(Host::new(BareDatagrams).mount(MOUNT, replica))
        })
    }

    fn analyse(&self, run: &FinishedRun<'_>) -> Analysis {
        let validators = Self::plan(run.scenario).validators;
        let end = Duration::from_nanos(run.end.as_nanos());
        let quiet = quiet_from(run.derived, run.applied, end);
        let judged = testing::consensus::Run {
            validators,
            byzantine: run
                .derived
                .byzantine
                .iter()
                .map(|entry| {
                    crate::scenario::parse_byzantine(entry)
                        .expect("written by byzantine_text")
                        .0
                })
                .collect(),
            quiet_from: quiet,
            up_at_end: up_at_end(run.derived, run.applied, validators, end),
        };
        let mut analysis = Analysis::from(testing::consensus::analyse(run.probes.iter().map(observed), &judged));
        analysis.metrics.insert(
            METRICS[0].0.to_string(),
            quiet.map(|q| new_heights_after(run.probes, validators, q) as f64),
        );
        let honest = validators as usize - judged.byzantine.len();
        analysis
            .metrics
            .insert(METRICS[1].0.to_string(), Some(honest as f64 * end.as_secs_f64()));
        let txns = committed_txns(run.probes, validators);
        let per_txn = |total: f64| (txns > 0).then(|| total / txns as f64);
        let handler = run.handler_time.map(|t| {
            t.iter()
                .take(validators as usize)
                .map(Duration::as_secs_f64)
                .sum::<f64>()
        });
        for (name, value) in [
            ("committed_txns", Some(txns as f64)),
            ("messages_per_txn", per_txn(run.stats.datagrams_sent as f64)),
            ("bytes_per_txn", per_txn(run.stats.bytes_sent as f64)),
            (
                "verifications_per_txn",
                per_txn(hypermesh::consensus::take_verifications() as f64),
            ),
            ("handler_us_per_txn", handler.and_then(|h| per_txn(h * 1e6))),
        ] {
            analysis.metrics.insert(name.to_string(), value);
        }
        analysis
    }

    fn times_handlers(&self) -> bool {
        true
    }

    fn interceptor(&self, scenario: &Scenario, root: &DetRng) -> Option<Box<dyn simulator::Interceptor>> {
        let validators = Self::plan(scenario).validators;
        let (original, twin) =
            crate::build::adversaries(scenario, root)
                .into_iter()
                .find_map(|(original, b)| match b {
                    Behaviour::Twins(twin) => Some((original, twin)),
                    _ => None,
                })?;
        // The twin's side, for each of TWIN_SIDES periods of one length: between one and all but
        // one of the other validators, drawn.
        let mut rng = root.fork(stream::TWINS);
        let others: Vec<u32> = (0..validators).filter(|v| *v != original).collect();
        let period = TWIN_PERIOD_MIN.mul_f64(1.0 + rng.unit_f64() * (TWIN_PERIOD_SPREAD - 1.0));
        let sides = (0..TWIN_SIDES)
            .map(|_| {
                let mut shuffled = others.clone();
                for i in (1..shuffled.len()).rev() {
                    shuffled.swap(i, rng.below(i as u64 + 1) as usize);
                }
                let size = 1 + rng.below(shuffled.len().saturating_sub(1).max(1) as u64) as usize;
                shuffled.into_iter().take(size).collect()
            })
            .collect();
        Some(Box::new(twins::Twins {
            original: (
                original,
                node_addrs(original, scenario.nodes[original as usize].family)[0],
            ),
            twin,
            sides,
            period,
        }))
    }

    fn plots(&self, run: &FinishedRun<'_>) -> Vec<Plot> {
        plots::plots(run, Self::plan(run.scenario).validators)
    }
}

/// A simulator probe as the checker reads it.
pub(crate) fn observed(r: &ProbeRecord) -> Observed<'_> {
    Observed {
        at: Duration::from_nanos(r.at.as_nanos()),
        node: r.node,
        probe: &r.probe,
    }
}

/// Heights whose first commit by any validator (nodes `0..validators`) came at or after `from`.
fn new_heights_after(probes: &[ProbeRecord], validators: u32, from: Duration) -> u64 {
    let mut seen = BTreeSet::new();
    probes
        .iter()
        .filter(|r| r.probe.protocol == MOUNT.name && r.probe.name == "commit" && r.node < validators)
        .filter(|r| seen.insert(r.probe.subject))
        .filter(|r| Duration::from_nanos(r.at.as_nanos()) >= from)
        .count() as u64
}

/// Transactions in committed blocks: each height's count as its first committer reported it.
fn committed_txns(probes: &[ProbeRecord], validators: u32) -> u64 {
    let mut seen = BTreeSet::new();
    probes
        .iter()
        .filter(|r| r.probe.protocol == MOUNT.name && r.probe.name == "commit_txs" && r.node < validators)
        .filter(|r| seen.insert(r.probe.subject))
        .map(|r| r.probe.value.max(0) as u64)
        .sum()
}

/// What the validators of a scenario with a `[consensus]` table share, drawn from the seed.
pub(crate) struct Validators {
    /// Their addresses, in index order.
    pub peers: Vec<SocketAddr>,
    /// Their key seeds.
    pub seeds: Vec<[u8; 32]>,
    /// The set of epoch 1.
    pub set: ValidatorSet,
    /// The replicas' configuration.
    pub config: hypermesh::consensus::ConsensusConfig,
}

/// The validators of `scenario`: addresses, keys from `root`, the set, the configuration.
pub(crate) fn validators_of(scenario: &Scenario, root: &DetRng) -> Validators {
    let validators = Consensus::plan(scenario).validators as usize;
    let peers = (0..validators)
        .map(|i| node_addrs(i as u32, scenario.nodes[i].family)[0])
        .collect();
    let seeds = key_seeds(validators, root);
    let set = validator_set(&seeds);
    let mut config = Consensus::plan(scenario).config();
    // The simulator delivers a node's messages only from its own addresses (adversaries
    // change what they send, never where from): an address names its sender.
    config.detection.source_addresses_authentic = true;
    Validators {
        peers,
        seeds,
        set,
        config,
    }
}

/// Every validator's Ed25519 key seed, drawn from the workload's own stream of the seed.
fn key_seeds(validators: usize, root: &DetRng) -> Vec<[u8; 32]> {
    let mut rng = root.fork(stream::CONSENSUS);
    (0..validators)
        .map(|_| {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            seed
        })
        .collect()
}

/// The validator set of epoch 1: validator `i` is node `i`, named as its certificate would name
/// it (`node-{i}.mesh`), with the key of `seeds[i]`.
fn validator_set(seeds: &[[u8; 32]]) -> ValidatorSet {
    let validators = seeds
        .iter()
        .enumerate()
        .map(|(i, seed)| Validator {
            node: NodeId(i as u64),
            name: super::stoq::node_name(i),
            public_key: ValidatorKey::from_seed(seed).public_key(),
        })
        .collect();
    ValidatorSet::new(1, validators)
        .expect("distinct nodes, names and keys, at most VALIDATORS_MAX (the parser checked)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::run_scenario;
    use crate::scenario::parse;

    /// 4 validators and 2 clients that stop submitting at 4 s; node 1 is down from 1 s to 2 s.
    const SMALL: &str = r#"
duration = "6s"
[nodes]
count = 6
[network]
latency = "2ms"
[workload]
kind = "consensus"
[consensus]
validators = 4
client_stop = "4s"
[[fault]]
at = "1s"
kind = "crash"
nodes = [1]
restart_after = "1s"
"#;

    #[test]
    fn a_run_commits_and_is_a_function_of_scenario_and_seed() {
        let scenario = parse("small.toml", SMALL).unwrap();
        let run = |seed| run_scenario(&scenario, seed, None, |_| {}, || Duration::ZERO).0;
        let (a, again, other) = (run(1), run(1), run(2));
        assert_eq!(a.trace_hash, again.trace_hash);
        assert_ne!(a.trace_hash, other.trace_hash, "keys and draws come from the seed");
        let metric = |name: &str| a.metrics[name].unwrap_or_else(|| panic!("{name} unmeasured"));
        for safety in [
            "agreement_violations",
            "durability_violations",
            "linearizability_anomalies",
        ] {
            assert_eq!(metric(safety), 0.0, "{safety}: {:?}", a.evidence);
        }
        assert!(metric("quiet_new_heights") > 10.0, "{:?}", a.metrics);
        // Two clients at 50 a second each, for the 4 s until client_stop.
        let submitted = metric("txns_submitted");
        assert!((300.0..=400.0).contains(&submitted), "{submitted} transactions");
    }

    /// Seed 8 of `byzantine-equivocation`: one honest replica missed a report of the forger
    /// (lost on a 1 % link), so it never reached three reporters and never marked it, though it
    /// committed the forger's removal, whose proof carries the three reports. A replica now
    /// marks the accused of every removal it commits (seeds 8, 37, 47, 63, 128, 144, 163 and 180
    /// of 1-200 failed this way).
    #[test]
    fn a_replica_that_missed_reports_marks_the_accused_of_a_removal_it_commits() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/byzantine-equivocation.toml");
        let text = std::fs::read_to_string(path).expect("the shipped scenario");
        let scenario = parse(path, &text).unwrap();
        let run = run_scenario(&scenario, 8, None, |_| {}, || Duration::ZERO).0;
        let metric = |name: &str| run.metrics[name].unwrap_or_else(|| panic!("{name} unmeasured"));
        assert_eq!(metric("byzantine_isolated"), 2.0, "{:?}", run.evidence);
        assert_eq!(metric("byzantine_detected"), 2.0, "{:?}", run.metrics);
        assert_eq!(metric("honest_marked"), 0.0);
    }

    #[test]
    fn keys_differ_by_seed_and_validator() {
        let root = |seed| DetRng::seed_from_u64(seed);
        let (a, b) = (key_seeds(4, &root(1)), key_seeds(4, &root(2)));
        assert_eq!(a, key_seeds(4, &root(1)));
        assert_ne!(a, b);
        assert_eq!(validator_set(&a).len(), 4);
    }
}
