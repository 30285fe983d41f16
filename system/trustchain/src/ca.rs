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
    #[error("invalid node name {0:?}: use a DNS name such as node-7.mesh")]
    BadName(String),
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

/// A node identity a certificate may carry: its name and its IPv6 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// DNS-style node name, e.g. `node-7.mesh`.
    pub name: String,
    /// Its IPv6 address.
    pub addr: Ipv6Addr,
}

impl NodeIdentity {
    fn sans(&self) -> Result<Vec<SanType>, IssueError> {
        let dns = self
            .name
            .clone()
            .try_into()
            .map_err(|_| IssueError::BadName(self.name.clone()))?;
        Ok(vec![SanType::DnsName(dns), SanType::IpAddress(self.addr.into())])
    }
}

/// The root and the intermediate that issues leaves.
pub struct Authority {
    policy: CaPolicy,
    root_der: CertificateDer<'static>,
    intermediate_der: CertificateDer<'static>,
    intermediate: Issuer<'static, KeyPair>,
    /// Distinguishes this intermediate's serials from any other's.
    serial_salt: [u8; 32],
    issued: u64,
    /// Revoked serials with when they were revoked (Unix s), in revocation order.
    revoked: Vec<(Vec<u8>, i64)>,
    crl_number: u64,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("policy", &self.policy)
            .field("issued", &self.issued)
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
        let root_key = key_from_seed(root_seed);
        let int_key = key_from_seed(intermediate_seed);
        let start = now_unix_s - secs(policy.backdate);
        let mut root = CertificateParams::default();
        // Names carry a key fingerprint: two CAs never share a name, so a chain from another CA
        // reads as "unknown issuer" rather than as a signature failure.
        root.distinguished_name = name(&format!("TrustChain Root CA {}", fingerprint(&root_key)));
        root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.not_before = at(start)?;
        root.not_after = at(now_unix_s + secs(policy.root_lifetime))?;
        root.serial_number = Some(serial(digest(&SHA256, root_seed).as_ref(), 0));
        let root_cert = root.self_signed(&root_key)?;
        let root_issuer = Issuer::new(root, root_key);

        let mut int = CertificateParams::default();
        int.distinguished_name = name(&format!("TrustChain Intermediate CA {}", fingerprint(&int_key)));
        int.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        int.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        int.use_authority_key_identifier_extension = true;
        int.not_before = at(start)?;
        int.not_after = at(now_unix_s + secs(policy.intermediate_lifetime))?;
        int.serial_number = Some(serial(digest(&SHA256, intermediate_seed).as_ref(), 1));
        let int_cert = int.signed_by(&int_key, &root_issuer)?;
        let serial_salt = digest(&SHA256, int_cert.der()).as_ref().try_into().expect("32 bytes");
        Ok(Authority {
            policy,
            root_der: root_cert.der().clone(),
            intermediate_der: int_cert.der().clone(),
            intermediate: Issuer::new(int, int_key),
            serial_salt,
            issued: 0,
            revoked: Vec::new(),
            crl_number: 0,
        })
    }

    /// The root certificate (the trust anchor to distribute).
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root_der
    }

    /// The intermediate certificate (sent alongside every leaf).
    pub fn intermediate(&self) -> &CertificateDer<'static> {
        &self.intermediate_der
    }

    /// The policy.
    pub fn policy(&self) -> &CaPolicy {
        &self.policy
    }

    /// Leaves issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
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
        self.issued += 1;
        p.serial_number = Some(serial(&self.serial_salt, self.issued + 1));
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
        Ok(params.signed_by(public_key, &self.intermediate)?.der().clone())
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
                    requested: format!("{san:?}"),
                    granted: format!("{} and {}", granted.name, granted.addr),
                });
            }
        }
        let params = self.leaf_params(granted, now_unix_s)?;
        Ok(params.signed_by(&request.public_key, &self.intermediate)?.der().clone())
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

    /// A revocation list of everything revoked, signed by the intermediate, current from
    /// `now_unix_s` for the policy's `crl_lifetime`. Each list gets the next CRL number.
    pub fn revocation_list(&mut self, now_unix_s: i64) -> Result<CertificateRevocationListDer<'static>, IssueError> {
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
        Ok(params.signed_by(&self.intermediate)?.der().clone())
    }
}

/// The serial number of a DER certificate, as big-endian bytes.
pub fn serial_of(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    Some(parsed.raw_serial().to_vec())
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
