//! HotStuff-2 replicas in the simulator: a cluster commits, agrees, survives crashes and catches
//! up.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use hypermesh::consensus::client::{LoadClient, LoadConfig};
use hypermesh::consensus::{ConsensusConfig, Replica, Validator, ValidatorKey, ValidatorSet, MOUNT};
use hypermesh::membership::NodeId;
use hypermesh::replication::kv::ListAppend;
use hypermesh::testing::adversary::{Adversary, Behaviour};
use hypermesh::testing::consensus::{analyse, Run};
use hypermesh::testing::{Figures, Observed};
use runtime::host::{BareDatagrams, Host};
use runtime::Actor;
use simulator::{FaultAction, NetworkModel, NodeIndex, NodeSet, NodeSpec, ProbeRecord, SimTime, Simulation};

fn addr(i: NodeIndex) -> SocketAddr {
    format!("[fd00::2:{:x}]:7000", i + 1).parse().expect("address")
}

fn key(i: usize) -> ValidatorKey {
    let mut seed = [0u8; 32];
    seed[0] = i as u8;
    seed[1] = 0xc0;
    ValidatorKey::from_seed(&seed)
}

fn client_seed(i: usize) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[0] = i as u8;
    seed[1] = 0xc1;
    seed
}

fn set(n: usize) -> ValidatorSet {
    let validators = (0..n)
        .map(|i| Validator {
            node: NodeId(i as u64 + 1),
            name: format!("node-{i}"),
            public_key: key(i).public_key(),
        })
        .collect();
    ValidatorSet::new(1, validators).expect("a valid set")
}

/// `n` validators (nodes `0..n`) and `clients` load clients (nodes `n..`).
fn cluster(seed: u64, n: usize, clients: usize, network: NetworkModel) -> Simulation {
    cluster_with(seed, n, clients, network, Vec::new())
}

/// The same, with validator `byzantine.0` behaving as `byzantine.1`.
fn cluster_with(
    seed: u64,
    n: usize,
    clients: usize,
    network: NetworkModel,
    byzantine: Vec<(usize, Behaviour)>,
) -> Simulation {
    cluster_paced(seed, n, clients, network, byzantine, Duration::from_millis(20))
}

/// The same, with clients submitting every `interval`.
fn cluster_paced(
    seed: u64,
    n: usize,
    clients: usize,
    network: NetworkModel,
    byzantine: Vec<(usize, Behaviour)>,
    interval: Duration,
) -> Simulation {
    cluster_configured(
        seed,
        n,
        clients,
        network,
        byzantine,
        interval,
        ConsensusConfig::default(),
    )
}

/// The same, every replica with `config`.
fn cluster_configured(
    seed: u64,
    n: usize,
    clients: usize,
    network: NetworkModel,
    byzantine: Vec<(usize, Behaviour)>,
    interval: Duration,
    config: ConsensusConfig,
) -> Simulation {
    let config_of = Box::new(move |_: usize| config.clone());
    cluster_configured_each(seed, n, clients, network, byzantine, interval, config_of)
}

/// The same, validator `i` with `config_of(i)`.
fn cluster_configured_each(
    seed: u64,
    n: usize,
    clients: usize,
    network: NetworkModel,
    byzantine: Vec<(usize, Behaviour)>,
    interval: Duration,
    config_of: Box<dyn Fn(usize) -> ConsensusConfig>,
) -> Simulation {
    let set = set(n);
    let peers: Vec<SocketAddr> = (0..n as NodeIndex).map(addr).collect();
    // Clients sign their transactions; the machines know their keys.
    let client_keys: BTreeMap<u64, _> = (n..n + clients)
        .map(|c| (c as u64, ValidatorKey::from_seed(&client_seed(c)).public_key()))
        .collect();
    let f = (n - 1) / 3;
    let factory = move |i: NodeIndex| -> Box<dyn Actor> {
        let i = i as usize;
        if i < n {
            let mut replica = Replica::new(
                config_of(i),
                set.clone(),
                peers.clone(),
                i as u16,
                key(i),
                ListAppend::with_clients(client_keys.clone()),
            );
            if let Some((_, behaviour)) = byzantine.iter().find(|(b, _)| *b == i) {
                {
                    let adversary = Adversary::new(behaviour.clone(), set.clone(), key(i), i as u16, peers.clone());
                    replica = replica.with_tamper(Box::new(adversary));
                }
            }
            Box::new(Host::new(BareDatagrams).mount(MOUNT, replica))
        } else {
            let mut config = LoadConfig::new(peers.clone(), i as u64);
            config.interval = interval;
            config.signing_seed = Some(client_seed(i));
            config.answers_required = f + 1;
            Box::new(Host::new(BareDatagrams).mount(MOUNT, LoadClient::new(config)))
        }
    };
    let mut sim = Simulation::new(seed, network, Box::new(factory));
    for i in 0..(n + clients) as NodeIndex {
        sim.add_node(NodeSpec {
            addrs: vec![addr(i)],
            ..NodeSpec::default()
        });
    }
    sim
}

/// Validator `node` crashes at `down` (milliseconds) and restarts from its files at `back`.
fn down_between(sim: &mut Simulation, node: NodeIndex, down: u64, back: u64) {
    let node = || NodeSet::from_indices([node]);
    sim.schedule(SimTime::from_millis(down), FaultAction::Crash(node()));
    sim.schedule(SimTime::from_millis(back), FaultAction::Restart(node()));
}

fn named<'a>(probes: &'a [ProbeRecord], name: &'a str) -> impl Iterator<Item = &'a ProbeRecord> + 'a {
    probes.iter().filter(move |p| p.probe.name == name)
}

/// The checker's figures of a run of `validators` validators that ended at `end`, failing on
/// any safety violation (with its evidence); returns each replica's highest committed height.
fn judge(sim: &Simulation, validators: u32) -> (Figures, BTreeMap<NodeIndex, u64>) {
    judge_with(sim, validators, BTreeSet::new())
}

fn judge_with(sim: &Simulation, validators: u32, byzantine: BTreeSet<u32>) -> (Figures, BTreeMap<NodeIndex, u64>) {
    let probes = sim.probes();
    let run = Run {
        validators,
        byzantine,
        quiet_from: None,
        up_at_end: (0..validators).filter(|n| sim.is_up(*n)).collect(),
    };
    let figures = analyse(
        probes.iter().map(|r| Observed {
            at: Duration::from_nanos(r.at.as_nanos()),
            node: r.node,
            probe: &r.probe,
        }),
        &run,
    );
    for metric in [
        "agreement_violations",
        "durability_violations",
        "linearizability_anomalies",
        "halted_replicas",
    ] {
        assert_eq!(figures.get(metric), Some(0.0), "{metric}: {:#?}", figures.evidence);
    }
    let mut tops = BTreeMap::new();
    for p in named(probes, "commit") {
        let top = tops.entry(p.node).or_default();
        *top = p.probe.subject.max(*top);
    }
    (figures, tops)
}

