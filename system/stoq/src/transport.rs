//! [`Stoq`]: the node's protocols over STOQ instead of bare datagrams.
//!
//! A [`runtime::host::Host`] built on this transport keeps each protocol's contract (send to a
//! socket address, hear from one): what a protocol sends travels inside a mutually authenticated
//! QUIC connection to that address, and it only ever hears from peers whose TrustChain
//! certificates the node accepts. Each message carries its channel in its first byte. Messages
//! that fit a QUIC datagram on any path ([`UNRELIABLE_BYTES_MAX`]) go unreliably, keeping the
//! UDP semantics protocols like membership were designed for (a lost probe is a failed probe,
//! never a late one); larger ones go on the connection's ordered message stream.
//!
//! **Bare channels.** A protocol that must speak before its node holds a certificate (TrustChain's
//! enrollment) can be given a *bare* channel ([`Stoq::with_bare_channels`]): its messages travel
//! as plain datagrams on the same socket, beside QUIC, and it authenticates what it needs itself.
//! The two are told apart by the first byte, as RFC 9443 multiplexes protocols on one port: a bare
//! channel is a byte below [`BARE_CHANNELS_END`] (0x40), and every QUIC packet has its fixed bit
//! (0x40) set (STOQ turns greasing of that bit off). A bare datagram on any other channel is
//! refused and counted (`bare_refused`): a channel that travels inside STOQ is never reached
//! around its mutual TLS.
//!
//! **Before credentials.** A node that holds no certificate yet sends nothing over QUIC (every
//! handshake would be refused): such messages are dropped as a full path would drop them, and
//! counted (`unsent_no_credentials`).

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use runtime::host::{Channel, Inbox, Transport};
use runtime::{Env, Probe, SendError, TimerToken};

use crate::config::{ConfigError, StoqConfig};
use crate::endpoint::{Endpoint, Event, StoqError};
use crate::setup::QuicSetup;
use crate::tls::{Credentials, Trust};

/// Largest message (channel byte included) sent as a QUIC datagram: what a 1200-byte packet
/// (QUIC's minimum path MTU) carries after the short header, the DATAGRAM frame's overhead and
/// the AEAD tag.
pub const UNRELIABLE_BYTES_MAX: usize = 1100;

/// Bare channels are the bytes below this: QUIC's fixed bit (RFC 9000 §17) is never clear in
/// the first byte of a STOQ packet.
pub const BARE_CHANNELS_END: u8 = 0x40;

/// STOQ as a host's transport.
pub struct Stoq {
    setup: Option<Setup>,
    endpoint: Option<Endpoint>,
    /// Channels whose messages travel as plain datagrams beside QUIC.
    bare: Vec<Channel>,
    /// Set once the backend hands datagrams over as views of shared receive buffers
    /// ([`Transport::on_datagram_owned`]): messages may then be slices of a whole GRO run, and a
    /// protocol keeping one would keep the run, so each is copied out as it is delivered.
    copy_messages: bool,
}

/// How the endpoint is to be made at start.
enum Setup {
    Plain(StoqConfig, Option<Credentials>, Trust),
    Made(StoqConfig, Box<QuicSetup>),
}

impl Stoq {
    /// A transport whose endpoint is created when the node starts, presenting `credentials` and
    /// trusting `trust`.
    pub fn new(config: StoqConfig, credentials: Option<Credentials>, trust: Trust) -> Self {
        Stoq {
            setup: Some(Setup::Plain(config, credentials, trust)),
            endpoint: None,
            bare: Vec::new(),
            copy_messages: false,
        }
    }

    /// A transport whose endpoint is created when the node starts from `setup`, made beforehand
    /// so the caller can keep [`QuicSetup::security`] (a handle another thread may use to present
    /// a renewed chain or trust a new bundle while the node runs).
    pub fn with_setup(config: StoqConfig, setup: QuicSetup) -> Self {
        Stoq {
            setup: Some(Setup::Made(config, Box::new(setup))),
            endpoint: None,
            bare: Vec::new(),
            copy_messages: false,
        }
    }

    /// Carries `channels` as plain datagrams beside QUIC (see the module documentation): for a
    /// protocol that must talk before the node holds a certificate and authenticates its own
    /// messages.
    ///
    /// # Panics
    /// If a channel is [`BARE_CHANNELS_END`] or above: its datagrams would be taken for QUIC.
    pub fn with_bare_channels(mut self, channels: impl IntoIterator<Item = Channel>) -> Self {
        for channel in channels {
            assert!(
                channel.0 < BARE_CHANNELS_END,
                "bare channel {} is not below {BARE_CHANNELS_END:#x}: it would be read as QUIC",
                channel.0
            );
            self.bare.push(channel);
        }
        self
    }

    fn is_bare(&self, channel: Channel) -> bool {
        self.bare.contains(&channel)
    }

