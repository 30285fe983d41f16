//! `testbed`: runs declarative fault scenarios against the stack in the deterministic simulator
//! and checks what must hold. This file is the command line (arguments and dispatch); the
//! harness is the `testbed` library, and the command bodies are `testbed::cli`.

// The STOQ bench measures real transfers: it binds sockets on [::1], runs each endpoint on a
// thread of its own and times them with the OS clock. Protocol crates may not.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod stoq_bench;
// The loopback ceiling blasts real sockets from two threads and times them with the OS clock.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod stoq_ceiling;
// The consensus bench starts the operator's processes, reads their CPU from /proc and times the
// run with the OS clock.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod consensus_bench;
// A backend of the bench: sockets, threads and clocks of its own.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod registry_load;
// Starts `hypermesh dev --api` and a load process, with sockets, a runtime and the OS clock.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod registry_bench;
// Starts the operator's processes, runs peers on real sockets, reads the node's memory from
// /proc and times the run with the OS clock.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod node_memory;
// The operator's binaries as child processes, for the benches above.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod processes;
mod stoq_cmd;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use runtime::units::parse_duration;
use testbed::cli::{self, RunLog};
use testbed::sweep::{SeedRange, Shard};

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
        #[arg(long, value_name = "A..B", value_parser = SeedRange::parse)]
        seeds: SeedRange,
        /// Run only shard I of N (1-based): every N-th seed, so N machines split the work.
        #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
        shard: Option<Shard>,
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
    /// Benchmarks: the simulator itself (`simspeed`), consensus on real sockets (`consensus`).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// STOQ transport commands: `bench` (throughput beside raw quinn), `ceiling` (what loopback
    /// carries for plain UDP).
    #[command(subcommand)]
    Stoq(stoq_cmd::StoqCommand),
    /// Production node measurements: `memory` (resident memory with N members in its view).
    #[command(subcommand)]
    Node(NodeCommand),
}

#[derive(Subcommand)]
enum NodeCommand {
    /// One `hypermesh node` (production defaults, membership over STOQ) with N − 1 certified
    /// peers joining through it, each a membership node over STOQ on its own [::1] socket in
    /// this process; once the node holds every member alive, samples its resident memory
    /// (/proc/PID/status) for --hold. Needs the operator's binaries (cargo build --release -p
    /// operator). Exit 0: the largest sample is within --limit-mb; 1: over it; 2: setup failed
    /// or the view never filled.
    Memory {
        /// Members in the node's view, the node included.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(2..=4096))]
        members: u32,
        /// How long memory is sampled once the view is full.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        hold: Duration,
        /// Peers started per second.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        join_rate: u32,
        /// How often the peers probe, gossip and swap lists among themselves (the node runs the
        /// defaults); slow, so that many peers fit on a small machine beside the node.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        peer_pace: Duration,
        /// The bound on the node's resident memory, decimal megabytes.
        #[arg(long, default_value_t = 64.0)]
        limit_mb: f64,
        /// Print one JSON line: members, alive, connections, converged_s, hold_s, samples,
        /// samples_with_full_view, rss_mb (the largest sample with the view full), rss_mb_end,
        /// anon_mb_end, file_mb_end, hwm_mb, suspected_during_hold, cpu_pct_during_hold,
        /// limit_mb, within_limit, peer_pace_s.
        #[arg(long)]
        json: bool,
        /// The binaries and the state directory (--bin-dir, --dir, --keep).
        #[command(flatten)]
        workspace: processes::Workspace,
    },
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
    /// HotStuff-2 consensus on real sockets: a CA and N `hypermesh node` validators on [::1]
    /// (mutual TLS over STOQ), loaded by a certified `hypermesh client` process; prints
    /// committed tx/s, commit latency p50/p99 and each validator's CPU. Needs the operator's
    /// binaries (cargo build --release -p operator). Exit 0: measured; 2: setup failed.
    Consensus {
        /// Validators.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        nodes: u16,
        /// Measured seconds of load (after the warm-up).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
        seconds: u64,
        /// Transactions per second offered by the client.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        rate: u32,
        /// Load before the measured window.
        #[arg(long, default_value = "2s")]
        warmup: String,
        /// The state machine: `list-append` (signed transactions from a certified `hypermesh
        /// client`) or `erc8004` (the registries: signed Ethereum registrations sent through the
        /// validators' JSON-RPC endpoints, `hypermesh node --rpc`).
        #[arg(long, default_value = "list-append", value_parser = ["list-append", "erc8004"])]
        machine: String,
        /// Print one JSON line: nodes, tx_per_s, commit_p50_ms, commit_p99_ms,
        /// cpu_pct_per_node {mean, peak, nodes}, and the client's counts.
        #[arg(long)]
        json: bool,
        /// The binaries and the state directory (--bin-dir, --dir, --keep). Consensus syncs to
        /// disk before it votes: a --dir on a tmpfs leaves the disk out.
        #[command(flatten)]
        workspace: processes::Workspace,
    },
    /// The registry REST API of a real node (`hypermesh dev --api` on [::1]) under a load
    /// process's Zipf-distributed reads and signed writes, open loop: prints req/s, p50/p99
    /// latency, the cache's hit rate, the statistics view's largest age, errors, stale reads and
    /// lost writes. Needs the operator's binaries (cargo build --release -p operator). Exit 0:
    /// measured; 1: a stale read, a lost, duplicated or reverted write, or an error answer; 2:
    /// setup failed.
    Registry(registry_bench::BenchArgs),
    /// The load process of `bench registry` (started by it).
    #[command(hide = true)]
    RegistryLoad(registry_bench::LoadArgs),
}