#[test]
fn four_validators_commit_client_transactions_and_agree() {
    let mut sim = cluster(1, 4, 2, NetworkModel::default());
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    let (figures, tops) = judge(&sim, 4);
    assert_eq!(tops.len(), 4, "every replica committed: {tops:?}");
    assert_eq!(figures.get("honest_marked"), Some(0.0));
    assert_eq!(
        figures.get("reports"),
        Some(0.0),
        "nothing suspicious on a clean network"
    );
    assert!(tops.values().all(|h| *h > 20), "{tops:?}");
    let ok = figures.get("txns_ok").unwrap();
    let submitted = figures.get("txns_submitted").unwrap();
    assert!(ok >= submitted * 0.9, "{ok} of {submitted} transactions answered");
}

#[test]
fn a_crashed_leader_is_passed_over_and_a_restarted_replica_catches_up() {
    let mut sim = cluster(2, 4, 1, NetworkModel::default());
    down_between(&mut sim, 1, 3_000, 9_000);
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    let (_, tops) = judge(&sim, 4);
    let probes = sim.probes();
    let highest = *tops.values().max().unwrap();
    assert!(tops[&1] + 5 >= highest, "the restarted replica caught up: {tops:?}");
    let during: Vec<_> = named(probes, "commit")
        .filter(|p| p.node == 0 && p.at > SimTime::from_millis(4_000) && p.at < SimTime::from_millis(9_000))
        .collect();
    // Its views time out until the others suspect it, then are skipped (see
    // `a_crashed_leader_is_suspected_skipped_at_once_and_trusted_again_once_back`).
    assert!(
        during.len() >= 4,
        "commits continued while a validator was down: {}",
        during.len()
    );
    assert!(named(probes, "timeout").count() > 0, "its views timed out");
}

/// A crashed validator is suspected by the others at the first of its views that ends without
/// its proposal; from then on they give up on its views as soon as they enter them and send
/// their votes past it, so the cluster commits many times faster than by waiting out two view
/// timeouts per rotation. Once it is back, its timeout of a view skipped for it clears the
/// suspicion, and it leads again, under load and on an idle cluster.
#[test]
fn a_crashed_leader_is_suspected_skipped_at_once_and_trusted_again_once_back() {
    let (down_ms, back_ms) = (3_000, 9_000);
    let (down, back) = (SimTime::from_millis(down_ms), SimTime::from_millis(back_ms));
    let run = |skip_suspected_leaders: bool, client_interval: Duration| {
        let config = ConsensusConfig {
            skip_suspected_leaders,
            ..ConsensusConfig::default()
        };
        let mut sim = cluster_configured(3, 4, 2, NetworkModel::default(), Vec::new(), client_interval, config);
        down_between(&mut sim, 2, down_ms, back_ms);
        sim.run_until(SimTime::from_millis(16_000), |_| {});
        judge(&sim, 4);
        sim
    };
    let commits_while_down = |sim: &Simulation| {
        named(sim.probes(), "commit")
            .filter(|p| p.node == 0 && p.at > SimTime::from_millis(4_000) && p.at < back)
            .count()
    };
    let load = Duration::from_millis(20);
    let waited = run(false, load);
    let skipped = run(true, load);
    let (slow, fast) = (commits_while_down(&waited), commits_while_down(&skipped));
    assert!(
        fast >= 5 * slow.max(1),
        "heights committed while validator 2 was down: {fast} skipping its views, {slow} waiting them out"
    );
    assert!(
        !named(waited.probes(), "skipped").any(|p| p.probe.value == 2),
        "without suspicion its views are waited out"
    );
    // A client every 2 s: most views are heartbeats, and the restarted validator's proposals
    // come a quarter view timeout into its views, after the others gave up on them.
    let idle = run(true, Duration::from_secs(2));
    for (name, sim, proposals_min) in [("under load", &skipped, 10), ("idle", &idle, 2)] {
        let probes = sim.probes();
        let suspecters: BTreeSet<NodeIndex> = named(probes, "leader_suspected")
            .filter(|p| p.probe.value == 2 && p.at > down && p.at < back)
            .map(|p| p.node)
            .collect();
        assert_eq!(
            suspecters,
            BTreeSet::from([0, 1, 3]),
            "{name}: every other validator suspected it"
        );
        let trusters: BTreeSet<NodeIndex> = named(probes, "leader_trusted")
            .filter(|p| p.probe.value == 2 && p.at > back)
            .map(|p| p.node)
            .collect();
        assert_eq!(
            trusters,
            BTreeSet::from([0, 1, 3]),
            "{name}: every other validator trusts it again"
        );
        let settled = SimTime::from_millis(12_000);
        assert!(
            !named(probes, "skipped").any(|p| p.probe.value == 2 && p.at > settled),
            "{name}: its views are no longer skipped once it is back"
        );
        let led = named(probes, "proposal")
            .filter(|p| p.node == 2 && p.at > settled)
            .count();
        assert!(led >= proposals_min, "{name}: it leads again: {led} proposals");
    }
}

/// A validator that gives up on every view almost at once (a Byzantine one may, with valid
/// signatures) must not keep an honest restarted validator from leading again: with it and the
/// one replica that suspects the restarted leader, `f + 1` timeouts make everyone give up on
/// that leader's views before an idle leader proposes, so only the leader's own timeout of those
/// views can show it is up, and that timeout must clear the suspicion rather than be outrun by
/// the certificate it is part of.
#[test]
fn an_impatient_validator_cannot_keep_a_restarted_leader_suspected() {
    let impatient = 1;
    let config_of = Box::new(move |i: usize| {
        if i == impatient {
            ConsensusConfig {
                view_timeout: Duration::from_millis(10),
                view_timeout_max: Duration::from_millis(10),
                batch_delay_max: Duration::from_millis(1),
                ..ConsensusConfig::default()
            }
        } else {
            ConsensusConfig::default()
        }
    });
    let mut sim = cluster_configured_each(
        5,
        4,
        1,
        NetworkModel::default(),
        Vec::new(),
        Duration::from_secs(2),
        config_of,
    );
    down_between(&mut sim, 2, 3_000, 9_000);
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    judge(&sim, 4);
    let probes = sim.probes();
    let settled = SimTime::from_millis(14_000);
    let still_skipped: BTreeSet<NodeIndex> = named(probes, "skipped")
        .filter(|p| p.probe.value == 2 && p.at > settled && p.node != impatient as NodeIndex)
        .map(|p| p.node)
        .collect();
    assert!(
        still_skipped.is_empty(),
        "honest replicas still skip the restarted leader's views: {still_skipped:?}"
    );
}

