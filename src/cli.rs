//! The command bodies of the `testbed` binary: `run`, `suite`, `sweep`, `shrink`, `report` and
//! `bench simspeed`. `main.rs` parses the arguments and calls these; each returns the process's
//! exit code (0: passed, 1: an assertion failed, 2: bad input).

// The CLI is a backend: it times runs with the OS clock and asks git for the commit. The
// simulation itself never reads a clock (`run_scenario` is handed one).
#![allow(clippy::disallowed_methods)]

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use simulator::trace::TraceWriter;

use crate::progress::ProgressBar;
use crate::run::{run_scenario, RunSummary};
use crate::{scenario, shrink, sweep};

/// Exit code for bad input (scenario files, flags).
pub const EXIT_BAD_INPUT: u8 = 2;

/// `testbed bench simspeed`: the all-to-all flood over `nodes` hosts for `seconds` simulated
/// seconds; exit 1 unless every datagram arrived.
pub fn bench_simspeed(nodes: u32, seconds: u64, json: bool) -> ExitCode {
    let origin = Instant::now();
    let r = simulator::flood::run(nodes, seconds, simulator::LinkModel::default(), || origin.elapsed());
    if json {
        match serde_json::to_string(&r) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("error: cannot encode result: {e}"),
        }
    } else {
        println!(
            "testbed: {} hosts, {} simulated s: {} datagrams in {:.2} s wall = {:.0} delivered per wall second ({} events)",
            r.nodes, r.sim_seconds, r.delivered, r.wall_seconds, r.delivered_per_wall_second, r.events
        );
    }
    if r.delivered == r.expected {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: delivered {} datagrams, expected {}", r.delivered, r.expected);
        ExitCode::FAILURE
    }
}

/// Where runs are recorded, and the code they ran.
pub struct RunLog {
    /// The reports directory (`runs.jsonl`, `index.html`, `junit.xml`).
    pub dir: PathBuf,
    /// The commit of the checkout, `-dirty` if tracked files differ ([`current_commit`]).
    pub commit: String,
}

/// Whether a run's line in the log carries its plot series (several kB): always for single runs
/// and suites, only for failing seeds in sweeps, whose passing seeds are many and alike.
#[derive(Copy, Clone, PartialEq, Eq)]
enum WithPlots {
    Yes,
    IfFailed,
}

impl RunLog {
    /// Appends `summary` to `runs.jsonl` with the commit and the scenario as run; a failure to
    /// record is reported, not fatal.
    fn record(&self, summary: &RunSummary, plots: WithPlots) {
        let mut line = match serde_json::to_value(summary) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("warning: cannot encode run record: {e}");
                return;
            }
        };
        line["commit"] = serde_json::Value::String(self.commit.clone());
        line["config"] = serde_json::Value::String(summary.config.clone());
        if plots == WithPlots::Yes || !summary.passed {
            line["plots"] = serde_json::to_value(&summary.plots).unwrap_or_default();
            line["windows"] = serde_json::to_value(&summary.windows).unwrap_or_default();
        }
        if let Err(e) = reports::append_run(&self.dir.join("runs.jsonl"), &line) {
            eprintln!("warning: {e}");
        }
    }
}

/// The commit of the checkout the binary runs in, for the run log: `-dirty` when tracked files
/// differ from it (the run then cannot be replayed from the commit alone), "unknown" outside git.
pub fn current_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        None => "unknown".to_string(),
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.trim().is_empty());
            format!("{}{}", commit.trim(), if dirty { "-dirty" } else { "" })
        }
    }
}

