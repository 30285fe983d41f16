//! The membership actor: probing, suspicion, gossip, joins and anti-entropy.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use runtime::host::{Channel, Context, Mount, Protocol};
use runtime::{AddressFamily, Clock, Entropy, Probe, Probes};

use super::broadcasts::Broadcasts;
use super::config::MembershipConfig;
use super::incarnation;
use super::members::{Member, MemberState, Members};
use super::suspicion::{timeouts, Suspicion};
use super::wire::{
    Body, Claim, Message, NodeId, Record, RefuseReason, Update, HEADER_AND_BODY_BYTES_MAX, RECORDS_PER_MESSAGE_MAX,
    RECORD_BYTES_MAX, UPDATES_PER_MESSAGE_MAX, UPDATE_BYTES_MAX,
};

/// Membership's timers, with what each carries (a member's full 64-bit id, a probe sequence).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Retry starting after the incarnation could not be recorded.
    Start,
    /// The next protocol period: probe one member.
    Probe,
    /// A direct probe went unanswered for the probe timeout: ask others to probe it.
    Indirect(u32),
    /// The whole probe period ended for this probe.
    ProbeDeadline(u32),
    /// A suspicion of this member may have timed out.
    Suspicion(NodeId),
    /// The next gossip round.
    Gossip,
    /// The next anti-entropy exchange.
    PushPull,
    /// Retry joining through the seeds.
    Join,
    /// Pull another seed's list (the next one each time; a random alive member's if there is
    /// no other seed), early after joining (see [`MembershipConfig::catch_ups_max`]).
    CatchUp,
    /// A relayed probe is given up.
    RelayExpiry(u32),
    /// Announce the members admitted since the last announcement.
    Announce,
}

/// How far ahead of a node's own incarnation an accusation about it may be and still be
/// refuted. Honest claims lag or lead by the node's refutations and restarts since a peer last
/// heard; a claim further ahead is forged or corrupt, and refuting it would walk the incarnation
/// towards `u64::MAX`, past which no accusation could be outranked.
pub const INCARNATION_LEAD_MAX: u64 = 1 << 32;

/// Consecutive announcements that carry each member this node admitted. An announcement is one
/// datagram per member and is not acknowledged: sent once, one lost datagram left its member
/// without the joiner until anti-entropy, whose period may be long in a large cluster.
const ANNOUNCE_REPEATS: u32 = 3;

/// Most admitted members one announcement carries (about seven full datagrams to each member);
/// more wait for the next, so a burst of joins spreads over announcements instead of one
/// announcement sending every member a long train of datagrams.
const ANNOUNCED_PER_BATCH_MAX: usize = 256;

/// Where membership lives on a node's [`runtime::host::Host`].
pub const MOUNT: Mount = Mount::new("membership", Channel(1));

/// The context membership is called with.
type Cx<'a> = Context<'a, Timer>;

#[derive(Clone, Debug)]
struct InFlightProbe {
    target: NodeId,
    /// The target's incarnation when probed: a failed probe is evidence about that life only.
    incarnation: u64,
    /// Where the ping went: the target's ack must come from there.
    target_addr: SocketAddr,
    /// The helpers asked to probe the target indirectly: each may relay its ack.
    helpers: Vec<SocketAddr>,
}

#[derive(Clone, Debug)]
struct Relay {
    requester: SocketAddr,
    requester_seq: u32,
    /// Whom the requester asked us to probe, and where: only an ack from there is forwarded.
    target: NodeId,
    target_addr: SocketAddr,
}

/// Whether a datagram from `from` came from `expected`: the same IP and port (a received address
/// may carry an IPv6 flow label or scope that a member's recorded address does not).
fn same_endpoint(from: SocketAddr, expected: SocketAddr) -> bool {
    from.ip() == expected.ip() && from.port() == expected.port()
}

/// A record's contribution to a view digest: its fields through a 64-bit mixer (splitmix64's
/// finaliser), fixed so that every node and release digests alike.
fn record_hash(r: &Record) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let ip = match r.addr.ip() {
        std::net::IpAddr::V4(ip) => u128::from(ip.to_bits()),
        std::net::IpAddr::V6(ip) => ip.to_bits(),
    };
    let fields = [
        r.node.0,
        ip as u64,
        (ip >> 64) as u64,
        u64::from(r.addr.port()) << 8 | u64::from(r.state),
        r.incarnation,
    ];
    fields.iter().fold(0x9e37_79b9_7f4a_7c15, |h, &f| mix(h ^ f))
}

/// A member this node admitted as its primary seed, still to be announced.
#[derive(Copy, Clone, Debug)]
struct Admitted {
    id: NodeId,
    /// Announcements that are still to carry it, at most [`ANNOUNCE_REPEATS`].
    announcements_left: u32,
}

/// One node's membership protocol.
pub struct MembershipNode {
    config: MembershipConfig,
    me: NodeId,
    my_addr: Option<SocketAddr>,
    /// `None` until the incarnation is durably recorded; nothing is sent before.
    incarnation: Option<u64>,
    members: Members,
    broadcasts: Broadcasts,
    next_seq: u32,
    probes: BTreeMap<u32, InFlightProbe>,
    relays: BTreeMap<u32, Relay>,
    joined: bool,
    majority: Option<bool>,
    /// Members whose joins this node answered as their primary seed and has not announced
    /// [`ANNOUNCE_REPEATS`] times yet, the next to announce first. Distinct members (a retried
    /// join is not queued twice), so at most `members_max`; an [`Timer::Announce`] is pending
    /// whenever this is not empty.
    admitted: Vec<Admitted>,
    /// Joins sent so far: which seed is asked to answer ([`Self::join`]).
    join_attempts: u64,
    /// The seeds asked to answer this node's join, as its primary, so far (distinct, so at most
    /// the seeds): only an answer from one of them ends joining. Each admitted this node and
    /// will announce it, so any will do: the latest alone would never do when a round trip
    /// outlasts `join_retry_interval`, as each answer would arrive after the next retry. Another
    /// member's answer to an exchange does not end joining, or a node that took part in
    /// anti-entropy before its join was answered would never be admitted, nor announced.
    join_primaries: Vec<SocketAddr>,
    /// The primary whose answer ended joining: catch-up pulls go to the other seeds.
    joined_through: Option<SocketAddr>,
    /// Catch-up pulls made since joining, at most `catch_ups_max`.
    catch_up_pulls: u32,
    /// How many members this node knew at its last catch-up pull.
    members_at_pull: usize,
}

