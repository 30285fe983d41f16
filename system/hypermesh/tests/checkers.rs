//! The membership checker (`hypermesh::testing`, the `testing` feature) over a run simulated
//! here: the figures a testbed scenario asserts on, computed without the testbed.

use std::net::SocketAddr;
use std::time::Duration;

use hypermesh::membership::{MembershipConfig, MembershipNode, NodeId, MOUNT};
use hypermesh::testing::membership::{self, Run};
use hypermesh::testing::truth::{Change, Event};
use hypermesh::testing::{Figures, Observed};
use runtime::host::{BareDatagrams, Host};
use runtime::Actor;
use simulator::{FaultAction, LinkModel, NetworkModel, NodeSet, NodeSpec, SimTime, Simulation};

const NODES: u32 = 5;
const CRASHED: u32 = 4;
const CRASH_AT: Duration = Duration::from_secs(10);
const END: Duration = Duration::from_secs(40);

fn addr(i: u32) -> SocketAddr {
    format!("[fd00::{:x}]:7946", i + 1).parse().expect("an address")
}

/// Five membership nodes (node `i` is `NodeId(i)`, as the checker reads ids) joining through
/// node 0; node 4 crashes at 10 s for good. Returns the simulation after 40 s.
fn run_with_a_crash() -> Simulation {
    let seeds = vec![addr(0)];
    let factory = Box::new(move |node: u32| -> Box<dyn Actor> {
        let config = MembershipConfig::new(NodeId(u64::from(node)), seeds.clone());
        Box::new(Host::new(BareDatagrams).mount(MOUNT, MembershipNode::new(config)))
    });
    let mut sim = Simulation::new(7, NetworkModel::new(LinkModel::default()), factory);
    for i in 0..NODES {
        let spec = NodeSpec {
            addrs: vec![addr(i)],
            ..NodeSpec::default()
        };
        sim.add_node_at(spec, SimTime::ZERO);
    }
    sim.schedule(
        SimTime::from_duration(CRASH_AT),
        FaultAction::Crash(NodeSet::from_indices([CRASHED])),
    );
    sim.run_until(SimTime::from_duration(END), |_| {});
    sim
}

/// The checker's figures for `sim`, held against `truth`.
fn figures(sim: &Simulation, truth: &[Event]) -> Figures {
    let probes = sim.probes().iter().map(|r| Observed {
        at: Duration::from_nanos(r.at.as_nanos()),
        node: r.node,
        probe: &r.probe,
    });
    let run = Run {
        nodes: NODES as usize,
        end: END,
        settle: Duration::from_secs(10),
        first_fault: Some(CRASH_AT),
    };
    membership::analyse(probes, truth, &run)
}

fn starts() -> Vec<Event> {
    (0..NODES)
        .map(|i| Event::new(Duration::ZERO, Change::Start(vec![i])))
        .collect()
}

#[test]
fn every_survivor_declares_the_crashed_node_dead_and_no_live_node_is_declared_dead() {
    let sim = run_with_a_crash();
    let mut truth = starts();
    truth.push(Event::new(CRASH_AT, Change::Crash(vec![CRASHED])));
    let f = figures(&sim, &truth);
    assert_eq!(f.get("false_deaths"), Some(0.0), "{:?}", f.evidence);
    assert_eq!(f.get("false_suspicions"), Some(0.0), "{:?}", f.evidence);
    assert_eq!(
        f.get("undeclared_pairs"),
        Some(0.0),
        "a survivor never declared node {CRASHED} dead: {:?}",
        f.evidence
    );
    let death_ms = f.get("death_ms_max").expect("every death timed");
    assert!(death_ms > 0.0 && death_ms < 20_000.0, "{death_ms} ms");
    assert!(f.get("join_converged_ms").is_some(), "the five joined");
    assert_eq!(
        f.get("final_converged"),
        Some(1.0),
        "the survivors agree with the truth"
    );
}

#[test]
fn against_a_truth_without_the_crash_each_survivors_declaration_is_a_false_death() {
    let sim = run_with_a_crash();
    let f = figures(&sim, &starts());
    assert_eq!(f.get("false_deaths"), Some(f64::from(NODES - 1)), "{:?}", f.evidence);
    assert!(
        f.evidence
            .iter()
            .any(|e| e.starts_with("false death:") && e.contains(&format!("declared node {CRASHED} dead"))),
        "{:?}",
        f.evidence
    );
}
