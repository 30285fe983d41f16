//! A TrustChain node as a sans-IO actor: bootstrap, enrollment, renewal, rotation, revocation,
//! and certificate checks between peers, at each node's own clock.
//!
//! Bootstrap phases (the guide's fix for its TrustChain ⇄ HyperMesh circular dependency):
//! - **Phase 0**: every node starts from a static list of peer addresses (IPv6 only); nothing
//!   needs certificates or consensus yet.
//! - **Phase 1**: the first seed creates a self-signed root at its first start (persisted, so a
//!   restart keeps it) and runs the CA ([`authority::CaRole`]); every node enrolls with its join
//!   token, retrying with capped exponential backoff, so whatever order nodes start in, and
//!   whether the CA crashes meanwhile, enrollment completes once the CA is up. The CA waits for
//!   nothing, so a cold start cannot deadlock.
//! - Phase 2 (a later issue) moves the CA's state into HyperMesh consensus; the CA's state is one
//!   record ([`crate::ca::AuthorityRecord`] plus counters), built for that.
//!
//! Peers check each other with a *certificate handshake*: the initiator sends its chain, the
//! responder validates it (at its own clock, against its bundle and revocation lists) and
//! answers with its own chain, which the initiator validates. This is the certificate half of
//! mutual TLS: the cryptographic half (proof of key possession, encryption) is STOQ's, which
//! runs real TLS over QUIC. Bundles and revocation lists are accepted only from the CA's address
//! and only if they keep the root pinned at enrollment. Enrollment comes before any certificate,
//! so on a STOQ node this protocol travels on a bare channel beside QUIC, where that pinning is
//! all that authenticates a bundle in transit (production nodes fetch theirs over the CA
//! service's HTTPS instead).
//!
//! Probes (subject, value):
//! - `tc_enrolled` (0, 1): the node holds its first valid certificate.
//! - `tc_handshake` (peer, outcome): 0 accepted both ways; `1 + class` the peer's chain failed
//!   here; `101 + class` ours was refused there; 200 no answer; 201 the peer holds no
//!   certificate yet. `class` indexes [`crate::validate::ValidationError::CLASSES`].
//! - `tc_refused_peer` (peer, 1 + class): this node refused a peer's chain.
//! - `tc_trial` (peer, 0 or 1 + class): a verify-before-switch check of our new chain.
//! - `tc_switched` (0, 1): the node now presents a chain from a new intermediate.
//! - `tc_own_invalid` (0, 1 + class): a chain the CA just issued fails here, at our clock.
//! - `tc_crl` (0, revoked serials listed): revocation lists installed.
//! - `tc_self_revoked` (0, 1): our own certificate is on a list; we stop.
//! - `tc_refused` (0, reason): the CA refused our request; `tc_ca_refused` (0, reason) at the
//!   CA; `tc_issued` (0, 1) at the CA; `tc_rotation` (0, count); `tc_retired` (0, 1);
//!   `tc_revoked` (node, 1).
//! - `tc_trust_stale` (CRL number offered, how far below the held one): a bundle and lists
//!   older than those held (delayed, duplicated or replayed) were refused.
//! - `tc_storage_error`, `tc_malformed`.
//!
//! A node that runs over STOQ hands what it presents and trusts to its transport through a
//! [`Publisher`] ([`TrustNode::publishing_to`]), told after every call in which either changed.

pub mod authority;
pub mod config;

pub mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use pki_types::{CertificateDer, CertificateRevocationListDer};
use rcgen::KeyPair;
use runtime::host::{Channel, Context, Mount, Protocol};
use runtime::{Clock, Entropy, Instant, Probe, Probes};

use self::authority::{CaEvent, CaRole};
pub use self::config::{AuthorityConfig, TrustNodeConfig};
use self::wire::{Message, Rollout, NOT_READY};
use crate::ca::{key_from_seed, request, NodeIdentity};
use crate::durable;
use crate::trust::{fingerprint, validity_of, Fingerprint, TrustBundle};
use crate::validate::{ExpectedPeer, ValidationError};

/// The node's own state (key seed, chain, pinned root): two slots, see [`durable`].
const NODE_STATE: &str = "node";

/// The TrustChain node's timers, with the generation or nonce each is for (a timer whose
/// generation is no longer current is ignored).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The next certificate handshake with a peer.
    Handshake,
    /// Retry enrollment (generation).
    Enroll(u64),
    /// Renew the leaf, or retry a renewal (generation).
    Renew(u64),
    /// Fetch the bundle and CRLs again.
    Refresh,
    /// A handshake question (nonce) went unanswered.
    Timeout(u64),
    /// This node's rollout wave has come.
    Rollout,
    /// A verify-before-switch trial ends (generation); `retry` starts a new one instead.
    TrialEnd {
        /// The trial's generation.
        gen: u64,
        /// Whether to start the trial again rather than close it.
        retry: bool,
    },
    /// The CA's next scheduled duty (generation).
    Ca(u64),
    /// Fetch the bundle again until a restarted node's chain is verified.
    Fetch,
}