/// A restarted replica reads its newest checkpoint back and replays only the blocks after it,
/// and decides every later block as the others do (agreement, durability and the clients'
/// linearizable history are judged across the restart).
#[test]
fn a_restarted_replica_restores_its_checkpoint_and_replays_only_the_blocks_after_it() {
    let config = ConsensusConfig {
        checkpoint_interval: 40,
        ..ConsensusConfig::default()
    };
    let mut sim = cluster_configured(
        3,
        4,
        1,
        NetworkModel::default(),
        Vec::new(),
        Duration::from_millis(20),
        config,
    );
    down_between(&mut sim, 1, 6_000, 8_000);
    sim.run_until(SimTime::from_millis(14_000), |_| {});
    let (figures, tops) = judge(&sim, 4);
    let probes = sim.probes();
    let restart = SimTime::from_millis(8_000);
    let before_crash = named(probes, "commit")
        .filter(|p| p.node == 1 && p.at < SimTime::from_millis(6_000))
        .map(|p| p.probe.subject)
        .max()
        .expect("node 1 committed before its crash");
    let restored: Vec<_> = named(probes, "checkpoint_restored").filter(|p| p.node == 1).collect();
    assert_eq!(restored.len(), 1, "one restart, one checkpoint restored");
    let at = restored[0].probe.subject;
    assert!(at > 0 && at % 40 == 0, "a checkpoint height: {at}");
    assert!(
        at + 40 > before_crash,
        "the newest checkpoint before the crash ({at}, committed {before_crash})"
    );
    // The replay applied the heights after the checkpoint only.
    let replayed: BTreeSet<u64> = named(probes, "commit")
        .filter(|p| p.node == 1 && p.at >= restart)
        .map(|p| p.probe.subject)
        .collect();
    assert!(
        replayed.iter().all(|h| *h > at),
        "no height at or below the checkpoint was applied again"
    );
    assert!(
        replayed.contains(&(at + 1)),
        "the replay went on from the block after it"
    );
    assert_eq!(figures.get("checkpoints_restored"), Some(1.0));
    assert_eq!(figures.get("checkpoints_refused"), Some(0.0));
    assert!(figures.get("checkpoints_saved").unwrap() >= 4.0);
    let highest = *tops.values().max().unwrap();
    assert!(tops[&1] + 5 >= highest, "the restarted replica caught up: {tops:?}");
}

/// One Byzantine validator of four, each behaviour in turn: honest replicas agree, the history
/// stays linearizable, and the cluster keeps committing.
#[test]
fn one_byzantine_validator_of_four_cannot_break_safety_or_stop_commits() {
    let behaviours = [
        Behaviour::Equivocate,
        Behaviour::Forge,
        Behaviour::Withhold,
        Behaviour::Delay(Duration::from_millis(700)),
        Behaviour::ClockLie(Duration::from_secs(60)),
        Behaviour::Mutate,
        Behaviour::Impersonate(0),
    ];
    for (seed, behaviour) in behaviours.into_iter().enumerate() {
        let name = behaviour.name();
        let mut sim = cluster_with(10 + seed as u64, 4, 1, NetworkModel::default(), vec![(3, behaviour)]);
        sim.run_until(SimTime::from_millis(15_000), |_| {});
        let (figures, tops) = judge_with(&sim, 4, BTreeSet::from([3]));
        let honest_min = (0..3).map(|n| tops.get(&n).copied().unwrap_or(0)).min().unwrap();
        assert!(
            honest_min > 10,
            "{name}: honest replicas committed too little: {tops:?}"
        );
        let ok = figures.get("txns_ok").unwrap();
        assert!(ok > 100.0, "{name}: {ok} transactions committed");
        let misbehaved = named(sim.probes(), "misbehaved").count();
        assert_eq!(misbehaved, 1, "{name}: the adversary acted");
    }
}

#[test]
fn an_equivocating_leader_is_convicted_by_every_honest_replica() {
    let mut sim = cluster_with(3, 4, 1, NetworkModel::default(), vec![(3, Behaviour::Equivocate)]);
    sim.run_until(SimTime::from_millis(10_000), |_| {});
    judge_with(&sim, 4, BTreeSet::from([3]));
    let probes = sim.probes();
    let first = named(probes, "misbehaved").next().expect("it misbehaved").at;
    for honest in 0..3 {
        let evidence = named(probes, "evidence")
            .find(|p| p.node == honest && p.probe.subject == 3)
            .unwrap_or_else(|| panic!("node {honest} holds no evidence against validator 3"));
        let latency = evidence.at.as_nanos() - first.as_nanos();
        assert!(
            latency < 1_000_000_000,
            "node {honest} convicted it {latency} ns after it began"
        );
    }
    assert!(
        !named(probes, "evidence").any(|p| p.probe.subject != 3),
        "only the equivocator is convicted"
    );
}

/// The guide's scenario: 7 validators, an equivocator and a forger. Both are marked by every
/// honest replica, the equivocator on proof and the forger on reports, and no honest one is.
#[test]
fn an_equivocator_and_a_forger_among_seven_are_marked_and_no_honest_validator_is() {
    let mut sim = cluster_with(
        7,
        7,
        1,
        NetworkModel::default(),
        vec![(5, Behaviour::Equivocate), (6, Behaviour::Forge)],
    );
    sim.run_until(SimTime::from_millis(15_000), |_| {});
    let (figures, tops) = judge_with(&sim, 7, BTreeSet::from([5, 6]));
    assert!(tops[&0] > 20, "{tops:?}");
    assert_eq!(figures.get("byzantine_validators"), Some(2.0));
    assert_eq!(figures.get("byzantine_detected"), Some(2.0), "{figures:#?}");
    assert_eq!(figures.get("honest_marked"), Some(0.0), "{:#?}", figures.evidence);
    assert_eq!(figures.get("evidence"), Some(1.0), "the equivocator is proven");
    let p99 = figures.get("detection_ms_p99").unwrap();
    eprintln!(
        "detection p99 {p99} ms; marked by all within {:?} ms; isolated everywhere within {:?} ms; reports {:?}",
        figures.get("detection_all_ms_max"),
        figures.get("isolation_ms_max"),
        figures.get("reports")
    );
    assert!(p99 < 500.0, "detection p99 {p99} ms");
    assert_eq!(figures.get("byzantine_isolated"), Some(2.0), "{figures:#?}");
    assert_eq!(figures.get("honest_isolated"), Some(0.0));
    let after = figures.get("commits_after_isolation").unwrap();
    assert!(
        after > 100.0,
        "the cluster kept committing after isolating both: {after}"
    );
}

/// Heights `node` committed between `from_ms` and `to_ms`.
fn commits_between(sim: &Simulation, node: NodeIndex, from_ms: u64, to_ms: u64) -> usize {
    let (from, to) = (SimTime::from_millis(from_ms), SimTime::from_millis(to_ms));
    named(sim.probes(), "commit")
        .filter(|p| p.node == node && p.at > from && p.at < to)
        .count()
}

/// The epochs each honest node entered (the `epoch` probe), with the members of each.
fn epochs_entered(sim: &Simulation, honest: impl Fn(NodeIndex) -> bool) -> BTreeMap<NodeIndex, Vec<(u64, i64)>> {
    let mut entered: BTreeMap<NodeIndex, Vec<(u64, i64)>> = BTreeMap::new();
    for p in named(sim.probes(), "epoch").filter(|p| honest(p.node)) {
        entered
            .entry(p.node)
            .or_default()
            .push((p.probe.subject, p.probe.value));
    }
    entered
}