impl MembershipNode {
    /// A node that will run with `config` (validated by the caller with
    /// [`MembershipConfig::validate`]).
    pub fn new(config: MembershipConfig) -> Self {
        // Every limit the node relies on is in the config: running with a bad one is a bug in
        // the caller, stopped here rather than met later as a stuck or flooding node.
        if let Err(e) = config.validate() {
            panic!("MembershipNode::new with a config that fails validation: {e}");
        }
        MembershipNode {
            me: config.id,
            config,
            my_addr: None,
            incarnation: None,
            members: Members::default(),
            broadcasts: Broadcasts::default(),
            next_seq: 0,
            probes: BTreeMap::new(),
            relays: BTreeMap::new(),
            joined: false,
            majority: None,
            admitted: Vec::new(),
            join_attempts: 0,
            join_primaries: Vec::new(),
            joined_through: None,
            catch_up_pulls: 0,
            members_at_pull: 0,
        }
    }

    /// This node's view: every other member with its state, in id order.
    pub fn view(&self) -> Vec<(NodeId, MemberState)> {
        let mut view: Vec<(NodeId, MemberState)> = self.members.iter().map(|m| (m.id, m.state)).collect();
        view.sort_unstable_by_key(|(id, _)| *id);
        view
    }

    /// Whether this node's side (itself and the members it holds alive) is a strict majority of
    /// every member it knows.
    pub fn has_majority(&self) -> bool {
        2 * (self.members.alive() + 1) > self.members.len() + 1
    }

    fn seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    fn transmit_limit(&self) -> u32 {
        // ceil(log10(members + 2)), at least 1, in integers: the same on every machine.
        let n = self.members.len() as u64 + 2;
        let mut digits = 1u32;
        while 10u64.saturating_pow(digits) < n {
            digits += 1;
        }
        self.config.retransmit_mult * digits
    }

    /// Reads, bumps and durably records the incarnation; false if storage failed.
    fn recover_incarnation(&mut self, env: &mut Cx<'_>) -> bool {
        // A restarted node must outrank anything said about its previous life.
        let recovered = incarnation::load(env).and_then(|stored| {
            incarnation::store(env, stored + 1)?;
            Ok(stored + 1)
        });
        match recovered {
            Ok(incarnation) => {
                self.incarnation = Some(incarnation);
                true
            }
            Err(_) => {
                env.probe(Probe::new("storage_error", 0, 1));
                false
            }
        }
    }

    fn persist_incarnation(&mut self, env: &mut Cx<'_>, incarnation: u64) {
        if incarnation::store(env, incarnation).is_err() {
            // The refutation still goes out; a crash before the next successful write could
            // reuse this incarnation, which only delays a later refutation by one round.
            env.probe(Probe::new("storage_error", 0, 1));
        }
        self.incarnation = Some(incarnation);
    }

    fn begin(&mut self, env: &mut Cx<'_>) {
        if !self.recover_incarnation(env) {
            let at = env.now() + self.config.join_retry_interval;
            env.set_timer(at, Timer::Start);
            return;
        }
        let now = env.now();
        // Random phases keep nodes that start together from probing in lockstep.
        let phase = |env: &mut Cx<'_>, period: std::time::Duration| now + period.mul_f64(env.unit_f64());
        let probe_at = phase(env, self.config.probe_interval);
        env.set_timer(probe_at, Timer::Probe);
        let gossip_at = phase(env, self.config.gossip_interval);
        env.set_timer(gossip_at, Timer::Gossip);
        // The first exchange lands within one interval: a joiner's snapshot from the seeds is
        // partial when many nodes start together, and this completes it.
        let push_pull_at = phase(env, self.config.push_pull_interval);
        env.set_timer(push_pull_at, Timer::PushPull);
        self.join(env);
        self.note_view(env);
    }

    fn other_seeds(&self) -> Vec<SocketAddr> {
        self.config
            .seeds
            .iter()
            .copied()
            .filter(|s| Some(*s) != self.my_addr)
            .collect()
    }

    fn join(&mut self, env: &mut Cx<'_>) {
        let seeds = self.other_seeds();
        if seeds.is_empty() {
            // The first seed forms the cluster alone.
            self.mark_joined(env, 0);
            return;
        }
        if self.joined {
            return;
        }
        // Every seed hears the join, so each lists the joiner in the snapshots it gives later
        // joiners; one, the primary, answers with its member list and announces the joiner to
        // the cluster. One snapshot and one announcement per joiner, not one per seed. The
        // primary moves on at each retry, so a seed that is down delays a join by one retry.
        let primary = ((self.me.0 % seeds.len() as u64) as usize + self.join_attempts as usize) % seeds.len();
        self.join_attempts = self.join_attempts.wrapping_add(1);
        if !self.join_primaries.contains(&seeds[primary]) {
            self.join_primaries.push(seeds[primary]);
        }
        assert!(self.join_primaries.len() <= seeds.len(), "primaries are distinct seeds");
        let me = self.my_record();
        for (i, seed) in seeds.into_iter().enumerate() {
            let body = Body::PushPull {
                reply_wanted: i == primary,
                join: true,
                wall_ms: env.wall_now().as_unix_millis(),
                records: vec![me],
            };
            self.send(env, seed, body);
        }
        let at = env.now() + self.config.join_retry_interval;
        env.set_timer(at, Timer::Join);
    }

    fn mark_joined(&mut self, env: &mut Cx<'_>, answered: u64) {
        if !self.joined {
            self.joined = true;
            env.probe(Probe::new("joined", answered, 1));
            self.schedule_catch_up(env);
        }
    }

