//! `testbed bench consensus`: HotStuff-2 on real sockets, as an operator runs it.
//!
//! It starts what an operator would: a CA (`trustchain ca init`, `ca install`, `serve` on
//! `[::1]`), N validators (`hypermesh key` for each, a validators file listing them and the one
//! client, a join token each, then `hypermesh node --validators FILE` on `[::1]`), and waits
//! until every validator has committed a block. Then one `hypermesh client` process (its own
//! token; replicas hear only certified peers, over STOQ) submits signed list-append
//! transactions at `--rate` for a warm-up and then `--seconds`, and reports what committed in
//! that window and each transaction's time from submission to `f + 1` agreeing answers.
//!
//! CPU is read from `/proc/PID/stat` (utime + stime, every thread) of each validator process
//! over the measured window: `mean` is the average over validators of each one's share of one
//! core over the whole window (100 = one core busy), `peak` the highest one-second share of
//! any validator; `cpu_pct_client` is the client's share (the CA's is not counted). All processes share the
//! machine: on few cores the validators and the client compete for them, so the figures are of
//! this machine, not of N machines (`load_avg_1m_before` says how busy it already was).
//!
//! With `--machine erc8004` the validators file asks for the ERC-8004 registries, every
//! validator serves JSON-RPC (`hypermesh node --rpc`), and the load is signed Ethereum
//! registrations sent through those endpoints ([`crate::registry_load`]), counted as committed
//! when their block appears on the first validator's endpoint; there is then no client process.
//!
//! The binaries are the operator's (`cargo build --release -p operator`), found beside the
//! `testbed` binary unless `--bin-dir` says where. State directories go under `--dir` (default:
//! a fresh directory in the system's temporary directory, removed afterwards): consensus syncs
//! its log and safety records to disk before it votes, so the disk under `--dir` is part of
//! what is measured (a tmpfs such as `/dev/shm` shows the cost without it).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::processes::{
    clock_ticks_per_second, cpu_ticks, free_udp_ports, path_arg, round1, wait_line, Binaries, Lines, Process, Result,
    Workspace, START_TIMEOUT,
};

/// How long the validators have to commit their first block after starting.
const FIRST_COMMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Commits every validator must have made before the load starts.
const WARM_HEIGHT: u64 = 3;

/// What to measure.
pub struct BenchArgs {
    /// Validators.
    pub nodes: usize,
    /// The measured window.
    pub seconds: u64,
    /// Transactions per second offered.
    pub rate: u32,
    /// Load before the window.
    pub warmup: String,
    /// The ERC-8004 registries instead of the list-append machine: registrations through the
    /// validators' JSON-RPC endpoints ([`crate::registry_load`]).
    pub registry: bool,
    /// One JSON line instead of sentences.
    pub json: bool,
    /// The binaries and the state directory.
    pub workspace: Workspace,
}

/// Runs the bench. Exit 0: measured; 2: the cluster could not be set up or measured.
pub fn run(args: BenchArgs) -> ExitCode {
    args.workspace.run("bench-consensus", |bins, dir| {
        Ok((bench(&args, bins, dir)?, ExitCode::SUCCESS))
    })
}

