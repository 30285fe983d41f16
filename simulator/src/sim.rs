//! The simulation: nodes, their actors, and the loop that dispatches events in virtual time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use runtime::{
    Actor, AddressFamily, Clock, Datagrams, DetRng, Entropy, Instant, Probe, Probes, SendError, Storage, StorageError,
    TimerToken, Timers, WallTime, MAX_DATAGRAM_BYTES,
};

use crate::byzantine::{Intercepted, Interceptor, LinkEnds};
use crate::clock::NodeClock;
use crate::fast_hash::FastBuildHasher;
use crate::network::uniform;
use crate::queue::EventQueue;
use crate::storage::SimStorage;
use crate::trace::{TraceEvent, TraceHasher, TraceWriter};
use crate::{ClockModel, FaultAction, FaultCounts, NetworkModel, NodeSet, SimTime, StorageFaults};

/// A node's index in the simulation, in the order nodes were added.
pub type NodeIndex = u32;

/// Builds the actor for a node, at first start and at every restart. Substituting an adversarial
/// actor for some nodes is how Byzantine nodes are simulated.
pub trait ActorFactory {
    /// The actor node `node` runs from now on.
    fn build(&mut self, node: NodeIndex) -> Box<dyn Actor>;
}

impl<F: FnMut(NodeIndex) -> Box<dyn Actor>> ActorFactory for F {
    fn build(&mut self, node: NodeIndex) -> Box<dyn Actor> {
        self(node)
    }
}

/// How to set up one node.
#[derive(Clone, Debug, Default)]
pub struct NodeSpec {
    /// Its addresses, at most one per family: IPv6-only, IPv4-only or dual-stack.
    pub addrs: Vec<SocketAddr>,
    /// Its clock.
    pub clock: ClockModel,
    /// Faults of its disk.
    pub storage_faults: StorageFaults,
}

/// A probe with where and when it was recorded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProbeRecord {
    /// True time.
    pub at: SimTime,
    /// Recording node.
    pub node: NodeIndex,
    /// What it recorded.
    pub probe: Probe,
}

/// Traffic and activity figures of a run (faults are in [`FaultCounts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunStats {
    /// Events dispatched.
    pub events: u64,
    /// Datagrams handed to the network.
    pub datagrams_sent: u64,
    /// Payload bytes of those datagrams.
    pub bytes_sent: u64,
    /// Datagrams that reached an actor.
    pub datagrams_delivered: u64,
    /// Datagrams addressed to no node.
    pub datagrams_unroutable: u64,
    /// Datagrams that arrived at a crashed node.
    pub datagrams_to_down_node: u64,
    /// Sends refused because the node had no socket of the destination's family.
    pub send_address_family_errors: u64,
    /// Timers fired.
    pub timers_fired: u64,
    /// Probes not kept because the run reached [`PROBES_MAX`].
    pub probes_dropped: u64,
}

