//! `testbed node memory`: how much memory a production node holds with N members in its view.
//!
//! One `hypermesh node` (the operator's binary, membership over STOQ with the production
//! defaults, enrolled with a CA over HTTPS as an operator would enroll it) is the node measured.
//! Its N − 1 peers run in this process: each a HyperMesh membership node over STOQ on a socket
//! of its own on `[::1]`, with its own key and a certificate from the same CA, joining through
//! the measured node (its only seed). Each peer's messages reach the node over a mutually
//! authenticated QUIC connection of their own, so the node holds what it would hold in a real
//! cluster of N: N − 1 verified identities, a member record each, and a connection to each peer
//! it has spoken with.
//!
//! The peers are paced (`--peer-pace`): they probe, gossip and swap lists with each other only
//! that often, so that N − 1 of them fit on a small machine beside the node. The node runs the
//! guide's defaults and answers every peer at once; how slowly the peers talk among themselves
//! changes what they tell the node about each other, not what the node keeps per member.
//!
//! The run: the peers join at `--join-rate` per second; once the node holds every peer alive,
//! its resident memory is sampled every second for `--hold` (from `/proc/PID/status`: `VmRSS`,
//! with `RssAnon` and `RssFile`, and the high-water mark `VmHWM` since the process started,
//! which includes enrollment and the joins). The figure judged against `--limit-mb` is the
//! largest `VmRSS` sampled while the view held every member; samples taken while it did not (a
//! member suspected or declared dead meanwhile, counted and reported) are not judged, and a hold
//! with none is a failed run. The node's CPU over the hold is read from `/proc/PID/stat`.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hypermesh::membership::{self, IdentityBinding, MembershipConfig, MembershipNode};
use runtime::host::Host;
use runtime::Actor;
use runtime_tokio::{drive, DirStorage, NodeSpec, RealEnv};
use stoq::{Credentials, Stoq, StoqConfig, Trust};
use tokio::sync::watch;
use trustchain::ca::{key_from_seed, request, NodeIdentity};
use trustchain_service::{CaService, Credential};

use crate::processes::{
    clock_ticks_per_second, cpu_ticks, free_udp_ports, path_arg, round1, Binaries, Lines, Process, Result, Workspace,
};

/// How long the node has to hold every peer alive once the last one started joining.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(180);
/// How often the node's memory is read.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Open files beyond a socket per peer: the CA's files, pipes, the node's output.
const OPEN_FILES_SPARE: usize = 64;
/// The name the measured node enrolls under; peer `i` is `peer-{i}.mesh`.
const NODE_NAME: &str = "node-0.mesh";

/// What to measure.
pub struct MemoryArgs {
    /// Members in the node's view, the node included.
    pub members: usize,
    /// How long memory is sampled once the view is full.
    pub hold: Duration,
    /// Peers started per second.
    pub join_rate: u32,
    /// How often peers probe, gossip and swap lists among themselves.
    pub peer_pace: Duration,
    /// The verdict's bound on the node's resident memory, in bytes.
    pub limit_bytes: u64,
    /// One JSON line instead of sentences.
    pub json: bool,
    /// The binaries and the state directory.
    pub workspace: Workspace,
}

/// Runs the measurement. Exit 0: the node stayed within the limit; 1: it went over; 2: the
/// cluster could not be set up or the node never held every member.
pub fn run(args: MemoryArgs) -> ExitCode {
    args.workspace.run("node-memory", |bins, dir| {
        let outcome = measure(&args, bins, dir)?;
        let line = if args.json {
            outcome.json(&args)
        } else {
            outcome.sentences(&args)
        };
        let code = if outcome.rss_max <= args.limit_bytes {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
        Ok((line, code))
    })
}

/// What one run measured.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    /// Members the node held alive at the end of the hold, itself included.
    alive: usize,
    /// Peer connections the node had established and not lost at the end of the hold.
    connections: i64,
    /// Seconds from the first peer starting until the node held every member.
    converged_s: f64,
    /// Seconds sampled with the view full.
    held_s: f64,
    /// Memory samples taken during the hold, and those taken while the view held every member.
    samples: u64,
    full_samples: u64,
    /// Largest `VmRSS` sampled during the hold with the view full, bytes.
    rss_max: u64,
    /// `VmRSS` at the last sample.
    rss_end: u64,
    /// `RssAnon` and `RssFile` at the last sample.
    anon_end: u64,
    file_end: u64,
    /// `VmHWM` at the last sample: the peak since the node started.
    hwm: u64,
    /// Times during the hold the node marked a member suspect or dead.
    suspected: u64,
    /// The node's CPU (user + system, every thread) over the hold, as a share of one core.
    cpu_pct: f64,
}

