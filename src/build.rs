//! Turns a scenario and a seed into a ready simulation: node addresses and clocks, the actors
//! (from the scenario's workload, `crate::workload`), and the fault schedule, including swarm
//! draws. Everything drawn from the seed is recorded in [`Derived`] so a run can print it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hypermesh::testing::adversary::Behaviour;
use runtime::{DetRng, Entropy};
use serde::Serialize;
use simulator::{ClockModel, FaultAction, LinkChange, NetworkModel, NodeSet, NodeSpec, SimTime, Simulation};

use crate::scenario::{fixed_indices, Family, FaultKind, FaultPlan, Scenario, Selection, SwarmPlan};

/// The port every simulated node listens on.
pub const MEMBERSHIP_PORT: u16 = 7946;

/// Random streams forked from a seed's root, apart from the simulation's own: one per purpose,
/// so that adding draws to one never shifts another. A workload that draws takes a number of
/// its own here.
pub mod stream {
    /// Every node's clock offset and drift.
    pub const CLOCKS: u64 = 11;
    /// `random k` node selections of faults.
    pub const SELECTIONS: u64 = 12;
    /// Swarm fault mixes.
    pub const SWARM: u64 = 13;
    /// Every node's start time.
    pub const STARTS: u64 = 14;
    /// The `trustchain` workload's join-token secret.
    pub const TOKENS: u64 = 15;
    /// The `membership` workload's CA, keys and QUIC randomness over `[stoq]`.
    pub const STOQ: u64 = 16;
    /// The `consensus` workload's validator keys.
    pub const CONSENSUS: u64 = 17;
    /// Adversaries the swarm gives validators.
    pub const ADVERSARIES: u64 = 18;
    /// Which validators see a twin rather than the validator it doubles.
    pub const TWINS: u64 = 19;
    /// The `erc8004` workload's client wallets.
    pub const WALLETS: u64 = 20;
    /// The registry API workload's keys.
    pub const API_KEYS: u64 = 21;
}

/// A scheduled fault, resolved to node sets.
#[derive(Clone, Debug, Serialize)]
pub struct ScheduledFault {
    /// Simulated seconds from the start.
    pub at_s: f64,
    /// Fault kind.
    pub kind: &'static str,
    /// Nodes involved (for partitions, side A then side B).
    pub nodes: Vec<u32>,
    /// Side B of a partition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_side: Vec<u32>,
    /// Kind-specific detail.
    pub detail: String,
    /// What the simulator is handed.
    #[serde(skip)]
    pub(crate) action: FaultAction,
}

/// Everything drawn from the seed, printed with every run.
#[derive(Clone, Debug, Serialize)]
pub struct Derived {
    /// Every node's wall-clock offset, ms.
    pub clock_offset_ms: Vec<f64>,
    /// Every node's drift, ppm.
    pub drift_ppm: Vec<f64>,
    /// Every node's start time, s.
    pub start_s: Vec<f64>,
    /// Every node's start time, exact (`start_s` is it in seconds).
    #[serde(skip)]
    pub starts: Vec<Duration>,
    /// The fault schedule, scripted and swarm-drawn, in time order.
    pub schedule: Vec<ScheduledFault>,
    /// The Byzantine validators, scripted and swarm-drawn, as `consensus.byzantine` writes them.
    pub byzantine: Vec<String>,
}

/// A simulation ready to run.
pub struct Built {
    /// The simulation, nodes added and faults scheduled.
    pub sim: Simulation,
    /// What was drawn from the seed.
    pub derived: Derived,
    /// When the run ends.
    pub end: SimTime,
}

/// Node `index`'s addresses (`fd00::N` and `10.x.y.z` with `N = index + 1`) of `family`, on
/// [`MEMBERSHIP_PORT`].
pub fn node_addrs(index: u32, family: Family) -> Vec<SocketAddr> {
    let n = index + 1;
    let v6 = SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0,
            0,
            0,
            0,
            0,
            (n >> 16) as u16,
            (n & 0xffff) as u16,
        )),
        MEMBERSHIP_PORT,
    );
    let v4 = SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)),
        MEMBERSHIP_PORT,
    );
    match family {
        Family::Ipv6 => vec![v6],
        Family::Ipv4 => vec![v4],
        Family::Dual => vec![v6, v4],
    }
}