/// Loads the scenario at `path` with `overrides`, or says why not and yields exit code 2.
fn load_scenario(path: &Path, overrides: &[String], variant: Option<&str>) -> Result<scenario::Scenario, ExitCode> {
    scenario::load_variant(path, variant, overrides).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

/// `testbed run`: one scenario (or one of its variants) under one seed, with its summary, the
/// seed's derivations, and optionally the JSON line and a trace file.
pub fn run_one(
    path: &Path,
    seed: Option<u64>,
    json: bool,
    trace_path: Option<&Path>,
    overrides: &[String],
    variant: Option<&str>,
    log: &RunLog,
) -> ExitCode {
    let scenario = match load_scenario(path, overrides, variant) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seed = seed.unwrap_or(scenario.default_seed);
    let trace = match trace_path {
        None => None,
        Some(p) => match File::create(p) {
            Ok(f) => Some(TraceWriter::new(Box::new(BufWriter::new(f)))),
            Err(e) => {
                eprintln!("error: cannot create trace file {}: {e}", p.display());
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        },
    };
    eprintln!("{}: seed {seed}", scenario.name);
    let mut bar = ProgressBar::new(&scenario.name);
    let origin = Instant::now();
    let (summary, trace) = run_scenario(&scenario, seed, trace, |f| bar.update(f), || origin.elapsed());
    bar.finish();
    if let Some(t) = trace {
        if let Err(e) = t.finish() {
            eprintln!(
                "error: writing trace {}: {e}",
                trace_path.map(|p| p.display().to_string()).unwrap_or_default()
            );
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    }
    log.record(&summary, WithPlots::Yes);
    print_derived(&summary);
    print_human(&summary);
    if json {
        match serde_json::to_string(&summary) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("error: cannot encode summary: {e}"),
        }
    }
    if summary.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints what the seed decided, so a run can be understood and replayed.
fn print_derived(s: &RunSummary) {
    let d = &s.derived;
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if v.is_empty() {
            "-".to_string()
        } else {
            format!("[{lo:.3}, {hi:.3}]")
        }
    };
    eprintln!(
        "derived from seed {}: clock offsets {} ms, drift {} ppm, starts {} s (per node in --json)",
        s.seed,
        range(&d.clock_offset_ms),
        range(&d.drift_ppm),
        range(&d.start_s)
    );
    if !d.byzantine.is_empty() {
        eprintln!("  byzantine validators: {}", d.byzantine.join(", "));
    }
    for f in &d.schedule {
        let mut who = String::new();
        if !f.nodes.is_empty() {
            who = format!(" nodes {:?}", f.nodes);
        }
        if !f.other_side.is_empty() {
            who.push_str(&format!(" | {:?}", f.other_side));
        }
        eprintln!("  at {:>9.3}s {}{} {}", f.at_s, f.kind, who, f.detail);
    }
}

fn print_human(s: &RunSummary) {
    println!(
        "{} seed={} {} trace_hash={} events={} sim={:.1}s wall={:.2}s ({:.1}x)",
        s.scenario,
        s.seed,
        if s.passed { "PASSED" } else { "FAILED" },
        s.trace_hash,
        s.events,
        s.sim_seconds,
        s.wall_seconds,
        s.speedup
    );
    let faults: Vec<String> = s.faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "  faults: {}",
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(" ")
        }
    );
    for note in &s.notes {
        println!("  note: {note}");
    }
    for e in &s.evidence {
        println!("  evidence: {e}");
    }
    for a in &s.assertions {
        println!(
            "  [{}] {} {} {} (measured {})",
            if a.passed { "ok" } else { "FAIL" },
            a.name,
            a.op,
            reports::format_value(Some(a.threshold)),
            reports::format_value(a.value)
        );
    }
}

/// Which scenario to run: a file, maybe one of its variants, with `--set` overrides.
pub struct ScenarioSource {
    /// The scenario file.
    pub path: PathBuf,
    /// `--set KEY=VALUE` overrides.
    pub overrides: Vec<String>,
    /// The `[[variant]]` to run, if any.
    pub variant: Option<String>,
}