/// A scheduled fault action as it was applied: how many things it changed (nodes crashed,
/// restarted, paused or whose clocks moved; cuts made or healed; link models replaced). Zero
/// means it did nothing: a crash of nodes already down, a restart of running ones.
#[derive(Clone, Debug)]
pub struct AppliedFault {
    /// When it fired.
    pub at: SimTime,
    /// Its kind ([`FaultAction::kind`]).
    pub kind: &'static str,
    /// What it changed.
    pub effects: u64,
    /// The nodes it changed, for actions on nodes (crash, restart, pause, clock steps).
    pub nodes: Vec<NodeIndex>,
    /// The scheduled action (`None` for a crash struck at a storage call).
    pub action: Option<FaultAction>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Liveness {
    Up,
    Down,
}

struct NodeSlot {
    addrs: Vec<SocketAddr>,
    clock: NodeClock,
    /// The actor's entropy; re-forked at each restart.
    entropy: DetRng,
    /// Network decisions about this node's outgoing datagrams.
    net_rng: DetRng,
    /// Storage fault decisions.
    disk_rng: DetRng,
    storage: SimStorage,
    liveness: Liveness,
    /// Incremented at every crash: timers of an earlier life never fire.
    life: u32,
    paused_until: Option<SimTime>,
    stalled: Vec<Event>,
    /// Datagrams among `stalled` (bounded by [`STALLED_DATAGRAMS_MAX`]).
    stalled_datagrams: usize,
    egress_free_at: SimTime,
    /// A crash struck at a storage call during the current callback: nothing the actor does
    /// after it happens, and the node goes down when the callback returns.
    struck: bool,
}

/// Datagrams a paused node holds at most, as its socket's receive buffer would (about 4 MiB of
/// 1 KiB datagrams); beyond it they are dropped and counted as `pause_overflow`. Timers are
/// always held: a process's timers do not overflow while it is stopped.
pub const STALLED_DATAGRAMS_MAX: usize = 4096;

/// Probes one run keeps at most (about 1 GiB): analysis needs every probe, so a run past this
/// counts the rest in [`RunStats::probes_dropped`] and its figures cannot be trusted.
pub const PROBES_MAX: usize = 16_000_000;

enum Event {
    Start {
        node: NodeIndex,
        life: u32,
    },
    Deliver {
        from_node: NodeIndex,
        to_node: NodeIndex,
        from: SocketAddr,
        payload: Bytes,
    },
    Timer {
        node: NodeIndex,
        life: u32,
        token: TimerToken,
    },
    Fault(FaultAction),
    Resume {
        node: NodeIndex,
    },
}

/// Everything but the actors, so an actor can be called with a mutable view of the world.
struct World {
    now: SimTime,
    queue: EventQueue<Event>,
    nodes: Vec<NodeSlot>,
    by_addr: HashMap<SocketAddr, NodeIndex, FastBuildHasher>,
    network: NetworkModel,
    interceptor: Option<(Box<dyn Interceptor>, DetRng)>,
    faults: FaultCounts,
    stats: RunStats,
    hasher: TraceHasher,
    trace: Option<TraceWriter>,
    probes: Vec<ProbeRecord>,
    applied: Vec<AppliedFault>,
}

impl World {
    /// Folds a datagram dropped before delivery into the trace hash (and the trace).
    fn record_drop(&mut self, from: NodeIndex, to: NodeIndex, reason: &'static str) {
        self.hasher.word(0x4452_4F50); // "DROP"
        self.hasher.word(self.now.as_nanos());
        self.hasher.word(u64::from(from) << 32 | u64::from(to));
        self.hasher.end_event();
        if let Some(t) = &mut self.trace {
            t.write(&TraceEvent::Drop {
                t: self.now.as_nanos(),
                from,
                to,
                reason,
            });
        }
    }
}

/// A deterministic simulation of nodes running actors.
///
/// ```
/// use simulator::{Simulation, NodeSpec, NetworkModel, SimTime};
/// # use runtime::{Actor, Env}; use bytes::Bytes; use std::net::SocketAddr;
/// # struct Idle; impl Actor for Idle {
/// #   fn on_start(&mut self, _: &mut dyn Env) {}
/// #   fn on_datagram(&mut self, _: &mut dyn Env, _: SocketAddr, _: Bytes) {}
/// #   fn on_timer(&mut self, _: &mut dyn Env, _: u64) {} }
/// let mut sim = Simulation::new(42, NetworkModel::default(), Box::new(|_| Box::new(Idle) as Box<dyn Actor>));
/// sim.add_node(NodeSpec { addrs: vec!["[fd00::1]:7000".parse().unwrap()], ..NodeSpec::default() });
/// sim.run_until(SimTime::from_millis(1000), |_| {});
/// assert_eq!(sim.trace_hash(), { let mut again = Simulation::new(42, NetworkModel::default(), Box::new(|_| Box::new(Idle) as Box<dyn Actor>));
///     again.add_node(NodeSpec { addrs: vec!["[fd00::1]:7000".parse().unwrap()], ..NodeSpec::default() });
///     again.run_until(SimTime::from_millis(1000), |_| {}); again.trace_hash() });
/// ```
pub struct Simulation {
    seed: u64,
    root_rng: DetRng,
    world: World,
    actors: Vec<Option<Box<dyn Actor>>>,
    factory: Box<dyn ActorFactory>,
    stopwatch: Option<Stopwatch>,
}

/// Wall time spent in each node's handlers, measured by a clock the caller supplies. What it
/// reads never reaches the actors, the event queue or the trace hash: a run is the same with or
/// without it, only its cost is known.
struct Stopwatch {
    clock: Box<dyn Fn() -> Duration>,
    per_node: Vec<Duration>,
}

/// Random streams forked from the seed, by purpose, so adding draws for one purpose never shifts
/// another.
mod stream {
    pub const ENTROPY: u64 = 1 << 40;
    pub const NET: u64 = 2 << 40;
    pub const DISK: u64 = 3 << 40;
    pub const INTERCEPT: u64 = 4 << 40;
}

impl Simulation {
    /// An empty simulation driven by `seed`, whose nodes run what `factory` builds.
    pub fn new(seed: u64, network: NetworkModel, factory: Box<dyn ActorFactory>) -> Self {
        let mut hasher = TraceHasher::default();
        hasher.word(seed);
        Simulation {
            seed,
            root_rng: DetRng::seed_from_u64(seed),
            world: World {
                now: SimTime::ZERO,
                queue: EventQueue::new(),
                nodes: Vec::new(),
                by_addr: HashMap::default(),
                network,
                interceptor: None,
                faults: FaultCounts::default(),
                stats: RunStats::default(),
                hasher,
                trace: None,
                probes: Vec::new(),
                applied: Vec::new(),
            },
            actors: Vec::new(),
            factory,
            stopwatch: None,
        }
    }