    /// Announcements reach only the members their seed knew when it sent them: a node that
    /// joined through another seed at about the same time can miss some (more so while seeds
    /// are still starting, and their snapshots are partial). Early pulls from the other seeds,
    /// in turn (see [`Self::pull`]), catch them, instead of waiting whole anti-entropy periods.
    /// Each waits a join retry and an announcement, so that concurrent joiners are announced
    /// by then.
    fn schedule_catch_up(&mut self, env: &mut Cx<'_>) {
        let at = env.now() + self.config.join_retry_interval + self.config.announce_interval;
        env.set_timer(at, Timer::CatchUp);
    }

    fn on_catch_up(&mut self, env: &mut Cx<'_>) {
        // After the first pull, another only while the view still grows: the cluster around
        // this node is still joining. Joining a settled cluster costs one pull.
        let growing = self.members.len() > self.members_at_pull;
        if self.catch_up_pulls > 0 && !growing {
            return;
        }
        debug_assert!(self.catch_up_pulls < self.config.catch_ups_max, "pulls are bounded");
        self.catch_up_pulls += 1;
        self.members_at_pull = self.members.len();
        self.pull(env);
        if self.catch_up_pulls < self.config.catch_ups_max {
            self.schedule_catch_up(env);
        }
    }

    /// Asks a seed other than the one that answered the join for its list (each pull the next
    /// one; a random alive member if there is no other seed). Seeds hear every join sent while
    /// they are up and every announcement, so theirs are the fullest lists early on; a random
    /// member that joined at the same time may lack just what this node lacks.
    fn pull(&mut self, env: &mut Cx<'_>) {
        let seeds = self.other_seeds();
        let answered = self
            .joined_through
            .and_then(|primary| seeds.iter().position(|s| same_endpoint(*s, primary)));
        let seed = match (answered, seeds.len()) {
            (Some(i), n) if n > 1 => Some(seeds[(i + self.catch_up_pulls as usize) % n]),
            _ => None,
        };
        let Some(to) = seed.or_else(|| {
            self.members
                .random(1, &[MemberState::Alive], None, env)
                .first()
                .map(|m| m.addr)
        }) else {
            return;
        };
        // A pull: what this node knows came from its seed and the announcements, which the
        // one asked holds too, so only the answer carries a list.
        let body = Body::PushPull {
            reply_wanted: true,
            join: false,
            wall_ms: env.wall_now().as_unix_millis(),
            records: vec![self.my_record()],
        };
        self.send(env, to, body);
    }

    fn my_record(&self) -> Record {
        Record {
            node: self.me,
            addr: self.my_addr.expect("address chosen at start"),
            incarnation: self.incarnation.unwrap_or(0),
            state: 0,
        }
    }

    /// Sends `body` to `to` with as much pending gossip as fits.
    fn send(&mut self, env: &mut Cx<'_>, to: SocketAddr, body: Body) {
        self.send_with(env, to, body, Vec::new());
    }

    /// Sends `body` to `to` carrying `first` and then as much pending gossip as fits.
    fn send_with(&mut self, env: &mut Cx<'_>, to: SocketAddr, body: Body, first: Vec<Update>) {
        // Every body's fixed part, a digest's record included, is within
        // HEADER_AND_BODY_BYTES_MAX; only push-pull's and announcement's lists are extra.
        let body_bytes = match &body {
            Body::PushPull { records, .. } | Body::Announce { records } => records.len() * RECORD_BYTES_MAX,
            Body::Ping { .. }
            | Body::Ack { .. }
            | Body::PingReq { .. }
            | Body::Gossip
            | Body::Refuse { .. }
            | Body::Digest { .. } => 0,
        };
        let room = self
            .config
            .datagram_bytes_max
            .saturating_sub(HEADER_AND_BODY_BYTES_MAX + body_bytes);
        let max_updates = (room / UPDATE_BYTES_MAX).min(UPDATES_PER_MESSAGE_MAX);
        let limit = self.transmit_limit();
        let mut updates = first;
        updates.truncate(max_updates);
        let more = self.broadcasts.take(max_updates - updates.len(), limit);
        updates.extend(more);
        let message = Message {
            sender: self.me,
            body,
            updates,
        };
        let payload = message.encode();
        assert!(
            payload.len() <= self.config.datagram_bytes_max,
            "a {}-byte datagram past datagram_bytes_max",
            payload.len()
        );
        if env.send_to(to, payload).is_err() {
            env.probe(Probe::new("send_error", AddressFamily::of(&to) as u64, 1));
        }
    }

    fn on_probe_tick(&mut self, env: &mut Cx<'_>) {
        let next = env.now() + self.config.probe_interval;
        env.set_timer(next, Timer::Probe);
        if self.probes.len() >= self.config.probes_in_flight_max {
            return;
        }
        let Some(target) = self.members.next_probe_target(env) else {
            return;
        };
        self.probe(env, target);
    }

    /// Pings `target`, with the indirect fallback and the deadline after which it is suspected.
    fn probe(&mut self, env: &mut Cx<'_>, target: NodeId) {
        let Some(member) = self.members.get(target) else { return };
        let (addr, incarnation) = (member.addr, member.incarnation);
        // Lifeguard's buddy system: a suspect learns of its suspicion from the ping itself and
        // refutes in its ack, instead of waiting for gossip that loss may delay past the timeout.
        let buddy = (member.state == MemberState::Suspect)
            .then_some(Update {
                node: target,
                incarnation,
                claim: Claim::Suspect { by: self.me },
            })
            .into_iter()
            .collect();
        let seq = self.seq();
        self.probes.insert(
            seq,
            InFlightProbe {
                target,
                incarnation,
                target_addr: addr,
                helpers: Vec::new(),
            },
        );
        self.send_with(env, addr, Body::Ping { seq, target }, buddy);
        let now = env.now();
        env.set_timer(now + self.config.indirect_after, Timer::Indirect(seq));
        env.set_timer(now + self.config.probe_timeout(), Timer::ProbeDeadline(seq));
    }

