//! HotStuff-2 replicas in the simulator: a cluster commits, agrees, survives crashes and catches
//! up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use hypermesh::consensus::client::{LoadClient, LoadConfig};
use hypermesh::consensus::{ConsensusConfig, Replica, Validator, ValidatorKey, ValidatorSet, MOUNT};
use hypermesh::membership::NodeId;
use hypermesh::replication::kv::ListAppend;
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

/// Every height committed by two replicas has one block; returns commits per replica.
fn assert_agreement(probes: &[ProbeRecord]) -> BTreeMap<NodeIndex, u64> {
    let mut by_height: BTreeMap<u64, (NodeIndex, i64)> = BTreeMap::new();
    let mut per_node: BTreeMap<NodeIndex, u64> = BTreeMap::new();
    for p in named(probes, "commit") {
        let h = p.probe.subject;
        if let Some((other, digest)) = by_height.get(&h) {
            assert_eq!(
                *digest, p.probe.value,
                "height {h}: node {other} committed {digest:x}, node {} committed {:x}",
                p.node, p.probe.value
            );
        } else {
            by_height.insert(h, (p.node, p.probe.value));
        }
        let top = per_node.entry(p.node).or_default();
        *top = (*top).max(h);
    }
    per_node
}

#[test]
fn four_validators_commit_client_transactions_and_agree() {
    let mut sim = cluster(1, 4, 2, NetworkModel::default());
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    let probes = sim.probes();
    let tops = assert_agreement(probes);
    assert_eq!(tops.len(), 4, "every replica committed: {tops:?}");
    assert!(tops.values().all(|h| *h > 20), "{tops:?}");
    let ok = named(probes, "ok").count();
    let submitted = named(probes, "txn").count();
    assert!(ok * 10 >= submitted * 9, "{ok} of {submitted} transactions answered");
    assert_eq!(named(probes, "halted").count(), 0);
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
    let probes = sim.probes();
    let tops = assert_agreement(probes);
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
