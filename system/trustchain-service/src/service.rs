//! The CA as a long-lived service: state in a `Storage`, every operation an operator or a client
//! can ask for, each persisted before it is answered.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv6Addr;
use std::time::Duration;

use pki_types::{CertificateDer, CertificateRevocationListDer};
use runtime::{Storage, StorageError};
use serde::Serialize;
use trustchain::ca::{
    check_node_name, csr_public_key, leaf_identity, serial_of, Authority, AuthorityRecord, CaPolicy, IssueError,
    NodeIdentity,
};
use trustchain::ct::{leaf_hash, CtError, CtLog, Hash, LogKey, ProofError, SignedTreeHead};
use trustchain::enroll::{Grant, TokenError, TokenKey, UsedTokens};
use trustchain::logged::{InclusionReceipt, LoggedAuthority, LoggedIssueError};
use trustchain::trust::{fingerprint, validity_of, TrustBundle};
use trustchain::validate::{ExpectedPeer, ValidationError};

use crate::state::{
    hex, unhex, unhex32, ActiveRotation, IssuedLeaf, Retired, RevokedIdentity, RevokedKey, SpentToken, Stored, FORMAT,
};

/// The state file (two slots, `ca.state.a` and `ca.state.b`: see [`trustchain::durable`]).
pub const STATE_FILE: &str = "ca.state";
/// The CT log.
pub const LOG_FILE: &str = "ct.log";
/// Spent join tokens remembered until they expire; beyond this, enrollment is refused until some
/// expire (a bound on state size, as [`UsedTokens::CAPACITY`] is for the in-mesh CA).
pub const SPENT_TOKENS_MAX: usize = UsedTokens::CAPACITY;
/// The name the CA's HTTPS server is certified for unless `ca init --server-name` chose another.
/// Clients verify the CA by it, so no token or approval ever grants it.
pub const SERVER_NAME_DEFAULT: &str = "trustchain.mesh";
/// Live leaves remembered for revocation by serial (what identity and key a serial was issued
/// to). Beyond it the soonest to expire is forgotten: revoking it then needs its certificate
/// (`trustchain revoke --cert`), which names both.
pub const ISSUED_LEAVES_MAX: usize = 65_536;
/// Renewals served per identity within one renewal window by default: a node renews once per
/// leaf lifetime, and again after a rotation or a lost answer.
pub const RENEWALS_PER_IDENTITY_MAX_DEFAULT: u32 = 8;

/// The service's limits on what clients may ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceLimits {
    /// At most this many renewals per identity (certified name) within `renewal_window`;
    /// more get HTTP 429. A stolen key cannot mint certificates faster than this.
    pub renewals_per_identity_max: u32,
    /// The window renewals are counted over.
    pub renewal_window: Duration,
}

impl ServiceLimits {
    /// [`RENEWALS_PER_IDENTITY_MAX_DEFAULT`] per leaf lifetime of `policy`.
    pub fn for_policy(policy: &CaPolicy) -> Self {
        ServiceLimits {
            renewals_per_identity_max: RENEWALS_PER_IDENTITY_MAX_DEFAULT,
            renewal_window: policy.leaf_lifetime,
        }
    }
}

impl Default for ServiceLimits {
    /// For the default policy's 24-hour leaves.
    fn default() -> Self {
        ServiceLimits::for_policy(&CaPolicy::default())
    }
}

/// What a revocation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Whether anything was not revoked before.
    pub newly_revoked: bool,
    /// Every serial revoked by it, hex: the one named and the other live leaves of the same
    /// identity or key.
    pub serials: Vec<String>,
    /// The identity revoked with it, if the CA knows whose certificate it was.
    pub identity: Option<NodeIdentity>,
    /// Whether its key was revoked with it.
    pub key_revoked: bool,
}

/// Revocation lists are re-signed once this fraction of their currency has passed, so a list a
/// client fetched stays current long after it would refresh.
const CRL_REFRESH_DIVISOR: u64 = 4;

/// Fresh secret seeds for a new CA (from OS entropy in production).
#[derive(Clone)]
pub struct ServiceSeeds {
    /// The root key.
    pub root: [u8; 32],
    /// The first intermediate's key.
    pub intermediate: [u8; 32],
    /// The CT log's signing key.
    pub log: [u8; 32],
    /// The join-token key.
    pub token: [u8; 32],
}