fn symmetric(rng: &mut DetRng, max: f64) -> f64 {
    if max == 0.0 {
        0.0
    } else {
        (rng.unit_f64() * 2.0 - 1.0) * max
    }
}

fn between(rng: &mut DetRng, (lo, hi): (Duration, Duration)) -> Duration {
    lo + (hi - lo).mul_f64(rng.unit_f64())
}

fn count_between(rng: &mut DetRng, (lo, hi): (u32, u32)) -> u32 {
    lo + rng.below(u64::from(hi - lo) + 1) as u32
}

/// Resolves `selection` to indices among `count` nodes, drawing random ones from `rng` among
/// the first `faultable` (see [`Scenario::faultable_nodes`]).
fn resolve(selection: &Selection, count: u32, faultable: u32, rng: &mut DetRng) -> Vec<u32> {
    match selection {
        Selection::Random(k) => {
            let mut all: Vec<u32> = (0..faultable).collect();
            runtime::shuffle(rng, &mut all);
            let mut picked = all[..*k as usize].to_vec();
            picked.sort_unstable();
            picked
        }
        other => fixed_indices(other, count),
    }
}

/// Expands `plan` (the `id`-th of the run's faults) into the actions it schedules.
fn expand(plan: &FaultPlan, id: u64, count: u32, out: &mut Vec<ScheduledFault>) {
    let at = plan.at.as_secs_f64();
    let push = |out: &mut Vec<ScheduledFault>,
                at_s: f64,
                action: FaultAction,
                nodes: Vec<u32>,
                other: Vec<u32>,
                detail: String| {
        out.push(ScheduledFault {
            at_s,
            kind: action.kind(),
            nodes,
            other_side: other,
            detail,
            action,
        });
    };
    let set = |v: &[u32]| NodeSet::from_indices(v.iter().copied());
    match &plan.kind {
        FaultKind::Partition {
            a,
            b,
            one_way,
            duration,
        } => {
            let a = fixed_indices(a, count);
            let b = fixed_indices(b, count);
            let action = FaultAction::Partition {
                a: set(&a),
                b: set(&b),
                one_way: *one_way,
            };
            // This partition's own end: another partition in force meanwhile stays.
            let heal = FaultAction::HealPartition {
                a: set(&a),
                b: set(&b),
                one_way: *one_way,
            };
            push(
                out,
                at,
                action,
                a.clone(),
                b.clone(),
                if *one_way { "one-way".into() } else { "two-way".into() },
            );
            if let Some(d) = duration {
                push(out, at + d.as_secs_f64(), heal, a, b, "end".into());
            }
        }
        FaultKind::Heal => push(out, at, FaultAction::Heal, vec![], vec![], String::new()),
        FaultKind::Crash { nodes, restart_after } => {
            let nodes = fixed_indices(nodes, count);
            push(
                out,
                at,
                FaultAction::Crash(set(&nodes)),
                nodes.clone(),
                vec![],
                String::new(),
            );
            if let Some(d) = restart_after {
                push(
                    out,
                    at + d.as_secs_f64(),
                    FaultAction::Restart(set(&nodes)),
                    nodes,
                    vec![],
                    String::new(),
                );
            }
        }
        FaultKind::Restart { nodes } => {
            let nodes = fixed_indices(nodes, count);
            push(out, at, FaultAction::Restart(set(&nodes)), nodes, vec![], String::new());
        }
        FaultKind::Pause { nodes, duration } => {
            let nodes = fixed_indices(nodes, count);
            let action = FaultAction::Pause {
                nodes: set(&nodes),
                duration: *duration,
            };
            push(out, at, action, nodes, vec![], format!("{duration:?}"));
        }
        FaultKind::ClockJump { nodes, by_ns } => {
            let nodes = fixed_indices(nodes, count);
            let action = FaultAction::ClockJump {
                nodes: set(&nodes),
                delta_ns: *by_ns,
            };
            push(out, at, action, nodes, vec![], format!("{:+.3}s", *by_ns as f64 / 1e9));
        }
        FaultKind::ClockCorrect { nodes } => {
            let nodes = fixed_indices(nodes, count);
            push(
                out,
                at,
                FaultAction::ClockCorrect(set(&nodes)),
                nodes,
                vec![],
                String::new(),
            );
        }
        FaultKind::Loss { probability, duration } => {
            let change = LinkChange::Loss(*probability);
            push_link_window(out, id, at, *duration, change, format!("loss {probability}"));
        }
        FaultKind::Latency {
            latency,
            jitter,
            duration,
        } => {
            let change = LinkChange::Latency {
                latency: *latency,
                jitter: *jitter,
            };
            let detail = format!("latency {latency:?} jitter {jitter:?}");
            push_link_window(out, id, at, *duration, change, detail);
        }
    }
}

