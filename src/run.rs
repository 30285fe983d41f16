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

/// The scheduled faults that should have changed something and did not, described: a crash of
/// nodes already down, a restart of running ones, a pause of crashed ones, a link window that
/// changed nothing. Ends (heals, a window's end) and clock corrections are not held to it: they
/// undo, and may find nothing left to undo.
fn idle_faults(applied: &[AppliedFault]) -> Vec<String> {
    applied
        .iter()
        .filter(|f| f.effects == 0)
        .filter(|f| {
            matches!(
                f.action,
                Some(
                    FaultAction::Partition { .. }
                        | FaultAction::Crash(_)
                        | FaultAction::Restart(_)
                        | FaultAction::Pause { .. }
                        | FaultAction::ClockJump { .. }
                        | FaultAction::SetLinks(_)
                        | FaultAction::LinkWindow { .. }
                )
            )
        })
        .map(|f| {
            format!(
                "{} at {:.3} s changed nothing ({:?})",
                f.kind,
                f.at.as_secs_f64(),
                f.action.as_ref().expect("filtered on Some")
            )
        })
        .collect()
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
        nodes: sim.node_count(),
        end,
    };
    let mut analysis = workload.analyse(&finished);
    let idle = idle_faults(sim.applied_faults());
    analysis
        .metrics
        .insert(FAULTS_WITHOUT_EFFECT.to_string(), Some(idle.len() as f64));
    let mut notes: Vec<String> = idle.iter().take(EVIDENCE_IDLE_MAX).cloned().collect();
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
    if scenario.swarm.is_some() && !idle.is_empty() {
        assertions.push(AssertionRecord {
            name: format!("{FAULTS_WITHOUT_EFFECT} (swarm: every drawn fault must take effect)"),
            op: "==".into(),
            value: Some(idle.len() as f64),
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
