//! What a protocol is called with: its namespace on the node.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;

use super::scoped::{ScopedStorage, TransportEnv};
use super::timers::Owner;
use super::{Core, Mount, Protocol, Slot};
use crate::{Clock, DetRng, Entropy, Env, Instant, Probe, Probes, SendError, TimerToken, WallTime};

/// The other protocols on the node, readable while one of them is called.
pub struct Siblings<'a> {
    before: &'a [Box<dyn Slot>],
    after: &'a [Box<dyn Slot>],
}

impl<'a> Siblings<'a> {
    pub(crate) fn new(before: &'a [Box<dyn Slot>], after: &'a [Box<dyn Slot>]) -> Self {
        Siblings { before, after }
    }

    /// The sibling of type `P`, if one is mounted.
    pub fn get<P: Protocol>(&self) -> Option<&'a P> {
        self.before
            .iter()
            .chain(self.after)
            .find_map(|s| s.protocol_any().downcast_ref::<P>())
    }
}

/// A protocol's view of its node: clock, typed timers, its channel, its random stream, its files,
/// its probes, and read access to its siblings.
///
/// It implements [`Clock`], [`Entropy`], [`Storage`] (files in the protocol's namespace) and
/// [`Probes`] (tagged with the protocol's name), so helpers written against those traits take a
/// `Context` as they are.
pub struct Context<'a, T> {
    pub(crate) env: &'a mut dyn Env,
    pub(crate) core: &'a mut Core,
    pub(crate) slot: usize,
    pub(crate) mount: &'a Mount,
    pub(crate) rng: &'a mut DetRng,
    pub(crate) timers: &'a mut BTreeMap<TimerToken, T>,
    pub(crate) siblings: Siblings<'a>,
}

impl<'a, T> Context<'a, T> {
    /// Calls [`crate::host::Protocol::on_timer`] with `timer` once the node's clock reaches `at`
    /// (at once after this call if `at` is past). There is no cancel: a protocol ignores timers it
    /// no longer cares about, for example by a generation number inside `timer`.
    pub fn set_timer(&mut self, at: Instant, timer: T) {
        let token = self.core.timers.set(self.env, at, Owner::Protocol(self.slot));
        self.timers.insert(token, timer);
    }

    /// Sends `payload` to the same protocol on the node at `to`, over the node's transport.
    pub fn send_to(&mut self, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        let Core { transport, timers, .. } = &mut *self.core;
        let name = transport.name();
        let mut env = TransportEnv::new(self.env, timers, name);
        transport.send(&mut env, self.mount.channel, to, payload)
    }

    /// Who the node's transport authenticated at `addr` (the name the peer's certificate
    /// certifies), if it authenticates peers and holds an authenticated connection to `addr`;
    /// `None` over bare datagrams. For a message on a channel that travels authenticated, asked
    /// with the address it came from, this is who sent it. See [`super::Transport::peer_identity`].
    pub fn peer_identity(&self, addr: SocketAddr) -> Option<&str> {
        self.core.transport.peer_identity(addr)
    }

    /// The addresses the node's sockets are bound to.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.env.local_addrs()
    }

    /// This protocol's mount: its name and channel.
    pub fn mount(&self) -> &Mount {
        self.mount
    }

    /// The sibling protocol of type `P` on this node, if one is mounted: read-only, through its
    /// own `&self` methods.
    pub fn sibling<P: Protocol>(&self) -> Option<&'a P> {
        self.siblings.get::<P>()
    }

    /// The node's transport, if it is a `X` (for example to present a renewed certificate).
    pub fn transport<X: super::Transport>(&self) -> Option<&X> {
        let transport: &dyn std::any::Any = self.core.transport.as_ref();
        transport.downcast_ref::<X>()
    }

    /// Timers this protocol has set that have not fired.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    fn files(&mut self) -> ScopedStorage<'_> {
        ScopedStorage {
            storage: self.env,
            scope: self.mount.name,
        }
    }
}

impl<T> Clock for Context<'_, T> {
    fn now(&self) -> Instant {
        self.env.now()
    }
    fn wall_now(&self) -> WallTime {
        self.env.wall_now()
    }
}

impl<T> Entropy for Context<'_, T> {
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

impl<T> Probes for Context<'_, T> {
    fn probe(&mut self, probe: Probe) {
        self.env.probe(probe.scoped(self.mount.name));
    }
}

crate::delegate_storage!([T] Context<'_, T>, |this| this.files());
