//! The node's one transport, shared by its protocols through channels.

use std::any::Any;
use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::HostStats;
use crate::{Env, Probe, SendError, TimerToken};

/// A protocol's channel on the transport: the first byte of each of its messages.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Channel(pub u8);

/// The default bound of a protocol's inbound queue. Messages wait there only while a received
/// batch is still arriving (at most a few dozen datagrams on the production driver).
pub const INBOX_MAX_DEFAULT: usize = 1024;

/// How a node's protocols reach their peers: bare datagrams, or STOQ.
///
/// A transport is called like an actor, with an [`Env`] whose timers, files and probes are its
/// own namespace; what it receives for the protocols it puts in the [`Inbox`].
pub trait Transport: Any + Send {
    /// Its name: the namespace of its timers, files and probes.
    fn name(&self) -> &'static str;
    /// Called once when the node (re)starts, before any protocol.
    fn on_start(&mut self, env: &mut dyn Env, inbox: &mut Inbox);
    /// Called for every datagram that reaches the node.
    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes, inbox: &mut Inbox);
    /// Called for a datagram handed over as a mutable view of a receive buffer shared with the
    /// rest of its GRO run ([`crate::Actor::on_datagram_owned`]). The default copies it into
    /// bytes of its own, so nothing kept pins the run.
    fn on_datagram_owned(&mut self, env: &mut dyn Env, from: SocketAddr, payload: BytesMut, inbox: &mut Inbox) {
        self.on_datagram(env, from, Bytes::copy_from_slice(&payload), inbox);
    }
    /// Called when one of its timers fires.
    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken, inbox: &mut Inbox);
    /// Sends `payload` on `channel` to `to`. Like UDP, success promises nothing about delivery.
    fn send(&mut self, env: &mut dyn Env, channel: Channel, to: SocketAddr, payload: Bytes) -> Result<(), SendError>;

    /// Who the transport authenticated at `addr`: the name the peer's certificate certifies,
    /// while an authenticated connection to `addr` is established. A protocol asks it about the
    /// address a message came from, to decide whether the sender may say what it says (see
    /// [`super::Context::peer_identity`]).
    ///
    /// By default `None`: a transport that authenticates nobody (bare datagrams) names nobody.
    /// The answer is about the address, not about one message: a transport that also carries
    /// unauthenticated messages from the same address (STOQ's bare channels) must not have them
    /// read as authenticated.
    fn peer_identity(&self, addr: SocketAddr) -> Option<&str> {
        let _ = addr;
        None
    }
}

/// What became of a received message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for its protocol.
    Queued,
    /// No protocol is mounted on its channel: dropped and counted.
    UnknownChannel,
    /// Its protocol's queue is at `inbox_max`: dropped and counted.
    Full,
}

/// The protocols' inbound queues, one per channel, each bounded.
#[derive(Debug, Default)]
pub struct Inbox {
    /// Queue index by channel byte.
    routes: Vec<(Channel, usize)>,
    queues: Vec<(VecDeque<(SocketAddr, Bytes)>, usize)>,
    pub(crate) stats: HostStats,
    reported: HostStats,
}

impl Inbox {
    pub(crate) fn add_queue(&mut self, channel: Channel, max: usize) {
        self.routes.push((channel, self.queues.len()));
        self.queues.push((VecDeque::new(), max));
    }

    /// Queues `payload` from `from` for the protocol on `channel`.
    pub fn deliver(&mut self, channel: Channel, from: SocketAddr, payload: Bytes) -> Delivery {
        let Some(&(_, index)) = self.routes.iter().find(|(c, _)| *c == channel) else {
            self.stats.unknown_channel += 1;
            return Delivery::UnknownChannel;
        };
        let (queue, max) = &mut self.queues[index];
        if queue.len() >= *max {
            self.stats.inbox_full += 1;
            return Delivery::Full;
        }
        queue.push_back((from, payload));
        self.stats.delivered += 1;
        Delivery::Queued
    }

    /// Counts a datagram too short to name a channel.
    pub fn malformed(&mut self) {
        self.stats.malformed += 1;
    }

    pub(crate) fn pop(&mut self, index: usize) -> Option<(SocketAddr, Bytes)> {
        self.queues[index].0.pop_front()
    }

    /// Probes what was refused since the last report, so a run shows it.
    pub(crate) fn report(&mut self, env: &mut dyn Env, transport: &'static str) {
        let refused = [
            (
                "unknown_channel",
                self.stats.unknown_channel,
                self.reported.unknown_channel,
            ),
            ("inbox_full", self.stats.inbox_full, self.reported.inbox_full),
            ("malformed", self.stats.malformed, self.reported.malformed),
        ];
        for (name, now, before) in refused {
            if now > before {
                env.probe(Probe::new(name, 0, (now - before) as i64).scoped(transport));
            }
        }
        self.reported = self.stats.clone();
    }
}

/// Bare datagrams: each message is one datagram, its channel in the first byte. UDP semantics
/// (loss, duplication, reordering), no authentication: for simulations at scale, and for
/// protocols that bring their own security.
#[derive(Copy, Clone, Debug, Default)]
pub struct BareDatagrams;

impl Transport for BareDatagrams {
    fn name(&self) -> &'static str {
        "datagrams"
    }

    fn on_start(&mut self, _env: &mut dyn Env, _inbox: &mut Inbox) {}

    fn on_datagram(&mut self, _env: &mut dyn Env, from: SocketAddr, payload: Bytes, inbox: &mut Inbox) {
        match payload.first() {
            Some(&channel) => {
                inbox.deliver(Channel(channel), from, payload.slice(1..));
            }
            None => inbox.malformed(),
        }
    }

    fn on_timer(&mut self, _env: &mut dyn Env, _token: TimerToken, _inbox: &mut Inbox) {
        unreachable!("bare datagrams set no timers");
    }

    fn send(&mut self, env: &mut dyn Env, channel: Channel, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        let mut framed = BytesMut::with_capacity(1 + payload.len());
        framed.put_u8(channel.0);
        framed.extend_from_slice(&payload);
        env.send_to(to, framed.freeze())
    }
}
