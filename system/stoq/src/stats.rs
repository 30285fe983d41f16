//! What an endpoint counts, so a run's summary can show that a fault or a refusal happened.

use std::collections::BTreeMap;

/// Classes a failed connection is counted under besides TrustChain's certificate classes
/// (`trustchain::validate::ValidationError::CLASSES`): no answer, a reset, a close, or another
/// TLS failure (no common protocol, a bad signature over the handshake).
pub const TRANSPORT_CLASSES: [&str; 4] = ["timeout", "reset", "closed", "tls"];

/// A stable number for a class, for probes: certificate classes first, then transport ones.
pub(crate) fn class_index(class: &str) -> i64 {
    let certificate = trustchain::validate::ValidationError::CLASSES;
    match certificate.iter().position(|c| *c == class) {
        Some(i) => i as i64,
        None => TRANSPORT_CLASSES
            .iter()
            .position(|c| *c == class)
            .map_or(-1, |i| (certificate.len() + i) as i64),
    }
}

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
    /// DATAGRAM frames and streams a peer sent that were never read because it was refused:
    /// TLS 1.3 authenticates the client last, so data can arrive with (or, from a malicious
    /// client, before) the certificate the endpoint then refuses. It is discarded unread.
    pub refused_data_discarded: u64,
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
    /// Times a connection had more work than [`crate::DRIVE_ROUNDS_MAX`] rounds, or a drive more
    /// than as many passes over the connections changed: the rest ran from a timer set at once.
    pub drive_rounds_capped: u64,
    /// Drives: one after each call that may have changed a connection (a received batch, a
    /// timer, a send).
    pub drives: u64,
    /// Connections driven, over all drives: only those a drive's call changed, so with many
    /// idle connections this stays near `drives`.
    pub connections_driven: u64,
    /// Live connections closed because the peer's chain failed the check against new trust
    /// (revoked, or its issuer retired).
    pub peers_dropped_on_recheck: u64,
}

impl StoqStats {
    pub(crate) fn count_refusal(&mut self, class: &'static str) {
        *self.failed.entry(class).or_default() += 1;
    }
}
