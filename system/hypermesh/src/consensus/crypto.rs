//! Digests, validator keys, signatures and the domains that separate what is signed.
//!
//! Every signature in consensus is Ed25519 (ring), over bytes that begin with [`DOMAIN`], then
//! a tag naming the kind of message (`vote/`, `timeout/`, `proposal/`), then the validator
//! set's epoch, then the message's fields. No tag is a prefix of another, so a signature made for
//! one kind never verifies as another, and a signature from one epoch never verifies in the next.

use std::fmt;

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// An Ed25519 public key, as the 32 bytes of RFC 8032.
pub type PublicKey = [u8; 32];

/// The prefix of everything consensus signs or hashes: protocol and version.
pub const DOMAIN: &[u8] = b"hypermesh/consensus/v1/";

/// The length of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Digest {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().try_into().expect("SHA-256 digests are 32 bytes")
}

/// What a signature or digest is for: the tag after [`DOMAIN`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Domain {
    /// A vote for a block.
    Vote,
    /// A timeout of a view.
    Timeout,
    /// A leader's proposal.
    Proposal,
    /// A block's digest (hashed, not signed).
    Block,
    /// A validator's report of another's misbehaviour.
    Report,
}

impl Domain {
    fn tag(self) -> &'static [u8] {
        match self {
            Domain::Vote => b"vote/",
            Domain::Timeout => b"timeout/",
            Domain::Proposal => b"proposal/",
            Domain::Block => b"block/",
            Domain::Report => b"report/",
        }
    }
}

/// The bytes a message of `domain` signs in `epoch`: [`DOMAIN`], the tag, the epoch (big-endian),
/// then what `fields` appends.
pub(crate) fn signed_bytes(domain: Domain, epoch: u64, fields: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + 16 + 128);
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(domain.tag());
    out.extend_from_slice(&epoch.to_be_bytes());
    fields(&mut out);
    out
}

/// The digest of `encoding` in `domain` (no epoch): SHA-256 of [`DOMAIN`], the tag, `encoding`.
pub(crate) fn domain_digest(domain: Domain, encoding: &[u8]) -> Digest {
    let mut cx = ring::digest::Context::new(&ring::digest::SHA256);
    cx.update(DOMAIN);
    cx.update(domain.tag());
    cx.update(encoding);
    cx.finish().as_ref().try_into().expect("SHA-256 digests are 32 bytes")
}

/// An Ed25519 signature.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_BYTES]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex(&self.0[..8]))
    }
}

/// Whether `signature` is `public_key`'s Ed25519 signature of `message`.
///
/// With [`share_verifications`] on for the calling thread, a result is remembered (by SHA-256
/// of key, signature and message) and answered again without the curve arithmetic.
pub fn verify_signature(public_key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    VERIFICATIONS.with(|n| n.set(n.get() + 1));
    let verify = || {
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(message, &signature.0)
            .is_ok()
    };
    VERIFIED.with(|cache| {
        let mut cache = cache.borrow_mut();
        let Some(cache) = cache.as_mut() else {
            return verify();
        };
        let mut cx = ring::digest::Context::new(&ring::digest::SHA256);
        cx.update(public_key);
        cx.update(&signature.0);
        cx.update(message);
        let key: Digest = cx.finish().as_ref().try_into().expect("32 bytes");
        if let Some(valid) = cache.get(&key) {
            return *valid;
        }
        let valid = verify();
        if cache.len() >= SHARED_VERIFICATIONS_MAX {
            cache.clear();
        }
        cache.insert(key, valid);
        valid
    })
}

/// Results [`share_verifications`] remembers at most before it starts afresh.
pub const SHARED_VERIFICATIONS_MAX: usize = 1 << 16;

thread_local! {
    static VERIFICATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static VERIFIED: std::cell::RefCell<Option<std::collections::HashMap<Digest, bool>>> =
        const { std::cell::RefCell::new(None) };
}

/// Turns on (or off) remembering signature verifications for the calling thread.
///
/// For the simulator, which runs every replica of a cluster on one thread: a certificate of
/// `2f + 1` signatures that every replica verifies is then checked once, not once per replica,
/// which is most of a large simulated cluster's time. Verification is a pure function, so
/// results and traces are the same either way; only the host's CPU time changes, which is why
/// CPU figures are measured on real sockets, where each replica verifies alone. Off by default.
pub fn share_verifications(on: bool) {
    VERIFIED.with(|cache| *cache.borrow_mut() = on.then(std::collections::HashMap::new));
}

/// Signature verifications asked of [`verify_signature`] on the calling thread since the last
/// call (shared ones included: each is the work a replica on its own machine would do). The
/// simulator's measure of the CPU a protocol costs that does not vary with the host.
pub fn take_verifications() -> u64 {
    VERIFICATIONS.with(|n| n.replace(0))
}

/// A validator's signing key: Ed25519 from a 32-byte seed (RFC 8032), the same key TrustChain
/// derives from that seed for the node's certificate (`trustchain::ca::key_from_seed`), so the
/// key that signs votes is the key the validator's certificate names.
///
/// Its `Debug` prints the public key only, never the seed.
pub struct ValidatorKey {
    pair: Ed25519KeyPair,
    public_key: PublicKey,
}

