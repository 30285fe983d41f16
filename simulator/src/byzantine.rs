//! The seam for Byzantine behaviour on links. Byzantine *nodes* need no special support: a
//! node's actor is whatever the [`crate::ActorFactory`] builds for it, so an adversarial actor
//! simply replaces the honest one.

use std::net::SocketAddr;

use bytes::Bytes;
use runtime::DetRng;

use crate::SimTime;

/// Both ends of a datagram in flight.
#[derive(Copy, Clone, Debug)]
pub struct LinkEnds {
    /// Sending node.
    pub from_node: u32,
    /// Receiving node.
    pub to_node: u32,
    /// Source address.
    pub from: SocketAddr,
    /// Destination address.
    pub to: SocketAddr,
    /// When it is sent.
    pub at: SimTime,
}

/// What an interceptor did with a datagram.
#[derive(Clone, Debug)]
pub enum Intercepted {
    /// Left untouched.
    Pass(Bytes),
    /// Replaced by other bytes (counted as `byzantine_mutation`).
    Mutated(Bytes),
    /// Swallowed (counted as `byzantine_drop`).
    Dropped,
    /// Delivered to another node, as if sent from another address (counted as
    /// `byzantine_reroute`): how twins, two nodes with one identity, each see their part of the
    /// network.
    Rerouted {
        /// The node it reaches instead.
        to_node: u32,
        /// The source address it arrives from.
        from: SocketAddr,
        /// Its bytes.
        payload: Bytes,
    },
}

/// A man in the middle on every link: sees each datagram as it is sent and may alter or drop
/// it. Forging new datagrams is [`crate::Simulation::forge`].
pub trait Interceptor {
    /// Decides the fate of `payload` on `link`; `rng` is the interceptor's own seeded stream.
    fn intercept(&mut self, link: LinkEnds, payload: Bytes, rng: &mut DetRng) -> Intercepted;
}
