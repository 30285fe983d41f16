//! Twins ([`hypermesh::testing::adversary::Behaviour::Twins`]): two honest replicas with one
//! validator's key, each seeing part of the network, as commonware's `twins` and the Twins paper
//! (Bano et al., 2020) build them. The interceptor below splits the network; the factory runs the
//! twin on its own node.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use bytes::Bytes;
use simulator::{Intercepted, Interceptor, LinkEnds};

/// The network of a pair of twins: the validator at `original` talks only to the validators
/// outside the twin's side (and to every client), its twin at `twin` only to those on it.
/// The side changes every `period` (the `sides` in turn, round and round), so that each
/// instance builds on a chain the other did not see, and either may find a quorum. What a validator of the twin's side sends to the original's address reaches
/// the twin, and what the twin sends arrives from the original's address, so that to its side
/// the twin is the validator.
pub struct Twins {
    /// The validator's node and address.
    pub original: (u32, SocketAddr),
    /// The twin's node.
    pub twin: u32,
    /// The validators (nodes) that see the twin instead of the original, period by period.
    pub sides: Vec<BTreeSet<u32>>,
    /// How long one side lasts.
    pub period: std::time::Duration,
}

impl Interceptor for Twins {
    fn intercept(&mut self, link: LinkEnds, payload: Bytes, _rng: &mut runtime::DetRng) -> Intercepted {
        let (original, original_addr) = self.original;
        let turn = link.at.as_nanos() / (self.period.as_nanos() as u64).max(1);
        let side = &self.sides[(turn % self.sides.len() as u64) as usize];
        let on_twin_side = side.contains(&link.to_node);
        if link.from_node == self.twin {
            return if on_twin_side {
                Intercepted::Rerouted {
                    to_node: link.to_node,
                    from: original_addr,
                    payload,
                }
            } else {
                Intercepted::Dropped
            };
        }
        if link.to_node == original && side.contains(&link.from_node) {
            return Intercepted::Rerouted {
                to_node: self.twin,
                from: link.from,
                payload,
            };
        }
        if link.from_node == original && on_twin_side {
            return Intercepted::Dropped;
        }
        Intercepted::Pass(payload)
    }
}