/// Isolation takes a validator out of the set: once two forgers of seven are removed, the
/// five left form the set of a new epoch (`f` = 1, a quorum of 4), so the cluster keeps
/// committing with one more honest validator down. With the removed validators still in the
/// set (a quorum of 5 of 7, their votes never valid) that crash stopped it: 0 heights
/// committed while it was down, before epochs.
#[test]
fn once_two_forgers_of_seven_are_removed_the_five_left_tolerate_another_crash() {
    let mut sim = cluster_with(
        11,
        7,
        1,
        NetworkModel::default(),
        vec![(5, Behaviour::Forge), (6, Behaviour::Forge)],
    );
    let (down_ms, end_ms) = (6_000, 15_000);
    sim.schedule(
        SimTime::from_millis(down_ms),
        FaultAction::Crash(NodeSet::from_indices([4])),
    );
    sim.run_until(SimTime::from_millis(end_ms), |_| {});
    let (figures, _) = judge_with(&sim, 7, BTreeSet::from([5, 6]));
    assert_eq!(figures.get("byzantine_isolated"), Some(2.0), "{figures:#?}");
    assert_eq!(figures.get("honest_marked"), Some(0.0));
    let probes = sim.probes();
    let last_isolation = named(probes, "isolated").map(|p| p.at).max().expect("isolated");
    assert!(
        last_isolation < SimTime::from_millis(down_ms),
        "both removed before the crash: {last_isolation:?}"
    );
    // Every honest replica's last epoch has the five honest validators as members.
    let entered = epochs_entered(&sim, |n| n < 5);
    for node in 0..4 {
        let last = entered.get(&node).and_then(|e| e.last()).copied();
        assert_eq!(last.map(|(_, members)| members), Some(5), "node {node}: {entered:?}");
    }
    let committed = commits_between(&sim, 0, down_ms + 1_000, end_ms);
    assert!(
        committed > 100,
        "heights committed with validator 4 down too: {committed}"
    );
}

/// A validator down while the removal that ends an epoch commits comes back behind the
/// epoch's end: its peers answer its fetch with the blocks up to that end and the certified
/// blocks that show it committed (the isolation proof), it enters the new epoch, and it then
/// counts in that epoch's quorums. A restart after the epoch's end replays its log into the
/// same epoch.
#[test]
fn a_validator_down_across_an_epochs_end_catches_up_into_the_new_epoch_and_counts() {
    let mut sim = cluster_with(12, 7, 1, NetworkModel::default(), vec![(6, Behaviour::Forge)]);
    // Down before the forger is removed, back after; then another honest one goes down, and
    // the new epoch (six members, a quorum of 5) needs the first one's votes.
    down_between(&mut sim, 5, 100, 5_000);
    sim.schedule(
        SimTime::from_millis(8_000),
        FaultAction::Crash(NodeSet::from_indices([4])),
    );
    // And a restart well into the new epoch replays across its start.
    down_between(&mut sim, 3, 11_000, 11_500);
    sim.run_until(SimTime::from_millis(18_000), |_| {});
    let (figures, tops) = judge_with(&sim, 7, BTreeSet::from([6]));
    assert_eq!(figures.get("byzantine_isolated"), Some(1.0), "{figures:#?}");
    let probes = sim.probes();
    let isolated_at = named(probes, "isolated").map(|p| p.at).min().expect("isolated");
    assert!(
        isolated_at > SimTime::from_millis(100) && isolated_at < SimTime::from_millis(5_000),
        "the forger is removed while validator 5 is down: {isolated_at:?}"
    );
    let entered = epochs_entered(&sim, |n| n < 6);
    let at_5: Vec<_> = named(probes, "epoch").filter(|p| p.node == 5).map(|p| p.at).collect();
    assert!(
        at_5.first().is_some_and(|at| *at > SimTime::from_millis(5_000)),
        "validator 5 entered the new epoch once back: {entered:?}"
    );
    assert!(
        named(probes, "catchup").any(|p| p.node == 5 && p.probe.value > 0),
        "it caught up by fetching"
    );
    let committed = commits_between(&sim, 0, 9_000, 11_000);
    assert!(
        committed > 50,
        "heights committed with 4 down, 5 voting in the new epoch: {committed}"
    );
    // Validator 3 replayed its log across the epoch's start and counts again.
    assert!(
        at_5.len() == 1 && named(probes, "epoch").filter(|p| p.node == 3).count() >= 2,
        "3 entered the epoch once live and once replaying: {entered:?}"
    );
    let after_restart = commits_between(&sim, 0, 13_000, 18_000);
    assert!(
        after_restart > 100,
        "heights committed after 3's restart: {after_restart}"
    );
    assert!(tops[&3] + 10 >= tops[&0], "{tops:?}");
}

/// A forged signature over an authenticated channel is first-hand proof: the first replica
/// that receives one marks the forger at once, without waiting for two more reporters (which
/// took up to a second in byzantine-equivocation sweeps: a forger's votes reach one collector
/// per view). The others still need the reports to commit its removal.
#[test]
fn a_forger_is_marked_by_the_first_replica_it_sends_a_forged_signature_to() {
    for (seed, behaviour) in [(30, Behaviour::Forge), (31, Behaviour::Impersonate(0))] {
        let name = behaviour.name();
        let mut config = ConsensusConfig::default();
        config.detection.source_addresses_authentic = true;
        let mut sim = cluster_configured(
            seed,
            7,
            1,
            NetworkModel::default(),
            vec![(6, behaviour)],
            Duration::from_millis(20),
            config,
        );
        sim.run_until(SimTime::from_millis(5_000), |_| {});
        let (figures, _) = judge_with(&sim, 7, BTreeSet::from([6]));
        let probes = sim.probes();
        let began = named(probes, "misbehaved").next().expect("it misbehaved").at;
        let first = named(probes, "marked")
            .find(|p| p.probe.subject == 6)
            .unwrap_or_else(|| panic!("{name}: never marked"));
        assert_eq!(first.probe.value, 5, "{name}: marked first-hand");
        let latency_ms = (first.at.as_nanos() - began.as_nanos()) / 1_000_000;
        // One message's way (at most 10 ms here) after its first forged message.
        assert!(latency_ms <= 20, "{name}: marked {latency_ms} ms after it began");
        assert_eq!(
            figures.get("honest_marked"),
            Some(0.0),
            "{name}: {:#?}",
            figures.evidence
        );
        assert_eq!(figures.get("byzantine_detected"), Some(1.0), "{name}: marked by all");
        assert_eq!(
            figures.get("byzantine_isolated"),
            Some(1.0),
            "{name}: removed on reports"
        );
    }
}

#[test]
fn a_lying_clock_and_a_slow_validator_are_marked_on_reports() {
    for (seed, behaviour) in [
        (20, Behaviour::ClockLie(Duration::from_secs(60))),
        (21, Behaviour::Delay(Duration::from_millis(1500))),
    ] {
        let name = behaviour.name();
        let mut sim = cluster_with(seed, 4, 1, NetworkModel::default(), vec![(3, behaviour)]);
        // A slow validator is reported once seen late at three moments a tolerance apart (a
        // pause is one moment), by each of the three honest replicas.
        sim.run_until(SimTime::from_millis(40_000), |_| {});
        let (figures, _) = judge_with(&sim, 4, BTreeSet::from([3]));
        assert_eq!(figures.get("byzantine_detected"), Some(1.0), "{name}: {figures:#?}");
        assert_eq!(figures.get("honest_marked"), Some(0.0), "{name}");
        assert_eq!(figures.get("evidence"), Some(0.0), "{name}: suspicion, not proof");
        assert_eq!(figures.get("byzantine_isolated"), Some(1.0), "{name}: {figures:#?}");
    }
}

