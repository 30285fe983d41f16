//! Scenario files: what to simulate, what to break and when, and what must hold.
//!
//! The format is documented in `scenarios/README.md`. Parsing is strict: an unknown key, a value
//! out of range or an assertion on an unknown metric is an error naming the file and line.

mod api;
mod raw;
pub mod units;
mod write;

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use simulator::{Latency, LinkModel, StorageFaults};
use toml::Spanned;

use crate::assertion::Assertion;
use crate::workload::{self, Workload, WORKLOADS};
pub use api::{AgentIds, ApiPlan, ClientRole};
use raw::{RawLatency, RawScenario, RawSelection, RawWorkload};
use runtime::units::{parse_duration, parse_signed_nanos};
pub use units::Selection;
pub use write::to_toml;

/// A scenario file that could not be used: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or the `--set` override at fault).
    pub path: String,
    /// 1-based line; 0 when the problem is not on a line (an unreadable file, an override).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.path, self.message),
            line => write!(f, "{}:{line}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Which address families a node has.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// IPv6 only (the system's design).
    Ipv6,
    /// IPv4 only (a misconfigured node).
    Ipv4,
    /// Both.
    Dual,
}

/// One node's setup as the file states it (random parts are drawn later from the seed).
#[derive(Clone, Debug, PartialEq)]
pub struct NodePlan {
    /// Address families.
    pub family: Family,
    /// A fixed wall-clock offset, overriding the random one.
    pub clock_offset_ns: Option<i64>,
    /// A fixed drift, overriding the random one.
    pub drift_ppm: Option<f64>,
    /// A fixed start time, overriding the one drawn from `workload.start_spread` (for a fault
    /// that must find the node running, such as a crash of the CA during the cold start).
    pub start: Option<Duration>,
}

/// Clock ranges from which each node's clock is drawn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClockPlan {
    /// Offsets are uniform in `[-offset_max, offset_max]`.
    pub offset_max: Duration,
    /// Drifts are uniform in `[-drift_ppm_max, drift_ppm_max]`.
    pub drift_ppm_max: f64,
    /// If set, every node's wall clock is corrected (NTP-like) this often.
    pub ntp_interval: Option<Duration>,
}

/// The membership workload's settings (unset ones keep the protocol's defaults).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MembershipPlan {
    /// How many of the first nodes form the static seed list.
    pub seeds: u32,
    /// Nodes start at uniformly random times in `[0, start_spread]`.
    pub start_spread: Duration,
    /// Overrides of [`hypermesh::membership::MembershipConfig`] fields.
    pub probe_interval: Option<Duration>,
    /// See the protocol's config.
    pub latency_tolerance: Option<Duration>,
    /// See the protocol's config.
    pub probe_margin: Option<Duration>,
    /// See the protocol's config.
    pub indirect_after: Option<Duration>,
    /// See the protocol's config.
    pub indirect_probes: Option<u32>,
    /// See the protocol's config.
    pub confirmation_required: Option<u32>,
    /// See the protocol's config.
    pub suspicion_mult: Option<u32>,
    /// See the protocol's config.
    pub clock_skew_max: Option<Duration>,
    /// See the protocol's config.
    pub gossip_interval: Option<Duration>,
    /// See the protocol's config.
    pub gossip_fanout: Option<u32>,
    /// See the protocol's config.
    pub push_pull_interval: Option<Duration>,
    /// How long after a fault a suspicion still counts as caused by it, not as a false positive.
    pub settle: Duration,
    /// Nodes that slander: every membership datagram they send also claims live members dead
    /// (`src/workload/membership/slander.rs`). Membership over bare datagrams only.
    pub slanderers: Vec<u32>,
}

/// Membership over STOQ: its datagrams travel in mutually authenticated QUIC connections (the
/// `stoq::Stoq` host transport). Under the membership workload every node gets a TrustChain leaf
/// for its IPv6 address from a CA drawn from the seed; under the trustchain workload (with
/// `trustchain.membership = true`) nodes present what TrustChain issues them as the run goes.
#[derive(Clone, Debug, PartialEq)]
pub struct StoqPlan {
    /// Connections idle this long close.
    pub idle_timeout: Duration,
    /// PING interval keeping connections open.
    pub keep_alive: Duration,
    /// Round trip assumed before the first measurement (handshake retransmission).
    pub initial_rtt: Duration,
}

/// The TrustChain workload's settings (see `trustchain::node::config` for what each does).
#[derive(Clone, Debug, PartialEq)]
pub struct TrustChainPlan {
    /// The node that creates the root and runs the CA (bootstrap phase 1).
    pub ca: u32,
    /// Certificate handshakes with a random peer this often, per node.
    pub handshake_interval: Duration,
    /// Unanswered handshakes are abandoned after this.
    pub handshake_timeout: Duration,
    /// Nodes fetch the bundle and revocation lists this often.
    pub bundle_refresh: Duration,
    /// Leaves renew at this fraction of their lifetime.
    pub renew_fraction: f64,
    /// Check a new chain against peers before presenting it.
    pub verify_before_switch: bool,
    /// The CA's `notBefore` back-dating allowance.
    pub backdate: Duration,
    /// Leaf lifetime.
    pub leaf_lifetime: Duration,
    /// Intermediate rotation period, if any.
    pub rotate_every: Option<Duration>,
    /// Old intermediate kept in bundles this long after a rotation (zero: abrupt switch).
    pub overlap: Duration,
    /// Gradual rollout waves (zero: none).
    pub rollout_waves: u32,
    /// Time between waves.
    pub rollout_interval: Duration,
    /// Push bundle changes to nodes (else they wait for their refresh).
    pub push_bundles: bool,
    /// The guide's circular bootstrap: no issuance before this many certified members.
    pub quorum_before_issuing: u32,
    /// Revocations: (time after the CA's creation, node).
    pub revocations: Vec<(Duration, u32)>,
    /// Mount membership beside the TrustChain node on every node (one host, two protocols),
    /// configured from `[workload]` as the membership workload is.
    pub membership: bool,
}

impl Default for TrustChainPlan {
    fn default() -> Self {
        TrustChainPlan {
            ca: 0,
            handshake_interval: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(5),
            bundle_refresh: Duration::from_secs(600),
            renew_fraction: 2.0 / 3.0,
            verify_before_switch: true,
            backdate: Duration::from_secs(300),
            leaf_lifetime: Duration::from_secs(86_400),
            rotate_every: None,
            overlap: Duration::from_secs(3600),
            rollout_waves: 6,
            rollout_interval: Duration::from_secs(300),
            push_bundles: true,
            quorum_before_issuing: 0,
            membership: false,
            revocations: Vec::new(),
        }
    }
}

/// The consensus workload's settings: HotStuff-2 replicas on the first `validators` nodes, a
/// load client on each of the others (see `crate::workload::consensus`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConsensusPlan {
    /// Nodes `0..validators` are validators; the rest (at least one) run load clients.
    pub validators: u32,
    /// Time between a client's submissions.
    pub client_interval: Duration,
    /// Clients stop submitting at this time from the start of the run (never if unset).
    pub client_stop: Option<Duration>,
    /// One client turn in this many is a linearizable read instead of a transaction; 0 never
    /// ([`hypermesh::consensus::client::LoadConfig::linearizable_reads`]).
    pub linearizable_reads: u32,
    /// [`hypermesh::consensus::ConsensusConfig::batch_size_max`].
    pub batch_size_max: u32,
    /// [`hypermesh::consensus::ConsensusConfig::batch_delay_max`].
    pub batch_delay_max: Duration,
    /// [`hypermesh::consensus::ConsensusConfig::view_timeout`].
    pub view_timeout: Duration,
    /// [`hypermesh::consensus::ConsensusConfig::votes_to_all`].
    pub votes_to_all: bool,
    /// [`hypermesh::consensus::ConsensusConfig::skip_suspected_leaders`].
    pub skip_suspected_leaders: bool,
    /// [`hypermesh::consensus::ConsensusConfig::checkpoint_interval`].
    pub checkpoint_interval: u64,
    /// [`hypermesh::consensus::ConsensusConfig::log_retain_heights`].
    pub log_retain_heights: u64,
    /// [`hypermesh::consensus::detection::DetectionConfig::latency_tolerance`] (the guide's 500 ms).
    pub latency_tolerance: Duration,
    /// [`hypermesh::consensus::detection::DetectionConfig::clock_skew_max`] (the guide's 30 s).
    pub clock_skew_max: Duration,
    /// [`hypermesh::consensus::detection::DetectionConfig::confirmation_required`] (the guide's 3).
    pub confirmation_required: u32,
    /// Validators given an adversary (`"NODE:BEHAVIOUR[:ARGUMENT]"` in the file), at most `f`.
    pub byzantine: Vec<(u32, hypermesh::testing::adversary::Behaviour)>,
}

/// Parses one `consensus.byzantine` entry: `"NODE:BEHAVIOUR"`, with an argument for `delay`
/// and `clock-lie` (a duration) and `impersonate` (the validator impersonated).
pub fn parse_byzantine(text: &str) -> Result<(u32, hypermesh::testing::adversary::Behaviour), String> {
    use hypermesh::testing::adversary::Behaviour;
    let mut parts = text.split(':');
    let node = parts.next().unwrap_or("");
    let node: u32 = node
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected NODE:BEHAVIOUR, and {node:?} is not a node index"))?;
    let name = parts.next().map(str::trim).unwrap_or("");
    let argument = parts.next().map(str::trim);
    if parts.next().is_some() {
        return Err(format!("{text:?}: at most NODE:BEHAVIOUR:ARGUMENT"));
    }
    let needs = |what: &str| {
        format!(
            "{text:?}: {name} needs an argument, {what} (e.g. \"{node}:{name}:{}\")",
            if what.starts_with('a') { "1500ms" } else { "0" }
        )
    };
    let behaviour = match (name, argument) {
        ("equivocate", None) => Behaviour::Equivocate,
        ("forge", None) => Behaviour::Forge,
        ("withhold", None) => Behaviour::Withhold,
        ("mutate", None) => Behaviour::Mutate,
        ("delay", Some(d)) => Behaviour::Delay(parse_duration(d).map_err(|m| format!("{text:?}: {m}"))?),
        ("clock-lie", Some(d)) => Behaviour::ClockLie(parse_duration(d).map_err(|m| format!("{text:?}: {m}"))?),
        ("impersonate", Some(v)) => Behaviour::Impersonate(
            v.parse()
                .map_err(|_| format!("{text:?}: impersonate needs the validator index impersonated"))?,
        ),
        ("delay" | "clock-lie", None) => return Err(needs("a duration")),
        ("impersonate", None) => return Err(needs("the validator impersonated")),
        ("twins", Some(n)) => Behaviour::Twins(
            n.parse()
                .map_err(|_| format!("{text:?}: twins needs the node its twin runs on"))?,
        ),
        ("twins", None) => return Err(needs("the node its twin runs on")),
        ("equivocate" | "forge" | "withhold" | "mutate", Some(_)) => {
            return Err(format!("{text:?}: {name} takes no argument"))
        }
        _ => {
            return Err(format!(
                "{text:?}: unknown behaviour {name:?}; known: equivocate, forge, withhold, delay:DURATION, \
                 clock-lie:DURATION, mutate, impersonate:VALIDATOR, twins:NODE"
            ))
        }
    };
    Ok((node, behaviour))
}

