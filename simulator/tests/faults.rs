//! The simulator's faults, each observed through what an actor sees.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use runtime::{Actor, Env, Instant, Probe, SendError};
use simulator::{
    ClockModel, FaultAction, Intercepted, Interceptor, LinkEnds, LinkModel, NetworkModel, NodeSet, NodeSpec, SimTime,
    Simulation,
};

fn v6(i: u16) -> SocketAddr {
    format!("[fd00::{i}]:7000").parse().unwrap()
}

fn v4(i: u8) -> SocketAddr {
    format!("10.0.0.{i}:7000").parse().unwrap()
}

/// Sends a numbered datagram to `peer` every 10 ms of its own clock; records each receipt as a
/// `got` probe (subject = sequence number) and each send error as `send_error`.
struct Chatter {
    peer: Option<SocketAddr>,
    seq: u64,
}

impl Actor for Chatter {
    fn on_start(&mut self, env: &mut dyn Env) {
        env.probe(Probe::new("start", 0, 0));
        let at = env.now() + Duration::from_millis(10);
        env.set_timer(at, 0);
    }
    fn on_datagram(&mut self, env: &mut dyn Env, _from: SocketAddr, payload: Bytes) {
        let seq = u64::from_be_bytes(payload[..8].try_into().unwrap());
        env.probe(Probe::new("got", seq, 0));
    }
    fn on_timer(&mut self, env: &mut dyn Env, _token: u64) {
        if let Some(peer) = self.peer {
            self.seq += 1;
            if let Err(e) = env.send_to(peer, Bytes::copy_from_slice(&self.seq.to_be_bytes())) {
                let family_error = matches!(e, SendError::AddressFamilyNotSupported { .. });
                env.probe(Probe::new("send_error", u64::from(family_error), 0));
            }
        }
        let at = env.now() + Duration::from_millis(10);
        env.set_timer(at, 0);
    }
}

fn pair(seed: u64, link: LinkModel, a: Vec<SocketAddr>, b: Vec<SocketAddr>, target: SocketAddr) -> Simulation {
    let factory = move |node: u32| -> Box<dyn Actor> {
        Box::new(Chatter {
            peer: (node == 0).then_some(target),
            seq: 0,
        })
    };
    let mut sim = Simulation::new(seed, NetworkModel::new(link), Box::new(factory));
    sim.add_node(NodeSpec {
        addrs: a,
        ..NodeSpec::default()
    });
    sim.add_node(NodeSpec {
        addrs: b,
        ..NodeSpec::default()
    });
    sim
}

fn got(sim: &Simulation, node: u32) -> Vec<u64> {
    sim.probes()
        .iter()
        .filter(|p| p.node == node && p.probe.name == "got")
        .map(|p| p.probe.subject)
        .collect()
}

#[test]
fn same_seed_same_trace_and_different_seed_different_trace() {
    let link = LinkModel {
        jitter: Duration::from_millis(20),
        loss: 0.1,
        ..LinkModel::default()
    };
    let run = |seed| {
        let mut sim = pair(seed, link, vec![v6(1)], vec![v6(2)], v6(2));
        sim.run_until(SimTime::from_millis(2000), |_| {});
        (sim.trace_hash(), got(&sim, 1))
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5).0, run(6).0);
}

#[test]
fn a_two_way_partition_stops_traffic_until_healed_and_counts_drops() {
    let mut sim = pair(1, LinkModel::default(), vec![v6(1)], vec![v6(2)], v6(2));
    sim.schedule(
        SimTime::from_millis(500),
        FaultAction::Partition {
            a: NodeSet::from_indices([0]),
            b: NodeSet::from_indices([1]),
            one_way: false,
        },
    );
    sim.schedule(SimTime::from_millis(1000), FaultAction::Heal);
    sim.run_until(SimTime::from_millis(1500), |_| {});
    let during: Vec<_> = sim
        .probes()
        .iter()
        .filter(|p| p.probe.name == "got" && p.at > SimTime::from_millis(502) && p.at < SimTime::from_millis(1000))
        .collect();
    assert!(during.is_empty(), "delivered during the partition: {during:?}");
    assert!(sim.faults().get("partition_drop") >= 45);
    assert!(got(&sim, 1).len() > 90);
}

