//! Nodes that start with no certificate, enroll through the TrustChain node protocol on a bare
//! channel beside QUIC, and talk over STOQ with whatever TrustChain issues them
//! (`TrustChainCredentials`), in the deterministic simulator.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use runtime::host::{Channel, Context, Host, Mount, Protocol};
use runtime::{Actor, Clock, DetRng};
use simulator::{Intercepted, Interceptor, LinkEnds, NetworkModel, NodeSpec, SimTime, Simulation, SIM_EPOCH_UNIX_SECS};
use stoq::{Randomness, Stoq, StoqConfig, Trust, TrustChainCredentials, BARE_CHANNELS_END};
use trustchain::ca::NodeIdentity;
use trustchain::enroll::{Grant, TokenKey};
use trustchain::node::{AuthorityConfig, TrustNode, TrustNodeConfig};

const NODES: u32 = 3;
const CHAT: Mount = Mount::new("chat", Channel(9));
const SECRET: [u8; 32] = [7; 32];

fn addr(i: u32) -> SocketAddr {
    format!("[fd00::{}]:7000", i + 1).parse().unwrap()
}

type Heard = Arc<Mutex<Vec<(u32, SocketAddr, String)>>>;

/// Says hello to every other node at start and every half second after, over STOQ, and logs
/// what it hears.
struct Chat {
    me: u32,
    heard: Heard,
}

impl Protocol for Chat {
    type Timer = ();

    fn on_start(&mut self, cx: &mut Context<'_, ()>) {
        // At once: before TrustChain can have enrolled the node.
        let at = cx.now();
        cx.set_timer(at, ());
    }

    fn on_message(&mut self, _: &mut Context<'_, ()>, from: SocketAddr, payload: Bytes) {
        let text = String::from_utf8_lossy(&payload).into_owned();
        self.heard.lock().unwrap().push((self.me, from, text));
    }

    fn on_timer(&mut self, cx: &mut Context<'_, ()>, (): ()) {
        for peer in (0..NODES).filter(|p| *p != self.me) {
            let _ = cx.send_to(addr(peer), Bytes::from(format!("hello from {}", self.me)));
        }
        let at = cx.now() + Duration::from_millis(500);
        cx.set_timer(at, ());
    }
}

/// A run of three nodes (node 0 the CA, leaves living `leaf_lifetime`) for `run`.
fn simulation(leaf_lifetime: Duration, heard: Heard) -> Simulation {
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
        config.handshake_interval = Duration::from_secs(5);
        if i == 0 {
            let mut authority = AuthorityConfig::new(SECRET);
            authority.policy.leaf_lifetime = leaf_lifetime;
            authority.policy.backdate = Duration::from_secs(60);
            config.authority = Some(authority);
        }
        let transport = Stoq::new(
            StoqConfig {
                randomness: Randomness::Seeded(100 + u64::from(i)),
                ..StoqConfig::default()
            },
            None,
            Trust::default(),
        )
        .with_bare_channels([trustchain::node::MOUNT.channel]);
        Box::new(
            Host::new(transport)
                .mount(
                    trustchain::node::MOUNT,
                    TrustNode::new(config).publishing_to(TrustChainCredentials),
                )
                .mount(
                    CHAT,
                    Chat {
                        me: i,
                        heard: heard.clone(),
                    },
                ),
        )
    };
    let mut sim = Simulation::new(5, NetworkModel::default(), Box::new(factory));
    for i in 0..NODES {
        sim.add_node(NodeSpec {
            addrs: vec![addr(i)],
            ..NodeSpec::default()
        });
    }
    sim
}

fn count(sim: &Simulation, node: u32, name: &str) -> usize {
    sim.probes()
        .iter()
        .filter(|r| r.node == node && r.probe.name == name)
        .count()
}