/// The `consensus.byzantine` entry of `(node, behaviour)`, as [`parse_byzantine`] reads it.
pub fn byzantine_text(node: u32, behaviour: &hypermesh::testing::adversary::Behaviour) -> String {
    use hypermesh::testing::adversary::Behaviour;
    match behaviour {
        Behaviour::Delay(d) | Behaviour::ClockLie(d) => format!("{node}:{}:{}ns", behaviour.name(), d.as_nanos()),
        Behaviour::Impersonate(v) => format!("{node}:impersonate:{v}"),
        Behaviour::Twins(twin) => format!("{node}:twins:{twin}"),
        other => format!("{node}:{}", other.name()),
    }
}

impl ConsensusPlan {
    /// The plan of a scenario of `count` nodes with no `[consensus]` table (`count` at least 2):
    /// every node a validator but the last, which runs the one client, and the protocol's
    /// defaults.
    pub fn with_defaults(count: u32) -> Self {
        let defaults = hypermesh::consensus::ConsensusConfig::default();
        ConsensusPlan {
            validators: count.saturating_sub(1).max(1),
            client_interval: Duration::from_millis(20),
            client_stop: None,
            linearizable_reads: 0,
            batch_size_max: defaults.batch_size_max as u32,
            batch_delay_max: defaults.batch_delay_max,
            view_timeout: defaults.view_timeout,
            votes_to_all: defaults.votes_to_all,
            skip_suspected_leaders: defaults.skip_suspected_leaders,
            checkpoint_interval: defaults.checkpoint_interval,
            log_retain_heights: defaults.log_retain_heights,
            latency_tolerance: defaults.detection.latency_tolerance,
            clock_skew_max: defaults.detection.clock_skew_max,
            confirmation_required: defaults.detection.confirmation_required as u32,
            byzantine: Vec::new(),
        }
    }

    /// Every replica's configuration: the protocol's defaults with this plan's settings.
    pub fn config(&self) -> hypermesh::consensus::ConsensusConfig {
        let defaults = hypermesh::consensus::ConsensusConfig::default();
        hypermesh::consensus::ConsensusConfig {
            batch_size_max: self.batch_size_max as usize,
            batch_delay_max: self.batch_delay_max,
            view_timeout: self.view_timeout,
            votes_to_all: self.votes_to_all,
            skip_suspected_leaders: self.skip_suspected_leaders,
            checkpoint_interval: self.checkpoint_interval,
            log_retain_heights: self.log_retain_heights,
            detection: hypermesh::consensus::detection::DetectionConfig {
                latency_tolerance: self.latency_tolerance,
                clock_skew_max: self.clock_skew_max,
                confirmation_required: self.confirmation_required as usize,
                ..defaults.detection
            },
            ..defaults
        }
    }
}

/// A variant of a scenario: other settings, and what must hold under them.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantPlan {
    /// Its name; runs are named `SCENARIO:NAME`.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// `KEY=VALUE` overrides, as `--set` takes them.
    pub set: Vec<String>,
    /// Assertions replacing the scenario's (as written).
    pub asserts: Vec<String>,
}

/// What a scheduled fault does.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Cut the network between two sides.
    Partition {
        /// One side.
        a: Selection,
        /// The other.
        b: Selection,
        /// Only `a` → `b`.
        one_way: bool,
        /// Heal after this long (else a later `heal`).
        duration: Option<Duration>,
    },
    /// Remove every cut.
    Heal,
    /// Crash nodes, optionally restarting them later.
    Crash {
        /// Whom.
        nodes: Selection,
        /// Restart after this long.
        restart_after: Option<Duration>,
    },
    /// Restart crashed nodes.
    Restart {
        /// Whom.
        nodes: Selection,
    },
    /// Stall nodes.
    Pause {
        /// Whom.
        nodes: Selection,
        /// How long.
        duration: Duration,
    },
    /// Step wall clocks.
    ClockJump {
        /// Whom.
        nodes: Selection,
        /// By how much.
        by_ns: i64,
    },
    /// NTP-like correction.
    ClockCorrect {
        /// Whom.
        nodes: Selection,
    },
    /// Raise loss on every link for a while.
    Loss {
        /// Loss probability.
        probability: f64,
        /// How long.
        duration: Duration,
    },
    /// Change every link's latency for a while.
    Latency {
        /// The new latency.
        latency: Latency,
        /// The new jitter.
        jitter: Duration,
        /// How long.
        duration: Duration,
    },
}

/// A fault at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    /// When, from the start.
    pub at: Duration,
    /// What.
    pub kind: FaultKind,
}

/// Ranges from which swarm mode draws a fault mix per seed.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SwarmPlan {
    /// Faults start inside this window.
    pub window: (Duration, Duration),
    /// How many crashes (inclusive range).
    pub crashes: (u32, u32),
    /// Restart delay range.
    pub restart_after: (Duration, Duration),
    /// How many partitions.
    pub partitions: (u32, u32),
    /// Partition length range.
    pub partition_duration: (Duration, Duration),
    /// How many pauses.
    pub pauses: (u32, u32),
    /// Pause length range.
    pub pause_duration: (Duration, Duration),
    /// How many clock jumps.
    pub clock_jumps: (u32, u32),
    /// Largest jump either way.
    pub clock_jump_max: Duration,
    /// How many loss bursts.
    pub loss_bursts: (u32, u32),
    /// Loss probability range.
    pub loss: (f64, f64),
    /// Loss burst length range.
    pub loss_duration: (Duration, Duration),
    /// How many validators the swarm gives an adversary (consensus only; with the scripted
    /// `consensus.byzantine`, never more than f).
    pub adversaries: (u32, u32),
    /// The behaviours adversaries are drawn from ([`BEHAVIOURS`] by default).
    pub behaviours: Vec<String>,
}

/// The adversary behaviours a swarm draws from unless `swarm.behaviours` says otherwise; the
/// argument of `delay`, `clock-lie` and `impersonate` is drawn too. [`TWINS`] is drawn only when
/// listed: it takes a client's node.
pub const BEHAVIOURS: &[&str] = &[
    "equivocate",
    "forge",
    "withhold",
    "delay",
    "clock-lie",
    "mutate",
    "impersonate",
];

/// Twins in `swarm.behaviours`: the twin runs on the scenario's last node, which would run a
/// client, so it needs two client nodes (one remains a client) and no twins in
/// `consensus.byzantine`.
pub const TWINS: &str = "twins";

/// A validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name (the file stem unless given).
    pub name: String,
    /// The file it came from.
    pub path: String,
    /// What it reproduces.
    pub description: String,
    /// The seed used when none is given.
    pub default_seed: u64,
    /// Simulated run length.
    pub duration: Duration,
    /// Per-node setup, one per node.
    pub nodes: Vec<NodePlan>,
    /// Clock ranges.
    pub clock: ClockPlan,
    /// Every link's model.
    pub link: LinkModel,
    /// Disk faults of every node.
    pub storage: StorageFaults,
    /// `storage.until`: when the disks stop injecting faults (never, if `None`).
    pub storage_until: Option<Duration>,
    /// `workload.kind`: the entry of [`crate::workload::WORKLOADS`] that runs (see
    /// [`Scenario::workload`]).
    pub kind: &'static str,
    /// The membership workload (for other workloads only `start_spread` and `settle` apply).
    pub workload: MembershipPlan,
    /// The TrustChain workload, when `workload.kind = "trustchain"`.
    pub trustchain: Option<TrustChainPlan>,
    /// The consensus workload, when `workload.kind = "consensus"`.
    pub consensus: Option<ConsensusPlan>,
    /// The registry API workload, when `workload.kind = "registry-api"`.
    pub api: Option<ApiPlan>,
    /// Membership over STOQ instead of bare UDP, when a `[stoq]` table is present.
    pub stoq: Option<StoqPlan>,
    /// Variants (`[[variant]]`), each run as its own scenario by the suite.
    pub variants: Vec<VariantPlan>,
    /// The variant this scenario was loaded as, if any.
    pub variant: Option<String>,
    /// Scheduled faults, in time order.
    pub faults: Vec<FaultPlan>,
    /// Swarm ranges, if swarm mode is on.
    pub swarm: Option<SwarmPlan>,
    /// What must hold.
    pub asserts: Vec<Assertion>,
    /// The TOML it was validated from (overrides applied): with the seed and the commit, all a
    /// run depends on, so the run log records it.
    pub source: String,
    /// The `--set` overrides applied to the file, as given.
    pub overrides: Vec<String>,
}

impl Scenario {
    /// The workload that runs: the one named by `workload.kind`.
    pub fn workload(&self) -> &'static dyn Workload {
        workload::by_kind(self.kind).unwrap_or_else(|| panic!("workload kind {:?} is not registered", self.kind))
    }

    /// Faults crash, restart and pause only nodes `0..faultable_nodes()`, and `random k`
    /// selections and swarm crashes and pauses draw from them: the validators under the
    /// consensus workload (its clients keep no state across restarts, and a restarted client
    /// would reuse transaction ids), every node otherwise.
    pub fn faultable_nodes(&self) -> u32 {
        match (&self.consensus, &self.api) {
            (Some(plan), _) => plan.validators,
            // The API node; its clients hold their wallets' nonces in memory.
            (None, Some(_)) => 1,
            (None, None) => self.nodes.len() as u32,
        }
    }
}

/// The file's name as shown in errors, and its text.
fn read_source(path: &Path) -> Result<(String, String), ScenarioError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        path: display.clone(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    Ok((display, text))
}

/// Reads and validates the scenario at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let (display, text) = read_source(path)?;
    parse(&display, &text)
}

