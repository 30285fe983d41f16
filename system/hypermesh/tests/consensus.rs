//! HotStuff-2 replicas in the simulator: a cluster commits, agrees, survives crashes and catches
//! up.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use hypermesh::consensus::client::{LoadClient, LoadConfig};
use hypermesh::consensus::{ConsensusConfig, Replica, Validator, ValidatorKey, ValidatorSet, MOUNT};
use hypermesh::membership::NodeId;
use hypermesh::replication::kv::ListAppend;
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
    let set = set(n);
    let peers: Vec<SocketAddr> = (0..n as NodeIndex).map(addr).collect();
    let factory = move |i: NodeIndex| -> Box<dyn Actor> {
        let i = i as usize;
        if i < n {
            let replica = Replica::new(
                ConsensusConfig::default(),
                set.clone(),
                peers.clone(),
                i as u16,
                key(i),
                ListAppend::default(),
            );
            Box::new(Host::new(BareDatagrams).mount(MOUNT, replica))
        } else {
            let mut config = LoadConfig::new(peers.clone(), i as u64);
            config.interval = Duration::from_millis(20);
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

fn named<'a>(probes: &'a [ProbeRecord], name: &'a str) -> impl Iterator<Item = &'a ProbeRecord> + 'a {
    probes.iter().filter(move |p| p.probe.name == name)
}

/// The checker's figures of a run of `validators` validators that ended at `end`, failing on
/// any safety violation (with its evidence); returns each replica's highest committed height.
fn judge(sim: &Simulation, validators: u32) -> (Figures, BTreeMap<NodeIndex, u64>) {
    let probes = sim.probes();
    let run = Run {
        validators,
        byzantine: BTreeSet::new(),
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
    assert!(tops.values().all(|h| *h > 20), "{tops:?}");
    let ok = figures.get("txns_ok").unwrap();
    let submitted = figures.get("txns_submitted").unwrap();
    assert!(ok >= submitted * 0.9, "{ok} of {submitted} transactions answered");
}

#[test]
fn a_crashed_leader_is_passed_over_and_a_restarted_replica_catches_up() {
    let mut sim = cluster(2, 4, 1, NetworkModel::default());
    sim.schedule(
        SimTime::from_millis(3_000),
        FaultAction::Crash(NodeSet::from_indices([1])),
    );
    sim.schedule(
        SimTime::from_millis(9_000),
        FaultAction::Restart(NodeSet::from_indices([1])),
    );
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    let (_, tops) = judge(&sim, 4);
    let probes = sim.probes();
    let highest = *tops.values().max().unwrap();
    assert!(tops[&1] + 5 >= highest, "the restarted replica caught up: {tops:?}");
    let during: Vec<_> = named(probes, "commit")
        .filter(|p| p.node == 0 && p.at > SimTime::from_millis(4_000) && p.at < SimTime::from_millis(9_000))
        .collect();
    // With one validator of four down, two views of every four time out (its own, and the
    // one whose votes go to it): two commits per rotation of about two view timeouts.
    assert!(
        during.len() >= 4,
        "commits continued while a validator was down: {}",
        during.len()
    );
    assert!(named(probes, "timeout").count() > 0, "its views timed out");
}