    /// Measures the wall time each node's handlers take with `clock` (a monotonic reading from
    /// the caller, who alone may read the OS's time), from now on; see
    /// [`Simulation::handler_time`]. The run itself is unchanged.
    pub fn set_stopwatch(&mut self, clock: Box<dyn Fn() -> Duration>) {
        self.stopwatch = Some(Stopwatch {
            clock,
            per_node: vec![Duration::ZERO; self.actors.len()],
        });
    }

    /// Wall time spent in each node's `on_start`, `on_datagram` and `on_timer` (by node index),
    /// if a stopwatch was set.
    pub fn handler_time(&self) -> Option<&[Duration]> {
        self.stopwatch.as_ref().map(|s| s.per_node.as_slice())
    }

    /// The stopwatch's reading before a handler runs.
    fn lap(&self) -> Option<Duration> {
        self.stopwatch.as_ref().map(|s| (s.clock)())
    }

    /// Charges `node` the time since `began` ([`Simulation::lap`]).
    fn charge(&mut self, node: NodeIndex, began: Option<Duration>) {
        if let (Some(s), Some(began)) = (&mut self.stopwatch, began) {
            let spent = (s.clock)().saturating_sub(began);
            let i = node as usize;
            if s.per_node.len() <= i {
                s.per_node.resize(i + 1, Duration::ZERO);
            }
            s.per_node[i] += spent;
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Adds a node that starts at the current time. Panics if an address is already taken: two
    /// nodes on one address is a bug in the caller's setup, not a fault to simulate.
    pub fn add_node(&mut self, spec: NodeSpec) -> NodeIndex {
        let now = self.world.now;
        self.add_node_at(spec, now)
    }

    /// Adds a node that is powered off until `start` (no later than now: it starts at once).
    pub fn add_node_at(&mut self, spec: NodeSpec, start: SimTime) -> NodeIndex {
        let index = self.world.nodes.len() as NodeIndex;
        for addr in &spec.addrs {
            let previous = self.world.by_addr.insert(*addr, index);
            assert!(previous.is_none(), "address {addr} given to two nodes");
        }
        let i = u64::from(index);
        self.world.nodes.push(NodeSlot {
            addrs: spec.addrs,
            clock: NodeClock::new(spec.clock),
            entropy: self.root_rng.fork(stream::ENTROPY | i),
            net_rng: self.root_rng.fork(stream::NET | i),
            disk_rng: self.root_rng.fork(stream::DISK | i),
            storage: SimStorage::new(spec.storage_faults),
            liveness: Liveness::Down,
            life: 0,
            paused_until: None,
            stalled: Vec::new(),
            stalled_datagrams: 0,
            egress_free_at: SimTime::ZERO,
            struck: false,
        });
        self.actors.push(None);
        let start = start.max(self.world.now);
        self.world.queue.push(start, Event::Start { node: index, life: 0 });
        index
    }

    /// Installs a man in the middle on every link.
    pub fn set_interceptor(&mut self, interceptor: Box<dyn Interceptor>) {
        let rng = self.root_rng.fork(stream::INTERCEPT);
        self.world.interceptor = Some((interceptor, rng));
    }

    /// Writes every event to `trace` as JSON lines.
    pub fn set_trace(&mut self, trace: TraceWriter) {
        self.world.trace = Some(trace);
    }

    /// Takes the trace writer back (to flush it and learn of write errors).
    pub fn take_trace(&mut self) -> Option<TraceWriter> {
        self.world.trace.take()
    }

    /// Fires `action` at `at`.
    pub fn schedule(&mut self, at: SimTime, action: FaultAction) {
        self.world.queue.push(at, Event::Fault(action));
    }

    /// Delivers `payload` to whoever owns `to` at `at`, appearing to come from `from` though no
    /// node sent it (a forged datagram, counted as `byzantine_forge`).
    pub fn forge(&mut self, at: SimTime, from: SocketAddr, to: SocketAddr, payload: Bytes) {
        let Some(&to_node) = self.world.by_addr.get(&to) else {
            return;
        };
        let from_node = self.world.by_addr.get(&from).copied().unwrap_or(to_node);
        self.world.faults.add("byzantine_forge");
        self.world.queue.push(
            at,
            Event::Deliver {
                from_node,
                to_node,
                from,
                payload,
            },
        );
    }

    /// Every scheduled fault action applied so far, with what it changed.
    pub fn applied_faults(&self) -> &[AppliedFault] {
        &self.world.applied
    }

    /// The current true time.
    pub fn now(&self) -> SimTime {
        self.world.now
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.world.nodes.len()
    }

    /// Node `node`'s addresses.
    pub fn addrs(&self, node: NodeIndex) -> &[SocketAddr] {
        &self.world.nodes[node as usize].addrs
    }

    /// Whether `node` is running (not crashed).
    pub fn is_up(&self, node: NodeIndex) -> bool {
        self.world.nodes[node as usize].liveness == Liveness::Up
    }

    /// Node `node`'s wall clock error against true time now, in nanoseconds.
    pub fn wall_error_ns(&self, node: NodeIndex) -> i64 {
        self.world.nodes[node as usize].clock.wall_error_ns(self.world.now)
    }

    /// Every probe recorded so far, in recording order.
    pub fn probes(&self) -> &[ProbeRecord] {
        &self.world.probes
    }

    /// Faults fired so far, by kind.
    pub fn faults(&self) -> &FaultCounts {
        &self.world.faults
    }

    /// Traffic and activity so far.
    pub fn stats(&self) -> &RunStats {
        &self.world.stats
    }

    /// The determinism fingerprint of everything dispatched so far.
    pub fn trace_hash(&self) -> String {
        // Every fault effect (losses, corruptions, interceptor drops and mutations, storage
        // errors, torn and lost writes, with their times) is in the digest; a run without any
        // keeps the hash of the events alone.
        let digest = self.world.faults.digest();
        if digest == 0 {
            return self.world.hasher.hex();
        }
        let mut hasher = self.world.hasher.clone();
        hasher.word(0x4546_4654); // "EFFT"
        hasher.word(digest);
        hasher.hex()
    }

    /// Events waiting in the queue.
    pub fn pending_events(&self) -> usize {
        self.world.queue.len()
    }

    /// Runs every event up to and including `end`, then sets the clock to `end`. `progress` is
    /// called now and then with the current time, for a progress bar.
    pub fn run_until(&mut self, end: SimTime, mut progress: impl FnMut(SimTime)) {
        const PROGRESS_EVERY_EVENTS: u64 = 1 << 16;
        while let Some(at) = self.world.queue.peek_time() {
            if at > end {
                break;
            }
            let (at, event) = self.world.queue.pop().expect("peeked");
            debug_assert!(at >= self.world.now, "time went backwards");
            self.world.now = at;
            self.world.faults.set_now(at.as_nanos());
            self.world.stats.events += 1;
            self.dispatch(event);
            if self.world.stats.events.is_multiple_of(PROGRESS_EVERY_EVENTS) {
                progress(at);
            }
        }
        self.world.now = self.world.now.max(end);
        progress(self.world.now);
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Start { node, life } => self.start(node, life),
            Event::Deliver {
                from_node,
                to_node,
                from,
                payload,
            } => self.deliver(from_node, to_node, from, payload),
            Event::Timer { node, life, token } => self.fire_timer(node, life, token),
            Event::Fault(action) => self.apply_fault(action),
            Event::Resume { node } => self.resume(node),
        }
    }

    /// Holds `event` if `node` is paused (`None`); otherwise gives it back to dispatch now.
    fn stall_if_paused(&mut self, node: NodeIndex, event: Event) -> Option<Event> {
        let w = &mut self.world;
        let slot = &mut w.nodes[node as usize];
        if slot.paused_until.is_none() {
            return Some(event);
        }
        if let Event::Deliver { from_node, .. } = &event {
            if slot.stalled_datagrams >= STALLED_DATAGRAMS_MAX {
                let from_node = *from_node;
                w.faults.add("pause_overflow");
                w.record_drop(from_node, node, "pause_overflow");
                return None;
            }
            slot.stalled_datagrams += 1;
        }
        slot.stalled.push(event);
        None
    }

    fn start(&mut self, node: NodeIndex, life: u32) {
        let slot = &mut self.world.nodes[node as usize];
        if slot.life != life || slot.liveness == Liveness::Up {
            return;
        }
        slot.liveness = Liveness::Up;
        let w = &mut self.world;
        w.hasher.word(0x5354_4152); // "STAR"
        w.hasher.word(w.now.as_nanos());
        w.hasher.word(u64::from(node));
        w.hasher.end_event();
        if let Some(t) = &mut w.trace {
            t.write(&TraceEvent::Start {
                t: w.now.as_nanos(),
                node,
            });
        }
        let began = self.lap();
        let mut actor = self.factory.build(node);
        actor.on_start(&mut NodeEnv {
            world: &mut self.world,
            node,
        });
        self.charge(node, began);
        self.actors[node as usize] = Some(actor);
        self.settle_strike(node);
    }

    /// Takes down a node that a crash struck at a storage call during its callback (what it did
    /// after that call was already discarded), and restarts it after
    /// [`crate::StorageFaults::crash_restart_after`].
    fn settle_strike(&mut self, node: NodeIndex) {
        let slot = &mut self.world.nodes[node as usize];
        if !slot.struck {
            return;
        }
        slot.struck = false;
        let restart_after = slot.storage.faults().crash_restart_after;
        let now = self.world.now;
        let crashed = self.crash(node);
        debug_assert!(crashed, "a node struck in its own callback was up");
        let w = &mut self.world;
        w.applied.push(AppliedFault {
            at: now,
            kind: "crash_at_io",
            effects: 1,
            nodes: vec![node],
            action: None,
        });
        w.hasher.word(0x494F_4352); // "IOCR"
        w.hasher.word(now.as_nanos());
        w.hasher.word(u64::from(node));
        w.hasher.end_event();
        if let Some(t) = &mut w.trace {
            t.write(&TraceEvent::Fault {
                t: now.as_nanos(),
                fault: "crash_at_io",
                detail: &format!("node {node}"),
                effects: 1,
            });
        }
        let restart = FaultAction::Restart(NodeSet::from_indices([node]));
        w.queue.push(now.after(restart_after), Event::Fault(restart));
    }

    fn deliver(&mut self, from_node: NodeIndex, to_node: NodeIndex, from: SocketAddr, payload: Bytes) {
        let w = &mut self.world;
        let drop_reason = if w.nodes[to_node as usize].liveness == Liveness::Down {
            w.stats.datagrams_to_down_node += 1;
            Some("node_down")
        } else if w.network.is_cut(from_node, to_node) {
            w.faults.add("partition_drop");
            Some("partition")
        } else {
            None
        };
        if let Some(reason) = drop_reason {
            w.record_drop(from_node, to_node, reason);
            return;
        }
        let Some(Event::Deliver {
            from_node,
            to_node,
            from,
            payload,
        }) = self.stall_if_paused(
            to_node,
            Event::Deliver {
                from_node,
                to_node,
                from,
                payload,
            },
        )
        else {
            return;
        };
        let w = &mut self.world;
        w.stats.datagrams_delivered += 1;
        w.hasher.word(0x4445_4C56); // "DELV"
        w.hasher.word(w.now.as_nanos());
        w.hasher.word(u64::from(from_node) << 32 | u64::from(to_node));
        w.hasher.bytes(&payload);
        w.hasher.end_event();
        if let Some(t) = &mut w.trace {
            t.write(&TraceEvent::Deliver {
                t: w.now.as_nanos(),
                from: from_node,
                to: to_node,
                bytes: payload.len(),
            });
        }
        if let Some(mut actor) = self.actors[to_node as usize].take() {
            let began = self.lap();
            actor.on_datagram(
                &mut NodeEnv {
                    world: &mut self.world,
                    node: to_node,
                },
                from,
                payload,
            );
            self.charge(to_node, began);
            self.actors[to_node as usize] = Some(actor);
            self.settle_strike(to_node);
        }
    }

    fn fire_timer(&mut self, node: NodeIndex, life: u32, token: TimerToken) {
        let slot = &self.world.nodes[node as usize];
        if slot.life != life || slot.liveness == Liveness::Down {
            return;
        }
        let Some(Event::Timer { node, life: _, token }) =
            self.stall_if_paused(node, Event::Timer { node, life, token })
        else {
            return;
        };
        let w = &mut self.world;
        w.stats.timers_fired += 1;
        w.hasher.word(0x5449_4D45); // "TIME"
        w.hasher.word(w.now.as_nanos());
        w.hasher.word(u64::from(node));
        w.hasher.word(token);
        w.hasher.end_event();
        if let Some(t) = &mut w.trace {
            t.write(&TraceEvent::Timer {
                t: w.now.as_nanos(),
                node,
                token,
            });
        }
        if let Some(mut actor) = self.actors[node as usize].take() {
            let began = self.lap();
            actor.on_timer(
                &mut NodeEnv {
                    world: &mut self.world,
                    node,
                },
                token,
            );
            self.charge(node, began);
            self.actors[node as usize] = Some(actor);
            self.settle_strike(node);
        }
    }

    fn resume(&mut self, node: NodeIndex) {
        let now = self.world.now;
        let slot = &mut self.world.nodes[node as usize];
        if slot.paused_until.is_some_and(|until| until <= now) {
            slot.paused_until = None;
            // Held input is replayed in arrival order, all at the moment of resumption, as a
            // stalled process finds its socket buffer and expired timers when it wakes.
            slot.stalled_datagrams = 0;
            for event in std::mem::take(&mut slot.stalled) {
                self.world.queue.push(now, event);
            }
        }
    }

    fn apply_fault(&mut self, action: FaultAction) {
        let kind = action.kind();
        let now = self.world.now;
        let detail = self.world.trace.is_some().then(|| format!("{action:?}"));
        // What the action changed: a fault counts for what it did, not for being scheduled (a
        // crash of a node already down crashes nothing).
        let mut changed: Vec<NodeIndex> = Vec::new();
        let scheduled = action.clone();
        let effects: u64 = match action {
            FaultAction::Partition { a, b, one_way } => {
                let cuts = !a.is_empty() && !b.is_empty();
                self.world.network.partition(a, b, one_way);
                u64::from(cuts)
            }
            FaultAction::Heal => u64::from(self.world.network.heal()),
            FaultAction::Crash(nodes) => {
                changed = nodes.iter().filter(|node| self.crash(*node)).collect();
                changed.len() as u64
            }
            FaultAction::Restart(nodes) => {
                for node in nodes.iter() {
                    let slot = &mut self.world.nodes[node as usize];
                    if slot.liveness == Liveness::Down {
                        let life = slot.life;
                        self.world.queue.push(now, Event::Start { node, life });
                        changed.push(node);
                    }
                }
                changed.len() as u64
            }
            FaultAction::Pause { nodes, duration } => {
                let w = &mut self.world;
                for node in nodes.iter() {
                    let slot = &mut w.nodes[node as usize];
                    if slot.liveness == Liveness::Down || duration.is_zero() {
                        continue;
                    }
                    let until = now.after(duration);
                    let until = slot.paused_until.map_or(until, |u| u.max(until));
                    slot.paused_until = Some(until);
                    w.queue.push(until, Event::Resume { node });
                    changed.push(node);
                }
                changed.len() as u64
            }
            FaultAction::ClockJump { nodes, delta_ns } => {
                if delta_ns != 0 {
                    for node in nodes.iter() {
                        self.world.nodes[node as usize].clock.step(delta_ns);
                        changed.push(node);
                    }
                }
                changed.len() as u64
            }
            FaultAction::ClockCorrect(nodes) => {
                changed = nodes
                    .iter()
                    .filter(|node| self.world.nodes[*node as usize].clock.correct(now))
                    .collect();
                changed.len() as u64
            }
            FaultAction::HealPartition { a, b, one_way } => {
                u64::from(self.world.network.heal_partition(&a, &b, one_way))
            }
            FaultAction::SetLinks(model) => u64::from(self.world.network.set_base_link(model)),
            FaultAction::LinkWindow { id, change } => u64::from(self.world.network.open_window(id, change)),
            FaultAction::LinkWindowEnd { id } => u64::from(self.world.network.close_window(id)),
            FaultAction::EndStorageFaults(nodes) => {
                for node in nodes.iter() {
                    let storage = &mut self.world.nodes[node as usize].storage;
                    if *storage.faults() != StorageFaults::default() {
                        storage.set_faults(StorageFaults::default());
                        changed.push(node);
                    }
                }
                changed.len() as u64
            }
        };
        let w = &mut self.world;
        w.faults.add_n(kind, effects);
        w.applied.push(AppliedFault {
            at: now,
            kind,
            effects,
            nodes: changed,
            action: Some(scheduled),
        });
        w.hasher.word(0x4641_554C); // "FAUL"
        w.hasher.word(now.as_nanos());
        w.hasher.bytes(kind.as_bytes());
        w.hasher.word(effects);
        w.hasher.end_event();
        if let (Some(t), Some(detail)) = (&mut w.trace, detail) {
            t.write(&TraceEvent::Fault {
                t: now.as_nanos(),
                fault: kind,
                detail: &detail,
                effects,
            });
        }
    }

    /// Crashes `node`, if it is up: whether it was.
    fn crash(&mut self, node: NodeIndex) -> bool {
        let w = &mut self.world;
        let slot = &mut w.nodes[node as usize];
        if slot.liveness == Liveness::Down {
            return false;
        }
        slot.liveness = Liveness::Down;
        slot.life += 1;
        slot.paused_until = None;
        slot.stalled.clear();
        slot.stalled_datagrams = 0;
        slot.storage.crash(&mut slot.disk_rng, &mut w.faults);
        // A restarted process draws fresh randomness, as a real one would.
        slot.entropy = slot.entropy.fork(u64::from(slot.life));
        self.actors[node as usize] = None;
        true
    }
}

/// The world as one node sees it while its actor runs.
struct NodeEnv<'a> {
    world: &'a mut World,
    node: NodeIndex,
}

impl NodeEnv<'_> {
    fn slot(&mut self) -> &mut NodeSlot {
        &mut self.world.nodes[self.node as usize]
    }