/// Where the TrustChain node lives on a node's [`runtime::host::Host`].
pub const MOUNT: Mount = Mount::new("trustchain", Channel(2));

/// The context the TrustChain node is called with.
type Cx<'a> = Context<'a, Timer>;

/// A revocation list's CRL number, if it carries one that fits 64 bits.
fn crl_number(der: &[u8]) -> Option<u64> {
    let (_, crl) = x509_parser::parse_x509_crl(der).ok()?;
    let digits = crl.crl_number()?.to_u64_digits();
    match digits.as_slice() {
        [] => Some(0),
        [n] => Some(*n),
        _ => None,
    }
}

fn class_index(e: &ValidationError) -> i64 {
    ValidationError::CLASSES
        .iter()
        .position(|c| *c == e.class())
        .unwrap_or(8) as i64
}

/// What the node presents and trusts, as handed to its [`Publisher`].
pub struct Published<'a> {
    /// The chain the node presents (leaf first), once it holds one its current bundle has
    /// verified (a chain restored after a restart waits for a fresh bundle, as the node's own
    /// handshakes do).
    pub chain: Option<&'a [Bytes]>,
    /// The private key of the chain's leaf.
    pub key: &'a KeyPair,
    /// The CA's bundle, once the node has one.
    pub bundle: Option<&'a TrustBundle>,
    /// The revocation lists (DER), one per issuing intermediate.
    pub crls: &'a [Bytes],
    /// Whether `chain` changed since the last publication (or this is the first).
    pub chain_changed: bool,
    /// Whether `bundle` or `crls` changed since the last publication (or this is the first).
    pub trust_changed: bool,
}

/// Told what the node presents and trusts whenever either changes: how the node's transport
/// learns its credentials from TrustChain (`stoq::TrustChainCredentials` for STOQ). Called at
/// the end of the node's call, with the node's context.
pub trait Publisher: Send {
    /// Takes the node's current credentials and trust.
    fn publish(&mut self, cx: &mut Context<'_, Timer>, published: &Published<'_>);
}

struct Outstanding {
    peer: usize,
    trial: bool,
}

struct Trial {
    awaiting: usize,
    ok: usize,
    refused: bool,
}

/// The actor.
pub struct TrustNode {
    cfg: TrustNodeConfig,
    identity: Option<NodeIdentity>,
    key_seed: [u8; 32],
    key: Option<KeyPair>,
    chain: Option<Vec<Bytes>>,
    pending: Option<Vec<Bytes>>,
    trial: Option<Trial>,
    /// Peers that refused the pending chain: each must accept it in a later trial before the
    /// switch. Without this, a refuser whose next answer is lost counts as no refusal, and the
    /// node switches to a chain that peer still cannot validate (seen in cert-rotation).
    refusers: BTreeSet<usize>,
    bundle: Option<TrustBundle>,
    crls: Vec<Bytes>,
    pinned_root: Option<Fingerprint>,
    rollout: Option<Rollout>,
    outstanding: BTreeMap<u64, Outstanding>,
    enroll_attempt: u32,
    gen: u64,
    renew_gen: u64,
    trial_gen: u64,
    ca_gen: u64,
    awaiting_ca: bool,
    revoked: bool,
    enrolled: bool,
    /// Whether our chain has been checked against a bundle fetched since (re)start: a node
    /// restarted after a rotation must not present a leaf its peers no longer accept.
    verified: bool,
    ca: Option<CaRole>,
    seq: u64,
    publisher: Option<Box<dyn Publisher>>,
    /// Bumped whenever the bundle or the revocation lists change.
    trust_revision: u64,
    /// The highest CRL number among the lists installed: the CA numbers its lists from one
    /// counter it keeps durable, and re-signs them at every rotation, retirement and revocation,
    /// so a trust update whose lists are numbered lower is an older one (delayed, duplicated or
    /// replayed) and would un-revoke a node. Kept with the node's state.
    trust_number: u64,
    /// What the publisher was last told: the chain and the trust revision (`None` before the
    /// first publication).
    published: Option<(Option<Vec<Bytes>>, u64)>,
}

impl TrustNode {
    /// A node that will enroll, or restore itself from storage, when started.
    pub fn new(cfg: TrustNodeConfig) -> Self {
        TrustNode {
            cfg,
            identity: None,
            key_seed: [0; 32],
            key: None,
            chain: None,
            pending: None,
            trial: None,
            refusers: BTreeSet::new(),
            bundle: None,
            crls: Vec::new(),
            pinned_root: None,
            rollout: None,
            outstanding: BTreeMap::new(),
            enroll_attempt: 0,
            gen: 0,
            renew_gen: 0,
            trial_gen: 0,
            ca_gen: 0,
            awaiting_ca: false,
            revoked: false,
            enrolled: false,
            verified: false,
            ca: None,
            seq: 0,
            publisher: None,
            trust_revision: 0,
            trust_number: 0,
            published: None,
        }
    }