/// Link window `id` changes the links from `at` for `duration`; windows stack, and each one's
/// end restores only what it changed.
fn push_link_window(
    out: &mut Vec<ScheduledFault>,
    id: u64,
    at: f64,
    duration: Duration,
    change: LinkChange,
    detail: String,
) {
    for (at_s, action, detail) in [
        (at, FaultAction::LinkWindow { id, change }, detail),
        (
            at + duration.as_secs_f64(),
            FaultAction::LinkWindowEnd { id },
            "restore".to_string(),
        ),
    ] {
        out.push(ScheduledFault {
            at_s,
            kind: action.kind(),
            nodes: vec![],
            other_side: vec![],
            detail,
            action,
        });
    }
}

/// Draws one seed's fault mix from the swarm ranges, for `count` nodes of which crashes and
/// pauses strike only the first `faultable` (see [`Scenario::faultable_nodes`]).
fn swarm_faults(swarm: &SwarmPlan, count: u32, faultable: u32, rng: &mut DetRng) -> Vec<FaultPlan> {
    let mut plans = Vec::new();
    let at = |rng: &mut DetRng| between(rng, swarm.window);
    // Never crash or isolate a majority: the detector's own claims assume one survives.
    let minority = (count.saturating_sub(1) / 2).max(1);
    let crashable_minority = (faultable.saturating_sub(1) / 2).max(1);
    // Every drawn fault must take effect (a run fails on one that changed nothing): crashes and
    // pauses are drawn among nodes that are neither down nor paused for their whole window, so
    // no crash finds its node already down, no restart finds it already up (an overlapping
    // crash's restart would have revived it early), and no pause finds it down.
    let mut busy = Busy::default();
    for _ in 0..count_between(rng, swarm.crashes) {
        let k = 1 + rng.below(u64::from(crashable_minority.min(3))) as u32;
        let start = at(rng);
        let restart_after = between(rng, swarm.restart_after);
        let nodes = busy.pick(rng, faultable, k, start, start + restart_after);
        if nodes.is_empty() {
            continue;
        }
        plans.push(FaultPlan {
            at: start,
            kind: FaultKind::Crash {
                nodes: Selection::List(nodes),
                restart_after: Some(restart_after),
            },
        });
    }
    for _ in 0..count_between(rng, swarm.partitions) {
        let minority_size = 1 + rng.below(u64::from(minority)) as u32;
        let mut all: Vec<u32> = (0..count).collect();
        runtime::shuffle(rng, &mut all);
        let (b, a) = all.split_at(minority_size as usize);
        plans.push(FaultPlan {
            at: at(rng),
            kind: FaultKind::Partition {
                a: Selection::List(a.to_vec()),
                b: Selection::List(b.to_vec()),
                one_way: rng.chance(0.25),
                duration: Some(between(rng, swarm.partition_duration)),
            },
        });
    }
    for _ in 0..count_between(rng, swarm.pauses) {
        let start = at(rng);
        let duration = between(rng, swarm.pause_duration);
        let nodes = busy.pick(rng, faultable, 1, start, start + duration);
        if nodes.is_empty() {
            continue;
        }
        plans.push(FaultPlan {
            at: start,
            kind: FaultKind::Pause {
                nodes: Selection::List(nodes),
                duration,
            },
        });
    }
    for _ in 0..count_between(rng, swarm.clock_jumps) {
        let max = swarm.clock_jump_max.as_nanos() as f64;
        plans.push(FaultPlan {
            at: at(rng),
            kind: FaultKind::ClockJump {
                nodes: Selection::Random(1),
                by_ns: symmetric(rng, max) as i64,
            },
        });
    }
    for _ in 0..count_between(rng, swarm.loss_bursts) {
        let (lo, hi) = swarm.loss;
        plans.push(FaultPlan {
            at: at(rng),
            kind: FaultKind::Loss {
                probability: lo + (hi - lo) * rng.unit_f64(),
                duration: between(rng, swarm.loss_duration),
            },
        });
    }
    plans
}

