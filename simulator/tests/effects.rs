//! Faults count what they did, not that they were scheduled; storage faults are reached by
//! crashing nodes at storage calls; and the trace hash covers every fault's effect.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use runtime::{Actor, Env, Probe};
use simulator::{FaultAction, NetworkModel, NodeSet, NodeSpec, SimTime, Simulation, StorageFaults};

fn addr(i: u32) -> SocketAddr {
    format!("[fd00::{}]:7000", i + 1).parse().unwrap()
}

/// Every 10 ms: appends a counter to its log file, syncs it, then tells node 0 the counter (the
/// order of a write-ahead log: durable first, then announced). At start, probes how many whole
/// records it recovered, and whether the file's tail was torn or garbled.
struct Logger {
    next: u64,
    ignore_errors: bool,
}

const RECORD: usize = 16;

impl Actor for Logger {
    fn on_start(&mut self, env: &mut dyn Env) {
        let bytes = env.read_at("log", 0, 1 << 20).unwrap_or_default();
        let whole = bytes.len() / RECORD;
        let mut valid = 0u64;
        for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
            // A record is its counter twice: a torn one has the first half only.
            if record[..8] == record[8..] && u64::from_be_bytes(record[..8].try_into().unwrap()) == i as u64 {
                valid += 1;
            } else {
                break;
            }
        }
        env.probe(Probe::new("recovered", valid, (bytes.len() - whole * RECORD) as i64));
        // Recover to the last whole, valid record; drop a torn tail.
        let _ = env.truncate("log", valid * RECORD as u64);
        let _ = env.sync("log");
        self.next = valid;
        let at = env.now() + Duration::from_millis(10);
        env.set_timer(at, 0);
    }

    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        let n = u64::from_be_bytes(payload[..8].try_into().unwrap());
        let sender = match from.ip() {
            std::net::IpAddr::V6(v6) => u64::from(v6.segments()[7]) - 1,
            std::net::IpAddr::V4(_) => unreachable!("the test's nodes are IPv6"),
        };
        env.probe(Probe::new("announced", sender, n as i64));
    }

    fn on_timer(&mut self, env: &mut dyn Env, _token: u64) {
        let mut record = [0u8; RECORD];
        record[..8].copy_from_slice(&self.next.to_be_bytes());
        record[8..].copy_from_slice(&self.next.to_be_bytes());
        let wrote = env.write_at("log", self.next * RECORD as u64, &record);
        let synced = env.sync("log");
        if self.ignore_errors || (wrote.is_ok() && synced.is_ok()) {
            let _ = env.send_to(addr(0), Bytes::copy_from_slice(&self.next.to_be_bytes()));
            self.next += 1;
        }
        let at = env.now() + Duration::from_millis(10);
        env.set_timer(at, 0);
    }
}

fn simulation(seed: u64, nodes: u32, storage: StorageFaults, ignore_errors: bool) -> Simulation {
    let factory = move |_: u32| -> Box<dyn Actor> { Box::new(Logger { next: 0, ignore_errors }) };
    let mut sim = Simulation::new(seed, NetworkModel::default(), Box::new(factory));
    for i in 0..nodes {
        sim.add_node(NodeSpec {
            addrs: vec![addr(i)],
            storage_faults: storage,
            ..NodeSpec::default()
        });
    }
    sim
}

#[test]
fn a_crash_counts_the_nodes_it_took_down_not_the_actions() {
    let mut sim = simulation(1, 4, StorageFaults::default(), false);
    let nodes = |v: &[u32]| NodeSet::from_indices(v.iter().copied());
    sim.schedule(SimTime::from_millis(100), FaultAction::Crash(nodes(&[1, 2, 3])));
    // Node 1 is already down: this crash does nothing.
    sim.schedule(SimTime::from_millis(200), FaultAction::Crash(nodes(&[1])));
    // Node 0 is running: this restart does nothing; node 2's does.
    sim.schedule(SimTime::from_millis(300), FaultAction::Restart(nodes(&[0, 2])));
    // Nobody is partitioned yet: this heal heals nothing.
    sim.schedule(SimTime::from_millis(400), FaultAction::Heal);
    sim.run_until(SimTime::from_millis(500), |_| {});
    assert_eq!(sim.faults().get("crash"), 3, "three nodes went down");
    assert_eq!(sim.faults().get("restart"), 1, "one node came back");
    assert_eq!(sim.faults().get("heal"), 0);
    let applied: Vec<(&str, u64, Vec<u32>)> = sim
        .applied_faults()
        .iter()
        .map(|f| (f.kind, f.effects, f.nodes.clone()))
        .collect();
    assert_eq!(
        applied,
        vec![
            ("crash", 3, vec![1, 2, 3]),
            ("crash", 0, vec![]),
            ("restart", 1, vec![2]),
            ("heal", 0, vec![]),
        ]
    );
}