    /// Whether the node is dead at this mutating storage call: struck earlier in this callback,
    /// or struck now (drawn from the disk's stream, counted as `crash_at_io`).
    fn crashes_here(&mut self) -> bool {
        let w = &mut *self.world;
        let slot = &mut w.nodes[self.node as usize];
        if slot.struck {
            return true;
        }
        if slot.storage.crash_strikes(&mut slot.disk_rng) {
            slot.struck = true;
            w.faults.add("crash_at_io");
        }
        slot.struck
    }

    /// Whether a crash struck earlier in this callback: what the actor does now never happened.
    fn is_struck(&self) -> bool {
        self.world.nodes[self.node as usize].struck
    }

    /// Arrival time of a datagram of `len` bytes sent now from this node on `link`.
    fn arrival(&mut self, to_node: NodeIndex, len: usize) -> (SimTime, bool) {
        let now = self.world.now;
        let link = *self.world.network.link(self.node, to_node);
        let slot = &mut self.world.nodes[self.node as usize];
        let mut departs = now;
        if let Some(bw) = link.bandwidth_bytes_per_s.filter(|bw| *bw > 0) {
            departs = departs.max(slot.egress_free_at);
            let transmit = Duration::from_nanos((len as u64).saturating_mul(1_000_000_000) / bw);
            slot.egress_free_at = departs.after(transmit);
            departs = slot.egress_free_at;
        }
        let mut delay = link.latency.sample(&mut slot.net_rng);
        if !link.jitter.is_zero() {
            delay += uniform(&mut slot.net_rng, Duration::ZERO, link.jitter);
        }
        let reordered = slot.net_rng.chance(link.reorder);
        if reordered {
            delay += uniform(&mut slot.net_rng, Duration::ZERO, link.reorder_window);
        }
        (departs.after(delay), reordered)
    }
}

