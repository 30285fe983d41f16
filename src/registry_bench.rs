//! `testbed bench registry`: the registry REST API of a real node under load, measured.
//!
//! The bench starts `hypermesh dev --api` (the development chain with its API, on `[::1]`),
//! makes an `enterprise` key with `hypermesh keys create`, and starts the load as a process of
//! its own (`testbed bench registry-load`), so that the client's work is not the node's. The
//! load:
//!
//! 1. seeds the chain through the API itself: one owner registers `--agents` agents, and each
//!    gets one feedback entry from one of [`SEED_CLIENTS`] clients (`POST /api/v1/transactions`);
//! 2. offers requests at `--rate` per second, open loop (each at its scheduled time, its latency
//!    counted from then, so a slow answer delays the ones behind it and is not forgiven), over
//!    `--connections` keep-alive HTTP/1.1 connections, first for a warm-up, then for the
//!    measured `--seconds`. Reads pick their agent from a Zipf distribution (exponent 1: agent
//!    0 is asked most) and a route from [`READ_MIX`]; `--writes` per second of them are instead
//!    a signed feedback transaction to a Zipf-chosen agent, from one of [`WRITERS`] wallets;
//! 3. judges what it read: a read of an agent or of its statistics sent after a write to it was
//!    acknowledged must count that write (else a stale read; the other routes are not judged),
//!    and at the end every acknowledged write must be in the agent's count (else a lost write)
//!    and nothing beyond the writes whose outcome is unknown (else a duplicated one);
//! 4. reads `/metrics` before and after the measured window for the cache's hit rate, and after
//!    it for the statistics view's largest age (since the node started, seeding included).
//!
//! Counts are of the measured window. The load's timer wakes at most once a millisecond, so the
//! requests due within one leave together (ten at a time at 10,000 a second), and a latency from
//! the scheduled time includes up to a millisecond of the load's own lateness: an upper bound.
//!
//! The bench prints one JSON line with `req_per_s`, `p50_ms`, `p99_ms` (from each request's
//! scheduled time: the load's own lateness included, and its timer wakes at most once a
//! millisecond), `sent_p50_ms` and `sent_p99_ms` (from when each was sent), `cache_hit_rate`,
//! `view_age_s_max`, `errors`, `stale_reads`, `lost_writes` and the CPU each process used.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use bytes::Bytes;
use erc8004::abi::{IdentityRegistry as I, ReputationRegistry as R, IDENTITY_REGISTRY, REPUTATION_REGISTRY};
use erc8004::chain::ChainConfig;
use erc8004::wallet::{Envelope, Wallet};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use runtime::{DetRng, Entropy};
use serde_json::{json, Value};

use crate::processes::{
    clock_ticks_per_second, cpu_ticks, path_arg, round1, wait_line, Binaries, Lines, Process, Workspace,
};

type Result<T> = std::result::Result<T, String>;

/// Clients whose feedback seeds the agents.
pub const SEED_CLIENTS: u64 = 10;
/// Wallets the load writes feedback from; a write waits for an idle one (one transaction in
/// flight per wallet, so nonces stay in order).
pub const WRITERS: u64 = 16;
/// The read routes and their shares (percent).
pub const READ_MIX: [(&str, u64); 5] = [
    ("agent", 45),
    ("stats", 20),
    ("feedback", 15),
    ("reputation", 10),
    ("page", 10),
];
/// The seed of the wallets' development keys.
const WALLET_SEED: u64 = 0xBE7C4;

/// What the load offers: the same for the bench and its load process.
#[derive(clap::Args, Clone, Debug)]
pub struct Offered {
    /// Measured seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub seconds: u64,
    /// Seconds of load before the measured window: the cache fills with the Zipf tail (with
    /// 3 s, a third of the misses in the window were first reads of rare keys).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup: u64,
    /// Requests offered per second, reads and writes.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate: u32,
    /// Of those, signed feedback transactions per second.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub writes: u32,
    /// Agents registered (each with one feedback entry) before the load.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub agents: u32,
    /// Keep-alive HTTP/1.1 connections the load uses (the server keeps 256 at once; the load
    /// needs one more of its own).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=250))]
    pub connections: u32,
}

