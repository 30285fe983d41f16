//! The STOQ endpoint: quinn-proto's QUIC state machines driven over the runtime seams.
//!
//! One [`Endpoint`] serves one node socket, as client and server at once. Its owner (an actor)
//! passes it every datagram and every timer fired with [`TIMER_TOKEN`]; the endpoint sends
//! through `Env::send_to`, arms its one timer through `Env::set_timer`, and queues [`Event`]s
//! for the owner to take with [`Endpoint::poll_event`] after each call. Because it only touches
//! the `Env`, the same code runs in the simulator (seeded, see [`crate::random`]) and on real
//! sockets.
//!
//! Streams: each side opens one unidirectional *message stream* per connection (kind byte
//! `0x01`, then length-prefixed frames); every request is a bidirectional stream carrying one
//! request frame, answered by one response frame; a *bulk stream* is unidirectional (kind byte
//! `0x02`, an 8-byte tag, then raw bytes to the end). Unreliable messages travel as QUIC
//! DATAGRAM frames.
//!
//! No data from an unverified peer: TLS 1.3 authenticates the client last, and its Finished can
//! share a UDP datagram (or a receive batch) with 1-RTT packets carrying DATAGRAM and STREAM
//! frames, which quinn-proto takes in before the endpoint has bound the certificate to the
//! address (`on_connected`). Application data leaves quinn-proto only through
//! `receive_datagrams`, `accept_streams` and `read_stream`, and each does nothing until the
//! connection is verified (`Conn::verified`): until then the data stays in quinn-proto, bounded by the
//! receive windows (`connection_window`, `stream_window`, `streams_max`) and the datagram buffer
//! (`DATAGRAM_RECEIVE_BYTES_MAX`), and is taken once the peer is verified, right after
//! [`Event::Connected`]. A peer refused instead has its unread data discarded with its
//! connection and counted (`refused_data_discarded`).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pki_types::CertificateDer;
use quinn_proto::{
    ConnectionError, ConnectionHandle, DatagramEvent, Dir, ReadError, SendDatagramError, StreamEvent, StreamId, VarInt,
    WriteError,
};
use runtime::{Env, Instant, Probe, TimerToken};

use crate::config::{require_ipv6, ConfigError, StoqConfig};
use crate::conns::Conns;
use crate::frame::{header, FrameError, FrameReader};
use crate::random::{Installed, SharedRng};
use crate::setup::{PacketProtection, QuicSetup};
use crate::stats::{class_index, StoqStats};
use crate::time::QuicClock;
use trustchain::validate::ValidationError;

use crate::tls::{refusal_class, refusal_text, Credentials, PeerIdentity, Security, TlsSetupError, Trust};

/// The timer token STOQ uses; an owner passes timers carrying it to [`Endpoint::handle_timer`]
/// and must not use it for its own.
pub const TIMER_TOKEN: TimerToken = 0x5354_4f51_0000_0001;

/// Events an endpoint holds for its owner at most. The owner takes every event after each call
/// (`poll_event` until `None`), so the queue holds what one call produced: a batch of datagrams
/// full of small frames stays far below this. Reaching it means the owner stopped polling, a bug
/// this assertion stops on rather than letting the queue grow.
pub const EVENTS_MAX: usize = 1 << 20;

/// Rounds of work `drive` gives one connection per call (each round: endpoint events, connection
/// events, transmits, until nothing progresses). quinn-proto settles in a few; past this the
/// rest waits for a timer set at once, so one connection cannot hold the node in a loop.
pub const DRIVE_ROUNDS_MAX: usize = 64;

/// Hands `event` to the owner's queue (bounded by [`EVENTS_MAX`]).
fn emit(events: &mut VecDeque<Event>, event: Event) {
    assert!(
        events.len() < EVENTS_MAX,
        "{EVENTS_MAX} STOQ events not taken: the owner must poll_event after every call"
    );
    events.push_back(event);
}

/// Room reserved per packet when building a transmit: any UDP payload on an Ethernet path.
const TRANSMIT_BYTES: usize = 1500;
/// Transmits up to this size (one packet) are copied out of the build buffer, which is kept.
const TRANSMIT_COPY_MAX: usize = 1500;

/// Kind byte opening a message stream.
const KIND_MESSAGES: u8 = 0x01;
/// Kind byte opening a bulk stream.
const KIND_BULK: u8 = 0x02;
/// Bytes before a bulk stream's data: kind and tag.
const BULK_PREAMBLE: usize = 9;

/// Application error codes on the wire.
mod code {
    /// The peer broke the framing rules.
    pub const FRAME_ERROR: u32 = 0x10;
    /// The certificate does not name the address the peer connects from.
    pub const IDENTITY_MISMATCH: u32 = 0x11;
    /// The owner closed the connection.
    pub const CLOSED: u32 = 0x12;
    /// A request was abandoned (timed out at the requester).
    pub const ABANDONED: u32 = 0x13;
}

/// A request this endpoint sent or received, unique within the endpoint.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A bulk stream, unique within the endpoint.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BulkId(pub u64);

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestFailed {
    /// No response within `request_timeout`.
    #[error("no response within the request timeout")]
    TimedOut,
    /// The connection ended first.
    #[error("connection lost before the response: {0}")]
    ConnectionLost(String),
    /// The peer reset the stream (it refused or abandoned the request).
    #[error("the peer reset the request (code {0})")]
    Reset(u64),
    /// The response broke the framing rules.
    #[error("malformed response: {0}")]
    Malformed(FrameError),
}

/// Something the owner should know. Taken with [`Endpoint::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A connection to `peer` completed mutual TLS; messages to it now flow. On the dialling
    /// side, TLS 1.3 completes before the server has checked the client's certificate, so a
    /// [`Event::ConnectFailed`] may still follow if the server refuses it.
    Connected {
        /// The peer's socket address.
        peer: SocketAddr,
        /// Who it is, from its certificate.
        identity: PeerIdentity,
    },
    /// A connection to or from `peer` failed before it was usable: a certificate refused (by
    /// either side), or no answer.
    ConnectFailed {
        /// The peer's socket address.
        peer: SocketAddr,
        /// A TrustChain class (`revoked`, `unknown_issuer`, `expired`, …) if a certificate was
        /// refused, by either side; otherwise `timeout`, `tls`, `closed` or `reset`.
        class: &'static str,
        /// The full reason, for the operator.
        reason: String,
    },
    /// The connection to `peer` ended (idle timeout, closed by either side).
    Disconnected {
        /// The peer's socket address.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A one-way message (reliable or unreliable).
    Message {
        /// Sender.
        peer: SocketAddr,
        /// The payload.
        payload: Bytes,
    },
    /// A request to answer with [`Endpoint::respond`].
    Request {
        /// Requester.
        peer: SocketAddr,
        /// What to pass to `respond`.
        id: RequestId,
        /// The request payload.
        payload: Bytes,
    },
    /// The answer to a request this endpoint sent.
    Response {
        /// Responder.
        peer: SocketAddr,
        /// Which request.
        id: RequestId,
        /// The response payload, or why there is none.
        result: Result<Bytes, RequestFailed>,
    },
    /// A peer opened a bulk stream.
    BulkOpened {
        /// Sender.
        peer: SocketAddr,
        /// The stream.
        id: BulkId,
        /// The tag the sender gave it.
        tag: u64,
    },
    /// Bytes of an incoming bulk stream, in order.
    BulkData {
        /// The stream.
        id: BulkId,
        /// The bytes (a slice of the received packet, never copied).
        data: Bytes,
    },
    /// An incoming bulk stream ended: `Ok` at its end, `Err` if it was reset or the connection
    /// was lost.
    BulkFinished {
        /// The stream.
        id: BulkId,
        /// How it ended.
        result: Result<(), String>,
    },
    /// An outgoing bulk stream that returned `0` from [`Endpoint::write_bulk`] can take more.
    BulkWritable {
        /// The stream.
        id: BulkId,
    },
    /// The peer broke the protocol; its connection was closed.
    Malformed {
        /// The peer.
        peer: SocketAddr,
        /// What it did.
        detail: String,
    },
}

