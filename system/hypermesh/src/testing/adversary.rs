//! Byzantine validators for the simulator: [`Adversary`] sits between a replica and the
//! network ([`crate::consensus::Tamper`]) and changes what it sends, signing with the replica's
//! own key where the attack needs valid signatures. A scenario gives at most `f` validators an
//! adversary; safety must hold and the cluster must keep committing whatever they do.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use runtime::{Entropy, WallTime};

use crate::consensus::{
    Message, Outgoing, Proposal, QcSummary, Tamper, ValidatorIndex, ValidatorKey, ValidatorSet, Vote,
};

/// What a Byzantine validator does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Proposes two blocks in each of its views (one to the even-indexed validators, one to the
    /// odd), and sends a second vote for another block with every vote.
    Equivocate,
    /// Corrupts the signature of every vote, timeout and proposal it sends.
    Forge,
    /// Sends nothing to half of the other validators.
    Withhold,
    /// Holds every message it sends for this long.
    Delay(Duration),
    /// Stamps its blocks this far ahead of its clock.
    ClockLie(Duration),
    /// Flips one random byte in half of the messages it sends.
    Mutate,
    /// Sends its votes and timeouts as if from this other validator (with its own signatures,
    /// which cannot verify as the other's).
    Impersonate(ValidatorIndex),
    /// Twins: a second, honest replica with this validator's key runs on the node given, and
    /// the simulator splits the other validators between the two, so that each instance sees only
    /// its part of the network. Neither misbehaves on its own; together they sign conflicting
    /// messages whenever their views of the chain differ.
    Twins(u32),
}

impl Behaviour {
    /// Its name in scenarios and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Equivocate => "equivocate",
            Behaviour::Forge => "forge",
            Behaviour::Withhold => "withhold",
            Behaviour::Delay(_) => "delay",
            Behaviour::ClockLie(_) => "clock-lie",
            Behaviour::Mutate => "mutate",
            Behaviour::Impersonate(_) => "impersonate",
            Behaviour::Twins(_) => "twins",
        }
    }
}

/// A Byzantine validator's tampering; see [`Behaviour`].
pub struct Adversary {
    behaviour: Behaviour,
    set: ValidatorSet,
    key: ValidatorKey,
    me: ValidatorIndex,
    peers: Vec<SocketAddr>,
}

impl Adversary {
    /// Validator `me` of `set` (reached at `peers`), holding `key`, behaving as `behaviour`.
    pub fn new(
        behaviour: Behaviour,
        set: ValidatorSet,
        key: ValidatorKey,
        me: ValidatorIndex,
        peers: Vec<SocketAddr>,
    ) -> Self {
        Adversary {
            behaviour,
            set,
            key,
            me,
            peers,
        }
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.peers.iter().position(|a| *a == addr)
    }

    fn now(to: SocketAddr, message: &Message) -> Vec<Outgoing> {
        vec![Outgoing {
            to,
            bytes: message.encode(),
            after: Duration::ZERO,
        }]
    }

    /// `proposal` with its block changed by `change`, signed again by this validator.
    fn resigned(&self, proposal: &Proposal, change: impl FnOnce(&mut crate::consensus::Block)) -> Proposal {
        let mut block = proposal.block.clone();
        change(&mut block);
        Proposal::sign(
            &self.set,
            &self.key,
            block,
            proposal.justify.clone(),
            proposal.timeout.clone(),
        )
        .expect("the adversary proposes in its own views")
    }
}

fn flip(signature: &mut crate::consensus::Signature) {
    signature.0[0] ^= 0x01;
}

impl Tamper for Adversary {
    fn outgoing(&mut self, to: SocketAddr, message: &Message, rng: &mut dyn Entropy, _wall: WallTime) -> Vec<Outgoing> {
        match (&self.behaviour, message) {
            (Behaviour::Equivocate, Message::Proposal(p)) if p.block.proposer == self.me => {
                let odd = self.index_of(to).is_some_and(|i| i % 2 == 1);
                if odd {
                    let rival = self.resigned(p, |b| b.timestamp_ms = b.timestamp_ms.wrapping_add(1));
                    Self::now(to, &Message::Proposal(Box::new(rival)))
                } else {
                    Self::now(to, message)
                }
            }
            (Behaviour::Equivocate, Message::VoteFor(v, _)) => {
                let other = QcSummary {
                    view: v.view,
                    height: v.height,
                    block: crate::consensus::sha256(&v.block),
                };
                let second = Vote::sign(&self.set, &self.key, other).expect("a validator");
                let mut out = Self::now(to, message);
                out.extend(Self::now(to, &Message::Vote(second)));
                out
            }
            (Behaviour::Forge, Message::VoteFor(v, h)) => {
                let mut v = v.clone();
                flip(&mut v.signature);
                Self::now(to, &Message::VoteFor(v, h.clone()))
            }
            (Behaviour::Forge, Message::Timeout(t)) => {
                let mut t = t.clone();
                flip(&mut t.signature);
                Self::now(to, &Message::Timeout(t))
            }
            (Behaviour::Forge, Message::Proposal(p)) => {
                let mut p = p.clone();
                flip(&mut p.signature);
                Self::now(to, &Message::Proposal(p))
            }
            (Behaviour::Withhold, _) => {
                let i = self.index_of(to);
                let withheld = i.is_some_and(|i| (i + usize::from(self.me)) % 2 == 1);
                if withheld {
                    Vec::new()
                } else {
                    Self::now(to, message)
                }
            }
            (Behaviour::Delay(d), _) => vec![Outgoing {
                to,
                bytes: message.encode(),
                after: *d,
            }],
            (Behaviour::ClockLie(ahead), Message::Proposal(p)) if p.block.proposer == self.me => {
                let ms = ahead.as_millis() as u64;
                let lied = self.resigned(p, |b| b.timestamp_ms = b.timestamp_ms.saturating_add(ms));
                Self::now(to, &Message::Proposal(Box::new(lied)))
            }
            (Behaviour::Mutate, _) => {
                let bytes = message.encode();
                if rng.next_u64().is_multiple_of(2) && !bytes.is_empty() {
                    let mut b = bytes.to_vec();
                    let at = rng.next_u64() as usize % b.len();
                    b[at] ^= 1 << (rng.next_u64() % 8);
                    vec![Outgoing {
                        to,
                        bytes: Bytes::from(b),
                        after: Duration::ZERO,
                    }]
                } else {
                    vec![Outgoing {
                        to,
                        bytes,
                        after: Duration::ZERO,
                    }]
                }
            }
            (Behaviour::Impersonate(victim), Message::VoteFor(v, h)) => {
                let mut v = v.clone();
                v.signer = *victim;
                Self::now(to, &Message::VoteFor(v, h.clone()))
            }
            (Behaviour::Impersonate(victim), Message::Timeout(t)) => {
                let mut t = t.clone();
                t.signer = *victim;
                Self::now(to, &Message::Timeout(t))
            }
            _ => Self::now(to, message),
        }
    }
}