impl Clock for NodeEnv<'_> {
    fn now(&self) -> Instant {
        self.world.nodes[self.node as usize].clock.monotonic(self.world.now)
    }

    fn wall_now(&self) -> WallTime {
        self.world.nodes[self.node as usize].clock.wall(self.world.now)
    }
}

impl Timers for NodeEnv<'_> {
    fn set_timer(&mut self, at: Instant, token: TimerToken) {
        if self.is_struck() {
            return;
        }
        let now = self.world.now;
        let slot = &self.world.nodes[self.node as usize];
        let fire_at = slot.clock.true_time_of(at).max(now);
        let (node, life) = (self.node, slot.life);
        self.world.queue.push(fire_at, Event::Timer { node, life, token });
    }
}

impl Datagrams for NodeEnv<'_> {
    fn local_addrs(&self) -> &[SocketAddr] {
        &self.world.nodes[self.node as usize].addrs
    }

    fn send_to(&mut self, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        if self.is_struck() {
            return Ok(());
        }
        if payload.len() > MAX_DATAGRAM_BYTES {
            return Err(SendError::TooLarge {
                len: payload.len(),
                max: MAX_DATAGRAM_BYTES,
            });
        }
        let family = AddressFamily::of(&to);
        let Some(from) = self
            .slot()
            .addrs
            .iter()
            .copied()
            .find(|a| AddressFamily::of(a) == family)
        else {
            self.world.stats.send_address_family_errors += 1;
            return Err(SendError::AddressFamilyNotSupported { to, family });
        };
        self.world.stats.datagrams_sent += 1;
        self.world.stats.bytes_sent += payload.len() as u64;
        let Some(&to_node) = self.world.by_addr.get(&to) else {
            self.world.stats.datagrams_unroutable += 1;
            return Ok(());
        };
        let from_node = self.node;
        let link = *self.world.network.link(from_node, to_node);
        let slot = &mut self.world.nodes[from_node as usize];
        if slot.net_rng.chance(link.loss) {
            // Traced and hashed like every other drop: a lost message is a fault's effect.
            self.world.faults.add("message_loss");
            self.world.record_drop(from_node, to_node, "loss");
            return Ok(());
        }
        let mut payload = payload;
        let (mut to_node, mut from) = (to_node, from);
        if let Some((interceptor, rng)) = &mut self.world.interceptor {
            match interceptor.intercept(
                LinkEnds {
                    from_node,
                    to_node,
                    from,
                    to,
                    at: self.world.now,
                },
                payload,
                rng,
            ) {
                Intercepted::Pass(p) => payload = p,
                Intercepted::Mutated(p) => {
                    self.world.faults.add("byzantine_mutation");
                    payload = p;
                }
                Intercepted::Dropped => {
                    self.world.faults.add("byzantine_drop");
                    self.world.record_drop(from_node, to_node, "byzantine_drop");
                    return Ok(());
                }
                Intercepted::Rerouted {
                    to_node: to,
                    from: source,
                    payload: p,
                } => {
                    assert!(
                        (to as usize) < self.world.nodes.len(),
                        "an interceptor rerouted to node {to}, which does not exist"
                    );
                    self.world.faults.add("byzantine_reroute");
                    (to_node, from, payload) = (to, source, p);
                }
            }
        }
        let slot = &mut self.world.nodes[from_node as usize];
        if !payload.is_empty() && slot.net_rng.chance(link.corrupt) {
            let bit = slot.net_rng.below(payload.len() as u64 * 8);
            let mut bytes = payload.to_vec();
            bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
            payload = Bytes::from(bytes);
            self.world.faults.add("message_corruption");
        }
        let duplicate = self.world.nodes[from_node as usize].net_rng.chance(link.duplicate);
        let (arrives, reordered) = self.arrival(to_node, payload.len());
        if reordered {
            self.world.faults.add("message_reorder");
        }
        if duplicate {
            let (again, _) = self.arrival(to_node, payload.len());
            self.world.faults.add("message_duplicate");
            self.world.queue.push(
                again,
                Event::Deliver {
                    from_node,
                    to_node,
                    from,
                    payload: payload.clone(),
                },
            );
        }
        self.world.queue.push(
            arrives,
            Event::Deliver {
                from_node,
                to_node,
                from,
                payload,
            },
        );
        Ok(())
    }
}