/// The windows during which swarm-drawn faults hold nodes down or paused.
#[derive(Default)]
struct Busy(Vec<(u32, Duration, Duration)>);

impl Busy {
    /// Up to `k` nodes free for all of `[from, until]`, drawn from `rng` and then held busy for it.
    fn pick(&mut self, rng: &mut DetRng, count: u32, k: u32, from: Duration, until: Duration) -> Vec<u32> {
        let mut free: Vec<u32> = (0..count)
            .filter(|n| !self.0.iter().any(|(m, a, b)| m == n && *a <= until && from <= *b))
            .collect();
        runtime::shuffle(rng, &mut free);
        free.truncate(k as usize);
        free.sort_unstable();
        self.0.extend(free.iter().map(|n| (*n, from, until)));
        free
    }
}

/// The random streams of one seed.
fn root_rng(seed: u64) -> DetRng {
    DetRng::seed_from_u64(seed ^ 0x5CE7_A210)
}

/// The Byzantine validators of a consensus `scenario` under the seed's `root`: those of
/// `consensus.byzantine`, then those `swarm.adversaries` draws (a validator not yet Byzantine,
/// a behaviour of `swarm.behaviours` with its argument; twins at most once, on the last node),
/// never more than f in all. Empty for other workloads.
pub fn adversaries(scenario: &Scenario, root: &DetRng) -> Vec<(u32, Behaviour)> {
    let Some(plan) = &scenario.consensus else {
        return Vec::new();
    };
    let mut chosen = plan.byzantine.clone();
    let Some(swarm) = scenario.swarm.as_ref().filter(|s| s.adversaries.1 > 0) else {
        return chosen;
    };
    let mut rng = root.fork(stream::ADVERSARIES);
    let f = (plan.validators.saturating_sub(1) / 3) as usize;
    let drawn = count_between(&mut rng, swarm.adversaries) as usize;
    for _ in 0..drawn.min(f.saturating_sub(chosen.len())) {
        let free: Vec<u32> = (0..plan.validators)
            .filter(|v| chosen.iter().all(|(n, _)| n != v))
            .collect();
        let node = free[rng.below(free.len() as u64) as usize];
        // One pair of twins at most: once drawn, the rest are drawn from the other behaviours
        // (a list of twins alone draws no second adversary).
        let twinned = chosen.iter().any(|(_, b)| matches!(b, Behaviour::Twins(_)));
        let names: Vec<&String> = swarm
            .behaviours
            .iter()
            .filter(|b| !(twinned && b.as_str() == crate::scenario::TWINS))
            .collect();
        if names.is_empty() {
            break;
        }
        let name = names[rng.below(names.len() as u64) as usize];
        // Arguments beyond what the detector tolerates, so that the behaviour is misbehaviour.
        let tolerance = plan.latency_tolerance;
        let skew = plan.clock_skew_max.max(Duration::from_secs(1));
        let behaviour = match name.as_str() {
            "equivocate" => Behaviour::Equivocate,
            "forge" => Behaviour::Forge,
            "withhold" => Behaviour::Withhold,
            "delay" => Behaviour::Delay(between(&mut rng, (tolerance * 2, tolerance * 4))),
            "clock-lie" => Behaviour::ClockLie(between(&mut rng, (skew * 2, skew * 4))),
            "mutate" => Behaviour::Mutate,
            // On the last node, which would run a client (the parser checked one remains).
            crate::scenario::TWINS => Behaviour::Twins(scenario.nodes.len() as u32 - 1),
            "impersonate" => {
                let victim = (node + 1 + rng.below(u64::from(plan.validators - 1)) as u32) % plan.validators;
                Behaviour::Impersonate(victim as u16)
            }
            other => unreachable!("the parser admits only known behaviours, not {other:?}"),
        };
        chosen.push((node, behaviour));
    }
    chosen
}