#[test]
fn a_one_way_partition_blocks_only_its_direction() {
    let factory = |node: u32| -> Box<dyn Actor> {
        Box::new(Chatter {
            peer: Some(v6(if node == 0 { 2 } else { 1 })),
            seq: 0,
        })
    };
    let mut sim = Simulation::new(1, NetworkModel::default(), Box::new(factory));
    sim.add_node(NodeSpec {
        addrs: vec![v6(1)],
        ..NodeSpec::default()
    });
    sim.add_node(NodeSpec {
        addrs: vec![v6(2)],
        ..NodeSpec::default()
    });
    sim.schedule(
        SimTime::ZERO,
        FaultAction::Partition {
            a: NodeSet::from_indices([0]),
            b: NodeSet::from_indices([1]),
            one_way: true,
        },
    );
    sim.run_until(SimTime::from_millis(500), |_| {});
    assert!(got(&sim, 1).is_empty());
    assert!(got(&sim, 0).len() > 40);
}

#[test]
fn an_ipv6_only_node_cannot_send_to_ipv4_and_a_dual_stack_node_can() {
    let mut sim = pair(1, LinkModel::default(), vec![v6(1)], vec![v4(2)], v4(2));
    sim.run_until(SimTime::from_millis(200), |_| {});
    assert!(got(&sim, 1).is_empty());
    assert!(sim
        .probes()
        .iter()
        .any(|p| p.probe.name == "send_error" && p.probe.subject == 1));
    assert!(sim.stats().send_address_family_errors > 0);

    let mut dual = pair(1, LinkModel::default(), vec![v6(1), v4(1)], vec![v4(2)], v4(2));
    dual.run_until(SimTime::from_millis(200), |_| {});
    assert!(!got(&dual, 1).is_empty());
}

#[test]
fn loss_duplication_and_reordering_fire_and_are_counted() {
    let link = LinkModel {
        loss: 0.2,
        duplicate: 0.2,
        reorder: 0.3,
        reorder_window: Duration::from_millis(50),
        ..LinkModel::default()
    };
    let mut sim = pair(3, link, vec![v6(1)], vec![v6(2)], v6(2));
    sim.run_until(SimTime::from_millis(10_000), |_| {});
    let received = got(&sim, 1);
    let faults = sim.faults();
    assert!(
        faults.get("message_loss") > 100
            && faults.get("message_duplicate") > 100
            && faults.get("message_reorder") > 100
    );
    let mut sorted = received.clone();
    sorted.sort_unstable();
    assert_ne!(received, sorted, "nothing arrived out of order");
    sorted.dedup();
    assert!(sorted.len() < received.len(), "no duplicate arrived");
}

#[test]
fn a_crashed_node_loses_timers_and_restarts_from_storage_only() {
    struct Counter;
    impl Actor for Counter {
        fn on_start(&mut self, env: &mut dyn Env) {
            let bytes = env.read_all("boots").unwrap();
            let boots = if bytes.len() == 8 {
                u64::from_be_bytes(bytes.try_into().unwrap())
            } else {
                0
            } + 1;
            env.write_all_synced("boots", &boots.to_be_bytes()).unwrap();
            env.write_at("unsynced", 0, b"lost?").unwrap();
            env.probe(Probe::new("boot", boots, 0));
            let at = env.now() + Duration::from_millis(100);
            env.set_timer(at, 1);
        }
        fn on_datagram(&mut self, _: &mut dyn Env, _: SocketAddr, _: Bytes) {}
        fn on_timer(&mut self, env: &mut dyn Env, _: u64) {
            env.probe(Probe::new("tick", 0, 0));
            let at = env.now() + Duration::from_millis(100);
            env.set_timer(at, 1);
        }
    }
    let mut sim = Simulation::new(
        2,
        NetworkModel::default(),
        Box::new(|_| Box::new(Counter) as Box<dyn Actor>),
    );
    sim.add_node(NodeSpec {
        addrs: vec![v6(1)],
        ..NodeSpec::default()
    });
    sim.schedule(
        SimTime::from_millis(250),
        FaultAction::Crash(NodeSet::from_indices([0])),
    );
    sim.schedule(
        SimTime::from_millis(1000),
        FaultAction::Restart(NodeSet::from_indices([0])),
    );
    sim.run_until(SimTime::from_millis(1150), |_| {});
    let boots: Vec<u64> = sim
        .probes()
        .iter()
        .filter(|p| p.probe.name == "boot")
        .map(|p| p.probe.subject)
        .collect();
    assert_eq!(boots, vec![1, 2], "the synced boot count survived the crash");
    let silent = sim
        .probes()
        .iter()
        .any(|p| p.probe.name == "tick" && p.at > SimTime::from_millis(250) && p.at < SimTime::from_millis(1000));
    assert!(!silent, "a timer of the crashed node fired");
    assert_eq!(sim.faults().get("crash"), 1);
    assert_eq!(sim.faults().get("restart"), 1);
}

