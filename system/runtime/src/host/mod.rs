//! A node that hosts several protocols over one transport.
//!
//! A HyperMesh node runs TrustChain, membership, consensus and the registries side by side. Each
//! is a [`Protocol`] mounted on a [`Host`] under a name and a [`Channel`], and each gets its own
//! namespace from the [`Context`] it is called with:
//!
//! - **typed timers**: a protocol sets a timer with a value of its own `Timer` type (an enum that
//!   may carry a full 64-bit node id) and gets the same value back; the host maps the backend's
//!   opaque tokens to owners, so no protocol packs bits into a `u64` or fears another's tokens;
//! - **its own files** (`NAME.file` on the node's storage) and **probes** (tagged with its name);
//! - **its own random stream**, seeded from the node's at start in mount order, so the draws one
//!   protocol makes never shift another's;
//! - **its own channel** over the node's one [`Transport`] (bare datagrams, or STOQ), with a
//!   bounded inbound queue (`inbox_max`): what arrives beyond it is dropped and counted, as a
//!   full socket buffer would drop it;
//! - **read access to its siblings** ([`Context::sibling`]): consensus may ask membership who is
//!   alive through membership's own `&self` methods. There is no shared mutable state: only the
//!   protocol being called is borrowed mutably.
//!
//! The host is itself an [`Actor`], so both backends (the simulator and the tokio driver) run
//! it unchanged. The model is commonware's namespaced child contexts and per-protocol p2p
//! channels, in the sans-IO callback style of the rest of this workspace.

mod context;
mod scoped;
mod timers;
mod transport;

use std::any::Any;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use crate::{Actor, DetRng, Env, Probe, TimerToken};

pub use context::{Context, Siblings};
pub use transport::{BareDatagrams, Channel, Delivery, Inbox, Transport, INBOX_MAX_DEFAULT};

use scoped::TransportEnv;
use timers::{Owner, TimerTable};

/// A protocol that runs on a [`Host`] beside others.
///
/// Calls never overlap and each runs to completion. A protocol restarted after a crash is built
/// afresh and must recover from its files alone.
pub trait Protocol: Any + Send {
    /// What a timer of this protocol carries: usually an enum of timer kinds with their
    /// arguments. The value comes back, unchanged, to [`Protocol::on_timer`].
    type Timer: Send + 'static;

    /// Called once when the node (re)starts, after the transport has started.
    fn on_start(&mut self, cx: &mut Context<'_, Self::Timer>);
    /// Called for every message on this protocol's channel.
    fn on_message(&mut self, cx: &mut Context<'_, Self::Timer>, from: SocketAddr, payload: Bytes);
    /// Called when a timer set with [`Context::set_timer`] fires.
    fn on_timer(&mut self, cx: &mut Context<'_, Self::Timer>, timer: Self::Timer);
}

/// Where a protocol lives on its node: its name (the namespace of its files and probes), its
/// channel on the transport, and the bound of its inbound queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The protocol's name: `[a-z0-9_-]`, at most [`MOUNT_NAME_BYTES_MAX`] bytes.
    pub name: &'static str,
    /// The channel its messages travel on.
    pub channel: Channel,
    /// Messages held for it at most (they wait only while a received batch is still arriving).
    pub inbox_max: usize,
}

impl Mount {
    /// A mount named `name` on `channel`, with the default inbound bound.
    pub const fn new(name: &'static str, channel: Channel) -> Self {
        Mount {
            name,
            channel,
            inbox_max: INBOX_MAX_DEFAULT,
        }
    }
}

/// The longest protocol name: it prefixes every file the protocol writes, and file names are
/// limited to [`crate::FILE_NAME_BYTES_MAX`].
pub const MOUNT_NAME_BYTES_MAX: usize = 16;

/// The largest message a protocol can send over [`BareDatagrams`]: a datagram less the channel
/// byte.
pub const MESSAGE_BYTES_MAX: usize = crate::MAX_DATAGRAM_BYTES - 1;

/// The most protocols one host carries (a node runs a handful; the bound keeps dispatch trivial).
pub const PROTOCOLS_MAX: usize = 16;

/// What a host counted: deliveries and what it refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Messages handed to protocols.
    pub delivered: u64,
    /// Messages for a channel no protocol is mounted on.
    pub unknown_channel: u64,
    /// Messages dropped because their protocol's inbound queue was full.
    pub inbox_full: u64,
    /// Datagrams too short to carry a channel.
    pub malformed: u64,
    /// Timer tokens the host never issued (a backend fault; ignored).
    pub unknown_timers: u64,
}

/// Several protocols on one node, over one transport: an [`Actor`] for either backend.
///
/// ```
/// use runtime::host::{BareDatagrams, Channel, Context, Host, Mount, Protocol};
/// # use std::net::SocketAddr; use bytes::Bytes;
/// struct Hello;
/// impl Protocol for Hello {
///     type Timer = ();
///     fn on_start(&mut self, _: &mut Context<'_, ()>) {}
///     fn on_message(&mut self, _: &mut Context<'_, ()>, _: SocketAddr, _: Bytes) {}
///     fn on_timer(&mut self, _: &mut Context<'_, ()>, _: ()) {}
/// }
/// let host = Host::new(BareDatagrams).mount(Mount::new("hello", Channel(1)), Hello);
/// assert!(host.protocol::<Hello>().is_some());
/// ```
pub struct Host {
    core: Core,
    slots: Vec<Box<dyn Slot>>,
}

/// What every protocol's context shares: the transport, the timer table and the inbound queues.
pub(crate) struct Core {
    pub(crate) transport: Box<dyn Transport>,
    pub(crate) timers: TimerTable,
    pub(crate) inbox: Inbox,
}

impl Host {
    /// A host whose protocols talk over `transport`.
    pub fn new(transport: impl Transport) -> Self {
        Host {
            core: Core {
                transport: Box::new(transport),
                timers: TimerTable::default(),
                inbox: Inbox::default(),
            },
            slots: Vec::new(),
        }
    }

