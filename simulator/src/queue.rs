//! The event queue: events in (time, insertion order).
//!
//! Ties in time are broken by insertion order, which is what makes equal-time events
//! deterministic. Simulated workloads produce many events at the same instant (a node answering a
//! round of probes, a broadcast over constant-latency links), so the queue keeps one FIFO per
//! distinct pending time and a min-heap over the distinct times only. An event then costs a hash
//! lookup and a deque push/pop; the heap moves only when a new instant appears. When every event
//! has its own instant (jittered links) this degrades to a heap of times plus one small deque per
//! time, and deques are recycled so that case does not allocate per event either.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use crate::fast_hash::FastBuildHasher;
use crate::SimTime;

/// Deques grown beyond this many events are not kept for reuse, so one burst does not pin its
/// memory for the rest of the run.
const SPARE_CAPACITY_MAX: usize = 4096;

/// Pending events in dispatch order: earliest time first, equal times in insertion order.
pub struct EventQueue<E> {
    /// Each distinct pending time once, earliest on top.
    times: BinaryHeap<Reverse<SimTime>>,
    /// The FIFO of each pending time, as an index into `fifos`.
    fifo_of: HashMap<SimTime, u32, FastBuildHasher>,
    fifos: Vec<Fifo<E>>,
    /// Indices of empty FIFOs ready for reuse.
    spare: Vec<u32>,
    len: usize,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            times: BinaryHeap::new(),
            fifo_of: HashMap::default(),
            fifos: Vec::new(),
            spare: Vec::new(),
            len: 0,
        }
    }

    /// Queues `event` at `at`, after every event already queued at `at`.
    pub fn push(&mut self, at: SimTime, event: E) {
        self.len += 1;
        if let Some(&fifo) = self.fifo_of.get(&at) {
            self.fifos[fifo as usize].push(event);
            return;
        }
        let fifo = match self.spare.pop() {
            Some(fifo) => fifo,
            None => {
                self.fifos.push(Fifo::default());
                u32::try_from(self.fifos.len() - 1).expect("fewer than 2^32 distinct pending times")
            }
        };
        self.fifos[fifo as usize].push(event);
        self.fifo_of.insert(at, fifo);
        self.times.push(Reverse(at));
    }

    /// The time of the next event.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.times.peek().map(|t| t.0)
    }

    /// Takes the next event.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let at = self.times.peek()?.0;
        let fifo = *self.fifo_of.get(&at).expect("every pending time has a FIFO");
        let queued = &mut self.fifos[fifo as usize];
        let event = queued.pop().expect("a pending time's FIFO is not empty");
        if queued.is_empty() {
            if queued.rest.capacity() > SPARE_CAPACITY_MAX {
                queued.rest = VecDeque::new();
            }
            self.times.pop();
            self.fifo_of.remove(&at);
            self.spare.push(fifo);
        }
        self.len -= 1;
        Some((at, event))
    }

    /// Events queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The events of one instant. The first is held inline: most instants have one event when links
/// are jittered, and that saves a pointer chase into the deque's buffer.
struct Fifo<E> {
    first: Option<E>,
    rest: VecDeque<E>,
}

impl<E> Default for Fifo<E> {
    fn default() -> Self {
        Fifo {
            first: None,
            rest: VecDeque::new(),
        }
    }
}

impl<E> Fifo<E> {
    fn push(&mut self, event: E) {
        // `first` is only ever the oldest: once it has been taken, later events queue in `rest`
        // until the FIFO empties.
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(event);
        } else {
            self.rest.push_back(event);
        }
    }

    fn pop(&mut self) -> Option<E> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn earliest_first_and_ties_in_insertion_order() {
        let mut q = EventQueue::new();
        q.push(SimTime::from_nanos(5), "b");
        q.push(SimTime::from_nanos(1), "a");
        q.push(SimTime::from_nanos(5), "c");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!["a", "b", "c"]);
        assert!(q.is_empty());
    }

    proptest! {
        /// Any interleaving of pushes and pops yields what a sort by (time, insertion order)
        /// yields, including pushes at the time being drained.
        #[test]
        fn matches_a_stable_sort(ops in proptest::collection::vec((0u64..20, any::<bool>()), 1..300)) {
            let mut q = EventQueue::new();
            let mut model: Vec<(SimTime, usize)> = Vec::new();
            let mut now = 0u64;
            for (i, (dt, pop)) in ops.into_iter().enumerate() {
                if pop {
                    let got = q.pop();
                    let want = model.iter().enumerate().min_by_key(|(_, (t, seq))| (*t, *seq)).map(|(j, _)| j);
                    let want = want.map(|j| model.remove(j));
                    prop_assert_eq!(got, want);
                    if let Some((t, _)) = want { now = t.as_nanos(); }
                } else {
                    let at = SimTime::from_nanos(now + dt);
                    q.push(at, i);
                    model.push((at, i));
                }
                prop_assert_eq!(q.len(), model.len());
            }
        }
    }
}
