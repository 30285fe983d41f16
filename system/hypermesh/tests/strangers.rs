//! What membership believes from whom (issue 13, item 11). An ack is evidence only from where
//! the probe went: the probed member's address, or a helper asked to probe it indirectly; a
//! helper forwards only the target's own ack. Anyone else's ack, with a guessed or overheard
//! sequence number, changes nothing. Over a transport that authenticates peers, with an
//! [`IdentityBinding`], a node speaks only as the member its certificate names: its own join,
//! refutations and first-hand records; what it passes on about others is gossip, as in SWIM.

// Shared with `departures.rs`, which uses all of it.
#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hypermesh::membership::wire::{Body, Claim, Message, Record, Update};
use hypermesh::membership::{IdentityBinding, MemberState, MembershipConfig, MembershipNode, NodeId, MOUNT};
use runtime::host::{BareDatagrams, Channel, Host, Inbox, Transport};
use runtime::{Actor, Clock, Env, Probe, RecordingEnv, SendError, TimerToken};
use support::bench::{framed, Bench};

const SUSPECT: i64 = 1;

/// The sequence number of a ping.
fn seq_of(body: &Body) -> u32 {
    match body {
        Body::Ping { seq, .. } => *seq,
        other => panic!("not a ping: {other:?}"),
    }
}

/// Peer 1 stops answering; the node pings it and, before any helper is asked, peer 2 (a member,
/// but not the one probed) sends an ack with the ping's sequence number. Matched on the number
/// alone, it cleared the probe: the deadline found nothing to fail and peer 1 was never
/// suspected. The member goes suspect at its probe's deadline all the same.
#[test]
fn a_third_partys_ack_does_not_clear_a_probe_of_another_member() {
    let mut bench = Bench::joined(3, 31);
    let target = bench.peer(1);
    bench.lose_all(move |sent| sent.is_ping_of(target));
    let ping = bench.run_until_sent(Duration::from_secs(10), |s| s.is_ping_of(target));
    bench.deliver(
        2,
        Body::Ack {
            seq: seq_of(&ping.message.body),
        },
        vec![],
    );
    bench.run_until(ping.at + Duration::from_millis(1100));
    assert!(
        bench
            .recorded_states(target)
            .iter()
            .any(|(at, state)| *state == SUSPECT && *at > ping.at),
        "the forged ack cleared the probe: {:?}",
        bench.recorded_states(target)
    );
    assert_eq!(bench.state_of(1), MemberState::Suspect);
    assert_eq!(bench.probes_named("ack_refused").count(), 1, "the refusal is counted");
}

/// The control: an ack from the probed member's address clears the probe, and an ack relayed by
/// a helper the node asked (after the direct ping went unanswered) does too.
#[test]
fn the_targets_ack_and_a_helpers_relayed_ack_clear_the_probe() {
    let mut bench = Bench::joined(3, 32);
    let target = bench.peer(1);
    bench.lose_all(move |sent| sent.is_ping_of(target));
    let ping = bench.run_until_sent(Duration::from_secs(10), |s| s.is_ping_of(target));
    bench.deliver(
        1,
        Body::Ack {
            seq: seq_of(&ping.message.body),
        },
        vec![],
    );
    bench.run_until(ping.at + Duration::from_millis(1100));
    assert_eq!(bench.state_of(1), MemberState::Alive, "the target's own ack counts");

    let ping = bench.run_until_sent(Duration::from_secs(10), |s| s.is_ping_of(target));
    let seq = seq_of(&ping.message.body);
    let helper_addr = bench.peer_addr(2);
    let request = bench.run_until_sent(Duration::from_secs(1), |s| {
        s.to == helper_addr && matches!(s.message.body, Body::PingReq { .. })
    });
    assert!(request.at < ping.at + Duration::from_millis(1010));
    bench.deliver(2, Body::Ack { seq }, vec![]);
    bench.run_until(ping.at + Duration::from_millis(1100));
    assert_eq!(
        bench.state_of(1),
        MemberState::Alive,
        "an ack from a helper asked to probe counts: {:?}",
        bench.recorded_states(target)
    );
}

