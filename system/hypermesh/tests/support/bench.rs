//! One real membership node driven by hand among scripted peers.
//!
//! The node under test is a [`MembershipNode`] on a [`Host`] over [`BareDatagrams`], called with a
//! [`RecordingEnv`]: time moves only when the test says, so a test can act between a ping and its
//! ack. Its peers are scripted and honest but simple: a peer acks a ping meant for it, refutes an
//! accusation about itself (the reply carries its new incarnation), answers an exchange with every
//! peer's current record, and relays nothing (indirect probes fail, as when everyone has lost the
//! suspect). Replies take [`REPLY_LATENCY`]. What the node sends to a peer whose link is down, or
//! that a loss rule claims, never reaches it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use hypermesh::membership::wire::{Body, Claim, Message, Record, Update};
use hypermesh::membership::{MemberState, MembershipConfig, MembershipNode, NodeId, MOUNT};
use runtime::host::{BareDatagrams, Host};
use runtime::{Actor, Clock, Instant, Probe, RecordingEnv};

/// The node under test.
pub const NODE: NodeId = NodeId(100);

/// How long a peer takes to answer.
pub const REPLY_LATENCY: Duration = Duration::from_millis(1);

/// The incarnation every peer starts at (a node's first life).
pub const FIRST_INCARNATION: u64 = 1;

/// One message the node sent.
#[derive(Clone, Debug)]
pub struct Sent {
    /// When.
    pub at: Instant,
    /// To whom.
    pub to: SocketAddr,
    /// What.
    pub message: Message,
    /// Whether the network lost it.
    pub lost: bool,
}

impl Sent {
    /// Whether this is a ping of `target`.
    pub fn is_ping_of(&self, target: NodeId) -> bool {
        matches!(self.message.body, Body::Ping { target: t, .. } if t == target)
    }

    /// Whether it carries a claim about `node` matching `claim`.
    pub fn carries(&self, node: NodeId, claim: impl Fn(&Claim) -> bool) -> bool {
        self.message.updates.iter().any(|u| u.node == node && claim(&u.claim))
    }

    /// Whether it carries any update about `node`.
    pub fn mentions(&self, node: NodeId) -> bool {
        self.carries(node, |_| true)
    }
}

/// A scripted peer.
#[derive(Clone, Debug)]
struct Peer {
    id: NodeId,
    addr: SocketAddr,
    incarnation: u64,
}

impl Peer {
    fn alive(&self) -> Update {
        Update {
            node: self.id,
            incarnation: self.incarnation,
            claim: Claim::Alive { addr: self.addr },
        }
    }

    fn record(&self) -> Record {
        Record {
            node: self.id,
            addr: self.addr,
            incarnation: self.incarnation,
            state: MemberState::Alive.code(),
        }
    }

    /// The highest incarnation `message` accuses this peer of being suspect or dead at.
    fn accusation(&self, message: &Message) -> Option<u64> {
        let in_updates = message
            .updates
            .iter()
            .filter(|u| u.node == self.id && !matches!(u.claim, Claim::Alive { .. }))
            .map(|u| u.incarnation);
        let in_records: Vec<u64> = match &message.body {
            Body::PushPull { records, .. } => records
                .iter()
                .filter(|r| r.node == self.id && r.state != MemberState::Alive.code())
                .map(|r| r.incarnation)
                .collect(),
            _ => Vec::new(),
        };
        in_updates.chain(in_records).max()
    }
}

/// A rule deciding whether a datagram the node sends is lost.
type LossRule = Box<dyn FnMut(&Sent) -> bool>;

/// A datagram on its way to the node.
struct Inbound {
    at: Instant,
    from: SocketAddr,
    payload: Bytes,
}

/// One real node among scripted peers: see the module documentation.
pub struct Bench {
    host: Host,
    env: RecordingEnv,
    peers: Vec<Peer>,
    links_down: BTreeSet<usize>,
    loss_rules: Vec<LossRule>,
    inbound: Vec<Inbound>,
    sent: Vec<Sent>,
    probes: Vec<(Instant, Probe)>,
}