    fn on_indirect(&mut self, env: &mut Cx<'_>, seq: u32) {
        let Some(probe) = self.probes.get(&seq) else { return };
        let target = probe.target;
        let Some(target_addr) = self.members.get(target).map(|m| m.addr) else {
            return;
        };
        let helpers: Vec<SocketAddr> = self
            .members
            .random(self.config.indirect_probes, &[MemberState::Alive], Some(target), env)
            .into_iter()
            .map(|m| m.addr)
            .collect();
        if let Some(probe) = self.probes.get_mut(&seq) {
            probe.helpers.clone_from(&helpers);
        }
        for helper in helpers {
            self.send(
                env,
                helper,
                Body::PingReq {
                    seq,
                    target,
                    target_addr,
                },
            );
        }
    }

    fn on_probe_deadline(&mut self, env: &mut Cx<'_>, seq: u32) {
        let Some(probe) = self.probes.remove(&seq) else { return };
        let now = env.now();
        let Some(member) = self.members.get_mut(probe.target) else {
            return;
        };
        member.last_probe_failed = Some(now);
        let member = &*member;
        // A refutation that arrived while the probe was out outranks it.
        if member.state == MemberState::Alive && member.incarnation == probe.incarnation {
            let update = Update {
                node: probe.target,
                incarnation: member.incarnation,
                claim: Claim::Suspect { by: self.me },
            };
            self.apply(env, update);
        }
    }

    fn on_suspicion_timer(&mut self, env: &mut Cx<'_>, id: NodeId) {
        let now = env.now();
        let Some(member) = self.members.get(id) else { return };
        let Some(suspicion) = &member.suspicion else { return };
        if member.state != MemberState::Suspect || suspicion.deadline() > now {
            return;
        }
        if member.last_ack.is_some_and(|ack| ack >= suspicion.started()) {
            // It answered us since the suspicion began: whatever others cannot reach, we can.
            // Keep suspecting (only a refutation may clear it) but do not declare it dead; the
            // buddy system's next ping tells it to refute.
            let member = self.members.get_mut(id).expect("known");
            let suspicion = member.suspicion.as_mut().expect("checked above");
            suspicion.restart(now);
            let deadline = suspicion.deadline();
            env.set_timer(deadline, Timer::Suspicion(id));
            return;
        }
        let started = suspicion.started();
        let fresh = self.config.probe_timeout() + self.config.probe_interval;
        if member
            .last_probe_failed
            .is_none_or(|failed| failed < started || now.saturating_since(failed) > fresh)
        {
            // No death on hearsay, nor on stale evidence: our own probe must have failed since
            // the suspicion began, and recently (one lost probe during a loss burst that has
            // since ended proves little). Probe now (past the in-flight bound: one probe per
            // timed-out suspicion) and decide once it has had its full deadline.
            self.probe(env, id);
            let at = now + self.config.probe_timeout() + self.config.probe_margin;
            env.set_timer(at, Timer::Suspicion(id));
            return;
        }
        let update = Update {
            node: id,
            incarnation: member.incarnation,
            claim: Claim::Dead { by: self.me },
        };
        self.apply(env, update);
    }

    fn on_gossip_tick(&mut self, env: &mut Cx<'_>) {
        let next = env.now() + self.config.gossip_interval;
        env.set_timer(next, Timer::Gossip);
        if self.broadcasts.is_empty() {
            return;
        }
        // The fan-out goes to alive members (a suspect is told by the buddy system's pings;
        // gossip spent on it is mostly lost across whatever cut made it a suspect). One more
        // target is a member dead for less than `gossip_to_dead_for` (memberlist's "gossip to
        // the dead"): after a partition heals, that is how refutations reach the side that
        // declared them dead, seconds before anti-entropy would; during the partition it costs
        // one datagram a round, not the fan-out.
        let now = env.now();
        let window = self.config.gossip_to_dead_for;
        let alive: Vec<SocketAddr> = self
            .members
            .random(self.config.gossip_fanout, &[MemberState::Alive], None, env)
            .into_iter()
            .map(|m| m.addr)
            .collect();
        // The recently dead member is served first: what it most needs (the news of its own
        // death, to refute) may have few transmits left, and the alive targets would otherwise
        // spend them all before its turn.
        let mut targets: Vec<SocketAddr> = Vec::with_capacity(alive.len() + 1);
        if self.members.dead() > 0 {
            let recently_dead = self.members.random_where(
                1,
                |m| m.state == MemberState::Dead && now.saturating_since(m.state_since) < window,
                env,
            );
            targets.extend(recently_dead.into_iter().map(|m| m.addr));
        }
        targets.extend(alive);
        // A target reached after the queue is spent still gets a message: receiving it is news
        // of the sender (skipping them left swarm seed 152 with an undeclared death).
        for to in targets {
            self.send(env, to, Body::Gossip);
        }
    }

    fn on_push_pull_tick(&mut self, env: &mut Cx<'_>) {
        let next = env.now() + self.config.push_pull_interval;
        env.set_timer(next, Timer::PushPull);
        // Half the exchanges go to members believed dead: after a partition heals, this is how
        // the two sides find each other again.
        let has_dead = self.members.dead() > 0;
        let states: &[MemberState] = if has_dead && env.chance(0.5) {
            &[MemberState::Dead]
        } else {
            &[MemberState::Alive, MemberState::Suspect]
        };
        let Some(to) = self.members.random(1, states, None, env).first().map(|m| m.addr) else {
            return;
        };
        // While this node suspects someone, the exchange is a full one: a list's suspect
        // records are confirmations from its sender, which bring Lifeguard's timeout down to
        // its minimum; two nodes suspecting alike have equal digests, and would skip them.
        let suspects = self.members.len() - self.members.alive() - self.members.dead();
        if suspects > 0 {
            self.send_state(env, to, true);
            return;
        }
        let body = Body::Digest {
            wall_ms: env.wall_now().as_unix_millis(),
            digest: self.view_digest(),
            record: self.my_record(),
        };
        self.send(env, to, body);
    }

    /// A digest of this node's whole view, itself included: the same on two nodes that list the
    /// same members at the same addresses, incarnations and states, whatever the order. A XOR of
    /// a 64-bit mix of each record, so a difference goes unseen only by a 2^-64 coincidence;
    /// anti-entropy then skips one exchange, and the next one, with another member, catches it.
    fn view_digest(&self) -> u64 {
        let mine = record_hash(&self.my_record());
        self.members.iter().fold(mine, |digest, m| {
            digest
                ^ record_hash(&Record {
                    node: m.id,
                    addr: m.addr,
                    incarnation: m.incarnation,
                    state: m.state.code(),
                })
        })
    }

