//! STOQ under a workload (a scenario's `[stoq]` table): every node's protocols travel inside
//! mutually authenticated QUIC connections (the `stoq::Stoq` host transport), and the run counts
//! the transport's handshakes, refusals and endpoints that could not start. Two ways to give the
//! nodes their certificates: membership alone gets leaves from a CA drawn from the seed before
//! the start ([`factory`]); the `trustchain` workload enrolls its nodes through TrustChain while
//! they run, and STOQ presents whatever TrustChain holds ([`enrolled_by_trustchain`]). Either
//! way node `i` is certified as [`node_name`]`(i)` and its membership binds names to ids with
//! [`identity_binding`]: a node is heard only as the member its certificate names.

use std::net::IpAddr;
use std::time::Duration;

use hypermesh::membership::{self, IdentityBinding, MembershipConfig, MembershipNode};
use runtime::host::Host;
use runtime::{Actor, DetRng, Entropy};
use simulator::{ActorFactory, ProbeRecord};
use stoq::{Credentials, Randomness, Stoq, StoqConfig, Trust};
use trustchain::ca::{key_from_seed, Authority, CaPolicy, NodeIdentity};
use trustchain::node::TrustNode;
use trustchain::trust::TrustBundle;

use crate::build::{node_addrs, stream};
use crate::scenario::{Scenario, StoqPlan};

/// The transport's metrics, with what each means (0 without `[stoq]`).
pub const METRICS: &[(&str, &str)] = &[
    (
        "stoq_handshakes",
        "STOQ connections that completed mutual TLS (each end counts its own; 0 without [stoq])",
    ),
    (
        "stoq_refusals",
        "STOQ connections refused or unanswered before they were usable (certificate refused by either side, timeout)",
    ),
    (
        "stoq_setup_failures",
        "nodes whose STOQ endpoint could not start (no IPv6 address: STOQ is IPv6-only)",
    ),
    (
        "stoq_unsent_no_credentials",
        "messages a node dropped because it held no certificate yet (before enrollment)",
    ),
    (
        "stoq_bare_refused",
        "plain datagrams refused on a channel that travels inside STOQ (never delivered around mutual TLS)",
    ),
    (
        "stoq_presented",
        "chains TrustChain handed to STOQ (enrollments, renewals, switches after a restart or rotation)",
    ),
    ("stoq_trusted", "bundles and revocation lists TrustChain handed to STOQ"),
    (
        "stoq_identity_refused",
        "membership messages refused because the certificate at their address names another member than their sender (or STOQ authenticated nobody there)",
    ),
];

/// The name node `i` is certified as in a STOQ run (by the seed's CA, or by TrustChain).
pub fn node_name(i: usize) -> String {
    format!("node-{i}.mesh")
}

/// How membership over STOQ maps a certified name to the member id it may speak as:
/// [`node_name`]`(i)` to id `i`, the id [`super::membership::configs`] gives node `i`.
pub fn identity_binding() -> IdentityBinding {
    IdentityBinding::Numbered {
        prefix: "node-".into(),
        suffix: ".mesh".into(),
    }
}

/// `configs` with the identity binding set: node `i` may speak only as the id its name maps to,
/// which must be its own.
fn bound(mut configs: Vec<MembershipConfig>) -> Vec<MembershipConfig> {
    let binding = identity_binding();
    for (i, config) in configs.iter_mut().enumerate() {
        assert_eq!(
            binding.id_of(&node_name(i)),
            Some(config.id),
            "node {i}'s membership id is the one its certificate's name maps to"
        );
        config.identity = Some(binding.clone());
    }
    configs
}

/// The transport's figures, from its probes.
pub fn counts(probes: &[ProbeRecord]) -> Vec<(String, Option<f64>)> {
    let count = |matches: &dyn Fn(&ProbeRecord) -> bool| probes.iter().filter(|r| matches(r)).count() as f64;
    vec![
        (
            "stoq_handshakes".to_string(),
            Some(count(&|r| r.probe.name == "stoq_connected")),
        ),
        (
            "stoq_refusals".to_string(),
            Some(count(&|r| r.probe.name == "stoq_refused")),
        ),
        (
            "stoq_setup_failures".to_string(),
            Some(count(&|r| r.probe.name == "setup_failed" && r.probe.protocol == "stoq")),
        ),
        (
            "stoq_unsent_no_credentials".to_string(),
            Some(count(&|r| r.probe.name == "unsent_no_credentials")),
        ),
        (
            "stoq_bare_refused".to_string(),
            Some(count(&|r| r.probe.name == "bare_refused")),
        ),
        (
            "stoq_presented".to_string(),
            Some(count(&|r| r.probe.name == "stoq_presented")),
        ),
        (
            "stoq_trusted".to_string(),
            Some(count(&|r| r.probe.name == "stoq_trusted")),
        ),
        (
            "stoq_identity_refused".to_string(),
            Some(count(&|r| {
                r.probe.name == "identity_refused" && r.probe.protocol == membership::MOUNT.name
            })),
        ),
    ]
}