impl Bench {
    /// The node, with the guide's settings and entropy `seed`, joined through peer 0 of `peers`
    /// scripted peers, all alive at their first incarnation.
    pub fn joined(peers: usize, seed: u64) -> Bench {
        assert!(peers >= 1, "the node joins through peer 0");
        let peers: Vec<Peer> = (0..peers)
            .map(|i| Peer {
                id: NodeId(i as u64 + 1),
                addr: format!("[fd00::{:x}]:7000", i + 1).parse().expect("address"),
                incarnation: FIRST_INCARNATION,
            })
            .collect();
        let addr: SocketAddr = "[fd00::100]:7000".parse().expect("address");
        let config = MembershipConfig::new(NODE, vec![peers[0].addr]);
        config.validate().expect("the guide's settings are valid");
        let mut bench = Bench {
            host: Host::new(BareDatagrams).mount(MOUNT, MembershipNode::new(config)),
            env: RecordingEnv::new(addr, seed),
            peers,
            links_down: BTreeSet::new(),
            loss_rules: Vec::new(),
            inbound: Vec::new(),
            sent: Vec::new(),
            probes: Vec::new(),
        };
        bench.host.on_start(&mut bench.env);
        bench.pump();
        bench.run_for(Duration::from_millis(10));
        assert_eq!(
            bench.probes_named("joined").count(),
            1,
            "the node joined through its seed"
        );
        assert_eq!(
            bench.node().view().len(),
            bench.peers.len(),
            "the seed listed every peer"
        );
        bench
    }

    /// Peer `i`'s id.
    pub fn peer(&self, i: usize) -> NodeId {
        self.peers[i].id
    }

    /// Peer `i`'s address.
    pub fn peer_addr(&self, i: usize) -> SocketAddr {
        self.peers[i].addr
    }

    /// Peer `i`'s incarnation now.
    pub fn peer_incarnation(&self, i: usize) -> u64 {
        self.peers[i].incarnation
    }

    /// Makes peer `i` move to `incarnation`, as after refuting someone else's suspicion.
    pub fn set_peer_incarnation(&mut self, i: usize, incarnation: u64) {
        self.peers[i].incarnation = incarnation;
    }

    /// The node's clock.
    pub fn now(&self) -> Instant {
        self.env.now()
    }

    /// The node's protocol, to read its view.
    pub fn node(&self) -> &MembershipNode {
        self.host.protocol::<MembershipNode>().expect("membership is mounted")
    }

    /// Peer `i`'s state in the node's view.
    pub fn state_of(&self, i: usize) -> MemberState {
        let id = self.peer(i);
        self.node()
            .view()
            .into_iter()
            .find(|(member, _)| *member == id)
            .map(|(_, state)| state)
            .expect("the node knows every peer")
    }

    /// Every state the node recorded for `id` (`member` probes: 0 alive, 1 suspect, 2 dead),
    /// with when.
    pub fn recorded_states(&self, id: NodeId) -> Vec<(Instant, i64)> {
        self.probes
            .iter()
            .filter(|(_, p)| p.name == "member" && p.subject == id.0)
            .map(|(at, p)| (*at, p.value))
            .collect()
    }