    /// Tells `publisher` what the node presents and trusts whenever either changes.
    pub fn publishing_to(mut self, publisher: impl Publisher + 'static) -> Self {
        self.publisher = Some(Box::new(publisher));
        self
    }

    /// Hands the publisher what changed during this call, if anything did.
    fn publish(&mut self, env: &mut Cx<'_>) {
        let (Some(publisher), Some(key)) = (self.publisher.as_mut(), self.key.as_ref()) else {
            return;
        };
        let chain = self.chain.as_ref().filter(|_| self.verified);
        let (chain_changed, trust_changed) = match &self.published {
            None => (true, true),
            Some((told, revision)) => (chain != told.as_ref(), *revision != self.trust_revision),
        };
        if !chain_changed && !trust_changed {
            return;
        }
        publisher.publish(
            env,
            &Published {
                chain: chain.map(Vec::as_slice),
                key,
                bundle: self.bundle.as_ref(),
                crls: &self.crls,
                chain_changed,
                trust_changed,
            },
        );
        self.published = Some((chain.cloned(), self.trust_revision));
    }

    fn now_s(env: &Cx<'_>) -> i64 {
        env.wall_now().as_unix_millis().div_euclid(1000)
    }

    /// The monotonic instant at which this node's wall clock reads `unix_ms` (now if past).
    fn at_wall(env: &Cx<'_>, unix_ms: i64) -> Instant {
        let delta = unix_ms - env.wall_now().as_unix_millis();
        env.now() + Duration::from_millis(delta.max(0) as u64)
    }

    fn next_gen(&mut self) -> u64 {
        self.gen += 1;
        self.gen
    }

    fn jittered(env: &mut Cx<'_>, d: Duration) -> Duration {
        d.mul_f64(0.75 + 0.5 * env.unit_f64())
    }

    fn save(&mut self, env: &mut Cx<'_>) {
        let mut out = self.key_seed.to_vec();
        out.extend_from_slice(&self.pinned_root.unwrap_or([0; 32]));
        let chain = self.chain.clone().unwrap_or_default();
        out.push(chain.len() as u8);
        for c in &chain {
            out.extend_from_slice(&(c.len() as u32).to_be_bytes());
            out.extend_from_slice(c);
        }
        let bundle = self.bundle.as_ref().map(TrustBundle::encode).unwrap_or_default();
        out.extend_from_slice(&(bundle.len() as u32).to_be_bytes());
        out.extend_from_slice(&bundle);
        out.extend_from_slice(&self.trust_number.to_be_bytes());
        self.seq += 1;
        if durable::save(env, NODE_STATE, self.seq, &out).is_err() {
            env.probe(Probe::new("tc_storage_error", 0, 1));
        }
    }