impl Outcome {
    fn json(&self, args: &MemoryArgs) -> String {
        serde_json::json!({
            "members": args.members,
            "alive": self.alive,
            "connections": self.connections,
            "converged_s": round1(self.converged_s),
            "hold_s": round1(self.held_s),
            "samples": self.samples,
            "samples_with_full_view": self.full_samples,
            "rss_mb": mb(self.rss_max),
            "rss_mb_end": mb(self.rss_end),
            "anon_mb_end": mb(self.anon_end),
            "file_mb_end": mb(self.file_end),
            "hwm_mb": mb(self.hwm),
            "suspected_during_hold": self.suspected,
            "cpu_pct_during_hold": round1(self.cpu_pct),
            "limit_mb": mb(args.limit_bytes),
            "within_limit": self.rss_max <= args.limit_bytes,
            "peer_pace_s": args.peer_pace.as_secs_f64(),
        })
        .to_string()
    }

    fn sentences(&self, args: &MemoryArgs) -> String {
        let verdict = if self.rss_max <= args.limit_bytes {
            "within"
        } else {
            "OVER"
        };
        format!(
            "the node held {alive} of {members} members alive ({connections} peer connections), {converged:.1} s after the first peer started\n\
             resident memory over a {held:.0} s hold: at most {rss:.1} MB with the view full ({full} of {samples} samples), {end:.1} MB at the end ({anon:.1} MB anonymous, {file:.1} MB file-backed); peak since start {hwm:.1} MB\n\
             {verdict} the limit of {limit:.1} MB; members suspected or declared dead during the hold: {suspected}; the node's CPU during the hold: {cpu:.1} % of a core",
            alive = self.alive,
            members = args.members,
            connections = self.connections,
            converged = self.converged_s,
            held = self.held_s,
            full = self.full_samples,
            samples = self.samples,
            rss = mb(self.rss_max),
            end = mb(self.rss_end),
            anon = mb(self.anon_end),
            file = mb(self.file_end),
            hwm = mb(self.hwm),
            limit = mb(args.limit_bytes),
            suspected = self.suspected,
            cpu = self.cpu_pct,
        )
    }
}