/// A seeded storm: lossy, duplicating, reordering links, crashes and restarts of up to `f`
/// validators, partitions that cut one validator or split the set, then a quiet phase. Safety
/// holds throughout and the cluster commits again once it is quiet.
fn storm(seed: u64, n: usize) -> (Figures, BTreeMap<NodeIndex, u64>) {
    use runtime::{DetRng, Entropy};
    let mut rng = DetRng::seed_from_u64(seed ^ 0x5707);
    let link = simulator::LinkModel {
        loss: rng.next_u64() as f64 / u64::MAX as f64 * 0.2,
        jitter: Duration::from_millis(rng.next_u64() % 40),
        duplicate: 0.05,
        reorder: 0.05,
        reorder_window: Duration::from_millis(20),
        ..simulator::LinkModel::default()
    };
    let mut sim = cluster(seed, n, 2, NetworkModel::new(link));
    let f = (n - 1) / 3;
    let validators = n as u32;
    let mut t = 1_000u64;
    while t < 12_000 {
        match rng.next_u64() % 3 {
            0 => {
                let victims: Vec<u32> = (0..f)
                    .map(|_| (rng.next_u64() % u64::from(validators)) as u32)
                    .collect();
                let down = NodeSet::from_indices(victims);
                sim.schedule(SimTime::from_millis(t), FaultAction::Crash(down.clone()));
                sim.schedule(
                    SimTime::from_millis(t + 500 + rng.next_u64() % 2_000),
                    FaultAction::Restart(down),
                );
            }
            1 => {
                let split = 1 + (rng.next_u64() % u64::from(validators - 1)) as u32;
                let a = NodeSet::from_indices(0..split);
                let b = NodeSet::from_indices(split..validators);
                sim.schedule(
                    SimTime::from_millis(t),
                    FaultAction::Partition {
                        a: a.clone(),
                        b: b.clone(),
                        one_way: rng.next_u64().is_multiple_of(4),
                    },
                );
                sim.schedule(
                    SimTime::from_millis(t + 300 + rng.next_u64() % 3_000),
                    FaultAction::Heal,
                );
            }
            _ => {}
        }
        t += 500 + rng.next_u64() % 1_500;
    }
    sim.schedule(SimTime::from_millis(14_000), FaultAction::Heal);
    // The quiet phase: links as a decent network's (1 % loss), every validator up.
    sim.schedule(
        SimTime::from_millis(14_000),
        FaultAction::SetLinks(simulator::LinkModel {
            loss: 0.01,
            ..simulator::LinkModel::default()
        }),
    );
    sim.schedule(
        SimTime::from_millis(14_000),
        FaultAction::Restart(NodeSet::from_indices(0..validators)),
    );
    sim.run_until(SimTime::from_millis(24_000), |_| {});
    let probes = sim.probes();
    if std::env::var("CONSENSUS_DEBUG_SEED").is_ok() {
        for p in probes
            .iter()
            .filter(|p| (p.node as usize) < n && p.probe.name != "commit_txs")
        {
            eprintln!(
                "{} n{} {} {} {}",
                p.at, p.node, p.probe.name, p.probe.subject, p.probe.value
            );
        }
        for a in sim.applied_faults() {
            eprintln!("fault {a:?}");
        }
    }
    let run = Run {
        validators,
        byzantine: BTreeSet::new(),
        quiet_from: Some(Duration::from_millis(16_000)),
        up_at_end: (0..validators).collect(),
    };
    let figures = analyse(
        probes.iter().map(|r| Observed {
            at: Duration::from_nanos(r.at.as_nanos()),
            node: r.node,
            probe: &r.probe,
        }),
        &run,
    );
    let mut tops = BTreeMap::new();
    for p in named(probes, "commit") {
        let top = tops.entry(p.node).or_default();
        *top = p.probe.subject.max(*top);
    }
    (figures, tops)
}

#[test]
fn storms_never_break_safety_and_the_cluster_commits_once_quiet() {
    let seeds: u64 = std::env::var("CONSENSUS_STORM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    for seed in 1..=seeds {
        let n = if seed.is_multiple_of(3) { 7 } else { 4 };
        let (figures, tops) = storm(seed, n);
        for metric in [
            "agreement_violations",
            "durability_violations",
            "linearizability_anomalies",
            "halted_replicas",
        ] {
            assert_eq!(
                figures.get(metric),
                Some(0.0),
                "seed {seed}, {metric}: {:#?}",
                figures.evidence
            );
        }
        let quiet = figures.get("quiet_commits").unwrap_or(0.0);
        assert!(quiet > 0.0, "seed {seed}: no commit after the storm: {tops:?}");
    }
}

