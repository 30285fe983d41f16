//! [`Secured`]: any datagram actor, run over STOQ instead of bare UDP.
//!
//! The inner actor keeps its own contract (`send_to` a socket address, `on_datagram` from one):
//! what it sends travels inside a mutually authenticated QUIC connection to that address, and it
//! only ever hears from peers whose TrustChain certificates its node accepts. Messages that fit a
//! QUIC datagram on any path ([`UNRELIABLE_BYTES_MAX`]) go unreliably, keeping the UDP semantics
//! the inner protocol was designed for (a lost probe is a failed probe, never a late one); larger
//! ones go on the connection's ordered message stream.
//!
//! The inner actor must not use [`TIMER_TOKEN`](crate::TIMER_TOKEN) for its own timers.

use std::net::SocketAddr;

use bytes::Bytes;
use runtime::{
    Actor, Clock, Datagrams, Entropy, Env, Instant, Probe, Probes, SendError, Storage, StorageError, TimerToken,
    Timers, WallTime,
};

use crate::config::{ConfigError, StoqConfig};
use crate::endpoint::{Endpoint, Event, StoqError};
use crate::tls::{Credentials, Trust};

/// Largest message sent as a QUIC datagram: what a 1200-byte packet (QUIC's minimum path MTU)
/// carries after the short header, the DATAGRAM frame's overhead and the AEAD tag.
pub const UNRELIABLE_BYTES_MAX: usize = 1100;

/// An actor whose datagrams travel over STOQ.
pub struct Secured<A> {
    inner: A,
    setup: Option<(StoqConfig, Option<Credentials>, Trust)>,
    endpoint: Option<Endpoint>,
}

impl<A: Actor> Secured<A> {
    /// Wraps `inner`; the endpoint is created at start, presenting `credentials` and trusting
    /// `trust`.
    pub fn new(inner: A, config: StoqConfig, credentials: Option<Credentials>, trust: Trust) -> Self {
        Secured {
            inner,
            setup: Some((config, credentials, trust)),
            endpoint: None,
        }
    }

    /// The endpoint, once started: for statistics and for presenting renewed credentials or
    /// trusting a new bundle through [`Endpoint::security`].
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// The wrapped actor.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// Hands queued messages to the inner actor until none are left.
    fn deliver(&mut self, env: &mut dyn Env) {
        loop {
            let Some(endpoint) = self.endpoint.as_mut() else { return };
            let Some(event) = endpoint.poll_event() else { return };
            match event {
                Event::Message { peer, payload } => {
                    let mut shim = Shim { env, endpoint };
                    self.inner.on_datagram(&mut shim, peer, payload);
                }
                Event::Malformed { peer, detail } => {
                    tracing::warn!(%peer, %detail, "peer broke STOQ framing");
                }
                // Counted and probed by the endpoint; the inner protocol sees silence, as it
                // would from an unreachable peer.
                _ => {}
            }
        }
    }
}

impl<A: Actor> Actor for Secured<A> {
    fn on_start(&mut self, env: &mut dyn Env) {
        let Some((config, credentials, trust)) = self.setup.take() else {
            return;
        };
        match Endpoint::new(env, config, credentials.as_ref(), trust) {
            Ok(endpoint) => self.endpoint = Some(endpoint),
            Err(e) => {
                // No transport, no protocol: the node stays silent and says why.
                tracing::error!(error = %e, "STOQ endpoint not started");
                env.probe(Probe::new("stoq_setup_failed", 0, 1));
                return;
            }
        }
        let endpoint = self.endpoint.as_mut().expect("set above");
        self.inner.on_start(&mut Shim { env, endpoint });
        self.deliver(env);
    }

    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        if let Some(endpoint) = self.endpoint.as_mut() {
            endpoint.handle_datagram(env, from, payload);
            self.deliver(env);
        }
    }

    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken) {
        let Some(endpoint) = self.endpoint.as_mut() else { return };
        if !endpoint.handle_timer(env, token) {
            self.inner.on_timer(&mut Shim { env, endpoint }, token);
        }
        self.deliver(env);
    }
}

/// The environment the inner actor sees: the node's, with sends going through STOQ.
struct Shim<'a> {
    env: &'a mut dyn Env,
    endpoint: &'a mut Endpoint,
}

impl Clock for Shim<'_> {
    fn now(&self) -> Instant {
        self.env.now()
    }
    fn wall_now(&self) -> WallTime {
        self.env.wall_now()
    }
}

impl Timers for Shim<'_> {
    fn set_timer(&mut self, at: Instant, token: TimerToken) {
        self.env.set_timer(at, token);
    }
}

impl Datagrams for Shim<'_> {
    fn local_addrs(&self) -> &[SocketAddr] {
        self.env.local_addrs()
    }

    fn send_to(&mut self, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        let sent = if payload.len() <= UNRELIABLE_BYTES_MAX {
            self.endpoint.send_unreliable(self.env, to, payload)
        } else {
            self.endpoint.send(self.env, to, payload)
        };
        match sent {
            Ok(()) => Ok(()),
            Err(StoqError::Address(ConfigError::Ipv4Address { addr, .. })) => {
                Err(SendError::AddressFamilyNotSupported {
                    to: addr,
                    family: runtime::AddressFamily::V4,
                })
            }
            Err(StoqError::TooLarge { len, max }) => Err(SendError::TooLarge { len, max: max as usize }),
            // A full queue is congestion: UDP's answer is loss, which the inner protocol handles.
            Err(StoqError::QueueFull { .. }) | Err(StoqError::DatagramTooLarge { .. }) => Ok(()),
            Err(e) => Err(SendError::Io {
                to,
                reason: e.to_string(),
            }),
        }
    }
}

impl Entropy for Shim<'_> {
    fn next_u64(&mut self) -> u64 {
        self.env.next_u64()
    }
}

impl Storage for Shim<'_> {
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        self.env.read_at(name, offset, len)
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.env.write_at(name, offset, data)
    }
    fn size(&mut self, name: &str) -> Result<u64, StorageError> {
        self.env.size(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StorageError> {
        self.env.truncate(name, len)
    }
    fn sync(&mut self, name: &str) -> Result<(), StorageError> {
        self.env.sync(name)
    }
    fn remove(&mut self, name: &str) -> Result<(), StorageError> {
        self.env.remove(name)
    }
    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        self.env.list()
    }
}

impl Probes for Shim<'_> {
    fn probe(&mut self, probe: Probe) {
        self.env.probe(probe);
    }
}
