//! Membership settings, every limit named and bounded.

use std::net::SocketAddr;
use std::time::Duration;

use super::wire::{NodeId, HEADER_AND_BODY_BYTES_MAX, RECORD_BYTES_MAX, UPDATE_BYTES_MAX};

/// How a node runs the membership protocol. Defaults follow the guide where it names a value.
#[derive(Clone, Debug, PartialEq)]
pub struct MembershipConfig {
    /// This node's identity.
    pub id: NodeId,
    /// Bootstrap phase 0: the static list of seed addresses every node starts from.
    pub seeds: Vec<SocketAddr>,
    /// How often a node probes one member (SWIM's protocol period).
    pub probe_interval: Duration,
    /// The one-way latency the detector must tolerate (the guide: 500 ms). A probe is abandoned
    /// only after `2 × latency_tolerance + probe_margin`.
    pub latency_tolerance: Duration,
    /// Slack on top of the round trip for processing and scheduling.
    pub probe_margin: Duration,
    /// How long after a direct probe, unanswered, indirect probes are requested. Indirect probes
    /// route around a lossy link between prober and target.
    pub indirect_after: Duration,
    /// Helpers asked to probe indirectly (SWIM's k).
    pub indirect_probes: usize,
    /// Independent suspicions that bring the suspicion timeout down to its minimum (Lifeguard's
    /// K; the guide's `confirmation_required`).
    pub confirmation_required: u32,
    /// Minimum suspicion timeout = `suspicion_mult × log10(members) × probe_interval`.
    pub suspicion_mult: u32,
    /// Maximum suspicion timeout = `suspicion_max_mult ×` the minimum (a lone suspicion).
    pub suspicion_max_mult: u32,
    /// The wall-clock skew tolerated between nodes (the guide: 30 s); a joiner beyond it is refused.
    pub clock_skew_max: Duration,
    /// How often pending gossip is pushed eagerly.
    pub gossip_interval: Duration,
    /// To how many members each eager push goes.
    pub gossip_fanout: usize,
    /// For how long after declaring a member dead this node still gossips to it, so that a
    /// member cut off by a partition hears its refutation is needed soon after the heal.
    pub gossip_to_dead_for: Duration,
    /// Each update is sent `retransmit_mult × ⌈log10(members + 1)⌉` times.
    pub retransmit_mult: u32,
    /// How often a node swaps its whole member list with a random member (anti-entropy; what
    /// reunites the two sides after a partition heals).
    pub push_pull_interval: Duration,
    /// How often an unanswered join is retried.
    pub join_retry_interval: Duration,
    /// How long a node that answered a join waits before announcing the joiner, with every
    /// other joiner it admitted meanwhile, to each member it holds alive or suspect (one
    /// batch of records per member), and between the announcements that repeat it. Joins are
    /// announced, not gossiped: gossiping each of n joiners to everyone costs every node n ×
    /// the retransmit limit updates, which made a 1000-node cold start a storm of full
    /// datagrams for twenty seconds.
    pub announce_interval: Duration,
    /// Most catch-up pulls a node makes after joining: one, then another each
    /// `join_retry_interval + announce_interval` while its view still grows (the cluster is
    /// still joining), up to this many. What an announcement missed is caught here rather than
    /// by anti-entropy, whose period may be long in a large cluster.
    pub catch_ups_max: u32,
    /// Largest datagram this protocol sends (below a typical 1500-byte MTU).
    pub datagram_bytes_max: usize,
    /// Direct probes of this node that may be outstanding at once. At the guide's tolerance a
    /// probe is out for 1.01 s, so 100 ms probing keeps about ten out when a partition fails
    /// them all; the bound must not throttle probing then.
    pub probes_in_flight_max: usize,
    /// Indirect probes this node runs for others at once; more requests are ignored.
    pub relays_in_flight_max: usize,
    /// Largest membership this node accepts (the guide's design limit is 1000).
    pub members_max: usize,
    /// Which member id each certified name may speak as, over a transport that authenticates
    /// its peers (STOQ). With a binding, a message is heard only from an address whose
    /// certified name maps to the message's sender; others are refused and counted
    /// (`identity_refused`). `None` (bare datagrams) hears every sender as it says it is.
    pub identity: Option<IdentityBinding>,
}

/// How a certified name maps to the one member id it may speak as (see
/// [`MembershipConfig::identity`]). A node's own id must be the one its certificate's name maps
/// to, or its peers refuse everything it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityBinding {
    /// The id is the 64-bit FNV-1a hash of the name ([`IdentityBinding::hashed`]): how
    /// `hypermesh node` derives its id from the name it enrolled with, so every name maps to one
    /// id.
    NameHash,
    /// A name `{prefix}{i}{suffix}`, with `i` in canonical decimal (no sign, no leading zero),
    /// may speak as id `i`; any other name as nobody. The simulator's STOQ scenarios certify
    /// node `i` as `node-{i}.mesh`.
    Numbered {
        /// What the name starts with (`node-`).
        prefix: String,
        /// What it ends with (`.mesh`).
        suffix: String,
    },
}

