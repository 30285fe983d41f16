//! The dissemination queue: updates waiting to be piggybacked, least-sent first, each sent a
//! bounded number of times. A newer update about a member replaces the older one.
//!
//! Updates sit in buckets by how often they were sent; taking one moves it to the next bucket.
//! A replaced update is left in its bucket and skipped when reached (its generation is stale),
//! so every operation is O(1) amortised: this queue runs on every datagram sent.

use std::collections::VecDeque;

use super::members::IdMap;
use super::wire::{NodeId, Update};

#[derive(Clone, Debug)]
struct Pending {
    update: Update,
    transmits: u32,
    generation: u64,
}

/// Updates waiting to be gossiped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Broadcasts {
    by_node: IdMap<Pending>,
    /// `buckets[k]`: (member, generation) of updates sent `k` times, newest first.
    buckets: Vec<VecDeque<(NodeId, u64)>>,
    next_generation: u64,
}

impl Broadcasts {
    /// Queues `update`, replacing any pending update about the same member.
    pub(crate) fn push(&mut self, update: Update) {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.by_node.insert(
            update.node,
            Pending {
                update,
                transmits: 0,
                generation,
            },
        );
        if self.buckets.is_empty() {
            self.buckets.push(VecDeque::new());
        }
        self.buckets[0].push_front((update.node, generation));
    }

    /// Up to `max` updates to piggyback now; each counts as sent once more and is dropped after
    /// `transmit_limit` sends.
    pub(crate) fn take(&mut self, max: usize, transmit_limit: u32) -> Vec<Update> {
        let mut out = Vec::with_capacity(max.min(self.by_node.len()));
        let mut promoted: Vec<(usize, NodeId, u64)> = Vec::new();
        for bucket in 0..self.buckets.len() {
            while out.len() < max {
                let Some((node, generation)) = self.buckets[bucket].pop_front() else {
                    break;
                };
                let Some(pending) = self.by_node.get_mut(&node) else {
                    continue;
                };
                if pending.generation != generation {
                    continue;
                }
                out.push(pending.update);
                pending.transmits += 1;
                if pending.transmits >= transmit_limit {
                    self.by_node.remove(&node);
                } else {
                    promoted.push((bucket + 1, node, generation));
                }
            }
            if out.len() >= max {
                break;
            }
        }
        // Promoted after the walk, so one message never carries the same update twice.
        for (bucket, node, generation) in promoted {
            if self.buckets.len() <= bucket {
                self.buckets.resize_with(bucket + 1, VecDeque::new);
            }
            self.buckets[bucket].push_back((node, generation));
        }
        if self.by_node.is_empty() {
            self.buckets.iter_mut().for_each(VecDeque::clear);
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
        Update {
            node: NodeId(node),
            incarnation: inc,
            claim: Claim::Suspect { by: NodeId(0) },
        }
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
    fn one_message_never_carries_an_update_twice() {
        let mut b = Broadcasts::default();
        b.push(suspect(1, 0));
        assert_eq!(b.take(10, 5), vec![suspect(1, 0)]);
    }

    #[test]
    fn newer_news_about_a_member_replaces_older() {
        let mut b = Broadcasts::default();
        b.push(suspect(1, 0));
        b.push(suspect(1, 3));
        assert_eq!(b.take(10, 1), vec![suspect(1, 3)]);
        assert!(b.is_empty());
    }
}