/// The node as a helper: peer 0 asks it to probe peer 1, the ping to peer 1 is lost, and peer 2
/// acks the node's relayed ping by its number. Forwarded, that ack would tell peer 0 that peer 1
/// lives. Only the target's own ack is forwarded.
#[test]
fn a_helper_forwards_only_the_targets_ack() {
    let mut bench = Bench::joined(3, 33);
    let target = bench.peer(1);
    let requester = bench.peer_addr(0);
    bench.lose_all(move |sent| sent.is_ping_of(target));
    let request = Body::PingReq {
        seq: 4242,
        target,
        target_addr: bench.peer_addr(1),
    };
    bench.deliver(0, request, vec![]);
    let relayed = bench
        .sent()
        .iter()
        .rev()
        .find(|s| s.is_ping_of(target))
        .expect("the node pinged the target for peer 0")
        .clone();
    let forwarded = |bench: &Bench| {
        bench
            .sent()
            .iter()
            .filter(|s| s.to == requester && matches!(s.message.body, Body::Ack { seq: 4242 }))
            .count()
    };

    bench.deliver(
        2,
        Body::Ack {
            seq: seq_of(&relayed.message.body),
        },
        vec![],
    );
    assert_eq!(
        forwarded(&bench),
        0,
        "a third party's ack was forwarded as the target's"
    );
    assert_eq!(bench.probes_named("ack_refused").count(), 1, "the refusal is counted");

    bench.deliver(
        1,
        Body::Ack {
            seq: seq_of(&relayed.message.body),
        },
        vec![],
    );
    assert_eq!(forwarded(&bench), 1, "the target's own ack is forwarded");
}

/// Bare datagrams that vouch for some addresses by name, as STOQ vouches for a peer by the name
/// its verified certificate carries.
struct Certified {
    names: Vec<(SocketAddr, &'static str)>,
}

impl Transport for Certified {
    fn name(&self) -> &'static str {
        "certified"
    }
    fn on_start(&mut self, env: &mut dyn Env, inbox: &mut Inbox) {
        BareDatagrams.on_start(env, inbox);
    }
    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes, inbox: &mut Inbox) {
        BareDatagrams.on_datagram(env, from, payload, inbox);
    }
    fn on_timer(&mut self, _: &mut dyn Env, _: TimerToken, _: &mut Inbox) {}
    fn send(&mut self, env: &mut dyn Env, channel: Channel, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        BareDatagrams.send(env, channel, to, payload)
    }
    fn peer_identity(&self, addr: SocketAddr) -> Option<&str> {
        self.names.iter().find(|(a, _)| *a == addr).map(|(_, name)| *name)
    }
}

fn at(host: u16) -> SocketAddr {
    SocketAddr::new(format!("fd00::{host:x}").parse().expect("address"), 7000)
}

/// Where `node-1.mesh` and `node-2.mesh` are; an address nobody is certified at.
const ONE: u16 = 1;
const TWO: u16 = 2;
const NOBODY: u16 = 9;

/// One seed node (id 0) whose membership binds `node-{i}.mesh` to id `i`, over a transport that
/// certifies `node-1.mesh` at [`ONE`] and `node-2.mesh` at [`TWO`].
struct Seed {
    host: Host,
    env: RecordingEnv,
}

impl Seed {
    fn new() -> Seed {
        let mut config = MembershipConfig::new(NodeId(0), vec![]);
        config.identity = Some(IdentityBinding::Numbered {
            prefix: "node-".into(),
            suffix: ".mesh".into(),
        });
        let transport = Certified {
            names: vec![(at(ONE), "node-1.mesh"), (at(TWO), "node-2.mesh")],
        };
        let mut seed = Seed {
            host: Host::new(transport).mount(MOUNT, MembershipNode::new(config)),
            env: RecordingEnv::new(at(0x100), 41),
        };
        seed.host.on_start(&mut seed.env);
        seed
    }

    /// `message`, arriving from `from`.
    fn hear(&mut self, from: u16, message: Message) {
        self.host.on_datagram(&mut self.env, at(from), framed(&message));
    }

    /// A join by `sender`, listing itself at `addr`, arriving from `from`.
    fn join(&mut self, from: u16, sender: u64, addr: u16) {
        let join = Message {
            sender: NodeId(sender),
            body: Body::PushPull {
                reply_wanted: true,
                join: true,
                wall_ms: self.env.wall_now().as_unix_millis(),
                records: vec![Record {
                    node: NodeId(sender),
                    addr: at(addr),
                    incarnation: 1,
                    state: MemberState::Alive.code(),
                }],
            },
            updates: vec![],
        };
        self.hear(from, join);
    }

    fn view(&self) -> Vec<(NodeId, MemberState)> {
        self.host.protocol::<MembershipNode>().expect("mounted").view()
    }

    fn refused(&self) -> Vec<&Probe> {
        self.env.probes_named("identity_refused").collect()
    }

