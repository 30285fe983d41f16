//! Shrinking a failing run: search for a smaller scenario (fewer faults, fewer nodes, a shorter
//! run) that fails the same way under the same seed, so the failure is easier to read.
//!
//! First the seed's random choices are made explicit ([`resolved_faults`]): swarm draws become
//! plain faults and `random k` selections become node lists. Removing one fault then leaves every
//! other fault as it was, which is what makes the search converge. Then, until nothing changes or
//! the run budget is spent: drop faults (delta debugging: halves, quarters, … single faults),
//! drop nodes from the top (faults keep the nodes that remain), and shorten the run.
//!
//! "Fails the same way" means one of the assertions that failed originally still fails, and in the
//! same manner: measured beyond its bound, or never measured. A smaller scenario failing only for
//! another reason (too few nodes to converge, too short to measure) is not taken.
//!
//! Every candidate is printed to TOML and parsed back before it runs, so what is printed at the
//! end is exactly what failed.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::build::resolved_faults;
use crate::run::{run_scenario, RunSummary};
use crate::scenario::{parse, to_toml, FaultKind, FaultPlan, Scenario, Selection};

/// The failed assertions of a run: (metric, whether it was measured).
type Signature = BTreeSet<(String, bool)>;

fn signature(summary: &RunSummary) -> Signature {
    summary
        .assertions
        .iter()
        .filter(|a| !a.passed)
        .map(|a| (a.name.clone(), a.value.is_some()))
        .collect()
}

/// Why shrinking could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    /// The seed passes: there is nothing to shrink.
    #[error("{scenario} passes under seed {seed}: there is no failure to shrink")]
    Passes {
        /// Scenario name.
        scenario: String,
        /// The seed.
        seed: u64,
    },
}

/// The result of a search.
pub struct Shrunk {
    /// The smallest failing scenario found (its default seed is the seed searched).
    pub scenario: Scenario,
    /// Its run.
    pub summary: RunSummary,
    /// The original's run.
    pub original: RunSummary,
    /// Faults in the original once swarm draws were made explicit.
    pub original_faults: usize,
    /// Runs made, the original's included.
    pub runs: u32,
    /// Whether the search stopped at the budget rather than at a fixpoint.
    pub budget_spent: bool,
}

/// The search state: the best failing scenario so far and the budget.
struct Search<'a> {
    seed: u64,
    want: Signature,
    best: Scenario,
    best_summary: RunSummary,
    runs: u32,
    max_runs: u32,
    wall: &'a dyn Fn() -> Duration,
    note: &'a mut dyn FnMut(&str),
}

impl Search<'_> {
    fn spent(&self) -> bool {
        self.runs >= self.max_runs
    }

    /// Runs `candidate`; keeps it if it fails the same way. Candidates that do not make a valid
    /// scenario (say, a workload seed list longer than the nodes left) are skipped, not run.
    fn try_candidate(&mut self, mut candidate: Scenario, what: &str) -> bool {
        if self.spent() {
            return false;
        }
        candidate.default_seed = self.seed;
        let text = to_toml(&candidate);
        let Ok(mut parsed) = parse(&self.best.path, &text) else {
            return false;
        };
        parsed.path = self.best.path.clone();
        self.runs += 1;
        let (summary, _) = run_scenario(&parsed, self.seed, None, |_| {}, self.wall);
        let got = signature(&summary);
        let same_failure = !summary.passed && got.intersection(&self.want).next().is_some();
        (self.note)(&format!(
            "run {:>3}: {what}: {}",
            self.runs,
            if same_failure {
                "still fails, kept"
            } else if summary.passed {
                "passes"
            } else {
                "fails differently"
            }
        ));
        if same_failure {
            self.best = parsed;
            self.best_summary = summary;
        }
        same_failure
    }

    /// Delta debugging over the faults: try removing chunks, halving the chunk size when no chunk
    /// can go, down to single faults.
    fn drop_faults(&mut self) -> bool {
        let mut progress = false;
        let mut chunk = self.best.faults.len().div_ceil(2).max(1);
        while !self.best.faults.is_empty() && !self.spent() {
            let mut removed_any = false;
            let mut start = 0;
            while start < self.best.faults.len() && !self.spent() {
                let end = (start + chunk).min(self.best.faults.len());
                let mut candidate = self.best.clone();
                candidate.faults.drain(start..end);
                let what = format!("without fault(s) {}..{} of {}", start + 1, end, self.best.faults.len());
                if self.try_candidate(candidate, &what) {
                    removed_any = true;
                    progress = true;
                } else {
                    start = end;
                }
            }
            if chunk == 1 && !removed_any {
                break;
            }
            if !removed_any {
                chunk = chunk.div_ceil(2);
            }
        }
        progress
    }

    /// Fewer nodes: half as many, then a quarter fewer, then one fewer.
    fn drop_nodes(&mut self) -> bool {
        let mut progress = false;
        loop {
            let n = self.best.nodes.len();
            let accepted = [n / 2, n - n / 4, n - 1]
                .into_iter()
                .filter(|&k| (2..n).contains(&k))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .any(|k| {
                    let candidate = with_nodes(&self.best, k);
                    self.try_candidate(candidate, &format!("{k} nodes instead of {n}"))
                });
            if !accepted {
                return progress;
            }
            progress = true;
        }
    }

    /// A shorter run: half, then three quarters, then seven eighths of the length.
    fn shorten(&mut self) -> bool {
        let mut progress = false;
        loop {
            let d = self.best.duration;
            let accepted = [d / 2, d * 3 / 4, d * 7 / 8]
                .into_iter()
                .filter(|&c| c >= Duration::from_millis(100) && c < d)
                .any(|c| {
                    let candidate = with_duration(&self.best, c);
                    self.try_candidate(
                        candidate,
                        &format!("{:.1}s instead of {:.1}s", c.as_secs_f64(), d.as_secs_f64()),
                    )
                });
            if !accepted {
                return progress;
            }
            progress = true;
        }
    }
}

