//! The node's UDP sockets: at most one per address family, IPv6 ones bound IPv6-only.
//!
//! I/O goes through quinn-udp (quinn's socket layer): receives take up to
//! `quinn_udp::BATCH_SIZE` messages per system call (`recvmmsg`), each possibly several
//! datagrams coalesced by the kernel (GRO); sends queue during an actor callback and are
//! written after it, a run of equal-size datagrams in one `sendmsg` (GSO) where the actor asked
//! for it with `send_segments`.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use quinn_udp::{RecvMeta, Transmit, UdpSocketState, BATCH_SIZE};
use runtime::{AddressFamily, SendError, MAX_DATAGRAM_BYTES};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::BackendError;

/// Datagrams (or segmented batches) an actor may queue before the driver writes them; past it
/// they are dropped and counted, as a full router queue drops.
pub const SEND_QUEUE_MAX: usize = 4096;

/// Most datagrams one segmented send carries: quinn's own cap, which keeps a batch of
/// full-size QUIC packets under the kernel's 64 KiB limit for one GSO send.
pub const SEGMENTS_MAX: usize = 10;

/// Receive buffer per message: the largest UDP payload, or a GRO batch of them.
const RECV_MESSAGE_BYTES: usize = 64 * 1024;

/// One bound socket and the family it serves.
#[derive(Debug)]
struct Bound {
    family: AddressFamily,
    socket: UdpSocket,
    state: UdpSocketState,
}

/// A datagram, or a run of equal-size datagrams, waiting to be written.
#[derive(Debug)]
struct Outgoing {
    socket: usize,
    to: SocketAddr,
    payload: Bytes,
    segment_size: Option<usize>,
}

/// The sockets of one node.
#[derive(Debug)]
pub(crate) struct Sockets {
    bound: Vec<Bound>,
    addrs: Vec<SocketAddr>,
    /// Which socket `poll_recv` tries first, rotated so a busy socket cannot starve the other.
    next_poll: usize,
    dropped: u64,
    waits: u64,
    queue: VecDeque<Outgoing>,
    recv_buf: Box<[u8]>,
}