    /// Sends this node's whole member list to `to` in datagram-sized chunks; only the first asks
    /// for a reply, so one exchange gets one answer.
    fn send_state(&mut self, env: &mut Cx<'_>, to: SocketAddr, reply_wanted: bool) {
        let mut records: Vec<Record> = vec![self.my_record()];
        records.extend(self.members.iter().map(|m| Record {
            node: m.id,
            addr: m.addr,
            incarnation: m.incarnation,
            state: m.state.code(),
        }));
        let per_chunk = self.records_per_chunk();
        for (i, chunk) in records.chunks(per_chunk).enumerate() {
            let body = Body::PushPull {
                reply_wanted: reply_wanted && i == 0,
                join: false,
                wall_ms: env.wall_now().as_unix_millis(),
                records: chunk.to_vec(),
            };
            self.send(env, to, body);
        }
    }

    /// Whether a message from `from` may speak as `sender`. Without an identity binding, every
    /// sender is who it says. With one, the transport must have authenticated, at `from`, a name
    /// the binding maps to `sender`; otherwise the message is refused whole and counted
    /// (`identity_refused`: 1 if the name maps to another member or none, 2 if the transport
    /// names nobody at `from`). Everything a member says of itself (its join, its refutations,
    /// its own record in an exchange) is then first-hand from the member its certificate names;
    /// what it says of others stays gossip.
    fn speaks_as_itself(&self, env: &mut Cx<'_>, from: SocketAddr, sender: NodeId) -> bool {
        let Some(binding) = &self.config.identity else {
            return true;
        };
        let refusal = match env.peer_identity(from) {
            None => 2,
            Some(name) if binding.id_of(name) == Some(sender) => return true,
            Some(_) => 1,
        };
        env.probe(Probe::new("identity_refused", sender.0, refusal));
        false
    }

    fn handle(&mut self, env: &mut Cx<'_>, from: SocketAddr, message: Message) {
        for update in &message.updates {
            self.apply(env, *update);
        }
        match message.body {
            Body::Ping { seq, target } => {
                if target == self.me {
                    self.send(env, from, Body::Ack { seq });
                }
            }
            Body::Ack { seq } => self.on_ack(env, from, seq),
            Body::PingReq {
                seq,
                target,
                target_addr,
            } => {
                if self.relays.len() < self.config.relays_in_flight_max {
                    let own_seq = self.seq();
                    self.relays.insert(
                        own_seq,
                        Relay {
                            requester: from,
                            requester_seq: seq,
                            target,
                            target_addr,
                        },
                    );
                    self.send(env, target_addr, Body::Ping { seq: own_seq, target });
                    let at = env.now() + self.config.probe_timeout();
                    env.set_timer(at, Timer::RelayExpiry(own_seq));
                }
            }
            Body::Gossip => {}
            Body::PushPull {
                reply_wanted,
                join,
                wall_ms,
                records,
            } => {
                // Only joins are checked for clock skew: anti-entropy between members must keep
                // working while their clocks drift. A join is what the sender says is one (so a
                // restarted member this node still lists from its previous life is checked too)
                // or any exchange from a sender that is not a member (a refused node's
                // anti-entropy must not let it in by the side door).
                let stranger = self.members.get(message.sender).is_none();
                if (join || (reply_wanted && stranger)) && !self.skew_tolerated(env, from, wall_ms) {
                    return;
                }
                if join {
                    self.on_join(env, from, message.sender, &records, reply_wanted);
                    return;
                }
                self.merge(env, message.sender, &records);
                if reply_wanted {
                    self.send_state(env, from, false);
                } else if !self.joined && self.join_primaries.iter().any(|primary| same_endpoint(from, *primary)) {
                    self.joined_through = Some(from);
                    self.mark_joined(env, 1);
                }
            }
            Body::Digest {
                wall_ms,
                digest,
                record,
            } => {
                // A digest opens an exchange with its sender's own record, alive: anything else
                // would have us adopt, unasked, what a third party says of another member.
                if record.node != message.sender || record.state != MemberState::Alive.code() {
                    env.probe(Probe::new("digest_refused", message.sender.0, 1));
                    return;
                }
                // Checked as an exchange that wants an answer: a stranger's as a join.
                if self.members.get(message.sender).is_none() && !self.skew_tolerated(env, from, wall_ms) {
                    return;
                }
                self.merge(env, message.sender, &[record]);
                if digest != self.view_digest() {
                    self.send_state(env, from, true);
                }
            }
            Body::Announce { records } => {
                // Only seeds admit and announce, and an announcement adds members: believed
                // from a configured seed this node holds alive, at that seed's address, and
                // from no one else (anyone could add members otherwise).
                if !self.announcer_trusted(from, message.sender) {
                    env.probe(Probe::new("announce_refused", message.sender.0, 1));
                    return;
                }
                // Others' admissions only: what a member says of itself is heard through its
                // join or its exchanges, where strangers are checked against clock_skew_max.
                let others: Vec<Record> = records.into_iter().filter(|r| r.node != message.sender).collect();
                self.merge(env, message.sender, &others);
            }
            Body::Refuse {
                reason: RefuseReason::ClockSkew { skew_ms },
            } => {
                env.probe(Probe::new("join_refused", message.sender.0, skew_ms));
            }
        }
    }

    /// Whether an announcement from `from`, saying it is `sender`, may be believed: `from` is a
    /// configured seed's address, and `sender` a member held alive at that address.
    fn announcer_trusted(&self, from: SocketAddr, sender: NodeId) -> bool {
        let seed = self.config.seeds.iter().any(|s| same_endpoint(from, *s));
        let held = self
            .members
            .get(sender)
            .is_some_and(|m| m.state == MemberState::Alive && same_endpoint(from, m.addr));
        seed && held
    }

