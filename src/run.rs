//! Running one scenario under one seed, and the summary it produces.

use std::collections::BTreeMap;
use std::time::Duration;

use reports::AssertionRecord;
use serde::Serialize;
use simulator::trace::TraceWriter;
use simulator::{AppliedFault, FaultAction, RunStats, SimTime};

use crate::analysis::fault_windows;
use crate::build::{build, Derived};
use crate::scenario::Scenario;
use crate::workload::FinishedRun;

/// Everything a run reports; the JSON line of `testbed run --json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub path: String,
    /// The seed.
    pub seed: u64,
    /// `--set` overrides applied to the file.
    pub overrides: Vec<String>,
    /// The scenario's variant, if one was run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Whether every assertion held.
    pub passed: bool,
    /// Determinism fingerprint over every event.
    pub trace_hash: String,
    /// Events dispatched.
    pub events: u64,
    /// Simulated seconds.
    pub sim_seconds: f64,
    /// Wall-clock seconds the simulation took.
    pub wall_seconds: f64,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    /// Injected faults that fired, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Traffic and activity.
    pub stats: RunStats,
    /// Every metric of the analysis.
    pub metrics: BTreeMap<String, Option<f64>>,
    /// Assertion outcomes, in file order.
    pub assertions: Vec<AssertionRecord>,
    /// The first instances behind bad figures (false suspicions, false deaths, ...).
    pub evidence: Vec<String>,
    /// What a reader should know about the run itself: a swarm seed that drew no fault, a
    /// scheduled fault that changed nothing.
    pub notes: Vec<String>,
    /// Everything drawn from the seed.
    pub derived: Derived,
    /// Series over simulated time for the HTML report (not in the JSON summary).
    #[serde(skip)]
    pub plots: Vec<reports::Plot>,
    /// Fault windows for the HTML report.
    #[serde(skip)]
    pub windows: Vec<reports::Window>,
    /// The scenario's TOML as run (for the run log, not the JSON summary).
    #[serde(skip)]
    pub config: String,
}

impl RunSummary {
    /// The fields reports are made of.
    pub fn record(&self, commit: &str) -> reports::RunRecord {
        reports::RunRecord {
            scenario: self.scenario.clone(),
            path: self.path.clone(),
            seed: self.seed,
            passed: self.passed,
            trace_hash: self.trace_hash.clone(),
            sim_seconds: self.sim_seconds,
            wall_seconds: self.wall_seconds,
            commit: commit.to_string(),
            overrides: self.overrides.clone(),
            variant: self.variant.clone(),
            assertions: self.assertions.clone(),
            evidence: self.evidence.clone(),
            plots: self.plots.clone(),
            windows: self.windows.clone(),
        }
    }
}

/// The harness's own metric: scheduled fault actions that changed nothing.
pub const FAULTS_WITHOUT_EFFECT: &str = "faults_without_effect";

/// The idle faults a summary names at most.
const EVIDENCE_IDLE_MAX: usize = 5;

/// Scheduled faults that should have changed something and did not.
#[derive(Default)]
struct Idle {
    /// Described; the run's figure, and what a swarm run fails on.
    unexplained: Vec<String>,
    /// Described: faults whose nodes were down after a crash struck at a storage call (the
    /// simulator's own fault got there first), and the restarts of crashes so preempted.
    preempted: Vec<String>,
}

