//! The member table: what this node believes about every other member, and the order in which it
//! probes them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;

use runtime::{shuffle, Entropy, Instant};

use super::suspicion::Suspicion;
use super::wire::NodeId;

/// A member's state in one node's view.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberState {
    /// Answering (or not yet found otherwise).
    Alive,
    /// Unanswered probes; may still refute.
    Suspect,
    /// Declared failed; returns only with a higher incarnation.
    Dead,
}

impl MemberState {
    /// The code used on the wire and in probes: 0 alive, 1 suspect, 2 dead.
    pub fn code(self) -> u8 {
        match self {
            MemberState::Alive => 0,
            MemberState::Suspect => 1,
            MemberState::Dead => 2,
        }
    }

    /// The state for a wire code.
    pub fn from_code(code: u8) -> Option<MemberState> {
        match code {
            0 => Some(MemberState::Alive),
            1 => Some(MemberState::Suspect),
            2 => Some(MemberState::Dead),
            _ => None,
        }
    }
}

/// One other member.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) id: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) incarnation: u64,
    pub(crate) state: MemberState,
    /// Boxed: rare, and the member table is the hottest data in a large cluster.
    pub(crate) suspicion: Option<Box<Suspicion>>,
    /// When it last answered one of this node's probes: first-hand evidence it is alive.
    pub(crate) last_ack: Option<Instant>,
    /// When its state last changed in this node's view.
    pub(crate) state_since: Instant,
    /// When one of this node's probes of it last went unanswered: first-hand evidence of failure.
    pub(crate) last_probe_failed: Option<Instant>,
}

/// A fixed, fast hasher for node ids. Lookups only: nothing iterates a map keyed by it, so its
/// order can never leak into a run.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
}

/// A map keyed by node id with [`IdHasher`].
pub(crate) type IdMap<V> = HashMap<NodeId, V, BuildHasherDefault<IdHasher>>;

impl Member {
    /// A member newly learned of, alive at `incarnation`, first heard of at `now`.
    pub(crate) fn alive(id: NodeId, addr: SocketAddr, incarnation: u64, now: Instant) -> Self {
        Member {
            id,
            addr,
            incarnation,
            state: MemberState::Alive,
            suspicion: None,
            last_ack: None,
            state_since: now,
            last_probe_failed: None,
        }
    }
}

/// Every other member this node knows, and its round-robin probe order. Members are never
/// removed (a dead member still counts in the majority), so positions in `list` are stable.
#[derive(Clone, Debug, Default)]
pub(crate) struct Members {
    list: Vec<Member>,
    index: IdMap<usize>,
    probe_order: Vec<NodeId>,
    probe_cursor: usize,
    alive: usize,
    dead: usize,
}

impl Members {
    pub(crate) fn get(&self, id: NodeId) -> Option<&Member> {
        self.index.get(&id).map(|&i| &self.list[i])
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Members in the alive state.
    pub(crate) fn alive(&self) -> usize {
        self.alive
    }

    /// Members in the dead state.
    pub(crate) fn dead(&self) -> usize {
        self.dead
    }

    /// Members in the order they became known.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Member> {
        self.list.iter()
    }

    /// Adds a member at a random place in the probe order (SWIM: so a newcomer is not probed
    /// by everyone at once, nor last by everyone).
    pub(crate) fn insert(&mut self, member: Member, rng: &mut (impl Entropy + ?Sized)) {
        debug_assert!(!self.index.contains_key(&member.id));
        match member.state {
            MemberState::Alive => self.alive += 1,
            MemberState::Dead => self.dead += 1,
            MemberState::Suspect => {}
        }
        // Append, then swap into a random place: O(1), where inserting into the middle of the
        // order would move half of it every time.
        self.probe_order.push(member.id);
        let last = self.probe_order.len() - 1;
        let at = rng.below(last as u64 + 1) as usize;
        self.probe_order.swap(at, last);
        self.index.insert(member.id, self.list.len());
        self.list.push(member);
    }

    /// Changes a member's state at `now`, keeping the alive count; returns the previous state.
    pub(crate) fn set_state(&mut self, id: NodeId, state: MemberState, now: Instant) -> Option<MemberState> {
        let member = self.get_mut(id)?;
        let previous = member.state;
        if previous != state {
            member.state_since = now;
        }
        member.state = state;
        if state != MemberState::Suspect {
            member.suspicion = None;
        }
        match (previous == MemberState::Alive, state == MemberState::Alive) {
            (true, false) => self.alive -= 1,
            (false, true) => self.alive += 1,
            _ => {}
        }
        match (previous == MemberState::Dead, state == MemberState::Dead) {
            (true, false) => self.dead -= 1,
            (false, true) => self.dead += 1,
            _ => {}
        }
        Some(previous)
    }

    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut Member> {
        let i = *self.index.get(&id)?;
        Some(&mut self.list[i])
    }

