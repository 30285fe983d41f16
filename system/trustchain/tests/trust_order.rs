//! Trust updates arrive late, twice, out of order, or replayed by anyone who recorded them: a
//! node takes none that is older than what it holds, so a revoked node stays refused.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use runtime::host::{BareDatagrams, Host};
use runtime::{Actor, DetRng};
use simulator::{Intercepted, Interceptor, LinkEnds, NetworkModel, NodeSpec, SimTime, Simulation, SIM_EPOCH_UNIX_SECS};
use trustchain::ca::NodeIdentity;
use trustchain::enroll::{Grant, TokenKey};
use trustchain::node::wire::Message;
use trustchain::node::{AuthorityConfig, TrustNode, TrustNodeConfig};
use trustchain::testing::{analyse, Observed};

const NODES: u32 = 4;
const REVOKED: u32 = 3;
const SECRET: [u8; 32] = [9; 32];

fn addr(i: u32) -> SocketAddr {
    format!("[fd00::{}]:7000", i + 1).parse().unwrap()
}

/// Keeps a copy of every bundle message the CA sends before `until`.
struct Recorder {
    until: SimTime,
    now: Arc<Mutex<SimTime>>,
    bundles: Arc<Mutex<Vec<Bytes>>>,
}

impl Interceptor for Recorder {
    fn intercept(&mut self, link: LinkEnds, payload: Bytes, _: &mut DetRng) -> Intercepted {
        let early = *self.now.lock().unwrap() < self.until;
        if link.from_node == 0 && early && payload.len() > 1 {
            if let Ok(Message::Bundle { .. }) = Message::decode(&payload.slice(1..)) {
                self.bundles.lock().unwrap().push(payload.clone());
            }
        }
        Intercepted::Pass(payload)
    }
}

fn simulation() -> Simulation {
    let peers: Vec<SocketAddr> = (0..NODES).map(addr).collect();
    let tokens = TokenKey::new(&SECRET);
    let factory = move |i: u32| -> Box<dyn Actor> {
        let grant = Grant {
            identity: NodeIdentity {
                name: format!("node-{i}.mesh"),
                addr: match addr(i).ip() {
                    std::net::IpAddr::V6(a) => a,
                    std::net::IpAddr::V4(_) => unreachable!("the test's addresses are IPv6"),
                },
            },
            expires: SIM_EPOCH_UNIX_SECS + 86_400,
            id: u64::from(i) + 1,
        };
        let mut config = TrustNodeConfig::new(i as usize, peers.clone(), 0, tokens.issue(&grant));
        config.handshake_interval = Duration::from_secs(2);
        config.bundle_refresh = Duration::from_secs(5);
        if i == 0 {
            let mut authority = AuthorityConfig::new(SECRET);
            authority.revocations = vec![(Duration::from_secs(30), REVOKED as usize)];
            config.authority = Some(authority);
        }
        Box::new(Host::new(BareDatagrams).mount(trustchain::node::MOUNT, TrustNode::new(config)))
    };
    let mut sim = Simulation::new(3, NetworkModel::default(), Box::new(factory));
    for i in 0..NODES {
        sim.add_node(NodeSpec {
            addrs: vec![addr(i)],
            ..NodeSpec::default()
        });
    }
    sim
}

#[test]
fn replayed_duplicated_and_reordered_bundles_never_unrevoke_a_node() {
    let mut sim = simulation();
    let bundles = Arc::new(Mutex::new(Vec::new()));
    let now = Arc::new(Mutex::new(SimTime::ZERO));
    sim.set_interceptor(Box::new(Recorder {
        until: SimTime::from_millis(25_000),
        now: now.clone(),
        bundles: bundles.clone(),
    }));
    let mut step = 0u64;
    while step < 25_000 {
        step += 100;
        sim.run_until(SimTime::from_millis(step), |_| {});
        *now.lock().unwrap() = sim.now();
    }
    let old: Vec<Bytes> = bundles.lock().unwrap().clone();
    assert!(!old.is_empty(), "the CA sent no bundle before the revocation");
    // After the revocation (30 s) reaches everyone: every recorded bundle, newest first (out of
    // order), each twice, to both honest nodes, every 5 s, as if from the CA.
    for (k, at_s) in (60..200).step_by(5).enumerate() {
        for (j, message) in old.iter().rev().enumerate() {
            for to in [1, 2] {
                for copy in 0..2u64 {
                    let at = SimTime::from_millis(at_s * 1000 + (j as u64) * 10 + copy + k as u64 % 3);
                    sim.forge(at, addr(0), addr(to), message.clone());
                }
            }
        }
    }
    sim.run_until(SimTime::from_millis(200_000), |_| {});
    let observed: Vec<Observed<'_>> = sim
        .probes()
        .iter()
        .map(|r| Observed {
            at: Duration::from_nanos(r.at.as_nanos()),
            node: r.node,
            probe: &r.probe,
        })
        .collect();
    let figures = analyse(&observed, &vec![Duration::ZERO; NODES as usize]);
    assert_eq!(figures.metrics["revocations"], Some(1.0));
    assert!(
        figures.metrics["revoked_refusals"].unwrap_or(0.0) > 0.0,
        "nobody refused the revoked node: the test shows nothing"
    );
    assert_eq!(
        figures.metrics["revoked_accepted"],
        Some(0.0),
        "a replayed bundle un-revoked node {REVOKED}"
    );
    let stale = |node: u32| {
        sim.probes()
            .iter()
            .filter(|r| r.node == node && r.probe.name == "tc_trust_stale")
            .count()
    };
    assert!(stale(1) > 0 && stale(2) > 0, "the replays never reached the nodes");
}