    /// The endpoint, once started: for statistics and for presenting renewed credentials or
    /// trusting a new bundle through [`Endpoint::security`].
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// Moves the endpoint's received messages into the protocols' queues.
    fn collect(&mut self, inbox: &mut Inbox) {
        let Some(endpoint) = self.endpoint.as_mut() else { return };
        while let Some(event) = endpoint.poll_event() {
            match event {
                Event::Message { peer, payload } => match payload.first() {
                    Some(&channel) => {
                        let message = if self.copy_messages {
                            Bytes::copy_from_slice(&payload[1..])
                        } else {
                            payload.slice(1..)
                        };
                        inbox.deliver(Channel(channel), peer, message);
                    }
                    None => inbox.malformed(),
                },
                Event::Malformed { peer, detail } => {
                    tracing::warn!(%peer, %detail, "peer broke STOQ framing");
                }
                // Counted and probed by the endpoint; protocols see silence, as they would from
                // an unreachable peer.
                _ => {}
            }
        }
    }
}

impl Transport for Stoq {
    fn name(&self) -> &'static str {
        "stoq"
    }

    fn on_start(&mut self, env: &mut dyn Env, inbox: &mut Inbox) {
        let made = match self.setup.take() {
            None => return,
            Some(Setup::Plain(config, credentials, trust)) => Endpoint::new(env, config, credentials.as_ref(), trust),
            Some(Setup::Made(config, setup)) => Endpoint::with_setup(env, config, *setup),
        };
        match made {
            Ok(endpoint) => self.endpoint = Some(endpoint),
            Err(e) => {
                // No transport, no protocol: the node stays silent and says why.
                tracing::error!(error = %e, "STOQ endpoint not started");
                env.probe(Probe::new("setup_failed", 0, 1));
            }
        }
        self.collect(inbox);
    }

    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes, inbox: &mut Inbox) {
        match payload.first() {
            None => inbox.malformed(),
            Some(&first) if first < BARE_CHANNELS_END => {
                if self.is_bare(Channel(first)) {
                    inbox.deliver(Channel(first), from, payload.slice(1..));
                } else {
                    env.probe(Probe::new("bare_refused", u64::from(first), 1));
                }
            }
            Some(_) => {
                if let Some(endpoint) = self.endpoint.as_mut() {
                    endpoint.handle_datagram(env, from, payload);
                    self.collect(inbox);
                }
            }
        }
    }

    fn on_datagram_owned(&mut self, env: &mut dyn Env, from: SocketAddr, payload: BytesMut, inbox: &mut Inbox) {
        match payload.first() {
            Some(&first) if first >= BARE_CHANNELS_END => {
                // QUIC decrypts in place, with no copy. Stream data it hands on may be views of
                // the run until the endpoint's framing completes a frame (a partial frame keeps
                // its chunks, so at most a frame's worth of runs stays pinned); delivered
                // messages are copied out (`copy_messages`), since a protocol may keep them.
                self.copy_messages = true;
                if let Some(endpoint) = self.endpoint.as_mut() {
                    endpoint.handle_datagram_owned(env, from, payload);
                    self.collect(inbox);
                }
            }
            // A bare channel's message may be kept by its protocol: bytes of its own.
            _ => self.on_datagram(env, from, Bytes::copy_from_slice(&payload), inbox),
        }
    }

    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken, inbox: &mut Inbox) {
        let Some(endpoint) = self.endpoint.as_mut() else { return };
        // The endpoint sets only its own timer, in this transport's namespace.
        let handled = endpoint.handle_timer(env, token);
        debug_assert!(handled, "a STOQ transport timer the endpoint did not set: {token:#x}");
        self.collect(inbox);
    }

    fn send(&mut self, env: &mut dyn Env, channel: Channel, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        let mut framed = BytesMut::with_capacity(1 + payload.len());
        framed.put_u8(channel.0);
        framed.extend_from_slice(&payload);
        let framed = framed.freeze();
        if self.is_bare(channel) {
            return env.send_to(to, framed);
        }
        let Some(endpoint) = self.endpoint.as_mut() else {
            return Err(SendError::Io {
                to,
                reason: "STOQ endpoint not started".into(),
            });
        };
        if !endpoint.security().has_credentials() {
            env.probe(Probe::new("unsent_no_credentials", u64::from(channel.0), 1));
            return Ok(());
        }
        let sent = if framed.len() <= UNRELIABLE_BYTES_MAX {
            endpoint.send_unreliable(env, to, framed)
        } else {
            endpoint.send(env, to, framed)
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
            // A full queue is congestion: UDP's answer is loss, which the protocols handle.
            Err(StoqError::QueueFull { .. }) | Err(StoqError::DatagramTooLarge { .. }) => Ok(()),
            Err(e) => Err(SendError::Io {
                to,
                reason: e.to_string(),
            }),
        }
    }

    /// The node name certified by the leaf the established connection to `addr` verified (the
    /// connection that carries traffic to that address: the newest established one). With
    /// `bind_identity_to_address` (the default) that certificate also names `addr`'s IP. `None`
    /// before the endpoint starts or while no connection to `addr` is established. Messages on
    /// bare channels are not authenticated, whatever this says about their address.
    fn peer_identity(&self, addr: SocketAddr) -> Option<&str> {
        let identity = self.endpoint.as_ref()?.peer_identity(addr)?;
        Some(identity.node.name.as_str())
    }
}