    /// Where the node sends to member `id`: its push-pull reply lists it.
    fn listed_addr(&mut self, id: u64) -> Option<SocketAddr> {
        self.env.take_sent();
        let ask = Message {
            sender: NodeId(2),
            body: Body::PushPull {
                reply_wanted: true,
                join: false,
                wall_ms: self.env.wall_now().as_unix_millis(),
                records: vec![],
            },
            updates: vec![],
        };
        self.hear(TWO, ask);
        self.env.take_sent().into_iter().find_map(|(_, payload)| {
            let message = Message::decode(&payload[1..]).expect("well-formed");
            match message.body {
                Body::PushPull { records, .. } => records.iter().find(|r| r.node == NodeId(id)).map(|r| r.addr),
                _ => None,
            }
        })
    }
}

/// The node certified as `node-2.mesh` joins as member 1. Heard as its sender says, it was let
/// in as member 1, at its own address; it is refused, counted, and not answered.
#[test]
fn a_node_certified_as_another_member_cannot_join_as_it() {
    let mut seed = Seed::new();
    seed.env.take_sent();
    seed.join(TWO, 1, TWO);
    assert_eq!(seed.view(), vec![], "node-2.mesh joined as member 1");
    let refused = seed.refused();
    assert_eq!(refused.len(), 1, "the refusal is counted");
    assert_eq!((refused[0].subject, refused[0].value), (1, 1));
    assert!(seed.env.take_sent().is_empty(), "a refused join is not answered");

    // As itself it joins, and so does member 1 from its own address.
    seed.join(TWO, 2, TWO);
    seed.join(ONE, 1, ONE);
    assert_eq!(
        seed.view(),
        vec![(NodeId(1), MemberState::Alive), (NodeId(2), MemberState::Alive)]
    );
    assert_eq!(seed.refused().len(), 1);
}

/// Once member 1 is in, `node-2.mesh` speaking as member 1 claims a newer life at its own address
/// (a refutation of itself, which would move member 1's traffic to it). Refused. What it says
/// about member 1 as itself is gossip, and SWIM believes gossip: its suspicion is taken.
#[test]
fn a_node_cannot_refute_for_another_member_but_may_gossip_about_it() {
    let mut seed = Seed::new();
    seed.join(ONE, 1, ONE);
    seed.join(TWO, 2, TWO);
    let hijack = Message {
        sender: NodeId(1),
        body: Body::Gossip,
        updates: vec![Update {
            node: NodeId(1),
            incarnation: 7,
            claim: Claim::Alive { addr: at(TWO) },
        }],
    };
    seed.hear(TWO, hijack);
    assert_eq!(seed.refused().len(), 1, "the claim is refused and counted");
    assert_eq!(
        seed.listed_addr(1),
        Some(at(ONE)),
        "member 1 still lives at its own address"
    );

    let gossip = Message {
        sender: NodeId(2),
        body: Body::Gossip,
        updates: vec![Update {
            node: NodeId(1),
            incarnation: 1,
            claim: Claim::Suspect { by: NodeId(2) },
        }],
    };
    seed.hear(TWO, gossip);
    assert_eq!(seed.refused().len(), 1);
    assert!(seed.view().contains(&(NodeId(1), MemberState::Suspect)));
}

/// With a binding, an address the transport authenticates nobody at speaks as nobody.
#[test]
fn a_sender_the_transport_cannot_name_is_refused() {
    let mut seed = Seed::new();
    seed.join(NOBODY, 9, NOBODY);
    assert_eq!(seed.view(), vec![]);
    let refused = seed.refused();
    assert_eq!(refused.len(), 1);
    assert_eq!((refused[0].subject, refused[0].value), (9, 2));
}

/// Without a binding (bare datagrams), a sender is heard as it says it is, as before.
#[test]
fn without_a_binding_every_sender_is_heard_as_it_says() {
    let mut config = MembershipConfig::new(NodeId(0), vec![]);
    config.identity = None;
    let transport = Certified {
        names: vec![(at(TWO), "node-2.mesh")],
    };
    let mut host = Host::new(transport).mount(MOUNT, MembershipNode::new(config));
    let mut env = RecordingEnv::new(at(0x100), 42);
    host.on_start(&mut env);
    let join = Message {
        sender: NodeId(1),
        body: Body::PushPull {
            reply_wanted: true,
            join: true,
            wall_ms: env.wall_now().as_unix_millis(),
            records: vec![Record {
                node: NodeId(1),
                addr: at(TWO),
                incarnation: 1,
                state: MemberState::Alive.code(),
            }],
        },
        updates: vec![],
    };
    host.on_datagram(&mut env, at(TWO), framed(&join));
    let view = host.protocol::<MembershipNode>().expect("mounted").view();
    assert_eq!(view, vec![(NodeId(1), MemberState::Alive)]);
    assert_eq!(env.probes_named("identity_refused").count(), 0);
}

