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

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// How long the validators have to commit their first block after starting.
const FIRST_COMMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a process has to print its first line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
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
    /// Where `hypermesh` and `trustchain` are.
    pub bin_dir: Option<PathBuf>,
    /// Where state directories go.
    pub dir: Option<PathBuf>,
    /// Keep the state directories and logs.
    pub keep: bool,
}

type Result<T> = std::result::Result<T, String>;

/// Runs the bench. Exit 0: measured; 2: the cluster could not be set up or measured.
pub fn run(args: BenchArgs) -> ExitCode {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("testbed-bench-consensus-{}", std::process::id())));
    let outcome = bench(&args, &dir);
    match outcome {
        Ok(line) => {
            println!("{line}");
            if !args.keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message} (state and logs kept in {})", dir.display());
            ExitCode::from(2)
        }
    }
}

fn bench(args: &BenchArgs, dir: &Path) -> Result<String> {
    let bins = Binaries::find(args.bin_dir.as_deref())?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let say = |what: &str| {
        if !args.json {
            eprintln!("{what}");
        }
    };

    say("setting up a CA, keys, tokens and the validators file");
    let ca_state = dir.join("ca");
    let ca_arg = path_arg(&ca_state);
    bins.trustchain(&["ca", "init", "--state", &ca_arg])?;
    bins.trustchain(&[
        "ca",
        "install",
        "--state",
        &ca_arg,
        "--out",
        &path_arg(&dir.join("trust")),
    ])?;
    let root = path_arg(&dir.join("trust").join("root.pem"));
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

    let ca = Process::start(
        &bins.trustchain,
        &["serve", "--state", &ca_arg, "--listen", "[::1]:0"],
        &dir.join("ca.log"),
        None,
    )?;
    let ca_addr = ca
        .first_line
        .strip_prefix("listening on https://")
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| format!("the CA printed {:?}", ca.first_line))?
        .to_owned();

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
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match line_rx.recv_timeout(left) {
                Ok(line) if line.contains(what) => return Ok(line),
                Ok(_) => {}
                Err(_) => return Err(format!("the client did not print {what} in time")),
            }
        }
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

/// utime + stime of `pid`, in clock ticks (fields 14 and 15 of `/proc/PID/stat`, counted after
/// the command name, which may hold spaces).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e} (did a validator exit?)"))?;
    let after_name = &text[text.rfind(')').ok_or_else(|| format!("{path}: no command name"))? + 1..];
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: field {} is not a number", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// The kernel's USER_HZ (`getconf CLK_TCK`), 100 if it cannot be asked.
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
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

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `count` UDP ports free on `[::1]` (bound, read, released).
fn free_udp_ports(count: usize) -> Result<Vec<u16>> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind("[::1]:0").map_err(|e| format!("cannot bind a port on [::1]: {e}")))
        .collect::<Result<_>>()?;
    sockets
        .iter()
        .map(|s| s.local_addr().map(|a: SocketAddr| a.port()).map_err(|e| e.to_string()))
        .collect()
}

/// The operator's binaries.
struct Binaries {
    hypermesh: PathBuf,
    trustchain: PathBuf,
}

impl Binaries {
    fn find(dir: Option<&Path>) -> Result<Binaries> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf))
                .ok_or("cannot tell where the testbed binary is: give --bin-dir")?,
        };
        let find = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "no {name} binary in {}: build the operator's binaries first (cargo build --release -p operator), or give --bin-dir",
                    dir.display()
                ))
            }
        };
        Ok(Binaries {
            hypermesh: find("hypermesh")?,
            trustchain: find("trustchain")?,
        })
    }

    fn trustchain(&self, args: &[&str]) -> Result<String> {
        run_to_end(&self.trustchain, args)
    }

    fn hypermesh(&self, args: &[&str]) -> Result<String> {
        run_to_end(&self.hypermesh, args)
    }
}