#[test]
fn crashes_at_storage_calls_tear_and_lose_writes_and_nothing_after_them_happens() {
    let storage = StorageFaults {
        crash_at_io: 0.02,
        torn_writes: true,
        crash_restart_after: Duration::from_millis(50),
        ..StorageFaults::default()
    };
    let mut sim = simulation(7, 4, storage, false);
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    let faults = sim.faults();
    assert!(faults.get("crash_at_io") > 10, "crashes at storage calls: {faults:?}");
    assert!(
        faults.get("torn_write") > 0,
        "a write torn by a crash before its sync: {faults:?}"
    );
    assert!(faults.get("unsynced_write_lost") > 0, "{faults:?}");
    let due = sim
        .applied_faults()
        .iter()
        .filter(|f| f.kind == "crash_at_io" && f.at.as_nanos() + 50_000_000 <= 20_000_000_000)
        .count() as u64;
    assert_eq!(faults.get("restart"), due, "every struck node restarts when due");
    // Announcements follow the sync, so a node's announcements only ever rise: a record it
    // announced was durable and is recovered after any crash. Were anything the actor did after
    // the crash struck to happen (a send after a sync that never ran), a lost record would be
    // announced twice.
    for sender in 1..4u64 {
        let announced: Vec<i64> = sim
            .probes()
            .iter()
            .filter(|p| p.probe.name == "announced" && p.probe.subject == sender)
            .map(|p| p.probe.value)
            .collect();
        assert!(announced.len() > 100, "node {sender} announced {}", announced.len());
        assert!(
            announced.windows(2).all(|w| w[0] < w[1]),
            "node {sender} announced a record twice: {announced:?}"
        );
    }
    let torn_seen = sim
        .probes()
        .iter()
        .any(|p| p.probe.name == "recovered" && p.probe.value > 0);
    assert!(torn_seen, "a restart found a torn tail");
}

#[test]
fn a_storage_fault_the_actor_never_notices_still_changes_the_trace_hash() {
    let run = |io_error: f64| {
        let storage = StorageFaults {
            io_error,
            ..StorageFaults::default()
        };
        let mut sim = simulation(3, 2, storage, true);
        sim.run_until(SimTime::from_millis(1_000), |_| {});
        (sim.trace_hash(), sim.faults().get("storage_io_error"))
    };
    let (clean, none) = run(0.0);
    let (faulty, some) = run(0.05);
    assert_eq!(none, 0);
    assert!(some > 0, "no error was injected");
    assert_ne!(clean, faulty, "errors the actor ignores left the hash as it was");
}

/// A `Write` the test keeps a handle on.
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every datagram a lossy link loses is in the trace, named as lost, with its ends: a reader of
/// the trace sees why a message never arrived, as for a partition or a down node.
#[test]
fn every_datagram_a_lossy_link_loses_is_traced_as_a_drop() {
    let factory = |_: u32| -> Box<dyn Actor> {
        Box::new(Logger {
            next: 0,
            ignore_errors: true,
        })
    };
    let lossy = simulator::LinkModel {
        loss: 0.2,
        ..simulator::LinkModel::default()
    };
    let mut sim = Simulation::new(5, NetworkModel::new(lossy), Box::new(factory));
    for i in 0..3 {
        sim.add_node(NodeSpec {
            addrs: vec![addr(i)],
            ..NodeSpec::default()
        });
    }
    let out = Shared::default();
    sim.set_trace(simulator::trace::TraceWriter::new(Box::new(out.clone())));
    sim.run_until(SimTime::from_millis(1_000), |_| {});
    sim.take_trace().expect("a trace").finish().expect("written");
    let text = String::from_utf8(out.0.borrow().clone()).expect("JSON lines");
    let lost = text
        .lines()
        .filter(|l| l.contains(r#""kind":"drop""#) && l.contains(r#""reason":"loss""#))
        .count() as u64;
    assert!(sim.faults().get("message_loss") > 0, "the link lost nothing");
    assert_eq!(lost, sim.faults().get("message_loss"), "{text}");
}
