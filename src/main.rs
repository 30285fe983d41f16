//! `testbed`: runs declarative fault scenarios against the stack in the deterministic simulator
//! and checks what must hold.

// The harness CLI is a backend: it times runs, reads the OS clock and randomness for the STOQ
// bench, spawns its threads and binds its raw sockets. Protocol crates may not.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod analysis;
mod assertion;
mod build;
mod limits;
mod progress;
mod run;
mod scenario;
mod shrink;
mod stoq_bench;
mod stoq_cmd;
mod sweep;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use simulator::trace::TraceWriter;

use crate::progress::ProgressBar;
use crate::run::{run_scenario, RunSummary};

/// Deterministic testbed for the TrustChain / STOQ / HyperMesh stack.
#[derive(Parser)]
#[command(name = "testbed", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where reports go: every run is appended to DIR/runs.jsonl; the suite writes DIR/index.html
    /// (plots over simulated time, fault windows shaded) and DIR/junit.xml.
    #[arg(long, global = true, value_name = "DIR", default_value = "reports/out")]
    reports: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one scenario. Exit 0: every assertion held; 1: one failed; 2: bad input.
    Run {
        /// The scenario file.
        scenario: PathBuf,
        /// The seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Print the summary as one JSON object on the last line of stdout.
        #[arg(long)]
        json: bool,
        /// Write every event as JSON lines to this file.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Override a setting of the file, e.g. `--set workload.latency_tolerance=300ms` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Run the file's `[[variant]]` of this name (its settings and assertions).
        #[arg(long)]
        variant: Option<String>,
    },
    /// Runs one scenario over many seeds in parallel; lists the failing seeds with the command
    /// that replays each. Exit 0: every seed passed; 1: one failed; 2: bad input.
    Sweep {
        /// The scenario file.
        scenario: PathBuf,
        /// Seeds `A..B`, both included (`1..1000` is a thousand seeds).
        #[arg(long, value_name = "A..B", value_parser = sweep::SeedRange::parse)]
        seeds: sweep::SeedRange,
        /// Run only shard I of N (1-based): every N-th seed, so N machines split the work.
        #[arg(long, value_name = "I/N", value_parser = sweep::Shard::parse)]
        shard: Option<sweep::Shard>,
        /// Parallel runs (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Override a setting of the file (repeatable), as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Run the file's `[[variant]]` of this name, as for `run`.
        #[arg(long)]
        variant: Option<String>,
        /// Print one JSON line per seed, then a summary line.
        #[arg(long)]
        json: bool,
    },
    /// Runs every scenario in a directory with its default seed.
    Suite {
        /// Where the scenarios are.
        #[arg(long, default_value = "scenarios")]
        dir: PathBuf,
        /// One JSON line per scenario instead of a table.
        #[arg(long)]
        json: bool,
        /// Run every scenario under this seed instead of its own default.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Searches for a smaller scenario (fewer faults, fewer nodes, shorter) that fails the same
    /// way as SCENARIO under --seed, and prints it as a scenario file. Swarm draws and random
    /// node choices are written out as plain faults first. Exit 0: printed; 2: bad input, or the
    /// seed passes.
    Shrink {
        /// The scenario file.
        scenario: PathBuf,
        /// The failing seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Override a setting of the file (repeatable), as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Run the file's `[[variant]]` of this name, as for `run`.
        #[arg(long)]
        variant: Option<String>,
        /// Stop after this many runs.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
        max_runs: u32,
        /// Write the scenario here instead of to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Rebuilds index.html and junit.xml (in --reports DIR) from run logs, e.g. the runs.jsonl
    /// of several CI shards. A scenario run under many seeds gets one section: failing seeds with
    /// replay commands, each asserted metric's spread over seeds, and the plots of one run (a
    /// failing one if any). A seed recorded twice counts once, with its last run.
    Report {
        /// Run logs (JSON lines), read in order.
        #[arg(required = true, value_name = "RUNS.jsonl")]
        logs: Vec<PathBuf>,
    },
    /// Measures the simulator itself.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// STOQ transport commands: `bench` (throughput beside raw quinn).
    #[command(subcommand)]
    Stoq(stoq_cmd::StoqCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// All-to-all datagram flood (the workload `benches/simspeed.sh` also runs on turmoil and
    /// madsim): every host sends 64 bytes to every other host every 100 ms over 1 ms links.
    /// Exit 1 unless every datagram arrived.
    Simspeed {
        /// Hosts.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=65_536))]
        nodes: u32,
        /// Simulated seconds of sending.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        seconds: u64,
        /// Print one JSON line instead of a sentence.
        #[arg(long)]
        json: bool,
    },
}

/// Exit code for bad input (scenario files, flags).
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    let cli = Cli::parse();
    let log = RunLog {
        dir: cli.reports,
        commit: current_commit(),
    };
    match cli.command {
        Command::Run {
            scenario,
            seed,
            json,
            trace,
            overrides,
            variant,
        } => run_one(
            &scenario,
            seed,
            json,
            trace.as_deref(),
            &overrides,
            variant.as_deref(),
            &log,
        ),
        Command::Suite { dir, json, seed } => suite(&dir, json, seed, &log),
        Command::Sweep {
            scenario,
            seeds,
            shard,
            jobs,
            overrides,
            variant,
            json,
        } => sweep_one(
            &ScenarioSource {
                path: scenario,
                overrides,
                variant,
            },
            seeds,
            shard,
            jobs,
            json,
            &log,
        ),
        Command::Report { logs } => report(&logs, &log.dir),
        Command::Shrink {
            scenario,
            seed,
            overrides,
            variant,
            max_runs,
            out,
        } => shrink_one(
            &scenario,
            seed,
            &overrides,
            variant.as_deref(),
            max_runs,
            out.as_deref(),
        ),
        Command::Bench(BenchCommand::Simspeed { nodes, seconds, json }) => bench_simspeed(nodes, seconds, json),
        Command::Stoq(command) => stoq_cmd::run(command),
    }
}

fn bench_simspeed(nodes: u32, seconds: u64, json: bool) -> ExitCode {
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
struct RunLog {
    dir: PathBuf,
    commit: String,
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
fn current_commit() -> String {
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

fn run_one(
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
struct ScenarioSource {
    path: PathBuf,
    overrides: Vec<String>,
    variant: Option<String>,
}

fn sweep_one(
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
    let summary = serde_json::json!({
        "scenario": scenario.name,
        "seeds": outcome.runs.len(),
        "passed": outcome.runs.len() - failed.len(),
        "failed": failed.iter().map(|r| r.seed).collect::<Vec<_>>(),
        "shard": format!("{}/{}", shard.index, shard.count),
        "jobs": jobs,
        "wall_seconds": wall,
    });
    if json {
        println!("{summary}");
    } else {
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

fn shrink_one(
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
fn report(logs: &[PathBuf], dir: &Path) -> ExitCode {
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

fn suite(dir: &Path, json: bool, seed: Option<u64>, log: &RunLog) -> ExitCode {
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