/// A member (never seen) that `announced` the node: at `[fd00::63]:7000`, id 99.
fn newcomer() -> Record {
    Record {
        node: NodeId(99),
        addr: "[fd00::63]:7000".parse().expect("address"),
        incarnation: support::bench::FIRST_INCARNATION,
        state: MemberState::Alive.code(),
    }
}

fn announcement(sender: NodeId) -> Message {
    Message {
        sender,
        body: Body::Announce {
            records: vec![newcomer()],
        },
        updates: Vec::new(),
    }
}

/// An announcement is believed only from a seed the node holds alive, at that seed's address:
/// from anyone else (a member that is no seed, or a stranger) it changes nothing and is
/// counted (`announce_refused`). Before, anyone could add members by announcing them.
#[test]
fn an_announcement_from_anyone_but_a_seed_changes_nothing() {
    let mut bench = Bench::joined(3, 41);
    let view = bench.node().view();
    let member = bench.peer_addr(1);
    bench.deliver_from(member, &announcement(bench.peer(1)));
    let stranger: SocketAddr = "[fd00::77]:7000".parse().expect("address");
    bench.deliver_from(stranger, &announcement(NodeId(77)));
    // A seed's id from another address.
    bench.deliver_from(stranger, &announcement(bench.peer(0)));
    assert_eq!(bench.node().view(), view, "an announcement from no seed added a member");
    assert_eq!(bench.probes_named("announce_refused").count(), 3);

    let seed = bench.peer_addr(0);
    bench.deliver_from(seed, &announcement(bench.peer(0)));
    assert!(
        bench.node().view().iter().any(|&(id, _)| id == NodeId(99)),
        "the seed's announcement is believed"
    );
}

/// A digest opens an exchange with its sender's own record: one carrying another member's
/// record (or its sender's as suspect or dead) is refused whole and counted
/// (`digest_refused`), neither adopted nor answered.
#[test]
fn a_digest_carrying_another_nodes_record_is_refused() {
    let mut bench = Bench::joined(3, 42);
    let view = bench.node().view();
    let from = bench.peer_addr(1);
    let digest = |sender: NodeId, record: Record, wall_ms: i64| Message {
        sender,
        body: Body::Digest {
            wall_ms,
            digest: 0,
            record,
        },
        updates: Vec::new(),
    };
    let mut own_but_dead = newcomer();
    own_but_dead.node = bench.peer(1);
    own_but_dead.addr = from;
    own_but_dead.state = MemberState::Dead.code();
    let sent_before = bench.sent().len();
    bench.deliver_from(from, &digest(bench.peer(1), newcomer(), bench.wall_ms()));
    bench.deliver_from(from, &digest(bench.peer(1), own_but_dead, bench.wall_ms()));
    assert_eq!(bench.node().view(), view, "a digest's foreign record was adopted");
    assert_eq!(bench.probes_named("digest_refused").count(), 2);
    let answered = bench.sent()[sent_before..].iter().find(|s| s.to == from);
    assert!(answered.is_none(), "a refused digest was answered: {answered:?}");
}

/// A join is answered with the member list only when it admitted its sender (or found it
/// held alive): before, a 23-byte join with no record, from any source, drew the whole list.
#[test]
fn a_join_that_admits_no_one_is_not_answered() {
    let mut bench = Bench::joined(3, 43);
    let view = bench.node().view();
    let spoofed: SocketAddr = "[fd00::77]:7000".parse().expect("address");
    let join = |sender: NodeId, records: Vec<Record>, wall_ms: i64| Message {
        sender,
        body: Body::PushPull {
            reply_wanted: true,
            join: true,
            wall_ms,
            records,
        },
        updates: Vec::new(),
    };
    let sent_before = bench.sent().len();
    bench.deliver_from(spoofed, &join(NodeId(77), Vec::new(), bench.wall_ms()));
    let mut suspect = newcomer();
    suspect.state = MemberState::Suspect.code();
    bench.deliver_from(spoofed, &join(NodeId(99), vec![suspect], bench.wall_ms()));
    assert_eq!(bench.node().view(), view);
    let answered = bench.sent()[sent_before..].iter().find(|s| s.to == spoofed);
    assert!(
        answered.is_none(),
        "a join that admitted no one was answered: {answered:?}"
    );

    let joiner = newcomer();
    bench.deliver_from(joiner.addr, &join(joiner.node, vec![joiner], bench.wall_ms()));
    assert!(
        bench.sent()[sent_before..]
            .iter()
            .any(|s| s.to == joiner.addr && matches!(s.message.body, Body::PushPull { .. })),
        "a real joiner is answered"
    );
}