    fn restore(&mut self, bytes: &[u8]) -> Option<()> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let end = at.checked_add(n).filter(|e| *e <= bytes.len())?;
            let out = &bytes[at..end];
            at = end;
            Some(out)
        };
        self.key_seed = take(32)?.try_into().ok()?;
        let pinned: [u8; 32] = take(32)?.try_into().ok()?;
        self.pinned_root = (pinned != [0; 32]).then_some(pinned);
        let n = usize::from(take(1)?[0]);
        let mut chain = Vec::new();
        for _ in 0..n {
            let len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
            chain.push(Bytes::copy_from_slice(take(len)?));
        }
        let len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        let bundle = take(len)?;
        // Absent from state written before trust updates were ordered: 0 accepts the next.
        self.trust_number = take(8).map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
        self.chain = (!chain.is_empty()).then_some(chain);
        self.bundle = TrustBundle::decode(bundle).ok();
        self.trust_revision += 1;
        Some(())
    }

    fn is_ca(&self) -> bool {
        self.ca.is_some()
    }

    fn ca_addr(&self) -> SocketAddr {
        self.cfg.peers[self.cfg.ca]
    }

    fn my_ip(&self) -> IpAddr {
        self.cfg.peers[self.cfg.me].ip()
    }

    /// Sends `message` to the CA: over the network, or straight in when this node is the CA.
    fn ask_ca(&mut self, env: &mut Cx<'_>, message: Message) {
        if matches!(message, Message::Enroll { .. } | Message::Renew { .. }) {
            self.awaiting_ca = true;
        }
        if self.ca.is_some() {
            let now = Self::now_s(env);
            let ip = self.my_ip();
            let (reply, event) = self.ca.as_mut().expect("checked").handle(env, ip, message, now);
            if let Some(e) = event {
                self.report_ca_event(env, e);
            }
            if let Some(reply) = reply {
                self.on_ca_message(env, reply);
            }
        } else {
            let _ = env.send_to(self.ca_addr(), message.encode());
        }
    }

    fn report_ca_event(&mut self, env: &mut Cx<'_>, event: CaEvent) {
        let probe = match event {
            CaEvent::Issued => Probe::new("tc_issued", 0, 1),
            CaEvent::Refused(code) => Probe::new("tc_ca_refused", 0, code),
            CaEvent::Rotated(n) => Probe::new("tc_rotation", 0, n as i64),
            CaEvent::Retired => Probe::new("tc_retired", 0, 1),
            CaEvent::Revoked(node) => Probe::new("tc_revoked", node as u64, 1),
        };
        env.probe(probe);
    }

    fn csr(&self) -> Option<Bytes> {
        let (who, key) = (self.identity.as_ref()?, self.key.as_ref()?);
        request(who, key).ok().map(Bytes::from)
    }

    fn enroll(&mut self, env: &mut Cx<'_>) {
        if self.chain.is_some() || self.revoked {
            return;
        }
        let Some(csr) = self.csr() else { return };
        self.ask_ca(
            env,
            Message::Enroll {
                token: self.cfg.token.clone(),
                csr,
            },
        );
        if self.chain.is_none() {
            // Capped exponential backoff with jitter: a late CA is found without a storm.
            let (first, cap) = self.cfg.enroll_backoff;
            let delay = first.saturating_mul(1u32 << self.enroll_attempt.min(16)).min(cap);
            self.enroll_attempt += 1;
            let gen = self.next_gen();
            let at = env.now() + Self::jittered(env, delay);
            env.set_timer(at, Timer::Enroll(gen));
            self.renew_gen = gen;
        }
    }

    fn renew(&mut self, env: &mut Cx<'_>) {
        if self.revoked {
            return;
        }
        let (Some(chain), Some(csr)) = (self.chain.clone(), self.csr()) else {
            return self.enroll(env);
        };
        self.ask_ca(env, Message::Renew { chain, csr });
        if self.awaiting_ca {
            // No answer yet: retry with backoff until one comes (a lost request or reply must
            // not leave the certificate to lapse).
            self.retry_later(env);
        }
    }

    /// After a restart: fetch the current bundle, again and again with backoff, until our stored
    /// chain has been checked against it.
    fn fetch_until_verified(&mut self, env: &mut Cx<'_>) {
        if self.verified || self.chain.is_none() {
            return;
        }
        self.ask_ca(env, Message::FetchBundle);
        if !self.verified {
            let (first, cap) = self.cfg.enroll_backoff;
            let delay = first.saturating_mul(1u32 << self.enroll_attempt.min(16)).min(cap);
            self.enroll_attempt += 1;
            let at = env.now() + Self::jittered(env, delay);
            env.set_timer(at, Timer::Fetch);
        }
    }

    fn retry_later(&mut self, env: &mut Cx<'_>) {
        let (first, cap) = self.cfg.enroll_backoff;
        let delay = first.saturating_mul(1u32 << self.enroll_attempt.min(16)).min(cap);
        self.enroll_attempt += 1;
        let gen = self.next_gen();
        self.renew_gen = gen;
        let at = env.now() + Self::jittered(env, delay);
        env.set_timer(at, Timer::Renew(gen));
    }

    fn schedule_renewal(&mut self, env: &mut Cx<'_>) {
        let Some(v) = self.chain.as_ref().and_then(|c| validity_of(&c[0])) else {
            return;
        };
        let life = (v.not_after - v.not_before) as f64;
        let due_s = v.not_before as f64 + life * self.cfg.renew_fraction.clamp(0.0, 1.0);
        let gen = self.next_gen();
        self.renew_gen = gen;
        env.set_timer(Self::at_wall(env, (due_s * 1000.0) as i64), Timer::Renew(gen));
    }

    fn crl_ders(&self) -> Vec<CertificateRevocationListDer<'_>> {
        self.crls
            .iter()
            .map(|c| CertificateRevocationListDer::from(c.as_ref()))
            .collect()
    }

    fn check_chain(&self, env: &Cx<'_>, chain: &[Bytes], peer_ip: Option<IpAddr>) -> Result<(), ValidationError> {
        let bundle = self.bundle.as_ref().ok_or(ValidationError::UnknownIssuer)?;
        let ders: Vec<CertificateDer<'_>> = chain.iter().map(|c| CertificateDer::from(c.as_ref())).collect();
        let expected = peer_ip.map_or(ExpectedPeer::Any, ExpectedPeer::Addr);
        bundle.validate(&ders, &self.crl_ders(), Self::now_s(env), &expected)
    }

    /// Installs a bundle and lists from the CA, if they keep the pinned root.
    fn install_trust(&mut self, env: &mut Cx<'_>, bundle: &[u8], crls: Vec<Bytes>, rollout: Option<Rollout>) -> bool {
        let Ok(bundle) = TrustBundle::decode(bundle) else {
            env.probe(Probe::new("tc_malformed", self.cfg.ca as u64, 1));
            return false;
        };
        let number = crls.iter().filter_map(|c| crl_number(c)).max().unwrap_or(0);
        if number < self.trust_number {
            // An older update than the one held: taking it could drop a revocation.
            env.probe(Probe::new(
                "tc_trust_stale",
                number,
                (self.trust_number - number) as i64,
            ));
            return false;
        }
        let now = Self::now_s(env);
        let roots = bundle.roots_at(now);
        match self.pinned_root {
            Some(pin) if !roots.iter().any(|r| fingerprint(r) == pin) => {
                env.probe(Probe::new("tc_bundle_refused", 0, 1));
                return false;
            }
            Some(_) => {}
            None => self.pinned_root = roots.first().map(|r| fingerprint(r)),
        }
        if self.bundle.as_ref() != Some(&bundle) {
            self.bundle = Some(bundle);
            self.trust_revision += 1;
        }
        if self.trust_number != number {
            self.trust_number = number;
            // Durable with the bundle, so a restarted node still refuses what is older.
            self.save(env);
        }
        if crls != self.crls {
            self.crls = crls;
            self.trust_revision += 1;
            let listed = self
                .crl_ders()
                .iter()
                .filter_map(|c| webpki::BorrowedCertRevocationList::from_der(c).ok())
                .map(|c| c.into_iter().count())
                .max()
                .unwrap_or(0);
            env.probe(Probe::new("tc_crl", 0, listed as i64));
        }
        if let Some(chain) = self.chain.clone() {
            match self.check_chain(env, &chain, None) {
                Err(ValidationError::Revoked) if !self.revoked => {
                    self.revoked = true;
                    env.probe(Probe::new("tc_self_revoked", 0, 1));
                }
                Ok(()) if !self.verified => self.verified = true,
                Err(e) if !self.verified && !self.awaiting_ca && self.pending.is_none() => {
                    // Stored before a restart and no longer accepted: renew before presenting
                    // anything (the CA still renews leaves of intermediates retired meanwhile),
                    // or, if it expired while we were down, enroll again with our token.
                    env.probe(Probe::new("tc_stale_on_restart", 0, 1 + class_index(&e)));
                    if matches!(e, ValidationError::Expired { .. }) {
                        self.chain = None;
                        self.enroll(env);
                    } else {
                        self.renew(env);
                    }
                }
                _ => {}
            }
        }
        if rollout != self.rollout {
            self.rollout = rollout;
            if let Some(r) = &self.rollout {
                let wave = self.cfg.me as u64 % u64::from(r.waves.max(1));
                let at = r.start_unix_ms + (wave * r.wave_interval_ms) as i64;
                env.set_timer(Self::at_wall(env, at), Timer::Rollout);
            }
        }
        true
    }

    fn issuer_of(chain: &[Bytes]) -> Option<Fingerprint> {
        chain.get(1).map(|c| fingerprint(c))
    }

    fn on_ca_message(&mut self, env: &mut Cx<'_>, message: Message) {
        match message {
            Message::Issued {
                chain,
                bundle,
                crls,
                rollout,
            } => {
                if !self.awaiting_ca {
                    return; // a duplicate, or an answer to a request already answered
                }
                self.enroll_attempt = 0;
                // Cancels the pending retry; adopting the chain schedules the next renewal.
                self.renew_gen = self.next_gen();
                // Still awaiting while the bundle goes in: the chain being replaced must not
                // trigger another renewal.
                let installed = self.install_trust(env, &bundle, crls, rollout);
                self.awaiting_ca = false;
                if !installed || chain.is_empty() {
                    return;
                }
                if let Err(e) = self.check_chain(env, &chain, Some(self.my_ip())) {
                    // Used anyway: it is all this node has, and its peers decide by their clocks.
                    env.probe(Probe::new("tc_own_invalid", 0, 1 + class_index(&e)));
                }
                let switching = self
                    .chain
                    .as_ref()
                    .is_some_and(|c| Self::issuer_of(c) != Self::issuer_of(&chain));
                if switching && self.cfg.verify_before_switch {
                    if self.pending.as_ref() != Some(&chain) {
                        self.refusers.clear();
                    }
                    self.pending = Some(chain);
                    self.start_trial(env);
                } else {
                    self.adopt(env, chain, switching);
                }
            }
            Message::Bundle { bundle, crls, rollout } => {
                self.install_trust(env, &bundle, crls, rollout);
            }
            Message::Refused { .. } => {
                self.awaiting_ca = false;
                env.probe(Probe::new("tc_refused", 0, 1));
            }
            _ => {}
        }
    }

    fn adopt(&mut self, env: &mut Cx<'_>, chain: Vec<Bytes>, switching: bool) {
        self.chain = Some(chain);
        self.verified = true;
        self.pending = None;
        self.refusers.clear();
        self.save(env);
        if switching {
            env.probe(Probe::new("tc_switched", 0, 1));
        }
        if !self.enrolled {
            self.enrolled = true;
            env.probe(Probe::new("tc_enrolled", 0, 1));
        }
        self.schedule_renewal(env);
    }

    fn others(&self) -> Vec<usize> {
        (0..self.cfg.peers.len()).filter(|i| *i != self.cfg.me).collect()
    }

    fn new_nonce(env: &mut Cx<'_>) -> u64 {
        env.next_u64()
    }

    /// Verify-before-switch: ask peers whether they accept the new chain before presenting it.
    fn start_trial(&mut self, env: &mut Cx<'_>) {
        let Some(pending) = self.pending.clone() else { return };
        let mut peers = self.others();
        runtime::shuffle(env, &mut peers);
        // Earlier refusers are asked first: the switch waits for their yes.
        peers.sort_by_key(|p| !self.refusers.contains(p));
        peers.truncate(self.cfg.verify_peers_max);
        if peers.is_empty() {
            return self.adopt(env, pending, true);
        }
        self.trial = Some(Trial {
            awaiting: peers.len(),
            ok: 0,
            refused: false,
        });
        for peer in peers {
            let nonce = Self::new_nonce(env);
            self.outstanding.insert(nonce, Outstanding { peer, trial: true });
            let hello = Message::Hello {
                nonce,
                chain: pending.clone(),
                trial: true,
            };
            let _ = env.send_to(self.cfg.peers[peer], hello.encode());
        }
        self.trial_gen = self.next_gen();
        let at = env.now() + self.cfg.handshake_timeout;
        env.set_timer(
            at,
            Timer::TrialEnd {
                gen: self.trial_gen,
                retry: false,
            },
        );
    }

    fn trial_answer(&mut self, env: &mut Cx<'_>, peer: usize, ok: bool) {
        let Some(t) = self.trial.as_mut() else { return };
        t.awaiting = t.awaiting.saturating_sub(1);
        if ok {
            t.ok += 1;
            self.refusers.remove(&peer);
        } else {
            t.refused = true;
            self.refusers.insert(peer);
        }
        if t.awaiting == 0 {
            self.finish_trial(env);
        }
    }

    /// The trial passes when no peer refused, every earlier refuser has since accepted, and most
    /// answered; otherwise the node keeps its current chain and tries again later.
    fn finish_trial(&mut self, env: &mut Cx<'_>) {
        let Some(t) = self.trial.take() else { return };
        let asked = t.ok + t.awaiting + usize::from(t.refused);
        if !t.refused && self.refusers.is_empty() && t.ok * 2 > asked.max(1) - 1 {
            if let Some(chain) = self.pending.take() {
                self.adopt(env, chain, true);
            }
        } else {
            let gen = self.next_gen();
            self.trial_gen = gen;
            let at = env.now() + self.cfg.trial_retry;
            env.set_timer(at, Timer::TrialEnd { gen, retry: true });
        }
    }

    fn handshake(&mut self, env: &mut Cx<'_>) {
        let at = env.now() + Self::jittered(env, self.cfg.handshake_interval);
        env.set_timer(at, Timer::Handshake);
        // A revoked node keeps presenting its certificate (a compromised one would): peers
        // refusing it is what revocation is for, and what the scenarios count.
        if self.outstanding.len() >= self.cfg.outstanding_max {
            return;
        }
        let (Some(chain), Some(_), true) = (self.chain.clone(), self.bundle.as_ref(), self.verified) else {
            return;
        };
        let others = self.others();
        if others.is_empty() {
            return;
        }
        let peer = others[env.below(others.len() as u64) as usize];
        let nonce = Self::new_nonce(env);
        self.outstanding.insert(nonce, Outstanding { peer, trial: false });
        let _ = env.send_to(
            self.cfg.peers[peer],
            Message::Hello {
                nonce,
                chain,
                trial: false,
            }
            .encode(),
        );
        let at = env.now() + self.cfg.handshake_timeout;
        env.set_timer(at, Timer::Timeout(nonce));
    }

    fn peer_index(&self, from: SocketAddr) -> Option<usize> {
        self.cfg.peers.iter().position(|p| *p == from)
    }

    fn on_hello(
        &mut self,
        env: &mut Cx<'_>,
        from: SocketAddr,
        peer: usize,
        nonce: u64,
        chain: Vec<Bytes>,
        trial: bool,
    ) {
        let reply = match (&self.chain, &self.bundle) {
            (Some(mine), Some(_)) if self.verified => match self.check_chain(env, &chain, Some(from.ip())) {
                Ok(()) => Message::HelloAck {
                    nonce,
                    chain: if trial { Vec::new() } else { mine.clone() },
                },
                Err(e) => {
                    if !trial {
                        env.probe(Probe::new("tc_refused_peer", peer as u64, 1 + class_index(&e)));
                    }
                    Message::HelloRefused {
                        nonce,
                        reason: class_index(&e) as u8,
                    }
                }
            },
            _ => Message::HelloRefused {
                nonce,
                reason: NOT_READY,
            },
        };
        let _ = env.send_to(from, reply.encode());
    }

    fn on_answer(&mut self, env: &mut Cx<'_>, from: SocketAddr, nonce: u64, result: Result<Vec<Bytes>, u8>) {
        let Some(o) = self.outstanding.remove(&nonce) else {
            return;
        };
        if self.cfg.peers[o.peer] != from {
            self.outstanding.insert(nonce, o);
            return;
        }
        if o.trial {
            let (ok, value) = match result {
                Ok(_) => (true, 0),
                Err(NOT_READY) => (true, 201),
                Err(class) => (false, 1 + i64::from(class)),
            };
            env.probe(Probe::new("tc_trial", o.peer as u64, value));
            return self.trial_answer(env, o.peer, ok);
        }
        let outcome = match result {
            Ok(chain) => match self.check_chain(env, &chain, Some(from.ip())) {
                Ok(()) => 0,
                Err(e) => 1 + class_index(&e),
            },
            Err(NOT_READY) => 201,
            Err(class) => 101 + i64::from(class),
        };
        env.probe(Probe::new("tc_handshake", o.peer as u64, outcome));
    }

    fn ca_tick(&mut self, env: &mut Cx<'_>) {
        let Some(ca) = self.ca.as_mut() else { return };
        let now = Self::now_s(env);
        let mut seed = [0u8; 32];
        env.fill_bytes(&mut seed);
        let events = ca.run_due(env, seed, now);
        let changed = !events.is_empty();
        for e in events {
            self.report_ca_event(env, e);
        }
        if changed {
            self.push_bundle(env);
        }
        self.schedule_ca(env);
    }

    fn push_bundle(&mut self, env: &mut Cx<'_>) {
        let now = Self::now_s(env);
        let Some(ca) = self.ca.as_mut() else { return };
        let Some(message) = ca.bundle_message(env, now) else {
            env.probe(Probe::new("tc_storage_error", 0, 4));
            return;
        };
        let push = ca.push_bundles();
        // The CA's own node takes it at once.
        self.on_ca_message(env, message.clone());
        if push {
            let datagram = message.encode();
            for peer in self.others() {
                let _ = env.send_to(self.cfg.peers[peer], datagram.clone());
            }
        }
    }

    fn schedule_ca(&mut self, env: &mut Cx<'_>) {
        let Some(due) = self.ca.as_mut().and_then(CaRole::next_due) else {
            return;
        };
        self.ca_gen += 1;
        env.set_timer(Self::at_wall(env, due * 1000), Timer::Ca(self.ca_gen));
    }
}