    /// The next member to probe: round-robin over a shuffled order, skipping the dead, reshuffled
    /// after each full pass. This bounds the time until a failed member is probed.
    pub(crate) fn next_probe_target(&mut self, rng: &mut (impl Entropy + ?Sized)) -> Option<NodeId> {
        for _ in 0..=self.probe_order.len() {
            if self.probe_cursor >= self.probe_order.len() {
                shuffle(rng, &mut self.probe_order);
                self.probe_cursor = 0;
            }
            let id = *self.probe_order.get(self.probe_cursor)?;
            self.probe_cursor += 1;
            if self.get(id).is_some_and(|m| m.state != MemberState::Dead) {
                return Some(id);
            }
        }
        None
    }

    /// Up to `k` distinct random members in `states`, other than `exclude`.
    ///
    /// Draws from the probe order by rejection, which costs O(k) when most members qualify (the
    /// common case: gossip targets among a mostly alive membership); falls back to a full scan
    /// only when draws keep missing.
    pub(crate) fn random(
        &self,
        k: usize,
        states: &[MemberState],
        exclude: Option<NodeId>,
        rng: &mut (impl Entropy + ?Sized),
    ) -> Vec<&Member> {
        self.random_where(k, |m| states.contains(&m.state) && Some(m.id) != exclude, rng)
    }

    /// Up to `k` distinct random members for which `qualifies` holds (see [`Self::random`]).
    pub(crate) fn random_where(
        &self,
        k: usize,
        qualifies: impl Fn(&Member) -> bool,
        rng: &mut (impl Entropy + ?Sized),
    ) -> Vec<&Member> {
        let qualifies = |m: &&Member| qualifies(m);
        let mut picked: Vec<&Member> = Vec::with_capacity(k);
        if self.probe_order.is_empty() || k == 0 {
            return picked;
        }
        let attempts = 4 * k + 8;
        for _ in 0..attempts {
            if picked.len() == k {
                return picked;
            }
            let id = self.probe_order[rng.below(self.probe_order.len() as u64) as usize];
            let member = self.get(id).expect("probe order lists members");
            if qualifies(&member) && !picked.iter().any(|p| p.id == id) {
                picked.push(member);
            }
        }
        // Few qualify: choose among all of them exactly.
        let mut candidates: Vec<&Member> = self.list.iter().filter(qualifies).collect();
        let k = k.min(candidates.len());
        for i in 0..k {
            let j = i + rng.below((candidates.len() - i) as u64) as usize;
            candidates.swap(i, j);
        }
        candidates.truncate(k);
        candidates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::DetRng;

    fn member(id: u64, state: MemberState) -> Member {
        Member {
            state,
            ..Member::alive(NodeId(id), "[fd00::1]:1".parse().unwrap(), 0, Instant::ZERO)
        }
    }

    #[test]
    fn round_robin_probes_everyone_once_per_pass_and_skips_the_dead() {
        let mut rng = DetRng::seed_from_u64(5);
        let mut members = Members::default();
        for id in 0..10 {
            members.insert(
                member(id, if id == 3 { MemberState::Dead } else { MemberState::Alive }),
                &mut rng,
            );
        }
        let mut pass: Vec<u64> = (0..9).map(|_| members.next_probe_target(&mut rng).unwrap().0).collect();
        pass.sort_unstable();
        assert_eq!(pass, vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(members.alive(), 9);
        assert_eq!(members.dead(), 1);
    }

    #[test]
    fn random_picks_are_distinct_and_filtered() {
        let mut rng = DetRng::seed_from_u64(5);
        let mut members = Members::default();
        for id in 0..6 {
            members.insert(member(id, MemberState::Alive), &mut rng);
        }
        members.set_state(NodeId(2), MemberState::Dead, Instant::ZERO);
        let picked = members.random(10, &[MemberState::Alive], Some(NodeId(0)), &mut rng);
        let mut ids: Vec<u64> = picked.iter().map(|m| m.id.0).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 3, 4, 5]);
    }
}
