//! The certificate authority: a self-signed root, an intermediate it signs, and 24-hour leaf
//! certificates for nodes, issued from the node's public key or from a CSR whose signature is
//! checked.
//!
//! Keys are Ed25519, for the same reasons as the CT log's: signatures are deterministic (a
//! simulated run repeats bit for bit; ECDSA draws a fresh nonce from the OS per signature), keys
//! derive from a 32-byte seed (from the simulation seed in simulations, from OS entropy in
//! production), and signing takes microseconds. TLS 1.3 (rustls), webpki and OpenSSL all accept
//! Ed25519 certificates.
//!
//! Time comes from the caller, i.e. from the node's own wall clock through the runtime seam, so
//! simulated clock skew reaches validity windows. A leaf's `notBefore` is back-dated by
//! [`CaPolicy::backdate`] so that a peer whose clock runs somewhat behind still accepts it.

use std::net::Ipv6Addr;
use std::time::Duration;

use pki_types::CertificateRevocationListDer;
use pki_types::{CertificateDer, CertificateSigningRequestDer, PrivatePkcs8KeyDer};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertificateSigningRequestParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PublicKeyData, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use ring::digest::{digest, SHA256};
use time::OffsetDateTime;

/// Lifetimes and allowances; every one named, none hidden in code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaPolicy {
    /// Root certificate lifetime.
    pub root_lifetime: Duration,
    /// Intermediate (issuing CA) lifetime; rotation replaces it well before it ends.
    pub intermediate_lifetime: Duration,
    /// Leaf lifetime: 24 h, the guide's security requirement.
    pub leaf_lifetime: Duration,
    /// How far `notBefore` is set before the issuing time, for peers whose clocks lag.
    pub backdate: Duration,
    /// How long a revocation list is current (its `nextUpdate`); validators refuse a staler one,
    /// so revocations cannot be hidden by withholding new lists.
    pub crl_lifetime: Duration,
}

impl Default for CaPolicy {
    fn default() -> Self {
        CaPolicy {
            root_lifetime: Duration::from_secs(10 * 365 * 86_400),
            intermediate_lifetime: Duration::from_secs(30 * 86_400),
            leaf_lifetime: Duration::from_secs(86_400),
            backdate: Duration::from_secs(5 * 60),
            crl_lifetime: Duration::from_secs(86_400),
        }
    }
}

/// Why issuance failed.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The CSR does not parse, or its signature does not verify with the key it carries.
    #[error("certificate signing request refused: {0}")]
    BadCsr(String),
    /// The CSR asks for a name the enrollment does not grant.
    #[error("the CSR asks for {requested}, but the enrollment grants only {granted}")]
    NameNotGranted {
        /// What was asked for.
        requested: String,
        /// What the enrollment allows.
        granted: String,
    },
    /// A name that cannot go in a certificate.
    #[error("invalid node name {name:?}: it {reason}; use a DNS name such as node-7.mesh")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// The root key is kept offline and was not given, so no intermediate can be certified.
    #[error("this CA keeps its root key offline: give the root key file to certify a new intermediate")]
    RootKeyOffline,
    /// The root key given is not this CA's.
    #[error("the root key given is not this CA's root key (its certificate does not match)")]
    WrongRootKey,
    /// Time outside what X.509 can encode.
    #[error("time {0} s since the epoch cannot be encoded in a certificate")]
    BadTime(i64),
    /// The certificate library failed (a bug, or an unsupported key).
    #[error("certificate encoding failed: {0}")]
    Encoding(#[from] rcgen::Error),
}

/// An Ed25519 key pair from a 32-byte seed (the seed is the private key: keep it secret).
pub fn key_from_seed(seed: &[u8; 32]) -> KeyPair {
    // PKCS#8 v1 for Ed25519 (RFC 8410): a fixed 16-byte prefix, then the seed.
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der), &rcgen::PKCS_ED25519)
        .expect("any 32 bytes are an Ed25519 seed")
}

fn at(unix_s: i64) -> Result<OffsetDateTime, IssueError> {
    OffsetDateTime::from_unix_timestamp(unix_s).map_err(|_| IssueError::BadTime(unix_s))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "TrustChain");
    dn.push(DnType::CommonName, common);
    dn
}

/// The longest node name, in bytes: a DNS name's longest text form (RFC 1035's 255 octets on the
/// wire). Longer names are refused, never truncated.
pub const NODE_NAME_BYTES_MAX: usize = 253;
/// The longest label (the part between dots) of a DNS name, in bytes.
pub const DNS_LABEL_BYTES_MAX: usize = 63;