/// Reads the scenario at `path`, as its variant `variant` if given (its `set` overrides applied
/// and its assertions in place of the scenario's), with `overrides` (`KEY=VALUE`, dotted keys
/// into the file, e.g. `workload.latency_tolerance=300ms`) applied last, before validation. A
/// value that is not valid TOML is taken as a string, so `300ms` needs no quotes. A variant
/// run is named `NAME:VARIANT` and has no variants of its own.
pub fn load_variant(path: &Path, variant: Option<&str>, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    if overrides.is_empty() && variant.is_none() {
        return load(path);
    }
    let (display, text) = read_source(path)?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| {
        let ctx = Ctx {
            path: &display,
            text: &text,
        };
        ScenarioError {
            path: display.clone(),
            line: e.span().map_or(1, |s| ctx.line(s.start)),
            message: toml_message(&e, &text),
        }
    })?;
    if let Some(name) = variant {
        // Validate the file as written first, so a broken variant is reported at its line.
        let base = parse(&display, &text)?;
        let v = base
            .variants
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| ScenarioError {
                path: display.clone(),
                line: 0,
                message: format!(
                    "no variant {name:?} (the file has: {})",
                    base.variants
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        table.remove("variant");
        for o in &v.set {
            apply_override(&mut table, o).map_err(|message| ScenarioError {
                path: format!("{display} variant {name}: {o}"),
                line: 0,
                message,
            })?;
        }
        if !v.asserts.is_empty() {
            table.insert(
                "assert".into(),
                toml::Value::Array(v.asserts.iter().cloned().map(toml::Value::String).collect()),
            );
        }
        let full = format!("{}:{name}", base.name);
        table.insert("name".into(), toml::Value::String(full));
        if !v.description.is_empty() {
            table.insert("description".into(), toml::Value::String(v.description.clone()));
        }
    }
    for o in overrides {
        apply_override(&mut table, o).map_err(|message| ScenarioError {
            path: format!("--set {o}"),
            line: 0,
            message,
        })?;
    }
    let merged = toml::to_string(&table).map_err(|e| ScenarioError {
        path: display.clone(),
        line: 0,
        message: format!("cannot apply overrides: {e}"),
    })?;
    let label = match variant {
        Some(v) => format!(
            "{display} (variant {v}{})",
            if overrides.is_empty() { "" } else { ", with --set" }
        ),
        None => format!("{display} (with --set)"),
    };
    let mut scenario = parse(&label, &merged)?;
    scenario.path = display;
    scenario.overrides = overrides.to_vec();
    scenario.variant = variant.map(str::to_string);
    Ok(scenario)
}

fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), String> {
    let (key, value) = assignment
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE, e.g. workload.probe_interval=200ms".to_string())?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, path) = parts.split_last().ok_or("empty key")?;
    let mut current = table;
    for part in path {
        current = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is not a table"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// Validates scenario `text` read from `path`.
pub fn parse(path: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let ctx = Ctx { path, text };
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| ctx.line(s.start));
        ScenarioError {
            path: path.to_string(),
            line,
            message: toml_message(&e, text),
        }
    })?;
    ctx.validate(raw)
}

/// What a TOML syntax error says. Some carry no message of their own (a control character in a
/// comment, found by the scenario_parser fuzz target); the character at the span is then named.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    match e.message().trim() {
        "" => match e
            .span()
            .and_then(|s| text.get(s.start..).and_then(|t| t.chars().next()))
        {
            Some(c) => format!("invalid TOML: unexpected character {c:?}"),
            None => "invalid TOML".to_string(),
        },
        m => m.to_string(),
    }
}