    /// Whether a joiner's (or a stranger's) wall clock, `wall_ms` when it sent from `from`, is within
    /// `clock_skew_max` (plus the latency it may have been sent across) of ours; if not, it is
    /// refused, saying by how much.
    fn skew_tolerated(&mut self, env: &mut Cx<'_>, from: SocketAddr, wall_ms: i64) -> bool {
        let skew_ms = wall_ms - env.wall_now().as_unix_millis();
        let tolerated = (self.config.clock_skew_max + self.config.latency_tolerance).as_millis() as i64;
        if skew_ms.abs() <= tolerated {
            return true;
        }
        self.send(
            env,
            from,
            Body::Refuse {
                reason: RefuseReason::ClockSkew { skew_ms },
            },
        );
        false
    }

    /// A join, its clock already checked. The joiner's own record is news for the whole
    /// cluster, but it is not gossiped: if this node is the primary seed it was asked to answer
    /// (`answer`), it admits the joiner (announced with the others it admits meanwhile) and
    /// answers with its member list; otherwise it only learns of the joiner, so that its own
    /// snapshots list it, and leaves the rest to the primary. A join that leaves no joiner held
    /// alive (no record of its own, or one this node could not take) is not answered: a
    /// 23-byte datagram from any source would otherwise draw the whole member list.
    fn on_join(&mut self, env: &mut Cx<'_>, from: SocketAddr, joiner: NodeId, records: &[Record], answer: bool) {
        let mut listed_alive = false;
        for r in records.iter().filter(|r| r.node == joiner) {
            let claim = match MemberState::from_code(r.state) {
                Some(MemberState::Alive) | None => Claim::Alive { addr: r.addr },
                // A joiner lists itself alive; anything else is not a join to act on.
                Some(MemberState::Suspect | MemberState::Dead) => continue,
            };
            listed_alive = true;
            self.apply_quietly(
                env,
                Update {
                    node: r.node,
                    incarnation: r.incarnation,
                    claim,
                },
            );
            // Admitted even if already known: this node may have heard the join as a
            // non-primary seed before the joiner, unanswered, asked it to be the primary.
            if answer && !self.is_admitted(joiner) && self.members.get(joiner).is_some() {
                self.admit(env, joiner);
            }
        }
        let joiner_alive = listed_alive && self.members.get(joiner).is_some_and(|m| m.state == MemberState::Alive);
        if answer && joiner_alive {
            self.send_state(env, from, false);
        }
    }

    /// Whether `id` is admitted and still to be announced.
    fn is_admitted(&self, id: NodeId) -> bool {
        self.admitted.iter().any(|a| a.id == id)
    }

    /// Queues a member whose join this node answered for the next [`ANNOUNCE_REPEATS`]
    /// announcements.
    fn admit(&mut self, env: &mut Cx<'_>, id: NodeId) {
        debug_assert!(!self.is_admitted(id), "a member is admitted once");
        if self.admitted.is_empty() {
            let at = env.now() + self.config.announce_interval;
            env.set_timer(at, Timer::Announce);
        }
        self.admitted.push(Admitted {
            id,
            announcements_left: ANNOUNCE_REPEATS,
        });
        assert!(
            self.admitted.len() <= self.config.members_max,
            "admitted members are members, so at most members_max"
        );
    }

    /// Sends the next batch of admitted members (at most [`ANNOUNCED_PER_BATCH_MAX`]) to every
    /// member held alive or suspect (the admitted ones too: each one's seed snapshot missed
    /// those admitted after it), in datagram-sized chunks, and announces again an interval
    /// later while any is left. Each admitted member is in [`ANNOUNCE_REPEATS`] consecutive
    /// batches, so each receiver hears of a joiner that many times per seed that admitted it,
    /// where gossip would have told it about the retransmit limit times.
    fn announce(&mut self, env: &mut Cx<'_>) {
        let batch_len = self.admitted.len().min(ANNOUNCED_PER_BATCH_MAX);
        let mut batch: Vec<Admitted> = self.admitted.drain(..batch_len).collect();
        let records: Vec<Record> = batch
            .iter()
            .filter_map(|a| self.members.get(a.id))
            .map(|m| Record {
                node: m.id,
                addr: m.addr,
                incarnation: m.incarnation,
                state: m.state.code(),
            })
            .collect();
        let targets: Vec<SocketAddr> = self
            .members
            .iter()
            .filter(|m| m.state != MemberState::Dead)
            .map(|m| m.addr)
            .collect();
        let per_chunk = self.records_per_chunk();
        for to in targets {
            for chunk in records.chunks(per_chunk) {
                self.send(
                    env,
                    to,
                    Body::Announce {
                        records: chunk.to_vec(),
                    },
                );
            }
        }
        // Those announced go behind those still waiting, so a burst past the batch limit is
        // served in turn.
        for admitted in &mut batch {
            debug_assert!(admitted.announcements_left >= 1, "announced members leave the queue");
            admitted.announcements_left -= 1;
        }
        self.admitted
            .extend(batch.into_iter().filter(|a| a.announcements_left > 0));
        assert!(
            self.admitted.len() <= self.config.members_max,
            "admitted members are members, so at most members_max"
        );
        if !self.admitted.is_empty() {
            let at = env.now() + self.config.announce_interval;
            env.set_timer(at, Timer::Announce);
        }
    }

    /// How many records fit in one datagram beside the header.
    fn records_per_chunk(&self) -> usize {
        ((self.config.datagram_bytes_max - HEADER_AND_BODY_BYTES_MAX) / RECORD_BYTES_MAX)
            .clamp(1, RECORDS_PER_MESSAGE_MAX)
    }

