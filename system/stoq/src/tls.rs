//! Mutual TLS with TrustChain certificates: what a node presents, what it trusts, and the rustls
//! configurations (TLS 1.3 only, ALPN `stoq/1`) built from them.
//!
//! Both are behind one shared, swappable [`Security`]: presenting a renewed or rotated chain, or
//! trusting a new bundle or revocation list, affects the next handshake and never a live
//! connection (TLS 1.3 over QUIC never authenticates twice). Validation is TrustChain's own
//! ([`trustchain::trust::TrustBundle::validate`]), at the time rustls hands the verifier, which
//! is the node's wall clock (a [`rustls::time_provider::TimeProvider`] reading it), so simulated
//! clock skew reaches the handshake as it reaches every other validity check.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime,
};
use runtime::WallTime;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme};
use trustchain::ca::{leaf_identity, serial_of, NodeIdentity};
use trustchain::trust::TrustBundle;
use trustchain::validate::{ExpectedPeer, ValidationError};

/// The ALPN protocol STOQ speaks; a peer offering anything else is refused in the handshake.
pub const ALPN: &[u8] = b"stoq/1";

/// A chain and its private key, as a node presents them.
#[derive(Clone)]
pub struct Credentials {
    /// Leaf first, then its issuing intermediate.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// What a node trusts: the CA's bundle and the current revocation lists. The default trusts
/// nothing (a node that has not enrolled yet).
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// Roots and pinned issuing intermediates.
    pub bundle: TrustBundle,
    /// Revocation lists, one per issuing intermediate.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

/// Why TLS could not be set up from what was given.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The private key is not one rustls can sign with.
    #[error("private key unusable: {0}")]
    Key(rustls::Error),
    /// The chain is empty.
    #[error("credentials hold no certificate")]
    EmptyChain,
    /// rustls or quinn refused the configuration (a bug here, or an unsupported provider).
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// The peer a handshake authenticated, from its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Node name and IPv6 address the certificate carries.
    pub node: NodeIdentity,
    /// The leaf's serial number.
    pub serial: Vec<u8>,
}

impl PeerIdentity {
    /// Reads the identity from a presented chain's leaf.
    pub fn from_chain(chain: &[CertificateDer<'_>]) -> Option<PeerIdentity> {
        let leaf = chain.first()?;
        let (node, _) = leaf_identity(leaf)?;
        Some(PeerIdentity {
            node,
            serial: serial_of(leaf)?,
        })
    }
}

/// A refusal of a peer's certificate, carried in the TLS error (and from there in QUIC's
/// CONNECTION_CLOSE reason, so the refused peer reads it too).
pub(crate) struct Refusal(pub(crate) ValidationError);

/// rustls prints the error inside `CertificateError::Other` with `Debug`: make that the
/// operator's text too.
impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text that marks a TrustChain refusal inside a TLS error; [`refusal_class`] parses it back.
const REFUSAL_PREFIX: &str = "certificate refused (";

/// The text of a refusal of class `class`, which [`refusal_class`] reads back on either side.
pub(crate) fn refusal_text(class: &str, message: impl fmt::Display) -> String {
    format!("{REFUSAL_PREFIX}{class}): {message}")
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&refusal_text(self.0.class(), &self.0))
    }
}

impl std::error::Error for Refusal {}

/// The TrustChain class (`revoked`, `unknown_issuer`, `name_mismatch`, …) named in a handshake
/// error's or a close reason's text, if it was a certificate refusal.
pub fn refusal_class(reason: &str) -> Option<&'static str> {
    let at = reason.find(REFUSAL_PREFIX)? + REFUSAL_PREFIX.len();
    let rest = &reason[at..];
    let class = &rest[..rest.find(')')?];
    ValidationError::CLASSES.into_iter().find(|c| *c == class)
}

#[derive(Debug)]
struct State {
    presented: Option<Arc<CertifiedKey>>,
    trust: Trust,
}

/// A node's TLS identity and trust, shared by its configurations and swappable while it runs.
#[derive(Clone)]
pub struct Security {
    state: Arc<RwLock<State>>,
    /// Bumped by every [`Security::trust`]: endpoints re-check their live peers when it moves.
    /// An atomic, not in `state`, because every received datagram reads it.
    generation: Arc<AtomicU64>,
    provider: Arc<CryptoProvider>,
    wall: Arc<AtomicI64>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security").finish_non_exhaustive()
    }
}

