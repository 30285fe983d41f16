//! Every limit and timeout of a STOQ endpoint, named, and the IPv6-only rule.

use std::net::SocketAddr;

use runtime::{AddressFamily, Duration};

/// Where an endpoint's randomness comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Randomness {
    /// The operating system's CSPRNG (ring's `SystemRandom`, rand's `SysRng`): production.
    Os,
    /// A stream derived from this seed: TLS randoms, X25519 keys, connection IDs, reset and
    /// token keys. A simulated run repeats bit for bit; the keys are predictable, so never use it
    /// on a real network.
    Seeded(u64),
}

/// An endpoint's settings. The defaults suit a mesh on one continent; every bound is here so an
/// operator can find it (TigerBeetle's rule: limits are explicit).
#[derive(Clone, Debug, PartialEq)]
pub struct StoqConfig {
    /// Randomness source.
    pub randomness: Randomness,
    /// Largest frame (message, request or response payload) accepted or sent, in bytes. A peer
    /// announcing a larger one has its connection closed with a frame error.
    pub frame_bytes_max: u32,
    /// Bytes of messages and requests queued per peer while its connection is being set up or
    /// its flow-control window is full. Past it, `send` fails with `QueueFull` (backpressure).
    pub queued_bytes_max: usize,
    /// Requests awaiting a response, per endpoint.
    pub requests_in_flight_max: usize,
    /// How long a request waits for its response.
    pub request_timeout: Duration,
    /// A connection with no traffic for this long is closed (both ends agree on the minimum).
    pub idle_timeout: Duration,
    /// PING interval keeping an idle connection open; must be below `idle_timeout`.
    pub keep_alive: Duration,
    /// The round-trip time assumed before the first measurement: it sets how soon a lost
    /// handshake packet is sent again. RFC 9002's default (333 ms) suits the unknown Internet; a
    /// mesh whose operator knows its latencies sets it to their round trip.
    pub initial_rtt: Duration,
    /// Streams of each direction a peer may have open at once: each side's one message stream,
    /// requests in flight (a request beyond it waits in the connection's queue until one is
    /// answered, and what was queued behind it waits too) and bulk streams. quinn-proto sets up the state of every stream a peer may open
    /// when the connection starts, about 130 bytes per stream, so this is paid on every
    /// connection: at 256 it was a third of a node's heap with 999 peers.
    pub streams_max: u32,
    /// Per-stream receive window, bytes.
    pub stream_window: u32,
    /// Per-connection receive window, bytes.
    pub connection_window: u32,
    /// Bytes in flight a connection may have unacknowledged (send window).
    pub send_window: u64,
    /// Connections an endpoint holds at once; new ones beyond it are refused.
    pub connections_max: usize,
    /// Check that a peer's certificate names the IPv6 address it connects from (its identity is
    /// bound to its address), on the accepting side too.
    pub bind_identity_to_address: bool,
    /// Path MTU discovery; needs the don't-fragment bit on real sockets. The simulator has no
    /// MTU, so it is off there.
    pub mtu_discovery: bool,
}

impl Default for StoqConfig {
    fn default() -> Self {
        StoqConfig {
            randomness: Randomness::Os,
            frame_bytes_max: 1 << 20,
            queued_bytes_max: 4 << 20,
            requests_in_flight_max: 1024,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            initial_rtt: Duration::from_millis(333),
            streams_max: 16,
            stream_window: 8 << 20,
            connection_window: 32 << 20,
            send_window: 32 << 20,
            connections_max: 4096,
            bind_identity_to_address: true,
            mtu_discovery: false,
        }
    }
}

/// A setting STOQ refuses at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An IPv4 (or IPv4-mapped) address where STOQ needs IPv6: the guide's "Cannot bind to
    /// 0.0.0.0", refused before any socket exists.
    #[error("{what} is the IPv4 address {addr}: STOQ is IPv6-only; use an IPv6 address such as [::1]:{port} or [::]:{port}", port = addr.port())]
    Ipv4Address {
        /// Which setting holds it (`listen`, `peer 3`, …).
        what: String,
        /// The address.
        addr: SocketAddr,
    },
    /// A limit that cannot work.
    #[error("{field} = {value}: {why}")]
    BadLimit {
        /// The setting.
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
}

impl StoqConfig {
    /// Checks the limits against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: String, why| Err(ConfigError::BadLimit { field, value, why });
        if self.frame_bytes_max == 0 || self.frame_bytes_max > crate::frame::FRAME_BYTES_LIMIT {
            return bad(
                "frame_bytes_max",
                self.frame_bytes_max.to_string(),
                "must be between 1 byte and 1 GiB",
            );
        }
        if self.keep_alive.is_zero() || self.keep_alive >= self.idle_timeout {
            return bad(
                "keep_alive",
                format!("{:?}", self.keep_alive),
                "must be above zero and below idle_timeout, or idle connections close",
            );
        }
        if self.initial_rtt.is_zero() || self.initial_rtt >= self.idle_timeout {
            return bad(
                "initial_rtt",
                format!("{:?}", self.initial_rtt),
                "must be above zero and below idle_timeout",
            );
        }
        if self.idle_timeout.as_millis() >= (1u128 << 62) {
            return bad("idle_timeout", format!("{:?}", self.idle_timeout), "too long for QUIC");
        }
        for (field, v) in [
            ("streams_max", self.streams_max as usize),
            ("stream_window", self.stream_window as usize),
            ("connection_window", self.connection_window as usize),
            ("requests_in_flight_max", self.requests_in_flight_max),
            ("connections_max", self.connections_max),
            ("queued_bytes_max", self.queued_bytes_max),
        ] {
            if v == 0 {
                return bad(field, "0".into(), "must be at least 1");
            }
        }
        Ok(())
    }
}

/// Refuses `addr` unless it is IPv6 (and not IPv4-mapped); `what` names the setting in the error.
pub fn require_ipv6(what: &str, addr: SocketAddr) -> Result<SocketAddr, ConfigError> {
    match AddressFamily::of(&addr) {
        AddressFamily::V6 => Ok(addr),
        AddressFamily::V4 => Err(ConfigError::Ipv4Address {
            what: what.to_owned(),
            addr,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_and_mapped_addresses_are_refused_by_name() {
        let e = require_ipv6("listen", "0.0.0.0:7000".parse().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "listen is the IPv4 address 0.0.0.0:7000: STOQ is IPv6-only; use an IPv6 address such as [::1]:7000 or [::]:7000"
        );
        assert!(require_ipv6("peer 2", "[::ffff:10.0.0.1]:7000".parse().unwrap()).is_err());
        assert!(require_ipv6("peer 2", "[fd00::1]:7000".parse().unwrap()).is_ok());
    }

    #[test]
    fn limits_that_cannot_work_are_refused() {
        assert!(StoqConfig::default().validate().is_ok());
        let c = StoqConfig {
            keep_alive: Duration::from_secs(10),
            ..StoqConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().starts_with("keep_alive"));
        let c = StoqConfig {
            frame_bytes_max: 0,
            ..StoqConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