impl Entropy for NodeEnv<'_> {
    fn next_u64(&mut self) -> u64 {
        self.slot().entropy.next_u64()
    }
}

impl Storage for NodeEnv<'_> {
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let w = &mut *self.world;
        let slot = &mut w.nodes[self.node as usize];
        slot.storage
            .read_at(name, offset, len, &mut slot.disk_rng, &mut w.faults)
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        if self.crashes_here() {
            return Ok(());
        }
        let w = &mut *self.world;
        let slot = &mut w.nodes[self.node as usize];
        slot.storage
            .write_at(name, offset, data, &mut slot.disk_rng, &mut w.faults)
    }

    fn size(&mut self, name: &str) -> Result<u64, StorageError> {
        self.slot().storage.size(name)
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StorageError> {
        if self.crashes_here() {
            return Ok(());
        }
        let w = &mut *self.world;
        let slot = &mut w.nodes[self.node as usize];
        slot.storage.truncate(name, len, &mut slot.disk_rng, &mut w.faults)
    }

    fn sync(&mut self, name: &str) -> Result<(), StorageError> {
        if self.crashes_here() {
            return Ok(());
        }
        let w = &mut *self.world;
        let slot = &mut w.nodes[self.node as usize];
        slot.storage.sync(name, &mut slot.disk_rng, &mut w.faults)
    }

    fn remove(&mut self, name: &str) -> Result<(), StorageError> {
        if self.crashes_here() {
            return Ok(());
        }
        self.slot().storage.remove(name)
    }

    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        Ok(self.slot().storage.list())
    }
}

impl Probes for NodeEnv<'_> {
    fn probe(&mut self, probe: Probe) {
        if self.is_struck() {
            return;
        }
        let w = &mut *self.world;
        w.hasher.word(0x5052_4F42); // "PROB"
        w.hasher.word(w.now.as_nanos());
        w.hasher.word(u64::from(self.node));
        w.hasher.bytes(probe.protocol.as_bytes());
        w.hasher.bytes(probe.name.as_bytes());
        w.hasher.word(probe.subject);
        w.hasher.word(probe.value as u64);
        w.hasher.end_event();
        if let Some(t) = &mut w.trace {
            t.write(&TraceEvent::Probe {
                t: w.now.as_nanos(),
                node: self.node,
                protocol: probe.protocol,
                name: probe.name,
                subject: probe.subject,
                value: probe.value,
            });
        }
        if w.probes.len() >= PROBES_MAX {
            w.stats.probes_dropped += 1;
            return;
        }
        w.probes.push(ProbeRecord {
            at: w.now,
            node: self.node,
            probe,
        });
    }
}