impl Security {
    pub(crate) fn new(
        provider: CryptoProvider,
        credentials: Option<&Credentials>,
        trust: Trust,
    ) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(provider);
        let presented = credentials.map(|c| certified(&provider, c)).transpose()?;
        Ok(Security {
            state: Arc::new(RwLock::new(State { presented, trust })),
            generation: Arc::new(AtomicU64::new(0)),
            provider,
            wall: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Presents `credentials` from the next handshake on (renewal, CA rotation). Live
    /// connections keep the identity they were set up with.
    pub fn present(&self, credentials: &Credentials) -> Result<(), TlsSetupError> {
        let key = certified(&self.provider, credentials)?;
        self.write().presented = Some(key);
        Ok(())
    }

    /// Trusts `trust` from now on: for the next handshakes, and for live connections, whose
    /// peers every [`crate::Endpoint`] checks again at its next call (a peer revoked by the new
    /// revocation lists, or whose issuer the new bundle no longer holds, is disconnected).
    pub fn trust(&self, trust: Trust) {
        self.write().trust = trust;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// How many times the trust was replaced.
    pub fn trust_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Checks a live peer's `chain` against the current trust at `now_s` (Unix seconds). The
    /// address binding was checked at the handshake and does not change.
    pub fn recheck(&self, chain: &[CertificateDer<'_>], now_s: i64) -> Result<(), ValidationError> {
        let state = self.read();
        state
            .trust
            .bundle
            .validate(chain, &state.trust.crls, now_s, &ExpectedPeer::Any)
    }

    /// Whether the node has a chain to present.
    pub fn has_credentials(&self) -> bool {
        self.read().presented.is_some()
    }

    /// Sets the wall-clock time certificate checks use. [`crate::Endpoint`] does so from
    /// `Env::wall_now` on every call; a different driver (the benchmark's raw quinn) must too.
    pub fn observe_time(&self, now: WallTime) {
        self.wall.store(now.as_unix_nanos(), Ordering::Relaxed);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn algorithms(&self) -> WebPkiSupportedAlgorithms {
        self.provider.signature_verification_algorithms
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        expected: &ExpectedPeer,
    ) -> Result<(), rustls::Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        let state = self.read();
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        state
            .trust
            .bundle
            .validate(&chain, &state.trust.crls, secs, expected)
            .map_err(|e| rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refusal(e))))))
    }

    /// The rustls server configuration: client certificates required and checked by TrustChain.
    pub(crate) fn server_config(&self) -> Result<rustls::ServerConfig, TlsSetupError> {
        let mut config = rustls::ServerConfig::builder_with_details(self.provider.clone(), Arc::new(self.clock()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsSetupError::Config(e.to_string()))?
            .with_client_cert_verifier(Arc::new(Verifier(self.clone())))
            .with_cert_resolver(Arc::new(Presenter(self.clone())));
        config.alpn_protocols = vec![ALPN.to_vec()];
        // Every connection authenticates in full: no tickets, no resumption, no 0-RTT, so a
        // revocation or a rotation takes effect at the next handshake.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.max_early_data_size = 0;
        Ok(config)
    }

    /// The rustls client configuration: the server's certificate checked by TrustChain against
    /// the address dialled, our chain presented.
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, TlsSetupError> {
        let mut config = rustls::ClientConfig::builder_with_details(self.provider.clone(), Arc::new(self.clock()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsSetupError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier(self.clone())))
            .with_client_cert_resolver(Arc::new(Presenter(self.clone())));
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        config.enable_early_data = false;
        Ok(config)
    }

    fn clock(&self) -> WallClock {
        WallClock(self.wall.clone())
    }
}

fn certified(provider: &CryptoProvider, credentials: &Credentials) -> Result<Arc<CertifiedKey>, TlsSetupError> {
    if credentials.chain.is_empty() {
        return Err(TlsSetupError::EmptyChain);
    }
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(credentials.key_pkcs8.clone()));
    let key = provider
        .key_provider
        .load_private_key(der)
        .map_err(TlsSetupError::Key)?;
    Ok(Arc::new(CertifiedKey::new(credentials.chain.clone(), key)))
}

/// The node's wall clock as rustls reads it: the value the endpoint last stored, from
/// `Env::wall_now` on every call.
#[derive(Debug)]
struct WallClock(Arc<AtomicI64>);

impl rustls::time_provider::TimeProvider for WallClock {
    fn current_time(&self) -> Option<UnixTime> {
        let nanos = u64::try_from(self.0.load(Ordering::Relaxed)).ok()?;
        Some(UnixTime::since_unix_epoch(std::time::Duration::from_nanos(nanos)))
    }
}

/// Presents the node's current chain, to servers and to clients alike.
struct Presenter(Security);

impl fmt::Debug for Presenter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Presenter")
    }
}

impl ResolvesServerCert for Presenter {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().presented.clone()
    }
}

impl ResolvesClientCert for Presenter {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.read().presented.clone()
    }

    fn has_certs(&self) -> bool {
        self.0.has_credentials()
    }
}

/// Checks a peer's chain with TrustChain, both directions.
struct Verifier(Security);

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier")
    }
}

impl Verifier {
    /// QUIC is TLS 1.3 only.
    fn tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    /// The handshake signature, with the provider's algorithms (Ed25519 for TrustChain leaves).
    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.algorithms())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // STOQ dials addresses: the server's certificate must name the address dialled.
        let expected = match server_name {
            ServerName::IpAddress(ip) => ExpectedPeer::Addr(IpAddr::from(*ip)),
            ServerName::DnsName(name) => ExpectedPeer::Name(name.as_ref().to_owned()),
            _ => ExpectedPeer::Any,
        };
        self.0.check(end_entity, intermediates, now, &expected)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _m: &[u8],
        _c: &CertificateDer<'_>,
        _d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Verifier::tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.algorithms().supported_schemes()
    }
}

impl ClientCertVerifier for Verifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The client's address is not known here; the endpoint checks it against the
        // certificate once the handshake completes (`bind_identity_to_address`).
        self.0.check(end_entity, intermediates, now, &ExpectedPeer::Any)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _m: &[u8],
        _c: &CertificateDer<'_>,
        _d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Verifier::tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.algorithms().supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_class_round_trips_through_the_error_text() {
        let text = format!("invalid peer certificate: {}", Refusal(ValidationError::Revoked));
        assert_eq!(refusal_class(&text), Some("revoked"));
        assert_eq!(refusal_class("peer closed: no application protocol"), None);
    }
}