/// `scenario` cut to its first `k` nodes; faults keep the nodes that remain, and a fault left
/// with nobody to act on is dropped.
fn with_nodes(scenario: &Scenario, k: usize) -> Scenario {
    let mut s = scenario.clone();
    s.nodes.truncate(k);
    let k32 = k as u32;
    s.workload.seeds = s.workload.seeds.min(k32);
    if let Some(consensus) = &mut s.consensus {
        // The last node left keeps running a client.
        consensus.validators = consensus.validators.min(k32.saturating_sub(1)).max(1);
    }
    // Crashes, restarts and pauses keep to the nodes faults may stop; `random k` draws among
    // them too (`Scenario::faultable_nodes`).
    let faultable = s.faultable_nodes().min(k32);
    let keep = |sel: &mut Selection, below: u32| -> bool {
        match sel {
            Selection::All => true,
            Selection::List(list) => {
                list.retain(|&i| i < below);
                !list.is_empty()
            }
            Selection::Range(a, b) => {
                *b = (*b).min(below);
                a < b
            }
            Selection::Random(n) => {
                *n = (*n).min(faultable);
                *n > 0
            }
        }
    };
    s.faults.retain_mut(|f: &mut FaultPlan| match &mut f.kind {
        FaultKind::Partition { a, b, .. } => keep(a, k32) & keep(b, k32),
        FaultKind::Crash { nodes, .. } | FaultKind::Restart { nodes } | FaultKind::Pause { nodes, .. } => {
            keep(nodes, faultable)
        }
        FaultKind::ClockJump { nodes, .. } | FaultKind::ClockCorrect { nodes } => keep(nodes, k32),
        FaultKind::Heal | FaultKind::Loss { .. } | FaultKind::Latency { .. } => true,
    });
    s
}

/// `scenario` run for `d` only; faults after the end are dropped.
fn with_duration(scenario: &Scenario, d: Duration) -> Scenario {
    let mut s = scenario.clone();
    s.duration = d;
    s.faults.retain(|f| f.at <= d);
    s
}

