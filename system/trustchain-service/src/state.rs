//! The service's persisted state: one JSON document (secrets hex-encoded), replaced crash-safely
//! through [`trustchain::durable`]. JSON so an operator can inspect it; it holds the CA's private
//! key seeds, so the backend creates it readable by its owner only.

use serde::{Deserialize, Serialize};

/// The document's format version; another is refused rather than misread.
pub(crate) const FORMAT: u32 = 1;

/// Everything the service keeps besides its CT log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Stored {
    pub format: u32,
    /// `AuthorityRecord::encode`, hex.
    pub authority: String,
    /// CT log key seed, hex.
    pub log_seed: String,
    /// Join-token key, hex.
    pub token_secret: String,
    /// The next join token's id.
    pub next_token_id: u64,
    /// Spent tokens: id, expiry, and the public key they enrolled (a retry whose answer was lost
    /// may present the same token with the same key again).
    pub spent_tokens: Vec<SpentToken>,
    /// Intermediates retired from the bundle, still honoured for renewals for one leaf lifetime.
    pub retired: Vec<Retired>,
    /// The rotation in progress, if any.
    pub rotation: Option<ActiveRotation>,
    /// CT log entries when this was written (certificates logged after it used serials the
    /// authority record does not count).
    pub log_size: u64,
    /// The name the CA's own HTTPS server is certified for, which no token or approval grants.
    /// Absent from state files written before it existed: those CAs served the default name.
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// Leaves issued and not yet expired, so that revoking one serial finds its holder's
    /// identity, key and other live leaves. Absent from older state files (their leaves are
    /// revoked with `--cert`, which carries identity and key).
    #[serde(default)]
    pub issued: Vec<IssuedLeaf>,
    /// Keys revoked: no request holding one is served again.
    #[serde(default)]
    pub revoked_keys: Vec<RevokedKey>,
    /// Identities revoked: their earlier tokens and leaves no longer buy certificates.
    #[serde(default)]
    pub revoked_identities: Vec<RevokedIdentity>,
}

/// The server name of CAs created before it was stored (`trustchain serve`'s default then).
pub(crate) fn default_server_name() -> String {
    crate::service::SERVER_NAME_DEFAULT.to_owned()
}

/// A leaf the CA issued, until it expires.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct IssuedLeaf {
    /// Serial, hex.
    pub serial: String,
    /// The certified name.
    pub name: String,
    /// The certified IPv6 address.
    pub addr: String,
    /// The certified public key, hex.
    pub key: String,
    /// Its `notAfter`, Unix s.
    pub not_after: i64,
}

/// A revoked key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RevokedKey {
    /// The public key, hex.
    pub key: String,
    /// When, Unix s.
    pub at: i64,
}

/// A revoked identity: tokens for it issued before `tokens_before` and its leaves logged before
/// `log_before` are refused; a token the operator issues afterwards re-admits it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RevokedIdentity {
    /// The certified name.
    pub name: String,
    /// When, Unix s.
    pub at: i64,
    /// The first token id issued after the revocation.
    pub tokens_before: u64,
    /// The CT log's size at the revocation.
    pub log_before: u64,
}

/// A spent join token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SpentToken {
    pub id: u64,
    pub expires: i64,
    /// SubjectPublicKeyInfo, hex.
    pub key: String,
}

/// A retired intermediate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Retired {
    /// DER, hex.
    pub cert: String,
    /// When it left the bundle, Unix s.
    pub at: i64,
}

/// A rotation in progress: what nodes are told in the bundle so they can follow it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActiveRotation {
    /// When the new intermediate was created, Unix s.
    pub started: i64,
    /// When the previous intermediate leaves the bundle, Unix s.
    pub overlap_end: i64,
    /// SHA-256 fingerprint of the new intermediate, hex.
    pub new_issuer: String,
    /// Gradual rollout: nodes move to the new issuer in this many waves (node `i` in wave
    /// `i mod waves`); 0 for all at once.
    pub waves: u32,
    /// Seconds between waves; the first starts one interval after the rotation.
    pub wave_interval_s: u64,
    /// Nodes check a chain from the new issuer against peers' bundles before presenting it.
    pub verify_before_switch: bool,
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex; `None` if it is not.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// 32 bytes from hex.
pub(crate) fn unhex32(text: &str) -> Option<[u8; 32]> {
    unhex(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_non_hex() {
        assert_eq!(unhex(&hex(&[0, 0xab, 0xff])).unwrap(), vec![0, 0xab, 0xff]);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
        assert!(unhex("é1").is_none());
        assert!(unhex32("00").is_none());
    }
}