/// What makes a string unfit as a node's name. Each message completes "the name ...".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing given.
    #[error("is empty")]
    Empty,
    /// Over [`NODE_NAME_BYTES_MAX`].
    #[error("is {0} bytes long, over the {NODE_NAME_BYTES_MAX} bytes a DNS name may have")]
    TooLong(usize),
    /// A `*` anywhere: a certificate names one node, never a pattern of names.
    #[error("holds a wildcard (*): a node's certificate names exactly one node")]
    Wildcard,
    /// Two dots in a row, or a dot at either end.
    #[error("has an empty label (two dots in a row, or a dot at its start or end)")]
    EmptyLabel,
    /// A label over [`DNS_LABEL_BYTES_MAX`].
    #[error("has a label of {0} bytes, over the {DNS_LABEL_BYTES_MAX} a DNS label may have")]
    LabelTooLong(usize),
    /// A character outside letters, digits, `-` and `.`.
    #[error("holds {0:?}, which a DNS name cannot: use letters, digits, hyphens and dots")]
    BadCharacter(char),
    /// A label starting or ending with `-`.
    #[error("has the label {0:?}, which starts or ends with a hyphen")]
    Hyphen(String),
    /// An IP address where a name belongs (addresses go in their own field).
    #[error("is an IP address: give the node's address separately and a DNS name here")]
    IpAddress,
}

/// Checks that `name` can be a node's certified name: DNS syntax (labels of letters, digits and
/// inner hyphens, at most [`DNS_LABEL_BYTES_MAX`] bytes each), at most [`NODE_NAME_BYTES_MAX`]
/// bytes in all, no wildcard, not an IP address. Which names a CA reserves for itself is the CA's
/// business (`trustchain_service` refuses its server name).
pub fn check_node_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > NODE_NAME_BYTES_MAX {
        return Err(NameError::TooLong(name.len()));
    }
    if name.contains('*') {
        return Err(NameError::Wildcard);
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(NameError::IpAddress);
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(NameError::BadCharacter(c));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > DNS_LABEL_BYTES_MAX {
            return Err(NameError::LabelTooLong(label.len()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::Hyphen(label.to_owned()));
        }
    }
    Ok(())
}

/// A subject alternative name in words, for messages (`DNS name node-7.mesh`).
fn describe_san(san: &SanType) -> String {
    match san {
        SanType::DnsName(n) => format!("DNS name {}", n.as_str()),
        SanType::IpAddress(ip) => format!("IP address {ip}"),
        SanType::Rfc822Name(m) => format!("e-mail address {}", m.as_str()),
        SanType::URI(u) => format!("URI {}", u.as_str()),
        _ => "a name of a kind this CA never grants".to_owned(),
    }
}

/// A node identity a certificate may carry: its name and its IPv6 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// DNS-style node name, e.g. `node-7.mesh`.
    pub name: String,
    /// Its IPv6 address.
    pub addr: Ipv6Addr,
}

impl NodeIdentity {
    /// Checks the name ([`check_node_name`]).
    pub fn check(&self) -> Result<(), IssueError> {
        check_node_name(&self.name).map_err(|reason| IssueError::BadName {
            name: self.name.clone(),
            reason,
        })
    }

    fn sans(&self) -> Result<Vec<SanType>, IssueError> {
        self.check()?;
        let dns = self.name.clone().try_into().map_err(|_| IssueError::BadName {
            name: self.name.clone(),
            // Unreachable after `check` (ASCII only), and still an error rather than a panic.
            reason: NameError::BadCharacter('?'),
        })?;
        Ok(vec![SanType::DnsName(dns), SanType::IpAddress(self.addr.into())])
    }
}

/// One intermediate (issuing CA) and the leaves it has issued.
struct IssuingCa {
    seed: [u8; 32],
    created: i64,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    /// Distinguishes this intermediate's serials from any other's.
    serial_salt: [u8; 32],
    issued: u64,
}