/// Sorts the scheduled faults that changed nothing: a crash of nodes already down, a restart of
/// running ones, a pause of crashed ones, a link window that changed nothing. Ends (heals, a
/// window's end) and clock corrections are not held to it: they undo, and may find nothing left
/// to undo.
fn idle_faults(applied: &[AppliedFault]) -> Idle {
    let mut idle = Idle::default();
    // Nodes down after a crash struck at a storage call, and nodes whose drawn crash that
    // preempted (their drawn restart will find them up).
    let mut struck = std::collections::BTreeSet::new();
    let mut preempted = std::collections::BTreeSet::new();
    for f in applied {
        let Some(action) = &f.action else {
            struck.extend(f.nodes.iter().copied());
            continue;
        };
        if let FaultAction::Restart(_) = action {
            for n in &f.nodes {
                struck.remove(n);
            }
        }
        let held_to_it = matches!(
            action,
            FaultAction::Partition { .. }
                | FaultAction::Crash(_)
                | FaultAction::Restart(_)
                | FaultAction::Pause { .. }
                | FaultAction::ClockJump { .. }
                | FaultAction::SetLinks(_)
                | FaultAction::LinkWindow { .. }
        );
        if f.effects > 0 || !held_to_it {
            continue;
        }
        let described = format!("{} at {:.3} s changed nothing ({action:?})", f.kind, f.at.as_secs_f64());
        let explained = match action {
            FaultAction::Crash(nodes) | FaultAction::Pause { nodes, .. }
                if nodes.iter().all(|n| struck.contains(&n)) =>
            {
                if let FaultAction::Crash(_) = action {
                    preempted.extend(nodes.iter());
                }
                true
            }
            FaultAction::Restart(nodes) if nodes.iter().all(|n| preempted.contains(&n)) => {
                for n in nodes.iter() {
                    preempted.remove(&n);
                }
                true
            }
            _ => false,
        };
        if explained {
            idle.preempted.push(format!(
                "{described}: its nodes were down after a crash at a storage call"
            ));
        } else {
            idle.unexplained.push(described);
        }
    }
    idle
}

/// A monotonic wall clock from now, for the simulator's handler stopwatch.
// The binary may read the OS's clock; what it reads is reported, never fed to the run.
#[allow(clippy::disallowed_methods)]
fn stopwatch() -> Box<dyn Fn() -> Duration> {
    let origin = std::time::Instant::now();
    Box::new(move || origin.elapsed())
}

/// Runs `scenario` under `seed`. `progress` gets the fraction done now and then; `wall` measures
/// elapsed wall time (the binary's clock: the simulation itself never reads one).
pub fn run_scenario(
    scenario: &Scenario,
    seed: u64,
    trace: Option<TraceWriter>,
    mut progress: impl FnMut(f64),
    wall: impl Fn() -> Duration,
) -> (RunSummary, Option<TraceWriter>) {
    let started = wall();
    let mut built = build(scenario, seed);
    if scenario.workload().times_handlers() {
        built.sim.set_stopwatch(stopwatch());
    }
    if let Some(t) = trace {
        built.sim.set_trace(t);
    }
    let end = built.end;
    built.sim.run_until(end, |now: SimTime| {
        progress(now.as_secs_f64() / end.as_secs_f64().max(1e-9))
    });
    let wall_seconds = (wall() - started).as_secs_f64();
    let sim = &built.sim;
    let workload = scenario.workload();
    let finished = FinishedRun {
        scenario,
        probes: sim.probes(),
        derived: &built.derived,
        applied: sim.applied_faults(),
        nodes: sim.node_count(),
        end,
        stats: sim.stats(),
        handler_time: sim.handler_time(),
    };
    let mut analysis = workload.analyse(&finished);
    let idle = idle_faults(sim.applied_faults());
    analysis
        .metrics
        .insert(FAULTS_WITHOUT_EFFECT.to_string(), Some(idle.unexplained.len() as f64));
    let mut notes: Vec<String> = idle
        .unexplained
        .iter()
        .chain(&idle.preempted)
        .take(EVIDENCE_IDLE_MAX)
        .cloned()
        .collect();
    if scenario.swarm.is_some() && built.derived.schedule.is_empty() {
        notes.push("this seed drew no fault: it tested the quiet path only".into());
    }
    let mut assertions: Vec<AssertionRecord> = scenario
        .asserts
        .iter()
        .map(|a| {
            let value = analysis.value(&a.metric, sim.faults());
            AssertionRecord {
                name: a.metric.clone(),
                op: a.op.to_string(),
                value,
                threshold: a.threshold,
                passed: a.holds(value),
            }
        })
        .collect();
    // Swarm mode draws faults to exercise the system: one that changed nothing (a pause of a
    // node already down) would make a seed look tested when it was not.
    if scenario.swarm.is_some() && !idle.unexplained.is_empty() {
        assertions.push(AssertionRecord {
            name: format!("{FAULTS_WITHOUT_EFFECT} (swarm: every drawn fault must take effect)"),
            op: "==".into(),
            value: Some(idle.unexplained.len() as f64),
            threshold: 0.0,
            passed: false,
        });
    }
    // Figures computed from a truncated probe record would be wrong: such a run fails, saying why.
    let dropped = sim.stats().probes_dropped;
    if dropped > 0 {
        assertions.push(AssertionRecord {
            name: format!(
                "probes_dropped (over simulator::PROBES_MAX = {})",
                simulator::PROBES_MAX
            ),
            op: "==".into(),
            value: Some(dropped as f64),
            threshold: 0.0,
            passed: false,
        });
    }
    let sim_seconds = end.as_secs_f64();
    let plots = workload.plots(&finished);
    let windows = fault_windows(&built.derived, sim_seconds);
    let summary = RunSummary {
        scenario: scenario.name.clone(),
        path: scenario.path.clone(),
        seed,
        overrides: scenario.overrides.clone(),
        variant: scenario.variant.clone(),
        passed: assertions.iter().all(|a| a.passed),
        trace_hash: sim.trace_hash(),
        events: sim.stats().events,
        sim_seconds,
        wall_seconds,
        speedup: if wall_seconds > 0.0 {
            sim_seconds / wall_seconds
        } else {
            f64::INFINITY
        },
        faults: sim.faults().iter().map(|(k, v)| (k.to_string(), v)).collect(),
        stats: sim.stats().clone(),
        metrics: analysis.metrics,
        evidence: analysis.evidence,
        notes,
        assertions,
        derived: built.derived,
        plots,
        windows,
        config: scenario.source.clone(),
    };
    let trace = built.sim.take_trace();
    (summary, trace)
}