impl ValidatorKey {
    /// The key of `seed`. Any 32 bytes are an Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> ValidatorKey {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are an Ed25519 seed");
        let public_key = pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("Ed25519 public keys are 32 bytes");
        ValidatorKey { pair, public_key }
    }

    /// The public key, as a [`super::Validator`] lists it.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// Signs `message`. Crate-private: every signature goes through [`signed_bytes`], so it is
    /// domain-separated.
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        Signature(
            self.pair
                .sign(message)
                .as_ref()
                .try_into()
                .expect("Ed25519 signatures are 64 bytes"),
        )
    }
}

impl fmt::Debug for ValidatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorKey")
            .field("public_key", &hex(&self.public_key))
            .finish_non_exhaustive()
    }
}

/// The DER of an Ed25519 SubjectPublicKeyInfo (RFC 8410, section 4) up to the key: a SEQUENCE of
/// 42 bytes holding the AlgorithmIdentifier SEQUENCE { OID 1.3.101.112 } (no parameters) and a
/// BIT STRING of 33 bytes with no unused bits.
pub const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// Why a SubjectPublicKeyInfo was not taken as an Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// It is not 44 bytes long, the only length of an Ed25519 SubjectPublicKeyInfo.
    #[error("an Ed25519 SubjectPublicKeyInfo is 44 bytes, this one is {0}")]
    Length(usize),
    /// Its first 12 bytes are not those of an Ed25519 SubjectPublicKeyInfo (another algorithm,
    /// parameters present, or not DER).
    #[error("not an Ed25519 SubjectPublicKeyInfo (RFC 8410)")]
    NotEd25519,
}

/// The Ed25519 public key in a DER SubjectPublicKeyInfo, such as the one of a TrustChain leaf
/// certificate: exactly [`ED25519_SPKI_PREFIX`] followed by 32 bytes, nothing else accepted.
/// Whoever holds the certificate extracts its SPKI (x509 parsing stays outside this crate).
pub fn ed25519_key_from_spki(spki_der: &[u8]) -> Result<PublicKey, KeyError> {
    if spki_der.len() != ED25519_SPKI_PREFIX.len() + 32 {
        return Err(KeyError::Length(spki_der.len()));
    }
    let (prefix, key) = spki_der.split_at(ED25519_SPKI_PREFIX.len());
    if prefix != ED25519_SPKI_PREFIX {
        return Err(KeyError::NotEd25519);
    }
    Ok(key.try_into().expect("length checked"))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn keys_from_seeds_are_rfc_8032_keys() {
        // RFC 8032, section 7.1, test 1: the seed, its public key, its signature of "".
        let seed: [u8; 32] = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .try_into()
            .unwrap();
        let key = ValidatorKey::from_seed(&seed);
        assert_eq!(
            hex(&key.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let signature = key.sign(b"");
        assert_eq!(
            hex(&signature.0),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(verify_signature(&key.public_key(), b"", &signature));
        assert!(!verify_signature(&key.public_key(), b"x", &signature));
    }

    #[test]
    fn debug_never_prints_the_seed() {
        let seed = [0xab; 32];
        let key = ValidatorKey::from_seed(&seed);
        let printed = format!("{key:?}");
        assert!(!printed.contains(&hex(&seed)), "{printed}");
        assert!(!printed.contains("171, 171"), "{printed}");
        assert!(printed.contains(&hex(&key.public_key())), "{printed}");
    }

    #[test]
    fn the_rfc_8410_example_spki_gives_its_key() {
        // RFC 8410, section 10.1: MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
        let spki = unhex("302a300506032b657003210019bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1");
        assert_eq!(
            hex(&ed25519_key_from_spki(&spki).unwrap()),
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        );
        assert_eq!(ed25519_key_from_spki(&spki[..43]), Err(KeyError::Length(43)));
        assert_eq!(
            ed25519_key_from_spki(&[spki.clone(), vec![0]].concat()),
            Err(KeyError::Length(45))
        );
        // A changed SEQUENCE length (byte 1), OID (byte 8: 1.3.101.113 is Ed448), BIT STRING
        // length (byte 10) or unused-bits count (byte 11) is refused, as is X25519's OID.
        for at in [1, 8, 10, 11] {
            let mut other = spki.clone();
            other[at] ^= 1;
            assert_eq!(ed25519_key_from_spki(&other), Err(KeyError::NotEd25519), "byte {at}");
        }
        let mut x25519 = spki.clone();
        x25519[8] = 0x6e;
        assert_eq!(ed25519_key_from_spki(&x25519), Err(KeyError::NotEd25519));
    }

    #[test]
    fn domains_separate_kinds_and_epochs() {
        let vote = signed_bytes(Domain::Vote, 1, |out| out.push(7));
        let timeout = signed_bytes(Domain::Timeout, 1, |out| out.push(7));
        let later = signed_bytes(Domain::Vote, 2, |out| out.push(7));
        assert_ne!(vote, timeout);
        assert_ne!(vote, later);
        assert!(vote.starts_with(b"hypermesh/consensus/v1/vote/"));
        assert_ne!(domain_digest(Domain::Block, b"x"), sha256(b"x"));
    }
}