fn measure(args: &MemoryArgs, bins: &Binaries, dir: &Path) -> Result<Outcome> {
    check_open_files(args.members)?;
    let say = |what: &str| {
        if !args.json {
            eprintln!("{what}");
        }
    };

    say(&format!("setting up a CA and {} peer certificates", args.members - 1));
    let (ca_state, root) = bins.new_ca(dir)?;
    let (token, peers, trust) = certify(&ca_state, args.members - 1)?;
    let (ca, ca_addr) = bins.serve_ca(&ca_state, dir)?;

    say("starting the node");
    let port = free_udp_ports(1)?[0];
    let listen = format!("[::1]:{port}");
    let (line_tx, line_rx) = mpsc::channel();
    let mut node = Process::start(
        &bins.hypermesh,
        &[
            "node",
            "--listen",
            &listen,
            "--name",
            NODE_NAME,
            "--ca",
            &ca_addr,
            "--ca-root",
            &path_arg(&root),
            "--token",
            &token,
            "--state",
            &path_arg(&dir.join("node")),
        ],
        &dir.join("node.log"),
        Some(Lines::Forward(line_tx)),
    )?;
    let node_addr: SocketAddr = listen.parse().map_err(|e| format!("{listen}: {e}"))?;
    let view = View::follow(line_rx, &dir.join("node.out"))?;

    say(&format!(
        "starting {} peers at {} a second, pace {:?}",
        peers.len(),
        args.join_rate,
        args.peer_pace
    ));
    let swarm = Swarm::start(peers, trust, node_addr, args, &dir.join("peers"))?;
    let started = Instant::now();
    let others = args.members - 1;
    let deadline = Duration::from_secs_f64(others as f64 / f64::from(args.join_rate)) + CONVERGE_TIMEOUT;
    while view.alive() < others {
        if let Some(failure) = swarm.failure() {
            return Err(failure);
        }
        if let Ok(Some(status)) = node.child.try_wait() {
            return Err(format!(
                "the node exited ({status}) with {} of {others} peers alive: see node.log",
                view.alive()
            ));
        }
        if swarm.thread.is_finished() {
            return Err("the peers stopped before the node held them all".into());
        }
        if started.elapsed() > deadline {
            return Err(format!(
                "the node held {} of {others} peers alive after {:?}",
                view.alive(),
                started.elapsed()
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
    let converged_s = started.elapsed().as_secs_f64();
    say(&format!(
        "the view is full after {converged_s:.1} s; holding for {:?}",
        args.hold
    ));

    let pid = node.child.id();
    let suspected_before = view.suspected();
    let hold_start = Instant::now();
    let ticks_before = cpu_ticks(pid)?;
    let mut outcome = Outcome {
        converged_s,
        ..Outcome::default()
    };
    loop {
        let memory = Memory::of(pid)?;
        outcome.samples += 1;
        // A sample counts only while the view holds every member: a member suspected meanwhile
        // is a view that was not full then.
        if view.alive() == others {
            outcome.full_samples += 1;
            outcome.rss_max = outcome.rss_max.max(memory.rss);
        }
        outcome.rss_end = memory.rss;
        outcome.anon_end = memory.anon;
        outcome.file_end = memory.file;
        outcome.hwm = memory.hwm;
        if hold_start.elapsed() >= args.hold {
            break;
        }
        thread::sleep(SAMPLE_INTERVAL);
    }
    outcome.held_s = hold_start.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid)? - ticks_before;
    outcome.cpu_pct = 100.0 * ticks as f64 / clock_ticks_per_second() / outcome.held_s;
    outcome.alive = view.alive() + 1;
    outcome.connections = view.connections();
    outcome.suspected = view.suspected() - suspected_before;
    if outcome.full_samples == 0 {
        return Err(format!(
            "the node's view was never full while its memory was read ({} samples; {} members alive at the end)",
            outcome.samples, outcome.alive
        ));
    }
    swarm.stop()?;
    drop(node);
    drop(ca);
    Ok(outcome)
}

/// A peer's name, key seed and certificate chain.
struct Peer {
    name: String,
    credentials: Credentials,
}

/// Opens the CA's state (nothing else has it open yet) and, as its operator, grants the node a
/// join token and certifies `count` peers on `[::1]`, each with a fresh key: the same issuance
/// as `trustchain issue --approve`, every leaf in the CA's transparency log. Returns the token,
/// the peers and the trust every peer starts with (the CA's bundle and revocation lists).
fn certify(ca_state: &Path, count: usize) -> Result<(String, Vec<Peer>, Trust)> {
    let now = unix_now();
    let mut storage = DirStorage::open(ca_state).map_err(|e| format!("{}: {e}", ca_state.display()))?;
    let mut service = CaService::open(&mut storage).map_err(|e| format!("the CA in {}: {e}", ca_state.display()))?;
    let on_loopback = |name: String| NodeIdentity {
        name,
        addr: Ipv6Addr::LOCALHOST,
    };
    let token = service
        .token(
            &mut storage,
            on_loopback(NODE_NAME.into()),
            Duration::from_secs(3600),
            now,
        )
        .map_err(|e| format!("a join token for {NODE_NAME}: {e}"))?;
    let mut peers = Vec::with_capacity(count);
    for i in 1..=count {
        let name = format!("peer-{i}.mesh");
        let mut key_seed = [0u8; 32];
        getrandom::fill(&mut key_seed).map_err(|e| format!("no OS randomness for a peer key: {e}"))?;
        let key = key_from_seed(&key_seed);
        let csr = request(&on_loopback(name.clone()), &key).map_err(|e| format!("{name}: {e}"))?;
        let issued = service
            .issue(
                &mut storage,
                &csr,
                &Credential::Operator(on_loopback(name.clone())),
                now,
            )
            .map_err(|e| format!("certifying {name}: {e}"))?;
        peers.push(Peer {
            name,
            credentials: Credentials {
                chain: issued.chain,
                key_pkcs8: key.serialize_der(),
            },
        });
    }
    let trust = Trust {
        bundle: service.bundle(),
        crls: service
            .crls(&mut storage, now)
            .map_err(|e| format!("the CA's revocation lists: {e}"))?,
    };
    Ok((token, peers, trust))
}

/// The N − 1 peers, each a membership node over STOQ, on one current-thread runtime on a
/// thread of its own.
struct Swarm {
    stop: watch::Sender<bool>,
    thread: thread::JoinHandle<()>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Swarm {
    fn start(peers: Vec<Peer>, trust: Trust, seed: SocketAddr, args: &MemoryArgs, dir: &Path) -> Result<Swarm> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the peers' runtime: {e}"))?;
        let (stop, stop_rx) = watch::channel(false);
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        let pace = args.peer_pace;
        let gap = Duration::from_secs_f64(1.0 / f64::from(args.join_rate));
        let dir = dir.to_path_buf();
        let thread = thread::spawn(move || {
            runtime.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for (i, peer) in peers.into_iter().enumerate() {
                    if *stop_rx.borrow() {
                        break;
                    }
                    let spec = NodeSpec::new(vec!["[::1]:0".parse().expect("an address")], dir.join(&peer.name));
                    let mut env = match RealEnv::bind(i, &spec) {
                        Ok(env) => env,
                        Err(e) => {
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{}: {e}", peer.name));
                            return;
                        }
                    };
                    let mut actor = peer_actor(&peer, trust.clone(), seed, pace);
                    let mut stop = stop_rx.clone();
                    tasks.spawn(async move {
                        drive(&mut *actor, &mut env, &mut stop).await;
                    });
                    tokio::time::sleep(gap).await;
                }
                let mut stop = stop_rx.clone();
                let _ = stop.wait_for(|stopped| *stopped).await;
                while tasks.join_next().await.is_some() {}
            });
        });
        Ok(Swarm { stop, thread, failure })
    }

    /// Why the swarm stopped early, if it did.
    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let failure = self.failure();
        self.thread
            .join()
            .map_err(|_| "the peers' thread panicked".to_owned())?;
        failure.map_or(Ok(()), Err)
    }
}