fn run_to_end(binary: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(binary)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed: {}",
            binary.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What is done with a process's lines after the first.
enum Lines {
    /// Keep the highest consensus height committed, and every line in a file (kept with
    /// `--keep`, or when the bench fails).
    Heights(Arc<AtomicU64>, PathBuf),
    /// Hand every line over.
    Forward(mpsc::Sender<String>),
}

/// A child process, killed when dropped; its stderr goes to a log file.
struct Process {
    child: Child,
    first_line: String,
    height: Option<Arc<AtomicU64>>,
    /// The JSON-RPC address a validator printed (`{"event": "rpc", ...}`).
    rpc: Arc<std::sync::Mutex<Option<SocketAddr>>>,
}

impl Process {
    fn start(binary: &Path, args: &[&str], log: &Path, lines: Option<Lines>) -> Result<Process> {
        let stderr = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let (height, mut copy) = match &lines {
            Some(Lines::Heights(h, path)) => {
                let file = std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                (Some(h.clone()), Some(std::io::BufWriter::new(file)))
            }
            _ => (None, None),
        };
        let mut child = Command::new(binary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut reader = BufReader::new(child.stdout.take().expect("piped"));
        let (first_tx, first_rx) = mpsc::channel();
        let shown = format!("{} {}", binary.display(), args.first().copied().unwrap_or(""));
        let rpc: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        let rpc_seen = rpc.clone();
        thread::spawn(move || {
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            if let Some(out) = copy.as_mut() {
                let _ = write!(out, "{first}");
            }
            let _ = first_tx.send(first);
            // A validator's lines are copied as read; the copy is complete once it exits.
            for line in reader.lines() {
                let Ok(line) = line else { break };
                match &lines {
                    Some(Lines::Heights(h, _)) => {
                        if let Some(height) = commit_height(&line) {
                            h.fetch_max(height, Ordering::Relaxed);
                        } else if let Some(addr) = rpc_address(&line) {
                            *rpc_seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
                        }
                        if let Some(out) = copy.as_mut() {
                            let _ = writeln!(out, "{line}");
                        }
                    }
                    // Read on after the bench stops listening: a full pipe would stall the process.
                    Some(Lines::Forward(tx)) => {
                        let _ = tx.send(line);
                    }
                    None => {}
                }
            }
        });
        let first_line = match first_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) if !line.is_empty() => line.trim_end().to_owned(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown} did not start: see {}", log.display()));
            }
        };
        Ok(Process {
            child,
            first_line,
            height,
            rpc,
        })
    }

    fn rpc(&self) -> Option<SocketAddr> {
        *self.rpc.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn height(&self) -> u64 {
        self.height.as_ref().map_or(0, |h| h.load(Ordering::Relaxed))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON-RPC address of a node's `{"event": "rpc", "listening": "http://ADDR"}` line.
fn rpc_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("\"rpc\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    (value["event"] == "rpc")
        .then(|| value["listening"].as_str()?.strip_prefix("http://")?.parse().ok())
        .flatten()
}

/// The height of a consensus `commit` probe line, if it is one.
fn commit_height(line: &str) -> Option<u64> {
    if !line.contains("\"probe\":\"commit\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    (value["protocol"] == "consensus")
        .then(|| value["subject"].as_u64())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_lines_give_heights_and_other_lines_nothing() {
        let line = r#"{"at_ms":5,"probe":"commit","protocol":"consensus","subject":12,"value":-3}"#;
        assert_eq!(commit_height(line), Some(12));
        assert_eq!(commit_height(&line.replace("\"commit\"", "\"view\"")), None);
        assert_eq!(commit_height(&line.replace("\"consensus\"", "\"membership\"")), None);
    }

    #[test]
    fn a_nodes_json_rpc_line_gives_its_address() {
        let line = r#"{"event":"rpc","listening":"http://[::1]:41234"}"#;
        assert_eq!(rpc_address(line), Some("[::1]:41234".parse().unwrap()));
        assert_eq!(rpc_address(r#"{"event":"consensus","validator":1}"#), None);
        assert_eq!(rpc_address(r#"{"event":"rpc","listening":"nonsense"}"#), None);
    }

    #[test]
    fn the_json_line_carries_validator_and_client_cpu() {
        let args = BenchArgs {
            nodes: 4,
            seconds: 10,
            rate: 2000,
            warmup: "2s".into(),
            registry: false,
            json: true,
            bin_dir: None,
            dir: None,
            keep: false,
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

    #[test]
    fn this_process_cpu_ticks_are_read() {
        assert!(cpu_ticks(std::process::id()).is_ok());
        assert!(cpu_ticks(u32::MAX).is_err());
    }
}