impl Protocol for TrustNode {
    type Timer = Timer;

    fn on_start(&mut self, env: &mut Cx<'_>) {
        self.start(env);
        self.publish(env);
    }

    fn on_message(&mut self, env: &mut Cx<'_>, from: SocketAddr, payload: Bytes) {
        self.message(env, from, payload);
        self.publish(env);
    }

    fn on_timer(&mut self, env: &mut Cx<'_>, timer: Timer) {
        self.timer(env, timer);
        self.publish(env);
    }
}

/// The protocol's callbacks; [`Protocol`]'s add the publication of what changed.
impl TrustNode {
    fn start(&mut self, env: &mut Cx<'_>) {
        let Some(IpAddr::V6(addr)) = self.cfg.peers.get(self.cfg.me).map(SocketAddr::ip) else {
            // TrustChain identities are IPv6 addresses: an IPv4-only node cannot enroll.
            env.probe(Probe::new("tc_no_ipv6", 0, 1));
            return;
        };
        self.identity = Some(NodeIdentity {
            name: format!("node-{}.mesh", self.cfg.me),
            addr,
        });
        match durable::load(env, NODE_STATE) {
            Ok(Some((seq, bytes))) => {
                self.seq = seq;
                if self.restore(&bytes).is_none() {
                    env.probe(Probe::new("tc_storage_error", 0, 2));
                }
            }
            Ok(None) => {
                env.fill_bytes(&mut self.key_seed);
                self.save(env);
            }
            Err(_) => {
                env.probe(Probe::new("tc_storage_error", 0, 1));
                env.fill_bytes(&mut self.key_seed);
            }
        }
        self.key = Some(key_from_seed(&self.key_seed));
        if let Some(cfg) = self.cfg.authority.clone() {
            let now = Self::now_s(env);
            let addrs = self
                .cfg
                .peers
                .iter()
                .map(|p| match p.ip() {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                })
                .collect();
            let mut seeds = [[0u8; 32]; 3];
            for s in &mut seeds {
                env.fill_bytes(s);
            }
            match CaRole::start(env, seeds, cfg, addrs, now) {
                Ok(ca) => self.ca = Some(ca),
                Err(e) => {
                    tracing::error!("CA cannot start: {e}");
                    env.probe(Probe::new("tc_storage_error", 0, 3));
                }
            }
            self.schedule_ca(env);
        }
        if self.chain.is_some() {
            self.enrolled = true;
            self.schedule_renewal(env);
            if self.is_ca() {
                let now = Self::now_s(env);
                match self.ca.as_mut().expect("checked").bundle_message(env, now) {
                    Some(message) => self.on_ca_message(env, message),
                    None => env.probe(Probe::new("tc_storage_error", 0, 4)),
                }
            } else {
                self.fetch_until_verified(env);
            }
        } else {
            self.enroll(env);
        }
        let first = self.cfg.handshake_interval.mul_f64(env.unit_f64());
        let at = env.now() + first;
        env.set_timer(at, Timer::Handshake);
        let refresh = env.now() + Self::jittered(env, self.cfg.bundle_refresh);
        env.set_timer(refresh, Timer::Refresh);
    }