#[test]
fn a_paused_node_receives_held_input_when_it_resumes() {
    let mut sim = pair(1, LinkModel::default(), vec![v6(1)], vec![v6(2)], v6(2));
    sim.schedule(
        SimTime::from_millis(100),
        FaultAction::Pause {
            nodes: NodeSet::from_indices([1]),
            duration: Duration::from_millis(300),
        },
    );
    sim.run_until(SimTime::from_millis(600), |_| {});
    let during = sim
        .probes()
        .iter()
        .filter(|p| p.node == 1 && p.at > SimTime::from_millis(100) && p.at < SimTime::from_millis(400))
        .count();
    assert_eq!(during, 0);
    let at_resume = sim
        .probes()
        .iter()
        .filter(|p| p.node == 1 && p.probe.name == "got" && p.at == SimTime::from_millis(400))
        .count();
    assert!(
        at_resume >= 29,
        "held datagrams were not delivered at resumption: {at_resume}"
    );
    assert_eq!(got(&sim, 1).len(), 59, "nothing is lost by a pause");
}

#[test]
fn clock_offset_jump_and_correction_reach_the_wall_clock_and_drift_the_timers() {
    struct Watch;
    impl Actor for Watch {
        fn on_start(&mut self, env: &mut dyn Env) {
            let at = env.now() + Duration::from_secs(10);
            env.set_timer(at, 0);
        }
        fn on_datagram(&mut self, _: &mut dyn Env, _: SocketAddr, _: Bytes) {}
        fn on_timer(&mut self, env: &mut dyn Env, _: u64) {
            env.probe(Probe::new("wall_ms", 0, env.wall_now().as_unix_millis()));
            assert!(env.now() >= Instant::from_nanos(10_000_000_000));
        }
    }
    let mut sim = Simulation::new(
        1,
        NetworkModel::default(),
        Box::new(|_| Box::new(Watch) as Box<dyn Actor>),
    );
    sim.add_node(NodeSpec {
        addrs: vec![v6(1)],
        clock: ClockModel {
            offset_ns: 7_200_000_000_000,
            drift_ppb: 100_000,
        },
        ..NodeSpec::default()
    });
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    let fired = sim.probes().iter().find(|p| p.probe.name == "wall_ms").unwrap();
    // 100 ppm fast: ten local seconds pass in 9.999 true seconds.
    assert_eq!(fired.at, SimTime::from_nanos(9_999_000_100));
    let expected_wall_ms = (simulator::SIM_EPOCH_UNIX_SECS * 1000) + 7_200_000 + 10_000;
    assert_eq!(fired.probe.value, expected_wall_ms);
    sim.schedule(
        SimTime::from_millis(20_000),
        FaultAction::ClockJump {
            nodes: NodeSet::from_indices([0]),
            delta_ns: -3_000_000_000,
        },
    );
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    assert_eq!(sim.wall_error_ns(0), 7_200_000_000_000 + 2_000_000 - 3_000_000_000);
    sim.schedule(
        SimTime::from_millis(20_000),
        FaultAction::ClockCorrect(NodeSet::from_indices([0])),
    );
    sim.run_until(SimTime::from_millis(20_000), |_| {});
    assert_eq!(sim.wall_error_ns(0), 0);
}

