//! The scenario file as written: serde types mirroring the TOML, with spans kept for errors.

use serde::Deserialize;
use toml::Spanned;

/// A node selection as written: a list of indices or a text form.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawSelection {
    /// `[0, 4, 7]`
    List(Vec<u32>),
    /// `"all"`, `"0..30"`, `"random 10"`
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Option<String>,
    pub description: Option<String>,
    pub seed: Option<u64>,
    pub duration: Spanned<String>,
    pub nodes: RawNodes,
    #[serde(default)]
    pub clock: RawClock,
    #[serde(default)]
    pub network: RawNetwork,
    #[serde(default)]
    pub storage: RawStorage,
    pub workload: Spanned<RawWorkload>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Spanned<RawFault>>,
    pub swarm: Option<Spanned<RawSwarm>>,
    #[serde(default, rename = "assert")]
    pub asserts: Vec<Spanned<String>>,
    pub trustchain: Option<Spanned<RawTrustChain>>,
    pub consensus: Option<Spanned<RawConsensus>>,
    pub api: Option<Spanned<super::api::RawApi>>,
    pub stoq: Option<Spanned<RawStoq>>,
    #[serde(default, rename = "variant")]
    pub variants: Vec<Spanned<RawVariant>>,
}

/// `[stoq]`: run the membership workload over STOQ (QUIC with TrustChain mutual TLS).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStoq {
    pub idle_timeout: Option<Spanned<String>>,
    pub keep_alive: Option<Spanned<String>>,
    pub initial_rtt: Option<Spanned<String>>,
}

/// `[trustchain]`: the TrustChain workload's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrustChain {
    pub ca: Option<Spanned<u32>>,
    pub handshake_interval: Option<Spanned<String>>,
    pub handshake_timeout: Option<Spanned<String>>,
    pub bundle_refresh: Option<Spanned<String>>,
    pub renew_fraction: Option<Spanned<f64>>,
    pub verify_before_switch: Option<bool>,
    pub backdate: Option<Spanned<String>>,
    pub leaf_lifetime: Option<Spanned<String>>,
    pub rotate_every: Option<Spanned<String>>,
    pub overlap: Option<Spanned<String>>,
    pub rollout_waves: Option<Spanned<u32>>,
    pub rollout_interval: Option<Spanned<String>>,
    pub push_bundles: Option<bool>,
    pub quorum_before_issuing: Option<Spanned<u32>>,
    pub membership: Option<bool>,
    #[serde(default)]
    pub revoke: Vec<Spanned<RawRevoke>>,
}

/// `[consensus]`: the consensus workload's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsensus {
    pub validators: Option<Spanned<u32>>,
    pub client_interval: Option<Spanned<String>>,
    pub client_stop: Option<Spanned<String>>,
    pub linearizable_reads: Option<Spanned<u32>>,
    pub batch_size_max: Option<Spanned<u32>>,
    pub batch_delay_max: Option<Spanned<String>>,
    pub view_timeout: Option<Spanned<String>>,
    pub votes_to_all: Option<bool>,
    pub skip_suspected_leaders: Option<bool>,
    pub checkpoint_interval: Option<Spanned<u64>>,
    pub log_retain_heights: Option<Spanned<u64>>,
    pub latency_tolerance: Option<Spanned<String>>,
    pub clock_skew_max: Option<Spanned<String>>,
    pub confirmation_required: Option<Spanned<u32>>,
    #[serde(default)]
    pub byzantine: Vec<Spanned<String>>,
}

/// One scheduled revocation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRevoke {
    pub at: Spanned<String>,
    pub node: Spanned<u32>,
}