/// Why an operation on the service failed (not a refusal of a client: see [`IssueRefusal`]).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No CA in this storage.
    #[error("no CA here: create one with `trustchain ca init`")]
    NotInitialised,
    /// `init` on storage that already holds a CA.
    #[error("a CA already exists here; refusing to replace its keys (use another state directory)")]
    AlreadyInitialised,
    /// The state file does not decode.
    #[error("CA state file {STATE_FILE} is damaged ({0}); restore it from a backup")]
    Damaged(String),
    /// The storage failed.
    #[error("CA storage: {0}")]
    Storage(#[from] StorageError),
    /// The CT log failed.
    #[error("CT log {LOG_FILE}: {0}")]
    Log(#[from] CtError),
    /// The CA could not sign.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// A second rotation before the first one's overlap has ended.
    #[error("a rotation is in progress until {until} (Unix s): the previous intermediate is still in bundles; rotate again after that")]
    RotationInProgress {
        /// When its overlap ends.
        until: i64,
    },
    /// A rotation plan that would leave nodes behind.
    #[error("{0}")]
    BadPlan(String),
    /// A serial that is not one.
    #[error("{0:?} is not a certificate serial: give it in hex, as `openssl x509 -serial` prints it")]
    BadSerial(String),
    /// A name that cannot be granted.
    #[error("{0}")]
    BadName(String),
    /// A rotation without the root key, which this CA keeps offline.
    #[error("this CA keeps its root key offline (`ca init --root-key`): give its file with --root-key FILE to certify a new intermediate")]
    RootKeyOffline,
    /// The server name is chosen once, before anything is issued.
    #[error("the CA's server name is chosen at `ca init` (--server-name), before any token or certificate; this CA's is {0}")]
    ServerNameFixed(String),
}

/// Why a request for a certificate was refused.
#[derive(Debug, thiserror::Error)]
pub enum IssueRefusal {
    /// No credential at all.
    #[error("no enrollment credential: send a join token (from the operator's `trustchain token`), or to renew, the current certificate chain")]
    NoCredential,
    /// The join token is not acceptable.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// The chain presented for renewal does not validate.
    #[error("renewal refused, the presented chain is invalid: {0}")]
    Chain(ValidationError),
    /// The certificate, key or identity behind the request is revoked.
    #[error("{0}")]
    Revoked(String),
    /// Too many renewals for one identity.
    #[error("renewal refused: {name} already had {max} renewals within {window_s} s, the CA's limit per node; retry after {retry_at} (Unix s)")]
    RateLimited {
        /// The identity's name.
        name: String,
        /// The limit.
        max: u32,
        /// The window, s.
        window_s: u64,
        /// When the oldest counted renewal leaves the window, Unix s.
        retry_at: i64,
    },
    /// The CSR's key is not the one the credential is for.
    #[error("{0}")]
    KeyMismatch(&'static str),
    /// The CSR does not parse or its signature does not verify.
    #[error("{0}")]
    BadCsr(String),
    /// The CSR asks for names the credential does not grant.
    #[error("{0}")]
    NotGranted(String),
    /// The CA failed (storage, log): nothing was handed out.
    #[error("the CA could not issue: {0}")]
    Failed(String),
}

impl IssueRefusal {
    /// The HTTP status that fits: 400 for a request that cannot be read, 403 for a credential
    /// that does not entitle it, 500 for the CA's own failure.
    pub fn status(&self) -> u16 {
        match self {
            IssueRefusal::BadCsr(_) => 400,
            IssueRefusal::RateLimited { .. } => 429,
            IssueRefusal::Failed(_) => 500,
            _ => 403,
        }
    }

    /// A stable name for the refusal, for clients and JSON (`"refusal"`): `no_credential`,
    /// `token`, `chain`, `revoked`, `rate_limited`, `key_mismatch`, `bad_csr`, `not_granted` or
    /// `failed`.
    pub fn class(&self) -> &'static str {
        match self {
            IssueRefusal::NoCredential => "no_credential",
            IssueRefusal::Token(_) => "token",
            IssueRefusal::Chain(_) => "chain",
            IssueRefusal::Revoked(_) => "revoked",
            IssueRefusal::RateLimited { .. } => "rate_limited",
            IssueRefusal::KeyMismatch(_) => "key_mismatch",
            IssueRefusal::BadCsr(_) => "bad_csr",
            IssueRefusal::NotGranted(_) => "not_granted",
            IssueRefusal::Failed(_) => "failed",
        }
    }
}

/// What entitles a request to a certificate.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A join token: a certificate for the identity it grants, once.
    Token(String),
    /// The requester's current chain, leaf first: a renewal for the same identity and key.
    Renewal(Vec<CertificateDer<'static>>),
    /// The operator approved this CSR for this identity (the CLI; never over the network). The
    /// CA's reserved server name is not grantable this way either.
    Operator(NodeIdentity),
    /// The CA's own HTTPS server certificate: its reserved server name and this address (the
    /// server itself; never over the network).
    Server(Ipv6Addr),
}

/// A certificate handed out.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Leaf, then its intermediate.
    pub chain: Vec<CertificateDer<'static>>,
    /// Proof that the leaf is in the CT log.
    pub receipt: InclusionReceipt,
    /// Whom it names.
    pub identity: NodeIdentity,
    /// Its serial, big-endian.
    pub serial: Vec<u8>,
    /// Its `notAfter`, Unix s.
    pub not_after: i64,
}

/// What the CA says about a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether it is valid now, for the expected peer, not revoked (and logged, if required).
    pub valid: bool,
    /// The failure's class (`expired`, `not_yet_valid`, `unknown_issuer`, `revoked`,
    /// `name_mismatch`, `malformed`, `not_logged`, ...), if invalid.
    pub class: Option<&'static str>,
    /// What is wrong and what to do, if invalid.
    pub reason: Option<String>,
    /// The leaf's serial, hex, if it parses.
    pub serial: Option<String>,
    /// The leaf's node name, if it names one.
    pub name: Option<String>,
    /// The leaf's IPv6 address, if it names one.
    pub addr: Option<String>,
    /// The leaf's `notBefore`, Unix s.
    pub not_before: Option<i64>,
    /// The leaf's `notAfter`, Unix s.
    pub not_after: Option<i64>,
    /// The leaf's index in the CT log, if it is there.
    pub ct_index: Option<u64>,
    /// The time it was checked at (the CA's clock), Unix s.
    pub checked_at: i64,
}

/// How to rotate the intermediate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationPlan {
    /// How long bundles hold both intermediates. Zero is the abrupt switch the guide warns of.
    pub overlap: Duration,
    /// Gradual rollout in this many waves; 0 for none (nodes move at their next renewal).
    pub waves: u32,
    /// Time between waves.
    pub wave_interval: Duration,
    /// Nodes check a chain from the new issuer against peers' bundles before presenting it.
    pub verify_before_switch: bool,
}

impl Default for RotationPlan {
    /// The guide's fix: 1 h overlap, 6 waves 5 minutes apart, verify before switching.
    fn default() -> Self {
        RotationPlan {
            overlap: Duration::from_secs(3600),
            waves: 6,
            wave_interval: Duration::from_secs(300),
            verify_before_switch: true,
        }
    }
}

/// What a rotation did.
#[derive(Clone, Debug)]
pub struct RotationReport {
    /// The new issuing intermediate.
    pub new_intermediate: CertificateDer<'static>,
    /// The rotation as published in bundles (`None` if the overlap was zero).
    pub rotation: Option<ActiveRotation>,
}