#[cfg(test)]
mod tests {
    use simulator::{NodeSet, SimTime};

    use super::*;

    fn applied(
        at_ms: u64,
        kind: &'static str,
        effects: u64,
        nodes: &[u32],
        action: Option<FaultAction>,
    ) -> AppliedFault {
        AppliedFault {
            at: SimTime::from_millis(at_ms),
            kind,
            effects,
            nodes: nodes.to_vec(),
            action,
        }
    }

    #[test]
    fn a_fault_that_changed_nothing_is_named_unless_a_storage_crash_preempted_it() {
        let set = |n: &[u32]| NodeSet::from_indices(n.iter().copied());
        let log = [
            // Node 1 crashes at a storage call; a drawn crash of it finds it down...
            applied(100, "crash_at_io", 1, &[1], None),
            applied(200, "crash", 0, &[], Some(FaultAction::Crash(set(&[1])))),
            // ...comes back by itself, and the drawn restart finds it up: both preempted.
            applied(600, "restart", 1, &[1], Some(FaultAction::Restart(set(&[1])))),
            applied(900, "restart", 0, &[], Some(FaultAction::Restart(set(&[1])))),
            // A pause of node 2, which nothing took down: unexplained.
            applied(1000, "crash", 1, &[2], Some(FaultAction::Crash(set(&[2])))),
            applied(
                1100,
                "pause",
                0,
                &[],
                Some(FaultAction::Pause {
                    nodes: set(&[2]),
                    duration: Duration::from_secs(1),
                }),
            ),
            // A heal that found nothing to heal is an end, not held to it.
            applied(1200, "heal", 0, &[], Some(FaultAction::Heal)),
        ];
        let idle = idle_faults(&log);
        assert_eq!(idle.preempted.len(), 2, "{:?}", idle.preempted);
        assert_eq!(idle.unexplained.len(), 1, "{:?}", idle.unexplained);
        assert!(
            idle.unexplained[0].starts_with("pause at 1.100 s changed nothing"),
            "{:?}",
            idle.unexplained
        );
    }
}