    fn message(&mut self, env: &mut Cx<'_>, from: SocketAddr, payload: Bytes) {
        let message = match Message::decode(&payload) {
            Ok(m) => m,
            Err(_) => return env.probe(Probe::new("tc_malformed", 0, 1)),
        };
        let Some(peer) = self.peer_index(from) else { return };
        match message {
            Message::Enroll { .. } | Message::Renew { .. } | Message::FetchBundle => {
                let now = Self::now_s(env);
                let Some(ca) = self.ca.as_mut() else { return };
                let (reply, event) = ca.handle(env, from.ip(), message, now);
                if let Some(e) = event {
                    self.report_ca_event(env, e);
                }
                if let Some(reply) = reply {
                    let _ = env.send_to(from, reply.encode());
                }
            }
            Message::Issued { .. } | Message::Bundle { .. } | Message::Refused { .. } => {
                if peer == self.cfg.ca {
                    self.on_ca_message(env, message);
                }
            }
            Message::Hello { nonce, chain, trial } => self.on_hello(env, from, peer, nonce, chain, trial),
            Message::HelloAck { nonce, chain } => self.on_answer(env, from, nonce, Ok(chain)),
            Message::HelloRefused { nonce, reason } => self.on_answer(env, from, nonce, Err(reason)),
        }
    }