/// Each node incarnation's STOQ configuration: the scenario's settings, and randomness of its
/// own (a restarted node is a new QUIC endpoint) drawn from the seed's STOQ stream.
struct Incarnations {
    base: StoqConfig,
    salt: u64,
    started: Vec<u64>,
}

impl Incarnations {
    fn new(plan: &StoqPlan, nodes: usize, rng: &mut DetRng) -> Self {
        Incarnations {
            base: StoqConfig {
                idle_timeout: plan.idle_timeout,
                keep_alive: plan.keep_alive,
                initial_rtt: plan.initial_rtt,
                ..StoqConfig::default()
            },
            salt: rng.next_u64(),
            started: vec![0; nodes],
        }
    }

    /// The configuration of node `node`'s next start.
    fn next(&mut self, node: u32) -> StoqConfig {
        let started = &mut self.started[node as usize];
        *started += 1;
        StoqConfig {
            randomness: Randomness::Seeded(self.salt ^ (u64::from(node) << 32) ^ *started),
            ..self.base.clone()
        }
    }
}

/// The `trustchain` workload over STOQ: each node starts with no certificate and trusting
/// nothing; TrustChain travels on its bare channel beside QUIC (enrollment comes before any
/// certificate), and every chain, bundle and revocation list it adopts is handed to STOQ
/// (`stoq::TrustChainCredentials`), which carries membership.
pub fn enrolled_by_trustchain(
    plan: &StoqPlan,
    root: &DetRng,
    trust_nodes: Vec<trustchain::node::TrustNodeConfig>,
    members: Vec<MembershipConfig>,
) -> Box<dyn ActorFactory> {
    let mut incarnations = Incarnations::new(plan, trust_nodes.len(), &mut root.fork(stream::STOQ));
    let members = bound(members);
    Box::new(move |node: u32| -> Box<dyn Actor> {
        let i = node as usize;
        let transport = Stoq::new(incarnations.next(node), None, Trust::default())
            .with_bare_channels([trustchain::node::MOUNT.channel]);
        let trust_node = TrustNode::new(trust_nodes[i].clone()).publishing_to(stoq::TrustChainCredentials);
        Box::new(
            Host::new(transport)
                .mount(trustchain::node::MOUNT, trust_node)
                .mount(membership::MOUNT, MembershipNode::new(members[i].clone())),
        )
    })
}

/// Membership over STOQ: a CA drawn from the seed issues every IPv6 node a leaf for its address
/// (valid for the whole run), as an operator's enrollment would before the start; an IPv4-only
/// node gets none, and its endpoint refuses to start.
pub fn factory(
    scenario: &Scenario,
    plan: &StoqPlan,
    root: &DetRng,
    configs: Vec<MembershipConfig>,
) -> Box<dyn ActorFactory> {
    certified_members(scenario, plan, root, bound(configs))
}