/// The root and the intermediates that issue leaves: the newest issues, older ones are kept
/// (for their revocation lists) until their overlap ends and they are retired.
pub struct Authority {
    policy: CaPolicy,
    root_created: i64,
    root_der: CertificateDer<'static>,
    /// The root key's seed and signer; `None` while the key is offline and not attached.
    root: Option<([u8; 32], Issuer<'static, KeyPair>)>,
    /// The root key is kept outside the record ([`Authority::keep_root_offline`]): it is attached
    /// only to certify an intermediate, and [`Authority::record`] never holds it.
    root_offline: bool,
    /// Oldest first; the last one issues.
    issuing: Vec<IssuingCa>,
    /// Revoked serials with when they were revoked (Unix s), in revocation order.
    revoked: Vec<(Vec<u8>, i64)>,
    crl_number: u64,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("policy", &self.policy)
            .field("intermediates", &self.issuing.len())
            .field("issued", &self.issued())
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Creates a root from `root_seed` and an intermediate from `intermediate_seed`, both valid
    /// from `now_unix_s` (back-dated by the policy's allowance).
    pub fn create(
        root_seed: &[u8; 32],
        intermediate_seed: &[u8; 32],
        now_unix_s: i64,
        policy: CaPolicy,
    ) -> Result<Authority, IssueError> {
        let (root_der, root) = root_of(root_seed, now_unix_s, &policy)?;
        let mut authority = Authority {
            policy,
            root_created: now_unix_s,
            root_der,
            root: Some((*root_seed, root)),
            root_offline: false,
            issuing: Vec::new(),
            revoked: Vec::new(),
            crl_number: 0,
        };
        authority.rotate(intermediate_seed, now_unix_s)?;
        Ok(authority)
    }

    /// Creates a new intermediate from `seed`, signed by the root and valid from `now_unix_s`,
    /// and makes it the one that issues. The previous ones stay (their leaves remain valid and
    /// revocable) until [`Authority::retire`]. Returns the new intermediate.
    /// Needs the root key: [`IssueError::RootKeyOffline`] if it is kept offline and not
    /// attached ([`Authority::attach_root`]).
    pub fn rotate(&mut self, seed: &[u8; 32], now_unix_s: i64) -> Result<CertificateDer<'static>, IssueError> {
        let (_, root) = self.root.as_ref().ok_or(IssueError::RootKeyOffline)?;
        let (int, key) = intermediate_params(seed, now_unix_s, &self.policy)?;
        let der = int.signed_by(&key, root)?.der().clone();
        self.issuing
            .push(issuing_ca(seed, now_unix_s, der.clone(), int, key, 0));
        Ok(der)
    }

    /// From now on the root key stays out of [`Authority::record`] (its owner keeps it in a
    /// file of its own), and is dropped from memory; [`Authority::attach_root`] brings it back
    /// for a rotation.
    pub fn keep_root_offline(&mut self) {
        self.root_offline = true;
        self.root = None;
    }

    /// Whether the root key is kept offline.
    pub fn root_offline(&self) -> bool {
        self.root_offline
    }

    /// Attaches the root key from `seed`, refused unless it is this CA's root
    /// ([`IssueError::WrongRootKey`]). An offline root stays out of the record.
    pub fn attach_root(&mut self, seed: &[u8; 32]) -> Result<(), IssueError> {
        let (der, root) = root_of(seed, self.root_created, &self.policy)?;
        if der != self.root_der {
            return Err(IssueError::WrongRootKey);
        }
        self.root = Some((*seed, root));
        Ok(())
    }

    /// Advances the issuing intermediate's serial counter by `n` without issuing: after a crash
    /// between logging a certificate and persisting the record, the restarted CA skips the
    /// serials the log shows were used, so no serial is ever issued twice.
    pub fn skip_serials(&mut self, n: u64) {
        if let Some(ca) = self.issuing.last_mut() {
            ca.issued += n;
        }
    }

    /// When the root was created, Unix s.
    pub fn root_created(&self) -> i64 {
        self.root_created
    }

    /// When the issuing intermediate was created, Unix s.
    pub fn rotated_at(&self) -> i64 {
        self.current().created
    }