impl Offered {
    /// The flags that give another process these settings. Every field is named here, so a
    /// field added is not left to the other side's default.
    pub fn to_args(&self) -> Vec<String> {
        let Offered {
            seconds,
            warmup,
            rate,
            writes,
            agents,
            connections,
        } = self;
        [
            ("--seconds", seconds.to_string()),
            ("--warmup", warmup.to_string()),
            ("--rate", rate.to_string()),
            ("--writes", writes.to_string()),
            ("--agents", agents.to_string()),
            ("--connections", connections.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }
}

/// `testbed bench registry`'s settings.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// What the load offers.
    #[command(flatten)]
    pub offered: Offered,
    /// The node's cache invalidation: `on-commit`, or `never` (the guide's original, which
    /// deleted nothing), to see the bench's stale-read check bite.
    #[arg(long, default_value = "on-commit", value_parser = ["on-commit", "never"])]
    pub cache_invalidation: String,
    /// Print one JSON line.
    #[arg(long)]
    pub json: bool,
    /// The binaries and the state directory (--bin-dir, --dir, --keep).
    #[command(flatten)]
    pub workspace: Workspace,
}

/// Runs the bench. Exit 0: measured, nothing stale, lost, duplicated or failed; 1: a stale
/// read, a lost, duplicated or reverted write, or an error answer; 2: setup failed.
pub fn run(args: BenchArgs) -> ExitCode {
    args.workspace
        .run("bench-registry", |bins, dir| bench(&args, bins, dir))
}

fn bench(args: &BenchArgs, bins: &Binaries, dir: &Path) -> Result<(String, ExitCode)> {
    if args.offered.writes > args.offered.rate {
        return Err(format!(
            "--writes {} is more than --rate {}: writes are among the requests offered",
            args.offered.writes, args.offered.rate
        ));
    }
    let say = |what: &str| {
        if !args.json {
            eprintln!("{what}");
        }
    };
    let state = path_arg(&dir.join("chain"));
    let (node_tx, node_rx) = mpsc::channel();
    let node = Process::start(
        &bins.hypermesh,
        &[
            "dev",
            "--rpc",
            "[::1]:0",
            "--api",
            "[::1]:0",
            "--state",
            &state,
            "--accounts",
            "1",
            "--api-cache-invalidation",
            &args.cache_invalidation,
        ],
        &dir.join("dev.log"),
        Some(Lines::Forward(node_tx)),
    )?;
    let api = wait_line(&node_rx, "api listening on http://", Duration::from_secs(30))
        .map_err(|e| format!("hypermesh dev: {e}"))?;
    let api = api
        .trim_start_matches("api listening on http://")
        .parse::<SocketAddr>()
        .map_err(|e| format!("hypermesh dev printed {api:?}: {e}"))?;
    let rpc = loop {
        let line = wait_line(&node_rx, "listening on http://", Duration::from_secs(30))
            .map_err(|e| format!("hypermesh dev: {e}"))?;
        if let Some(addr) = line.strip_prefix("listening on http://") {
            break addr.to_owned();
        }
    };
    let key = bins.hypermesh(&[
        "keys",
        "create",
        "--state",
        &state,
        "--tier",
        "enterprise",
        "--label",
        "bench",
    ])?;
    let key = key.lines().last().unwrap_or_default().trim().to_owned();
    say(&format!(
        "the API on http://{api}; seeding {} agents through it",
        args.offered.agents
    ));

    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let (load_tx, load_rx) = mpsc::channel();
    let addr = api.to_string();
    let mut load_args: Vec<String> = ["bench", "registry-load", "--api", &addr, "--rpc", &rpc, "--key", &key]
        .map(str::to_owned)
        .to_vec();
    load_args.extend(args.offered.to_args());
    let load_args: Vec<&str> = load_args.iter().map(String::as_str).collect();
    let load = Process::start(&exe, &load_args, &dir.join("load.log"), Some(Lines::Forward(load_tx)))?;
    let seeding = Duration::from_secs(60 + u64::from(args.offered.agents) / 20);
    wait_line(
        &load_rx,
        "\"measuring\"",
        seeding + Duration::from_secs(args.offered.warmup),
    )?;
    say(&format!(
        "measuring {} s at {} requests a second",
        args.offered.seconds, args.offered.rate
    ));
    let pids = [node.child.id(), load.child.id()];
    let before = pids.map(cpu_ticks);
    let started = Instant::now();
    wait_line(&load_rx, "\"measured\"", Duration::from_secs(args.offered.seconds + 30))?;
    let elapsed = started.elapsed().as_secs_f64();
    let after = pids.map(cpu_ticks);
    let cpu = |i: usize| -> Result<f64> {
        let used = after[i].clone()?.saturating_sub(before[i].clone()?) as f64 / clock_ticks_per_second();
        Ok(round1(100.0 * used / elapsed))
    };
    let (node_cpu, load_cpu) = (cpu(0)?, cpu(1)?);
    let summary = wait_line(&load_rx, "\"req_per_s\"", Duration::from_secs(120))?;
    drop(load);
    drop(node);
    let mut summary: Value =
        serde_json::from_str(&summary).map_err(|e| format!("the load's summary {summary:?}: {e}"))?;
    summary["node_cpu_pct"] = json!(node_cpu);
    summary["load_cpu_pct"] = json!(load_cpu);
    let bad = [
        "stale_reads",
        "lost_writes",
        "duplicated_writes",
        "errors",
        "writes_reverted",
    ]
    .iter()
    .any(|name| summary[name].as_u64() != Some(0));
    let code = if bad { ExitCode::from(1) } else { ExitCode::SUCCESS };
    if args.json {
        return Ok((summary.to_string(), code));
    }
    let line = format!(
        "{} req/s (offered {}), p50 {} ms, p99 {} ms, cache hit rate {}, view age at most {} s, {} errors, {} stale reads, {} lost writes; CPU: node {} %, load {} %",
        summary["req_per_s"],
        args.offered.rate,
        summary["p50_ms"],
        summary["p99_ms"],
        summary["cache_hit_rate"],
        summary["view_age_s_max"],
        summary["errors"],
        summary["stale_reads"],
        summary["lost_writes"],
        node_cpu,
        load_cpu
    );
    Ok((line, code))
}

/// `testbed bench registry-load`'s settings.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// The API.
    #[arg(long)]
    pub api: SocketAddr,
    /// The node's JSON-RPC endpoint: the writes are checked there, not through the API's cache.
    #[arg(long)]
    pub rpc: SocketAddr,
    /// Its key.
    #[arg(long)]
    pub key: String,
    /// What to offer.
    #[command(flatten)]
    pub offered: Offered,
}