/// [`adversaries`] under `seed`: what a shrunk scenario writes into `consensus.byzantine`.
pub fn resolved_adversaries(scenario: &Scenario, seed: u64) -> Vec<(u32, Behaviour)> {
    adversaries(scenario, &root_rng(seed))
}

/// The streams fault plans draw from: swarm mixes, then `random k` selections.
fn fault_streams(root: &DetRng) -> (DetRng, DetRng) {
    (root.fork(stream::SWARM), root.fork(stream::SELECTIONS))
}

/// The scenario's faults under `seed` with every random choice made: the swarm's draws added as
/// plain faults and `random k` selections resolved to node lists. A scenario with these faults
/// and no swarm runs exactly as the original under the same seed, and its faults can then be
/// removed one by one without moving the others' draws, which is what shrinking needs.
pub fn resolved_faults(scenario: &Scenario, seed: u64) -> Vec<FaultPlan> {
    let (mut swarm_rng, mut select_rng) = fault_streams(&root_rng(seed));
    resolve_faults(scenario, &mut swarm_rng, &mut select_rng)
}

fn resolve_faults(scenario: &Scenario, swarm_rng: &mut DetRng, select_rng: &mut DetRng) -> Vec<FaultPlan> {
    let count = scenario.nodes.len() as u32;
    let faultable = scenario.faultable_nodes();
    let mut plans = scenario.faults.clone();
    if let Some(swarm) = &scenario.swarm {
        plans.extend(swarm_faults(swarm, count, faultable, swarm_rng));
    }
    let mut fix = |s: &mut Selection| {
        if let Selection::Random(_) = s {
            *s = Selection::List(resolve(s, count, faultable, select_rng));
        }
    };
    // Resolved in plan order, side a before side b: the order the draws were always made in.
    for plan in &mut plans {
        match &mut plan.kind {
            FaultKind::Partition { a, b, .. } => {
                fix(a);
                fix(b);
            }
            FaultKind::Crash { nodes, .. }
            | FaultKind::Restart { nodes }
            | FaultKind::Pause { nodes, .. }
            | FaultKind::ClockJump { nodes, .. }
            | FaultKind::ClockCorrect { nodes } => fix(nodes),
            FaultKind::Heal | FaultKind::Loss { .. } | FaultKind::Latency { .. } => {}
        }
    }
    plans.sort_by_key(|p| p.at);
    plans
}

/// Every node's start time in `scenario`, from the seed's `root` stream: its group's fixed
/// `start`, else drawn uniformly within `workload.start_spread` (drawn for every node, so a
/// fixed start never shifts another node's draw). A workload whose actors need the starts
/// (the consensus clients' stop time) reads them here.
pub fn start_times(scenario: &Scenario, root: &DetRng) -> Vec<Duration> {
    let mut start_rng = root.fork(stream::STARTS);
    scenario
        .nodes
        .iter()
        .map(|plan| {
            let drawn = scenario.workload.start_spread.mul_f64(start_rng.unit_f64());
            plan.start.unwrap_or(drawn)
        })
        .collect()
}