#[test]
#[ignore = "debugging aid: CONSENSUS_DEBUG_SEED=N prints one storm's consensus probes"]
fn storm_debug() {
    let seed: u64 = std::env::var("CONSENSUS_DEBUG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (figures, tops) = storm(seed, if seed.is_multiple_of(3) { 7 } else { 4 });
    eprintln!("{tops:?}\n{figures:#?}");
}

#[test]
#[ignore = "measurement aid: a 100-validator cluster under load, for the simulated speed"]
// The host's clock times the simulation itself (simulated seconds per wall second).
#[allow(clippy::disallowed_methods)]
fn hundred_validators_under_load() {
    hypermesh::consensus::share_verifications(std::env::var("NO_SHARED_VERIFY").is_err());
    let wall = std::time::Instant::now();
    let mut sim = cluster(1, 100, 4, NetworkModel::default());
    sim.run_until(SimTime::from_millis(10_000), |_| {});
    let (figures, tops) = judge_with(&sim, 100, BTreeSet::new());
    eprintln!(
        "100 validators: 10 s simulated in {:?}; height {:?}; ok {:?}; p99 {:?} ms; view changes {:?}; p50 {:?}; datagrams {}",
        wall.elapsed(),
        tops.values().max(),
        figures.get("txns_ok"),
        figures.get("commit_ms_p99"),
        figures.get("view_changes"),
        figures.get("commit_ms_p50"),
        sim.stats().datagrams_sent
    );
}

#[test]
#[ignore = "measurement aid: commit latency of four validators on a clean network"]
fn four_validators_latency() {
    let mut sim = cluster(1, 4, 2, NetworkModel::default());
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    let (figures, _) = judge(&sim, 4);
    eprintln!(
        "p50 {:?} p99 {:?} ok {:?}",
        figures.get("commit_ms_p50"),
        figures.get("commit_ms_p99"),
        figures.get("txns_ok")
    );
    let mut lat: Vec<i64> = named(sim.probes(), "latency_ms").map(|p| p.probe.value).collect();
    lat.sort();
    eprintln!("slowest: {:?}", &lat[lat.len().saturating_sub(20)..]);
}

/// What a [`Tap`] kept, with the node that sent each.
type Seen<T> = std::rc::Rc<std::cell::RefCell<Vec<(NodeIndex, T)>>>;

/// Records, with the node that sent it, every consensus message `pick` keeps.
struct Tap<T> {
    pick: Box<dyn FnMut(hypermesh::consensus::Message) -> Option<T>>,
    seen: Seen<T>,
}

impl<T> Tap<T> {
    /// A tap and what it will have seen.
    fn new(pick: impl FnMut(hypermesh::consensus::Message) -> Option<T> + 'static) -> (Self, Seen<T>) {
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let tap = Tap {
            pick: Box::new(pick),
            seen: seen.clone(),
        };
        (tap, seen)
    }
}

impl<T> simulator::Interceptor for Tap<T> {
    fn intercept(
        &mut self,
        link: simulator::LinkEnds,
        payload: bytes::Bytes,
        _rng: &mut runtime::DetRng,
    ) -> simulator::Intercepted {
        if let Some(kept) = consensus_message(&payload).and_then(&mut self.pick) {
            self.seen.borrow_mut().push((link.from_node, kept));
        }
        simulator::Intercepted::Pass(payload)
    }
}

/// The consensus message a datagram carries, if it is on consensus's channel and decodes.
fn consensus_message(datagram: &[u8]) -> Option<hypermesh::consensus::Message> {
    let (&channel, body) = datagram.split_first()?;
    (channel == MOUNT.channel.0)
        .then(|| hypermesh::consensus::Message::decode(body).ok())
        .flatten()
}

/// `message` as a datagram on consensus's channel.
fn datagram(message: &hypermesh::consensus::Message) -> bytes::Bytes {
    let mut d = vec![MOUNT.channel.0];
    d.extend_from_slice(&message.encode());
    bytes::Bytes::from(d)
}

/// A transaction the machine refuses without looking at its state (unsigned, signed by a stranger)
/// is refused when submitted, with the machine's reason, and never reaches a block: checked once
/// at admission, it is not checked again when applied.
#[test]
fn an_invalid_transaction_is_refused_at_admission_and_never_proposed() {
    use hypermesh::consensus::{AnswerKind, Message, Submit};
    use hypermesh::replication::kv::{encode_transaction, sign_transaction, Op};
    let mut sim = cluster(6, 4, 1, NetworkModel::default());
    let (tap, seen) = Tap::new(|m| match m {
        Message::Answer(a) => Some((a.transaction, a.kind)),
        Message::Proposal(p) => Some((
            [0; 32],
            AnswerKind::Applied(bytes::Bytes::from(p.block.transactions.concat())),
        )),
        _ => None,
    });
    sim.set_interceptor(Box::new(tap));
    let ops = [Op::Append { key: 9_999, value: 1 }];
    let unsigned = encode_transaction(&ops);
    let stranger = sign_transaction(&ops, 77, &ValidatorKey::from_seed(&[0x77; 32]));
    for (i, t) in [&unsigned, &stranger].into_iter().enumerate() {
        let submit = Message::Submit(Submit {
            forwarded: false,
            transaction: t.clone(),
        });
        sim.forge(
            SimTime::from_millis(3_000 + i as u64),
            addr(4),
            addr(i as NodeIndex),
            datagram(&submit),
        );
    }
    sim.run_until(SimTime::from_millis(6_000), |_| {});
    let seen = seen.borrow();
    for (t, why) in [(&unsigned, "unsigned"), (&stranger, "client 77 is unknown")] {
        let id = hypermesh::consensus::sha256(t);
        let answers: Vec<_> = seen
            .iter()
            .filter(|(_, (tx, _))| *tx == id)
            .map(|(_, (_, k))| k)
            .collect();
        assert_eq!(answers.len(), 1, "one answer, from the replica it was submitted to");
        assert!(
            matches!(answers[0], AnswerKind::NotAdmitted(r) if r.contains("invalid") && r.contains(why)),
            "{:?}",
            answers[0]
        );
        // In no block: the concatenated transactions of every proposal never hold it.
        let proposed = seen.iter().any(|(_, (tx, kind))| {
            *tx == [0; 32] && matches!(kind, AnswerKind::Applied(all) if all.windows(t.len()).any(|w| w == &t[..]))
        });
        assert!(!proposed, "an invalid transaction was proposed");
    }
    let (_, tops) = judge(&sim, 4);
    assert!(tops.values().all(|h| *h > 50), "the cluster kept committing: {tops:?}");
}

/// A local read answers from the replica's state at its committed height, and refuses a
/// request that would write.
#[test]
fn local_reads_answer_from_the_replicas_committed_state() {
    use hypermesh::consensus::{Consistency, Message, Query};
    use hypermesh::replication::kv::{encode_transaction, Op};
    let mut sim = cluster(4, 4, 1, NetworkModel::default());
    let (tap, answers) = Tap::new(|m| match m {
        Message::QueryAnswer(a) => Some(a),
        _ => None,
    });
    sim.set_interceptor(Box::new(tap));
    let query = |id: u64, ops: &[Op]| {
        datagram(&Message::Query(Query {
            id,
            consistency: Consistency::Local,
            request: encode_transaction(ops),
        }))
    };
    let client = addr(4);
    sim.forge(
        SimTime::from_millis(5_000),
        client,
        addr(0),
        query(1, &[Op::Read { key: 0 }, Op::Read { key: 1 }]),
    );
    sim.forge(
        SimTime::from_millis(5_000),
        client,
        addr(1),
        query(2, &[Op::Append { key: 0, value: 1 }]),
    );
    sim.run_until(SimTime::from_millis(6_000), |_| {});
    let (_, tops) = judge(&sim, 4);
    let answers = answers.borrow();
    assert_eq!(answers.len(), 2, "{answers:?}");
    let (from, read) = &answers[0];
    assert_eq!((*from, read.id), (0, 1));
    assert!(
        read.height > 0 && read.height <= tops[&0],
        "read at height {} of {}",
        read.height,
        tops[&0]
    );
    let lists = read.result.as_ref().expect("a read is answered");
    assert!(lists.len() >= 8, "two lists: {lists:?}");
    assert_eq!(answers[1].1.result, Err("op 0 appends: a query only reads".into()));
}

/// Issue 14: "reads at a chosen consistency". A linearizable read reflects every height
/// committed anywhere before it was sent, even at a replica that was cut off and is behind; one
/// that cannot reach a quorum is refused with why, never answered stale. A local read at the
/// same replica answers at once from its stale state.
#[test]
fn a_linearizable_read_sees_every_commit_before_it_even_at_a_lagging_replica() {
    use hypermesh::consensus::{Consistency, Message, Query};
    use hypermesh::replication::kv::{encode_transaction, Op};
    let mut sim = cluster(7, 4, 2, NetworkModel::default());
    let (tap, answers) = Tap::new(|m| match m {
        Message::QueryAnswer(a) => Some(a),
        _ => None,
    });
    sim.set_interceptor(Box::new(tap));
    let read = |id: u64, consistency: Consistency| {
        datagram(&Message::Query(Query {
            id,
            consistency,
            request: encode_transaction(&[Op::Read { key: 0 }]),
        }))
    };
    // Validator 3 is cut off from 2 s to 9 s, with client 5 that reads from it: the others
    // commit on without it.
    let lagging = NodeSet::from_indices([3, 5]);
    let others = NodeSet::from_indices([0, 1, 2, 4]);
    sim.schedule(
        SimTime::from_millis(2_000),
        FaultAction::Partition {
            a: lagging,
            b: others,
            one_way: false,
        },
    );
    sim.schedule(SimTime::from_millis(9_000), FaultAction::Heal);
    let (client, replica) = (addr(5), addr(3));
    sim.forge(
        SimTime::from_millis(6_000),
        client,
        replica,
        read(1, Consistency::Local),
    );
    sim.forge(
        SimTime::from_millis(6_000),
        client,
        replica,
        read(2, Consistency::Linearizable),
    );
    sim.forge(
        SimTime::from_millis(9_500),
        client,
        replica,
        read(3, Consistency::Linearizable),
    );
    sim.run_until(SimTime::from_millis(16_000), |_| {});
    judge(&sim, 4);
    let committed_before = |ms: u64| {
        named(sim.probes(), "commit")
            .filter(|p| p.at < SimTime::from_millis(ms))
            .map(|p| p.probe.subject)
            .max()
            .unwrap_or(0)
    };
    let answers = answers.borrow();
    let answer = |id: u64| {
        answers
            .iter()
            .find(|(_, a)| a.id == id)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no answer to read {id}: {answers:?}"))
    };
    // Local: at once, stale (validator 3 stopped committing at the partition).
    let local = answer(1);
    assert!(local.result.is_ok(), "{local:?}");
    assert!(
        local.height < committed_before(6_000),
        "a local read at the cut-off replica is stale: height {} while {} was committed",
        local.height,
        committed_before(6_000)
    );
    // Linearizable, cut off: refused after read_timeout, saying why.
    let refused = answer(2);
    let why = refused.result.expect_err("no quorum can answer a cut-off replica");
    assert!(why.contains("read_timeout") && why.contains("1 of the 3"), "{why}");
    // Linearizable, healed: answered at or above every height committed before it was sent.
    let fresh = answer(3);
    assert!(fresh.result.is_ok(), "{fresh:?}");
    assert!(
        fresh.height >= committed_before(9_500),
        "read at height {}, but {} was committed before it was sent",
        fresh.height,
        committed_before(9_500)
    );
}

/// A lone transaction on an idle cluster is answered without waiting for a heartbeat: the
/// replicas that answer learn of its commit from the very next proposal, which goes out at once
/// (it waited `view_timeout / 2` before: p50 about 200 ms on real sockets at 2-5 tx/s).
#[test]
fn a_lone_transaction_on_an_idle_cluster_is_answered_promptly() {
    let mut sim = cluster_paced(
        6,
        4,
        1,
        NetworkModel::default(),
        Vec::new(),
        Duration::from_millis(1_700),
    );
    sim.run_until(SimTime::from_millis(30_000), |_| {});
    let (figures, _) = judge(&sim, 4);
    assert!(figures.get("txns_ok").unwrap() >= 15.0, "{figures:?}");
    let p99 = figures.get("commit_ms_p99").unwrap();
    assert!(p99 < 100.0, "commit p99 {p99} ms on an idle 1 ms network");
}

/// A replica holds committed transactions' answers for resubmissions only within
/// `answer_bytes_max`: a resubmission after its answer was let go is answered `Forgotten` at the
/// height it committed, never applied again. (Before the limit, answers were held for 1000
/// heights whatever their size: 100 validators under load held 9.4 GB after 10 simulated
/// seconds.)
#[test]
fn a_resubmission_after_its_answer_was_let_go_is_answered_forgotten_and_not_applied_again() {
    use hypermesh::consensus::{AnswerKind, Message, Submit};
    use hypermesh::replication::kv::{sign_transaction, Op};
    let config = ConsensusConfig {
        answer_bytes_max: hypermesh::consensus::wire::ANSWER_BYTES_MAX,
        ..ConsensusConfig::default()
    };
    let mut sim = cluster_configured(
        8,
        4,
        2,
        NetworkModel::default(),
        Vec::new(),
        Duration::from_millis(5),
        config,
    );
    // From a load client's address (it ignores answers about transactions not its own).
    let me = addr(5);
    // Signed as client 4 (the machines know its key), on a key no load client uses.
    let key_ours = 1 << 40;
    let ours = sign_transaction(
        &[
            Op::Append {
                key: key_ours,
                value: 7,
            },
            Op::Read { key: key_ours },
        ],
        4,
        &ValidatorKey::from_seed(&client_seed(4)),
    );
    let id = hypermesh::consensus::sha256(&ours);
    let (tap, answers) = Tap::new(move |m| match m {
        Message::Answer(a) if a.transaction == id => Some(a),
        _ => None,
    });
    sim.set_interceptor(Box::new(tap));
    let submit = || {
        datagram(&Message::Submit(Submit {
            forwarded: false,
            transaction: ours.clone(),
        }))
    };
    sim.forge(SimTime::from_millis(2_000), me, addr(0), submit());
    // Within dedup_heights (about 180 heights a second here), after a few hundred KB of answers.
    sim.forge(SimTime::from_millis(5_000), me, addr(0), submit());
    sim.run_until(SimTime::from_millis(6_000), |_| {});
    let answers = answers.borrow();
    assert_eq!(answers.len(), 2, "{answers:?}");
    let (first, again) = (&answers[0].1, &answers[1].1);
    assert!(
        matches!(&first.kind, AnswerKind::Applied(body) if !body.is_empty()),
        "{first:?}"
    );
    assert_eq!(again.kind, AnswerKind::Forgotten, "{again:?}");
    assert_eq!(again.height, first.height);
    // Applied once: the read in the first answer saw one value, and no replica committed it
    // again (a second application would have answered Applied from the fresh outcome).
    assert_eq!(
        first.kind,
        AnswerKind::Applied(bytes::Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]))
    );
    let (figures, _) = judge(&sim, 4);
    assert_eq!(figures.get("agreement_violations"), Some(0.0));
}

