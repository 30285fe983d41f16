//! The `membership` workload: HyperMesh membership (SWIM with Lifeguard) on every node, over
//! bare datagrams or, with a `[stoq]` table, inside STOQ's mutually authenticated QUIC. Its
//! figures come from `hypermesh::testing::membership`, held against the ground truth of
//! reachability ([`crate::analysis::truth`]), plus the transport's counts with `[stoq]`.

mod plots;
mod slander;

use std::net::SocketAddr;
use std::time::Duration;

use hypermesh::membership::{self, MembershipConfig, MembershipNode, NodeId};
use hypermesh::testing::{self, Observed};
use reports::Plot;
use runtime::host::{BareDatagrams, Host};
use runtime::{Actor, DetRng};
use simulator::{ActorFactory, ProbeRecord};

use super::{stoq, FinishedRun, Workload};
use crate::analysis::{truth, Analysis};
use crate::build::node_addrs;
use crate::scenario::Scenario;

/// Membership on every node; see the module documentation.
pub struct Membership;

impl Workload for Membership {
    fn kind(&self) -> &'static str {
        "membership"
    }

    fn metrics(&self) -> Vec<(&'static str, &'static str)> {
        testing::membership::METRICS
            .iter()
            .chain(stoq::METRICS)
            .copied()
            .collect()
    }

    fn factory(&self, scenario: &Scenario, root: &DetRng) -> Box<dyn ActorFactory> {
        let configs = configs(scenario);
        match &scenario.stoq {
            None => Box::new(move |node: u32| -> Box<dyn Actor> {
                let member = MembershipNode::new(configs[node as usize].clone());
                Box::new(Host::new(BareDatagrams).mount(membership::MOUNT, member))
            }),
            Some(plan) => stoq::factory(scenario, plan, root, configs),
        }
    }

    fn interceptor(&self, scenario: &Scenario, _root: &DetRng) -> Option<Box<dyn simulator::Interceptor>> {
        let slanderers = &scenario.workload.slanderers;
        (!slanderers.is_empty()).then(|| {
            Box::new(slander::Slanderer::new(slanderers.iter().copied().collect())) as Box<dyn simulator::Interceptor>
        })
    }

    fn analyse(&self, run: &FinishedRun<'_>) -> Analysis {
        let judged = testing::membership::Run {
            nodes: run.nodes,
            end: Duration::from_nanos(run.end.as_nanos()),
            settle: run.scenario.workload.settle,
            first_fault: truth::first_fault(run.derived, run.applied),
        };
        let truth = truth::reachability(run.derived, run.applied);
        let figures = testing::membership::analyse(run.probes.iter().map(observed), &truth, &judged);
        let mut analysis = Analysis::from(figures);
        analysis.metrics.extend(stoq::counts(run.probes));
        analysis
    }

    fn plots(&self, run: &FinishedRun<'_>) -> Vec<Plot> {
        plots::plots(run)
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

/// Every node's membership configuration: `[workload]`'s settings over the protocol's defaults,
/// and the first `workload.seeds` nodes as the static seed list. The `trustchain` workload
/// mounts the same configuration with `trustchain.membership = true`.
pub fn configs(scenario: &Scenario) -> Vec<MembershipConfig> {
    let seeds: Vec<SocketAddr> = (0..scenario.workload.seeds)
        .map(|i| node_addrs(i, scenario.nodes[i as usize].family)[0])
        .collect();
    (0..scenario.nodes.len() as u32)
        .map(|i| config(scenario, i, &seeds))
        .collect()
}

/// The membership configuration of node `index`.
fn config(scenario: &Scenario, index: u32, seeds: &[SocketAddr]) -> MembershipConfig {
    let w = &scenario.workload;
    let mut c = MembershipConfig::new(NodeId(u64::from(index)), seeds.to_vec());
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = w.$field { c.$field = v; } )* };
    }
    set!(
        probe_interval,
        latency_tolerance,
        probe_margin,
        clock_skew_max,
        gossip_interval,
        push_pull_interval
    );
    if let Some(v) = w.indirect_after {
        c.indirect_after = v;
    } else if let Some(t) = w.latency_tolerance {
        c.indirect_after = t;
    }
    if let Some(v) = w.indirect_probes {
        c.indirect_probes = v as usize;
    }
    if let Some(v) = w.confirmation_required {
        c.confirmation_required = v;
    }
    if let Some(v) = w.suspicion_mult {
        c.suspicion_mult = v;
    }
    if let Some(v) = w.gossip_fanout {
        c.gossip_fanout = v as usize;
    }
    c
}