/// `testbed sweep`: one scenario over many seeds (one shard of them) in parallel, listing the
/// failing seeds with the command that replays each.
pub fn sweep_one(
    source: &ScenarioSource,
    range: sweep::SeedRange,
    shard: Option<sweep::Shard>,
    jobs: Option<usize>,
    json: bool,
    log: &RunLog,
) -> ExitCode {
    let scenario = match load_scenario(&source.path, &source.overrides, source.variant.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let shard = shard.unwrap_or(sweep::Shard { index: 1, count: 1 });
    let seeds = shard.seeds(range);
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!(
        "{}: {} seed(s) of {}..={} (shard {}/{}) on {jobs} thread(s)",
        scenario.name,
        seeds.len(),
        range.first,
        range.last,
        shard.index,
        shard.count
    );
    let bar = std::sync::Mutex::new(ProgressBar::new(&scenario.name));
    let total = seeds.len().max(1);
    let outcome = sweep::sweep(&scenario, &seeds, jobs, &|done| {
        if let Ok(mut bar) = bar.lock() {
            bar.update(done as f64 / total as f64);
        }
    });
    if let Ok(mut bar) = bar.lock() {
        bar.finish();
    }
    outcome.runs.iter().for_each(|r| log.record(r, WithPlots::IfFailed));
    let failed: Vec<&RunSummary> = outcome.runs.iter().filter(|r| !r.passed).collect();
    if json {
        for r in &outcome.runs {
            if let Ok(line) = serde_json::to_string(r) {
                println!("{line}");
            }
        }
    }
    for r in &failed {
        let record = r.record(&log.commit);
        // With --json, stdout stays pure JSON lines; the human listing goes to stderr.
        let listing = format!(
            "seed {} FAILED: {}\n  replay: {}",
            r.seed,
            record.failure_reasons(),
            record.replay_command()
        );
        if json {
            eprintln!("{listing}");
        } else {
            println!("{listing}");
        }
    }
    let wall = outcome.wall.as_secs_f64();
    let false_positives = sweep::FalsePositiveRate::of(&outcome.runs);
    let mut summary = serde_json::json!({
        "scenario": scenario.name,
        "seeds": outcome.runs.len(),
        "passed": outcome.runs.len() - failed.len(),
        "failed": failed.iter().map(|r| r.seed).collect::<Vec<_>>(),
        "shard": format!("{}/{}", shard.index, shard.count),
        "jobs": jobs,
        "wall_seconds": wall,
    });
    if let Some(fp) = false_positives {
        summary["honest_marked"] = fp.marked.into();
        summary["honest_validator_seconds"] = fp.node_seconds.into();
        summary["false_positive_rate"] = fp.rate.into();
        summary["false_positive_rate_upper_95"] = fp.upper_95.into();
    }
    if json {
        println!("{summary}");
    } else {
        if let Some(fp) = false_positives {
            println!(
                "false positives: {} honest validator(s) marked over {:.0} validator-seconds: {:.3e} per node-second \
                 ({:.5} %), 95 % upper bound {:.3e} ({:.5} %; the guide's target 0.001 %)",
                fp.marked,
                fp.node_seconds,
                fp.rate,
                fp.rate * 100.0,
                fp.upper_95,
                fp.upper_95 * 100.0
            );
        }
        println!(
            "{}: {}/{} seeds passed in {:.1} s wall ({:.1} seeds/s, {jobs} threads)",
            scenario.name,
            outcome.runs.len() - failed.len(),
            outcome.runs.len(),
            wall,
            outcome.runs.len() as f64 / wall.max(1e-9)
        );
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes `index.html` and `junit.xml` of `report` into `dir`.
fn write_reports(dir: &Path, title: &str, report: &reports::Report) -> Result<(), reports::ReportError> {
    let junit = dir.join("junit.xml");
    let index = dir.join("index.html");
    reports::write_junit(&junit, "scenarios", &report.cases)?;
    reports::write_index(&index, title, &report.sections)?;
    eprintln!("wrote {} and {}", index.display(), junit.display());
    Ok(())
}

/// `testbed shrink`: a smaller scenario failing like `path` under `seed`, printed as TOML.
pub fn shrink_one(
    path: &Path,
    seed: Option<u64>,
    overrides: &[String],
    variant: Option<&str>,
    max_runs: u32,
    out: Option<&Path>,
) -> ExitCode {
    let scenario = match load_scenario(path, overrides, variant) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seed = seed.unwrap_or(scenario.default_seed);
    let origin = Instant::now();
    let outcome = shrink::shrink(&scenario, seed, max_runs, &|| origin.elapsed(), &mut |note| {
        eprintln!("{note}")
    });
    let shrunk = match outcome {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let text = scenario::to_toml(&shrunk.scenario);
    let record = shrunk.summary.record("");
    eprintln!(
        "shrunk in {} runs{}: faults {} -> {}, nodes {} -> {}, duration {:.1}s -> {:.1}s; fails: {}",
        shrunk.runs,
        if shrunk.budget_spent {
            " (budget spent; --max-runs for more)"
        } else {
            ""
        },
        shrunk.original_faults,
        shrunk.scenario.faults.len(),
        scenario.nodes.len(),
        shrunk.scenario.nodes.len(),
        scenario.duration.as_secs_f64(),
        shrunk.scenario.duration.as_secs_f64(),
        record.failure_reasons()
    );
    eprintln!("original: {}", shrunk.original.record("").failure_reasons());
    match out {
        None => print!("{text}"),
        Some(file) => {
            if let Err(e) = std::fs::write(file, &text) {
                eprintln!("error: cannot write {}: {e}", file.display());
                return ExitCode::from(EXIT_BAD_INPUT);
            }
            eprintln!(
                "wrote {}; replay: testbed run {} --seed {seed}",
                file.display(),
                file.display()
            );
        }
    }
    ExitCode::SUCCESS
}

/// `testbed report`: the suite's reports rebuilt from run logs.
pub fn report(logs: &[PathBuf], dir: &Path) -> ExitCode {
    let paths: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
    let read = match reports::read_runs(&paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    for why in &read.skipped {
        eprintln!("warning: skipped {why}");
    }
    if read.runs.is_empty() {
        eprintln!(
            "error: no run records in {} ({} line(s) skipped)",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            read.skipped.len()
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let report = reports::build_report(&read.runs);
    if let Err(e) = write_reports(dir, "testbed report", &report) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    for s in &report.sections {
        let (seeds, passed) = s
            .seeds
            .as_ref()
            .map_or((1, usize::from(s.passed)), |m| (m.seeds, m.passed));
        println!(
            "{:<28} {:<7} {passed}/{seeds} seed(s) passed",
            s.name,
            if s.passed { "passed" } else { "FAILED" }
        );
    }
    println!("{} run(s) of {} scenario(s)", read.runs.len(), report.sections.len());
    ExitCode::SUCCESS
}

/// `testbed suite`: every scenario in `dir`, and every variant of each, under its default seed
/// (or `seed`), with the HTML page and JUnit file of the lot.
pub fn suite(dir: &Path, json: bool, seed: Option<u64>, log: &RunLog) -> ExitCode {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) => {
            eprintln!("error: cannot read scenario directory {}: {e}", dir.display());
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    files.sort();
    if files.is_empty() {
        eprintln!("error: no *.toml scenario in {}", dir.display());
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let mut failed = 0;
    let mut bad = 0;
    let mut invalid: Vec<reports::Case> = Vec::new();
    let mut records: Vec<reports::RunRecord> = Vec::new();
    if !json {
        println!(
            "{:<36} {:>6} {:<7} {:>9} {:>8}  figures",
            "scenario", "seed", "result", "sim s", "wall s"
        );
    }
    // Each file, then each of its variants, as its own run.
    let mut runs: Vec<(PathBuf, Option<String>)> = Vec::new();
    for path in &files {
        runs.push((path.clone(), None));
        if let Ok(base) = scenario::load(path) {
            runs.extend(base.variants.iter().map(|v| (path.clone(), Some(v.name.clone()))));
        }
    }
    for (path, variant) in &runs {
        let scenario = match scenario::load_variant(path, variant.as_deref(), &[]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                bad += 1;
                invalid.push(reports::Case {
                    name: match variant {
                        Some(v) => format!("{}:{v}", path.display()),
                        None => path.display().to_string(),
                    },
                    seconds: 0.0,
                    outcome: reports::Outcome::Error(e.to_string()),
                    output: String::new(),
                });
                continue;
            }
        };
        let mut bar = ProgressBar::new(&scenario.name);
        let origin = Instant::now();
        let (summary, _) = run_scenario(
            &scenario,
            seed.unwrap_or(scenario.default_seed),
            None,
            |f| bar.update(f),
            || origin.elapsed(),
        );
        bar.finish();
        if !summary.passed {
            failed += 1;
        }
        log.record(&summary, WithPlots::Yes);
        records.push(summary.record(&log.commit));
        if json {
            if let Ok(line) = serde_json::to_string(&summary) {
                println!("{line}");
            }
        } else {
            let figures: Vec<String> = summary
                .assertions
                .iter()
                .map(|a| {
                    format!(
                        "{}{}={}",
                        if a.passed { "" } else { "FAIL:" },
                        a.name,
                        reports::format_value(a.value)
                    )
                })
                .collect();
            println!(
                "{:<36} {:>6} {:<7} {:>9.1} {:>8.2}  {}",
                summary.scenario,
                summary.seed,
                if summary.passed { "passed" } else { "FAILED" },
                summary.sim_seconds,
                summary.wall_seconds,
                figures.join(" ")
            );
        }
    }
    let mut report = reports::build_report(&records);
    report.cases.extend(invalid);
    if let Err(e) = write_reports(&log.dir, "testbed suite", &report) {
        eprintln!("warning: {e}");
    } else {
        eprintln!("appended to {}", log.dir.join("runs.jsonl").display());
    }
    println!(
        "{} run(s) of {} scenario file(s): {} passed, {} failed, {} invalid",
        runs.len(),
        files.len(),
        runs.len() - failed - bad,
        failed,
        bad
    );
    if bad > 0 {
        ExitCode::from(EXIT_BAD_INPUT)
    } else if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
