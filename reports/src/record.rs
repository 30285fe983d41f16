//! Runs as the run log records them, and the report built from any set of them: one suite's runs,
//! a sweep's thousand seeds, or the logs of several CI shards concatenated.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Case, Outcome, Plot, ReportError, Row, Section, Window};

/// One assertion's outcome in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssertionRecord {
    /// The metric.
    pub name: String,
    /// The operator.
    pub op: String,
    /// Its measured value (`null`: never measured, which fails).
    pub value: Option<f64>,
    /// The threshold.
    pub threshold: f64,
    /// Whether it held.
    pub passed: bool,
}

impl AssertionRecord {
    /// `metric op threshold`, as written in scenario files.
    pub fn expression(&self) -> String {
        format!("{} {} {}", self.name, self.op, format_value(Some(self.threshold)))
    }
}

/// The fields of a run-log line that reports are made of. A line holds more (metrics, faults,
/// derived values, the scenario's TOML); those are ignored here, so older and newer lines read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub path: String,
    /// The seed.
    pub seed: u64,
    /// Whether every assertion held.
    pub passed: bool,
    /// Determinism fingerprint.
    pub trace_hash: String,
    /// Simulated seconds.
    pub sim_seconds: f64,
    /// Wall seconds.
    pub wall_seconds: f64,
    /// The code's commit.
    #[serde(default)]
    pub commit: String,
    /// `--set` overrides the run used.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// The scenario's variant the run used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Assertion outcomes.
    #[serde(default)]
    pub assertions: Vec<AssertionRecord>,
    /// First instances behind bad figures.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Series over simulated time (recorded for single runs, suites and failing sweep seeds).
    #[serde(default)]
    pub plots: Vec<Plot>,
    /// Fault windows.
    #[serde(default)]
    pub windows: Vec<Window>,
}

impl RunRecord {
    /// The command that replays this run exactly (given the same commit).
    pub fn replay_command(&self) -> String {
        let mut cmd = format!("testbed run {} --seed {}", self.path, self.seed);
        if let Some(v) = &self.variant {
            cmd.push_str(&format!(" --variant {v}"));
        }
        for o in &self.overrides {
            cmd.push_str(&format!(" --set '{o}'"));
        }
        cmd
    }