/// Why a send or request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoqError {
    /// IPv4 destination (or another refused address).
    #[error(transparent)]
    Address(#[from] ConfigError),
    /// The payload exceeds `frame_bytes_max`.
    #[error("payload of {len} bytes exceeds the {max}-byte frame limit (frame_bytes_max)")]
    TooLarge {
        /// Payload bytes.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// The peer's queue is full: the connection is still being set up or its flow-control
    /// window is exhausted. Retry after the next event (backpressure).
    #[error("queue to {peer} is full ({queued} bytes, queued_bytes_max): retry later")]
    QueueFull {
        /// The peer.
        peer: SocketAddr,
        /// Bytes queued.
        queued: usize,
    },
    /// Too many requests await responses (`requests_in_flight_max`).
    #[error("{0} requests already await responses (requests_in_flight_max)")]
    TooManyRequests(usize),
    /// `connections_max` connections are open.
    #[error("{0} connections open (connections_max)")]
    TooManyConnections(usize),
    /// Bulk streams need a connected peer; wait for [`Event::Connected`].
    #[error("no established connection to {0}; connect first and wait for the Connected event")]
    NotConnected(SocketAddr),
    /// The id names no request awaiting a response, or no open bulk stream.
    #[error("unknown or finished id")]
    UnknownId,
    /// An unreliable message does not fit in one QUIC datagram on this path.
    #[error(
        "unreliable message of {len} bytes does not fit a datagram on this path (at most {max}): send it reliably"
    )]
    DatagramTooLarge {
        /// Payload bytes.
        len: usize,
        /// The path's limit now.
        max: usize,
    },
    /// quinn-proto refused to start a connection.
    #[error("cannot connect to {peer}: {reason}")]
    Connect {
        /// The peer.
        peer: SocketAddr,
        /// quinn's reason.
        reason: String,
    },
}

/// Why an endpoint could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The node has no IPv6 socket to serve from.
    #[error("the node has no IPv6 socket: STOQ is IPv6-only (local addresses: {0:?})")]
    NoIpv6Socket(Vec<SocketAddr>),
}

/// Where a message waits before its stream exists.
enum Queued {
    Reliable(Bytes),
    Unreliable(Bytes),
    Request(RequestId, Bytes),
}

impl Queued {
    fn len(&self) -> usize {
        match self {
            Queued::Reliable(b) | Queued::Unreliable(b) | Queued::Request(_, b) => b.len(),
        }
    }
}

/// Bytes waiting for flow-control credit on one of our send streams.
#[derive(Default)]
struct Outgoing {
    chunks: VecDeque<Bytes>,
    /// Finish the stream once everything is written.
    finish: bool,
    /// Counts against `queued_bytes_max` (messages and requests; responses do not).
    counted: bool,
}

/// What an incoming or own stream carries, for reading.
enum Inbound {
    /// A peer's unidirectional stream whose kind byte has not arrived.
    Unknown(BytesMut),
    /// The peer's message stream.
    Messages(FrameReader),
    /// A peer's bulk stream.
    Bulk(BulkId),
    /// A peer's request (bidirectional).
    Request(FrameReader),
    /// The response to our request.
    Response(RequestId, FrameReader),
}

struct Conn {
    quic: quinn_proto::Connection,
    remote: SocketAddr,
    identity: Option<PeerIdentity>,
    /// Waiting for the handshake or for a stream to open.
    queue: VecDeque<Queued>,
    /// Bytes in `queue` plus counted bytes in `writes`.
    queued_bytes: usize,
    message_stream: Option<StreamId>,
    writes: BTreeMap<StreamId, Outgoing>,
    inbound: BTreeMap<StreamId, Inbound>,
    /// Our bulk streams on this connection.
    bulk_out: BTreeMap<StreamId, BulkId>,
    /// A reason to report when it is lost, set when we close it ourselves.
    closing: Option<String>,
    /// The chain the peer presented, checked again whenever the trust changes.
    peer_chain: Vec<CertificateDer<'static>>,
}

struct PendingRequest {
    conn: ConnectionHandle,
    stream: Option<StreamId>,
    peer: SocketAddr,
    deadline: Instant,
}

/// A STOQ endpoint: QUIC with TrustChain mutual TLS over one node's IPv6 socket.
pub struct Endpoint {
    quic: quinn_proto::Endpoint,
    client: quinn_proto::ClientConfig,
    config: StoqConfig,
    security: Security,
    clock: QuicClock,
    rng: Option<SharedRng>,
    /// The connections, and which have work to do (see [`crate::conns`]).
    conns: Conns<Conn>,
    /// The connection used to reach each address: the newest established one.
    peers: BTreeMap<SocketAddr, ConnectionHandle>,
    events: VecDeque<Event>,
    requests: BTreeMap<RequestId, PendingRequest>,
    /// Requests from peers awaiting our response.
    served: BTreeMap<RequestId, (ConnectionHandle, StreamId)>,
    bulk: BTreeMap<BulkId, (ConnectionHandle, StreamId)>,
    next_id: u64,
    armed: Option<Instant>,
    /// The buffer the next packet (or GSO run) is built in: kept when what was built is copied
    /// out small or nothing was built, so a drive does not allocate a run's worth per call.
    transmit_buf: Vec<u8>,
    /// The trust generation live peers were last checked against.
    trust_seen: u64,
    stats: StoqStats,
}

impl Endpoint {
    /// An endpoint on `env`'s IPv6 socket presenting `credentials` (none yet: it can accept
    /// nothing and dial nothing until [`Endpoint::present`]) and trusting `trust`.
    pub fn new(
        env: &mut dyn Env,
        config: StoqConfig,
        credentials: Option<&Credentials>,
        trust: Trust,
    ) -> Result<Self, SetupError> {
        let setup = QuicSetup::new(&config, credentials, trust, PacketProtection::Encrypted)?;
        Self::with_setup(env, config, setup)
    }