    /// Forgets every intermediate but the issuing one (the end of a rotation's overlap).
    /// Returns the retired intermediates.
    pub fn retire_previous(&mut self) -> Vec<CertificateDer<'static>> {
        let keep = self.issuing.len().saturating_sub(1);
        self.issuing.drain(..keep).map(|ca| ca.der).collect()
    }

    /// The root certificate (the trust anchor to distribute).
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root_der
    }

    /// The issuing intermediate certificate (sent alongside every leaf).
    pub fn intermediate(&self) -> &CertificateDer<'static> {
        &self.current().der
    }

    /// Every intermediate held, oldest first; the last one issues.
    pub fn intermediates(&self) -> impl Iterator<Item = &CertificateDer<'static>> {
        self.issuing.iter().map(|ca| &ca.der)
    }

    fn current(&self) -> &IssuingCa {
        self.issuing
            .last()
            .expect("an authority always holds an issuing intermediate")
    }

    /// The policy.
    pub fn policy(&self) -> &CaPolicy {
        &self.policy
    }

    /// Leaves issued so far.
    pub fn issued(&self) -> u64 {
        self.issuing.iter().map(|ca| ca.issued).sum()
    }

    fn leaf_params(&mut self, who: &NodeIdentity, now_unix_s: i64) -> Result<CertificateParams, IssueError> {
        let mut p = CertificateParams::default();
        p.distinguished_name = name(&who.name);
        p.subject_alt_names = who.sans()?;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        p.not_before = at(now_unix_s - secs(self.policy.backdate))?;
        p.not_after = at(now_unix_s + secs(self.policy.leaf_lifetime))?;
        let ca = self
            .issuing
            .last_mut()
            .expect("an authority always holds an issuing intermediate");
        ca.issued += 1;
        p.serial_number = Some(serial(&ca.serial_salt, ca.issued + 1));
        Ok(p)
    }

    /// Issues a leaf for `who` holding `public_key`, valid for the policy's lifetime from
    /// `now_unix_s`.
    pub fn issue(
        &mut self,
        who: &NodeIdentity,
        public_key: &impl PublicKeyData,
        now_unix_s: i64,
    ) -> Result<CertificateDer<'static>, IssueError> {
        let params = self.leaf_params(who, now_unix_s)?;
        Ok(params.signed_by(public_key, &self.current().issuer)?.der().clone())
    }

    /// Issues a leaf from a CSR: its signature must verify with the key it carries (proof that
    /// the requester holds the private key), and the names it asks for must be among those the
    /// enrollment grants (`granted`). The certificate carries exactly the granted identity and
    /// this CA's lifetime and usages, whatever else the CSR asked for.
    pub fn issue_from_csr(
        &mut self,
        csr: &[u8],
        granted: &NodeIdentity,
        now_unix_s: i64,
    ) -> Result<CertificateDer<'static>, IssueError> {
        let request = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr))
            .map_err(|e| IssueError::BadCsr(e.to_string()))?;
        let allowed = granted.sans()?;
        for san in &request.params.subject_alt_names {
            if !allowed.contains(san) {
                return Err(IssueError::NameNotGranted {
                    requested: describe_san(san),
                    granted: format!("DNS name {} and IP address {}", granted.name, granted.addr),
                });
            }
        }
        let params = self.leaf_params(granted, now_unix_s)?;
        Ok(params
            .signed_by(&request.public_key, &self.current().issuer)?
            .der()
            .clone())
    }
}

impl Authority {
    /// Revokes the certificate with serial `serial` (big-endian bytes, as in the certificate) at
    /// `now_unix_s`. Revoking twice is harmless.
    pub fn revoke(&mut self, serial: &[u8], now_unix_s: i64) {
        if !self.revoked.iter().any(|(s, _)| s == serial) {
            self.revoked.push((serial.to_vec(), now_unix_s));
        }
    }

    /// Serials revoked so far.
    pub fn revoked(&self) -> impl Iterator<Item = &[u8]> {
        self.revoked.iter().map(|(s, _)| s.as_slice())
    }

    /// A revocation list of everything revoked, signed by the issuing intermediate, current from
    /// `now_unix_s` for the policy's `crl_lifetime`. Each list gets the next CRL number.
    pub fn revocation_list(&mut self, now_unix_s: i64) -> Result<CertificateRevocationListDer<'static>, IssueError> {
        let last = self.issuing.len() - 1;
        self.crl_for(last, now_unix_s)
    }

    /// One revocation list per intermediate held (during a rotation's overlap, leaves of both
    /// are in use, and a list only covers its signer's leaves).
    pub fn revocation_lists(
        &mut self,
        now_unix_s: i64,
    ) -> Result<Vec<CertificateRevocationListDer<'static>>, IssueError> {
        (0..self.issuing.len()).map(|i| self.crl_for(i, now_unix_s)).collect()
    }

    fn crl_for(&mut self, index: usize, now_unix_s: i64) -> Result<CertificateRevocationListDer<'static>, IssueError> {
        self.crl_number += 1;
        let params = CertificateRevocationListParams {
            this_update: at(now_unix_s - secs(self.policy.backdate))?,
            next_update: at(now_unix_s + secs(self.policy.crl_lifetime))?,
            crl_number: SerialNumber::from(self.crl_number),
            issuing_distribution_point: None,
            revoked_certs: self
                .revoked
                .iter()
                .map(|(serial, when)| {
                    Ok(RevokedCertParams {
                        serial_number: SerialNumber::from_slice(serial),
                        revocation_time: at(*when)?,
                        reason_code: Some(RevocationReason::Unspecified),
                        invalidity_date: None,
                    })
                })
                .collect::<Result<_, IssueError>>()?,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuing[index].issuer)?.der().clone())
    }
}

/// The root certificate `seed` makes when created at `created` (deterministic), and its signer.
fn root_of(
    seed: &[u8; 32],
    created: i64,
    policy: &CaPolicy,
) -> Result<(CertificateDer<'static>, Issuer<'static, KeyPair>), IssueError> {
    let root_key = key_from_seed(seed);
    let mut root = CertificateParams::default();
    // Names carry a key fingerprint: two CAs never share a name, so a chain from another CA
    // reads as "unknown issuer" rather than as a signature failure.
    root.distinguished_name = name(&format!("TrustChain Root CA {}", fingerprint(&root_key)));
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = at(created - secs(policy.backdate))?;
    root.not_after = at(created + secs(policy.root_lifetime))?;
    root.serial_number = Some(serial(digest(&SHA256, seed).as_ref(), 0));
    let der = root.self_signed(&root_key)?.der().clone();
    Ok((der, Issuer::new(root, root_key)))
}