/// A peer: membership over STOQ, identified as `hypermesh node` identifies itself (the id is
/// the hash of its certified name), joining through `seed`, probing, gossiping and swapping
/// lists every `pace`.
fn peer_actor(peer: &Peer, trust: Trust, seed: SocketAddr, pace: Duration) -> Box<dyn Actor + Send> {
    let mut config = MembershipConfig::new(IdentityBinding::hashed(&peer.name), vec![seed]);
    config.identity = Some(IdentityBinding::NameHash);
    config.probe_interval = pace;
    config.gossip_interval = pace;
    config.push_pull_interval = config.push_pull_interval.max(pace);
    Box::new(
        Host::new(Stoq::new(StoqConfig::default(), Some(peer.credentials.clone()), trust))
            .mount(membership::MOUNT, MembershipNode::new(config)),
    )
}

/// The node's view as its output tells it: every member's last state, and its STOQ
/// connections.
struct View {
    state: Arc<Mutex<ViewState>>,
}

#[derive(Default)]
struct ViewState {
    /// Member id → last state (0 alive, 1 suspect, 2 dead).
    members: HashMap<u64, i64>,
    /// Connections established and lost.
    connected: i64,
    lost: i64,
    /// Times a member was marked suspect or dead.
    suspected: u64,
}

impl ViewState {
    /// Takes one line of the node's output.
    fn read(&mut self, line: &str) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        match (value["protocol"].as_str(), value["probe"].as_str()) {
            (Some("membership"), Some("member")) => {
                let (Some(id), Some(state)) = (value["subject"].as_u64(), value["value"].as_i64()) else {
                    return;
                };
                if state != 0 {
                    self.suspected += 1;
                }
                self.members.insert(id, state);
            }
            (Some("stoq"), Some("stoq_connected")) => self.connected += 1,
            (Some("stoq"), Some("stoq_lost")) => self.lost += 1,
            _ => {}
        }
    }
}