    /// An endpoint on `env`'s IPv6 socket with configurations built by [`QuicSetup::new`] from
    /// the same `config`.
    pub fn with_setup(env: &mut dyn Env, config: StoqConfig, setup: QuicSetup) -> Result<Self, SetupError> {
        config.validate()?;
        let locals = env.local_addrs().to_vec();
        if !locals.iter().any(|a| require_ipv6("local", *a).is_ok()) {
            return Err(SetupError::NoIpv6Socket(locals));
        }
        let QuicSetup {
            endpoint,
            server,
            client,
            security,
            rng,
        } = setup;
        let quic = quinn_proto::Endpoint::new(Arc::new(endpoint), Some(Arc::new(server)), config.mtu_discovery, None);
        Ok(Endpoint {
            quic,
            client,
            config,
            security,
            clock: QuicClock::new(),
            rng,
            conns: Conns::new(),
            peers: BTreeMap::new(),
            events: VecDeque::new(),
            requests: BTreeMap::new(),
            served: BTreeMap::new(),
            bulk: BTreeMap::new(),
            next_id: 0,
            armed: None,
            transmit_buf: Vec::new(),
            trust_seen: 0,
            stats: StoqStats::default(),
        })
    }

    /// The shared TLS state: present renewed credentials or trust a new bundle through it.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// What the endpoint has counted so far.
    pub fn stats(&self) -> &StoqStats {
        &self.stats
    }

    /// The next event, if any. Owners take all events after every call.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Who the established connection to `peer` authenticated, if there is one.
    pub fn peer_identity(&self, peer: SocketAddr) -> Option<&PeerIdentity> {
        let ch = self.peers.get(&peer)?;
        self.conns.get(ch)?.identity.as_ref()
    }

    /// quinn-proto's figures for the connection to `peer` (round-trip time, congestion window,
    /// packets sent and lost, frames), if there is one.
    pub fn connection_stats(&self, peer: SocketAddr) -> Option<quinn_proto::ConnectionStats> {
        let ch = self.peers.get(&peer)?;
        Some(self.conns.get(ch)?.quic.stats())
    }

    /// Addresses with an established connection, in address order.
    pub fn connected_peers(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers
            .iter()
            .filter(|(_, ch)| self.conns.get(ch).is_some_and(|c| c.identity.is_some()))
            .map(|(a, _)| *a)
    }