/// Sends log lines to stderr, coloured only when stderr is a terminal (and `NO_COLOR` is unset),
/// so a pipe or a CI log gets plain text.
///
/// What is printed: `RUST_LOG` when set (`TARGET=LEVEL,…`, e.g. `stoq=debug`); otherwise the
/// testbed's own warnings, and for `stoq bench`, which runs the stack on real sockets, every
/// crate's. In a simulation the protocols' log lines come from simulated nodes: a node failing
/// the way a scenario makes it fail is the symptom under test, which the figures count, not an
/// error of the harness, so those lines stay out unless asked for.
fn init_logging(command: &Command) -> Result<(), String> {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;

    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec.parse::<Targets>().map_err(|e| {
            format!(
                "RUST_LOG={spec:?} is not a log filter ({e}): use TARGET=LEVEL pairs separated by \
                 commas, e.g. RUST_LOG=stoq=debug,testbed=info, or a level alone, e.g. RUST_LOG=warn"
            )
        })?,
        _ if matches!(command, Command::Stoq(_)) => Targets::new().with_default(tracing::Level::WARN),
        _ => Targets::new().with_target("testbed", tracing::Level::WARN),
    };
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .finish()
        .with(filter);
    tracing::subscriber::set_global_default(subscriber).map_err(|e| format!("logging: {e}"))
}

fn main() -> ExitCode {
    let args = Cli::parse();
    if let Err(message) = init_logging(&args.command) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let log = RunLog {
        dir: args.reports,
        commit: cli::current_commit(),
    };
    match args.command {
        Command::Run {
            scenario,
            seed,
            json,
            trace,
            overrides,
            variant,
        } => cli::run_one(
            &scenario,
            seed,
            json,
            trace.as_deref(),
            &overrides,
            variant.as_deref(),
            &log,
        ),
        Command::Suite { dir, json, seed } => cli::suite(&dir, json, seed, &log),
        Command::Sweep {
            scenario,
            seeds,
            shard,
            jobs,
            overrides,
            variant,
            json,
        } => cli::sweep_one(
            &cli::ScenarioSource {
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
        Command::Report { logs } => cli::report(&logs, &log.dir),
        Command::Shrink {
            scenario,
            seed,
            overrides,
            variant,
            max_runs,
            out,
        } => cli::shrink_one(
            &scenario,
            seed,
            &overrides,
            variant.as_deref(),
            max_runs,
            out.as_deref(),
        ),
        Command::Bench(BenchCommand::Simspeed { nodes, seconds, json }) => cli::bench_simspeed(nodes, seconds, json),
        Command::Bench(BenchCommand::Consensus {
            nodes,
            seconds,
            rate,
            warmup,
            machine,
            json,
            workspace,
        }) => consensus_bench::run(consensus_bench::BenchArgs {
            nodes: usize::from(nodes),
            seconds,
            rate,
            warmup,
            registry: machine == "erc8004",
            json,
            workspace,
        }),
        Command::Bench(BenchCommand::Registry(args)) => registry_bench::run(args),
        Command::Bench(BenchCommand::RegistryLoad(args)) => registry_bench::load(args),
        Command::Stoq(command) => stoq_cmd::run(command),
        Command::Node(NodeCommand::Memory {
            members,
            hold,
            join_rate,
            peer_pace,
            limit_mb,
            json,
            workspace,
        }) => {
            if !(limit_mb.is_finite() && limit_mb > 0.0) {
                eprintln!("error: --limit-mb {limit_mb}: give a positive number of megabytes, e.g. --limit-mb 64");
                return ExitCode::from(2);
            }
            node_memory::run(node_memory::MemoryArgs {
                members: members as usize,
                hold,
                join_rate,
                peer_pace,
                limit_bytes: (limit_mb * 1e6) as u64,
                json,
                workspace,
            })
        }
    }
}