/// The public half of a CA (what clients install), read without opening the log, so it can be
/// read while a server holds the CA.
#[derive(Clone, Debug)]
pub struct PublicMaterial {
    /// The trust bundle: root, issuing intermediate, and one in its overlap.
    pub bundle: TrustBundle,
    /// The root.
    pub root: CertificateDer<'static>,
    /// The intermediates in the bundle, oldest first.
    pub intermediates: Vec<CertificateDer<'static>>,
    /// The CT log's Ed25519 public key.
    pub log_public_key: [u8; 32],
    /// The rotation in progress.
    pub rotation: Option<ActiveRotation>,
}

impl PublicMaterial {
    /// Reads the CA's public material from `storage`.
    pub fn load(storage: &mut dyn Storage) -> Result<PublicMaterial, ServiceError> {
        let (_, stored) = load_state(storage)?;
        let authority = authority_of(&stored)?;
        let log_seed = unhex32(&stored.log_seed).ok_or_else(|| ServiceError::Damaged("log seed".into()))?;
        Ok(PublicMaterial {
            bundle: bundle_of(&authority, stored.rotation.as_ref()),
            root: authority.root().clone(),
            intermediates: authority.intermediates().cloned().collect(),
            log_public_key: LogKey::from_seed(&log_seed).public_key(),
            rotation: stored.rotation,
        })
    }
}

fn load_state(storage: &mut dyn Storage) -> Result<(u64, Stored), ServiceError> {
    let (seq, bytes) = trustchain::durable::load(storage, STATE_FILE)?.ok_or(ServiceError::NotInitialised)?;
    let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| ServiceError::Damaged(e.to_string()))?;
    if stored.format != FORMAT {
        return Err(ServiceError::Damaged(format!(
            "format {} is not {FORMAT}: written by another version",
            stored.format
        )));
    }
    Ok((seq, stored))
}

fn authority_of(stored: &Stored) -> Result<Authority, ServiceError> {
    let bytes = unhex(&stored.authority).ok_or_else(|| ServiceError::Damaged("authority record is not hex".into()))?;
    let record = AuthorityRecord::decode(&bytes).map_err(|e| ServiceError::Damaged(e.to_string()))?;
    Authority::from_record(&record).map_err(|e| ServiceError::Damaged(e.to_string()))
}

/// The bundle nodes should hold: root, issuing intermediate, and during a rotation's overlap the
/// previous one, retiring at the overlap's end.
fn bundle_of(authority: &Authority, rotation: Option<&ActiveRotation>) -> TrustBundle {
    let ints: Vec<&CertificateDer<'static>> = authority.intermediates().collect();
    let mut bundle = TrustBundle::new(authority.root().clone(), ints[0].clone());
    for i in &ints[1..] {
        bundle.add_issuer((*i).clone());
    }
    if let Some(r) = rotation {
        for old in &ints[..ints.len() - 1] {
            bundle.retire(&fingerprint(old), r.overlap_end);
        }
    }
    bundle
}

/// The CA service.
pub struct CaService {
    logged: LoggedAuthority,
    log_seed: [u8; 32],
    token_secret: [u8; 32],
    tokens: TokenKey,
    next_token_id: u64,
    /// Spent tokens by id: expiry and the key they enrolled.
    spent: BTreeMap<u64, (i64, Vec<u8>)>,
    retired: Vec<(CertificateDer<'static>, i64)>,
    rotation: Option<ActiveRotation>,
    /// Every logged certificate's leaf hash, for `require_logged` and proof lookups.
    leaf_index: BTreeMap<Hash, u64>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    crls_made_at: Option<i64>,
    seq: u64,
    server_name: String,
    /// Live leaves by serial.
    issued: BTreeMap<Vec<u8>, LiveLeaf>,
    /// Revoked keys and when.
    revoked_keys: BTreeMap<Vec<u8>, i64>,
    revoked_identities: Vec<RevokedIdentity>,
    limits: ServiceLimits,
    /// Renewal times per identity name (lower case) within the window; not persisted: a
    /// restart forgives at most one window's worth.
    renewals: BTreeMap<String, VecDeque<i64>>,
}

/// A leaf issued and not expired.
#[derive(Clone, Debug)]
struct LiveLeaf {
    identity: NodeIdentity,
    key: Vec<u8>,
    not_after: i64,
}

impl std::fmt::Debug for CaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaService")
            .field("logged", &self.logged)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

impl CaService {
    /// Creates a CA in empty `storage` at `now` (Unix s) with `policy`.
    pub fn init(
        storage: &mut dyn Storage,
        seeds: &ServiceSeeds,
        policy: CaPolicy,
        now: i64,
    ) -> Result<CaService, ServiceError> {
        let existing = storage.list()?;
        if existing
            .iter()
            .any(|f| f.starts_with(STATE_FILE) || f.starts_with(LOG_FILE))
        {
            return Err(ServiceError::AlreadyInitialised);
        }
        let limits = ServiceLimits::for_policy(&policy);
        let authority = Authority::create(&seeds.root, &seeds.intermediate, now, policy)?;
        let (log, _) = CtLog::open(storage, LOG_FILE)?;
        let mut service = CaService {
            logged: LoggedAuthority::new(authority, log, LogKey::from_seed(&seeds.log)),
            log_seed: seeds.log,
            token_secret: seeds.token,
            tokens: TokenKey::new(&seeds.token),
            next_token_id: 1,
            spent: BTreeMap::new(),
            retired: Vec::new(),
            rotation: None,
            leaf_index: BTreeMap::new(),
            crls: Vec::new(),
            crls_made_at: None,
            seq: 0,
            server_name: SERVER_NAME_DEFAULT.to_owned(),
            issued: BTreeMap::new(),
            revoked_keys: BTreeMap::new(),
            revoked_identities: Vec::new(),
            limits,
            renewals: BTreeMap::new(),
        };
        service.save(storage)?;
        Ok(service)
    }