/// The load process: prints `{"event": …}` lines as it goes, then its summary.
pub fn load(args: LoadArgs) -> ExitCode {
    println!("{}", json!({ "event": "seeding" }));
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, drive(args)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// One HTTP/1.1 connection to the API.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    bearer: String,
    api: SocketAddr,
    key: String,
    /// A request failed on it: opened again before the next.
    broken: bool,
}

impl Connection {
    async fn open(api: SocketAddr, key: &str) -> Result<Connection> {
        let tcp = tokio::net::TcpStream::connect(api)
            .await
            .map_err(|e| format!("cannot connect to {api}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("HTTP/1.1 with {api}: {e}"))?;
        tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            bearer: format!("Bearer {key}"),
            api,
            key: key.to_owned(),
            broken: false,
        })
    }

    /// Sends one request: the status and the body.
    async fn send(&mut self, method: &str, target: &str, body: Option<String>) -> Result<(u16, Bytes)> {
        if self.broken {
            *self = Connection::open(self.api, &self.key.clone()).await?;
        }
        let request = hyper::Request::builder()
            .method(method)
            .uri(target)
            .header("host", "bench")
            .header("authorization", &self.bearer)
            .body(Full::new(body.map(Bytes::from).unwrap_or_default()))
            .map_err(|e| format!("{target}: {e}"))?;
        self.sender.ready().await.map_err(|e| format!("{target}: {e}"))?;
        let answer = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("{target}: {e}"))?;
        let status = answer.status().as_u16();
        let body = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{target}: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    /// Posts `raw` (a signed transaction): the answer's status and JSON.
    async fn transact(&mut self, raw: &[u8]) -> Result<(u16, Value)> {
        let body = json!({ "raw": format!("0x{}", alloy_primitives::hex::encode(raw)) }).to_string();
        let (status, answer) = self.send("POST", "/api/v1/transactions", Some(body)).await?;
        let answer = serde_json::from_slice(&answer).map_err(|e| format!("a transaction's answer: {e}"))?;
        Ok((status, answer))
    }
}

