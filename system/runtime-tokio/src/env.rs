//! [`RealEnv`]: every runtime seam of one node, backed by the host.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use runtime::{Clock, Datagrams, DetRng, Entropy, Instant, Probe, Probes, SendError, TimerToken, Timers, WallTime};

use crate::clock::NodeClock;
use crate::files::DirStorage;
use crate::probes::{emit, ProbeRecord, ProbeSender};
use crate::timers::TimerQueue;
use crate::udp::Sockets;
use crate::BackendError;

/// What one node is given: where its sockets bind and where its files live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// Bind addresses, at most one per family. Port 0 lets the OS choose, which is what tests
    /// and local clusters want; IPv6 addresses are bound IPv6-only.
    pub bind: Vec<SocketAddr>,
    /// The node's storage directory, created if missing.
    pub data_dir: PathBuf,
    /// Bytes asked of the kernel for each socket's receive buffer and send buffer
    /// (`SO_RCVBUF`, `SO_SNDBUF`). What arrives while the node is busy waits there, and what
    /// does not fit is dropped by the kernel: the OS default (about 208 KiB on Linux) overflowed
    /// under a few thousand consensus transactions a second, losing votes and answers. Linux
    /// grants at most `net.core.rmem_max` / `wmem_max`; [`RealEnv::socket_buffers`] says what
    /// was granted.
    pub socket_buffer_bytes: usize,
}

/// Each socket's receive and send buffer unless a [`NodeSpec`] says otherwise: ample for a
/// burst of a few thousand packets while the node handles the previous ones (the OS default,
/// about 208 KiB on Linux, was not), and within what this class of machine allows without
/// tuning (`net.core.rmem_max` of 4 MiB here).
pub const SOCKET_BUFFER_BYTES_DEFAULT: usize = 4 << 20;

/// A socket's buffers as the OS reports them (Linux reports twice what it grants for payload:
/// the rest is its bookkeeping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketBuffers {
    /// The socket's local address.
    pub addr: SocketAddr,
    /// `SO_RCVBUF`.
    pub receive: usize,
    /// `SO_SNDBUF`.
    pub send: usize,
}

impl NodeSpec {
    /// A node binding `bind` and storing files in `data_dir`.
    pub fn new(bind: Vec<SocketAddr>, data_dir: impl Into<PathBuf>) -> Self {
        NodeSpec {
            bind,
            data_dir: data_dir.into(),
            socket_buffer_bytes: SOCKET_BUFFER_BYTES_DEFAULT,
        }
    }

    /// The same node, asking for `bytes` of socket buffer each way.
    pub fn with_socket_buffer_bytes(mut self, bytes: usize) -> Self {
        self.socket_buffer_bytes = bytes;
        self
    }
}

/// The production [`runtime::Env`] of one node: the host's clocks, real UDP sockets, a directory
/// of real files, an OS-seeded generator, and probes as `tracing` events.
///
/// Timers are only recorded here; a driver ([`crate::drive`]) is what waits for and fires them.
#[derive(Debug)]
pub struct RealEnv {
    node: usize,
    pub(crate) clock: NodeClock,
    pub(crate) timers: TimerQueue,
    pub(crate) sockets: Sockets,
    rng: DetRng,
    storage: DirStorage,
    probes: Option<ProbeSender>,
    /// Datagrams of the current receive batch still to be handed over (set by the driver).
    pub(crate) batch_remaining: usize,
    /// The clocks as read once when a group of received datagrams is handed over: the time the
    /// group arrived, as quinn takes one `now` per receive batch. Reading the host's clocks per
    /// datagram cost about 2 % of a bulk receiver's CPU. Not held for a group's last datagram,
    /// after which the actor does the group's work (which may take long, and set timers).
    frozen: Option<(Instant, WallTime)>,
}

impl RealEnv {
    /// Sets up node `node` from `spec`: seeds its generator from the OS, creates its storage
    /// directory and binds its sockets. Must be called inside a tokio runtime, which the sockets
    /// are registered with; the node's monotonic clock starts now.
    pub fn bind(node: usize, spec: &NodeSpec) -> Result<Self, BackendError> {
        let rng = DetRng::seed_from_u64(os_seed()?);
        let storage = DirStorage::open(&spec.data_dir)?;
        let sockets = Sockets::bind(&spec.bind, spec.socket_buffer_bytes)?;
        Ok(RealEnv {
            node,
            clock: NodeClock::start(),
            timers: TimerQueue::default(),
            sockets,
            rng,
            storage,
            probes: None,
            batch_remaining: 0,
            frozen: None,
        })
    }