    /// Opens the CA in `storage`, recovering its CT log (a torn last record is dropped: it was
    /// never acknowledged).
    pub fn open(storage: &mut dyn Storage) -> Result<CaService, ServiceError> {
        let (seq, stored) = load_state(storage)?;
        let mut authority = authority_of(&stored)?;
        let (log, recovery) = CtLog::open(storage, LOG_FILE)?;
        if recovery.truncated_bytes > 0 {
            tracing::warn!(bytes = recovery.truncated_bytes, "CT log: dropped a torn last record");
        }
        // Certificates logged after the last save used serials the record does not count.
        authority.skip_serials(log.size().saturating_sub(stored.log_size));
        let damaged = |what: &str| ServiceError::Damaged(what.to_owned());
        let log_seed = unhex32(&stored.log_seed).ok_or_else(|| damaged("log seed"))?;
        let token_secret = unhex32(&stored.token_secret).ok_or_else(|| damaged("token secret"))?;
        let spent = stored
            .spent_tokens
            .iter()
            .map(|t| Some((t.id, (t.expires, unhex(&t.key)?))))
            .collect::<Option<BTreeMap<_, _>>>()
            .ok_or_else(|| damaged("spent token key"))?;
        let retired = stored
            .retired
            .iter()
            .map(|r| Some((CertificateDer::from(unhex(&r.cert)?), r.at)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| damaged("retired intermediate"))?;
        let leaf_index = (0..log.size()).filter_map(|i| Some((log.tree().leaf(i)?, i))).collect();
        let issued = stored
            .issued
            .iter()
            .map(|l| {
                let leaf = LiveLeaf {
                    identity: NodeIdentity {
                        name: l.name.clone(),
                        addr: l.addr.parse().ok()?,
                    },
                    key: unhex(&l.key)?,
                    not_after: l.not_after,
                };
                Some((unhex(&l.serial)?, leaf))
            })
            .collect::<Option<BTreeMap<_, _>>>()
            .ok_or_else(|| damaged("issued leaf"))?;
        let revoked_keys = stored
            .revoked_keys
            .iter()
            .map(|k| Some((unhex(&k.key)?, k.at)))
            .collect::<Option<BTreeMap<_, _>>>()
            .ok_or_else(|| damaged("revoked key"))?;
        let limits = ServiceLimits::for_policy(authority.policy());
        Ok(CaService {
            logged: LoggedAuthority::new(authority, log, LogKey::from_seed(&log_seed)),
            log_seed,
            token_secret,
            tokens: TokenKey::new(&token_secret),
            next_token_id: stored.next_token_id,
            spent,
            retired,
            rotation: stored.rotation,
            leaf_index,
            crls: Vec::new(),
            crls_made_at: None,
            seq,
            server_name: stored.server_name,
            issued,
            revoked_keys,
            revoked_identities: stored.revoked_identities,
            limits,
            renewals: BTreeMap::new(),
        })
    }

    /// The limits on clients' requests (by default [`ServiceLimits::for_policy`]).
    pub fn limits(&self) -> &ServiceLimits {
        &self.limits
    }

    /// Replaces the limits on clients' requests.
    pub fn set_limits(&mut self, limits: ServiceLimits) {
        self.limits = limits;
    }

    /// This CA reopened from `storage` after a failure in the middle of an update (a panic):
    /// what is durable, with this one's limits and renewal counts (which only grow).
    pub fn reopened(self, storage: &mut dyn Storage) -> Result<CaService, ServiceError> {
        let mut fresh = CaService::open(storage)?;
        fresh.limits = self.limits;
        fresh.renewals = self.renewals;
        Ok(fresh)
    }

    /// The name the CA's own HTTPS server is certified for; never granted to a node.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Chooses the server name, before any token or certificate was issued (`ca init`).
    pub fn set_server_name(&mut self, storage: &mut dyn Storage, name: &str) -> Result<(), ServiceError> {
        if self.next_token_id != 1 || self.logged.log().size() != 0 {
            return Err(ServiceError::ServerNameFixed(self.server_name.clone()));
        }
        check_node_name(name).map_err(|e| ServiceError::BadName(format!("--server-name {name:?}: it {e}")))?;
        self.server_name = name.to_ascii_lowercase();
        self.save(storage)
    }

    /// Whether the root key is kept offline (in a file of its own, never in the state file).
    pub fn root_offline(&mut self) -> bool {
        self.authority().root_offline()
    }

    /// From now on the root key stays out of the state file; the caller has stored it elsewhere
    /// (`ca init --root-key`), and gives it back only for a rotation ([`Self::attach_root`]).
    pub fn keep_root_offline(&mut self, storage: &mut dyn Storage) -> Result<(), ServiceError> {
        self.authority().keep_root_offline();
        // The state file has two slots and a save replaces the older one: saving twice replaces
        // both, so the slot still holding the root key is gone too.
        self.save(storage)?;
        self.save(storage)
    }

    /// Attaches the offline root key from `seed` for the next rotation; refused unless it is
    /// this CA's root.
    pub fn attach_root(&mut self, seed: &[u8; 32]) -> Result<(), ServiceError> {
        Ok(self.authority().attach_root(seed)?)
    }

    fn authority(&mut self) -> &mut Authority {
        self.logged.authority()
    }

    /// Persists the state (synced) before anything depending on it is answered.
    fn save(&mut self, storage: &mut dyn Storage) -> Result<(), ServiceError> {
        let stored = Stored {
            format: FORMAT,
            authority: hex(&self.authority().record().encode()),
            log_seed: hex(&self.log_seed),
            token_secret: hex(&self.token_secret),
            next_token_id: self.next_token_id,
            spent_tokens: self
                .spent
                .iter()
                .map(|(id, (expires, key))| SpentToken {
                    id: *id,
                    expires: *expires,
                    key: hex(key),
                })
                .collect(),
            retired: self
                .retired
                .iter()
                .map(|(cert, at)| Retired {
                    cert: hex(cert),
                    at: *at,
                })
                .collect(),
            rotation: self.rotation.clone(),
            log_size: self.logged.log().size(),
            server_name: self.server_name.clone(),
            issued: self
                .issued
                .iter()
                .map(|(serial, l)| IssuedLeaf {
                    serial: hex(serial),
                    name: l.identity.name.clone(),
                    addr: l.identity.addr.to_string(),
                    key: hex(&l.key),
                    not_after: l.not_after,
                })
                .collect(),
            revoked_keys: self
                .revoked_keys
                .iter()
                .map(|(key, at)| RevokedKey { key: hex(key), at: *at })
                .collect(),
            revoked_identities: self.revoked_identities.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| ServiceError::Damaged(e.to_string()))?;
        self.seq += 1;
        trustchain::durable::save(storage, STATE_FILE, self.seq, &bytes)?;
        Ok(())
    }

    /// The CA's policy (lifetimes, back-dating).
    pub fn policy(&mut self) -> CaPolicy {
        self.authority().policy().clone()
    }

    /// The root certificate.
    pub fn root(&mut self) -> CertificateDer<'static> {
        self.authority().root().clone()
    }