    /// Mounts `protocol` at `mount`. Names and channels are fixed at build time, so a clash is a
    /// programming error and panics, as does an invalid name or more than [`PROTOCOLS_MAX`].
    pub fn mount<P: Protocol>(mut self, mount: Mount, protocol: P) -> Self {
        assert!(
            !mount.name.is_empty()
                && mount.name.len() <= MOUNT_NAME_BYTES_MAX
                && mount
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'),
            "protocol name {:?}: use 1 to {MOUNT_NAME_BYTES_MAX} of [a-z0-9_-]",
            mount.name
        );
        assert!(
            mount.name != self.core.transport.name(),
            "protocol name {:?} is the transport's",
            mount.name
        );
        assert!(
            mount.inbox_max > 0,
            "protocol {:?}: inbox_max must be positive",
            mount.name
        );
        assert!(
            self.slots.len() < PROTOCOLS_MAX,
            "more than {PROTOCOLS_MAX} protocols on one host"
        );
        for slot in &self.slots {
            let other = slot.mount();
            assert!(other.name != mount.name, "two protocols named {:?}", mount.name);
            assert!(
                other.channel != mount.channel,
                "protocols {:?} and {:?} share channel {}",
                other.name,
                mount.name,
                mount.channel.0
            );
        }
        self.core.inbox.add_queue(mount.channel, mount.inbox_max);
        self.slots.push(Box::new(Mounted {
            protocol,
            mount,
            rng: DetRng::seed_from_u64(0),
            timers: std::collections::BTreeMap::new(),
        }));
        self
    }

    /// The mounted protocol of type `P`, if any (the first, if several).
    pub fn protocol<P: Protocol>(&self) -> Option<&P> {
        self.slots.iter().find_map(|s| s.protocol_any().downcast_ref::<P>())
    }

    /// The transport, if it is a `T`.
    pub fn transport<T: Transport>(&self) -> Option<&T> {
        let transport: &dyn Any = self.core.transport.as_ref();
        transport.downcast_ref::<T>()
    }

    /// What the host counted.
    pub fn stats(&self) -> &HostStats {
        &self.core.inbox.stats
    }

    /// Timers set and not yet fired, over the transport and every protocol.
    pub fn pending_timers(&self) -> usize {
        self.core.timers.pending()
    }

    /// Calls `f` with slot `i` borrowed mutably and every other slot shared.
    fn with_slot(
        &mut self,
        env: &mut dyn Env,
        i: usize,
        f: impl for<'a> FnOnce(&'a mut (dyn Slot + 'static), Call<'a>),
    ) {
        let (before, rest) = self.slots.split_at_mut(i);
        let (me, after) = rest.split_first_mut().expect("slot index in range");
        let siblings = Siblings::new(before, after);
        f(
            me.as_mut(),
            Call {
                env,
                core: &mut self.core,
                slot: i,
                siblings,
            },
        );
    }

    /// Hands every queued message to its protocol, until none is left.
    fn drain(&mut self, env: &mut dyn Env) {
        loop {
            let mut delivered = false;
            for i in 0..self.slots.len() {
                while let Some((from, payload)) = self.core.inbox.pop(i) {
                    delivered = true;
                    self.with_slot(env, i, |slot, call| slot.message(call, from, payload));
                }
            }
            if !delivered {
                break;
            }
        }
        self.core.inbox.report(env, self.core.transport.name());
    }