struct Ctx<'a> {
    path: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }

    fn err(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            path: self.path.to_string(),
            line: self.line(span.start),
            message: message.into(),
        }
    }

    fn duration(&self, s: &Spanned<String>, what: &str) -> Result<Duration, ScenarioError> {
        parse_duration(s.get_ref()).map_err(|m| self.err(s.span(), format!("{what}: {m}")))
    }

    fn opt_duration(&self, s: &Option<Spanned<String>>, what: &str) -> Result<Option<Duration>, ScenarioError> {
        s.as_ref().map(|s| self.duration(s, what)).transpose()
    }

    fn probability(&self, p: &Option<Spanned<f64>>, what: &str) -> Result<f64, ScenarioError> {
        match p {
            None => Ok(0.0),
            Some(p) if (0.0..=1.0).contains(p.get_ref()) => Ok(*p.get_ref()),
            Some(p) => Err(self.err(
                p.span(),
                format!("{what} must be a probability in [0, 1], not {}", p.get_ref()),
            )),
        }
    }

    fn family(&self, s: &Spanned<String>) -> Result<Family, ScenarioError> {
        match s.get_ref().as_str() {
            "ipv6" => Ok(Family::Ipv6),
            "ipv4" => Ok(Family::Ipv4),
            "dual" => Ok(Family::Dual),
            other => Err(self.err(
                s.span(),
                format!("unknown address family {other:?} (use \"ipv6\", \"ipv4\" or \"dual\")"),
            )),
        }
    }

    fn selection(&self, s: &Spanned<RawSelection>, count: u32) -> Result<Selection, ScenarioError> {
        let result = match s.get_ref() {
            RawSelection::List(list) => {
                let sel = Selection::List(list.clone());
                sel.check(count).map(|()| sel)
            }
            RawSelection::Text(text) => Selection::parse(text, count),
        };
        result.map_err(|m| self.err(s.span(), m))
    }

    fn validate(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let duration = self.duration(&raw.duration, "duration")?;
        if duration.is_zero() {
            return Err(self.err(raw.duration.span(), "duration must be greater than zero"));
        }
        let count = *raw.nodes.count.get_ref();
        if !(1..=crate::limits::NODES_MAX).contains(&count) {
            return Err(self.err(
                raw.nodes.count.span(),
                format!("node count {count} is outside 1..={}", crate::limits::NODES_MAX),
            ));
        }
        let family = raw
            .nodes
            .family
            .as_ref()
            .map(|f| self.family(f))
            .transpose()?
            .unwrap_or(Family::Ipv6);
        let mut nodes = vec![
            NodePlan {
                family,
                clock_offset_ns: None,
                drift_ppm: None,
                start: None,
            };
            count as usize
        ];
        for group in &raw.nodes.groups {
            let g = group.get_ref();
            let selection = self.selection(&g.nodes, count)?;
            if let Selection::Random(_) = selection {
                return Err(self.err(
                    g.nodes.span(),
                    "a node group must name its nodes, not draw them at random",
                ));
            }
            let family = g.family.as_ref().map(|f| self.family(f)).transpose()?;
            let offset = g
                .clock_offset
                .as_ref()
                .map(|o| parse_signed_nanos(o.get_ref()).map_err(|m| self.err(o.span(), format!("clock_offset: {m}"))))
                .transpose()?;
            let start = self.opt_duration(&g.start, "nodes.group.start")?;
            for i in fixed_indices(&selection, count) {
                let plan = &mut nodes[i as usize];
                if let Some(f) = family {
                    plan.family = f;
                }
                if offset.is_some() {
                    plan.clock_offset_ns = offset;
                }
                if let Some(d) = &g.drift_ppm {
                    plan.drift_ppm = Some(*d.get_ref());
                }
                if start.is_some() {
                    plan.start = start;
                }
            }
        }
        let clock = ClockPlan {
            offset_max: self
                .opt_duration(&raw.clock.offset_max, "clock.offset_max")?
                .unwrap_or_default(),
            drift_ppm_max: match &raw.clock.drift_ppm_max {
                Some(d) if !(0.0..=1000.0).contains(d.get_ref()) => {
                    return Err(self.err(d.span(), "clock.drift_ppm_max must be in [0, 1000]"));
                }
                Some(d) => *d.get_ref(),
                None => 0.0,
            },
            ntp_interval: self.opt_duration(&raw.clock.ntp_interval, "clock.ntp_interval")?,
        };
        if clock.ntp_interval.is_some_and(|i| i.is_zero()) {
            return Err(self.err(
                raw.clock.ntp_interval.as_ref().expect("set").span(),
                "clock.ntp_interval must be greater than zero",
            ));
        }
        let link = self.link(&raw.network)?;
        let storage = StorageFaults {
            io_error: self.probability(&raw.storage.io_error, "storage.io_error")?,
            torn_writes: raw.storage.torn_writes.unwrap_or(false),
            crash_at_io: self.probability(&raw.storage.crash_at_io, "storage.crash_at_io")?,
            crash_restart_after: self
                .opt_duration(&raw.storage.crash_restart_after, "storage.crash_restart_after")?
                .unwrap_or(StorageFaults::default().crash_restart_after),
            read_bitflip: self.probability(&raw.storage.read_bitflip, "storage.read_bitflip")?,
        };
        let storage_until = self.opt_duration(&raw.storage.until, "storage.until")?;
        if let (Some(until), Some(raw_until)) = (storage_until, raw.storage.until.as_ref()) {
            if until.is_zero() || until >= duration {
                return Err(self.err(
                    raw_until.span(),
                    format!(
                        "storage.until must be after the start and before the run ends ({} s)",
                        duration.as_secs_f64()
                    ),
                ));
            }
        }
        let kind = self.workload_kind(&raw.workload.get_ref().kind)?;
        let workload = self.workload(&raw.workload, count)?;
        // The workloads' own tables are parsed here, beside the rest of the file, so their
        // errors name a line like every other.
        let trustchain = match (kind, &raw.trustchain) {
            ("trustchain", t) => Some(self.trustchain(t.as_ref(), count)?),
            (_, Some(t)) => {
                return Err(self.err(t.span(), "a [trustchain] section needs workload.kind = \"trustchain\""));
            }
            (_, None) => None,
        };
        let consensus = match (kind, &raw.consensus) {
            ("consensus" | "erc8004", t) => Some(self.consensus(t.as_ref(), &raw.nodes.count)?),
            (_, Some(t)) => {
                return Err(self.err(
                    t.span(),
                    "a [consensus] section needs workload.kind = \"consensus\" or \"erc8004\"",
                ));
            }
            (_, None) => None,
        };
        let api = match (kind, &raw.api) {
            ("registry-api", t) => Some(self.api(t.as_ref(), &raw.nodes.count, duration)?),
            (_, Some(t)) => {
                return Err(self.err(t.span(), "an [api] section needs workload.kind = \"registry-api\""));
            }
            (_, None) => None,
        };
        if let (Some(plan), "erc8004") = (&consensus, kind) {
            if !plan.byzantine.is_empty() {
                return Err(self.err(
                    raw.workload.span(),
                    "the erc8004 workload runs no Byzantine validators: leave consensus.byzantine out",
                ));
            }
        }
        if let Some(list) = raw
            .workload
            .get_ref()
            .slanderers
            .as_ref()
            .filter(|_| !workload.slanderers.is_empty())
        {
            if kind != "membership" || raw.stoq.is_some() {
                return Err(self.err(
                    list.span(),
                    "workload.slanderers needs workload.kind = \"membership\" over bare datagrams (no [stoq]): \
                     the slander is written into membership's datagrams on the wire",
                ));
            }
        }
        let stoq = match &raw.stoq {
            None => None,
            Some(t) if consensus.is_some() => {
                return Err(self.err(
                    t.span(),
                    "a [stoq] section carries membership, which the consensus workload does not run: \
                     its replicas and clients speak over bare datagrams",
                ));
            }
            Some(t) if trustchain.as_ref().is_some_and(|plan| !plan.membership) => {
                return Err(self.err(
                    t.span(),
                    "a [stoq] section carries membership: with workload.kind = \"trustchain\" it needs \
                     trustchain.membership = true (TrustChain itself travels beside QUIC, on its own channel)",
                ));
            }
            Some(t) => {
                let r = t.get_ref();
                let defaults = stoq::StoqConfig::default();
                let plan = StoqPlan {
                    idle_timeout: self
                        .opt_duration(&r.idle_timeout, "stoq.idle_timeout")?
                        .unwrap_or(defaults.idle_timeout),
                    keep_alive: self
                        .opt_duration(&r.keep_alive, "stoq.keep_alive")?
                        .unwrap_or(defaults.keep_alive),
                    initial_rtt: self
                        .opt_duration(&r.initial_rtt, "stoq.initial_rtt")?
                        .unwrap_or(defaults.initial_rtt),
                };
                let config = stoq::StoqConfig {
                    idle_timeout: plan.idle_timeout,
                    keep_alive: plan.keep_alive,
                    initial_rtt: plan.initial_rtt,
                    ..defaults
                };
                if let Err(e) = config.validate() {
                    return Err(self.err(t.span(), format!("stoq: {e}")));
                }
                Some(plan)
            }
        };
        let mut variants: Vec<VariantPlan> = Vec::new();
        for v in &raw.variants {
            let r = v.get_ref();
            let name = r.name.get_ref().clone();
            let ok_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok_name {
                return Err(self.err(r.name.span(), "a variant name is letters, digits, '-' and '_'"));
            }
            if variants.iter().any(|x| x.name == name) {
                return Err(self.err(r.name.span(), format!("variant {name:?} is defined twice")));
            }
            for set in &r.set {
                if !set.get_ref().contains('=') {
                    return Err(self.err(set.span(), "a variant's `set` entries are KEY=VALUE, as for --set"));
                }
            }
            for a in &r.asserts {
                Assertion::parse(a.get_ref()).map_err(|m| self.err(a.span(), m))?;
            }
            variants.push(VariantPlan {
                name,
                description: r.description.clone().unwrap_or_default(),
                set: r.set.iter().map(|s| s.get_ref().clone()).collect(),
                asserts: r.asserts.iter().map(|s| s.get_ref().clone()).collect(),
            });
        }
        let mut faults = Vec::new();
        for fault in &raw.faults {
            let plan = self.fault(fault, count, duration)?;
            if let Some(c) = &consensus {
                spares_clients(&plan.kind, c.validators, count).map_err(|m| self.err(fault.span(), m))?;
            }
            if api.is_some() && spares_clients(&plan.kind, 1, count).is_err() {
                return Err(self.err(
                    fault.span(),
                    "under the registry-api workload faults may crash, restart or pause node 0 (the API node) \
                     only: its clients hold their wallets' nonces in memory",
                ));
            }
            faults.push(plan);
        }
        faults.sort_by_key(|f| f.at);
        let swarm = raw.swarm.as_ref().map(|s| self.swarm(s)).transpose()?;
        if let (Some(plan), Some(raw_swarm)) = (&swarm, &raw.swarm) {
            if plan.adversaries.1 > 0 {
                let span = raw_swarm
                    .get_ref()
                    .adversaries
                    .as_ref()
                    .map_or(raw_swarm.span(), Spanned::span);
                let Some(c) = consensus.as_ref().filter(|_| kind == "consensus") else {
                    return Err(self.err(
                        span,
                        "swarm.adversaries gives validators an adversary: it needs workload.kind = \"consensus\"",
                    ));
                };
                let f = (c.validators.saturating_sub(1) / 3) as usize;
                if c.byzantine.len() + plan.adversaries.1 as usize > f {
                    return Err(self.err(
                        span,
                        format!(
                            "swarm.adversaries: up to {} drawn beside {} in consensus.byzantine, but {} validators \
                             tolerate at most f = {f}",
                            plan.adversaries.1,
                            c.byzantine.len(),
                            c.validators
                        ),
                    ));
                }
                if plan.behaviours.iter().any(|b| b == TWINS) {
                    let span = raw_swarm
                        .get_ref()
                        .behaviours
                        .as_ref()
                        .map_or(raw_swarm.span(), Spanned::span);
                    let clients = count.saturating_sub(c.validators);
                    if clients < 2 {
                        return Err(self.err(
                            span,
                            format!(
                                "swarm.behaviours: twins run the twin on the last node, which would run a client, \
                                 and one client must remain: nodes.count is {count}, so {clients} client node(s)"
                            ),
                        ));
                    }
                    if c.byzantine
                        .iter()
                        .any(|(_, b)| matches!(b, hypermesh::testing::adversary::Behaviour::Twins(_)))
                    {
                        return Err(self.err(
                            span,
                            "swarm.behaviours: twins are already in consensus.byzantine (one pair per scenario)",
                        ));
                    }
                }
            }
        }
        let mut asserts = Vec::new();
        for a in &raw.asserts {
            let assertion = Assertion::parse(a.get_ref()).map_err(|m| self.err(a.span(), m))?;
            asserts.push(assertion);
        }
        let name = raw.name.clone().unwrap_or_else(|| {
            Path::new(self.path)
                .file_stem()
                .map_or_else(|| self.path.to_string(), |s| s.to_string_lossy().into_owned())
        });
        Ok(Scenario {
            name,
            path: self.path.to_string(),
            description: raw.description.clone().unwrap_or_default(),
            default_seed: raw.seed.unwrap_or(1),
            duration,
            nodes,
            clock,
            link,
            storage,
            storage_until,
            kind,
            workload,
            trustchain,
            consensus,
            api,
            stoq,
            variants,
            variant: None,
            faults,
            swarm,
            asserts,
            source: self.text.to_string(),
            overrides: Vec::new(),
        })
    }

    fn link(&self, n: &raw::RawNetwork) -> Result<LinkModel, ScenarioError> {
        let mut link = LinkModel::default();
        if let Some(l) = &n.latency {
            link.latency = self.latency(l)?;
        }
        if let Some(j) = self.opt_duration(&n.jitter, "network.jitter")? {
            link.jitter = j;
        }
        link.loss = self.probability(&n.loss, "network.loss")?;
        link.duplicate = self.probability(&n.duplicate, "network.duplicate")?;
        link.reorder = self.probability(&n.reorder, "network.reorder")?;
        link.corrupt = self.probability(&n.corrupt, "network.corrupt")?;
        if let Some(w) = self.opt_duration(&n.reorder_window, "network.reorder_window")? {
            link.reorder_window = w;
        }
        // A setting that would do nothing is refused: reordered datagrams are held back by up to
        // the window, so a zero window would count reorders and delay nothing.
        if let Some(r) = &n.reorder {
            if link.reorder > 0.0 && link.reorder_window.is_zero() {
                return Err(self.err(
                    r.span(),
                    "network.reorder needs network.reorder_window (how far a reordered datagram is held \
                     back, e.g. \"20ms\"): without it nothing is reordered",
                ));
            }
        }
        if let Some(bw) = &n.bandwidth_mbit {
            if !(*bw.get_ref() > 0.0 && bw.get_ref().is_finite()) {
                return Err(self.err(bw.span(), "network.bandwidth_mbit must be a positive number"));
            }
            link.bandwidth_bytes_per_s = Some((*bw.get_ref() * 1e6 / 8.0) as u64);
        }
        Ok(link)
    }

    fn latency(&self, l: &Spanned<RawLatency>) -> Result<Latency, ScenarioError> {
        let span = l.span();
        let d = |field: &Option<String>, name: &str| -> Result<Duration, ScenarioError> {
            let text = field
                .as_ref()
                .ok_or_else(|| self.err(span.clone(), format!("latency needs `{name}`")))?;
            parse_duration(text).map_err(|m| self.err(span.clone(), format!("latency {name}: {m}")))
        };
        match l.get_ref() {
            RawLatency::Constant(text) => parse_duration(text)
                .map(Latency::Constant)
                .map_err(|m| self.err(span.clone(), format!("latency: {m}"))),
            RawLatency::Table(t) => match t.kind.as_str() {
                "constant" => Ok(Latency::Constant(d(&t.value, "value")?)),
                "uniform" => Ok(Latency::Uniform {
                    min: d(&t.min, "min")?,
                    max: d(&t.max, "max")?,
                }),
                "normal" => Ok(Latency::Normal {
                    mean: d(&t.mean, "mean")?,
                    stddev: d(&t.stddev, "stddev")?,
                }),
                "pareto" => {
                    let shape = t
                        .shape
                        .ok_or_else(|| self.err(span.clone(), "pareto latency needs `shape`"))?;
                    if !(shape > 0.0 && shape.is_finite()) {
                        return Err(self.err(span.clone(), "pareto shape must be a positive number"));
                    }
                    Ok(Latency::Pareto {
                        min: d(&t.min, "min")?,
                        shape,
                    })
                }
                other => Err(self.err(
                    span.clone(),
                    format!("unknown latency kind {other:?} (use \"constant\", \"uniform\", \"normal\" or \"pareto\")"),
                )),
            },
        }
    }

    /// `workload.kind`, one of [`WORKLOADS`].
    fn workload_kind(&self, kind: &Spanned<String>) -> Result<&'static str, ScenarioError> {
        match workload::by_kind(kind.get_ref()) {
            Some(w) => Ok(w.kind()),
            None => Err(self.err(
                kind.span(),
                format!(
                    "unknown workload kind {:?} (known: {})",
                    kind.get_ref(),
                    WORKLOADS
                        .iter()
                        .map(|w| format!("{:?}", w.kind()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    fn workload(&self, w: &Spanned<RawWorkload>, count: u32) -> Result<MembershipPlan, ScenarioError> {
        let raw = w.get_ref();
        let seeds = match &raw.seeds {
            Some(s) if *s.get_ref() == 0 || *s.get_ref() > count => {
                return Err(self.err(s.span(), format!("workload.seeds must be in 1..={count}")));
            }
            Some(s) => *s.get_ref(),
            None => count.min(3),
        };
        let nonzero = |v: &Option<Spanned<u32>>, name: &str| -> Result<Option<u32>, ScenarioError> {
            match v {
                Some(v) if *v.get_ref() == 0 => Err(self.err(v.span(), format!("workload.{name} must be at least 1"))),
                Some(v) => Ok(Some(*v.get_ref())),
                None => Ok(None),
            }
        };
        let positive = |v: &Option<Spanned<String>>, name: &str| -> Result<Option<Duration>, ScenarioError> {
            let d = self.opt_duration(v, &format!("workload.{name}"))?;
            if d.is_some_and(|d| d.is_zero()) {
                return Err(self.err(
                    v.as_ref().expect("set").span(),
                    format!("workload.{name} must be greater than zero"),
                ));
            }
            Ok(d)
        };
        Ok(MembershipPlan {
            seeds,
            start_spread: self
                .opt_duration(&raw.start_spread, "workload.start_spread")?
                .unwrap_or_default(),
            probe_interval: positive(&raw.probe_interval, "probe_interval")?,
            latency_tolerance: positive(&raw.latency_tolerance, "latency_tolerance")?,
            probe_margin: self.opt_duration(&raw.probe_margin, "workload.probe_margin")?,
            indirect_after: self.opt_duration(&raw.indirect_after, "workload.indirect_after")?,
            indirect_probes: raw.indirect_probes.as_ref().map(|v| *v.get_ref()),
            confirmation_required: nonzero(&raw.confirmation_required, "confirmation_required")?,
            suspicion_mult: nonzero(&raw.suspicion_mult, "suspicion_mult")?,
            clock_skew_max: self.opt_duration(&raw.clock_skew_max, "workload.clock_skew_max")?,
            gossip_interval: positive(&raw.gossip_interval, "gossip_interval")?,
            gossip_fanout: nonzero(&raw.gossip_fanout, "gossip_fanout")?,
            push_pull_interval: positive(&raw.push_pull_interval, "push_pull_interval")?,
            settle: self
                .opt_duration(&raw.settle, "workload.settle")?
                .unwrap_or(Duration::from_secs(10)),
            slanderers: match &raw.slanderers {
                None => Vec::new(),
                Some(list) => {
                    let mut nodes = list.get_ref().clone();
                    nodes.sort_unstable();
                    nodes.dedup();
                    if nodes.len() != list.get_ref().len() {
                        return Err(self.err(list.span(), "workload.slanderers lists a node twice"));
                    }
                    if let Some(n) = nodes.iter().find(|n| **n >= count) {
                        return Err(self.err(
                            list.span(),
                            format!("workload.slanderers: node {n} does not exist (nodes are 0..{count})"),
                        ));
                    }
                    if nodes.len() * 2 >= count as usize {
                        return Err(self.err(
                            list.span(),
                            format!(
                                "workload.slanderers: {} of {count} nodes; slanderers must be a minority",
                                nodes.len()
                            ),
                        ));
                    }
                    nodes
                }
            },
        })
    }

    fn trustchain(&self, t: Option<&Spanned<raw::RawTrustChain>>, count: u32) -> Result<TrustChainPlan, ScenarioError> {
        let default_raw = raw::RawTrustChain::default();
        let raw = t.map_or(&default_raw, |t| t.get_ref());
        let mut plan = TrustChainPlan::default();
        let positive = |v: &Option<Spanned<String>>, name: &str| -> Result<Option<Duration>, ScenarioError> {
            let d = self.opt_duration(v, &format!("trustchain.{name}"))?;
            if d.is_some_and(|d| d.is_zero()) {
                return Err(self.err(
                    v.as_ref().expect("set").span(),
                    format!("trustchain.{name} must be greater than zero"),
                ));
            }
            Ok(d)
        };
        if let Some(ca) = &raw.ca {
            if *ca.get_ref() >= count {
                return Err(self.err(ca.span(), format!("trustchain.ca must be a node index below {count}")));
            }
            plan.ca = *ca.get_ref();
        }
        macro_rules! dur {
            ($field:ident, positive) => {
                if let Some(d) = positive(&raw.$field, stringify!($field))? {
                    plan.$field = d;
                }
            };
            ($field:ident) => {
                if let Some(d) = self.opt_duration(&raw.$field, concat!("trustchain.", stringify!($field)))? {
                    plan.$field = d;
                }
            };
        }
        dur!(handshake_interval, positive);
        dur!(handshake_timeout, positive);
        dur!(bundle_refresh, positive);
        dur!(leaf_lifetime, positive);
        dur!(rollout_interval, positive);
        dur!(backdate);
        dur!(overlap);
        plan.rotate_every = positive(&raw.rotate_every, "rotate_every")?;
        if let Some(f) = &raw.renew_fraction {
            if !(0.1..=0.95).contains(f.get_ref()) {
                return Err(self.err(f.span(), "trustchain.renew_fraction must be in [0.1, 0.95]"));
            }
            plan.renew_fraction = *f.get_ref();
        }
        if let Some(v) = raw.verify_before_switch {
            plan.verify_before_switch = v;
        }
        if let Some(v) = raw.push_bundles {
            plan.push_bundles = v;
        }
        if let Some(w) = &raw.rollout_waves {
            plan.rollout_waves = *w.get_ref();
        }
        if let Some(v) = raw.membership {
            plan.membership = v;
        }
        if let Some(q) = &raw.quorum_before_issuing {
            plan.quorum_before_issuing = *q.get_ref();
        }
        for r in &raw.revoke {
            let r = r.get_ref();
            if *r.node.get_ref() >= count {
                return Err(self.err(r.node.span(), format!("trustchain.revoke: node must be below {count}")));
            }
            plan.revocations
                .push((self.duration(&r.at, "trustchain.revoke.at")?, *r.node.get_ref()));
        }
        plan.revocations.sort_by_key(|(at, _)| *at);
        Ok(plan)
    }

    /// `[consensus]` (or its defaults, when the table is absent) for a scenario of `count` nodes.
    fn consensus(
        &self,
        t: Option<&Spanned<raw::RawConsensus>>,
        count: &Spanned<u32>,
    ) -> Result<ConsensusPlan, ScenarioError> {
        let nodes = *count.get_ref();
        if nodes < 2 {
            return Err(self.err(
                count.span(),
                "the consensus workload needs at least 2 nodes: validators, then at least one client",
            ));
        }
        let default_raw = raw::RawConsensus::default();
        let raw = t.map_or(&default_raw, |t| t.get_ref());
        let mut plan = ConsensusPlan::with_defaults(nodes);
        let most = (nodes - 1).min(hypermesh::consensus::VALIDATORS_MAX as u32);
        if let Some(v) = &raw.validators {
            if !(1..=most).contains(v.get_ref()) {
                return Err(self.err(
                    v.span(),
                    format!(
                        "consensus.validators must be in 1..={most} (nodes.count is {nodes}: at least one node runs a \
                         client, and a set has at most {} validators)",
                        hypermesh::consensus::VALIDATORS_MAX
                    ),
                ));
            }
            plan.validators = *v.get_ref();
        } else if plan.validators > most {
            return Err(self.err(
                count.span(),
                format!(
                    "the consensus workload's default of nodes.count - 1 validators exceeds the set's {}: \
                     set consensus.validators",
                    hypermesh::consensus::VALIDATORS_MAX
                ),
            ));
        }
        if let Some(i) = self.opt_duration(&raw.client_interval, "consensus.client_interval")? {
            if i.is_zero() {
                let span = raw.client_interval.as_ref().expect("set").span();
                return Err(self.err(span, "consensus.client_interval must be greater than zero"));
            }
            plan.client_interval = i;
        }
        plan.client_stop = self.opt_duration(&raw.client_stop, "consensus.client_stop")?;
        if let Some(r) = &raw.linearizable_reads {
            plan.linearizable_reads = *r.get_ref();
        }
        if let Some(b) = &raw.batch_size_max {
            plan.batch_size_max = *b.get_ref();
        }
        if let Some(d) = self.opt_duration(&raw.batch_delay_max, "consensus.batch_delay_max")? {
            plan.batch_delay_max = d;
        }
        if let Some(d) = self.opt_duration(&raw.view_timeout, "consensus.view_timeout")? {
            plan.view_timeout = d;
        }
        if let Some(v) = raw.votes_to_all {
            plan.votes_to_all = v;
        }
        if let Some(s) = raw.skip_suspected_leaders {
            plan.skip_suspected_leaders = s;
        }
        if let Some(c) = &raw.checkpoint_interval {
            plan.checkpoint_interval = *c.get_ref();
        }
        if let Some(r) = &raw.log_retain_heights {
            plan.log_retain_heights = *r.get_ref();
        }
        if let Some(d) = self.opt_duration(&raw.latency_tolerance, "consensus.latency_tolerance")? {
            plan.latency_tolerance = d;
        }
        if let Some(d) = self.opt_duration(&raw.clock_skew_max, "consensus.clock_skew_max")? {
            plan.clock_skew_max = d;
        }
        if let Some(c) = &raw.confirmation_required {
            plan.confirmation_required = *c.get_ref();
        }
        let f = (plan.validators.saturating_sub(1) / 3) as usize;
        for entry in &raw.byzantine {
            let (node, behaviour) = parse_byzantine(entry.get_ref())
                .map_err(|m| self.err(entry.span(), format!("consensus.byzantine: {m}")))?;
            if node >= plan.validators {
                return Err(self.err(
                    entry.span(),
                    format!(
                        "consensus.byzantine: node {node} is not a validator (validators are 0..{})",
                        plan.validators
                    ),
                ));
            }
            if let hypermesh::testing::adversary::Behaviour::Impersonate(victim) = behaviour {
                if u32::from(victim) >= plan.validators || u32::from(victim) == node {
                    return Err(self.err(
                        entry.span(),
                        format!(
                            "consensus.byzantine: node {node} can impersonate only another validator, not {victim}"
                        ),
                    ));
                }
            }
            if let hypermesh::testing::adversary::Behaviour::Twins(twin) = behaviour {
                // The twin takes a node that would run a client; one client must remain.
                let clients = nodes - plan.validators;
                if twin < plan.validators || twin >= nodes {
                    return Err(self.err(
                        entry.span(),
                        format!(
                            "consensus.byzantine: the twin of {node} needs a node beyond the validators \
                             ({}..{nodes}), not {twin}",
                            plan.validators
                        ),
                    ));
                }
                if plan
                    .byzantine
                    .iter()
                    .any(|(_, b)| matches!(b, hypermesh::testing::adversary::Behaviour::Twins(_)))
                {
                    return Err(self.err(entry.span(), "consensus.byzantine: at most one pair of twins"));
                }
                if clients < 2 {
                    return Err(self.err(
                        entry.span(),
                        format!(
                            "consensus.byzantine: node {twin} would run the twin, leaving no node for a client \
                             (nodes.count is {nodes})"
                        ),
                    ));
                }
            }
            if plan.byzantine.iter().any(|(n, _)| *n == node) {
                return Err(self.err(
                    entry.span(),
                    format!("consensus.byzantine: node {node} is listed twice"),
                ));
            }
            plan.byzantine.push((node, behaviour));
        }
        if plan.byzantine.len() > f {
            let span = raw.byzantine.last().map(Spanned::span).expect("entries");
            return Err(self.err(
                span,
                format!(
                    "consensus.byzantine: {} adversaries, but {} validators tolerate at most f = {f}",
                    plan.byzantine.len(),
                    plan.validators
                ),
            ));
        }
        if let Err(e) = plan.config().validate() {
            // At the setting's own line when the file sets it, else at the table's.
            let span = match e.setting {
                "batch_size_max" => raw.batch_size_max.as_ref().map(Spanned::span),
                "batch_delay_max" => raw.batch_delay_max.as_ref().map(Spanned::span),
                "view_timeout" => raw.view_timeout.as_ref().map(Spanned::span),
                "checkpoint_interval" => raw.checkpoint_interval.as_ref().map(Spanned::span),
                "log_retain_heights" => raw.log_retain_heights.as_ref().map(Spanned::span),
                "latency_tolerance" => raw.latency_tolerance.as_ref().map(Spanned::span),
                "confirmation_required" => raw.confirmation_required.as_ref().map(Spanned::span),
                _ => None,
            };
            let span = span.or_else(|| t.map(Spanned::span)).unwrap_or_else(|| count.span());
            return Err(self.err(span, format!("consensus: {e}")));
        }
        Ok(plan)
    }

    fn fault(&self, f: &Spanned<raw::RawFault>, count: u32, run: Duration) -> Result<FaultPlan, ScenarioError> {
        let raw = f.get_ref();
        let at = self.duration(&raw.at, "fault time")?;
        if at > run {
            return Err(self.err(
                raw.at.span(),
                format!("fault at {at:?} is after the end of the run ({run:?})"),
            ));
        }
        let kind_name = raw.kind.get_ref().as_str();
        let need_nodes = || -> Result<Selection, ScenarioError> {
            let n = raw
                .nodes
                .as_ref()
                .ok_or_else(|| self.err(f.span(), format!("fault `{kind_name}` needs `nodes`")))?;
            self.selection(n, count)
        };
        let need_duration = || -> Result<Duration, ScenarioError> {
            let d = raw
                .duration
                .as_ref()
                .ok_or_else(|| self.err(f.span(), format!("fault `{kind_name}` needs `duration`")))?;
            self.duration(d, "duration")
        };
        let kind = match kind_name {
            "partition" => {
                let sides = raw.sides.as_ref().ok_or_else(|| self.err(f.span(), "fault `partition` needs `sides = [A, B]`"))?;
                let [a, b] = sides.get_ref().as_slice() else {
                    return Err(self.err(sides.span(), "`sides` must list exactly two node selections"));
                };
                let a = self.selection(&Spanned::new(sides.span(), a.clone()), count)?;
                let b = self.selection(&Spanned::new(sides.span(), b.clone()), count)?;
                disjoint_sides(&a, &b, count).map_err(|m| self.err(sides.span(), m))?;
                FaultKind::Partition {
                    a,
                    b,
                    one_way: raw.one_way.unwrap_or(false),
                    duration: self.opt_duration(&raw.duration, "duration")?,
                }
            }
            "heal" => FaultKind::Heal,
            "crash" => FaultKind::Crash {
                nodes: need_nodes()?,
                restart_after: self.opt_duration(&raw.restart_after, "restart_after")?,
            },
            "restart" => FaultKind::Restart { nodes: need_nodes()? },
            "pause" => FaultKind::Pause { nodes: need_nodes()?, duration: need_duration()? },
            "clock_jump" => {
                let by = raw.by.as_ref().ok_or_else(|| self.err(f.span(), "fault `clock_jump` needs `by` (e.g. \"-5s\")"))?;
                let by_ns = parse_signed_nanos(by.get_ref()).map_err(|m| self.err(by.span(), format!("by: {m}")))?;
                FaultKind::ClockJump { nodes: need_nodes()?, by_ns }
            }
            "clock_correct" => FaultKind::ClockCorrect { nodes: need_nodes()? },
            "loss" => {
                let p = raw.probability.as_ref().ok_or_else(|| self.err(f.span(), "fault `loss` needs `probability`"))?;
                FaultKind::Loss { probability: self.probability(&Some(p.clone()), "probability")?, duration: need_duration()? }
            }
            "latency" => {
                let l = raw.latency.as_ref().ok_or_else(|| self.err(f.span(), "fault `latency` needs `latency`"))?;
                FaultKind::Latency {
                    latency: Latency::Constant(self.duration(l, "latency")?),
                    jitter: self.opt_duration(&raw.jitter, "jitter")?.unwrap_or_default(),
                    duration: need_duration()?,
                }
            }
            other => {
                return Err(self.err(
                    raw.kind.span(),
                    format!(
                        "unknown fault kind {other:?} (known: partition, heal, crash, restart, pause, clock_jump, clock_correct, loss, latency)"
                    ),
                ))
            }
        };
        Ok(FaultPlan { at, kind })
    }

    fn swarm(&self, s: &Spanned<raw::RawSwarm>) -> Result<SwarmPlan, ScenarioError> {
        let raw = s.get_ref();
        let pair = |v: &Spanned<[String; 2]>, name: &str| -> Result<(Duration, Duration), ScenarioError> {
            let [a, b] = v.get_ref();
            let a = parse_duration(a).map_err(|m| self.err(v.span(), format!("swarm.{name}: {m}")))?;
            let b = parse_duration(b).map_err(|m| self.err(v.span(), format!("swarm.{name}: {m}")))?;
            if a > b {
                return Err(self.err(v.span(), format!("swarm.{name}: the range is reversed")));
            }
            Ok((a, b))
        };
        let opt_pair = |v: &Option<Spanned<[String; 2]>>, name: &str, default: (Duration, Duration)| {
            v.as_ref().map_or(Ok(default), |v| pair(v, name))
        };
        let counts = |v: &Option<Spanned<[u32; 2]>>, name: &str| -> Result<(u32, u32), ScenarioError> {
            match v {
                None => Ok((0, 0)),
                Some(v) if v.get_ref()[0] > v.get_ref()[1] => {
                    Err(self.err(v.span(), format!("swarm.{name}: the range is reversed")))
                }
                Some(v) if v.get_ref()[1] > crate::limits::SWARM_FAULTS_MAX => Err(self.err(
                    v.span(),
                    format!(
                        "swarm.{name}: at most {} faults of a kind",
                        crate::limits::SWARM_FAULTS_MAX
                    ),
                )),
                Some(v) => Ok((v.get_ref()[0], v.get_ref()[1])),
            }
        };
        let second = Duration::from_secs(1);
        Ok(SwarmPlan {
            window: pair(&raw.window, "window")?,
            crashes: counts(&raw.crashes, "crashes")?,
            restart_after: opt_pair(&raw.restart_after, "restart_after", (second, 10 * second))?,
            partitions: counts(&raw.partitions, "partitions")?,
            partition_duration: opt_pair(&raw.partition_duration, "partition_duration", (second, 20 * second))?,
            pauses: counts(&raw.pauses, "pauses")?,
            pause_duration: opt_pair(&raw.pause_duration, "pause_duration", (second / 10, 3 * second))?,
            clock_jumps: counts(&raw.clock_jumps, "clock_jumps")?,
            clock_jump_max: self
                .opt_duration(&raw.clock_jump_max, "swarm.clock_jump_max")?
                .unwrap_or(Duration::from_secs(10)),
            loss_bursts: counts(&raw.loss_bursts, "loss_bursts")?,
            loss: match &raw.loss {
                Some(l)
                    if !(0.0..=1.0).contains(&l.get_ref()[0])
                        || !(0.0..=1.0).contains(&l.get_ref()[1])
                        || l.get_ref()[0] > l.get_ref()[1] =>
                {
                    return Err(self.err(l.span(), "swarm.loss must be an ordered pair of probabilities"));
                }
                Some(l) => (l.get_ref()[0], l.get_ref()[1]),
                None => (0.01, 0.1),
            },
            loss_duration: opt_pair(&raw.loss_duration, "loss_duration", (second, 10 * second))?,
            adversaries: counts(&raw.adversaries, "adversaries")?,
            behaviours: match &raw.behaviours {
                None => BEHAVIOURS.iter().map(|b| b.to_string()).collect(),
                Some(list) if list.get_ref().is_empty() => {
                    return Err(self.err(list.span(), "swarm.behaviours lists no behaviour to draw from"));
                }
                Some(list) => {
                    for name in list.get_ref() {
                        if !BEHAVIOURS.contains(&name.as_str()) && name != TWINS {
                            return Err(self.err(
                                list.span(),
                                format!(
                                    "swarm.behaviours: unknown behaviour {name:?}; known: {}, {TWINS}",
                                    BEHAVIOURS.join(", ")
                                ),
                            ));
                        }
                    }
                    list.get_ref().clone()
                }
            },
        })
    }
}

/// Checks that a partition's sides share no node. A node on both sides would be cut off from
/// itself (and, under a two-way cut, from everyone on either side), which no network does, so
/// such a file is a mistake to point out, not a fault to simulate. A side drawn at random
/// (`random N`) is refused too: each side is drawn on its own from every node, so the draws may
/// overlap, and only the seed would tell.
fn disjoint_sides(a: &Selection, b: &Selection, count: u32) -> Result<(), String> {
    if matches!(a, Selection::Random(_)) || matches!(b, Selection::Random(_)) {
        return Err(
            "a partition side cannot be drawn at random (`random N`): each side is drawn \
                    on its own, so the two draws may share nodes; name both sides (\"A..B\" or a \
                    list), or let `[swarm] partitions` draw disjoint sides for each seed"
                .to_string(),
        );
    }
    let mut on_a = vec![false; count as usize];
    for i in fixed_indices(a, count) {
        on_a[i as usize] = true;
    }
    let mut both: Vec<u32> = fixed_indices(b, count)
        .into_iter()
        .filter(|&i| on_a[i as usize])
        .collect();
    both.sort_unstable();
    both.dedup();
    if both.is_empty() {
        return Ok(());
    }
    Err(format!(
        "partition sides overlap: {}; a node cannot be cut off from itself, so put each node on \
         one side only (e.g. \"0..10\" and \"10..20\")",
        on_both_sides(&both)
    ))
}

/// Says that `nodes` (sorted, at least one) are on both sides: "node 3 is on both sides", "nodes
/// 10 and 11 are …", and past ten nodes their count and the first few, so the message stays a line.
fn on_both_sides(nodes: &[u32]) -> String {
    const LISTED_MAX: usize = 10;
    const SHOWN_OF_MANY: usize = 8;
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    match nodes {
        [one] => format!("node {one} is on both sides"),
        [init @ .., last] if nodes.len() <= LISTED_MAX => {
            format!("nodes {} and {last} are on both sides", list(init))
        }
        _ => format!(
            "{} nodes are on both sides ({}, …)",
            nodes.len(),
            list(&nodes[..SHOWN_OF_MANY])
        ),
    }
}

/// Checks that a fault of a consensus scenario cannot crash, restart or pause a client (nodes
/// `validators..count`): a client keeps no state across restarts, so one restarted would reuse
/// its transaction ids and corrupt the history the checker reads. `random k` selections draw
/// among the validators only ([`Scenario::faultable_nodes`]), so `k` must not exceed them.
fn spares_clients(kind: &FaultKind, validators: u32, count: u32) -> Result<(), String> {
    let (selection, stops_nodes) = match kind {
        FaultKind::Crash { nodes, .. } | FaultKind::Restart { nodes } | FaultKind::Pause { nodes, .. } => (nodes, true),
        FaultKind::ClockJump { nodes, .. } | FaultKind::ClockCorrect { nodes } => (nodes, false),
        FaultKind::Partition { .. } | FaultKind::Heal | FaultKind::Loss { .. } | FaultKind::Latency { .. } => {
            return Ok(())
        }
    };
    if let Selection::Random(k) = selection {
        if *k > validators {
            return Err(format!(
                "`random {k}` draws among the {validators} validators only (nodes 0..{validators}): \
                 the consensus workload's clients are never crashed, restarted or paused"
            ));
        }
        return Ok(());
    }
    match fixed_indices(selection, count).into_iter().find(|&n| n >= validators) {
        Some(client) if stops_nodes => Err(format!(
            "node {client} runs a consensus client (validators are nodes 0..{validators}): faults may crash, \
             restart or pause validators only, since a client keeps no state across restarts"
        )),
        _ => Ok(()),
    }
}

/// The indices of a selection that names its nodes (not `Random`).
pub fn fixed_indices(selection: &Selection, count: u32) -> Vec<u32> {
    match selection {
        Selection::All => (0..count).collect(),
        Selection::List(list) => list.clone(),
        Selection::Range(a, b) => (*a..*b).collect(),
        Selection::Random(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
duration = "10s"
[nodes]
count = 5
[workload]
kind = "membership"
"#;

    #[test]
    fn a_minimal_file_parses_with_defaults() {
        let s = parse("x.toml", MINIMAL).unwrap();
        assert_eq!(s.name, "x");
        assert_eq!(s.nodes.len(), 5);
        assert_eq!(s.workload.seeds, 3);
        assert!(s.nodes.iter().all(|n| n.family == Family::Ipv6));
    }

    #[test]
    fn a_control_character_in_a_comment_is_refused_with_a_message_and_its_line() {
        // Found by the scenario_parser fuzz target: the TOML parser's own message was empty.
        let text = format!("{MINIMAL}\n# a comment with a \u{0} in it\n");
        let err = parse("scenarios/x.toml", &text).unwrap_err();
        assert!(!err.message.is_empty(), "no message: {err:?}");
        assert_eq!(err.line, MINIMAL.lines().count() + 2, "{err}");
    }

    #[test]
    fn an_unknown_fault_kind_names_file_and_line() {
        let text = format!("{MINIMAL}\n[[fault]]\nat = \"1s\"\nkind = \"partiton\"\n");
        let e = parse("scenarios/x.toml", &text).unwrap_err();
        assert_eq!(e.line, 10);
        assert!(
            e.to_string()
                .starts_with("scenarios/x.toml:10: unknown fault kind \"partiton\""),
            "{e}"
        );
    }

    const API: &str = r#"
duration = "20s"
[nodes]
count = 4
[workload]
kind = "registry-api"
[api]
registrars = 1
searchers = 2
"#;

    #[test]
    fn an_api_table_written_back_reads_the_same_and_its_bad_values_name_their_line() {
        let text = format!("{API}search = \"scan\"\nrow_time = \"300us\"\n");
        let s = parse("x.toml", &text).unwrap();
        let plan = s.api.as_ref().unwrap();
        assert_eq!(plan.search, erc8004_api::index::Search::Scan);
        assert_eq!(plan.row_time, Duration::from_micros(300));
        assert_eq!(
            plan.roles,
            [ClientRole::Registrar, ClientRole::Searcher, ClientRole::Searcher]
        );
        let again = parse("x.toml", &super::write::to_toml(&s)).unwrap();
        assert_eq!(again.api, s.api);

        let faulty = "on_revert = \"keep\"\nagent_ids = \"counted\"\nregistrations_refused_midway = 2\n";
        let with_writer = API.replace("searchers = 2", "writers = 1\nsearchers = 1");
        let s = parse("x.toml", &format!("{with_writer}{faulty}")).unwrap();
        let plan = s.api.as_ref().unwrap();
        assert_eq!(
            (plan.on_revert, plan.agent_ids, plan.registrations_refused_midway),
            (erc8004::registries::OnRevert::Keep, super::AgentIds::Counted, 2)
        );
        assert_eq!(parse("x.toml", &super::write::to_toml(&s)).unwrap().api, s.api);
        let alone = API.replace("registrars = 1\nsearchers = 2", "searchers = 3");
        let e = parse("x.toml", &format!("{alone}agent_ids = \"counted\"\n")).unwrap_err();
        assert!(e.message.contains("give api.registrars"), "{e}");

        let e = parse("x.toml", &format!("{API}search = \"seq\"\n")).unwrap_err();
        assert_eq!(e.line, API.lines().count() + 1, "{e}");
        assert!(e.message.contains("api.search is \"indexed\" or \"scan\""), "{e}");
        let e = parse("x.toml", &API.replace("searchers = 2", "searchers = 3")).unwrap_err();
        assert!(e.message.contains("must be nodes.count - 1 = 3, not 4"), "{e}");
        // A count far past the nodes is refused by the sum, never built.
        let e = parse("x.toml", &API.replace("searchers = 2", "searchers = 4000000000")).unwrap_err();
        assert!(e.message.contains("not 4000000001"), "{e}");
        for (setting, names) in [
            ("agents_per_writer = 0", "api.agents_per_writer"),
            (
                "request_timeout = \"18s\"\nclient_stop = \"16s\"",
                "api.client_stop must leave 20 s",
            ),
            ("request_timeout = \"18s\"", "api.client_stop is 0 s"),
            ("on_revert = \"ignore\"", "api.on_revert is \"rollback\" or \"keep\""),
            ("agent_ids = \"max\"", "api.agent_ids is \"receipt\" or \"counted\""),
            (
                "registrations_refused_midway = 5",
                "at most api.agents_per_writer (4), not 5",
            ),
            ("registrations_refused_midway = 1", "give api.writers"),
        ] {
            let e = parse("x.toml", &format!("{API}{setting}\n")).unwrap_err();
            assert!(e.message.contains(names), "{setting}: {e}");
        }
    }

    #[test]
    fn reorder_without_a_window_is_refused_with_its_line() {
        let text = format!("{MINIMAL}[network]\nreorder = 0.1\n");
        let e = parse("x.toml", &text).unwrap_err();
        assert_eq!(e.line, MINIMAL.lines().count() + 2, "{e}");
        assert!(e.message.contains("network.reorder_window"), "{e}");
        let ok = format!("{MINIMAL}[network]\nreorder = 0.1\nreorder_window = \"20ms\"\n");
        assert_eq!(
            parse("x.toml", &ok).unwrap().link.reorder_window,
            Duration::from_millis(20)
        );
    }

    #[test]
    fn storage_faults_end_where_the_file_says_and_an_end_past_the_run_is_refused_with_its_line() {
        let text = format!("{MINIMAL}[storage]\nio_error = 0.1\nuntil = \"4s\"\n");
        let s = parse("x.toml", &text).unwrap();
        assert_eq!(s.storage_until, Some(Duration::from_secs(4)));
        let written = super::write::to_toml(&s);
        assert!(written.contains("until = \"4s\""), "{written}");
        for until in ["10s", "0s", "11s"] {
            let text = format!("{MINIMAL}[storage]\nuntil = \"{until}\"\n");
            let e = parse("x.toml", &text).unwrap_err();
            assert_eq!(e.line, MINIMAL.lines().count() + 2, "{e}");
            assert!(e.message.contains("storage.until"), "{e}");
        }
    }

    /// A consensus scenario of 6 nodes; `table` follows `[consensus]` on line 7.
    fn consensus_with(table: &str) -> String {
        format!("duration = \"10s\"\n[nodes]\ncount = 6\n[workload]\nkind = \"consensus\"\n[consensus]\n{table}")
    }

    #[test]
    fn byzantine_validators_are_named_checked_and_written_back() {
        use hypermesh::testing::adversary::Behaviour;
        let s = parse(
            "x.toml",
            &consensus_with("validators = 5\nbyzantine = [\"3:delay:1500ms\"]\n"),
        )
        .unwrap();
        let plan = s.consensus.as_ref().expect("a consensus plan");
        assert_eq!(plan.byzantine, vec![(3, Behaviour::Delay(Duration::from_millis(1500)))]);
        let again = parse("x.toml", &super::write::to_toml(&s)).unwrap();
        assert_eq!(again.consensus.unwrap().byzantine, plan.byzantine);
        for (table, message) in [
            (
                "validators = 5\nbyzantine = [\"7:forge\"]\n",
                "node 7 is not a validator",
            ),
            (
                "validators = 5\nbyzantine = [\"1:forge\", \"2:mutate\"]\n",
                "tolerate at most f = 1",
            ),
            (
                "validators = 5\nbyzantine = [\"1:shout\"]\n",
                "unknown behaviour \"shout\"",
            ),
            ("validators = 5\nbyzantine = [\"1:delay\"]\n", "delay needs an argument"),
            (
                "validators = 5\nbyzantine = [\"1:forge:2\"]\n",
                "forge takes no argument",
            ),
            (
                "validators = 5\nbyzantine = [\"1:impersonate:1\"]\n",
                "only another validator",
            ),
            ("validators = 5\nbyzantine = [\"x:forge\"]\n", "not a node index"),
            (
                "validators = 5\nbyzantine = [\"1:twins:2\"]\n",
                "needs a node beyond the validators",
            ),
            ("validators = 5\nbyzantine = [\"1:twins\"]\n", "twins needs an argument"),
            (
                "validators = 5\nbyzantine = [\"1:twins:5\"]\n",
                "leaving no node for a client",
            ),
        ] {
            let e = parse("x.toml", &consensus_with(table)).unwrap_err();
            assert!(e.to_string().contains(message), "{table}: {e}");
            assert!(e.to_string().starts_with("x.toml:"), "{e}");
        }
    }

    #[test]
    fn slanderers_are_a_minority_of_existing_nodes_in_membership_over_bare_datagrams() {
        let with = |kind: &str, line: &str, extra: &str| {
            format!("duration = \"10s\"\n[nodes]\ncount = 6\n[workload]\nkind = \"{kind}\"\n{line}\n{extra}")
        };
        let s = parse("x.toml", &with("membership", "slanderers = [4, 1]", "")).unwrap();
        assert_eq!(s.workload.slanderers, vec![1, 4]);
        let again = parse("x.toml", &super::write::to_toml(&s)).unwrap();
        assert_eq!(again.workload.slanderers, vec![1, 4]);
        for (text, message) in [
            (with("membership", "slanderers = [6]", ""), "node 6 does not exist"),
            (with("membership", "slanderers = [1, 1]", ""), "lists a node twice"),
            (with("membership", "slanderers = [0, 1, 2]", ""), "must be a minority"),
            (
                with("consensus", "slanderers = [1]", ""),
                "needs workload.kind = \"membership\"",
            ),
            (with("membership", "slanderers = [1]", "[stoq]\n"), "no [stoq]"),
        ] {
            let e = parse("x.toml", &text).unwrap_err();
            assert!(e.to_string().contains(message), "{text}: {e}");
            assert!(e.to_string().starts_with("x.toml:6:"), "{e}");
        }
    }

    #[test]
    fn swarm_adversaries_are_checked_against_f_and_the_workload() {
        let swarm = |validators: u32, line: &str| {
            format!(
                "duration = \"10s\"\n[nodes]\ncount = 9\n[workload]\nkind = \"consensus\"\n[consensus]\n\
                 validators = {validators}\nbyzantine = [\"0:forge\"]\n[swarm]\nwindow = [\"1s\", \"2s\"]\n{line}\n"
            )
        };
        let s = parse("x.toml", &swarm(7, "adversaries = [0, 1]\nbehaviours = [\"mutate\"]")).unwrap();
        let plan = s.swarm.as_ref().expect("a swarm");
        assert_eq!(
            (plan.adversaries, plan.behaviours.clone()),
            ((0, 1), vec!["mutate".to_string()])
        );
        let again = parse("x.toml", &super::write::to_toml(&s)).unwrap();
        assert_eq!(again.swarm, s.swarm);
        for (text, message) in [
            (swarm(7, "adversaries = [0, 2]"), "tolerate at most f = 2"),
            (
                swarm(7, "adversaries = [1, 1]\nbehaviours = [\"shout\"]"),
                "unknown behaviour \"shout\"",
            ),
            (swarm(7, "behaviours = []"), "lists no behaviour"),
            (
                swarm(8, "adversaries = [0, 1]\nbehaviours = [\"twins\"]"),
                "nodes.count is 9, so 1 client node(s)",
            ),
        ] {
            let e = parse("x.toml", &text).unwrap_err();
            assert!(e.to_string().contains(message), "{e}");
        }
        // Twins drawn by the swarm take the last node; one pair per scenario.
        let twins = parse(
            "x.toml",
            &swarm(7, "adversaries = [0, 1]\nbehaviours = [\"twins\", \"mutate\"]"),
        )
        .unwrap();
        assert_eq!(twins.swarm.as_ref().unwrap().behaviours, ["twins", "mutate"]);
        let again = parse("x.toml", &super::write::to_toml(&twins)).unwrap();
        assert_eq!(again.swarm, twins.swarm);
        let listed = swarm(7, "adversaries = [0, 1]\nbehaviours = [\"twins\"]").replace("0:forge", "0:twins:8");
        let e = parse("x.toml", &listed).unwrap_err();
        assert!(e.to_string().contains("already in consensus.byzantine"), "{e}");
        let membership = "duration = \"10s\"\n[nodes]\ncount = 9\n[workload]\nkind = \"membership\"\n[swarm]\nwindow = [\"1s\", \"2s\"]\nadversaries = [0, 1]\n";
        let e = parse("x.toml", membership).unwrap_err();
        assert!(e.to_string().contains("needs workload.kind = \"consensus\""), "{e}");
        assert!(e.to_string().starts_with("x.toml:8:"), "{e}");
    }

    #[test]
    fn the_guides_detection_settings_are_read_checked_and_written_back() {
        let s = parse(
            "x.toml",
            &consensus_with("latency_tolerance = \"100ms\"\nclock_skew_max = \"0s\"\nconfirmation_required = 1\n"),
        )
        .unwrap();
        let detection = s.consensus.as_ref().expect("a consensus plan").config().detection;
        assert_eq!(detection.latency_tolerance, Duration::from_millis(100));
        assert_eq!(detection.clock_skew_max, Duration::ZERO);
        assert_eq!(detection.confirmation_required, 1);
        let again = parse("x.toml", &super::write::to_toml(&s)).unwrap();
        assert_eq!(again.consensus.unwrap().config().detection, detection);
        let e = parse("x.toml", &consensus_with("confirmation_required = 0\n")).unwrap_err();
        assert!(e.to_string().starts_with("x.toml:7:"), "{e}");
        assert!(e.to_string().contains("confirmation_required"), "{e}");
        let e = parse(
            "x.toml",
            &consensus_with("validators = 3\nlatency_tolerance = \"0s\"\n"),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("x.toml:8:"), "{e}");
    }

    #[test]
    fn a_consensus_scenario_defaults_to_one_client_and_the_protocols_settings() {
        let s = parse(
            "x.toml",
            "duration = \"10s\"\n[nodes]\ncount = 5\n[workload]\nkind = \"consensus\"\n",
        )
        .unwrap();
        let plan = s.consensus.expect("a consensus plan");
        assert_eq!(plan.validators, 4);
        assert_eq!(plan.client_interval, Duration::from_millis(20));
        assert_eq!(plan.config(), hypermesh::consensus::ConsensusConfig::default());
        let s = parse(
            "x.toml",
            &consensus_with("validators = 3\nview_timeout = \"2s\"\nvotes_to_all = true\n"),
        )
        .unwrap();
        let plan = s.consensus.expect("a consensus plan");
        assert_eq!(
            (plan.validators, plan.view_timeout, plan.votes_to_all),
            (3, Duration::from_secs(2), true)
        );
    }

    #[test]
    fn an_unknown_consensus_key_is_refused_with_its_line() {
        let e = parse("x.toml", &consensus_with("validators = 4\nleader = 1\n")).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(e.message.contains("unknown field `leader`"), "{e}");
    }

    #[test]
    fn a_consensus_table_needs_the_consensus_workload() {
        let text = format!("{MINIMAL}[consensus]\nvalidators = 3\n");
        let e = parse("x.toml", &text).unwrap_err();
        assert_eq!(e.line, MINIMAL.lines().count() + 1, "{e}");
        assert!(e.message.contains("workload.kind = \"consensus\""), "{e}");
    }

    #[test]
    fn validators_must_leave_a_node_for_a_client() {
        for (validators, ok) in [(0, false), (1, true), (5, true), (6, false), (40, false)] {
            let result = parse("x.toml", &consensus_with(&format!("validators = {validators}\n")));
            match (result, ok) {
                (Ok(s), true) => assert_eq!(s.consensus.map(|c| c.validators), Some(validators)),
                (Err(e), false) => {
                    assert_eq!(e.line, 7, "{e}");
                    assert!(e.message.contains("consensus.validators must be in 1..=5"), "{e}");
                }
                (r, _) => panic!("validators = {validators}: {r:?}"),
            }
        }
        let one = "duration = \"10s\"\n[nodes]\ncount = 1\n[workload]\nkind = \"consensus\"\n";
        let e = parse("x.toml", one).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("at least 2 nodes"), "{e}");
    }

    #[test]
    fn a_consensus_setting_out_of_range_is_refused_at_its_line() {
        let e = parse("x.toml", &consensus_with("validators = 4\nbatch_size_max = 0\n")).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(e.message.contains("consensus setting batch_size_max"), "{e}");
        let text = consensus_with("view_timeout = \"100ms\"\nbatch_delay_max = \"200ms\"\n");
        let e = parse("x.toml", &text).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(e.message.contains("must be below view_timeout"), "{e}");
        let e = parse("x.toml", &consensus_with("client_interval = \"0s\"\n")).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        let e = parse("x.toml", &consensus_with("view_timeout = \"fast\"\n")).unwrap_err();
        assert!(e.message.starts_with("consensus.view_timeout"), "{e}");
    }

    #[test]
    fn faults_may_stop_validators_but_never_a_consensus_client() {
        let fault = |kind: &str, nodes: &str| {
            consensus_with(&format!(
                "validators = 4\n[[fault]]\nat = \"1s\"\nkind = \"{kind}\"\nnodes = {nodes}\nduration = \"1s\"\n"
            ))
        };
        for (kind, nodes) in [
            ("crash", "[1, 4]"),
            ("pause", "\"3..6\""),
            ("restart", "\"all\""),
            ("crash", "\"random 5\""),
        ] {
            let e = parse("x.toml", &fault(kind, nodes)).unwrap_err();
            assert_eq!(e.line, 8, "{kind} {nodes}: {e}");
            assert!(
                e.message.contains("consensus client") || e.message.contains("validators only"),
                "{e}"
            );
        }
        parse("x.toml", &fault("crash", "[0, 3]")).expect("validators may crash");
        parse("x.toml", &fault("crash", "\"random 4\"")).expect("random draws among the validators");
        parse(
            "x.toml",
            &fault("clock_jump", "[5]").replace("duration = \"1s\"", "by = \"1s\""),
        )
        .expect("a client's clock may jump");
    }

    #[test]
    fn stoq_under_consensus_is_refused() {
        let text = consensus_with("validators = 4\n[stoq]\nkeep_alive = \"2s\"\n");
        let e = parse("x.toml", &text).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(e.message.contains("bare datagrams"), "{e}");
    }

    #[test]
    fn stoq_under_trustchain_needs_membership_to_carry() {
        let base = "duration = \"10s\"\n[nodes]\ncount = 3\n[workload]\nkind = \"trustchain\"\n\
                    [stoq]\nkeep_alive = \"2s\"\n[trustchain]\nca = 0\n";
        let e = parse("x.toml", base).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("trustchain.membership = true"), "{e}");
        let s = parse("x.toml", &format!("{base}membership = true\n")).unwrap();
        assert_eq!(s.stoq.map(|p| p.keep_alive), Some(Duration::from_secs(2)));
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let text = MINIMAL.replace("count = 5", "count = 5\ncuont = 6");
        let e = parse("x.toml", &text).unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("unknown field `cuont`"), "{e}");
    }

    #[test]
    fn toml_syntax_errors_carry_a_line() {
        let e = parse("x.toml", "duration = \"10s\"\n[nodes\ncount = 1\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    /// `MINIMAL` with 40 nodes and one partition of `sides` (a TOML array) on line 11.
    fn with_partition(sides: &str) -> String {
        let head = MINIMAL.replace("count = 5", "count = 40");
        format!("{head}\n[[fault]]\nat = \"1s\"\nkind = \"partition\"\nsides = {sides}\n")
    }

    #[test]
    fn partition_sides_that_share_nodes_are_refused_naming_them_and_the_line() {
        let e = parse("x.toml", &with_partition(r#"["0..12", "10..40"]"#)).unwrap_err();
        assert_eq!(e.line, 11, "{e}");
        assert!(e.message.contains("nodes 10 and 11 are on both sides"), "{e}");
        let e = parse("x.toml", &with_partition(r#"["0..10", "0..10"]"#)).unwrap_err();
        assert_eq!(e.line, 11, "{e}");
        assert!(
            e.message
                .contains("nodes 0, 1, 2, 3, 4, 5, 6, 7, 8 and 9 are on both sides"),
            "{e}"
        );
        let e = parse("x.toml", &with_partition(r#"["all", [39]]"#)).unwrap_err();
        assert!(e.message.contains("node 39 is on both sides"), "{e}");
        let e = parse("x.toml", &with_partition(r#"[[1, 2, 3], [3, 7]]"#)).unwrap_err();
        assert!(e.message.contains("node 3 is on both sides"), "{e}");
        // A long overlap is named by its first few nodes and counted.
        let e = parse("x.toml", &with_partition(r#"["all", "all"]"#)).unwrap_err();
        assert!(
            e.message
                .contains("40 nodes are on both sides (0, 1, 2, 3, 4, 5, 6, 7, …)"),
            "{e}"
        );
        parse("x.toml", &with_partition(r#"["0..12", "12..40"]"#)).expect("disjoint sides");
        parse("x.toml", &with_partition(r#"[[0, 5], "10..12"]"#)).expect("disjoint sides need not cover every node");
    }

    #[test]
    fn a_partition_side_drawn_at_random_is_refused_since_it_could_overlap_the_other() {
        let e = parse("x.toml", &with_partition(r#"["random 3", "20..40"]"#)).unwrap_err();
        assert_eq!(e.line, 11, "{e}");
        assert!(e.message.contains("random"), "{e}");
    }

    #[test]
    fn node_indices_out_of_range_are_refused() {
        let text = format!("{MINIMAL}\n[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnodes = [7]\n");
        let e = parse("x.toml", &text).unwrap_err();
        assert!(e.message.contains("node 7 does not exist"), "{e}");
        assert_eq!(e.line, 11);
    }

    #[test]
    fn overrides_reach_nested_keys_and_unquoted_strings() {
        let mut table: toml::Table = toml::from_str(MINIMAL).unwrap();
        apply_override(&mut table, "workload.probe_interval=250ms").unwrap();
        apply_override(&mut table, "nodes.count=9").unwrap();
        let s = parse("x.toml", &toml::to_string(&table).unwrap()).unwrap();
        assert_eq!(s.workload.probe_interval, Some(Duration::from_millis(250)));
        assert_eq!(s.nodes.len(), 9);
        assert!(apply_override(&mut table, "no-equals-sign").is_err());
        assert!(apply_override(&mut table, "duration.x=1")
            .unwrap_err()
            .contains("not a table"));
    }

    #[test]
    fn bad_assertions_are_refused_with_their_line() {
        let text = format!("assert = [\"detection_ms_p99 <== 5\"]\n{MINIMAL}");
        let e = parse("x.toml", &text).unwrap_err();
        assert_eq!(e.line, 1);
    }
}