    /// The failed assertions with their measured values, `; `-separated.
    pub fn failure_reasons(&self) -> String {
        self.assertions
            .iter()
            .filter(|a| !a.passed)
            .map(|a| format!("{} (measured {})", a.expression(), format_value(a.value)))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A figure for people: integers without decimals, `none` for never measured.
pub fn format_value(v: Option<f64>) -> String {
    match v {
        None => "none".to_string(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// What reading run logs produced.
#[derive(Debug, Default)]
pub struct RunLogs {
    /// Every readable run, in file order.
    pub runs: Vec<RunRecord>,
    /// `file:line: why` for each line skipped (a line cut short by a killed process, say).
    pub skipped: Vec<String>,
}

/// Reads the JSON-lines run logs at `paths`. Unreadable lines are skipped and listed, so one
/// damaged line does not cost the rest of a merged log; an unreadable file is an error.
pub fn read_runs(paths: &[&Path]) -> Result<RunLogs, ReportError> {
    let mut logs = RunLogs::default();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(ReportError::reading(path))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<RunRecord>(line) {
                Ok(run) => logs.runs.push(run),
                Err(e) => logs
                    .skipped
                    .push(format!("{}:{}: not a run record: {e}", path.display(), i + 1)),
            }
        }
    }
    Ok(logs)
}

/// The report's content: one section and one JUnit case per scenario.
#[derive(Debug, Default)]
pub struct Report {
    /// HTML sections, by scenario name.
    pub sections: Vec<Section>,
    /// JUnit cases, by scenario name.
    pub cases: Vec<Case>,
}

/// Builds the report of `runs`. A scenario run under several seeds gets one section: its seed
/// count, the failing seeds with their replay commands, the spread of each asserted metric over
/// seeds, and the plots of one run (a failing one if any failed, so the plots show the failure).
/// When a seed was run more than once, its last run counts.
pub fn build_report(runs: &[RunRecord]) -> Report {
    let mut by_scenario: BTreeMap<&str, BTreeMap<u64, &RunRecord>> = BTreeMap::new();
    for run in runs {
        by_scenario.entry(&run.scenario).or_default().insert(run.seed, run);
    }
    let mut report = Report::default();
    for (name, seeds) in by_scenario {
        let runs: Vec<&RunRecord> = seeds.into_values().collect();
        let failing: Vec<&RunRecord> = runs.iter().copied().filter(|r| !r.passed).collect();
        let shown = pick_shown(&runs, &failing);
        let single = runs.len() == 1;
        report.sections.push(Section {
            name: name.to_string(),
            seed: shown.seed,
            passed: failing.is_empty(),
            duration_s: shown.sim_seconds,
            trace_hash: shown.trace_hash.clone(),
            rows: shown
                .assertions
                .iter()
                .map(|a| Row {
                    assertion: a.expression(),
                    measured: format_value(a.value),
                    passed: a.passed,
                })
                .collect(),
            plots: shown.plots.clone(),
            windows: shown.windows.clone(),
            seeds: (!single).then(|| seed_summary(&runs, &failing)),
        });
        let seconds = runs.iter().map(|r| r.wall_seconds).sum();
        report.cases.push(Case {
            name: if single {
                format!("{name} (seed {})", shown.seed)
            } else {
                format!("{name} ({} seeds)", runs.len())
            },
            seconds,
            outcome: match failing.as_slice() {
                [] => Outcome::Passed,
                [one] if single => Outcome::Failed(one.failure_reasons()),
                many => Outcome::Failed(format!(
                    "{} of {} seeds failed: {}",
                    many.len(),
                    runs.len(),
                    many.iter()
                        .map(|r| format!("seed {}: {}", r.seed, r.failure_reasons()))
                        .collect::<Vec<_>>()
                        .join(" | ")
                )),
            },
            output: case_output(shown, &failing),
        });
    }
    report
}

/// The run whose plots and assertions the section shows: a failing run with plots, else any
/// failing run, else a run with plots, else the last.
fn pick_shown<'a>(runs: &[&'a RunRecord], failing: &[&'a RunRecord]) -> &'a RunRecord {
    let with_plots = |rs: &[&'a RunRecord]| rs.iter().copied().find(|r| !r.plots.is_empty());
    with_plots(failing)
        .or_else(|| failing.first().copied())
        .or_else(|| with_plots(runs))
        .unwrap_or_else(|| runs[runs.len() - 1])
}

fn case_output(shown: &RunRecord, failing: &[&RunRecord]) -> String {
    let mut out = format!("trace_hash {}\nreplay: {}\n", shown.trace_hash, shown.replay_command());
    for e in &shown.evidence {
        out.push_str(e);
        out.push('\n');
    }
    for r in failing.iter().filter(|r| r.seed != shown.seed) {
        out.push_str(&format!("failing seed {}: {}\n", r.seed, r.replay_command()));
    }
    out
}

/// Over-seeds figures of one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedSummary {
    /// Seeds run.
    pub seeds: usize,
    /// Seeds that passed.
    pub passed: usize,
    /// Failing seeds with what failed and the command that replays each.
    pub failing: Vec<(u64, String, String)>,
    /// Per asserted metric: min, median, p99, max over the seeds that measured it.
    pub spread: Vec<Spread>,
    /// Distinct commits the runs came from (more than one means mixed code).
    pub commits: Vec<String>,
}

/// One metric's distribution over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Spread {
    /// The metric.
    pub metric: String,
    /// Seeds that measured it.
    pub measured: usize,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

fn seed_summary(runs: &[&RunRecord], failing: &[&RunRecord]) -> SeedSummary {
    let mut values: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in runs {
        for a in &r.assertions {
            let entry = values.entry(&a.name).or_default();
            if let Some(v) = a.value.filter(|v| v.is_finite()) {
                entry.push(v);
            }
        }
    }
    let spread = values
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(metric, mut v)| {
            v.sort_by(f64::total_cmp);
            let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
            Spread {
                metric: metric.to_string(),
                measured: v.len(),
                min: v[0],
                median: rank(0.5),
                p99: rank(0.99),
                max: v[v.len() - 1],
            }
        })
        .collect();
    let mut commits: Vec<String> = runs
        .iter()
        .map(|r| r.commit.clone())
        .filter(|c| !c.is_empty())
        .collect();
    commits.sort();
    commits.dedup();
    SeedSummary {
        seeds: runs.len(),
        passed: runs.len() - failing.len(),
        failing: failing
            .iter()
            .map(|r| (r.seed, r.failure_reasons(), r.replay_command()))
            .collect(),
        spread,
        commits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: &str, seed: u64, value: f64) -> RunRecord {
        let passed = value <= 1000.0;
        RunRecord {
            scenario: scenario.into(),
            path: format!("scenarios/{scenario}.toml"),
            seed,
            passed,
            trace_hash: format!("h{seed}"),
            sim_seconds: 60.0,
            wall_seconds: 0.5,
            commit: "abc".into(),
            overrides: vec![],
            variant: None,
            assertions: vec![AssertionRecord {
                name: "detection_ms_p99".into(),
                op: "<=".into(),
                value: Some(value),
                threshold: 1000.0,
                passed,
            }],
            evidence: vec![],
            plots: vec![],
            windows: vec![],
        }
    }

    #[test]
    fn merged_shards_make_one_section_per_scenario_with_failing_seeds_and_spread() {
        let mut runs: Vec<RunRecord> = (1..=100).map(|s| run("pd", s, 500.0 + s as f64)).collect();
        runs[41] = run("pd", 42, 1500.0);
        runs.push(run("other", 7, 10.0));
        let report = build_report(&runs);
        assert_eq!(report.sections.len(), 2);
        let pd = report.sections.iter().find(|s| s.name == "pd").unwrap();
        assert!(!pd.passed);
        assert_eq!(pd.seed, 42, "the section shows the failing run");
        let seeds = pd.seeds.as_ref().unwrap();
        assert_eq!((seeds.seeds, seeds.passed), (100, 99));
        assert_eq!(seeds.failing[0].0, 42);
        assert!(seeds.failing[0].2.contains("--seed 42"));
        assert_eq!(seeds.spread[0].max, 1500.0);
        assert_eq!(seeds.spread[0].min, 501.0);
        let case = report.cases.iter().find(|c| c.name.starts_with("pd")).unwrap();
        assert_eq!(case.name, "pd (100 seeds)");
        assert!(matches!(&case.outcome, Outcome::Failed(m) if m.contains("1 of 100 seeds failed")));
        let other = report.cases.iter().find(|c| c.name.starts_with("other")).unwrap();
        assert_eq!(other.name, "other (seed 7)");
        assert_eq!(other.outcome, Outcome::Passed);
    }

    #[test]
    fn a_seed_run_twice_counts_once_with_its_last_run() {
        let report = build_report(&[run("pd", 1, 5000.0), run("pd", 1, 10.0)]);
        assert!(report.sections[0].passed);
        assert!(report.sections[0].seeds.is_none());
    }

    #[test]
    fn damaged_lines_are_skipped_and_named() {
        let dir = std::env::temp_dir().join(format!("reports-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runs.jsonl");
        let good = serde_json::to_string(&run("pd", 3, 10.0)).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"scenario\": \"pd\", \"se\n\n{good}\n")).unwrap();
        let logs = read_runs(&[&path]).unwrap();
        assert_eq!(logs.runs.len(), 2);
        assert_eq!(logs.skipped.len(), 1);
        assert!(logs.skipped[0].contains("runs.jsonl:2:"), "{}", logs.skipped[0]);
        let missing = read_runs(&[&dir.join("absent.jsonl")]).unwrap_err();
        assert!(missing.to_string().contains("absent.jsonl"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