    fn transport_call(
        &mut self,
        env: &mut dyn Env,
        f: impl FnOnce(&mut dyn Transport, &mut TransportEnv<'_>, &mut Inbox),
    ) {
        let name = self.core.transport.name();
        let Core {
            transport,
            timers,
            inbox,
        } = &mut self.core;
        let mut scoped = TransportEnv::new(env, timers, name);
        f(transport.as_mut(), &mut scoped, inbox);
    }
}

impl Actor for Host {
    fn on_start(&mut self, env: &mut dyn Env) {
        // One draw per protocol, in mount order, before anything else draws: each protocol's
        // stream then depends on the node's seed and its position only.
        for slot in &mut self.slots {
            slot.seed(env.next_u64());
        }
        self.transport_call(env, |t, env, inbox| t.on_start(env, inbox));
        for i in 0..self.slots.len() {
            self.with_slot(env, i, |slot, call| slot.start(call));
        }
        self.drain(env);
    }

    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        self.transport_call(env, |t, env, inbox| t.on_datagram(env, from, payload, inbox));
        // Within a received batch, messages wait for its last datagram (bounded by each
        // channel's `inbox_max`), so the transport finishes its per-batch work first.
        if !env.more_datagrams_follow() {
            self.drain(env);
        }
    }

    fn on_datagram_owned(&mut self, env: &mut dyn Env, from: SocketAddr, payload: BytesMut) {
        self.transport_call(env, |t, env, inbox| t.on_datagram_owned(env, from, payload, inbox));
        if !env.more_datagrams_follow() {
            self.drain(env);
        }
    }

    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken) {
        match self.core.timers.take(token) {
            Some(Owner::Transport(local)) => {
                self.transport_call(env, |t, env, inbox| t.on_timer(env, local, inbox));
            }
            Some(Owner::Protocol(i)) => self.with_slot(env, i, |slot, call| slot.timer(call, token)),
            None => {
                // Backends fire only tokens they were given, and a restarted node gets a fresh
                // host along with a fresh timer queue; count rather than crash a node over it.
                self.core.inbox.stats.unknown_timers += 1;
                env.probe(Probe::new("unknown_timer", token, 1).scoped("host"));
            }
        }
        self.drain(env);
    }
}

/// What a slot is called with: the node's environment, the shared core, its index and its
/// siblings.
pub(crate) struct Call<'a> {
    env: &'a mut dyn Env,
    core: &'a mut Core,
    slot: usize,
    siblings: Siblings<'a>,
}

/// A mounted protocol behind a uniform, object-safe face.
pub(crate) trait Slot: Send {
    fn mount(&self) -> &Mount;
    fn seed(&mut self, seed: u64);
    fn start<'a>(&'a mut self, call: Call<'a>);
    fn message<'a>(&'a mut self, call: Call<'a>, from: SocketAddr, payload: Bytes);
    fn timer<'a>(&'a mut self, call: Call<'a>, token: TimerToken);
    fn protocol_any(&self) -> &dyn Any;
}

struct Mounted<P: Protocol> {
    protocol: P,
    mount: Mount,
    rng: DetRng,
    timers: std::collections::BTreeMap<TimerToken, P::Timer>,
}

impl<P: Protocol> Mounted<P> {
    fn context<'a>(&'a mut self, call: Call<'a>) -> (&'a mut P, Context<'a, P::Timer>) {
        let Mounted {
            protocol,
            mount,
            rng,
            timers,
        } = self;
        let cx = Context {
            env: call.env,
            core: call.core,
            slot: call.slot,
            mount,
            rng,
            timers,
            siblings: call.siblings,
        };
        (protocol, cx)
    }
}

impl<P: Protocol> Slot for Mounted<P> {
    fn mount(&self) -> &Mount {
        &self.mount
    }

    fn seed(&mut self, seed: u64) {
        self.rng = DetRng::seed_from_u64(seed);
    }

    fn start<'a>(&'a mut self, call: Call<'a>) {
        let (protocol, mut cx) = self.context(call);
        protocol.on_start(&mut cx);
    }

    fn message<'a>(&'a mut self, call: Call<'a>, from: SocketAddr, payload: Bytes) {
        let (protocol, mut cx) = self.context(call);
        protocol.on_message(&mut cx, from, payload);
    }

    fn timer<'a>(&'a mut self, call: Call<'a>, token: TimerToken) {
        let Some(timer) = self.timers.remove(&token) else {
            unreachable!("timer {token} was issued to {:?}, which never set it", self.mount.name);
        };
        let (protocol, mut cx) = self.context(call);
        protocol.on_timer(&mut cx, timer);
    }

    fn protocol_any(&self) -> &dyn Any {
        &self.protocol
    }
}

#[cfg(test)]
mod tests;