    /// Every probe named `name` the node recorded, with when.
    pub fn probes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a (Instant, Probe)> + 'a {
        self.probes.iter().filter(move |(_, p)| p.name == name)
    }

    /// Every message the node sent so far, lost or not.
    pub fn sent(&self) -> &[Sent] {
        &self.sent
    }

    /// Cuts (`false`) or restores (`true`) the link from the node to peer `i`.
    pub fn set_link(&mut self, i: usize, up: bool) {
        if up {
            self.links_down.remove(&i);
        } else {
            self.links_down.insert(i);
        }
    }

    /// Loses every message the node sends from now on that matches `matches`.
    pub fn lose_all(&mut self, matches: impl Fn(&Sent) -> bool + 'static) {
        self.loss_rules.push(Box::new(move |sent| matches(sent)));
    }

    /// Loses the first message the node sends from now on that matches `matches`.
    pub fn lose_next(&mut self, matches: impl Fn(&Sent) -> bool + 'static) {
        let mut spent = false;
        self.loss_rules.push(Box::new(move |sent| {
            let lose = !spent && matches(sent);
            spent |= lose;
            lose
        }));
    }

    /// Peer `from` sends the node `updates` with `body`, arriving now.
    pub fn deliver(&mut self, from: usize, body: Body, updates: Vec<Update>) {
        let message = Message {
            sender: self.peer(from),
            body,
            updates,
        };
        let from = self.peer_addr(from);
        self.host.on_datagram(&mut self.env, from, framed(&message));
        self.pump();
    }

    /// `message` arrives now from `from`, whoever that is: a stranger, or a forger.
    #[allow(dead_code)] // strangers.rs only
    pub fn deliver_from(&mut self, from: SocketAddr, message: &Message) {
        self.host.on_datagram(&mut self.env, from, framed(message));
        self.pump();
    }

    /// The node's wall clock now, in Unix milliseconds.
    #[allow(dead_code)] // strangers.rs only
    pub fn wall_ms(&self) -> i64 {
        self.env.wall_now().as_unix_millis()
    }

    /// Runs until the node's clock reads `at`.
    pub fn run_until(&mut self, at: Instant) {
        while self.next_event().is_some_and(|next| next <= at) {
            self.step();
        }
        self.env.advance_to(at);
    }

    /// Runs for `duration`.
    pub fn run_for(&mut self, duration: Duration) {
        let at = self.now() + duration;
        self.run_until(at);
    }

    /// Runs, one event at a time, until the node sends a message matching `matches` (at most
    /// `limit`), and returns it; the replies to it have not arrived yet.
    pub fn run_until_sent(&mut self, limit: Duration, matches: impl Fn(&Sent) -> bool) -> Sent {
        let deadline = self.now() + limit;
        let mut seen = self.sent.len();
        loop {
            if let Some(found) = self.sent[seen..].iter().find(|s| matches(s)) {
                return found.clone();
            }
            seen = self.sent.len();
            match self.next_event() {
                Some(next) if next <= deadline => self.step(),
                _ => panic!("no matching message within {limit:?}"),
            }
        }
    }

    /// Runs, one event at a time, until the node records a probe matching `matches` (at most
    /// `limit`), and returns when.
    pub fn run_until_recorded(&mut self, limit: Duration, matches: impl Fn(&Probe) -> bool) -> Instant {
        let deadline = self.now() + limit;
        let mut seen = self.probes.len();
        loop {
            if let Some((at, _)) = self.probes[seen..].iter().find(|(_, p)| matches(p)) {
                return *at;
            }
            seen = self.probes.len();
            match self.next_event() {
                Some(next) if next <= deadline => self.step(),
                _ => panic!("no matching probe within {limit:?}"),
            }
        }
    }

    /// Runs until the node starts a new round-robin pass over its members, and returns the peer
    /// it probes first, right after the ping left (its ack has not arrived). The round robin
    /// visits every member once per pass, so this peer is not probed in turn again for at least
    /// one pass less one protocol period. Needs a view without suspicions so far, so that every
    /// ping was a turn of the round robin.
    pub fn run_until_a_pass_begins(&mut self, limit: Duration) -> usize {
        let pings = |sent: &[Sent]| {
            sent.iter()
                .filter(|s| matches!(s.message.body, Body::Ping { .. }))
                .count()
        };
        let members = self.peers.len();
        let first_of_next_pass = (pings(&self.sent) / members + 1) * members;
        let deadline = self.now() + limit;
        while pings(&self.sent) <= first_of_next_pass {
            match self.next_event() {
                Some(next) if next <= deadline => self.step(),
                _ => panic!("no new round-robin pass within {limit:?}"),
            }
        }
        assert!(
            self.probes_named("member").all(|(_, p)| p.value == 0),
            "only a view without suspicions probes in round-robin turns alone"
        );
        let ping = self
            .sent
            .iter()
            .filter(|s| matches!(s.message.body, Body::Ping { .. }))
            .nth(first_of_next_pass)
            .expect("counted above");
        self.peer_index(ping.to)
    }

    fn peer_index(&self, addr: SocketAddr) -> usize {
        self.peers
            .iter()
            .position(|p| p.addr == addr)
            .expect("the node only talks to peers")
    }

    fn next_event(&self) -> Option<Instant> {
        let timer = self.env.next_deadline();
        let inbound = self.inbound.iter().map(|d| d.at).min();
        timer.into_iter().chain(inbound).min()
    }

    /// Dispatches the earliest event: a timer (first on a tie) or a datagram.
    fn step(&mut self) {
        let Some(at) = self.next_event() else { return };
        self.env.advance_to(at.max(self.now()));
        if let Some(i) = self.env.timers.iter().position(|(deadline, _)| *deadline == at) {
            let (_, token) = self.env.timers.remove(i);
            self.host.on_timer(&mut self.env, token);
        } else {
            let i = self.inbound.iter().position(|d| d.at == at).expect("an event is due");
            let datagram = self.inbound.remove(i);
            self.host.on_datagram(&mut self.env, datagram.from, datagram.payload);
        }
        self.pump();
    }

    /// Takes what the node sent and recorded; peers answer what reaches them.
    fn pump(&mut self) {
        let now = self.now();
        for probe in self.env.probes.drain(..) {
            assert_eq!(probe.protocol, MOUNT.name);
            self.probes.push((now, probe));
        }
        for (to, payload) in self.env.take_sent() {
            let (&channel, body) = payload.split_first().expect("a channel byte");
            assert_eq!(channel, MOUNT.channel.0, "membership's channel");
            let message = Message::decode(body).expect("the node sends well-formed messages");
            let mut sent = Sent {
                at: now,
                to,
                message,
                lost: false,
            };
            // A stranger (one a test delivered from) hears what it is sent, and answers nothing.
            let peer = self.peers.iter().position(|p| p.addr == to);
            sent.lost = peer.is_some_and(|peer| self.links_down.contains(&peer))
                || self.loss_rules.iter_mut().any(|lose| lose(&sent));
            if let (false, Some(peer)) = (sent.lost, peer) {
                if let Some(reply) = self.answer(peer, &sent.message) {
                    self.inbound.push(Inbound {
                        at: now + REPLY_LATENCY,
                        from: to,
                        payload: framed(&reply),
                    });
                }
            }
            self.sent.push(sent);
        }
    }

    /// What scripted peer `i` answers to `message`, if anything.
    fn answer(&mut self, i: usize, message: &Message) -> Option<Message> {
        let accused_at = self.peers[i].accusation(message);
        let peer = &mut self.peers[i];
        if let Some(incarnation) = accused_at {
            peer.incarnation = peer.incarnation.max(incarnation + 1);
        }
        let peer = peer.clone();
        let updates: Vec<Update> = accused_at.map(|_| peer.alive()).into_iter().collect();
        let body = match &message.body {
            Body::Ping { seq, target } if *target == peer.id => Body::Ack { seq: *seq },
            Body::PushPull { reply_wanted: true, .. } => Body::PushPull {
                reply_wanted: false,
                join: false,
                wall_ms: self.env.wall_now().as_unix_millis(),
                records: self.peers.iter().map(Peer::record).collect(),
            },
            _ if accused_at.is_some() => Body::Gossip,
            _ => return None,
        };
        Some(Message {
            sender: peer.id,
            body,
            updates,
        })
    }
}

/// `message` as a datagram on membership's channel.
pub fn framed(message: &Message) -> Bytes {
    let encoded = message.encode();
    let mut out = BytesMut::with_capacity(1 + encoded.len());
    out.put_u8(MOUNT.channel.0);
    out.extend_from_slice(&encoded);
    out.freeze()
}