impl View {
    /// Follows the node's output lines, copying each to `copy` (kept with `--keep`).
    fn follow(lines: mpsc::Receiver<String>, copy: &Path) -> Result<View> {
        let file = std::fs::File::create(copy).map_err(|e| format!("cannot create {}: {e}", copy.display()))?;
        let mut copy = std::io::BufWriter::new(file);
        let state = Arc::new(Mutex::new(ViewState::default()));
        let kept = state.clone();
        thread::spawn(move || {
            for line in lines {
                // Flushed line by line: the copy is read when a run fails, and nobody joins this thread.
                let _ = writeln!(copy, "{line}").and_then(|()| copy.flush());
                kept.lock().unwrap_or_else(|p| p.into_inner()).read(&line);
            }
        });
        Ok(View { state })
    }

    fn with<T>(&self, f: impl FnOnce(&ViewState) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Members (not the node) held alive.
    fn alive(&self) -> usize {
        self.with(|s| s.members.values().filter(|&&v| v == 0).count())
    }

    fn connections(&self) -> i64 {
        self.with(|s| s.connected - s.lost)
    }

    fn suspected(&self) -> u64 {
        self.with(|s| s.suspected)
    }
}

/// A process's memory, from `/proc/PID/status`, in bytes.
#[derive(Debug, PartialEq)]
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
    hwm: u64,
}

impl Memory {
    fn of(pid: u32) -> Result<Memory> {
        let path = format!("/proc/{pid}/status");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e} (did the node exit? see node.log)"))?;
        Memory::parse(&text).ok_or_else(|| format!("{path} has no VmRSS, RssAnon, RssFile or VmHWM line"))
    }

    fn parse(status: &str) -> Option<Memory> {
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib * 1024)
        };
        Some(Memory {
            rss: field("VmRSS:")?,
            anon: field("RssAnon:")?,
            file: field("RssFile:")?,
            hwm: field("VmHWM:")?,
        })
    }
}

/// Refuses a run that would need more open files than this process may have: a socket per peer
/// and some for the CA's files and pipes.
fn check_open_files(members: usize) -> Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    let needed = members + OPEN_FILES_SPARE;
    match soft {
        Some(soft) if soft < needed => Err(format!(
            "--members {members} needs about {needed} open files (a socket per peer) and this process may open {soft}: raise the limit (ulimit -n {needed}) or give fewer members"
        )),
        _ => Ok(()),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Bytes in decimal megabytes (the guide's and the issue's unit), one decimal.
fn mb(bytes: u64) -> f64 {
    round1(bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_a_status_file_in_bytes() {
        let status = "Name:\thypermesh\nVmHWM:\t   50000 kB\nVmRSS:\t   40000 kB\nRssAnon:\t   30000 kB\nRssFile:\t    9000 kB\n";
        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                rss: 40_000 * 1024,
                anon: 30_000 * 1024,
                file: 9_000 * 1024,
                hwm: 50_000 * 1024,
            })
        );
        assert_eq!(Memory::parse("Name:\tx\nVmRSS:\t1 kB\n"), None);
        assert!(Memory::of(std::process::id()).unwrap().rss > 0);
    }

    #[test]
    fn the_view_follows_member_states_and_connections() {
        let mut view = ViewState::default();
        for line in [
            r#"{"at_ms":1,"protocol":"membership","probe":"member","subject":7,"value":0}"#,
            r#"{"at_ms":2,"protocol":"membership","probe":"member","subject":8,"value":0}"#,
            r#"{"at_ms":3,"protocol":"membership","probe":"member","subject":8,"value":1}"#,
            r#"{"at_ms":4,"protocol":"stoq","probe":"stoq_connected","subject":1,"value":1}"#,
            r#"{"at_ms":5,"protocol":"stoq","probe":"stoq_connected","subject":1,"value":1}"#,
            r#"{"at_ms":6,"protocol":"stoq","probe":"stoq_lost","subject":1,"value":1}"#,
            r#"{"at_ms":7,"protocol":"consensus","probe":"member","subject":9,"value":0}"#,
            "listening on [::1]:7000 as node-0.mesh",
        ] {
            view.read(line);
        }
        assert_eq!(view.members.values().filter(|&&v| v == 0).count(), 1);
        assert_eq!((view.connected - view.lost, view.suspected), (1, 1));
    }
}
