//! A reference workload for measuring the simulator itself: `testbed bench simspeed` runs it, the
//! criterion benches time it, and `benches/simspeed.sh` runs the same workload on turmoil and
//! madsim so the figures compare.
//!
//! Workload: N hosts; every 100 ms of simulated time each sends one 64-byte datagram to every other
//! host, for D simulated seconds (rounds at 0, 100 ms, … D − 100 ms); links are a constant 1 ms
//! with no loss. Every host counts what it receives; the run fails unless the count is exactly
//! N·(N−1)·10·D.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::{LinkModel, NetworkModel, NodeSpec, SimTime, Simulation};
use bytes::Bytes;
use runtime::{Actor, Env, Instant};
use serde::Serialize;

/// The period between two rounds of sends.
const ROUND: Duration = Duration::from_millis(100);
/// Bytes per datagram.
const PAYLOAD_BYTES: usize = 64;
/// Rounds per simulated second.
pub const ROUNDS_PER_SECOND: u64 = 10;
/// Time left after the last round for its datagrams to land (links are 1 ms).
const DRAIN: Duration = Duration::from_millis(50);

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct FloodRun {
    /// Which simulator: always "testbed" here.
    pub sim: &'static str,
    /// Hosts.
    pub nodes: u32,
    /// Simulated seconds of sending.
    pub sim_seconds: u64,
    /// Wall-clock seconds of the run (setup excluded).
    pub wall_seconds: f64,
    /// Datagrams the hosts counted.
    pub delivered: u64,
    /// Datagrams the workload sends: N·(N−1)·10·D.
    pub expected: u64,
    /// `delivered / wall_seconds`.
    pub delivered_per_wall_second: f64,
    /// Events the simulator dispatched (deliveries and timers).
    pub events: u64,
    /// The run's trace hash: the workload is deterministic like any other run.
    pub trace_hash: String,
}

/// One host: a round timer that sends to every peer, and a receive counter.
struct Flooder {
    peers: Rc<[SocketAddr]>,
    me: usize,
    rounds_left: u64,
    received: Rc<Cell<u64>>,
    payload: Bytes,
}

impl Actor for Flooder {
    fn on_start(&mut self, env: &mut dyn Env) {
        let now = env.now();
        env.set_timer(now, 0);
    }

    fn on_datagram(&mut self, _env: &mut dyn Env, _from: SocketAddr, _payload: Bytes) {
        self.received.set(self.received.get() + 1);
    }

    fn on_timer(&mut self, env: &mut dyn Env, _token: u64) {
        if self.rounds_left == 0 {
            return;
        }
        self.rounds_left -= 1;
        for (i, peer) in self.peers.iter().enumerate() {
            if i != self.me {
                // A clean network refuses nothing; a refusal here is a simulator bug the count
                // check below reports.
                let _ = env.send_to(*peer, self.payload.clone());
            }
        }
        let next: Instant = env.now() + ROUND;
        env.set_timer(next, 0);
    }
}

/// Runs the workload with `nodes` hosts for `seconds` simulated seconds over `link`; `elapsed`
/// reads the wall clock (the simulator itself never does). With a lossy `link`, `delivered` falls
/// short of `expected` by the losses.
pub fn run(nodes: u32, seconds: u64, link: LinkModel, elapsed: impl Fn() -> Duration) -> FloodRun {
    let peers: Rc<[SocketAddr]> = (0..nodes)
        .map(|i| {
            SocketAddr::new(
                std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, (i >> 16) as u16, i as u16).into(),
                7000,
            )
        })
        .collect();
    let counters: Vec<Rc<Cell<u64>>> = (0..nodes).map(|_| Rc::new(Cell::new(0))).collect();
    let rounds = seconds * ROUNDS_PER_SECOND;
    let factory_peers = Rc::clone(&peers);
    let factory_counters = counters.clone();
    let payload = Bytes::from(vec![0xA5u8; PAYLOAD_BYTES]);
    let factory = move |node: u32| {
        Box::new(Flooder {
            peers: Rc::clone(&factory_peers),
            me: node as usize,
            rounds_left: rounds,
            received: Rc::clone(&factory_counters[node as usize]),
            payload: payload.clone(),
        }) as Box<dyn Actor>
    };
    let mut sim = Simulation::new(1, NetworkModel::new(link), Box::new(factory));
    for addr in peers.iter() {
        sim.add_node(NodeSpec {
            addrs: vec![*addr],
            ..NodeSpec::default()
        });
    }
    let end = SimTime::ZERO
        .after(ROUND * u32::try_from(rounds).unwrap_or(u32::MAX))
        .after(DRAIN);
    let started = elapsed();
    sim.run_until(end, |_| {});
    let wall = (elapsed() - started).as_secs_f64();
    let delivered: u64 = counters.iter().map(|c| c.get()).sum();
    let n = u64::from(nodes);
    FloodRun {
        sim: "testbed",
        nodes,
        sim_seconds: seconds,
        wall_seconds: wall,
        delivered,
        expected: n * n.saturating_sub(1) * ROUNDS_PER_SECOND * seconds,
        delivered_per_wall_second: delivered as f64 / wall.max(f64::MIN_POSITIVE),
        events: sim.stats().events,
        trace_hash: sim.trace_hash(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_every_datagram_of_every_round() {
        let r = run(7, 2, LinkModel::default(), || Duration::ZERO);
        assert_eq!(r.expected, 7 * 6 * 10 * 2);
        assert_eq!(r.delivered, r.expected);
    }

    #[test]
    fn repeats_bit_for_bit() {
        assert_eq!(
            run(5, 1, LinkModel::default(), || Duration::ZERO).trace_hash,
            run(5, 1, LinkModel::default(), || Duration::ZERO).trace_hash
        );
    }
}
