//! The dissemination queue: updates waiting to be piggybacked, least-sent first, each sent a
//! bounded number of times. A newer update about a member replaces the older one.

use std::collections::{BTreeMap, BTreeSet};

use super::wire::{NodeId, Update};

#[derive(Clone, Debug)]
struct Pending {
    update: Update,
    transmits: u32,
    order: u64,
}

/// Updates waiting to be gossiped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Broadcasts {
    by_node: BTreeMap<NodeId, Pending>,
    /// (transmits, newest first, node): the order in which updates are picked.
    queue: BTreeSet<(u32, u64, NodeId)>,
    next_order: u64,
}

impl Broadcasts {
    /// Queues `update`, replacing any pending update about the same member.
    pub(crate) fn push(&mut self, update: Update) {
        if let Some(old) = self.by_node.remove(&update.node) {
            self.queue.remove(&(old.transmits, old.order, update.node));
        }
        // Newest first among equals: orders count down.
        self.next_order += 1;
        let order = u64::MAX - self.next_order;
        self.queue.insert((0, order, update.node));
        self.by_node.insert(update.node, Pending { update, transmits: 0, order });
    }

    /// Up to `max` updates to piggyback now; each counts as sent once more and is dropped after
    /// `transmit_limit` sends.
    pub(crate) fn take(&mut self, max: usize, transmit_limit: u32) -> Vec<Update> {
        let picked: Vec<(u32, u64, NodeId)> = self.queue.iter().take(max).copied().collect();
        let mut out = Vec::with_capacity(picked.len());
        for key in picked {
            self.queue.remove(&key);
            let (transmits, order, node) = key;
            let pending = self.by_node.get_mut(&node).expect("queue and map agree");
            out.push(pending.update);
            pending.transmits = transmits + 1;
            if pending.transmits >= transmit_limit {
                self.by_node.remove(&node);
            } else {
                self.queue.insert((transmits + 1, order, node));
            }
        }
        out
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::wire::Claim;

    fn suspect(node: u64, inc: u64) -> Update {
        Update { node: NodeId(node), incarnation: inc, claim: Claim::Suspect { by: NodeId(0) } }
    }

    #[test]
    fn least_sent_first_and_bounded_retransmits() {
        let mut b = Broadcasts::default();
        b.push(suspect(1, 0));
        b.push(suspect(2, 0));
        assert_eq!(b.take(1, 2), vec![suspect(2, 0)]);
        assert_eq!(b.take(1, 2), vec![suspect(1, 0)]);
        assert_eq!(b.take(5, 2).len(), 2);
        assert!(b.is_empty());
    }

    #[test]
    fn newer_news_about_a_member_replaces_older() {
        let mut b = Broadcasts::default();
        b.push(suspect(1, 0));
        b.push(suspect(1, 3));
        assert_eq!(b.take(10, 1), vec![suspect(1, 3)]);
    }
}
