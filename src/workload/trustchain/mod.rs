//! The `trustchain` workload: the TrustChain node on every node (the CA on one of them), from a
//! scenario's `[trustchain]` table; with `trustchain.membership = true`, membership is mounted
//! beside it on the same host and both are judged, and a `[stoq]` table then carries membership
//! inside STOQ with the certificates TrustChain issues as the run goes
//! ([`super::stoq::enrolled_by_trustchain`]). Its figures come from `trustchain::testing`.

mod plots;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hypermesh::membership::{self, MembershipConfig, MembershipNode};
use reports::Plot;
use runtime::host::{BareDatagrams, Host};
use runtime::{Actor, DetRng, Entropy};
use simulator::{ActorFactory, ProbeRecord};
use trustchain::ca::NodeIdentity;
use trustchain::enroll::{Grant, TokenKey};
use trustchain::node::{AuthorityConfig, TrustNode, TrustNodeConfig};
use trustchain::testing::Observed;

use super::membership::Membership;
use super::{stoq, FinishedRun, Workload};
use crate::analysis::Analysis;
use crate::build::{node_addrs, stream};
use crate::scenario::{Scenario, TrustChainPlan};

/// The TrustChain node on every node; see the module documentation.
pub struct TrustChain;

impl TrustChain {
    /// The scenario's `[trustchain]` settings; the parser gives every scenario of this kind one.
    fn plan(scenario: &Scenario) -> &TrustChainPlan {
        scenario
            .trustchain
            .as_ref()
            .expect("a trustchain scenario has its [trustchain] settings")
    }
}

impl Workload for TrustChain {
    fn kind(&self) -> &'static str {
        "trustchain"
    }

    fn metrics(&self) -> Vec<(&'static str, &'static str)> {
        trustchain::testing::METRICS.to_vec()
    }

    fn factory(&self, scenario: &Scenario, root: &DetRng) -> Box<dyn ActorFactory> {
        let plan = Self::plan(scenario);
        let configs = configs(scenario, plan, root);
        let members: Option<Vec<MembershipConfig>> = plan.membership.then(|| super::membership::configs(scenario));
        if let (Some(transport), Some(members)) = (&scenario.stoq, &members) {
            return stoq::enrolled_by_trustchain(transport, root, configs, members.clone());
        }
        Box::new(move |node: u32| -> Box<dyn Actor> {
            let trust_node = TrustNode::new(configs[node as usize].clone());
            let mut host = Host::new(BareDatagrams).mount(trustchain::node::MOUNT, trust_node);
            if let Some(members) = &members {
                host = host.mount(membership::MOUNT, MembershipNode::new(members[node as usize].clone()));
            }
            Box::new(host)
        })
    }

    fn analyse(&self, run: &FinishedRun<'_>) -> Analysis {
        let probes: Vec<Observed<'_>> = run.probes.iter().map(observed).collect();
        let trust = Analysis::from(trustchain::testing::analyse(&probes, &run.derived.starts));
        if Self::plan(run.scenario).membership {
            trust.merge(Membership.analyse(run))
        } else {
            trust
        }
    }

    fn plots(&self, run: &FinishedRun<'_>) -> Vec<Plot> {
        let mut plots = plots::plots(run);
        if Self::plan(run.scenario).membership {
            plots.extend(Membership.plots(run));
        }
        plots
    }
}

/// A simulator probe as the checker reads it.
fn observed(r: &ProbeRecord) -> Observed<'_> {
    Observed {
        at: Duration::from_nanos(r.at.as_nanos()),
        node: r.node,
        probe: &r.probe,
    }
}

/// Every node's TrustChain configuration: the static peer list (phase 0), the CA's node, and a
/// join token per node from the CA's token secret (drawn from the seed, as an operator would
/// hand tokens out before the cold start).
fn configs(scenario: &Scenario, plan: &TrustChainPlan, root: &DetRng) -> Vec<TrustNodeConfig> {
    let count = scenario.nodes.len();
    let peers: Vec<SocketAddr> = (0..count)
        .map(|i| node_addrs(i as u32, scenario.nodes[i].family)[0])
        .collect();
    let mut rng = root.fork(stream::TOKENS);
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let tokens = TokenKey::new(&secret);
    // Tokens outlive the run: their expiry is tested in the trustchain crate, not here.
    let expires = simulator::SIM_EPOCH_UNIX_SECS + scenario.duration.as_secs() as i64 + 86_400;
    let mut authority = AuthorityConfig::new(secret);
    authority.policy.backdate = plan.backdate;
    authority.policy.leaf_lifetime = plan.leaf_lifetime;
    authority.rotate_every = plan.rotate_every;
    authority.overlap = plan.overlap;
    authority.rollout_waves = plan.rollout_waves;
    authority.rollout_interval = plan.rollout_interval;
    authority.push_bundles = plan.push_bundles;
    authority.quorum_before_issuing = plan.quorum_before_issuing;
    authority.revocations = plan.revocations.iter().map(|(at, n)| (*at, *n as usize)).collect();
    (0..count)
        .map(|i| {
            let addr = match peers[i].ip() {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            let grant = Grant {
                identity: NodeIdentity {
                    name: super::stoq::node_name(i),
                    addr,
                },
                expires,
                id: i as u64 + 1,
            };
            let mut c = TrustNodeConfig::new(i, peers.clone(), plan.ca as usize, tokens.issue(&grant));
            c.handshake_interval = plan.handshake_interval;
            c.handshake_timeout = plan.handshake_timeout;
            c.bundle_refresh = plan.bundle_refresh;
            c.renew_fraction = plan.renew_fraction;
            c.verify_before_switch = plan.verify_before_switch;
            if i == plan.ca as usize {
                c.authority = Some(authority.clone());
            }
            c
        })
        .collect()
}