    /// An ack of our ping `seq`, received from `from`. Sequence numbers are small counters anyone
    /// can guess, so an ack counts only from where the ping went: for a relay, the target we were
    /// asked to probe (its ack is forwarded to the requester); for our own probe, the target or a
    /// helper we asked to probe it. Any other sender's ack is refused and counted.
    fn on_ack(&mut self, env: &mut Cx<'_>, from: SocketAddr, seq: u32) {
        if let Some(relay) = self.relays.get(&seq) {
            if !same_endpoint(from, relay.target_addr) {
                env.probe(Probe::new("ack_refused", relay.target.0, 1));
                return;
            }
            let relay = self.relays.remove(&seq).expect("found above");
            self.send(
                env,
                relay.requester,
                Body::Ack {
                    seq: relay.requester_seq,
                },
            );
            return;
        }
        let Some(probe) = self.probes.get(&seq) else { return };
        let expected = same_endpoint(from, probe.target_addr) || probe.helpers.iter().any(|h| same_endpoint(from, *h));
        if !expected {
            env.probe(Probe::new("ack_refused", probe.target.0, 1));
            return;
        }
        let probe = self.probes.remove(&seq).expect("found above");
        let now = env.now();
        if let Some(member) = self.members.get_mut(probe.target) {
            member.last_ack = Some(now);
        }
    }

    /// Adopts a member list's records. The sender's own record is first-hand news, gossiped on.
    fn merge(&mut self, env: &mut Cx<'_>, sender: NodeId, records: &[Record]) {
        for r in records {
            let claim = match MemberState::from_code(r.state) {
                Some(MemberState::Alive) | None => Claim::Alive { addr: r.addr },
                Some(MemberState::Suspect) => Claim::Suspect { by: sender },
                Some(MemberState::Dead) => Claim::Dead { by: sender },
            };
            let held = self.members.get(r.node).map(|m| (m.state, m.incarnation, m.addr));
            // Most of a list in a settled cluster: an alive claim no newer than what we hold,
            // which `accept` would ignore (only a higher incarnation revives or moves a member).
            // Skipped here, as anti-entropy lists are most of what a large cluster reads.
            if matches!((held, claim), (Some((_, incarnation, _)), Claim::Alive { .. }) if r.incarnation <= incarnation)
            {
                continue;
            }
            let known = held.is_some() || r.node == self.me;
            if !known && !matches!(claim, Claim::Alive { .. }) {
                // A member first heard of as suspect or dead is still a member: it counts in the
                // majority, and may come back. Someone else's verdict is not first-hand, so we
                // suspect it ourselves (our own timeout decides) and tell it, so that a live
                // member refutes at once.
                if self.members.len() + 1 >= self.config.members_max {
                    continue;
                }
                let member = Member::alive(r.node, r.addr, r.incarnation, env.now());
                self.members.insert(member, env);
                self.start_suspicion(env, r.node, r.incarnation, sender);
                let accusation = Update {
                    node: r.node,
                    incarnation: r.incarnation,
                    claim: Claim::Suspect { by: sender },
                };
                self.send_with(env, r.addr, Body::Gossip, vec![accusation]);
                self.note_view(env);
                continue;
            }
            if let (Some((MemberState::Alive, incarnation, addr)), Claim::Suspect { .. } | Claim::Dead { .. }) =
                (held, claim)
            {
                if r.incarnation == incarnation {
                    // Another node's list says a member we hold alive is suspect or dead at the
                    // same incarnation: typically the far side of a healed partition. Adopting it
                    // would flap a healthy member; instead the member is told, and refutes if it
                    // lives. A member that really failed is found by our own probes.
                    let update = Update {
                        node: r.node,
                        incarnation: r.incarnation,
                        claim,
                    };
                    self.send_with(env, addr, Body::Gossip, vec![update]);
                    continue;
                }
            }
            let update = Update {
                node: r.node,
                incarnation: r.incarnation,
                claim,
            };
            // News about the sender itself is first-hand and worth gossiping; a third party's
            // record is anti-entropy, already spreading by exchanges like this one.
            if r.node == sender {
                self.apply(env, update);
            } else {
                self.apply_quietly(env, update);
            }
        }
    }

    /// Applies one claim with SWIM's precedence rules: a higher incarnation wins; at equal
    /// incarnations dead beats suspect beats alive. Accepted news is gossiped on.
    fn apply(&mut self, env: &mut Cx<'_>, update: Update) {
        if self.accept(env, update) {
            self.broadcasts.push(update);
        }
    }

    /// Like [`Self::apply`], without gossiping the news on.
    fn apply_quietly(&mut self, env: &mut Cx<'_>, update: Update) {
        self.accept(env, update);
    }

    /// Applies `update` to the member table; true if it changed what this node believes.
    fn accept(&mut self, env: &mut Cx<'_>, update: Update) -> bool {
        if update.node == self.me {
            self.refute_if_needed(env, update);
            return false;
        }
        let accepted = match self.members.get(update.node).map(|m| (m.state, m.incarnation)) {
            None => match update.claim {
                Claim::Alive { addr } if self.members.len() + 1 < self.config.members_max => {
                    let member = Member::alive(update.node, addr, update.incarnation, env.now());
                    self.members.insert(member, env);
                    env.probe(Probe::new("member", update.node.0, 0));
                    true
                }
                _ => false,
            },
            Some((state, incarnation)) => match update.claim {
                Claim::Alive { addr } if update.incarnation > incarnation => {
                    let member = self.members.get_mut(update.node).expect("known");
                    member.incarnation = update.incarnation;
                    member.addr = addr;
                    self.transition(env, update.node, MemberState::Alive);
                    true
                }
                Claim::Suspect { by } if state != MemberState::Dead && update.incarnation >= incarnation => {
                    if state == MemberState::Suspect && update.incarnation == incarnation {
                        self.confirm_suspicion(env, update.node, by)
                    } else {
                        self.start_suspicion(env, update.node, update.incarnation, by);
                        true
                    }
                }
                Claim::Dead { by }
                    if by != self.me && state != MemberState::Dead && update.incarnation >= incarnation =>
                {
                    // No death on hearsay. A second-hand death is a suspicion (or a confirmation
                    // of ours) of the incarnation it names: it shortens our own timeout but never
                    // skips it, and our own probe must fail before we declare. Such claims are
                    // often stale news from the far side of a healed partition.
                    let news = if state == MemberState::Alive || update.incarnation > incarnation {
                        self.start_suspicion(env, update.node, update.incarnation, by);
                        true
                    } else {
                        self.confirm_suspicion(env, update.node, by)
                    };
                    if news {
                        // Gossiped on as the suspicion it became, not as the death it claimed.
                        self.broadcasts.push(Update {
                            claim: Claim::Suspect { by },
                            ..update
                        });
                        self.note_view(env);
                    }
                    false
                }
                // Only this node's own timed-out suspicion (backed by its own failed probe)
                // declares a member dead.
                Claim::Dead { by }
                    if by == self.me && state != MemberState::Dead && update.incarnation == incarnation =>
                {
                    self.transition(env, update.node, MemberState::Dead);
                    true
                }
                _ => false,
            },
        };
        if accepted {
            self.note_view(env);
        }
        accepted
    }