/// A certificate that matches one already verified in view and block but claims another height
/// is verified again, and refused: its signatures do not cover that height. (The cache of
/// verified certificates was keyed by view and block alone, so a `mutate` adversary's copy with
/// one bit of the height flipped was taken as the high QC; every later proposal extended a
/// block at height 2^37 and swarm seed 577 never committed.)
#[test]
fn a_certificate_with_a_height_its_signatures_do_not_cover_is_refused() {
    use hypermesh::consensus::Message;
    let mut sim = cluster(9, 4, 1, NetworkModel::default());
    let (tap, justified) = Tap::new(|m| match m {
        Message::Proposal(p) if p.justify.view > 0 => Some(p.justify),
        _ => None,
    });
    sim.set_interceptor(Box::new(tap));
    sim.run_until(SimTime::from_millis(2_000), |_| {});
    let (_, before) = judge(&sim, 4);
    let mut forged = justified.borrow().last().expect("a certificate by 2 s").1.clone();
    forged.height += 1 << 37;
    for i in 0..4 {
        sim.forge(
            SimTime::from_millis(2_001),
            addr(3),
            addr(i),
            datagram(&Message::QuorumCertificate(forged.clone())),
        );
    }
    sim.run_until(SimTime::from_millis(6_000), |_| {});
    let (_, after) = judge(&sim, 4);
    for i in 0..4 {
        assert!(
            after[&i] > before[&i] + 10,
            "validator {i} committed {} before the forged certificate and {} after",
            before[&i],
            after[&i]
        );
    }
    let refused = named(sim.probes(), "refused")
        .filter(|p| p.at >= SimTime::from_millis(2_001) && p.probe.value == 2)
        .count();
    assert!(refused >= 4, "each validator refuses it as invalid: {refused}");
}

/// Chooses a message on a link to drop (`Some`, with a value the test keeps, such as its view).
type Pick = Box<dyn FnMut(&simulator::LinkEnds, &hypermesh::consensus::Message) -> Option<u64>>;

/// Drops every consensus message `pick` chooses.
struct Dropper {
    pick: Pick,
}