/// An intermediate's parameters and key from its seed and creation time (deterministic).
fn intermediate_params(
    seed: &[u8; 32],
    created: i64,
    policy: &CaPolicy,
) -> Result<(CertificateParams, KeyPair), IssueError> {
    let key = key_from_seed(seed);
    let mut int = CertificateParams::default();
    int.distinguished_name = name(&format!("TrustChain Intermediate CA {}", fingerprint(&key)));
    int.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    int.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    int.use_authority_key_identifier_extension = true;
    int.not_before = at(created - secs(policy.backdate))?;
    int.not_after = at(created + secs(policy.intermediate_lifetime))?;
    int.serial_number = Some(serial(digest(&SHA256, seed).as_ref(), 1));
    Ok((int, key))
}

fn issuing_ca(
    seed: &[u8; 32],
    created: i64,
    der: CertificateDer<'static>,
    params: CertificateParams,
    key: KeyPair,
    issued: u64,
) -> IssuingCa {
    IssuingCa {
        seed: *seed,
        created,
        serial_salt: digest(&SHA256, &der).as_ref().try_into().expect("32 bytes"),
        der,
        issuer: Issuer::new(params, key),
        issued,
    }
}

/// The root key in an [`AuthorityRecord`]: held, or kept offline, in which case the record holds
/// the certificates the root signed, since they cannot be signed again without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootKey {
    /// The root key's seed (secret).
    Held([u8; 32]),
    /// The key is elsewhere (an operator's file).
    Offline {
        /// The root certificate, DER.
        root: Vec<u8>,
        /// The intermediates' certificates, DER, in the record's order.
        intermediates: Vec<Vec<u8>>,
    },
}

/// Everything an [`Authority`] is made of: its keys' seeds (secret), creation times, counters and
/// revocations. Issuance is deterministic, so an authority rebuilt from its record issues and
/// signs exactly as the one that wrote it; persisting the record after every change is how a CA
/// survives restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityRecord {
    /// Lifetimes and allowances.
    pub policy: CaPolicy,
    /// The root key, or the certificates it signed if it is kept offline.
    pub root: RootKey,
    /// When the root was created, Unix s.
    pub root_created: i64,
    /// Intermediates held, oldest first: seed, creation time, leaves issued.
    pub intermediates: Vec<([u8; 32], i64, u64)>,
    /// Revoked serials and when.
    pub revoked: Vec<(Vec<u8>, i64)>,
    /// The last CRL number used.
    pub crl_number: u64,
}

/// Why a stored authority record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not a record, or one of another version.
    #[error("not a TrustChain authority record (bad magic or version)")]
    BadMagic,
    /// Cut short or with impossible lengths.
    #[error("authority record is truncated or corrupt at byte {0}")]
    Corrupt(usize),
    /// The record decodes but the authority cannot be rebuilt from it.
    #[error("authority record cannot be rebuilt: {0}")]
    Rebuild(#[from] IssueError),
}

/// A record whose root key is held (the in-mesh CA's, unchanged since the first version).
const RECORD_MAGIC: &[u8; 4] = b"TCA1";
/// A record whose root key is kept offline: certificates instead of the root's seed.
const RECORD_MAGIC_OFFLINE: &[u8; 4] = b"TCA2";
/// The most intermediates a record holds (a rotation adds one; an overlap's end retires all
/// but the newest).
const RECORD_INTERMEDIATES_MAX: u32 = 64;
/// The largest certificate a record holds, in bytes.
const RECORD_CERTIFICATE_BYTES_MAX: u32 = 16 * 1024;