    /// The intermediate that issues now.
    pub fn issuing(&mut self) -> CertificateDer<'static> {
        self.authority().intermediate().clone()
    }

    /// When the issuing intermediate was created, Unix s.
    pub fn rotated_at(&mut self) -> i64 {
        self.authority().rotated_at()
    }

    /// The rotation in progress, if any.
    pub fn rotation(&self) -> Option<&ActiveRotation> {
        self.rotation.as_ref()
    }

    /// The CT log's public key.
    pub fn log_public_key(&self) -> [u8; 32] {
        self.logged.log_public_key()
    }

    /// Certificates in the CT log.
    pub fn log_size(&self) -> u64 {
        self.logged.log().durable_size()
    }

    /// The trust bundle clients should hold now.
    pub fn bundle(&mut self) -> TrustBundle {
        let rotation = self.rotation.clone();
        bundle_of(self.authority(), rotation.as_ref())
    }

    /// Current revocation lists, one per intermediate held; re-signed when a quarter of their
    /// currency has passed or something changed.
    pub fn crls(
        &mut self,
        storage: &mut dyn Storage,
        now: i64,
    ) -> Result<Vec<CertificateRevocationListDer<'static>>, ServiceError> {
        let refresh = (self.authority().policy().crl_lifetime.as_secs() / CRL_REFRESH_DIVISOR) as i64;
        if self.crls_made_at.is_none_or(|t| now - t >= refresh || now < t) {
            self.crls = self.authority().revocation_lists(now)?;
            self.crls_made_at = Some(now);
            // The CRL number advanced: persist it so a restarted CA never reuses one.
            self.save(storage)?;
        }
        Ok(self.crls.clone())
    }

    /// A join token granting `identity` a certificate, usable once until `now + valid_for`.
    pub fn token(
        &mut self,
        storage: &mut dyn Storage,
        identity: NodeIdentity,
        valid_for: Duration,
        now: i64,
    ) -> Result<String, ServiceError> {
        self.grantable(&identity).map_err(ServiceError::BadName)?;
        let grant = Grant {
            identity,
            expires: now.saturating_add(i64::try_from(valid_for.as_secs()).unwrap_or(i64::MAX)),
            id: self.next_token_id,
        };
        self.next_token_id += 1;
        self.save(storage)?;
        Ok(self.tokens.issue(&grant))
    }

    /// Why `identity` cannot be granted, in words: a name that is not a node name, or the CA's
    /// reserved server name.
    fn grantable(&self, identity: &NodeIdentity) -> Result<(), String> {
        identity.check().map_err(|e| e.to_string())?;
        if identity.name.eq_ignore_ascii_case(&self.server_name) {
            return Err(format!(
                "{:?} is this CA's own server name, which clients trust to reach the CA: no node is ever granted it",
                identity.name
            ));
        }
        Ok(())
    }

    /// Refuses `key` if it was revoked.
    fn key_not_revoked(&self, key: &[u8], what: &str) -> Result<(), IssueRefusal> {
        match self.revoked_keys.get(key) {
            Some(at) => Err(IssueRefusal::Revoked(format!(
                "{what} refused: the key in this request was revoked at {at} (Unix s) with a certificate it held; make a new key and ask the operator for a new join token"
            ))),
            None => Ok(()),
        }
    }

    /// When `name`'s identity was revoked after the token `token_id` was issued, if it was.
    fn revoked_after_token(&self, name: &str, token_id: u64) -> Option<i64> {
        self.identity_revocations(name)
            .find(|r| token_id < r.tokens_before)
            .map(|r| r.at)
    }

    /// When `name`'s identity was revoked after its leaf at CT log index `index` was logged, if
    /// it was; a leaf missing from the log counts as logged before.
    fn revoked_after_leaf(&self, name: &str, index: Option<u64>) -> Option<i64> {
        self.identity_revocations(name)
            .find(|r| index.is_none_or(|i| i < r.log_before))
            .map(|r| r.at)
    }

    /// Whether the key `key` (raw, as leaves carry it) is revoked.
    pub fn key_revoked(&self, key: &[u8]) -> bool {
        self.revoked_keys.contains_key(key)
    }

    fn identity_revocations<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a RevokedIdentity> + 'a {
        self.revoked_identities
            .iter()
            .filter(move |r| r.name.eq_ignore_ascii_case(name))
    }

    /// Issues a certificate for the CSR `csr` (DER) if `credential` entitles it, logs it, and
    /// persists everything before returning it.
    pub fn issue(
        &mut self,
        storage: &mut dyn Storage,
        csr: &[u8],
        credential: &Credential,
        now: i64,
    ) -> Result<Issued, IssueRefusal> {
        let key = csr_public_key(csr).map_err(|e| IssueRefusal::BadCsr(e.to_string()))?;
        let mut spend = None;
        let mut renewal = false;
        let identity = match credential {
            Credential::Operator(identity) => {
                self.grantable(identity).map_err(IssueRefusal::NotGranted)?;
                identity.clone()
            }
            Credential::Server(addr) => NodeIdentity {
                name: self.server_name.clone(),
                addr: *addr,
            },
            Credential::Token(token) => {
                let grant = self.tokens.verify(token.trim(), now)?;
                // Tokens minted before names were checked may carry any name.
                self.grantable(&grant.identity).map_err(IssueRefusal::NotGranted)?;
                self.key_not_revoked(&key, "enrollment")?;
                if let Some(at) = self.revoked_after_token(&grant.identity.name, grant.id) {
                    return Err(IssueRefusal::Revoked(format!(
                        "enrollment refused: {} was revoked at {at} (Unix s), after this join token was issued; the operator must issue a new token to re-admit it",
                        grant.identity.name
                    )));
                }
                self.spent.retain(|_, (expires, _)| *expires >= now);
                match self.spent.get(&grant.id) {
                    // A retry whose answer was lost: the same key gets a certificate again.
                    Some((_, spent_key)) if *spent_key == key => {}
                    Some(_) => return Err(TokenError::Reused.into()),
                    None if self.spent.len() >= SPENT_TOKENS_MAX => {
                        return Err(TokenError::LedgerFull(SPENT_TOKENS_MAX).into())
                    }
                    None => spend = Some((grant.id, grant.expires)),
                }
                grant.identity
            }
            Credential::Renewal(chain) => {
                renewal = true;
                self.renewable(storage, chain, &key, now)?
            }
        };
        if renewal {
            self.renewal_allowed(&identity.name, now)?;
        }
        let (leaf, receipt) = self
            .logged
            .issue_from_csr(storage, csr, &identity, now)
            .map_err(|e| match e {
                LoggedIssueError::Issue(IssueError::BadCsr(m)) => IssueRefusal::BadCsr(m),
                LoggedIssueError::Issue(e @ (IssueError::NameNotGranted { .. } | IssueError::BadName { .. })) => {
                    IssueRefusal::NotGranted(e.to_string())
                }
                e => IssueRefusal::Failed(e.to_string()),
            })?;
        self.leaf_index.insert(leaf_hash(&leaf), receipt.index);
        if let Some((id, expires)) = spend {
            self.spent.insert(id, (expires, key.clone()));
        }
        let serial = serial_of(&leaf).unwrap_or_default();
        let not_after = validity_of(&leaf).map_or(0, |v| v.not_after);
        self.remember_leaf(&serial, &identity, key, not_after, now);
        if renewal {
            self.renewals
                .entry(identity.name.to_ascii_lowercase())
                .or_default()
                .push_back(now);
        }
        // Not persisted: not handed out (a restarted CA would not know it was spent).
        self.save(storage).map_err(|e| IssueRefusal::Failed(e.to_string()))?;
        let chain = vec![leaf.clone(), self.issuing()];
        Ok(Issued {
            serial,
            not_after,
            chain,
            receipt,
            identity,
        })
    }

    /// Remembers a leaf issued until it expires, forgetting expired ones (and, at
    /// [`ISSUED_LEAVES_MAX`], the soonest to expire).
    fn remember_leaf(&mut self, serial: &[u8], identity: &NodeIdentity, key: Vec<u8>, not_after: i64, now: i64) {
        self.issued.retain(|_, l| l.not_after >= now);
        while self.issued.len() >= ISSUED_LEAVES_MAX {
            let soonest = self
                .issued
                .iter()
                .min_by_key(|(_, l)| l.not_after)
                .map(|(s, _)| s.clone())
                .expect("the ledger is not empty");
            self.issued.remove(&soonest);
            tracing::warn!(
                limit = ISSUED_LEAVES_MAX,
                "issued-leaf ledger full: forgot the leaf soonest to expire; revoke it by its certificate"
            );
        }
        self.issued.insert(
            serial.to_vec(),
            LiveLeaf {
                identity: identity.clone(),
                key,
                not_after,
            },
        );
    }

    /// Refuses a renewal for `name` beyond [`ServiceLimits::renewals_per_identity_max`] within
    /// the window ending `now`.
    fn renewal_allowed(&mut self, name: &str, now: i64) -> Result<(), IssueRefusal> {
        let window = i64::try_from(self.limits.renewal_window.as_secs()).unwrap_or(i64::MAX);
        let max = self.limits.renewals_per_identity_max;
        // Forget identities whose renewals all left the window (bounds the map).
        self.renewals.retain(|_, times| {
            while times.front().is_some_and(|t| now.saturating_sub(*t) >= window) {
                times.pop_front();
            }
            !times.is_empty()
        });
        let times = self.renewals.get(&name.to_ascii_lowercase());
        match times {
            Some(times) if times.len() >= max as usize => Err(IssueRefusal::RateLimited {
                name: name.to_owned(),
                max,
                window_s: self.limits.renewal_window.as_secs(),
                retry_at: times.front().map_or(now, |t| t.saturating_add(window)),
            }),
            _ => Ok(()),
        }
    }

    /// The identity a renewal chain entitles to a new certificate for `key`.
    fn renewable(
        &mut self,
        storage: &mut dyn Storage,
        chain: &[CertificateDer<'static>],
        key: &[u8],
        now: i64,
    ) -> Result<NodeIdentity, IssueRefusal> {
        let revoked = |why: &str| {
            IssueRefusal::Revoked(format!(
                "renewal refused: {why}; the node must be re-admitted by the operator with a new join token (and a new key)"
            ))
        };
        let crls = self
            .crls(storage, now)
            .map_err(|e| IssueRefusal::Failed(e.to_string()))?;
        // What this CA issued and has not revoked, including leaves of intermediates retired from
        // bundles within a leaf lifetime (their holders were away through the overlap).
        let mut trusted = self.bundle();
        for (int, _) in &self.retired {
            trusted.add_issuer(int.clone());
        }
        trusted
            .validate(chain, &crls, now, &ExpectedPeer::Any)
            .map_err(|e| match e {
                ValidationError::Revoked => revoked("the presented certificate is revoked"),
                e => IssueRefusal::Chain(e),
            })?;
        let leaf = &chain[0];
        let serial = serial_of(leaf).unwrap_or_default();
        if self.authority().revoked().any(|s| s == serial.as_slice()) {
            return Err(revoked("the presented certificate is revoked"));
        }
        let (identity, leaf_key) = leaf_identity(leaf).ok_or(IssueRefusal::KeyMismatch(
            "renewal refused: the certificate names no node (a DNS and an IPv6 name)",
        ))?;
        if leaf_key != key {
            return Err(IssueRefusal::KeyMismatch(
                "renewal refused: the CSR is for another key than the certificate; renewal keeps the key (enroll with a join token for a new one)",
            ));
        }
        self.key_not_revoked(key, "renewal")?;
        let index = self.leaf_index.get(&leaf_hash(leaf)).copied();
        if let Some(at) = self.revoked_after_leaf(&identity.name, index) {
            return Err(revoked(&format!(
                "{} was revoked at {at} (Unix s), after this certificate was issued",
                identity.name
            )));
        }
        if identity.name.eq_ignore_ascii_case(&self.server_name) {
            return Err(IssueRefusal::NotGranted(
                "renewal refused: that is the CA's own server certificate, which only the CA renews".into(),
            ));
        }
        Ok(identity)
    }

    /// Validates `chain` (leaf first) at `now` against the current bundle and revocation lists,
    /// for `expected`; with `require_logged`, the leaf must also be in this CA's CT log.
    pub fn validate(
        &mut self,
        storage: &mut dyn Storage,
        chain: &[CertificateDer<'static>],
        expected: &ExpectedPeer,
        require_logged: bool,
        now: i64,
    ) -> Result<Verdict, ServiceError> {
        let crls = self.crls(storage, now)?;
        let leaf = chain.first();
        let identity = leaf.and_then(|l| leaf_identity(l)).map(|(id, _)| id);
        let validity = leaf.and_then(|l| validity_of(l));
        let ct_index = leaf.and_then(|l| self.leaf_index.get(&leaf_hash(l)).copied());
        let mut verdict = Verdict {
            valid: true,
            class: None,
            reason: None,
            serial: leaf.and_then(|l| serial_of(l)).map(|s| hex(&s)),
            name: identity.as_ref().map(|i| i.name.clone()),
            addr: identity.as_ref().map(|i| i.addr.to_string()),
            not_before: validity.map(|v| v.not_before),
            not_after: validity.map(|v| v.not_after),
            ct_index,
            checked_at: now,
        };
        let failure = match self.bundle().validate(chain, &crls, now, expected) {
            Err(e) => Some((e.class(), e.to_string())),
            Ok(()) if require_logged && ct_index.is_none() => Some((
                "not_logged",
                "certificate is not in this CA's certificate-transparency log: it was not issued through the log, so treat it as a mis-issuance".to_owned(),
            )),
            Ok(()) => None,
        };
        if let Some((class, reason)) = failure {
            verdict.valid = false;
            verdict.class = Some(class);
            verdict.reason = Some(reason);
        }
        Ok(verdict)
    }

    /// Creates a new issuing intermediate from `seed` per `plan`. The previous one stays in
    /// bundles until the overlap ends ([`Self::maintain`] retires it), at once if it is zero.
    pub fn rotate(
        &mut self,
        storage: &mut dyn Storage,
        seed: &[u8; 32],
        plan: &RotationPlan,
        now: i64,
    ) -> Result<RotationReport, ServiceError> {
        self.maintain(storage, now)?;
        if let Some(r) = &self.rotation {
            return Err(ServiceError::RotationInProgress { until: r.overlap_end });
        }
        let overlap = plan.overlap.as_secs();
        let rollout_end = plan.wave_interval.as_secs().saturating_mul(u64::from(plan.waves));
        if plan.waves > 0 && rollout_end >= overlap {
            return Err(ServiceError::BadPlan(format!(
                "a rollout of {} waves {} s apart ends {rollout_end} s after the rotation, not before the {overlap} s overlap does: nodes of the last waves would still present the old intermediate after it leaves bundles; lengthen --overlap-period or use fewer waves",
                plan.waves,
                plan.wave_interval.as_secs()
            )));
        }
        if plan.verify_before_switch && overlap == 0 {
            return Err(ServiceError::BadPlan(
                "verify-before-switch needs an overlap: with none, peers never hold the new intermediate before nodes switch".into(),
            ));
        }
        let new = match self.authority().rotate(seed, now) {
            Err(IssueError::RootKeyOffline) => return Err(ServiceError::RootKeyOffline),
            other => other?,
        };
        if self.authority().root_offline() {
            // Attached for this rotation only: out of memory again before anything else runs.
            self.authority().keep_root_offline();
        }
        if overlap == 0 {
            self.retire_previous(now);
        } else {
            self.rotation = Some(ActiveRotation {
                started: now,
                overlap_end: now.saturating_add(overlap as i64),
                new_issuer: hex(&fingerprint(&new)),
                waves: plan.waves,
                wave_interval_s: plan.wave_interval.as_secs(),
                verify_before_switch: plan.verify_before_switch,
            });
        }
        self.crls_made_at = None;
        self.save(storage)?;
        Ok(RotationReport {
            new_intermediate: new,
            rotation: self.rotation.clone(),
        })
    }

    fn retire_previous(&mut self, now: i64) {
        let gone = self.authority().retire_previous();
        self.retired.extend(gone.into_iter().map(|c| (c, now)));
    }

    /// Does what is due at `now`: retires the previous intermediate when a rotation's overlap
    /// has ended, and forgets retired ones older than a leaf lifetime. Returns whether anything
    /// changed.
    pub fn maintain(&mut self, storage: &mut dyn Storage, now: i64) -> Result<bool, ServiceError> {
        let mut changed = false;
        if self.rotation.as_ref().is_some_and(|r| now >= r.overlap_end) {
            self.retire_previous(now);
            self.rotation = None;
            changed = true;
        }
        let keep = self.authority().policy().leaf_lifetime.as_secs() as i64;
        let before = self.retired.len();
        self.retired.retain(|(_, at)| now - at <= keep);
        changed |= self.retired.len() != before;
        if changed {
            self.crls_made_at = None;
            self.save(storage)?;
        }
        Ok(changed)
    }

    /// Revokes the certificate with `serial` (hex, colons allowed) at `now`, and, if this CA
    /// knows whose it was (a leaf it issued that has not expired), its identity and key too (see
    /// [`Self::revoke_certificate`]).
    pub fn revoke(&mut self, storage: &mut dyn Storage, serial: &str, now: i64) -> Result<Revocation, ServiceError> {
        let digits: String = serial.trim().chars().filter(|c| *c != ':').collect();
        let bytes = unhex(&digits)
            .filter(|b| !b.is_empty() && b.len() <= 20)
            .ok_or_else(|| ServiceError::BadSerial(serial.to_owned()))?;
        // openssl prints serials without a leading zero byte; certificates keep the DER form.
        let bytes = match bytes.iter().position(|b| *b != 0) {
            Some(first) => bytes[first..].to_vec(),
            None => return Err(ServiceError::BadSerial(serial.to_owned())),
        };
        let holder = self.issued.get(&bytes).map(|l| (l.identity.clone(), l.key.clone()));
        self.revoke_all(storage, Some(&bytes), holder, now)
    }

    /// Revokes a node by who it is rather than by a certificate: its identity (as
    /// [`CaService::revoke_certificate`] does), its key `key` (the raw public key its leaves
    /// carry) and every live leaf of either. Used when consensus isolated the node: what the CA
    /// is shown names the validator and its key, not a serial.
    pub fn revoke_holder(
        &mut self,
        storage: &mut dyn Storage,
        identity: NodeIdentity,
        key: Vec<u8>,
        now: i64,
    ) -> Result<Revocation, ServiceError> {
        self.revoke_all(storage, None, Some((identity, key)), now)
    }

    /// Revokes the leaf `cert` (DER) at `now`: its serial, its identity (the certified name: tokens
    /// issued for it so far and its leaves logged so far buy nothing more; a token issued later
    /// re-admits it) and its key (refused for ever), and puts every live leaf of that identity or
    /// key on the revocation lists, including leaves renewed from it.
    pub fn revoke_certificate(
        &mut self,
        storage: &mut dyn Storage,
        cert: &[u8],
        now: i64,
    ) -> Result<Revocation, ServiceError> {
        let serial = serial_of(cert).ok_or_else(|| ServiceError::BadSerial("(unparseable certificate)".into()))?;
        let holder = leaf_identity(cert);
        self.revoke_all(storage, Some(&serial), holder, now)
    }

    fn revoke_all(
        &mut self,
        storage: &mut dyn Storage,
        serial: Option<&[u8]>,
        holder: Option<(NodeIdentity, Vec<u8>)>,
        now: i64,
    ) -> Result<Revocation, ServiceError> {
        let mut serials: Vec<Vec<u8>> = serial.iter().map(|s| s.to_vec()).collect();
        let mut newly = false;
        if let Some((identity, key)) = &holder {
            if !self.revoked_keys.contains_key(key) {
                self.revoked_keys.insert(key.clone(), now);
                newly = true;
            }
            let tokens_before = self.next_token_id;
            let log_before = self.logged.log().size();
            let covered = self.revoked_identities.iter().any(|r| {
                r.name.eq_ignore_ascii_case(&identity.name)
                    && r.tokens_before >= tokens_before
                    && r.log_before >= log_before
            });
            if !covered {
                self.revoked_identities.push(RevokedIdentity {
                    name: identity.name.clone(),
                    at: now,
                    tokens_before,
                    log_before,
                });
                newly = true;
            }
            serials.extend(
                self.issued
                    .iter()
                    .filter(|(s, l)| {
                        Some(s.as_slice()) != serial
                            && l.not_after >= now
                            && (l.key == *key || l.identity.name.eq_ignore_ascii_case(&identity.name))
                    })
                    .map(|(s, _)| s.clone()),
            );
        }
        for s in &serials {
            if !self.authority().revoked().any(|r| r == s.as_slice()) {
                self.authority().revoke(s, now);
                newly = true;
            }
        }
        if newly {
            self.crls_made_at = None;
            self.save(storage)?;
        }
        Ok(Revocation {
            newly_revoked: newly,
            serials: serials.iter().map(|s| hex(s)).collect(),
            key_revoked: holder.is_some(),
            identity: holder.map(|(identity, _)| identity),
        })
    }

    /// A signed head of the CT log at `now`.
    pub fn tree_head(&self, now: i64) -> Result<SignedTreeHead, ServiceError> {
        Ok(self.logged.tree_head(now)?)
    }

    /// The audit path of entry `index` in the tree of the first `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.within_log(size)?;
        self.logged.log().tree().inclusion_proof(index, size)
    }

    /// The index of the certificate whose leaf hash is `hash`, if logged.
    pub fn index_of(&self, hash: &Hash) -> Option<u64> {
        self.leaf_index.get(hash).copied()
    }

    /// The consistency proof between the trees of the first `first` and `second` entries.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        self.within_log(second)?;
        self.logged.log().tree().consistency_proof(first, second)
    }

    /// Proofs are given only for durable (signed-for) sizes.
    fn within_log(&self, size: u64) -> Result<(), ProofError> {
        let durable = self.log_size();
        if size > durable {
            return Err(ProofError::SizeBeyondLog {
                asked: size,
                have: durable,
            });
        }
        Ok(())
    }
}
