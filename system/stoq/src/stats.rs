//! What an endpoint counts, so a run's summary can show that a fault or a refusal happened.

use std::collections::BTreeMap;

/// Classes a failed connection is counted under: TrustChain's certificate classes, then
/// transport outcomes.
pub const REFUSAL_CLASSES: [&str; 14] = [
    "expired",
    "not_yet_valid",
    "unknown_issuer",
    "bad_signature",
    "stale_revocation_list",
    "revoked",
    "name_mismatch",
    "malformed",
    "other",
    "timeout",
    "reset",
    "closed",
    "tls",
    "address_family",
];

/// Counters of one endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoqStats {
    /// Connections this endpoint started.
    pub connections_dialed: u64,
    /// Connections peers started that it accepted.
    pub connections_accepted: u64,
    /// Incoming connections refused before the handshake (over `connections_max`).
    pub connections_refused: u64,
    /// Handshakes that completed with both certificates accepted.
    pub handshakes: u64,
    /// Connections that failed before they were usable, by class.
    pub failed: BTreeMap<&'static str, u64>,
    /// Established connections that ended.
    pub connections_lost: u64,
    /// QUIC datagrams handed to the network.
    pub datagrams_sent: u64,
    /// Reliable messages accepted for sending.
    pub messages_sent: u64,
    /// Unreliable messages accepted for sending.
    pub unreliable_sent: u64,
    /// Unreliable messages dropped because the path could not carry them.
    pub unreliable_too_large: u64,
    /// Messages received (both kinds).
    pub messages_received: u64,
    /// Messages still queued when their connection failed.
    pub messages_dropped: u64,
    /// Sends refused because the peer's queue was full.
    pub queue_full: u64,
    /// Requests sent.
    pub requests_sent: u64,
    /// Requests received.
    pub requests_received: u64,
    /// Responses sent.
    pub responses_sent: u64,
    /// Responses received.
    pub responses_received: u64,
    /// Requests that timed out.
    pub request_timeouts: u64,
    /// Connections closed because the peer broke the framing.
    pub frame_errors: u64,
    /// Bulk bytes written.
    pub bulk_bytes_sent: u64,
    /// Bulk bytes received.
    pub bulk_bytes_received: u64,
}

impl StoqStats {
    pub(crate) fn count_refusal(&mut self, class: &'static str) {
        *self.failed.entry(class).or_default() += 1;
    }
}