/// Searches for a smaller scenario failing like `scenario` under `seed`, making at most
/// `max_runs` runs. `note` hears each step; `wall` reads the wall clock for run timings.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    max_runs: u32,
    wall: &dyn Fn() -> Duration,
    note: &mut dyn FnMut(&str),
) -> Result<Shrunk, ShrinkError> {
    let (original, _) = run_scenario(scenario, seed, None, |_| {}, wall);
    if original.passed {
        return Err(ShrinkError::Passes {
            scenario: scenario.name.clone(),
            seed,
        });
    }
    let want = signature(&original);
    note(&format!(
        "run   1: original fails: {}",
        want.iter()
            .map(|(m, measured)| if *measured {
                m.clone()
            } else {
                format!("{m} (never measured)")
            })
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut explicit = scenario.clone();
    explicit.faults = resolved_faults(scenario, seed);
    if let Some(plan) = &mut explicit.consensus {
        plan.byzantine = crate::build::resolved_adversaries(scenario, seed);
    }
    explicit.swarm = None;
    let original_faults = explicit.faults.len();
    let mut search = Search {
        seed,
        want,
        best: scenario.clone(),
        best_summary: original.clone(),
        runs: 1,
        max_runs,
        wall,
        note,
    };
    if !search.try_candidate(explicit, "seed's random choices written out") {
        // The written-out form should replay the original exactly; if it does not fail alike,
        // shrink the original as it stands (its faults then still draw from the seed).
        (search.note)("note: the written-out scenario does not fail alike; shrinking the original as is");
    } else if search.best_summary.trace_hash != original.trace_hash {
        (search.note)("note: the written-out scenario fails alike but its trace differs from the original's");
    }
    for _round in 0..4 {
        let changed = search.drop_faults() | search.drop_nodes() | search.shorten();
        if !changed || search.spent() {
            break;
        }
    }
    let mut best = search.best;
    best.description = format!(
        "Shrunk from {} under seed {seed}: {} fault(s), {} node(s), {:.1}s (was {original_faults}, {}, {:.1}s). {}",
        scenario.path,
        best.faults.len(),
        best.nodes.len(),
        best.duration.as_secs_f64(),
        scenario.nodes.len(),
        scenario.duration.as_secs_f64(),
        scenario.description
    );
    Ok(Shrunk {
        scenario: best,
        summary: search.best_summary,
        original,
        original_faults,
        runs: search.runs,
        budget_spent: search.runs >= max_runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A swarm scenario whose assertion fails because of exactly one of its faults: node 5 crashes
    /// for good, and declaring it dead takes seconds, not the 1 s asserted. Clock jumps and light
    /// loss cause no deaths; without the crash the metric is not measured at all.
    const SWARM_WITH_ONE_CULPRIT: &str = r#"
duration = "40s"
assert = ["death_ms_max <= 1000"]
[nodes]
count = 12
[network]
latency = "2ms"
[workload]
kind = "membership"
settle = "5s"
[swarm]
window = ["5s", "25s"]
clock_jumps = [2, 3]
clock_jump_max = "2s"
loss_bursts = [1, 2]
loss = [0.01, 0.03]
[[fault]]
at = "10s"
kind = "crash"
nodes = [5]
"#;

    #[test]
    fn a_failure_shrinks_to_its_cause_and_the_printed_scenario_still_fails() {
        let scenario = parse("culprit.toml", SWARM_WITH_ONE_CULPRIT).unwrap();
        let mut notes = Vec::new();
        let shrunk = shrink(&scenario, 3, 200, &|| Duration::ZERO, &mut |n| {
            notes.push(n.to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!shrunk.summary.passed);
        assert!(
            shrunk.original_faults >= 4,
            "swarm draws were written out: {}",
            shrunk.original_faults
        );
        assert_eq!(shrunk.scenario.faults.len(), 1, "{}", to_toml(&shrunk.scenario));
        assert!(matches!(shrunk.scenario.faults[0].kind, FaultKind::Crash { .. }));
        assert!(shrunk.scenario.nodes.len() < 12);
        assert!(shrunk.scenario.duration < Duration::from_secs(40));
        // What is printed is a scenario that fails the same way when read back and run.
        let printed = parse("printed.toml", &to_toml(&shrunk.scenario)).unwrap();
        let (again, _) = run_scenario(&printed, printed.default_seed, None, |_| {}, || Duration::ZERO);
        assert!(!again.passed);
        assert_eq!(again.trace_hash, shrunk.summary.trace_hash);
        assert!(notes.iter().any(|n| n.contains("still fails, kept")));
    }

    #[test]
    fn a_passing_seed_is_refused() {
        let scenario = parse(
            "ok.toml",
            "duration = \"3s\"\n[nodes]\ncount = 3\n[workload]\nkind = \"membership\"\n",
        )
        .unwrap();
        let err = shrink(&scenario, 1, 10, &|| Duration::ZERO, &mut |_| {}).err().unwrap();
        assert!(err.to_string().contains("passes under seed 1"));
    }
}