fn bench(args: &BenchArgs, bins: &Binaries, dir: &Path) -> Result<String> {
    let say = |what: &str| {
        if !args.json {
            eprintln!("{what}");
        }
    };

    say("setting up a CA, keys, tokens and the validators file");
    let (ca_state, root) = bins.new_ca(dir)?;
    let ca_arg = path_arg(&ca_state);
    let root = path_arg(&root);
    let ports = free_udp_ports(args.nodes)?;
    let mut file = String::from("# testbed bench consensus\nepoch = 1\n");
    if args.registry {
        file += "machine = \"erc8004\"\n";
    }
    for (i, port) in ports.iter().enumerate() {
        let key = bins.hypermesh(&["key", "--state", &path_arg(&dir.join(format!("node-{i}")))])?;
        file += &format!(
            "\n[[validator]]\nname = \"node-{i}.mesh\"\naddress = \"[::1]:{port}\"\npublic_key = \"{}\"\n",
            key.trim()
        );
    }
    if !args.registry {
        let client_key = bins.hypermesh(&["key", "--state", &path_arg(&dir.join("client"))])?;
        file += &format!(
            "\n[[client]]\nid = 1\nname = \"client-1.mesh\"\npublic_key = \"{}\"\n",
            client_key.trim()
        );
    }
    let validators = dir.join("validators.toml");
    std::fs::write(&validators, file).map_err(|e| format!("cannot write {}: {e}", validators.display()))?;
    let mut tokens = Vec::with_capacity(args.nodes + 1);
    for name in (0..args.nodes)
        .map(|i| format!("node-{i}.mesh"))
        .chain(["client-1.mesh".to_owned()])
    {
        let token = bins.trustchain(&["token", "--state", &ca_arg, "--name", &name, "--addr", "::1"])?;
        tokens.push(token.trim().to_owned());
    }

    let (ca, ca_addr) = bins.serve_ca(&ca_state, dir)?;

    say(&format!("starting {} validators", args.nodes));
    let validators_arg = path_arg(&validators);
    let mut nodes = Vec::with_capacity(args.nodes);
    for (i, port) in ports.iter().enumerate() {
        let listen = format!("[::1]:{port}");
        let seed = format!("[::1]:{}", ports[0]);
        let name = format!("node-{i}.mesh");
        let state = path_arg(&dir.join(format!("node-{i}")));
        let mut node_args = vec![
            "node",
            "--listen",
            &listen,
            "--name",
            &name,
            "--ca",
            &ca_addr,
            "--ca-root",
            &root,
            "--token",
            &tokens[i],
            "--state",
            &state,
            "--validators",
            &validators_arg,
        ];
        if i > 0 {
            node_args.extend(["--seed", &seed]);
        }
        if args.registry {
            node_args.extend(["--rpc", "[::1]:0"]);
        }
        let height = Arc::new(AtomicU64::new(0));
        nodes.push(Process::start(
            &bins.hypermesh,
            &node_args,
            &dir.join(format!("node-{i}.log")),
            Some(Lines::Heights(height, dir.join(format!("node-{i}.out")))),
        )?);
    }
    let start = Instant::now();
    while nodes.iter().any(|n| n.height() < WARM_HEIGHT) {
        if start.elapsed() > FIRST_COMMIT_TIMEOUT {
            let heights: Vec<u64> = nodes.iter().map(Process::height).collect();
            return Err(format!(
                "the validators did not all commit {WARM_HEIGHT} blocks within {FIRST_COMMIT_TIMEOUT:?} (heights {heights:?})"
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }

    say(&format!(
        "loading at {} tx/s: {} warm-up, then {} s measured",
        args.rate, args.warmup, args.seconds
    ));
    if args.registry {
        return registry(args, dir, nodes, ca);
    }
    let (line_tx, line_rx) = mpsc::channel();
    let rate = args.rate.to_string();
    let seconds = args.seconds.to_string();
    let client = Process::start(
        &bins.hypermesh,
        &[
            "client",
            "--listen",
            "[::1]:0",
            "--name",
            "client-1.mesh",
            "--ca",
            &ca_addr,
            "--ca-root",
            &root,
            "--token",
            &tokens[args.nodes],
            "--state",
            &path_arg(&dir.join("client")),
            "--validators",
            &validators_arg,
            "--rate",
            &rate,
            "--seconds",
            &seconds,
            "--warmup",
            &args.warmup,
            "--json",
        ],
        &dir.join("client.log"),
        Some(Lines::Forward(line_tx)),
    )?;
    let window = Duration::from_secs(args.seconds);
    let wait = |what: &str, within: Duration| -> Result<String> {
        wait_line(&line_rx, what, within).map_err(|_| format!("the client did not print {what} in time"))
    };
    wait("\"measuring\"", START_TIMEOUT + Duration::from_secs(60))?;
    // The client last: it shares the machine, and its share says how much the validators had.
    let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).chain([client.child.id()]).collect();
    let load_before = load_average();
    let mut cpu = measure_cpu(&pids, nodes.len(), window)?;
    let client_cpu = cpu.per_node.pop().expect("the client's share");
    let summary_line = wait("\"tx_per_s\"", Duration::from_secs(60))?;
    drop(client);
    drop(nodes);
    drop(ca);
    let summary: serde_json::Value =
        serde_json::from_str(&summary_line).map_err(|e| format!("the client's summary {summary_line:?}: {e}"))?;
    Ok(report(args, &summary, &cpu, client_cpu, load_before, dir))
}

/// The registry load ([`crate::registry_load`]) on the started validators, measured as the
/// list-append load is.
fn registry(args: &BenchArgs, dir: &Path, nodes: Vec<Process>, ca: Process) -> Result<String> {
    let start = Instant::now();
    let rpcs: Vec<SocketAddr> = loop {
        let found: Vec<Option<SocketAddr>> = nodes.iter().map(Process::rpc).collect();
        if found.iter().all(Option::is_some) {
            break found.into_iter().flatten().collect();
        }
        if start.elapsed() > START_TIMEOUT {
            return Err("the validators did not all print their JSON-RPC address".into());
        }
        thread::sleep(Duration::from_millis(50));
    };
    let warmup = runtime::units::parse_duration(&args.warmup).map_err(|e| format!("--warmup {}: {e}", args.warmup))?;
    let window = Duration::from_secs(args.seconds);
    let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).collect();
    let (open_tx, open_rx) = mpsc::channel();
    let rate = args.rate;
    let load = thread::spawn(move || {
        crate::registry_load::run(
            &rpcs,
            erc8004::chain::CHAIN_ID_DEFAULT,
            rate,
            warmup,
            window,
            move || {
                let _ = open_tx.send(());
            },
        )
    });
    open_rx
        .recv_timeout(warmup + START_TIMEOUT)
        .map_err(|_| "the load did not start".to_string())?;
    let load_before = load_average();
    let cpu = measure_cpu(&pids, nodes.len(), window)?;
    let measured = load.join().map_err(|_| "the load thread panicked".to_string())?;
    drop(nodes);
    drop(ca);
    let summary = serde_json::json!({
        "tx_per_s": (measured.tx_per_s * 10.0).round() / 10.0,
        "commit_p50_ms": measured.commit_p50_ms.map(|m| m.round()),
        "commit_p99_ms": measured.commit_p99_ms.map(|m| m.round()),
        "commit_max_ms": null,
        "submitted": measured.submitted,
        "committed": measured.committed,
        "unanswered": measured.unseen,
        "refused": measured.refused,
        "not_admitted": null,
        "throttled": null,
    });
    Ok(report(args, &summary, &cpu, 0.0, load_before, dir))
}

/// CPU shares of the validators over the window.
struct Cpu {
    /// Each validator's share of one core over the window, in percent.
    per_node: Vec<f64>,
    /// The highest one-second share of any validator, in percent.
    peak: f64,
}

/// Samples `pids` every second for `window`, from now (the client's window opened); the peak is
/// of the first `validators`.
fn measure_cpu(pids: &[u32], validators: usize, window: Duration) -> Result<Cpu> {
    let hz = clock_ticks_per_second();
    let first = Instant::now();
    let start: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect::<Result<_>>()?;
    let mut last = start.clone();
    let mut last_at = first;
    let mut peak = 0.0f64;
    while first.elapsed() < window {
        let next = (last_at + Duration::from_secs(1)).min(first + window);
        thread::sleep(next.saturating_duration_since(Instant::now()));
        let now = Instant::now();
        let ticks: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect::<Result<_>>()?;
        let span = now.duration_since(last_at).as_secs_f64();
        if span >= 0.5 {
            for (t, l) in ticks.iter().zip(&last).take(validators) {
                peak = peak.max(percent(t - l, hz, span));
            }
        }
        last = ticks;
        last_at = now;
    }
    let span = last_at.duration_since(first).as_secs_f64();
    let per_node = last.iter().zip(&start).map(|(t, s)| percent(t - s, hz, span)).collect();
    Ok(Cpu { per_node, peak })
}

fn percent(ticks: u64, hz: f64, seconds: f64) -> f64 {
    ticks as f64 / hz / seconds * 100.0
}

/// The one-minute load average (`/proc/loadavg`): how busy the machine already was, since the
/// validators share it with whatever else runs.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn report(
    args: &BenchArgs,
    summary: &serde_json::Value,
    cpu: &Cpu,
    client_cpu: f64,
    load_before: Option<f64>,
    dir: &Path,
) -> String {
    let mean = cpu.per_node.iter().sum::<f64>() / cpu.per_node.len() as f64;
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let line = serde_json::json!({
        "machine": if args.registry { "erc8004" } else { "list-append" },
        "nodes": args.nodes,
        "seconds": args.seconds,
        "offered_tx_per_s": args.rate,
        "tx_per_s": summary["tx_per_s"],
        "commit_p50_ms": summary["commit_p50_ms"],
        "commit_p99_ms": summary["commit_p99_ms"],
        "commit_max_ms": summary["commit_max_ms"],
        "cpu_pct_per_node": {
            "mean": round1(mean),
            "peak": round1(cpu.peak),
            "nodes": cpu.per_node.iter().map(|c| round1(*c)).collect::<Vec<_>>(),
        },
        "cpu_pct_client": round1(client_cpu),
        "submitted": summary["submitted"],
        "committed": summary["committed"],
        "unanswered": summary["unanswered"],
        "refused": summary["refused"],
        "not_admitted": summary["not_admitted"],
        "throttled": summary["throttled"],
        "answers_required": (args.nodes - 1) / 3 + 1,
        "cores": cores,
        "load_avg_1m_before": load_before,
        "state_dir": dir.display().to_string(),
    });
    if args.json {
        return line.to_string();
    }
    format!(
        "{} validators, {} tx/s offered: {} tx/s committed, commit p50 {} ms, p99 {} ms; CPU per validator mean {:.1}% peak {:.1}% of a core, client {:.1}% ({} cores)",
        args.nodes,
        args.rate,
        line["tx_per_s"],
        line["commit_p50_ms"],
        line["commit_p99_ms"],
        mean,
        cpu.peak,
        client_cpu,
        cores
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_line_carries_validator_and_client_cpu() {
        let args = BenchArgs {
            nodes: 4,
            seconds: 10,
            rate: 2000,
            warmup: "2s".into(),
            registry: false,
            json: true,
            workspace: Workspace::default(),
        };
        let cpu = Cpu {
            per_node: vec![10.0, 20.0, 30.0, 40.0],
            peak: 45.0,
        };
        let summary = serde_json::json!({"tx_per_s": 1999.5});
        let line = report(&args, &summary, &cpu, 12.44, Some(1.0), Path::new("/x"));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["cpu_pct_per_node"]["mean"], 25.0);
        assert_eq!(value["cpu_pct_per_node"]["peak"], 45.0);
        assert_eq!(value["cpu_pct_client"], 12.4);
        assert_eq!(value["tx_per_s"], 1999.5);
        assert_eq!(value["answers_required"], 2);
    }
}
