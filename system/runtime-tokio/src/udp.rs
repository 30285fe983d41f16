//! The node's UDP sockets: at most one per address family, IPv6 ones bound IPv6-only.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use runtime::{AddressFamily, SendError, MAX_DATAGRAM_BYTES};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;

use crate::BackendError;

/// One bound socket and the family it serves.
#[derive(Debug)]
struct Bound {
    family: AddressFamily,
    socket: UdpSocket,
}

/// The sockets of one node.
#[derive(Debug)]
pub(crate) struct Sockets {
    bound: Vec<Bound>,
    addrs: Vec<SocketAddr>,
    /// Which socket `poll_recv` tries first, rotated so a busy socket cannot starve the other.
    next_poll: usize,
    dropped: u64,
}

impl Sockets {
    /// Binds one socket per address in `binds`. Must run inside a tokio runtime.
    pub(crate) fn bind(binds: &[SocketAddr]) -> Result<Self, BackendError> {
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
            let socket = bind_one(addr).map_err(|source| BackendError::Bind { addr, source })?;
            let local = socket
                .local_addr()
                .map_err(|source| BackendError::Bind { addr, source })?;
            addrs.push(local);
            bound.push(Bound { family, socket });
        }
        Ok(Sockets {
            bound,
            addrs,
            next_poll: 0,
            dropped: 0,
        })
    }

    /// The addresses the sockets are actually bound to (ports chosen by the OS filled in).
    pub(crate) fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Datagrams dropped because a socket's send buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether the IPv6 socket has `IPV6_V6ONLY` set; `None` if the node has no IPv6 socket.
    pub(crate) fn ipv6_only(&self) -> Option<io::Result<bool>> {
        let bound = self.bound.iter().find(|b| b.family == AddressFamily::V6)?;
        Some(SockRef::from(&bound.socket).only_v6())
    }

    /// Sends without waiting: actors are synchronous, and UDP may drop anyway.
    ///
    /// A datagram that does not fit the socket's send buffer is dropped and counted, as a router
    /// would drop it; the actor sees success, exactly as with a datagram lost on the wire.
    ///
    /// The family check comes before the OS sees the datagram so the error is exactly the
    /// simulator's. For the record, Linux (checked on 6.18 with `net.ipv6.bindv6only=0`) answers
    /// a send from an `IPV6_V6ONLY` socket to an IPv4 destination, whether given as an `AF_INET`
    /// address or as an IPv4-mapped `::ffff:a.b.c.d`, with `ENETUNREACH` (errno 101, "Network is
    /// unreachable"), which would otherwise surface here as `SendError::Io`.
    pub(crate) fn send_to(&mut self, to: SocketAddr, payload: &[u8]) -> Result<(), SendError> {
        // Size first, then family: the simulator's order, so both report the same error.
        if payload.len() > MAX_DATAGRAM_BYTES {
            return Err(SendError::TooLarge {
                len: payload.len(),
                max: MAX_DATAGRAM_BYTES,
            });
        }
        let family = AddressFamily::of(&to);
        let Some(bound) = self.bound.iter().find(|b| b.family == family) else {
            return Err(SendError::AddressFamilyNotSupported { to, family });
        };
        match send_now(&bound.socket, payload, to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // A full send buffer is congestion; UDP's answer is loss, not back-pressure.
                self.dropped += 1;
                tracing::debug!(%to, len = payload.len(), dropped = self.dropped, "send buffer full; datagram dropped");
                Ok(())
            }
            Err(e) => Err(SendError::Io {
                to,
                reason: e.to_string(),
            }),
        }
    }

    /// Receives one datagram from whichever socket has one, into `buf`.
    pub(crate) async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv(cx, buf)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        let count = self.bound.len();
        for i in 0..count {
            let idx = (self.next_poll + i) % count;
            let mut read = ReadBuf::new(&mut *buf);
            if let Poll::Ready(result) = self.bound[idx].socket.poll_recv_from(cx, &mut read) {
                self.next_poll = (idx + 1) % count;
                return Poll::Ready(result.map(|from| (read.filled().len(), from)));
            }
        }
        // Every socket registered the waker (or there are none, and only other branches can wake).
        Poll::Pending
    }
}

/// One `sendto` on the non-blocking socket, straight to the OS.
///
/// Not `UdpSocket::try_send_to`: that consults tokio's readiness cache and reports `WouldBlock`
/// without trying until the reactor has seen the socket writable, which a freshly bound socket
/// has not (sends from `on_start` would all be "dropped"). Sends never wait for writability, so
/// bypassing the cache loses nothing: `WouldBlock` here means the send buffer really is full.
fn send_now(socket: &UdpSocket, payload: &[u8], to: SocketAddr) -> io::Result<()> {
    let to = SockAddr::from(to);
    loop {
        match SockRef::from(socket).send_to(payload, &to) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result.map(drop),
        }
    }
}

/// Creates and binds one non-blocking UDP socket for `addr`.
fn bind_one(addr: SocketAddr) -> io::Result<UdpSocket> {
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
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