impl simulator::Interceptor for Dropper {
    fn intercept(
        &mut self,
        link: simulator::LinkEnds,
        payload: bytes::Bytes,
        _rng: &mut runtime::DetRng,
    ) -> simulator::Intercepted {
        match consensus_message(&payload) {
            Some(message) if (self.pick)(&link, &message).is_some() => simulator::Intercepted::Dropped,
            _ => simulator::Intercepted::Pass(payload),
        }
    }
}

/// `pick`, for the first message it chooses only; what it returned for that one goes to
/// `dropped`.
fn once(mut pick: Pick, dropped: std::rc::Rc<std::cell::Cell<Option<u64>>>) -> Pick {
    Box::new(move |link, message| {
        if dropped.get().is_some() {
            return None;
        }
        let chosen = pick(link, message)?;
        dropped.set(Some(chosen));
        Some(chosen)
    })
}

/// With one validator of four down, every other vote is needed for a quorum. A single lost
/// vote, or a proposal lost on its way to one replica, is sent again within the view, so the
/// view still commits instead of timing out (and doubling the next view's timeout): on a link
/// that loses 1 %, three such views in a row once left a cluster with an impersonator silent
/// through a 15-second quiet phase (swarm-consensus seed 8163).
#[test]
fn a_lost_vote_or_proposal_is_sent_again_before_its_view_times_out() {
    use hypermesh::consensus::Message;
    for lost in ["vote", "proposal"] {
        let mut sim = cluster(11, 4, 1, NetworkModel::default());
        sim.schedule(
            SimTime::from_millis(100),
            FaultAction::Crash(NodeSet::from_indices([3])),
        );
        let dropped = std::rc::Rc::new(std::cell::Cell::new(None));
        let after = SimTime::from_millis(3_000);
        let pick: Pick = match lost {
            // Node 1's vote, on its way to the next leader.
            "vote" => Box::new(move |link, m| match m {
                Message::VoteFor(v, _) if link.at > after && link.from_node == 1 && link.to_node != 1 => Some(v.view),
                _ => None,
            }),
            // A proposal of node 0's, on its way to node 2.
            _ => Box::new(move |link, m| match m {
                Message::Proposal(p) if link.at > after && link.from_node == 0 && link.to_node == 2 => {
                    Some(p.block.view)
                }
                _ => None,
            }),
        };
        sim.set_interceptor(Box::new(Dropper {
            pick: once(pick, dropped.clone()),
        }));
        sim.run_until(SimTime::from_millis(8_000), |_| {});
        let view = dropped.get().unwrap_or_else(|| panic!("no {lost} was dropped"));
        judge(&sim, 4);
        let timed_out: Vec<_> = named(sim.probes(), "timeout")
            .filter(|p| p.probe.subject == view)
            .map(|p| p.node)
            .collect();
        assert!(
            timed_out.is_empty(),
            "view {view}, whose {lost} was lost once, timed out at {timed_out:?}"
        );
        assert!(
            named(sim.probes(), "resent").any(|p| p.probe.subject == view),
            "the {lost} of view {view} was sent again"
        );
    }
}

/// Four validators that checkpoint every 64 heights and keep 64 heights below the newest
/// checkpoint in their logs, with short views so the three left commit quickly while one is
/// down; validator 2 is down from 5 s (in the first segment) to 50 s (the others past it).
fn pruning_cluster() -> Simulation {
    let mut config = ConsensusConfig {
        checkpoint_interval: 64,
        log_retain_heights: 64,
        view_timeout: Duration::from_millis(100),
        view_timeout_max: Duration::from_millis(800),
        resend_after: Duration::from_millis(50),
        ..ConsensusConfig::default()
    };
    config.detection.source_addresses_authentic = true;
    let mut sim = cluster_configured(
        13,
        4,
        2,
        NetworkModel::default(),
        Vec::new(),
        Duration::from_millis(5),
        config,
    );
    down_between(&mut sim, 2, 5_000, 50_000);
    sim
}

/// A replica down while the others committed past what their logs keep (they prune whole
/// segments below their checkpoints) comes back, is offered checkpoints instead of the blocks,
/// takes one that `f + 1` validators offered, and catches up on the blocks after it; it commits
/// the same blocks as the others from then on, and a restart after the transfer restores that
/// checkpoint from its own disk.
#[test]
fn a_replica_behind_what_its_peers_keep_takes_a_checkpoint_from_them_and_catches_up() {
    let mut sim = pruning_cluster();
    down_between(&mut sim, 2, 57_000, 58_000);
    sim.run_until(SimTime::from_millis(65_000), |_| {});
    let (_, tops) = judge(&sim, 4);
    let probes = sim.probes();
    let top_of = |node: u32, before: u64| {
        named(probes, "commit")
            .filter(|p| p.node == node && p.at < SimTime::from_millis(before))
            .map(|p| p.probe.subject)
            .max()
            .unwrap_or(0)
    };
    let (down_at, others_at) = (top_of(2, 5_000), top_of(0, 50_000));
    assert!(
        down_at < 1024 && others_at > 1024 + 128,
        "node 2 stopped in the first segment ({down_at}), the others went past it ({others_at})"
    );
    let installed: Vec<_> = named(probes, "snapshot_installed")
        .map(|p| (p.node, p.probe.subject))
        .collect();
    assert!(
        installed.iter().any(|(node, height)| *node == 2 && *height > 1024),
        "node 2 took a checkpoint past the first segment: {installed:?}"
    );
    let highest = *tops.values().max().unwrap();
    assert!(tops[&2] + 5 >= highest, "node 2 caught up: {tops:?}");
    // The restart at 58 s read the transferred checkpoint back from its own disk.
    assert!(
        named(probes, "checkpoint_restored").any(|p| p.node == 2 && p.at > SimTime::from_millis(57_000)),
        "a restart after the transfer restored a checkpoint"
    );
}

/// A chunk request lost on its way (its source silent from then on, as far as the requester
/// can tell) moves the transfer to the next source, which serves the checkpoint from its start:
/// bytes are never mixed from two sources, so a source that sent one bad chunk and went silent
/// cannot spoil the bytes that follow from an honest one.
#[test]
fn a_transfer_moved_to_another_source_starts_the_checkpoint_again() {
    use hypermesh::consensus::Message;
    let mut sim = pruning_cluster();
    // Node 2's chunk requests, in order: (to, offset, dropped).
    let requests = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = requests.clone();
    let mut dropped = false;
    let pick: Pick = Box::new(move |link, m| match m {
        Message::FetchSnapshot { offset, .. } if link.from_node == 2 => {
            let drop = !dropped && *offset > 0;
            dropped |= drop;
            seen.borrow_mut().push((link.to_node, *offset, drop));
            drop.then_some(*offset)
        }
        _ => None,
    });
    sim.set_interceptor(Box::new(Dropper { pick }));
    sim.run_until(SimTime::from_millis(60_000), |_| {});
    judge(&sim, 4);
    let requests = requests.borrow();
    let lost = requests
        .iter()
        .position(|(_, _, dropped)| *dropped)
        .unwrap_or_else(|| panic!("no chunk request was dropped: {requests:?}"));
    let (to, offset, _) = requests[lost + 1];
    assert_ne!(to, requests[lost].0, "the next request went to another source");
    assert_eq!(offset, 0, "from the checkpoint's start: {requests:?}");
    assert!(
        named(sim.probes(), "snapshot_installed").any(|p| p.node == 2),
        "node 2 took the checkpoint all the same"
    );
}
