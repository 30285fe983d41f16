//! Where an endpoint's randomness comes from, so a simulated run repeats bit for bit.
//!
//! A QUIC handshake draws randomness in four places, and each must follow the seed:
//! quinn-proto's endpoint rng (connection rngs derive from it; seeded by `rng_seed`), its
//! connection-ID generator and initial destination CIDs (they call `rand::rng()` unless replaced),
//! its stateless-reset and token keys (drawn from the OS by the `Default` constructors), and
//! rustls: `CryptoProvider::secure_random` (client/server randoms) and, separately, the key
//! exchange — ring generates X25519 keys from its own `SystemRandom`, which `secure_random` does
//! not cover. ECDSA would be a fifth (random nonces); TrustChain signs with Ed25519, which is
//! deterministic.
//!
//! In seeded mode one [`DetRng`] per endpoint feeds all of them. rustls wants `'static`
//! randomness and key-exchange objects, so the provider's are statics that read the endpoint's
//! stream from a thread-local installed for the duration of each endpoint call
//! ([`Installed`]); outside such a call they fail rather than fall back to the OS, so a draw the
//! seed does not cover cannot go unnoticed.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use quinn_proto::{ConnectionId, ConnectionIdGenerator};
use ring::agreement;
use runtime::{DetRng, Duration, Entropy};
use rustls::crypto::{ActiveKeyExchange, CryptoProvider, SecureRandom, SharedSecret, SupportedKxGroup};
use rustls::{Error as TlsError, NamedGroup};

/// A seeded stream shared by the pieces of one endpoint.
pub(crate) type SharedRng = Arc<Mutex<DetRng>>;

thread_local! {
    static CURRENT: RefCell<Option<SharedRng>> = const { RefCell::new(None) };
}

/// Makes an endpoint's seeded stream the one rustls draws from, until dropped.
pub(crate) struct Installed {
    previous: Option<SharedRng>,
}

impl Installed {
    pub(crate) fn new(rng: Option<&SharedRng>) -> Self {
        let previous = CURRENT.with(|c| c.replace(rng.cloned()));
        Installed { previous }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

fn fill_from_current(out: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(rng) => {
            rng.lock().unwrap_or_else(|p| p.into_inner()).fill_bytes(out);
            Ok(())
        }
        None => Err(rustls::crypto::GetRandomFailed),
    })
}

/// rustls' randomness in seeded mode.
#[derive(Debug)]
struct SeededRandom;

impl SecureRandom for SeededRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        fill_from_current(buf)
    }
}

/// X25519 with the private key drawn from the seeded stream (real X25519: ring computes it).
#[derive(Debug)]
struct SeededX25519;

struct ActiveX25519 {
    private: agreement::EphemeralPrivateKey,
    public: agreement::PublicKey,
}

impl SupportedKxGroup for SeededX25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, TlsError> {
        let mut seed = [0u8; 32];
        fill_from_current(&mut seed).map_err(|_| TlsError::FailedToGetRandomBytes)?;
        // ring generates ephemeral keys only from a `SecureRandom`, a sealed trait; its
        // fixed-bytes implementation is the one way to hand it seeded bytes.
        #[allow(deprecated)]
        let fixed = ring::test::rand::FixedSliceRandom { bytes: &seed };
        let private = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &fixed)
            .map_err(|_| TlsError::FailedToGetRandomBytes)?;
        let public = private
            .compute_public_key()
            .map_err(|_| TlsError::General("X25519 public key".into()))?;
        Ok(Box::new(ActiveX25519 { private, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

impl ActiveKeyExchange for ActiveX25519 {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, TlsError> {
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer_pub_key);
        agreement::agree_ephemeral(self.private, &peer, |secret| SharedSecret::from(secret))
            .map_err(|_| TlsError::PeerMisbehaved(rustls::PeerMisbehaved::InvalidKeyShare))
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_ref()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

static SEEDED_RANDOM: SeededRandom = SeededRandom;
static SEEDED_X25519: SeededX25519 = SeededX25519;

/// ring's provider narrowed to what STOQ negotiates (TLS 1.3 suites, X25519), with seeded
/// randomness and key exchange when `seeded`.
pub(crate) fn provider(seeded: bool) -> CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.retain(|s| s.version() == &rustls::version::TLS13);
    if seeded {
        p.kx_groups = vec![&SEEDED_X25519];
        p.secure_random = &SEEDED_RANDOM;
    } else {
        p.kx_groups = vec![rustls::crypto::ring::kx_group::X25519];
    }
    p
}

/// Connection IDs drawn from the endpoint's seeded stream.
pub(crate) struct SeededCids {
    pub(crate) rng: SharedRng,
}

/// Connection-ID length: 8 bytes, quinn's default.
pub(crate) const CID_BYTES: usize = 8;

impl ConnectionIdGenerator for SeededCids {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut bytes = [0u8; CID_BYTES];
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill_bytes(&mut bytes);
        ConnectionId::new(&bytes)
    }

    fn cid_len(&self) -> usize {
        CID_BYTES
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// A random initial destination CID (RFC 9000 §7.2: at least 8 unpredictable bytes).
pub(crate) fn initial_cid(rng: &SharedRng) -> ConnectionId {
    // 20 bytes: QUIC's maximum CID length, what quinn's own provider draws.
    let mut bytes = [0u8; 20];
    rng.lock().unwrap_or_else(|p| p.into_inner()).fill_bytes(&mut bytes);
    ConnectionId::new(&bytes)
}

/// Key material: from the seeded stream, or from the OS.
// `Randomness::Os` is production's choice: the endpoint's keys come from the OS CSPRNG, never a
// seeded stream; the simulator always passes a seeded one.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub(crate) fn key_bytes<const N: usize>(rng: Option<&SharedRng>) -> Result<[u8; N], ring::error::Unspecified> {
    let mut out = [0u8; N];
    match rng {
        Some(rng) => rng.lock().unwrap_or_else(|p| p.into_inner()).fill_bytes(&mut out),
        None => ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out)?,
    }
    Ok(out)
}