/// Builds the simulation of `scenario` under `seed`.
pub fn build(scenario: &Scenario, seed: u64) -> Built {
    let root = root_rng(seed);
    let count = scenario.nodes.len() as u32;
    let mut clock_rng = root.fork(stream::CLOCKS);
    let (mut swarm_rng, mut select_rng) = fault_streams(&root);
    let start_times = start_times(scenario, &root);

    let factory = scenario.workload().factory(scenario, &root);
    let network = NetworkModel::new(scenario.link);
    let mut sim = Simulation::new(seed, network, factory);
    if let Some(interceptor) = scenario.workload().interceptor(scenario, &root) {
        sim.set_interceptor(interceptor);
    }

    let mut derived = Derived {
        clock_offset_ms: Vec::new(),
        drift_ppm: Vec::new(),
        start_s: Vec::new(),
        starts: Vec::new(),
        schedule: Vec::new(),
        byzantine: adversaries(scenario, &root)
            .iter()
            .map(|(node, b)| crate::scenario::byzantine_text(*node, b))
            .collect(),
    };
    let offset_max = scenario.clock.offset_max.as_nanos() as f64;
    let mut starts = Vec::new();
    for (i, plan) in scenario.nodes.iter().enumerate() {
        let offset_ns = plan
            .clock_offset_ns
            .unwrap_or_else(|| symmetric(&mut clock_rng, offset_max) as i64);
        let drift_ppm = plan
            .drift_ppm
            .unwrap_or_else(|| symmetric(&mut clock_rng, scenario.clock.drift_ppm_max));
        derived.clock_offset_ms.push(offset_ns as f64 / 1e6);
        derived.drift_ppm.push(drift_ppm);
        let start = start_times[i];
        derived.start_s.push(start.as_secs_f64());
        derived.starts.push(start);
        starts.push((
            i as u32,
            start,
            NodeSpec {
                addrs: node_addrs(i as u32, plan.family),
                clock: ClockModel {
                    offset_ns,
                    drift_ppb: (drift_ppm * 1000.0) as i64,
                },
                storage_faults: scenario.storage,
            },
        ));
    }
    for (i, start, spec) in starts {
        let index = sim.add_node_at(spec, SimTime::from_duration(start));
        debug_assert_eq!(index, i);
    }

    let mut schedule = Vec::new();
    for (id, plan) in resolve_faults(scenario, &mut swarm_rng, &mut select_rng)
        .iter()
        .enumerate()
    {
        expand(plan, id as u64, count, &mut schedule);
    }
    if let Some(interval) = scenario.clock.ntp_interval {
        let mut t = interval;
        while t < scenario.duration {
            let action = FaultAction::ClockCorrect(NodeSet::all(count as usize));
            schedule.push(ScheduledFault {
                at_s: t.as_secs_f64(),
                kind: action.kind(),
                nodes: vec![],
                other_side: vec![],
                detail: "ntp".into(),
                action,
            });
            t += interval;
        }
    }
    if let Some(until) = scenario.storage_until {
        let action = FaultAction::EndStorageFaults(NodeSet::all(count as usize));
        schedule.push(ScheduledFault {
            at_s: until.as_secs_f64(),
            kind: action.kind(),
            nodes: vec![],
            other_side: vec![],
            detail: "storage.until".into(),
            action,
        });
    }
    schedule.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    for fault in &mut schedule {
        sim.schedule(
            SimTime::from_duration(Duration::from_secs_f64(fault.at_s)),
            fault.action.clone(),
        );
    }
    derived.schedule = schedule;
    Built {
        sim,
        derived,
        end: SimTime::from_duration(scenario.duration),
    }
}

#[cfg(test)]
mod tests {
    use simulator::{Latency, LinkModel};

    use super::*;