/// A wallet and its next nonce.
struct Signer {
    wallet: Wallet,
    nonce: u64,
}

impl Signer {
    fn new(index: u64) -> Signer {
        Signer {
            wallet: Wallet::development(WALLET_SEED, index),
            nonce: 0,
        }
    }

    /// `call` to `to`, signed at the next nonce (taken).
    fn sign<C: SolCall>(&mut self, to: alloy_primitives::Address, call: C) -> Vec<u8> {
        let raw = self.wallet.sign_call(
            Envelope::Eip1559,
            ChainConfig::default().chain_id,
            self.nonce,
            to,
            call.abi_encode().into(),
        );
        self.nonce += 1;
        raw.to_vec()
    }
}

fn feedback_call(agent: u64, value: i128) -> R::giveFeedbackCall {
    R::giveFeedbackCall {
        agentId: U256::from(agent),
        value,
        valueDecimals: 0,
        tag1: "bench".into(),
        tag2: String::new(),
        endpoint: String::new(),
        feedbackURI: String::new(),
        feedbackHash: B256::ZERO,
    }
}

/// Sends `raw` and requires it included and successful.
async fn commit(connection: &mut Connection, raw: &[u8]) -> Result<()> {
    let (status, answer) = connection.transact(raw).await?;
    if status != 200 || answer["success"] != true {
        return Err(format!("a seeding transaction was answered {status}: {answer}"));
    }
    Ok(())
}

/// Agents drawn by a Zipf law of exponent 1 over `n` ranks: rank `r` (agent `r`) with weight
/// `1 / (r + 1)`.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: u32) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / f64::from(r + 1);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn draw(&self, rng: &mut DetRng) -> u64 {
        let total = *self.cumulative.last().expect("at least one agent");
        let x = rng.unit_f64() * total;
        self.cumulative
            .partition_point(|&c| c <= x)
            .min(self.cumulative.len() - 1) as u64
    }
}

/// What the load shares between its connections (one thread: no locks).
struct Shared {
    zipf: Zipf,
    /// Acknowledged feedback per agent, the seeded entry included.
    acked: Vec<u64>,
    /// Writers not in use.
    idle: Vec<Signer>,
    /// Latencies of the measured window from each request's scheduled time, microseconds.
    latencies: Vec<u32>,
    /// The same from when each was sent (without the load's own lateness).
    service_latencies: Vec<u32>,
    recording: bool,
    requests: u64,
    errors: u64,
    stale_reads: u64,
    writes_acked: u64,
    writes_refused: u64,
    /// Writes answered 500 or not at all: they may be in the chain.
    writes_unknown: u64,
    /// Writes included but reverted by the registry.
    writes_reverted: u64,
    /// Per agent, writes of unknown outcome.
    unknown: Vec<u64>,
    writes_skipped: u64,
    /// Reads whose answer was judged for staleness.
    reads_judged: u64,
    first_error: Option<String>,
}