    fn refute_if_needed(&mut self, env: &mut Cx<'_>, update: Update) {
        let Some(current) = self.incarnation else { return };
        if update.incarnation > current.saturating_add(INCARNATION_LEAD_MAX) {
            // No honest peer knows an incarnation of ours this far ahead of our own (a node
            // restarted on a wiped disk lags by its restarts and refutations, not by billions):
            // refuting it would jump our incarnation towards its end, where one more accusation
            // could never be outranked. Forged or corrupt; ignored and counted.
            env.probe(Probe::new("implausible_incarnation", update.node.0, 1));
            return;
        }
        let refute = match update.claim {
            Claim::Alive { .. } => update.incarnation > current,
            Claim::Suspect { .. } | Claim::Dead { .. } => update.incarnation >= current,
        };
        let stale_accusation = matches!(update.claim, Claim::Suspect { .. } | Claim::Dead { .. }) && !refute;
        if stale_accusation {
            // Someone still suspects an incarnation we already refuted: the refutation missed
            // them, so it goes out again.
            let addr = self.my_addr.expect("address chosen at start");
            self.broadcasts.push(Update {
                node: self.me,
                incarnation: current,
                claim: Claim::Alive { addr },
            });
        }
        if refute {
            // Cannot overflow: the accusation is within INCARNATION_LEAD_MAX of `current`,
            // which grows by at most that much per refutation.
            let Some(incarnation) = update.incarnation.max(current).checked_add(1) else {
                env.probe(Probe::new("implausible_incarnation", update.node.0, 1));
                return;
            };
            self.persist_incarnation(env, incarnation);
            env.probe(Probe::new("refute", self.me.0, incarnation as i64));
            let addr = self.my_addr.expect("address chosen at start");
            self.broadcasts.push(Update {
                node: self.me,
                incarnation,
                claim: Claim::Alive { addr },
            });
        }
    }

    fn start_suspicion(&mut self, env: &mut Cx<'_>, id: NodeId, incarnation: u64, by: NodeId) {
        let (min, max) = timeouts(
            self.members.len() + 1,
            self.config.probe_interval,
            self.config.suspicion_mult,
            self.config.suspicion_max_mult,
        );
        let suspicion = Suspicion::new(env.now(), by, min, max, self.config.confirmation_required);
        let deadline = suspicion.deadline();
        let member = self.members.get_mut(id).expect("known");
        member.incarnation = incarnation;
        self.transition(env, id, MemberState::Suspect);
        self.members.get_mut(id).expect("known").suspicion = Some(Box::new(suspicion));
        env.set_timer(deadline, Timer::Suspicion(id));
        // Check for ourselves at once, telling the suspect: a live one refutes in its ack (and
        // its ack alone keeps us from declaring it dead), however the round robin falls.
        if self.probes.len() < self.config.probes_in_flight_max {
            self.probe(env, id);
        }
    }

    fn confirm_suspicion(&mut self, env: &mut Cx<'_>, id: NodeId, by: NodeId) -> bool {
        let Some(suspicion) = self.members.get_mut(id).and_then(|m| m.suspicion.as_mut()) else {
            return false;
        };
        if !suspicion.confirm(by) {
            return false;
        }
        let deadline = suspicion.deadline();
        env.set_timer(deadline, Timer::Suspicion(id));
        true
    }

    fn transition(&mut self, env: &mut Cx<'_>, id: NodeId, state: MemberState) {
        if self.members.set_state(id, state, env.now()) != Some(state) {
            env.probe(Probe::new("member", id.0, i64::from(state.code())));
        }
    }

    /// Records a `majority` probe whenever this node's side gains or loses the majority.
    fn note_view(&mut self, env: &mut Cx<'_>) {
        let majority = self.has_majority();
        if self.majority != Some(majority) {
            self.majority = Some(majority);
            env.probe(Probe::new(
                "majority",
                self.members.alive() as u64 + 1,
                i64::from(majority),
            ));
        }
    }
}

impl Protocol for MembershipNode {
    type Timer = Timer;

    fn on_start(&mut self, env: &mut Cx<'_>) {
        let addrs = env.local_addrs();
        self.my_addr = addrs
            .iter()
            .copied()
            .find(|a| AddressFamily::of(a) == AddressFamily::V6)
            .or_else(|| addrs.first().copied());
        if self.my_addr.is_none() {
            env.probe(Probe::new("no_address", 0, 1));
            return;
        }
        self.begin(env);
    }

    fn on_message(&mut self, env: &mut Cx<'_>, from: SocketAddr, payload: Bytes) {
        if self.incarnation.is_none() {
            return;
        }
        match Message::decode(&payload) {
            Ok(message) if self.speaks_as_itself(env, from, message.sender) => self.handle(env, from, message),
            Ok(_) => {}
            Err(_) => env.probe(Probe::new("malformed", 0, 1)),
        }
    }

    fn on_timer(&mut self, env: &mut Cx<'_>, timer: Timer) {
        match timer {
            Timer::Start => self.begin(env),
            Timer::Probe => self.on_probe_tick(env),
            Timer::Indirect(seq) => self.on_indirect(env, seq),
            Timer::ProbeDeadline(seq) => self.on_probe_deadline(env, seq),
            Timer::Suspicion(id) => self.on_suspicion_timer(env, id),
            Timer::Gossip => self.on_gossip_tick(env),
            Timer::PushPull => self.on_push_pull_tick(env),
            Timer::Join => self.join(env),
            Timer::CatchUp => self.on_catch_up(env),
            Timer::RelayExpiry(seq) => {
                self.relays.remove(&seq);
            }
            Timer::Announce => self.announce(env),
        }
    }
}
