//! Datagram addressing and the errors a send can meet, shared by every backend so the simulator
//! reports exactly what a real socket would.

use std::net::SocketAddr;

/// The largest payload a datagram may carry: the IPv6 jumbo-free UDP maximum (65,535 minus the
/// 8-byte UDP header). Protocols keep well below it to avoid IP fragmentation.
pub const MAX_DATAGRAM_BYTES: usize = 65_527;

/// An IP address family.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddressFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl AddressFamily {
    /// The family of `addr`. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as IPv4,
    /// because that is the stack that would carry it.
    pub fn of(addr: &SocketAddr) -> AddressFamily {
        match addr {
            SocketAddr::V4(_) => AddressFamily::V4,
            SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => AddressFamily::V4,
            SocketAddr::V6(_) => AddressFamily::V6,
        }
    }
}

/// Why a datagram could not be handed to the network. Like UDP, a successful send promises
/// nothing about delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The node has no socket of the destination's family: an IPv6-only node sending to an IPv4
    /// address (the guide's "Address family not supported").
    #[error("address family not supported: no {family:?} socket to reach {to}")]
    AddressFamilyNotSupported {
        /// The destination that could not be reached.
        to: SocketAddr,
        /// Its family.
        family: AddressFamily,
    },
    /// The payload is larger than [`MAX_DATAGRAM_BYTES`].
    #[error("datagram of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The operating system refused the send for another reason.
    #[error("send to {to} failed: {reason}")]
    Io {
        /// The destination.
        to: SocketAddr,
        /// The OS error, as text.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        let v6: SocketAddr = "[fd00::1]:80".parse().unwrap();
        assert_eq!(AddressFamily::of(&mapped), AddressFamily::V4);
        assert_eq!(AddressFamily::of(&v6), AddressFamily::V6);
    }
}