async fn drive(args: LoadArgs) -> Result<String> {
    if args.offered.agents == 0
        || args.offered.connections == 0
        || args.offered.rate == 0
        || args.offered.writes > args.offered.rate
    {
        return Err("--agents, --connections and --rate must be positive, --writes at most --rate".into());
    }
    let mut first = Connection::open(args.api, &args.key).await?;
    let mut owner = Signer::new(0);
    for i in 0..args.offered.agents {
        let register = I::register_1Call {
            agentURI: format!("ipfs://bench-agent-{i}"),
        };
        commit(&mut first, &owner.sign(IDENTITY_REGISTRY, register)).await?;
    }
    let mut clients: Vec<Signer> = (1..=SEED_CLIENTS).map(Signer::new).collect();
    for agent in 0..u64::from(args.offered.agents) {
        let client = &mut clients[(agent % SEED_CLIENTS) as usize];
        commit(&mut first, &client.sign(REPUTATION_REGISTRY, feedback_call(agent, 50))).await?;
    }
    let reputation_clients = format!("{},{}", clients[0].wallet.address(), clients[1].wallet.address());
    // Room for the window's latencies, up to 10 million (more grow as they come).
    let expected = (u64::from(args.offered.rate) * args.offered.seconds).min(10_000_000) as usize;
    let shared = Rc::new(RefCell::new(Shared {
        zipf: Zipf::new(args.offered.agents),
        acked: vec![1; args.offered.agents as usize],
        idle: (0..WRITERS).map(|i| Signer::new(100 + i)).collect(),
        latencies: Vec::with_capacity(expected),
        service_latencies: Vec::with_capacity(expected),
        recording: false,
        requests: 0,
        errors: 0,
        stale_reads: 0,
        writes_acked: 0,
        writes_refused: 0,
        writes_unknown: 0,
        writes_reverted: 0,
        unknown: vec![0; args.offered.agents as usize],
        writes_skipped: 0,
        reads_judged: 0,
        first_error: None,
    }));
    let mut connections = Vec::with_capacity(args.offered.connections as usize);
    for _ in 0..args.offered.connections {
        connections.push(Connection::open(args.api, &args.key).await?);
    }
    println!("{}", json!({ "event": "warming" }));
    let connections = phase(&args, &shared, connections, &reputation_clients, args.offered.warmup, 1).await?;
    first = Connection::open(args.api, &args.key).await?;
    let (hits_before, misses_before, invalidations_before, _) = scrape(&mut first).await?;
    {
        // Counted over the measured window only (the acknowledged writes stay: the checks need
        // every one).
        let mut s = shared.borrow_mut();
        s.recording = true;
        (s.requests, s.errors, s.stale_reads, s.reads_judged) = (0, 0, 0, 0);
        (s.writes_acked, s.writes_refused, s.writes_unknown, s.writes_skipped) = (0, 0, 0, 0);
        s.writes_reverted = 0;
        s.first_error = None;
    }
    println!("{}", json!({ "event": "measuring" }));
    let started = Instant::now();
    phase(
        &args,
        &shared,
        connections,
        &reputation_clients,
        args.offered.seconds,
        2,
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!("{}", json!({ "event": "measured" }));
    shared.borrow_mut().recording = false;
    // A new connection: the server closes one idle as long as the window was.
    first = Connection::open(args.api, &args.key).await?;
    let (hits, misses, invalidations, view_age_max) = scrape(&mut first).await?;

    // Every acknowledged write is in the chain, and nothing beyond the writes whose outcome is
    // unknown: fewer is a lost write, more a write applied twice. Asked of the registry itself
    // over JSON-RPC (getSummary over the agent's seed client and every writer), not through
    // the API and its cache.
    let writers: Vec<Address> = (0..WRITERS)
        .map(|i| Wallet::development(WALLET_SEED, 100 + i).address())
        .collect();
    let (acked, unknown) = {
        let s = shared.borrow();
        (s.acked.clone(), s.unknown.clone())
    };
    let (mut lost, mut duplicated) = (0u64, 0u64);
    for (agent, (&count, &maybe)) in acked.iter().zip(&unknown).enumerate() {
        if count <= 1 && maybe == 0 {
            continue;
        }
        let mut clients = writers.clone();
        clients.push(Wallet::development(WALLET_SEED, 1 + agent as u64 % SEED_CLIENTS).address());
        let summary = R::getSummaryCall {
            agentId: U256::from(agent),
            clientAddresses: clients,
            tag1: String::new(),
            tag2: String::new(),
        };
        let data = format!("0x{}", alloy_primitives::hex::encode(summary.abi_encode()));
        let call = json!([{ "to": REPUTATION_REGISTRY, "data": data }, "latest"]);
        let seen = match crate::registry_load::rpc(args.rpc, "eth_call", call) {
            Some(Ok(Value::String(hex))) => alloy_primitives::hex::decode(hex.trim_start_matches("0x"))
                .ok()
                .and_then(|bytes| R::getSummaryCall::abi_decode_returns(&bytes).ok())
                .map(|r| r.count),
            _ => None,
        };
        let seen = seen.ok_or_else(|| format!("agent {agent}'s feedback could not be read over JSON-RPC"))?;
        lost += count.saturating_sub(seen);
        duplicated += seen.saturating_sub(count + maybe);
    }
    let mut s = shared.borrow_mut();
    let mut latencies = std::mem::take(&mut s.latencies);
    latencies.sort_unstable();
    let mut service = std::mem::take(&mut s.service_latencies);
    service.sort_unstable();
    let quantile = |sorted: &[u32], q: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
        f64::from(sorted[at]) / 1000.0
    };
    let (hit, miss) = (hits.saturating_sub(hits_before), misses.saturating_sub(misses_before));
    let hit_rate = if hit + miss == 0 {
        0.0
    } else {
        hit as f64 / (hit + miss) as f64
    };
    Ok(json!({
        "req_per_s": round1(latencies.len() as f64 / elapsed),
        "offered_per_s": args.offered.rate,
        "p50_ms": quantile(&latencies, 0.50),
        "p99_ms": quantile(&latencies, 0.99),
        "p999_ms": quantile(&latencies, 0.999),
        "max_ms": quantile(&latencies, 1.0),
        "sent_p50_ms": quantile(&service, 0.50),
        "sent_p99_ms": quantile(&service, 0.99),
        "cache_hit_rate": (hit_rate * 10_000.0).round() / 10_000.0,
        "cache_misses": miss,
        // Of the misses, those of an entry a write had changed.
        "cache_invalidations": invalidations.saturating_sub(invalidations_before),
        "view_age_s_max": view_age_max,
        "errors": s.errors,
        "first_error": s.first_error,
        "stale_reads": s.stale_reads,
        "lost_writes": lost,
        "duplicated_writes": duplicated,
        "writes_unknown": s.writes_unknown,
        "writes_reverted": s.writes_reverted,
        "reads_judged": s.reads_judged,
        "writes_acked": s.writes_acked,
        "writes_refused": s.writes_refused,
        "writes_skipped": s.writes_skipped,
        "requests": s.requests,
        "agents": args.offered.agents,
        "connections": args.offered.connections,
        "seconds": args.offered.seconds,
    })
    .to_string())
}