/// [`factory`] with `configs` as they are: node `i` is certified as [`node_name`]`(i)`
/// whatever id its configuration gives it.
fn certified_members(
    scenario: &Scenario,
    plan: &StoqPlan,
    root: &DetRng,
    configs: Vec<MembershipConfig>,
) -> Box<dyn ActorFactory> {
    let mut rng = root.fork(stream::STOQ);
    let mut seed = || {
        let mut s = [0u8; 32];
        rng.fill_bytes(&mut s);
        s
    };
    let policy = CaPolicy {
        leaf_lifetime: scenario.duration + Duration::from_secs(86_400),
        ..CaPolicy::default()
    };
    let epoch = simulator::SIM_EPOCH_UNIX_SECS;
    let mut ca = Authority::create(&seed(), &seed(), epoch, policy).expect("a CA from any seeds at the sim epoch");
    let credentials: Vec<Option<Credentials>> = (0..scenario.nodes.len())
        .map(|i| {
            let key_seed = seed();
            let addr = node_addrs(i as u32, scenario.nodes[i].family)
                .into_iter()
                .find_map(|a| match a.ip() {
                    IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => Some(v6),
                    _ => None,
                })?;
            let key = key_from_seed(&key_seed);
            let who = NodeIdentity {
                name: node_name(i),
                addr,
            };
            let leaf = ca.issue(&who, &key, epoch).expect("a leaf for a valid identity");
            Some(Credentials {
                chain: vec![leaf, ca.intermediate().clone()],
                key_pkcs8: key.serialize_der(),
            })
        })
        .collect();
    let trust = Trust {
        bundle: TrustBundle::new(ca.root().clone(), ca.intermediate().clone()),
        crls: ca.revocation_lists(epoch).expect("a CRL at the sim epoch"),
    };
    let mut incarnations = Incarnations::new(plan, configs.len(), &mut rng);
    Box::new(move |node: u32| -> Box<dyn Actor> {
        let i = node as usize;
        let transport = Stoq::new(incarnations.next(node), credentials[i].clone(), trust.clone());
        Box::new(Host::new(transport).mount(membership::MOUNT, MembershipNode::new(configs[i].clone())))
    })
}

#[cfg(test)]
mod tests {
    use hypermesh::membership::NodeId;
    use simulator::{NetworkModel, NodeSpec, SimTime, Simulation};

    use super::*;
    use crate::scenario::{self, Family};

    const THREE_NODES: &str = r#"
name = "impostor"
duration = "15s"
[nodes]
count = 3
family = "ipv6"
[workload]
kind = "membership"
seeds = 1
[stoq]
initial_rtt = "50ms"
"#;

    /// Real QUIC and TLS in the simulator: node 2 holds a certificate for `node-2.mesh` but runs
    /// membership as member 1 (node 1's id). STOQ names the certificate at node 2's address, and
    /// the seed refuses its join as member 1 (value 1: the name maps to another member), so it
    /// never gets in and nobody else hears of it; node 1, the real member 1, is let in and stays
    /// alive, and no member 2 ever appears. With `Stoq::peer_identity` answering nothing the
    /// refusals would read 2, and the honest nodes would be refused too.
    #[test]
    fn over_stoq_a_node_certified_as_node_2_cannot_speak_as_member_1() {
        let scenario = scenario::parse("impostor.toml", THREE_NODES).expect("a valid scenario");
        let plan = scenario.stoq.clone().expect("[stoq]");
        let mut configs = bound(crate::workload::membership::configs(&scenario));
        configs[2].id = NodeId(1);
        let root = DetRng::seed_from_u64(5);
        let factory = certified_members(&scenario, &plan, &root, configs);
        let mut sim = Simulation::new(5, NetworkModel::default(), factory);
        for i in 0..3 {
            sim.add_node(NodeSpec {
                addrs: node_addrs(i, Family::Ipv6),
                ..NodeSpec::default()
            });
        }
        sim.run_until(SimTime::from_millis(15_000), |_| {});

        let probes = |node: u32, name: &'static str| {
            sim.probes()
                .iter()
                .filter(move |r| r.node == node && r.probe.name == name && r.probe.protocol == membership::MOUNT.name)
                .map(|r| (r.probe.subject, r.probe.value))
                .collect::<Vec<_>>()
        };
        assert!(
            !probes(0, "identity_refused").is_empty(),
            "the seed heard node 2 as member 1"
        );
        for honest in [0, 1] {
            let refused = probes(honest, "identity_refused");
            assert!(
                refused.iter().all(|&(subject, value)| (subject, value) == (1, 1)),
                "node {honest} refused only node 2's claims to be member 1: {refused:?}"
            );
            let views = probes(honest, "member");
            assert!(
                views.iter().all(|&(member, _)| member != 2),
                "node {honest} listed a member 2: {views:?}"
            );
        }
        assert_eq!(
            probes(0, "member"),
            vec![(1, 0)],
            "node 0 let member 1 in once and kept it alive"
        );
        assert_eq!(
            probes(2, "identity_refused"),
            vec![],
            "the honest nodes are heard by node 2"
        );
    }
}