    /// The schedule of `plans` applied to a network in time order: the effective default link
    /// and whether 0 → 1 and 0 → 2 are cut, after each action.
    fn replay(plans: &[FaultPlan], base: LinkModel) -> Vec<(f64, LinkModel, bool, bool)> {
        let mut schedule = Vec::new();
        for (id, plan) in plans.iter().enumerate() {
            expand(plan, id as u64, 3, &mut schedule);
        }
        schedule.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let mut net = NetworkModel::new(base);
        schedule
            .iter()
            .map(|f| {
                match f.action.clone() {
                    FaultAction::Partition { a, b, one_way } => net.partition(a, b, one_way),
                    FaultAction::HealPartition { a, b, one_way } => {
                        net.heal_partition(&a, &b, one_way);
                    }
                    FaultAction::LinkWindow { id, change } => {
                        net.open_window(id, change);
                    }
                    FaultAction::LinkWindowEnd { id } => {
                        net.close_window(id);
                    }
                    other => panic!("unexpected {other:?}"),
                }
                (f.at_s, *net.default_link(), net.is_cut(0, 1), net.is_cut(0, 2))
            })
            .collect()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_second_partition_lasts_its_own_duration_after_the_first_heals() {
        let partition = |at, other, duration| FaultPlan {
            at: secs(at),
            kind: FaultKind::Partition {
                a: Selection::List(vec![0]),
                b: Selection::List(vec![other]),
                one_way: false,
                duration: Some(secs(duration)),
            },
        };
        let steps = replay(&[partition(1, 1, 2), partition(2, 2, 10)], LinkModel::default());
        let at = |t: f64| steps.iter().rev().find(|s| s.0 <= t).expect("a step");
        assert!(at(2.5).2 && at(2.5).3, "both partitions in force");
        assert!(!at(3.5).2, "the first ended at 3 s");
        assert!(at(3.5).3, "the first heal ended the second, 9 s early");
        assert!(!at(12.5).3, "the second ended at 12 s");
    }

    #[test]
    fn overlapping_loss_and_latency_windows_do_not_cancel_each_other() {
        let base = LinkModel {
            loss: 0.01,
            ..LinkModel::default()
        };
        let slow = Latency::Constant(Duration::from_millis(300));
        let plans = [
            FaultPlan {
                at: secs(1),
                kind: FaultKind::Loss {
                    probability: 0.5,
                    duration: secs(10),
                },
            },
            FaultPlan {
                at: secs(2),
                kind: FaultKind::Latency {
                    latency: slow,
                    jitter: Duration::ZERO,
                    duration: secs(2),
                },
            },
        ];
        let steps = replay(&plans, base);
        let at = |t: f64| steps.iter().rev().find(|s| s.0 <= t).expect("a step").1;
        assert_eq!(
            (at(2.5).loss, at(2.5).latency),
            (0.5, slow),
            "the latency spike kept the loss burst"
        );
        assert_eq!(at(5.0).loss, 0.5, "the latency spike's end ended the loss burst");
        assert_eq!(at(5.0).latency, base.latency);
        assert_eq!(at(11.5), base);
    }
}

#[cfg(test)]
mod swarm_tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn under_consensus_random_draws_and_swarm_crashes_and_pauses_keep_to_the_validators() {
        let text = r#"
duration = "60s"
[nodes]
count = 6
[workload]
kind = "consensus"
[consensus]
validators = 4
[swarm]
window = ["5s", "35s"]
crashes = [2, 4]
pauses = [2, 4]
clock_jumps = [1, 2]
[[fault]]
at = "1s"
kind = "crash"
nodes = "random 2"
"#;
        let scenario = crate::scenario::parse("x.toml", text).unwrap();
        let mut drawn = BTreeSet::new();
        for seed in 0..200 {
            for plan in resolved_faults(&scenario, seed) {
                match &plan.kind {
                    FaultKind::Crash {
                        nodes: Selection::List(n),
                        ..
                    }
                    | FaultKind::Pause {
                        nodes: Selection::List(n),
                        ..
                    }
                    | FaultKind::ClockJump {
                        nodes: Selection::List(n),
                        ..
                    } => drawn.extend(n.iter().copied()),
                    other => panic!("seed {seed}: {other:?} left unresolved"),
                }
            }
        }
        assert_eq!(drawn, (0..4).collect(), "every validator drawn, and no client");
    }