/// The cache's hits, misses and invalidations and the view's largest age, from `/metrics`.
async fn scrape(connection: &mut Connection) -> Result<(u64, u64, u64, f64)> {
    let (status, body) = connection.send("GET", "/metrics", None).await?;
    if status != 200 {
        return Err(format!("/metrics answered {status}"));
    }
    let text = String::from_utf8_lossy(&body);
    let value = |name: &str| -> Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .ok_or_else(|| format!("/metrics has no {name}"))
    };
    Ok((
        value("erc8004_cache_hits_total")? as u64,
        value("erc8004_cache_misses_total")? as u64,
        value("erc8004_cache_invalidations_total")? as u64,
        value("erc8004_view_age_max_seconds")?,
    ))
}

/// Offers `args.offered.rate` requests a second for `seconds`, spread over the connections (each a
/// task of its own); gives the connections back.
async fn phase(
    args: &LoadArgs,
    shared: &Rc<RefCell<Shared>>,
    connections: Vec<Connection>,
    reputation_clients: &str,
    seconds: u64,
    stream: u64,
) -> Result<Vec<Connection>> {
    let start = tokio::time::Instant::now();
    let total = u64::from(args.offered.rate) * seconds;
    let count = connections.len() as u64;
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.offered.rate));
    let mut tasks = Vec::new();
    for (k, mut connection) in connections.into_iter().enumerate() {
        let shared = shared.clone();
        let clients = reputation_clients.to_owned();
        let (rate, writes) = (args.offered.rate, args.offered.writes);
        tasks.push(tokio::task::spawn_local(async move {
            let mut rng = DetRng::seed_from_u64(stream * 1_000_003 + k as u64);
            let mut i = k as u64;
            while i < total {
                let due = start + interval.mul_f64(i as f64);
                tokio::time::sleep_until(due).await;
                let write = rng.below(u64::from(rate)) < u64::from(writes);
                request(&shared, &mut connection, &mut rng, write, &clients, due.into_std()).await;
                i += count;
            }
            connection
        }));
    }
    let mut back = Vec::with_capacity(tasks.len());
    for task in tasks {
        back.push(task.await.map_err(|e| format!("a connection's task failed: {e}"))?);
    }
    Ok(back)
}

