//! The membership `slanderer`: a node whose every membership datagram also claims live members
//! dead. It is written into the datagrams on the wire (an [`Interceptor`]), so the slanderer's
//! own membership runs unchanged and the lies carry its real identity as their author, as a
//! compromised node's would.
//!
//! The interceptor reads every membership datagram of the run to learn each member's newest
//! incarnation, so that a lie names the incarnation its victim holds now and is not dismissed as
//! stale. What membership must do with such claims: no death on hearsay (a second-hand death
//! only starts a suspicion, and the observer's own probe must fail), and a member that hears it
//! is suspected refutes at once.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use hypermesh::membership::wire::{Claim, Message, Update, UPDATES_PER_MESSAGE_MAX};
use hypermesh::membership::{NodeId, MOUNT};
use runtime::{DetRng, Entropy};
use simulator::{Intercepted, Interceptor, LinkEnds};

/// False death claims added to each datagram a slanderer sends.
pub const LIES_PER_DATAGRAM: usize = 2;

/// Writes lies into the slanderers' datagrams; see the module documentation.
pub struct Slanderer {
    /// The slandering nodes (simulator indices).
    pub nodes: BTreeSet<u32>,
    /// Every member heard of, with the newest incarnation seen in anyone's datagram.
    incarnations: BTreeMap<NodeId, u64>,
}

impl Slanderer {
    /// Slander from `nodes`.
    pub fn new(nodes: BTreeSet<u32>) -> Self {
        Slanderer {
            nodes,
            incarnations: BTreeMap::new(),
        }
    }

    /// Notes the incarnations `message` shows.
    fn learn(&mut self, message: &Message) {
        for u in &message.updates {
            let newest = self.incarnations.entry(u.node).or_default();
            *newest = (*newest).max(u.incarnation);
        }
        if let hypermesh::membership::wire::Body::PushPull { records, .. } = &message.body {
            for r in records {
                let newest = self.incarnations.entry(r.node).or_default();
                *newest = (*newest).max(r.incarnation);
            }
        }
    }
}

impl Interceptor for Slanderer {
    fn intercept(&mut self, link: LinkEnds, payload: Bytes, rng: &mut DetRng) -> Intercepted {
        let Some((&channel, body)) = payload.split_first() else {
            return Intercepted::Pass(payload);
        };
        if channel != MOUNT.channel.0 {
            return Intercepted::Pass(payload);
        }
        let Ok(mut message) = Message::decode(body) else {
            return Intercepted::Pass(payload);
        };
        self.learn(&message);
        if !self.nodes.contains(&link.from_node) {
            return Intercepted::Pass(payload);
        }
        let victims: Vec<(NodeId, u64)> = self
            .incarnations
            .iter()
            .filter(|(node, _)| **node != message.sender)
            .map(|(node, incarnation)| (*node, *incarnation))
            .collect();
        let room = UPDATES_PER_MESSAGE_MAX.saturating_sub(message.updates.len());
        let lies = LIES_PER_DATAGRAM.min(room).min(victims.len());
        if lies == 0 {
            return Intercepted::Pass(payload);
        }
        for _ in 0..lies {
            let (node, incarnation) = victims[rng.below(victims.len() as u64) as usize];
            message.updates.push(Update {
                node,
                incarnation,
                claim: Claim::Dead { by: message.sender },
            });
        }
        let encoded = message.encode();
        let mut framed = BytesMut::with_capacity(1 + encoded.len());
        framed.put_u8(channel);
        framed.extend_from_slice(&encoded);
        Intercepted::Mutated(framed.freeze())
    }
}