impl AuthorityRecord {
    /// A compact, versioned binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let ders = match &self.root {
            RootKey::Held(_) => None,
            RootKey::Offline { intermediates, .. } => Some(intermediates),
        };
        let mut out = match &self.root {
            RootKey::Held(_) => RECORD_MAGIC.to_vec(),
            RootKey::Offline { .. } => RECORD_MAGIC_OFFLINE.to_vec(),
        };
        let p = &self.policy;
        for d in [
            p.root_lifetime,
            p.intermediate_lifetime,
            p.leaf_lifetime,
            p.backdate,
            p.crl_lifetime,
        ] {
            out.extend_from_slice(&d.as_secs().to_be_bytes());
        }
        let put_der = |out: &mut Vec<u8>, der: &[u8]| {
            out.extend_from_slice(&(der.len() as u32).to_be_bytes());
            out.extend_from_slice(der);
        };
        match &self.root {
            RootKey::Held(seed) => out.extend_from_slice(seed),
            RootKey::Offline { root, .. } => put_der(&mut out, root),
        }
        out.extend_from_slice(&self.root_created.to_be_bytes());
        out.extend_from_slice(&(self.intermediates.len() as u32).to_be_bytes());
        for (i, (seed, created, issued)) in self.intermediates.iter().enumerate() {
            out.extend_from_slice(seed);
            out.extend_from_slice(&created.to_be_bytes());
            out.extend_from_slice(&issued.to_be_bytes());
            if let Some(ders) = ders {
                put_der(&mut out, ders.get(i).map_or(&[][..], |d| d.as_slice()));
            }
        }
        out.extend_from_slice(&(self.revoked.len() as u32).to_be_bytes());
        for (serial, when) in &self.revoked {
            out.push(serial.len() as u8);
            out.extend_from_slice(serial);
            out.extend_from_slice(&when.to_be_bytes());
        }
        out.extend_from_slice(&self.crl_number.to_be_bytes());
        out
    }

    /// Reads what [`AuthorityRecord::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<AuthorityRecord, RecordError> {
        let offline = match bytes.get(..4) {
            Some(m) if m == RECORD_MAGIC => false,
            Some(m) if m == RECORD_MAGIC_OFFLINE => true,
            _ => return Err(RecordError::BadMagic),
        };
        let mut r = Reader { bytes, at: 4 };
        let mut d = || r.u64().map(Duration::from_secs);
        let policy = CaPolicy {
            root_lifetime: d()?,
            intermediate_lifetime: d()?,
            leaf_lifetime: d()?,
            backdate: d()?,
            crl_lifetime: d()?,
        };
        let root_seed = if offline { None } else { Some(r.seed()?) };
        let root_der = if offline { Some(r.der()?) } else { None };
        let root_created = r.i64()?;
        let n = r.u32()?;
        if n == 0 || n > RECORD_INTERMEDIATES_MAX {
            return Err(RecordError::Corrupt(r.at));
        }
        let mut intermediates = Vec::new();
        let mut ders = Vec::new();
        for _ in 0..n {
            intermediates.push((r.seed()?, r.i64()?, r.u64()?));
            if offline {
                ders.push(r.der()?);
            }
        }
        let root = match (root_seed, root_der) {
            (Some(seed), _) => RootKey::Held(seed),
            (None, Some(root)) => RootKey::Offline {
                root,
                intermediates: ders,
            },
            (None, None) => return Err(RecordError::Corrupt(4)),
        };
        let n = r.u32()?;
        let mut revoked = Vec::new();
        for _ in 0..n {
            let len = usize::from(r.take(1)?[0]);
            let serial = r.take(len)?.to_vec();
            revoked.push((serial, r.i64()?));
        }
        let crl_number = r.u64()?;
        if r.at != bytes.len() {
            return Err(RecordError::Corrupt(r.at));
        }
        Ok(AuthorityRecord {
            policy,
            root,
            root_created,
            intermediates,
            revoked,
            crl_number,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or(RecordError::Corrupt(self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(self.u64()? as i64)
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn seed(&mut self) -> Result<[u8; 32], RecordError> {
        Ok(self.take(32)?.try_into().expect("32 bytes"))
    }
    fn der(&mut self) -> Result<Vec<u8>, RecordError> {
        let at = self.at;
        let len = self.u32()?;
        if len == 0 || len > RECORD_CERTIFICATE_BYTES_MAX {
            return Err(RecordError::Corrupt(at));
        }
        Ok(self.take(len as usize)?.to_vec())
    }
}

impl Authority {
    /// The record to persist (holds the private keys' seeds: store it as a secret).
    pub fn record(&self) -> AuthorityRecord {
        let root = match &self.root {
            Some((seed, _)) if !self.root_offline => RootKey::Held(*seed),
            _ => RootKey::Offline {
                root: self.root_der.to_vec(),
                intermediates: self.issuing.iter().map(|ca| ca.der.to_vec()).collect(),
            },
        };
        AuthorityRecord {
            policy: self.policy.clone(),
            root,
            root_created: self.root_created,
            intermediates: self.issuing.iter().map(|ca| (ca.seed, ca.created, ca.issued)).collect(),
            revoked: self.revoked.clone(),
            crl_number: self.crl_number,
        }
    }

    /// Rebuilds the authority a record describes.
    pub fn from_record(record: &AuthorityRecord) -> Result<Authority, RecordError> {
        let root_seed = match &record.root {
            RootKey::Held(seed) => seed,
            RootKey::Offline { root, intermediates } => return Self::from_offline_record(record, root, intermediates),
        };
        let (first, rest) = record.intermediates.split_first().ok_or(RecordError::Corrupt(0))?;
        let mut a = Authority::create(root_seed, &first.0, record.root_created, record.policy.clone())?;
        // `create` stamps the first intermediate with the root's time; restore its own.
        a.issuing.clear();
        a.rotate(&first.0, first.1)?;
        for (seed, created, _) in rest {
            a.rotate(seed, *created)?;
        }
        for (ca, (_, _, issued)) in a.issuing.iter_mut().zip(&record.intermediates) {
            ca.issued = *issued;
        }
        a.revoked = record.revoked.clone();
        a.crl_number = record.crl_number;
        Ok(a)
    }

    /// Rebuilds an authority whose root key is offline: its certificates come from the record,
    /// its intermediates' signers from their seeds.
    fn from_offline_record(record: &AuthorityRecord, root: &[u8], ders: &[Vec<u8>]) -> Result<Authority, RecordError> {
        if ders.len() != record.intermediates.len() || record.intermediates.is_empty() {
            return Err(RecordError::Corrupt(0));
        }
        let issuing = record
            .intermediates
            .iter()
            .zip(ders)
            .map(|((seed, created, issued), der)| {
                let (params, key) = intermediate_params(seed, *created, &record.policy)?;
                Ok(issuing_ca(
                    seed,
                    *created,
                    CertificateDer::from(der.clone()),
                    params,
                    key,
                    *issued,
                ))
            })
            .collect::<Result<Vec<_>, IssueError>>()?;
        Ok(Authority {
            policy: record.policy.clone(),
            root_created: record.root_created,
            root_der: CertificateDer::from(root.to_vec()),
            root: None,
            root_offline: true,
            issuing,
            revoked: record.revoked.clone(),
            crl_number: record.crl_number,
        })
    }
}

/// The serial number of a DER certificate, as big-endian bytes.
pub fn serial_of(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    Some(parsed.raw_serial().to_vec())
}

/// The identity (DNS and IPv6 SANs) and raw public key a leaf carries, or `None` if it does not
/// parse or lacks either name.
pub fn leaf_identity(cert: &[u8]) -> Option<(NodeIdentity, Vec<u8>)> {
    use x509_parser::extensions::GeneralName;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let sans = parsed.subject_alternative_name().ok()??;
    let (mut name, mut addr) = (None, None);
    for san in &sans.value.general_names {
        match san {
            GeneralName::DNSName(n) => name = Some(n.to_string()),
            GeneralName::IPAddress(ip) if ip.len() == 16 => {
                addr = Some(Ipv6Addr::from(<[u8; 16]>::try_from(*ip).ok()?));
            }
            _ => {}
        }
    }
    let key = parsed.public_key().subject_public_key.data.to_vec();
    Some((
        NodeIdentity {
            name: name?,
            addr: addr?,
        },
        key,
    ))
}

/// The raw public key a CSR carries, once its signature is checked.
pub fn csr_public_key(csr: &[u8]) -> Result<Vec<u8>, IssueError> {
    let request = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr))
        .map_err(|e| IssueError::BadCsr(e.to_string()))?;
    Ok(request.public_key.der_bytes().to_vec())
}

/// The first 8 bytes of SHA-256 of the public key, in hex.
fn fingerprint(key: &KeyPair) -> String {
    digest(&SHA256, key.public_key_raw()).as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A positive 16-byte serial: SHA-256 of the issuer's salt and a counter, so serials are unique
/// per issuer and never repeat across intermediates.
fn serial(salt: &[u8], counter: u64) -> SerialNumber {
    let mut input = salt.to_vec();
    input.extend_from_slice(&counter.to_be_bytes());
    let mut bytes = digest(&SHA256, &input).as_ref()[..16].to_vec();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // no leading zero byte: DER integers must be minimal
    SerialNumber::from_slice(&bytes)
}

/// A CSR for `who`, signed with `key` (what a node sends to enroll).
pub fn request(who: &NodeIdentity, key: &KeyPair) -> Result<Vec<u8>, IssueError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(&who.name);
    p.subject_alt_names = who.sans()?;
    Ok(p.serialize_request(key)?.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;

    #[test]
    fn an_authority_rebuilt_from_its_record_continues_exactly_where_it_stopped() {
        let who = NodeIdentity {
            name: "node-1.mesh".into(),
            addr: "fd00::1".parse().unwrap(),
        };
        let key = key_from_seed(&[9; 32]);
        let mut ca = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).unwrap();
        let first = ca.issue(&who, &key, NOW).unwrap();
        ca.rotate(&[3; 32], NOW + 86_400).unwrap();
        ca.issue(&who, &key, NOW + 86_400).unwrap();
        ca.revoke(&serial_of(&first).unwrap(), NOW + 86_401);
        ca.revocation_list(NOW + 86_402).unwrap();
        let bytes = ca.record().encode();
        let record = AuthorityRecord::decode(&bytes).unwrap();
        assert_eq!(record, ca.record());
        let mut back = Authority::from_record(&record).unwrap();
        assert_eq!(back.root(), ca.root());
        assert_eq!(
            back.intermediates().collect::<Vec<_>>(),
            ca.intermediates().collect::<Vec<_>>()
        );
        assert_eq!(back.issued(), 2);
        // Same next serial, same signature: nothing issued twice, nothing lost.
        let t = NOW + 90_000;
        assert_eq!(back.issue(&who, &key, t).unwrap(), ca.issue(&who, &key, t).unwrap());
        assert_eq!(back.revocation_lists(t).unwrap(), ca.revocation_lists(t).unwrap());
        // What a leaf says about its holder, and the key a CSR carries, agree.
        let (id, pk) = leaf_identity(&first).unwrap();
        assert_eq!(id, who);
        assert_eq!(pk, csr_public_key(&request(&who, &key).unwrap()).unwrap());
        assert_eq!(leaf_identity(b"junk"), None);
        // The overlap ends: only the new intermediate remains, and that is what is stored.
        assert_eq!(ca.retire_previous().len(), 1);
        assert_eq!(ca.record().intermediates.len(), 1);
        for cut in 0..bytes.len() {
            assert!(AuthorityRecord::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    /// Issue 13, item 9: the root key sat in the serving process's state. Kept offline, it is in
    /// no record, and only a rotation needs it back.
    #[test]
    fn an_authority_with_its_root_offline_issues_without_it_and_rotates_only_with_it() {
        let who = NodeIdentity {
            name: "node-1.mesh".into(),
            addr: "fd00::1".parse().unwrap(),
        };
        let key = key_from_seed(&[9; 32]);
        let mut held = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).unwrap();
        let mut offline = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).unwrap();
        offline.keep_root_offline();
        let bytes = offline.record().encode();
        assert!(
            !bytes.windows(32).any(|w| w == [1; 32]),
            "the root seed is in the record"
        );
        let mut back = Authority::from_record(&AuthorityRecord::decode(&bytes).unwrap()).unwrap();
        assert!(back.root_offline());
        assert_eq!(back.root(), held.root());
        let t = NOW + 60;
        assert_eq!(back.issue(&who, &key, t).unwrap(), held.issue(&who, &key, t).unwrap());
        assert_eq!(back.revocation_lists(t).unwrap(), held.revocation_lists(t).unwrap());
        assert!(matches!(back.rotate(&[3; 32], t), Err(IssueError::RootKeyOffline)));
        assert!(matches!(back.attach_root(&[7; 32]), Err(IssueError::WrongRootKey)));
        back.attach_root(&[1; 32]).unwrap();
        assert_eq!(back.rotate(&[3; 32], t).unwrap(), held.rotate(&[3; 32], t).unwrap());
        let bytes = back.record().encode();
        assert!(
            !bytes.windows(32).any(|w| w == [1; 32]),
            "an attached root leaked into the record"
        );
        let again = Authority::from_record(&AuthorityRecord::decode(&bytes).unwrap()).unwrap();
        assert_eq!(again.intermediates().count(), 2);
        for cut in 0..bytes.len() {
            assert!(AuthorityRecord::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn node_names_follow_dns_syntax_and_are_never_truncated() {
        for good in [
            "node-7.mesh",
            "a",
            "N1.example.org",
            &format!("{}.mesh", "a".repeat(63)),
        ] {
            assert_eq!(check_node_name(good), Ok(()), "{good}");
        }
        let long = format!("{}.mesh", vec!["a".repeat(60); 5].join("."));
        let cases: [(&str, NameError); 9] = [
            ("", NameError::Empty),
            (&long, NameError::TooLong(long.len())),
            ("*.mesh", NameError::Wildcard),
            ("a.*", NameError::Wildcard),
            ("a..mesh", NameError::EmptyLabel),
            ("mesh.", NameError::EmptyLabel),
            ("-a.mesh", NameError::Hyphen("-a".into())),
            ("node_1.mesh", NameError::BadCharacter('_')),
            ("fd00::1", NameError::IpAddress),
        ];
        for (name, error) in cases {
            assert_eq!(check_node_name(name), Err(error), "{name:?}");
        }
        assert_eq!(
            check_node_name(&format!("{}.mesh", "a".repeat(64))),
            Err(NameError::LabelTooLong(64))
        );
        let mut ca = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).unwrap();
        let wild = NodeIdentity {
            name: "*.mesh".into(),
            addr: "fd00::1".parse().unwrap(),
        };
        let refused = ca.issue(&wild, &key_from_seed(&[9; 32]), NOW).unwrap_err();
        assert!(refused.to_string().contains("wildcard"), "{refused}");
    }
}