    /// Feeds a datagram that reached the node's socket. Where the backend says more follow in
    /// the same batch, events and sends wait for the batch's last datagram.
    pub fn handle_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        // QUIC decrypts in place: bytes nobody else holds are taken as they are, others copied.
        let data = payload
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        self.handle_datagram_owned(env, from, data);
    }

    /// [`Endpoint::handle_datagram`] for bytes the caller hands over to be changed in place (a
    /// view of a receive buffer: [`runtime::Actor::on_datagram_owned`]). Stream data the
    /// endpoint emits may be slices of it.
    pub fn handle_datagram_owned(&mut self, env: &mut dyn Env, from: SocketAddr, data: BytesMut) {
        let _installed = self.enter(env);
        self.recheck_peers(env);
        let now = self.clock.to_quic(env.now());
        let mut buf = Vec::new();
        match self.quic.handle(now, from, None, None, data, &mut buf) {
            Some(DatagramEvent::ConnectionEvent(ch, event)) => {
                if let Some(conn) = self.conns.get_mut(&ch) {
                    conn.quic.handle_event(event);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                if self.conns.len() >= self.config.connections_max {
                    self.stats.connections_refused += 1;
                    let t = self.quic.refuse(incoming, &mut buf);
                    send_transmit(env, &t, built(buf, &t));
                } else {
                    match self.quic.accept(incoming, now, &mut buf, None) {
                        Ok((ch, quic)) => {
                            self.stats.connections_accepted += 1;
                            self.conns.insert(ch, Conn::new(quic, from));
                            self.peers.entry(from).or_insert(ch);
                        }
                        Err(e) => {
                            self.stats.connections_refused += 1;
                            tracing::debug!(peer = %from, cause = %e.cause, "incoming connection refused");
                            if let Some(t) = e.response {
                                send_transmit(env, &t, built(buf, &t));
                            }
                        }
                    }
                }
            }
            Some(DatagramEvent::Response(t)) => send_transmit(env, &t, built(buf, &t)),
            None => {}
        }
        // Within a receive batch, what to send is decided once, after its last datagram: a run
        // of acknowledgements then frees room for one segmented send instead of many small ones.
        if !env.more_datagrams_follow() {
            self.drive(env);
        }
    }

    /// Handles a timer; returns `false` (and does nothing) if `token` is not [`TIMER_TOKEN`].
    pub fn handle_timer(&mut self, env: &mut dyn Env, token: TimerToken) -> bool {
        if token != TIMER_TOKEN {
            return false;
        }
        let _installed = self.enter(env);
        self.recheck_peers(env);
        let now = env.now();
        if self.armed.is_some_and(|at| at <= now) {
            self.armed = None;
        }
        let quic_now = self.clock.to_quic(now);
        for ch in self.conns.maybe_due(quic_now) {
            let timeout = self.conns.read_mut(&ch).and_then(|c| c.quic.poll_timeout());
            if timeout.is_some_and(|t| t <= quic_now) {
                if let Some(conn) = self.conns.get_mut(&ch) {
                    conn.quic.handle_timeout(quic_now);
                }
            } else {
                // Not due after all (it was only marked changed): the index keeps what quinn-proto
                // says, so a stale entry can never hold the timer in the past.
                self.conns.set_timeout(&ch, timeout);
            }
        }
        let expired: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(r) = self.requests.remove(&id) {
                self.stats.request_timeouts += 1;
                if let (Some(conn), Some(stream)) = (self.conns.get_mut(&r.conn), r.stream) {
                    let _ = conn.quic.send_stream(stream).reset(VarInt::from_u32(code::ABANDONED));
                    let _ = conn.quic.recv_stream(stream).stop(VarInt::from_u32(code::ABANDONED));
                    conn.inbound.remove(&stream);
                    conn.writes.remove(&stream);
                }
                if let Some(conn) = self.conns.get_mut(&r.conn) {
                    let before = conn.queue.len();
                    conn.queue
                        .retain(|q| !matches!(q, Queued::Request(rid, _) if *rid == id));
                    if conn.queue.len() != before {
                        conn.recount();
                    }
                }
                emit(
                    &mut self.events,
                    Event::Response {
                        peer: r.peer,
                        id,
                        result: Err(RequestFailed::TimedOut),
                    },
                );
            }
        }
        self.drive(env);
        true
    }

    /// Starts a connection to `peer` unless one exists; [`Event::Connected`] or
    /// [`Event::ConnectFailed`] follows.
    pub fn connect(&mut self, env: &mut dyn Env, peer: SocketAddr) -> Result<(), StoqError> {
        let _installed = self.enter(env);
        self.connection_to(env, peer)?;
        self.drive(env);
        Ok(())
    }

    /// Sends a reliable, ordered one-way message (connecting first if needed).
    pub fn send(&mut self, env: &mut dyn Env, peer: SocketAddr, payload: Bytes) -> Result<(), StoqError> {
        self.enqueue(env, peer, Queued::Reliable(payload))
    }

    /// Sends a one-way message as a QUIC datagram: no retransmission, no ordering, as UDP but
    /// authenticated and encrypted. Queued until the connection is up.
    pub fn send_unreliable(&mut self, env: &mut dyn Env, peer: SocketAddr, payload: Bytes) -> Result<(), StoqError> {
        if let Some(max) = self
            .peers
            .get(&peer)
            .and_then(|ch| self.conns.get_mut(ch))
            .and_then(|c| c.quic.datagrams().max_size())
        {
            if payload.len() > max {
                return Err(StoqError::DatagramTooLarge {
                    len: payload.len(),
                    max,
                });
            }
        }
        self.enqueue(env, peer, Queued::Unreliable(payload))
    }

    /// Sends a request; [`Event::Response`] with the returned id follows.
    pub fn request(&mut self, env: &mut dyn Env, peer: SocketAddr, payload: Bytes) -> Result<RequestId, StoqError> {
        if self.requests.len() >= self.config.requests_in_flight_max {
            return Err(StoqError::TooManyRequests(self.requests.len()));
        }
        let id = RequestId(self.next_id);
        self.enqueue(env, peer, Queued::Request(id, payload))?;
        self.next_id += 1;
        Ok(id)
    }

    /// Answers request `id`. A request whose requester gave up or disconnected is
    /// [`StoqError::UnknownId`].
    pub fn respond(&mut self, env: &mut dyn Env, id: RequestId, payload: Bytes) -> Result<(), StoqError> {
        self.check_len(&payload)?;
        let (ch, stream) = self.served.remove(&id).ok_or(StoqError::UnknownId)?;
        let _installed = self.enter(env);
        let conn = self.conns.get_mut(&ch).ok_or(StoqError::UnknownId)?;
        let out = conn.writes.entry(stream).or_default();
        out.chunks.push_back(header(payload.len()));
        out.chunks.push_back(payload);
        out.finish = true;
        conn.flush(stream);
        self.stats.responses_sent += 1;
        self.drive(env);
        Ok(())
    }

    /// Opens a bulk stream to a connected `peer`, tagged `tag` for the receiver.
    pub fn open_bulk(&mut self, env: &mut dyn Env, peer: SocketAddr, tag: u64) -> Result<BulkId, StoqError> {
        let ch = *self.peers.get(&peer).ok_or(StoqError::NotConnected(peer))?;
        let conn = self.conns.get_mut(&ch).ok_or(StoqError::NotConnected(peer))?;
        if conn.identity.is_none() {
            return Err(StoqError::NotConnected(peer));
        }
        let stream = conn
            .quic
            .streams()
            .open(Dir::Uni)
            .ok_or(StoqError::QueueFull { peer, queued: 0 })?;
        let id = BulkId(self.next_id);
        self.next_id += 1;
        let mut preamble = Vec::with_capacity(BULK_PREAMBLE);
        preamble.push(KIND_BULK);
        preamble.extend_from_slice(&tag.to_be_bytes());
        let out = conn.writes.entry(stream).or_default();
        out.chunks.push_back(Bytes::from(preamble));
        conn.bulk_out.insert(stream, id);
        self.bulk.insert(id, (ch, stream));
        let _installed = self.enter(env);
        if let Some(conn) = self.conns.get_mut(&ch) {
            conn.flush(stream);
        }
        self.drive(env);
        Ok(id)
    }

    /// Writes as much of `data` to bulk stream `id` as flow control allows and returns how many
    /// bytes it took (without copying them); `0` means wait for [`Event::BulkWritable`].
    pub fn write_bulk(&mut self, env: &mut dyn Env, id: BulkId, data: &mut [Bytes]) -> Result<usize, StoqError> {
        let (ch, stream) = *self.bulk.get(&id).ok_or(StoqError::UnknownId)?;
        let _installed = self.enter(env);
        let conn = self.conns.get_mut(&ch).ok_or(StoqError::UnknownId)?;
        // The preamble goes first.
        if conn.writes.get(&stream).is_some_and(|o| !o.chunks.is_empty()) {
            conn.flush(stream);
            if conn.writes.get(&stream).is_some_and(|o| !o.chunks.is_empty()) {
                self.drive(env);
                return Ok(0);
            }
        }
        let written = match conn.quic.send_stream(stream).write_chunks(data) {
            Ok(w) => w.bytes,
            Err(WriteError::Blocked) => 0,
            Err(WriteError::Stopped(_) | WriteError::ClosedStream) => return Err(StoqError::UnknownId),
        };
        self.stats.bulk_bytes_sent += written as u64;
        self.drive(env);
        Ok(written)
    }

    /// Ends bulk stream `id` after the bytes written so far.
    pub fn finish_bulk(&mut self, env: &mut dyn Env, id: BulkId) -> Result<(), StoqError> {
        let (ch, stream) = self.bulk.remove(&id).ok_or(StoqError::UnknownId)?;
        let _installed = self.enter(env);
        if let Some(conn) = self.conns.get_mut(&ch) {
            conn.writes.entry(stream).or_default().finish = true;
            conn.flush(stream);
            conn.bulk_out.remove(&stream);
        }
        self.drive(env);
        Ok(())
    }

    /// Closes the connection to `peer`, if any.
    pub fn close(&mut self, env: &mut dyn Env, peer: SocketAddr) {
        let _installed = self.enter(env);
        if let Some(ch) = self.peers.get(&peer).copied() {
            self.close_conn(env, ch, code::CLOSED, "closed by the local node".into());
        }
        self.drive(env);
    }

    fn enter(&self, env: &mut dyn Env) -> Installed {
        self.security.observe_time(env.wall_now());
        Installed::new(self.rng.as_ref())
    }

    /// After the trust changed (new CRLs, a bundle without a retired issuer), checks every live
    /// peer again and disconnects those it no longer accepts, with the class, as a handshake
    /// would have refused them: a revocation takes effect on live connections, not only new ones.
    fn recheck_peers(&mut self, env: &mut dyn Env) {
        let generation = self.security.trust_generation();
        if generation == self.trust_seen {
            return;
        }
        self.trust_seen = generation;
        let now_s = env.wall_now().as_unix_millis().div_euclid(1000);
        let refused: Vec<(ConnectionHandle, ValidationError)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.identity.is_some() && c.closing.is_none())
            .filter_map(|(ch, c)| self.security.recheck(&c.peer_chain, now_s).err().map(|e| (*ch, e)))
            .collect();
        for (ch, e) in refused {
            self.stats.peers_dropped_on_recheck += 1;
            let reason = refusal_text(e.class(), &e);
            self.fail(env, ch, e.class(), reason);
        }
    }

    fn check_len(&self, payload: &Bytes) -> Result<(), StoqError> {
        if payload.len() > self.config.frame_bytes_max as usize {
            return Err(StoqError::TooLarge {
                len: payload.len(),
                max: self.config.frame_bytes_max,
            });
        }
        Ok(())
    }

    fn enqueue(&mut self, env: &mut dyn Env, peer: SocketAddr, item: Queued) -> Result<(), StoqError> {
        if let Queued::Reliable(p) | Queued::Request(_, p) = &item {
            self.check_len(p)?;
        }
        let _installed = self.enter(env);
        let ch = self.connection_to(env, peer)?;
        let now = env.now();
        let limit = self.config.queued_bytes_max;
        let conn = self
            .conns
            .get_mut(&ch)
            .expect("connection_to returns a live connection");
        if conn.queued_bytes + item.len() > limit {
            self.stats.queue_full += 1;
            return Err(StoqError::QueueFull {
                peer,
                queued: conn.queued_bytes,
            });
        }
        match &item {
            Queued::Reliable(_) => self.stats.messages_sent += 1,
            Queued::Unreliable(_) => self.stats.unreliable_sent += 1,
            Queued::Request(id, _) => {
                self.stats.requests_sent += 1;
                self.requests.insert(
                    *id,
                    PendingRequest {
                        conn: ch,
                        stream: None,
                        peer,
                        deadline: now + self.config.request_timeout,
                    },
                );
            }
        }
        conn.queued_bytes += item.len();
        conn.queue.push_back(item);
        if conn.identity.is_some() {
            self.release_queue(ch);
        }
        self.drive(env);
        Ok(())
    }

    /// The connection to use for `peer`, dialling one if there is none.
    fn connection_to(&mut self, env: &mut dyn Env, peer: SocketAddr) -> Result<ConnectionHandle, StoqError> {
        require_ipv6("destination", peer)?;
        if let Some(ch) = self.peers.get(&peer) {
            return Ok(*ch);
        }
        if self.conns.len() >= self.config.connections_max {
            return Err(StoqError::TooManyConnections(self.conns.len()));
        }
        let now = self.clock.to_quic(env.now());
        let server_name = peer.ip().to_string();
        let (ch, quic) = self
            .quic
            .connect(now, self.client.clone(), peer, &server_name)
            .map_err(|e| StoqError::Connect {
                peer,
                reason: e.to_string(),
            })?;
        self.stats.connections_dialed += 1;
        self.conns.insert(ch, Conn::new(quic, peer));
        self.peers.insert(peer, ch);
        Ok(ch)
    }

    /// Moves queued items onto streams and datagrams, as far as stream credit allows.
    fn release_queue(&mut self, ch: ConnectionHandle) {
        let Some(conn) = self.conns.get_mut(&ch) else { return };
        while let Some(item) = conn.queue.pop_front() {
            match item {
                Queued::Unreliable(payload) => {
                    conn.queued_bytes -= payload.len();
                    match conn.quic.datagrams().send(payload, true) {
                        Ok(()) => {}
                        // Dropping the oldest datagrams on a full buffer (`drop = true`) means
                        // Blocked never comes back; the rest mean the path cannot carry it.
                        Err(SendDatagramError::TooLarge | SendDatagramError::Blocked(_)) => {
                            self.stats.unreliable_too_large += 1
                        }
                        Err(SendDatagramError::Disabled | SendDatagramError::UnsupportedByPeer) => {
                            self.stats.unreliable_too_large += 1
                        }
                    }
                }
                Queued::Reliable(payload) => {
                    let stream = match conn.message_stream {
                        Some(s) => s,
                        None => match conn.quic.streams().open(Dir::Uni) {
                            Some(s) => {
                                conn.message_stream = Some(s);
                                let out = conn.writes.entry(s).or_default();
                                out.counted = true;
                                out.chunks.push_back(Bytes::from_static(&[KIND_MESSAGES]));
                                s
                            }
                            None => {
                                conn.queue.push_front(Queued::Reliable(payload));
                                return;
                            }
                        },
                    };
                    let out = conn.writes.entry(stream).or_default();
                    out.chunks.push_back(header(payload.len()));
                    out.chunks.push_back(payload);
                    conn.flush(stream);
                }
                Queued::Request(id, payload) => {
                    let Some(stream) = conn.quic.streams().open(Dir::Bi) else {
                        conn.queue.push_front(Queued::Request(id, payload));
                        return;
                    };
                    if let Some(r) = self.requests.get_mut(&id) {
                        r.stream = Some(stream);
                    }
                    conn.inbound.insert(
                        stream,
                        Inbound::Response(id, FrameReader::new(self.config.frame_bytes_max)),
                    );
                    let out = conn.writes.entry(stream).or_default();
                    out.counted = true;
                    out.finish = true;
                    out.chunks.push_back(header(payload.len()));
                    out.chunks.push_back(payload);
                    conn.flush(stream);
                }
            }
        }
    }

    fn close_conn(&mut self, env: &mut dyn Env, ch: ConnectionHandle, error: u32, reason: String) {
        let now = self.clock.to_quic(env.now());
        if let Some(conn) = self.conns.get_mut(&ch) {
            conn.closing.get_or_insert(reason.clone());
            conn.quic.close(now, VarInt::from_u32(error), Bytes::from(reason));
        }
    }

    /// Runs every connection changed since its last drive until it has nothing more to do (at
    /// most [`DRIVE_ROUNDS_MAX`] rounds each), then arms the timer. What one connection's events
    /// change in another is driven in a further pass, up to [`DRIVE_ROUNDS_MAX`] passes.
    fn drive(&mut self, env: &mut dyn Env) {
        let now = self.clock.to_quic(env.now());
        let mut capped = Vec::new();
        self.stats.drives += 1;
        for pass in 0.. {
            if !self.conns.any_dirty() {
                break;
            }
            if pass == DRIVE_ROUNDS_MAX {
                self.stats.drive_rounds_capped += 1;
                break;
            }
            for ch in self.conns.take_dirty() {
                if !self.drive_conn(env, ch, now) {
                    capped.push(ch);
                }
                self.conns.driven(&ch);
                let timeout = self.conns.read_mut(&ch).and_then(|c| c.quic.poll_timeout());
                self.conns.set_timeout(&ch, timeout);
            }
        }
        for ch in &capped {
            // Still work to do: marked again, for the drive after the timer below.
            let _ = self.conns.get_mut(ch);
        }
        if self.conns.any_dirty() {
            // The rest of the work continues at once, after whatever input is already waiting.
            let at = env.now();
            self.armed = Some(at);
            env.set_timer(at, TIMER_TOKEN);
        }
        self.arm_timer(env);
    }

    /// Runs connection `ch` until it has nothing more to do; false if it still had after
    /// [`DRIVE_ROUNDS_MAX`] rounds.
    fn drive_conn(&mut self, env: &mut dyn Env, ch: ConnectionHandle, now: std::time::Instant) -> bool {
        self.stats.connections_driven += 1;
        for _ in 0..DRIVE_ROUNDS_MAX {
            let mut progressed = false;
            while let Some(ev) = self.conns.get_mut(&ch).and_then(|c| c.quic.poll_endpoint_events()) {
                progressed = true;
                let drained = ev.is_drained();
                if let Some(back) = self.quic.handle_event(ch, ev) {
                    if let Some(conn) = self.conns.get_mut(&ch) {
                        conn.quic.handle_event(back);
                    }
                }
                if drained {
                    self.forget(ch);
                }
            }
            while let Some(ev) = self.conns.get_mut(&ch).and_then(|c| c.quic.poll()) {
                progressed = true;
                self.on_connection_event(env, ch, ev);
            }
            let Some(conn) = self.conns.get_mut(&ch) else {
                return true;
            };
            // Where the backend offloads segmentation, quinn-proto builds runs of equal-size
            // packets for one system call; in the simulator this is 1.
            let segments = env.max_segments().max(1);
            loop {
                let buf = &mut self.transmit_buf;
                buf.clear();
                buf.reserve(TRANSMIT_BYTES * segments);
                let Some(t) = conn.quic.poll_transmit(now, segments, buf) else {
                    break;
                };
                progressed = true;
                self.stats.datagrams_sent += 1;
                // A lone small packet (an acknowledgement, above all) leaves as a copy of
                // its own size and the buffer stays; a run leaves in the buffer itself.
                let payload = if t.size <= TRANSMIT_COPY_MAX {
                    Bytes::copy_from_slice(&buf[..t.size])
                } else {
                    buf.truncate(t.size);
                    Bytes::from(std::mem::take(buf))
                };
                send_transmit(env, &t, payload);
            }
            if !progressed {
                return true;
            }
        }
        self.stats.drive_rounds_capped += 1;
        false
    }

    fn forget(&mut self, ch: ConnectionHandle) {
        if let Some(conn) = self.conns.remove(&ch) {
            if self.peers.get(&conn.remote) == Some(&ch) {
                self.peers.remove(&conn.remote);
                // Another established connection to the same address takes over.
                if let Some((other, _)) = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.remote == conn.remote && c.identity.is_some())
                    .last()
                {
                    self.peers.insert(conn.remote, *other);
                }
            }
        }
    }

    fn arm_timer(&mut self, env: &mut dyn Env) {
        let mut earliest = self.requests.values().map(|r| r.deadline).min();
        if let Some(t) = self.conns.earliest_timeout() {
            let t = self.clock.to_node(t);
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        }
        if let Some(at) = earliest {
            if self.armed.is_none_or(|armed| at < armed) {
                self.armed = Some(at);
                env.set_timer(at, TIMER_TOKEN);
            }
        }
    }

    fn on_connection_event(&mut self, env: &mut dyn Env, ch: ConnectionHandle, ev: quinn_proto::Event) {
        use quinn_proto::Event as E;
        match ev {
            E::HandshakeDataReady | E::DatagramsUnblocked => {}
            E::Connected => self.on_connected(env, ch),
            E::ConnectionLost { reason } => self.on_lost(env, ch, reason),
            // These three do nothing before the peer is verified: the data waits in quinn-proto
            // and `on_connected` takes it (see the module's documentation).
            E::Stream(StreamEvent::Opened { dir }) => self.accept_streams(env, ch, dir),
            E::Stream(StreamEvent::Readable { id }) => self.read_stream(env, ch, id),
            E::Stream(StreamEvent::Writable { id }) => {
                let Some(conn) = self.conns.get_mut(&ch) else { return };
                conn.flush(id);
                if let Some(bulk) = conn.bulk_out.get(&id) {
                    if conn.writes.get(&id).is_none_or(|o| o.chunks.is_empty()) {
                        emit(&mut self.events, Event::BulkWritable { id: *bulk });
                    }
                }
            }
            E::Stream(StreamEvent::Available { .. }) => self.release_queue(ch),
            E::Stream(StreamEvent::Finished { id }) => {
                if let Some(conn) = self.conns.get_mut(&ch) {
                    conn.writes.remove(&id);
                }
            }
            E::Stream(StreamEvent::Stopped { id, error_code }) => {
                let Some(conn) = self.conns.get_mut(&ch) else { return };
                conn.writes.remove(&id);
                conn.recount();
                if conn.message_stream == Some(id) {
                    conn.message_stream = None;
                }
                if let Some(bulk) = conn.bulk_out.remove(&id) {
                    self.bulk.remove(&bulk);
                }
                let request = self
                    .requests
                    .iter()
                    .find(|(_, r)| r.conn == ch && r.stream == Some(id))
                    .map(|(k, _)| *k);
                if let Some(rid) = request {
                    let r = self.requests.remove(&rid).expect("found above");
                    emit(
                        &mut self.events,
                        Event::Response {
                            peer: r.peer,
                            id: rid,
                            result: Err(RequestFailed::Reset(error_code.into_inner())),
                        },
                    );
                }
            }
            E::DatagramReceived => self.receive_datagrams(ch),
        }
    }

    /// Hands the peer's unreliable messages to the owner, once it is verified.
    fn receive_datagrams(&mut self, ch: ConnectionHandle) {
        let Some(conn) = self.conns.get_mut(&ch).filter(|c| c.verified()) else {
            return;
        };
        let peer = conn.remote;
        while let Some(payload) = conn.quic.datagrams().recv() {
            self.stats.messages_received += 1;
            emit(&mut self.events, Event::Message { peer, payload });
        }
    }

    /// Accepts and reads the streams the peer opened in direction `dir`, once it is verified.
    fn accept_streams(&mut self, env: &mut dyn Env, ch: ConnectionHandle, dir: Dir) {
        let max = self.config.frame_bytes_max;
        while let Some(id) = self
            .conns
            .get_mut(&ch)
            .filter(|c| c.verified())
            .and_then(|c| c.quic.streams().accept(dir))
        {
            let state = match dir {
                Dir::Uni => Inbound::Unknown(BytesMut::new()),
                Dir::Bi => Inbound::Request(FrameReader::new(max)),
            };
            if let Some(conn) = self.conns.get_mut(&ch) {
                conn.inbound.insert(id, state);
            }
            self.read_stream(env, ch, id);
        }
    }

    /// Discards what a refused peer sent that was never read (all of it, if it was refused before
    /// it was verified), counting DATAGRAM frames and streams in `refused_data_discarded`. The
    /// connection is closing, so its streams end with it.
    fn discard_unread(&mut self, ch: ConnectionHandle) {
        let Some(conn) = self.conns.get_mut(&ch) else { return };
        let mut discarded = 0;
        while conn.quic.datagrams().recv().is_some() {
            discarded += 1;
        }
        for dir in [Dir::Bi, Dir::Uni] {
            while conn.quic.streams().accept(dir).is_some() {
                discarded += 1;
            }
        }
        if discarded > 0 {
            tracing::debug!(peer = %conn.remote, discarded, "data from a peer refused before it was verified, discarded unread");
        }
        self.stats.refused_data_discarded += discarded;
    }

    fn on_connected(&mut self, env: &mut dyn Env, ch: ConnectionHandle) {
        let Some(conn) = self.conns.get_mut(&ch) else { return };
        let remote = conn.remote;
        let chain = conn
            .quic
            .crypto_session()
            .peer_identity()
            .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok());
        let identity = chain.as_deref().and_then(|c| PeerIdentity::from_chain(c));
        let Some(identity) = identity else {
            self.fail(env, ch, "malformed", "the peer's certificate names no node".into());
            return;
        };
        if self.config.bind_identity_to_address && std::net::IpAddr::V6(identity.node.addr) != remote.ip() {
            let reason = refusal_text(
                "name_mismatch",
                format_args!(
                    "the certificate of {} names {}, but the connection comes from {}",
                    identity.node.name,
                    identity.node.addr,
                    remote.ip()
                ),
            );
            self.fail(env, ch, "name_mismatch", reason);
            return;
        }
        conn.identity = Some(identity.clone());
        conn.peer_chain = chain.map(|c| *c).unwrap_or_default();
        self.stats.handshakes += 1;
        env.probe(Probe::new("stoq_connected", addr_subject(remote), 1));
        // The newest established connection carries traffic to this address: after a peer
        // restarts, its new connection replaces the one to its previous life at once.
        self.peers.insert(remote, ch);
        emit(&mut self.events, Event::Connected { peer: remote, identity });
        self.release_queue(ch);
        // Anything announced before this moment waited in quinn-proto; take it now, datagrams
        // first, then streams (quinn-proto's own order). quinn-proto 0.11 drops 1-RTT packets
        // until its handshake completes and reports `Connected` before the data that came with
        // it, so this mostly finds nothing; it keeps the gate from stranding data (a stream is
        // announced once) if that changes.
        self.receive_datagrams(ch);
        self.accept_streams(env, ch, Dir::Bi);
        self.accept_streams(env, ch, Dir::Uni);
    }

    fn fail(&mut self, env: &mut dyn Env, ch: ConnectionHandle, class: &'static str, reason: String) {
        let Some(conn) = self.conns.get_mut(&ch) else { return };
        let remote = conn.remote;
        self.stats.count_refusal(class);
        env.probe(Probe::new("stoq_refused", addr_subject(remote), class_index(class)));
        emit(
            &mut self.events,
            Event::ConnectFailed {
                peer: remote,
                class,
                reason: reason.clone(),
            },
        );
        // Reported now; the loss that follows stays quiet.
        conn.closing = Some(String::new());
        self.close_conn(env, ch, code::IDENTITY_MISMATCH, reason);
        // Whatever it sent and was not read (all of it, if it was never verified) goes now.
        self.discard_unread(ch);
    }

    fn on_lost(&mut self, env: &mut dyn Env, ch: ConnectionHandle, reason: ConnectionError) {
        let Some(conn) = self.conns.get_mut(&ch) else { return };
        let remote = conn.remote;
        let established = conn.identity.is_some();
        let text = conn.closing.clone().unwrap_or_else(|| reason.to_string());
        let dropped = conn.queue.len();
        conn.queue.clear();
        conn.queued_bytes = 0;
        self.stats.messages_dropped += dropped as u64;
        let current = self.peers.get(&remote) == Some(&ch);
        if current {
            self.peers.remove(&remote);
        }
        // Requests and bulk streams on it end here.
        let lost: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.conn == ch)
            .map(|(k, _)| *k)
            .collect();
        for id in lost {
            self.requests.remove(&id);
            emit(
                &mut self.events,
                Event::Response {
                    peer: remote,
                    id,
                    result: Err(RequestFailed::ConnectionLost(text.clone())),
                },
            );
        }
        self.served.retain(|_, (c, _)| *c != ch);
        let inbound_bulk: Vec<BulkId> = conn
            .inbound
            .values()
            .filter_map(|i| if let Inbound::Bulk(b) = i { Some(*b) } else { None })
            .collect();
        for id in inbound_bulk {
            emit(
                &mut self.events,
                Event::BulkFinished {
                    id,
                    result: Err(text.clone()),
                },
            );
        }
        self.bulk.retain(|_, (c, _)| *c != ch);
        if conn.closing.as_deref() == Some("") {
            return;
        }
        // TLS 1.3 authenticates the client last: a client is connected on its side before the
        // server has checked its certificate, and learns of a refusal as a close right after.
        let refused = refusal_class(&text);
        if established && refused.is_none() {
            self.stats.connections_lost += 1;
            env.probe(Probe::new("stoq_lost", addr_subject(remote), 1));
            if current {
                emit(
                    &mut self.events,
                    Event::Disconnected {
                        peer: remote,
                        reason: text,
                    },
                );
            }
        } else {
            let class = refused.unwrap_or(match reason {
                ConnectionError::TimedOut => "timeout",
                ConnectionError::Reset => "reset",
                ConnectionError::LocallyClosed | ConnectionError::ApplicationClosed(_) => "closed",
                _ => "tls",
            });
            self.stats.count_refusal(class);
            env.probe(Probe::new("stoq_refused", addr_subject(remote), class_index(class)));
            emit(
                &mut self.events,
                Event::ConnectFailed {
                    peer: remote,
                    class,
                    reason: text,
                },
            );
        }
    }

    fn read_stream(&mut self, env: &mut dyn Env, ch: ConnectionHandle, id: StreamId) {
        let Some(conn) = self.conns.get_mut(&ch).filter(|c| c.verified()) else {
            return;
        };
        let peer = conn.remote;
        let mut pieces = Vec::new();
        let mut end: Option<Result<(), u64>> = None;
        {
            let mut recv = conn.quic.recv_stream(id);
            let Ok(mut chunks) = recv.read(true) else { return };
            loop {
                match chunks.next(usize::MAX) {
                    Ok(Some(chunk)) => pieces.push(chunk.bytes),
                    Ok(None) => {
                        end = Some(Ok(()));
                        break;
                    }
                    Err(ReadError::Blocked) => break,
                    Err(ReadError::Reset(code)) => {
                        end = Some(Err(code.into_inner()));
                        break;
                    }
                }
            }
            // Any MAX_STREAM_DATA this earns goes out with the next poll_transmit.
            let _ = chunks.finalize();
        }
        let Some(mut state) = conn.inbound.remove(&id) else {
            return;
        };
        let mut error: Option<FrameError> = None;
        for piece in pieces {
            if let Inbound::Unknown(pre) = &mut state {
                pre.extend_from_slice(&piece);
                match pre.first() {
                    Some(&KIND_MESSAGES) => {
                        let mut reader = FrameReader::new(self.config.frame_bytes_max);
                        reader.push(pre.split().freeze().slice(1..));
                        state = Inbound::Messages(reader);
                    }
                    Some(&KIND_BULK) if pre.len() >= BULK_PREAMBLE => {
                        let tag = u64::from_be_bytes(pre[1..BULK_PREAMBLE].try_into().expect("8 bytes"));
                        let rest = pre.split().freeze().slice(BULK_PREAMBLE..);
                        let bulk = BulkId(self.next_id);
                        self.next_id += 1;
                        emit(&mut self.events, Event::BulkOpened { peer, id: bulk, tag });
                        if !rest.is_empty() {
                            self.stats.bulk_bytes_received += rest.len() as u64;
                            emit(&mut self.events, Event::BulkData { id: bulk, data: rest });
                        }
                        state = Inbound::Bulk(bulk);
                    }
                    Some(&KIND_BULK) | None => {}
                    Some(other) => {
                        let detail = format!("stream {id} opens with unknown kind byte {other:#04x}");
                        self.malformed(env, ch, detail);
                        return;
                    }
                }
                continue;
            }
            match &mut state {
                Inbound::Bulk(bulk) => {
                    self.stats.bulk_bytes_received += piece.len() as u64;
                    emit(&mut self.events, Event::BulkData { id: *bulk, data: piece });
                }
                Inbound::Messages(r) | Inbound::Request(r) | Inbound::Response(_, r) => r.push(piece),
                Inbound::Unknown(_) => unreachable!("handled above"),
            }
        }
        // Whole frames out.
        match &mut state {
            Inbound::Messages(r) => loop {
                match r.next_frame() {
                    Ok(Some(payload)) => {
                        self.stats.messages_received += 1;
                        emit(&mut self.events, Event::Message { peer, payload });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            },
            Inbound::Request(r) | Inbound::Response(_, r) => {
                if let Some(Ok(())) = end {
                    match (r.next_frame(), r.buffered()) {
                        (Ok(Some(_)), n) if n > 0 => error = Some(FrameError::TrailingData),
                        (Ok(Some(payload)), _) => {
                            self.complete_exchange(ch, id, &state, payload);
                            return;
                        }
                        (Ok(None), _) => error = Some(r.finish().err().unwrap_or(FrameError::Truncated { missing: 4 })),
                        (Err(e), _) => error = Some(e),
                    }
                } else if r.buffered() > 0 {
                    // Refuse an oversized frame as soon as its header is in.
                    if let Err(e) = r.check_pending() {
                        error = Some(e);
                    }
                }
            }
            Inbound::Bulk(_) | Inbound::Unknown(_) => {}
        }
        if let Some(e) = error {
            if let Inbound::Response(rid, _) = state {
                if let Some(r) = self.requests.remove(&rid) {
                    emit(
                        &mut self.events,
                        Event::Response {
                            peer: r.peer,
                            id: rid,
                            result: Err(RequestFailed::Malformed(e.clone())),
                        },
                    );
                }
            }
            self.malformed(env, ch, format!("stream {id}: {e}"));
            return;
        }
        match end {
            None => {
                if let Some(conn) = self.conns.get_mut(&ch) {
                    conn.inbound.insert(id, state);
                }
            }
            Some(result) => match state {
                Inbound::Bulk(bulk) => emit(
                    &mut self.events,
                    Event::BulkFinished {
                        id: bulk,
                        result: result.map_err(|code| format!("reset by the sender (code {code})")),
                    },
                ),
                Inbound::Response(rid, _) => {
                    if let (Err(code), Some(r)) = (result, self.requests.remove(&rid)) {
                        emit(
                            &mut self.events,
                            Event::Response {
                                peer: r.peer,
                                id: rid,
                                result: Err(RequestFailed::Reset(code)),
                            },
                        );
                    }
                }
                Inbound::Messages(r) if result.is_ok() => {
                    if let Err(e) = r.finish() {
                        self.malformed(env, ch, format!("message stream {id}: {e}"));
                    }
                }
                _ => {}
            },
        }
    }

    /// A complete request (theirs) or response (to ours) arrived on `stream`.
    fn complete_exchange(&mut self, ch: ConnectionHandle, stream: StreamId, state: &Inbound, payload: Bytes) {
        let Some(conn) = self.conns.get(&ch) else { return };
        let peer = conn.remote;
        match state {
            Inbound::Request(_) => {
                let id = RequestId(self.next_id);
                self.next_id += 1;
                self.stats.requests_received += 1;
                self.served.insert(id, (ch, stream));
                emit(&mut self.events, Event::Request { peer, id, payload });
            }
            Inbound::Response(rid, _) if self.requests.remove(rid).is_some() => {
                self.stats.responses_received += 1;
                emit(
                    &mut self.events,
                    Event::Response {
                        peer,
                        id: *rid,
                        result: Ok(payload),
                    },
                );
            }
            _ => {}
        }
    }

    fn malformed(&mut self, env: &mut dyn Env, ch: ConnectionHandle, detail: String) {
        let Some(conn) = self.conns.get(&ch) else { return };
        let peer = conn.remote;
        self.stats.frame_errors += 1;
        tracing::warn!(%peer, %detail, "peer broke STOQ framing; closing its connection");
        emit(
            &mut self.events,
            Event::Malformed {
                peer,
                detail: detail.clone(),
            },
        );
        self.close_conn(env, ch, code::FRAME_ERROR, format!("frame error: {detail}"));
    }
}

impl Conn {
    /// Whether the peer's data may reach the owner: its chain was validated (by the TLS
    /// verifier) and bound to its address (`on_connected` set `identity`), and it has not been
    /// refused or closed since. Nothing is read from quinn-proto for a connection that is not.
    fn verified(&self) -> bool {
        self.identity.is_some() && self.closing.is_none()
    }

    fn new(quic: quinn_proto::Connection, remote: SocketAddr) -> Self {
        Conn {
            quic,
            remote,
            identity: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            message_stream: None,
            writes: BTreeMap::new(),
            inbound: BTreeMap::new(),
            bulk_out: BTreeMap::new(),
            closing: None,
            peer_chain: Vec::new(),
        }
    }

    /// Writes what `stream` has pending, as far as flow control allows; finishes it when done.
    fn flush(&mut self, stream: StreamId) {
        let Some(out) = self.writes.get_mut(&stream) else {
            return;
        };
        let mut written_bytes = 0;
        if !out.chunks.is_empty() {
            match self.quic.send_stream(stream).write_chunks(out.chunks.make_contiguous()) {
                Ok(w) => {
                    written_bytes = w.bytes;
                    out.chunks.drain(..w.chunks);
                }
                Err(WriteError::Blocked) => {}
                Err(WriteError::Stopped(_) | WriteError::ClosedStream) => {
                    out.chunks.clear();
                    out.finish = false;
                }
            }
        }
        if out.counted {
            self.queued_bytes = self.queued_bytes.saturating_sub(written_bytes);
        }
        if out.chunks.is_empty() {
            let finish = out.finish;
            if finish {
                self.writes.remove(&stream);
                let _ = self.quic.send_stream(stream).finish();
            }
        }
    }

    /// Recomputes `queued_bytes` after items were removed out of order.
    fn recount(&mut self) {
        self.queued_bytes = self.queue.iter().map(Queued::len).sum::<usize>()
            + self
                .writes
                .values()
                .filter(|o| o.counted)
                .flat_map(|o| o.chunks.iter())
                .map(Bytes::len)
                .sum::<usize>();
    }
}

/// The datagram(s) quinn-proto built in `buf`, as bytes to send.
fn built(mut buf: Vec<u8>, t: &quinn_proto::Transmit) -> Bytes {
    buf.truncate(t.size);
    Bytes::from(buf)
}

fn send_transmit(env: &mut dyn Env, t: &quinn_proto::Transmit, payload: Bytes) {
    let sent = match t.segment_size {
        Some(segment) if segment < payload.len() => env.send_segments(t.destination, payload, segment),
        _ => env.send_to(t.destination, payload),
    };
    if let Err(e) = sent {
        tracing::debug!(to = %t.destination, error = %e, "datagram not sent");
    }
}

/// A probe subject for a peer: the low 64 bits of its address (node addresses differ there).
fn addr_subject(addr: SocketAddr) -> u64 {
    match addr.ip() {
        std::net::IpAddr::V6(v6) => u128::from(v6) as u64,
        std::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
    }
}