    /// Replaces the OS seed with `seed`, for tests that want reproducible draws. The stream is
    /// xoshiro's either way: fine for protocol choices, never for keys or nonces.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = DetRng::seed_from_u64(seed);
        self
    }

    /// Forwards every probe to `sink` as well as to `tracing`.
    pub fn with_probe_sink(mut self, sink: ProbeSender) -> Self {
        self.probes = Some(sink);
        self
    }

    /// The node's index.
    pub fn node(&self) -> usize {
        self.node
    }

    /// The node's storage directory.
    pub fn data_dir(&self) -> &Path {
        self.storage.dir()
    }

    /// Datagrams dropped so far because a send buffer was full.
    pub fn sends_dropped(&self) -> u64 {
        self.sockets.dropped()
    }

    /// Timers set and not yet fired.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Prepares handing over datagram `i` of `count` received together, in groups of `group`
    /// (both drivers' policy): within a group `more_datagrams_follow` holds and one clock
    /// reading serves; for a group's last datagram, after which the actor does the group's work
    /// (acknowledgements, protocols' messages, timers they set), it does not hold and the clocks
    /// are read afresh. Returns whether the datagram ends its group: its sends should leave then.
    pub(crate) fn hand_over(&mut self, i: usize, count: usize, group: usize) -> bool {
        let group_ends = (i + 1).is_multiple_of(group) || i + 1 == count;
        if group_ends {
            self.frozen = None;
        } else if i.is_multiple_of(group) {
            self.frozen = Some((self.clock.now(), self.clock.wall_now()));
        }
        self.batch_remaining = if group_ends { 0 } else { count - i - 1 };
        group_ends
    }

    /// After a batch has been handed over: nothing follows, and the clocks are the host's.
    pub(crate) fn handed_over(&mut self) {
        self.batch_remaining = 0;
        self.frozen = None;
    }

    /// Each socket's buffers as the OS reports them.
    pub fn socket_buffers(&self) -> io::Result<Vec<SocketBuffers>> {
        self.sockets.buffers()
    }

    /// Whether the node's IPv6 socket has `IPV6_V6ONLY` set, as the OS reports it; `None` if the
    /// node has no IPv6 socket.
    pub fn ipv6_only(&self) -> Option<io::Result<bool>> {
        self.sockets.ipv6_only()
    }
}

/// Eight bytes from the OS, so every node's stream differs from every other's and every run's.
fn os_seed() -> Result<u64, BackendError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| BackendError::Entropy { reason: e.to_string() })?;
    Ok(u64::from_le_bytes(bytes))
}

impl Clock for RealEnv {
    fn now(&self) -> Instant {
        match self.frozen {
            Some((now, _)) => now,
            None => self.clock.now(),
        }
    }

    fn wall_now(&self) -> WallTime {
        match self.frozen {
            Some((_, wall)) => wall,
            None => self.clock.wall_now(),
        }
    }
}

impl Timers for RealEnv {
    fn set_timer(&mut self, at: Instant, token: TimerToken) {
        self.timers.push(at, token);
    }
}

impl Datagrams for RealEnv {
    fn local_addrs(&self) -> &[SocketAddr] {
        self.sockets.local_addrs()
    }

    fn send_to(&mut self, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        self.sockets.send_to(to, payload)
    }

    fn max_segments(&self) -> usize {
        self.sockets.max_segments()
    }

    fn more_datagrams_follow(&self) -> bool {
        self.batch_remaining > 0
    }

    fn send_segments(&mut self, to: SocketAddr, payload: Bytes, segment_size: usize) -> Result<(), SendError> {
        self.sockets.send_segments(to, payload, segment_size)
    }
}

impl Entropy for RealEnv {
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

runtime::delegate_storage!([] RealEnv, |this| this.storage);

impl Probes for RealEnv {
    fn probe(&mut self, probe: Probe) {
        let record = ProbeRecord {
            node: self.node,
            at: self.clock.now(),
            probe,
        };
        emit(record, self.probes.as_ref());
    }
}