#[test]
fn nodes_enrolled_by_trustchain_talk_over_stoq_and_present_each_renewal() {
    let heard = Heard::default();
    // Leaves of 3 minutes renew at 2 minutes: a 5-minute run sees every node renew at least once.
    let mut sim = simulation(Duration::from_secs(180), heard.clone());
    sim.run_until(SimTime::from_millis(300_000), |_| {});
    for node in 0..NODES {
        assert!(
            count(&sim, node, "stoq_presented") >= 2,
            "node {node} presented its enrolled chain and at least one renewal: {}",
            count(&sim, node, "stoq_presented")
        );
        assert_eq!(
            count(&sim, node, "stoq_trusted").min(1),
            1,
            "node {node} trusts the bundle"
        );
    }
    // Before enrollment the chat had no certificate to speak with: its messages were held back,
    // and counted, rather than offered to peers that would refuse them.
    let unsent: usize = (0..NODES).map(|n| count(&sim, n, "unsent_no_credentials")).sum();
    assert!(unsent > 0, "the chat started before enrollment; nothing was held back");
    let heard = heard.lock().unwrap();
    for to in 0..NODES {
        for from in (0..NODES).filter(|f| *f != to) {
            let said = format!("hello from {from}");
            let got = heard
                .iter()
                .filter(|(me, who, text)| *me == to && *who == addr(from) && *text == said)
                .count();
            // One hello every half second for five minutes, less the seconds before enrollment:
            // the conversation kept going across every renewal.
            assert!(got > 500, "node {to} heard {got} hellos from node {from}");
        }
    }
}

/// Records the first byte of every datagram sent.
struct FirstBytes(Arc<Mutex<Vec<u8>>>);

impl Interceptor for FirstBytes {
    fn intercept(&mut self, _: LinkEnds, payload: Bytes, _: &mut DetRng) -> Intercepted {
        if let Some(first) = payload.first() {
            self.0.lock().unwrap().push(*first);
        }
        Intercepted::Pass(payload)
    }
}

#[test]
fn quic_and_bare_channels_share_the_socket_apart_by_the_first_byte() {
    let firsts = Arc::new(Mutex::new(Vec::new()));
    let mut sim = simulation(Duration::from_secs(3600), Heard::default());
    sim.set_interceptor(Box::new(FirstBytes(firsts.clone())));
    sim.run_until(SimTime::from_millis(30_000), |_| {});
    let firsts = firsts.lock().unwrap();
    let bare = firsts.iter().filter(|b| **b < BARE_CHANNELS_END).count();
    let quic = firsts.iter().filter(|b| **b & 0x40 != 0).count();
    assert!(bare > 0 && quic > 0, "both kinds travelled: {bare} bare, {quic} QUIC");
    // QUIC's fixed bit is never greased away: were it cleared at random (RFC 9287, quinn's
    // default), a QUIC packet would be read as a bare channel.
    assert_eq!(bare + quic, firsts.len(), "a datagram neither bare nor QUIC");
    assert!(
        firsts
            .iter()
            .all(|b| *b & 0x40 != 0 || *b == trustchain::node::MOUNT.channel.0),
        "only TrustChain travels bare"
    );
}

#[test]
fn a_bare_datagram_on_a_stoq_channel_is_refused_and_never_delivered() {
    let heard = Heard::default();
    let mut sim = simulation(Duration::from_secs(3600), heard.clone());
    // Node 1's address, the chat's channel, no QUIC: a peer (or anyone on the path) trying to
    // reach the chat around mutual TLS.
    let mut forged = vec![CHAT.channel.0];
    forged.extend_from_slice(b"forged hello");
    sim.forge(SimTime::from_millis(20_000), addr(1), addr(0), Bytes::from(forged));
    sim.run_until(SimTime::from_millis(30_000), |_| {});
    assert_eq!(count(&sim, 0, "bare_refused"), 1);
    let heard = heard.lock().unwrap();
    assert!(
        heard.iter().any(|(me, _, _)| *me == 0),
        "node 0 hears its peers over STOQ"
    );
    assert!(
        !heard.iter().any(|(_, _, text)| text.contains("forged")),
        "the forged datagram reached the chat"
    );
}