    #[test]
    fn swarm_adversaries_are_distinct_validators_at_most_f_and_a_function_of_the_seed() {
        let scenario = crate::scenario::parse(
            "x.toml",
            "duration = \"10s\"\n[nodes]\ncount = 11\n[workload]\nkind = \"consensus\"\n[consensus]\n\
             validators = 10\nbyzantine = [\"4:forge\"]\n[swarm]\nwindow = [\"1s\", \"2s\"]\nadversaries = [2, 2]\n",
        )
        .unwrap();
        let mut behaviours = std::collections::BTreeSet::new();
        for seed in 1..200 {
            let drawn = resolved_adversaries(&scenario, seed);
            assert_eq!(drawn, resolved_adversaries(&scenario, seed));
            // f = 3: the scripted forger, then two drawn.
            assert_eq!(drawn.len(), 3, "{drawn:?}");
            assert_eq!(drawn[0], (4, Behaviour::Forge));
            let nodes: std::collections::BTreeSet<u32> = drawn.iter().map(|(n, _)| *n).collect();
            assert_eq!(nodes.len(), 3, "distinct: {drawn:?}");
            assert!(nodes.iter().all(|n| *n < 10), "validators only: {drawn:?}");
            for (node, b) in &drawn[1..] {
                match b {
                    Behaviour::Delay(d) => assert!(*d >= Duration::from_secs(1), "{d:?} beyond 2 x 500 ms"),
                    Behaviour::ClockLie(d) => assert!(*d >= Duration::from_secs(60), "{d:?} beyond 2 x 30 s"),
                    Behaviour::Impersonate(v) => assert!(u32::from(*v) != *node && *v < 10),
                    _ => {}
                }
                behaviours.insert(b.name());
            }
        }
        assert_eq!(
            behaviours.len(),
            7,
            "every behaviour drawn over 199 seeds: {behaviours:?}"
        );
    }

    #[test]
    fn swarm_twins_run_on_the_last_node_once_per_seed() {
        let scenario = crate::scenario::parse(
            "x.toml",
            "duration = \"10s\"\n[nodes]\ncount = 12\n[workload]\nkind = \"consensus\"\n[consensus]\n\
             validators = 10\n[swarm]\nwindow = [\"1s\", \"2s\"]\nadversaries = [3, 3]\n\
             behaviours = [\"twins\", \"forge\"]\n",
        )
        .unwrap();
        let mut twinned = 0;
        for seed in 1..100 {
            let drawn = resolved_adversaries(&scenario, seed);
            assert_eq!(drawn.len(), 3, "{drawn:?}");
            let twins: Vec<_> = drawn.iter().filter(|(_, b)| matches!(b, Behaviour::Twins(_))).collect();
            assert!(twins.len() <= 1, "one pair at most: {drawn:?}");
            if let Some((original, Behaviour::Twins(twin))) = twins.first() {
                assert!(*original < 10);
                assert_eq!(*twin, 11, "the last node, a client's");
                twinned += 1;
            }
        }
        assert!(twinned > 50, "twins drawn in {twinned} of 99 seeds");
        // A list of twins alone draws one adversary, not a second pair.
        let alone = crate::scenario::parse(
            "x.toml",
            "duration = \"10s\"\n[nodes]\ncount = 12\n[workload]\nkind = \"consensus\"\n[consensus]\n\
             validators = 10\n[swarm]\nwindow = [\"1s\", \"2s\"]\nadversaries = [3, 3]\nbehaviours = [\"twins\"]\n",
        )
        .unwrap();
        assert_eq!(resolved_adversaries(&alone, 7).len(), 1);
    }

    #[test]
    fn swarm_crashes_and_pauses_never_find_their_node_down_or_paused() {
        let swarm = SwarmPlan {
            window: (Duration::from_secs(5), Duration::from_secs(35)),
            crashes: (3, 6),
            restart_after: (Duration::from_secs(1), Duration::from_secs(15)),
            pauses: (3, 6),
            pause_duration: (Duration::from_millis(100), Duration::from_secs(3)),
            ..SwarmPlan::default()
        };
        for seed in 0..500 {
            let mut rng = DetRng::seed_from_u64(seed);
            let mut windows: Vec<(u32, Duration, Duration)> = Vec::new();
            for plan in swarm_faults(&swarm, 6, 6, &mut rng) {
                let (nodes, length) = match &plan.kind {
                    FaultKind::Crash {
                        nodes: Selection::List(n),
                        restart_after: Some(d),
                    } => (n.clone(), *d),
                    FaultKind::Pause {
                        nodes: Selection::List(n),
                        duration,
                    } => (n.clone(), *duration),
                    _ => continue,
                };
                for n in nodes {
                    let (from, until) = (plan.at, plan.at + length);
                    assert!(
                        !windows.iter().any(|(m, a, b)| *m == n && *a <= until && from <= *b),
                        "seed {seed}: node {n} drawn while down or paused"
                    );
                    windows.push((n, from, until));
                }
            }
        }
    }
}