/// `[[variant]]`: the same scenario with other settings and what must hold then.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariant {
    pub name: Spanned<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub set: Vec<Spanned<String>>,
    #[serde(default, rename = "assert")]
    pub asserts: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNodes {
    pub count: Spanned<u32>,
    pub family: Option<Spanned<String>>,
    #[serde(default, rename = "group")]
    pub groups: Vec<Spanned<RawGroup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub nodes: Spanned<RawSelection>,
    pub family: Option<Spanned<String>>,
    pub clock_offset: Option<Spanned<String>>,
    pub drift_ppm: Option<Spanned<f64>>,
    pub start: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClock {
    pub offset_max: Option<Spanned<String>>,
    pub drift_ppm_max: Option<Spanned<f64>>,
    pub ntp_interval: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub latency: Option<Spanned<RawLatency>>,
    pub jitter: Option<Spanned<String>>,
    pub loss: Option<Spanned<f64>>,
    pub duplicate: Option<Spanned<f64>>,
    pub reorder: Option<Spanned<f64>>,
    pub reorder_window: Option<Spanned<String>>,
    pub corrupt: Option<Spanned<f64>>,
    pub bandwidth_mbit: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawLatency {
    /// `"2ms"`: constant.
    Constant(String),
    /// `{ kind = "uniform", min = "1ms", max = "5ms" }` and the like.
    Table(RawLatencyTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLatencyTable {
    pub kind: String,
    pub value: Option<String>,
    pub min: Option<String>,
    pub max: Option<String>,
    pub mean: Option<String>,
    pub stddev: Option<String>,
    pub shape: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub io_error: Option<Spanned<f64>>,
    pub torn_writes: Option<bool>,
    pub crash_at_io: Option<Spanned<f64>>,
    pub crash_restart_after: Option<Spanned<String>>,
    pub read_bitflip: Option<Spanned<f64>>,
    pub until: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub kind: Spanned<String>,
    pub seeds: Option<Spanned<u32>>,
    pub start_spread: Option<Spanned<String>>,
    pub probe_interval: Option<Spanned<String>>,
    pub latency_tolerance: Option<Spanned<String>>,
    pub probe_margin: Option<Spanned<String>>,
    pub indirect_after: Option<Spanned<String>>,
    pub indirect_probes: Option<Spanned<u32>>,
    pub confirmation_required: Option<Spanned<u32>>,
    pub suspicion_mult: Option<Spanned<u32>>,
    pub clock_skew_max: Option<Spanned<String>>,
    pub gossip_interval: Option<Spanned<String>>,
    pub gossip_fanout: Option<Spanned<u32>>,
    pub push_pull_interval: Option<Spanned<String>>,
    pub settle: Option<Spanned<String>>,
    pub slanderers: Option<Spanned<Vec<u32>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub at: Spanned<String>,
    pub kind: Spanned<String>,
    pub nodes: Option<Spanned<RawSelection>>,
    pub sides: Option<Spanned<Vec<RawSelection>>>,
    pub one_way: Option<bool>,
    pub duration: Option<Spanned<String>>,
    pub restart_after: Option<Spanned<String>>,
    pub by: Option<Spanned<String>>,
    pub probability: Option<Spanned<f64>>,
    pub latency: Option<Spanned<String>>,
    pub jitter: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSwarm {
    /// Faults start inside `[window[0], window[1]]`.
    pub window: Spanned<[String; 2]>,
    pub crashes: Option<Spanned<[u32; 2]>>,
    pub restart_after: Option<Spanned<[String; 2]>>,
    pub partitions: Option<Spanned<[u32; 2]>>,
    pub partition_duration: Option<Spanned<[String; 2]>>,
    pub pauses: Option<Spanned<[u32; 2]>>,
    pub pause_duration: Option<Spanned<[String; 2]>>,
    pub clock_jumps: Option<Spanned<[u32; 2]>>,
    pub clock_jump_max: Option<Spanned<String>>,
    pub loss_bursts: Option<Spanned<[u32; 2]>>,
    pub loss: Option<Spanned<[f64; 2]>>,
    pub loss_duration: Option<Spanned<[String; 2]>>,
    pub adversaries: Option<Spanned<[u32; 2]>>,
    pub behaviours: Option<Spanned<Vec<String>>>,
}