#[test]
fn bandwidth_queues_datagrams_behind_each_other() {
    struct Burst;
    impl Actor for Burst {
        fn on_start(&mut self, env: &mut dyn Env) {
            for _ in 0..10 {
                env.send_to(v6(2), Bytes::from(vec![0u8; 1000])).unwrap();
            }
        }
        fn on_datagram(&mut self, env: &mut dyn Env, _: SocketAddr, _: Bytes) {
            env.probe(Probe::new("got", 0, 0));
        }
        fn on_timer(&mut self, _: &mut dyn Env, _: u64) {}
    }
    // 1 MB/s: each 1000-byte datagram takes 1 ms on the wire.
    let link = LinkModel {
        bandwidth_bytes_per_s: Some(1_000_000),
        ..LinkModel::default()
    };
    let mut sim = Simulation::new(
        1,
        NetworkModel::new(link),
        Box::new(|_| Box::new(Burst) as Box<dyn Actor>),
    );
    sim.add_node(NodeSpec {
        addrs: vec![v6(1)],
        ..NodeSpec::default()
    });
    sim.add_node(NodeSpec {
        addrs: vec![v6(2)],
        ..NodeSpec::default()
    });
    sim.run_until(SimTime::from_millis(100), |_| {});
    let last = sim
        .probes()
        .iter()
        .filter(|p| p.probe.name == "got")
        .map(|p| p.at)
        .max()
        .unwrap();
    assert_eq!(
        last,
        SimTime::from_millis(11),
        "10 ms of serialisation plus 1 ms latency"
    );
}

#[test]
fn interceptors_mutate_and_drop_and_forged_datagrams_arrive_and_all_are_counted() {
    struct FlipEveryOther(u64);
    impl Interceptor for FlipEveryOther {
        fn intercept(&mut self, _: LinkEnds, payload: Bytes, _: &mut runtime::DetRng) -> Intercepted {
            self.0 += 1;
            match self.0 % 3 {
                0 => Intercepted::Dropped,
                1 => Intercepted::Mutated(Bytes::copy_from_slice(&(1_000_000 + self.0).to_be_bytes())),
                _ => Intercepted::Pass(payload),
            }
        }
    }
    let mut sim = pair(1, LinkModel::default(), vec![v6(1)], vec![v6(2)], v6(2));
    sim.set_interceptor(Box::new(FlipEveryOther(0)));
    sim.forge(
        SimTime::from_millis(5),
        v6(9),
        v6(2),
        Bytes::copy_from_slice(&42u64.to_be_bytes()),
    );
    sim.run_until(SimTime::from_millis(305), |_| {});
    let received = got(&sim, 1);
    assert!(received.contains(&42), "the forged datagram did not arrive");
    assert!(received.iter().any(|s| *s > 1_000_000), "no mutated datagram arrived");
    assert_eq!(sim.faults().get("byzantine_drop"), 10);
    assert_eq!(sim.faults().get("byzantine_mutation"), 10);
    assert_eq!(sim.faults().get("byzantine_forge"), 1);
}

#[test]
fn a_paused_node_holds_a_socket_buffer_of_datagrams_and_drops_the_rest_counted() {
    /// Node 0 sends a burst larger than a paused node's buffer; node 1 counts what it gets.
    struct Flood;
    impl Actor for Flood {
        fn on_start(&mut self, env: &mut dyn Env) {
            if env.local_addrs()[0] == v6(1) {
                let at = env.now() + Duration::from_millis(50);
                env.set_timer(at, 0);
            }
        }
        fn on_datagram(&mut self, env: &mut dyn Env, _: SocketAddr, _: Bytes) {
            env.probe(Probe::new("got", 0, 0));
        }
        fn on_timer(&mut self, env: &mut dyn Env, _: u64) {
            for _ in 0..simulator::STALLED_DATAGRAMS_MAX + 100 {
                env.send_to(v6(2), Bytes::from_static(b"x")).unwrap();
            }
        }
    }
    let mut sim = Simulation::new(
        1,
        NetworkModel::default(),
        Box::new(|_| Box::new(Flood) as Box<dyn Actor>),
    );
    for i in 1..=2 {
        sim.add_node(NodeSpec {
            addrs: vec![v6(i)],
            ..NodeSpec::default()
        });
    }
    sim.schedule(
        SimTime::from_millis(10),
        FaultAction::Pause {
            nodes: NodeSet::from_indices([1]),
            duration: Duration::from_millis(500),
        },
    );
    sim.run_until(SimTime::from_millis(1000), |_| {});
    let got = sim
        .probes()
        .iter()
        .filter(|p| p.node == 1 && p.probe.name == "got")
        .count();
    assert_eq!(
        got,
        simulator::STALLED_DATAGRAMS_MAX,
        "the buffer's worth is delivered at resumption"
    );
    assert_eq!(
        sim.faults().get("pause_overflow"),
        100,
        "the overflow is counted, not silent"
    );
}