impl IdentityBinding {
    /// The id a certificate naming `name` may speak as, if any.
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        match self {
            IdentityBinding::NameHash => Some(IdentityBinding::hashed(name)),
            IdentityBinding::Numbered { prefix, suffix } => {
                let digits = name.strip_prefix(prefix.as_str())?.strip_suffix(suffix.as_str())?;
                let canonical = !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'));
                if !canonical {
                    return None;
                }
                digits.parse().ok().map(NodeId)
            }
        }
    }

    /// The 64-bit FNV-1a hash of `name`, as a member id: stable across releases and machines.
    pub fn hashed(name: &str) -> NodeId {
        NodeId(name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }))
    }
}

impl MembershipConfig {
    /// The guide's settings for node `id` with `seeds`.
    pub fn new(id: NodeId, seeds: Vec<SocketAddr>) -> Self {
        MembershipConfig {
            id,
            seeds,
            probe_interval: Duration::from_millis(500),
            latency_tolerance: Duration::from_millis(500),
            probe_margin: Duration::from_millis(10),
            indirect_after: Duration::from_millis(500),
            indirect_probes: 3,
            confirmation_required: 3,
            suspicion_mult: 4,
            suspicion_max_mult: 6,
            clock_skew_max: Duration::from_secs(30),
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            gossip_to_dead_for: Duration::from_secs(60),
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(10),
            join_retry_interval: Duration::from_secs(1),
            announce_interval: Duration::from_secs(1),
            catch_ups_max: 5,
            datagram_bytes_max: 1400,
            probes_in_flight_max: 16,
            relays_in_flight_max: 64,
            members_max: 4096,
            identity: None,
        }
    }

    /// How long a direct probe may go unanswered before its target is suspected.
    pub fn probe_timeout(&self) -> Duration {
        self.latency_tolerance * 2 + self.probe_margin
    }

    /// Checks every setting, naming the first one out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("probe_interval", self.probe_interval),
            ("latency_tolerance", self.latency_tolerance),
            ("gossip_interval", self.gossip_interval),
            ("push_pull_interval", self.push_pull_interval),
            ("join_retry_interval", self.join_retry_interval),
            ("announce_interval", self.announce_interval),
        ];
        for (name, value) in positive {
            if value.is_zero() {
                return Err(ConfigError {
                    setting: name,
                    problem: "must be greater than zero".into(),
                });
            }
        }
        let min_datagram = HEADER_AND_BODY_BYTES_MAX + UPDATE_BYTES_MAX.max(RECORD_BYTES_MAX);
        if self.datagram_bytes_max < min_datagram || self.datagram_bytes_max > runtime::host::MESSAGE_BYTES_MAX {
            return Err(ConfigError {
                setting: "datagram_bytes_max",
                problem: format!(
                    "{} is outside {min_datagram}..={}",
                    self.datagram_bytes_max,
                    runtime::host::MESSAGE_BYTES_MAX
                ),
            });
        }
        let counts = [
            ("gossip_fanout", self.gossip_fanout),
            ("probes_in_flight_max", self.probes_in_flight_max),
            ("members_max", self.members_max),
            ("confirmation_required", self.confirmation_required as usize),
            ("suspicion_mult", self.suspicion_mult as usize),
            ("suspicion_max_mult", self.suspicion_max_mult as usize),
            ("retransmit_mult", self.retransmit_mult as usize),
            ("catch_ups_max", self.catch_ups_max as usize),
        ];
        for (name, value) in counts {
            if value == 0 {
                return Err(ConfigError {
                    setting: name,
                    problem: "must be at least 1".into(),
                });
            }
        }
        Ok(())
    }
}

/// A setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("membership setting `{setting}`: {problem}")]
pub struct ConfigError {
    /// Which setting.
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_tolerate_a_full_round_trip() {
        let config = MembershipConfig::new(NodeId(1), vec![]);
        config.validate().unwrap();
        assert_eq!(config.probe_timeout(), Duration::from_millis(1010));
    }

    #[test]
    fn certified_names_map_to_the_ids_they_may_speak_as() {
        let numbered = IdentityBinding::Numbered {
            prefix: "node-".into(),
            suffix: ".mesh".into(),
        };
        assert_eq!(numbered.id_of("node-0.mesh"), Some(NodeId(0)));
        assert_eq!(numbered.id_of("node-17.mesh"), Some(NodeId(17)));
        assert_eq!(
            numbered.id_of(&format!("node-{}.mesh", u64::MAX)),
            Some(NodeId(u64::MAX))
        );
        for other in [
            "node-.mesh",
            "node-01.mesh",
            "node-+1.mesh",
            "node-1.mesh.evil",
            "xnode-1.mesh",
            "node-18446744073709551616.mesh",
        ] {
            assert_eq!(numbered.id_of(other), None, "{other}");
        }
        // FNV-1a 64 of "a" (the published test vector).
        assert_eq!(
            IdentityBinding::NameHash.id_of("a"),
            Some(NodeId(0xaf63_dc4c_8601_ec8c))
        );
        assert_eq!(IdentityBinding::hashed(""), NodeId(0xcbf2_9ce4_8422_2325));
    }

    #[test]
    fn a_bad_setting_is_named() {
        let mut config = MembershipConfig::new(NodeId(1), vec![]);
        config.gossip_fanout = 0;
        assert_eq!(config.validate().unwrap_err().setting, "gossip_fanout");
        config.gossip_fanout = 3;
        config.datagram_bytes_max = 10;
        assert_eq!(config.validate().unwrap_err().setting, "datagram_bytes_max");
        MembershipConfig::new(NodeId(u64::MAX), vec![])
            .validate()
            .expect("every 64-bit id is valid");
    }
}
