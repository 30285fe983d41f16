//! STOQ: the stack's transport. QUIC (quinn-proto's state machines, rustls on ring) with mutual
//! TLS on TrustChain certificates, IPv6 only.
//!
//! - [`Endpoint`] is sans-IO: it is driven through the `runtime::Env` seams (datagrams, timers,
//!   clock), so the same code runs in the deterministic simulator and on real sockets. In the
//!   simulator every random draw (TLS randoms, X25519 keys, connection IDs, reset and token keys)
//!   follows the seed ([`Randomness::Seeded`], [`random`](crate::random)).
//! - Identity is the peer's TrustChain leaf: validated by TrustChain at the node's own clock, with
//!   revocation, against the node's trust bundle ([`Security`]); a dialled peer's certificate
//!   must name the address dialled, and an accepted one the address it comes from. A refusal
//!   names its class (`revoked`, `unknown_issuer`, …) on both sides.
//! - The API: reliable one-way messages, unreliable messages (QUIC datagrams), request/response,
//!   and bulk streams; length-prefixed frames with a bounded size ([`frame`]); bounded queues
//!   that refuse with `QueueFull` rather than grow; payloads are `bytes::Bytes`, never copied
//!   by the framing.
//! - IPv6 only: an IPv4 or IPv4-mapped address anywhere is refused by name
//!   ([`require_ipv6`]).

mod config;
mod conns;
mod endpoint;
pub mod frame;
mod from_trustchain;
#[cfg(feature = "bench-plaintext")]
mod plaintext;
mod random;
mod setup;
mod stats;
mod time;
mod tls;
mod transport;

pub use config::{require_ipv6, ConfigError, Randomness, StoqConfig};
pub use endpoint::{
    BulkId, Endpoint, Event, RequestFailed, RequestId, SetupError, StoqError, DRIVE_ROUNDS_MAX, EVENTS_MAX, TIMER_TOKEN,
};
pub use from_trustchain::TrustChainCredentials;
pub use setup::{PacketProtection, QuicSetup};
pub use stats::{StoqStats, TRANSPORT_CLASSES};
pub use tls::{refusal_class, Credentials, PeerIdentity, Security, TlsSetupError, Trust, ALPN};
pub use transport::{Stoq, BARE_CHANNELS_END, UNRELIABLE_BYTES_MAX};

#[cfg(test)]
mod tests;
