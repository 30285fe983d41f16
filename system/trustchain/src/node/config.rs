//! Every setting of a TrustChain node and of the CA role, named, with the default and why.

use std::net::SocketAddr;
use std::time::Duration;

use crate::ca::CaPolicy;

/// A node: enrolls with the CA, renews, follows rotations, validates its peers.
#[derive(Clone, Debug)]
pub struct TrustNodeConfig {
    /// This node's index into `peers`.
    pub me: usize,
    /// Every node's address by index: the static peer list of bootstrap phase 0.
    pub peers: Vec<SocketAddr>,
    /// The index of the node that holds the CA (phase 1: the first seed creates the root).
    pub ca: usize,
    /// This node's enrollment credential (a join token from the CA's operator).
    pub token: String,
    /// `Some` on the CA's node.
    pub authority: Option<AuthorityConfig>,
    /// A handshake with a random peer this often (±25 % jitter).
    pub handshake_interval: Duration,
    /// A handshake unanswered this long is abandoned (counted as a timeout, not a failure).
    pub handshake_timeout: Duration,
    /// Enrollment retries: first delay, doubled per attempt up to the second (± jitter), so a
    /// cold start whose CA comes up late converges without a retry storm.
    pub enroll_backoff: (Duration, Duration),
    /// Nodes fetch the CA's bundle and revocation lists this often even when nothing is pushed
    /// (the cache lifetime behind the guide's "cache invalidation delays").
    pub bundle_refresh: Duration,
    /// A leaf is renewed once this fraction of its lifetime has passed.
    pub renew_fraction: f64,
    /// Before presenting a chain from a new issuer, check it against peers' bundles.
    pub verify_before_switch: bool,
    /// Peers asked in a verify-before-switch trial (sampled when there are more).
    pub verify_peers_max: usize,
    /// After a refused trial, try again this much later.
    pub trial_retry: Duration,
    /// Handshakes and trials awaiting an answer at once; beyond it none are started.
    pub outstanding_max: usize,
}

impl TrustNodeConfig {
    /// Defaults for node `me` of `peers`, the CA at `ca`, enrolling with `token`.
    pub fn new(me: usize, peers: Vec<SocketAddr>, ca: usize, token: String) -> Self {
        TrustNodeConfig {
            me,
            peers,
            ca,
            token,
            authority: None,
            handshake_interval: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(5),
            enroll_backoff: (Duration::from_millis(500), Duration::from_secs(30)),
            bundle_refresh: Duration::from_secs(600),
            renew_fraction: 2.0 / 3.0,
            verify_before_switch: true,
            verify_peers_max: 16,
            trial_retry: Duration::from_secs(60),
            outstanding_max: 64,
        }
    }
}

/// The CA role: issuance policy, rotation, revocation, bootstrap behaviour.
#[derive(Clone, Debug)]
pub struct AuthorityConfig {
    /// Lifetimes and back-dating allowance.
    pub policy: CaPolicy,
    /// The secret join tokens are checked with (the operator issues tokens with it).
    pub token_secret: [u8; 32],
    /// Rotate the intermediate this often (the guide's 24 h); `None`: never.
    pub rotate_every: Option<Duration>,
    /// How long the old intermediate stays in bundles after a rotation. Zero is the abrupt
    /// switch: the old one is dropped at once.
    pub overlap: Duration,
    /// Gradual rollout: nodes move to the new intermediate in this many waves (node `i` in wave
    /// `i mod waves`); zero: no rollout, nodes move at their regular renewal.
    pub rollout_waves: u32,
    /// Time between waves; the first wave starts one interval after the rotation, so the new
    /// bundle has reached every node first.
    pub rollout_interval: Duration,
    /// Push the bundle and revocation lists to every node when they change (else nodes see the
    /// change at their next `bundle_refresh`).
    pub push_bundles: bool,
    /// The guide's bootstrap circular dependency, kept reproducible: the CA issues nothing until
    /// this many nodes are certified members (which needs certificates). Zero: phased bootstrap.
    pub quorum_before_issuing: u32,
    /// Revoke every certificate of node `index` this long after the CA's creation.
    pub revocations: Vec<(Duration, usize)>,
}

impl AuthorityConfig {
    /// Graceful rotation every 24 h with a 1 h overlap and a 6-wave rollout, 5 minutes apart.
    pub fn new(token_secret: [u8; 32]) -> Self {
        AuthorityConfig {
            policy: CaPolicy::default(),
            token_secret,
            rotate_every: Some(Duration::from_secs(86_400)),
            overlap: Duration::from_secs(3600),
            rollout_waves: 6,
            rollout_interval: Duration::from_secs(300),
            push_bundles: true,
            quorum_before_issuing: 0,
            revocations: Vec::new(),
        }
    }
}