/// One request, its latency counted from `due` (and from when it was sent); only answered
/// requests (2xx) are timed. A connection that failed is opened again for the next request.
async fn request(
    shared: &Rc<RefCell<Shared>>,
    connection: &mut Connection,
    rng: &mut DetRng,
    write: bool,
    reputation_clients: &str,
    due: Instant,
) {
    let agent = shared.borrow().zipf.draw(rng);
    let writer = if write { shared.borrow_mut().idle.pop() } else { None };
    if write && writer.is_none() {
        shared.borrow_mut().writes_skipped += 1;
    }
    let (outcome, sent, done) = if let Some(mut writer) = writer {
        let raw = writer.sign(REPUTATION_REGISTRY, feedback_call(agent, 1 + rng.below(100) as i128));
        let sent = Instant::now();
        let answer = connection.transact(&raw).await;
        let done = Instant::now();
        let mut s = shared.borrow_mut();
        match &answer {
            Ok((200, body)) if body["success"] == true => {
                s.acked[agent as usize] += 1;
                s.writes_acked += 1;
                s.idle.push(writer);
            }
            // Included but reverted: the registry refused a write the bench made valid.
            Ok((200, _)) => {
                s.writes_reverted += 1;
                s.idle.push(writer);
            }
            // Refused (a 4xx or 503: not done), or unknown (a 500, no answer): either way the
            // writer's nonce is no longer known, and it is retired. An unknown one may be in the
            // chain: the end's check allows for it, and counts any beyond as duplicated.
            Ok((status, _)) if *status != 500 => s.writes_refused += 1,
            _ => {
                s.unknown[agent as usize] += 1;
                s.writes_unknown += 1;
            }
        }
        (answer.map(|(status, _)| status), sent, done)
    } else {
        let mut pick = rng.below(100);
        let route = READ_MIX
            .iter()
            .find(|(_, share)| {
                let hit = pick < *share;
                pick = pick.saturating_sub(*share);
                hit
            })
            .map_or("agent", |(route, _)| route);
        let target = match route {
            "agent" => format!("/api/v1/agents/{agent}"),
            "stats" => format!("/api/v1/agents/{agent}/stats"),
            "feedback" => format!("/api/v1/agents/{agent}/feedback"),
            "reputation" => format!("/api/v1/agents/{agent}/reputation?clients={reputation_clients}"),
            _ => format!("/api/v1/agents/?limit=20&cursor={agent}"),
        };
        // A write acknowledged before this read was sent must be in what it reads: the agent's
        // feedback count, and its statistics' (the other routes are not judged).
        let expected = shared.borrow().acked[agent as usize];
        let sent = Instant::now();
        let answer = connection.send("GET", &target, None).await;
        let done = Instant::now();
        if let Ok((200, body)) = &answer {
            let read = |v: Value| match route {
                "agent" => Some(v["feedback"].as_u64()),
                "stats" => Some(v["feedback"]["given"].as_u64()),
                _ => None,
            };
            if let Some(seen) = serde_json::from_slice::<Value>(body).ok().and_then(read) {
                let mut s = shared.borrow_mut();
                s.reads_judged += 1;
                if seen.is_none_or(|seen| seen < expected) {
                    s.stale_reads += 1;
                }
            }
        }
        (answer.map(|(status, _)| status), sent, done)
    };
    let mut s = shared.borrow_mut();
    s.requests += 1;
    let answered = match outcome {
        Ok(status) if (200..300).contains(&status) => true,
        Ok(status) => {
            s.errors += 1;
            s.first_error.get_or_insert_with(|| format!("status {status}"));
            false
        }
        Err(e) => {
            s.errors += 1;
            s.first_error.get_or_insert(e);
            connection.broken = true;
            false
        }
    };
    if s.recording && answered {
        let micros = |from: Instant| u32::try_from(done.duration_since(from).as_micros()).unwrap_or(u32::MAX);
        s.latencies.push(micros(due));
        s.service_latencies.push(micros(sent));
    }
}