    fn timer(&mut self, env: &mut Cx<'_>, timer: Timer) {
        match timer {
            Timer::Handshake => self.handshake(env),
            Timer::Enroll(gen) if gen == self.renew_gen && self.chain.is_none() => self.enroll(env),
            Timer::Renew(gen) if gen == self.renew_gen => self.renew(env),
            Timer::Refresh => {
                if !self.is_ca() && self.chain.is_some() {
                    self.ask_ca(env, Message::FetchBundle);
                }
                let at = env.now() + Self::jittered(env, self.cfg.bundle_refresh);
                env.set_timer(at, Timer::Refresh);
            }
            Timer::Timeout(nonce) => {
                if let Some(o) = self.outstanding.remove(&nonce) {
                    if !o.trial {
                        env.probe(Probe::new("tc_handshake", o.peer as u64, 200));
                    }
                }
            }
            Timer::Rollout => {
                let target = self.rollout.as_ref().map(|r| r.issuer);
                let current = self.chain.as_deref().and_then(Self::issuer_of);
                if target.is_some() && target != current && self.pending.is_none() {
                    self.renew(env);
                }
            }
            Timer::TrialEnd { gen, retry } => {
                if gen != self.trial_gen {
                    return;
                }
                if retry {
                    self.start_trial(env);
                } else {
                    // Unanswered trial questions expire; forget their nonces.
                    self.outstanding.retain(|_, o| !o.trial);
                    self.finish_trial(env);
                }
            }
            Timer::Ca(gen) if gen == self.ca_gen => self.ca_tick(env),
            Timer::Fetch => self.fetch_until_verified(env),
            // A retry or duty superseded by a later generation.
            Timer::Enroll(_) | Timer::Renew(_) | Timer::Ca(_) => {}
        }
    }
}