impl Sockets {
    /// Binds one socket per address in `binds`. Must run inside a tokio runtime.
    pub(crate) fn bind(binds: &[SocketAddr], buffer_bytes: usize) -> Result<Self, BackendError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BackendError::NoRuntime);
        }
        let mut bound: Vec<Bound> = Vec::with_capacity(binds.len());
        let mut addrs = Vec::with_capacity(binds.len());
        for (i, &addr) in binds.iter().enumerate() {
            let family = AddressFamily::of(&addr);
            if let Some(first) = binds[..i].iter().find(|a| AddressFamily::of(a) == family) {
                return Err(BackendError::DuplicateFamily {
                    family,
                    first: *first,
                    second: addr,
                });
            }
            let (socket, state) = bind_one(addr, buffer_bytes).map_err(|source| BackendError::Bind { addr, source })?;
            let local = socket
                .local_addr()
                .map_err(|source| BackendError::Bind { addr, source })?;
            addrs.push(local);
            bound.push(Bound { family, socket, state });
        }
        Ok(Sockets {
            bound,
            addrs,
            next_poll: 0,
            dropped: 0,
            waits: 0,
            queue: VecDeque::new(),
            recv_buf: vec![0u8; RECV_MESSAGE_BYTES * BATCH_SIZE].into_boxed_slice(),
        })
    }

    /// The addresses the sockets are actually bound to (ports chosen by the OS filled in).
    pub(crate) fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Datagrams dropped: the send queue was full, or the OS refused them.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Times a send found the socket's send buffer full and waited.
    pub(crate) fn waits(&self) -> u64 {
        self.waits
    }

    /// The sockets' raw descriptors, by index (for the io_uring driver, which does its own I/O).
    pub(crate) fn raw_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.bound.iter().map(|b| b.socket.as_raw_fd()).collect()
    }

    /// Takes the next queued send: socket index, destination, payload, segment size.
    pub(crate) fn pop_queued(&mut self) -> Option<(usize, SocketAddr, Bytes, Option<usize>)> {
        let out = self.queue.pop_front()?;
        Some((out.socket, out.to, out.payload, out.segment_size))
    }

    /// Whether sends are queued.
    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Counts a datagram the OS refused.
    pub(crate) fn count_dropped(&mut self) {
        self.dropped += 1;
    }

    /// Each socket's buffers as the OS reports them.
    pub(crate) fn buffers(&self) -> io::Result<Vec<crate::SocketBuffers>> {
        self.bound
            .iter()
            .zip(&self.addrs)
            .map(|(b, addr)| {
                let socket = SockRef::from(&b.socket);
                Ok(crate::SocketBuffers {
                    addr: *addr,
                    receive: socket.recv_buffer_size()?,
                    send: socket.send_buffer_size()?,
                })
            })
            .collect()
    }

    /// Whether the IPv6 socket has `IPV6_V6ONLY` set; `None` if the node has no IPv6 socket.
    pub(crate) fn ipv6_only(&self) -> Option<io::Result<bool>> {
        let bound = self.bound.iter().find(|b| b.family == AddressFamily::V6)?;
        Some(SockRef::from(&bound.socket).only_v6())
    }

    /// How many datagrams one segmented send may carry on these sockets.
    pub(crate) fn max_segments(&self) -> usize {
        self.bound
            .iter()
            .map(|b| b.state.max_gso_segments())
            .min()
            .unwrap_or(1)
            .clamp(1, SEGMENTS_MAX)
    }

    /// Queues a datagram; [`Sockets::flush`] writes it.
    ///
    /// The family check comes before the OS sees the datagram so the error is exactly the
    /// simulator's. For the record, Linux (checked on 6.18 with `net.ipv6.bindv6only=0`) answers
    /// a send from an `IPV6_V6ONLY` socket to an IPv4 destination, whether given as an `AF_INET`
    /// address or as an IPv4-mapped `::ffff:a.b.c.d`, with `ENETUNREACH` (errno 101, "Network is
    /// unreachable"), which would otherwise surface as `SendError::Io`.
    pub(crate) fn send_to(&mut self, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        self.enqueue(to, payload, None)
    }

    /// Queues `payload` as datagrams of `segment_size` bytes for one GSO send.
    pub(crate) fn send_segments(
        &mut self,
        to: SocketAddr,
        payload: Bytes,
        segment_size: usize,
    ) -> Result<(), SendError> {
        let segment_size = segment_size.max(1);
        if payload.len() <= segment_size {
            return self.enqueue(to, payload, None);
        }
        let segments = payload.len().div_ceil(segment_size);
        if segments > self.max_segments() {
            // More than one send can carry: split it into sends that fit.
            let chunk = segment_size * self.max_segments();
            let mut at = 0;
            while at < payload.len() {
                let end = (at + chunk).min(payload.len());
                self.send_segments(to, payload.slice(at..end), segment_size)?;
                at = end;
            }
            return Ok(());
        }
        self.enqueue(to, payload, Some(segment_size))
    }

    fn enqueue(&mut self, to: SocketAddr, payload: Bytes, segment_size: Option<usize>) -> Result<(), SendError> {
        // Size first, then family: the simulator's order, so both report the same error.
        let datagram = segment_size.unwrap_or(payload.len());
        if datagram > MAX_DATAGRAM_BYTES {
            return Err(SendError::TooLarge {
                len: datagram,
                max: MAX_DATAGRAM_BYTES,
            });
        }
        let family = AddressFamily::of(&to);
        let Some(socket) = self.bound.iter().position(|b| b.family == family) else {
            return Err(SendError::AddressFamilyNotSupported { to, family });
        };
        if self.queue.len() >= SEND_QUEUE_MAX {
            // Congestion: UDP's answer is loss, not an error.
            self.dropped += 1;
            tracing::debug!(%to, dropped = self.dropped, "send queue full; datagram dropped");
            return Ok(());
        }
        self.queue.push_back(Outgoing {
            socket,
            to,
            payload,
            segment_size,
        });
        Ok(())
    }

    /// Writes every queued datagram, waiting while a socket's send buffer is full (as a
    /// blocking socket would) rather than dropping.
    pub(crate) async fn flush(&mut self) {
        while let Some(out) = self.queue.pop_front() {
            let bound = &self.bound[out.socket];
            let transmit = Transmit {
                destination: out.to,
                ecn: None,
                contents: &out.payload,
                segment_size: out.segment_size,
                src_ip: None,
            };
            // Straight to the OS first: tokio's readiness cache reports a freshly bound socket
            // unwritable until the reactor has polled it.
            let mut result = bound.state.try_send((&bound.socket).into(), &transmit);
            while matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                self.waits += 1;
                if let Err(e) = bound.socket.writable().await {
                    result = Err(e);
                    break;
                }
                result = bound.socket.try_io(Interest::WRITABLE, || {
                    bound.state.try_send((&bound.socket).into(), &transmit)
                });
            }
            if let Err(e) = result {
                self.dropped += 1;
                tracing::debug!(to = %out.to, len = out.payload.len(), error = %e, "send failed; datagram dropped");
            }
        }
    }

    /// Receives what one socket has (up to `BATCH_SIZE` messages, each possibly a GRO batch),
    /// appending each datagram with its sender to `out`.
    pub(crate) async fn recv(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>) -> io::Result<()> {
        poll_fn(|cx| self.poll_recv(cx, out)).await
    }

    /// Receives without waiting: `Ok(false)` if no socket has anything now.
    pub(crate) fn try_recv(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>) -> io::Result<bool> {
        let count = self.bound.len();
        for i in 0..count {
            let idx = (self.next_poll + i) % count;
            let bound = &self.bound[idx];
            match recv_into(bound, &mut self.recv_buf, out) {
                Ok(()) => {
                    self.next_poll = (idx + 1) % count;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>, out: &mut Vec<(SocketAddr, BytesMut)>) -> Poll<io::Result<()>> {
        let count = self.bound.len();
        for i in 0..count {
            let idx = (self.next_poll + i) % count;
            let bound = &self.bound[idx];
            loop {
                match bound.socket.poll_recv_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(())) => {}
                }
                let buf = &mut self.recv_buf;
                match bound.socket.try_io(Interest::READABLE, || recv_into(bound, buf, out)) {
                    Ok(()) => {
                        self.next_poll = (idx + 1) % count;
                        return Poll::Ready(Ok(()));
                    }
                    // Readiness was stale and is now cleared: poll again to register the waker.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
        // Every socket registered the waker (or there are none, and only other branches can wake).
        Poll::Pending
    }
}

/// One `recvmmsg` on `bound` into `buf`. Each message (a datagram, or a GRO run of them) is
/// copied out once, as quinn does, and its datagrams handed on as views of that copy (split at
/// the run's stride), so a run costs one allocation rather than one per datagram.
fn recv_into(bound: &Bound, buf: &mut [u8], out: &mut Vec<(SocketAddr, BytesMut)>) -> io::Result<()> {
    let mut metas = [RecvMeta::default(); BATCH_SIZE];
    let mut slices = buf.chunks_mut(RECV_MESSAGE_BYTES).map(IoSliceMut::new);
    let mut iovs: [IoSliceMut<'_>; BATCH_SIZE] =
        std::array::from_fn(|_| slices.next().expect("the buffer holds BATCH_SIZE messages"));
    let messages = bound.state.recv((&bound.socket).into(), &mut iovs, &mut metas)?;
    for (meta, buf) in metas.iter().zip(iovs.iter()).take(messages) {
        let stride = meta.stride.max(1);
        let mut run = BytesMut::from(&buf[..meta.len]);
        while !run.is_empty() {
            let datagram = run.split_to(stride.min(run.len()));
            out.push((meta.addr, datagram));
        }
    }
    Ok(())
}

/// Creates and binds one non-blocking UDP socket for `addr`, with quinn-udp's state (GSO/GRO
/// detection, the socket options it needs).
fn bind_one(addr: SocketAddr, buffer_bytes: usize) -> io::Result<(UdpSocket, UdpSocketState)> {
    if addr.is_ipv6() && AddressFamily::of(&addr) == AddressFamily::V4 {
        // An IPv6-only socket can never carry IPv4, so a mapped address would be a silent no-op.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "IPv4-mapped addresses cannot be bound; bind the IPv4 address itself",
        ));
    }
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // The host default (net.ipv6.bindv6only=0) would make this socket dual-stack and let
        // IPv4 in through mapped addresses; the system is IPv6-only, so say so before binding.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    // Before binding, so no datagram ever meets the smaller default. Linux caps the size at
    // net.core.rmem_max / wmem_max without an error (and reports twice what it grants); other
    // systems refuse sizes above their limit. Either way the node runs, and says so once.
    for (which, set, get) in [
        (
            "receive",
            Socket::set_recv_buffer_size as fn(&Socket, usize) -> io::Result<()>,
            Socket::recv_buffer_size as fn(&Socket) -> io::Result<usize>,
        ),
        ("send", Socket::set_send_buffer_size, Socket::send_buffer_size),
    ] {
        let asked = set(&socket, buffer_bytes);
        let granted = get(&socket)?;
        let payload = if cfg!(target_os = "linux") {
            granted / 2
        } else {
            granted
        };
        if asked.is_err() || payload < buffer_bytes {
            tracing::warn!(
                %addr,
                asked = buffer_bytes,
                granted = payload,
                "UDP {which} buffer smaller than asked: raise net.core.rmem_max / wmem_max, or bursts are dropped"
            );
        }
    }
    socket.bind(&addr.into())?;
    let state = UdpSocketState::new((&socket).into())?;
    Ok((UdpSocket::from_std(socket.into())?, state))
}
