//! An io_uring event loop for one node: the option measured against the default driver.
//!
//! The default driver ([`crate::drive`]) waits in tokio's reactor (epoll) and then makes one
//! system call per receive batch and per send. This one keeps `RECV_SLOTS` receives posted on
//! every socket and submits sends as ring entries, so one `io_uring_enter` both submits the
//! sends a callback produced and waits for the next completions (or the next timer). Sends keep
//! their GSO segmentation (a `UDP_SEGMENT` control message); a receive may carry a GRO run of
//! datagrams, split at the size its `UDP_GRO` control message gives. The actor sees the same contract: `more_datagrams_follow` holds within groups of
//! completions, sends leave after each group, one due timer fires per turn.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use io_uring::{opcode, types, IoUring};
use runtime::{Actor, Clock};
use socket2::SockAddr;
use tokio::sync::watch;

use crate::{NodeStats, RealEnv};

/// Receives kept posted per socket.
pub const RECV_SLOTS: usize = 64;
/// Sends in flight at once; more wait for completions.
pub const SEND_SLOTS: usize = 128;
/// Longest wait without checking for shutdown.
const WAIT_MAX: Duration = Duration::from_millis(50);
/// Receive buffer per slot: any UDP payload.
const RECV_BYTES: usize = 65_536;
/// Datagrams delivered before sends are submitted and `more_datagrams_follow` turns false.
const GROUP: usize = 32;
/// `user_data` bit marking a send completion.
const SEND_BIT: u64 = 1 << 63;

/// A posted receive: buffer, address storage and the header pointing at them (boxed, so the
/// kernel's pointers stay valid while it is in flight).
struct RecvSlot {
    socket: usize,
    buf: Box<[u8]>,
    iov: libc::iovec,
    addr: libc::sockaddr_storage,
    control: [u64; 8],
    msg: libc::msghdr,
}

/// A send in flight: the payload and destination are kept alive until it completes.
struct SendSlot {
    _payload: Bytes,
    _to: SockAddr,
    iov: libc::iovec,
    control: [u64; 4],
    msg: libc::msghdr,
}

/// Runs `actor` on `env` with io_uring until `shutdown` holds `true` or its sender is dropped.
/// Must be called on a thread inside a tokio runtime context only for the env's sockets'
/// creation; the loop itself never touches tokio.
pub fn drive_uring<A: Actor + ?Sized>(
    actor: &mut A,
    env: &mut RealEnv,
    shutdown: &watch::Receiver<bool>,
) -> io::Result<NodeStats> {
    let fds = env.sockets.raw_fds();
    // io_uring honours O_NONBLOCK (a receive would complete at once with EAGAIN instead of
    // waiting in the ring); the ring does the waiting, so the sockets block.
    for &fd in &fds {
        // SAFETY: plain fcntl calls on descriptors this env owns for its whole life.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: as above; only the O_NONBLOCK bit of the flags just read changes.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // GRO stays on (quinn-udp enabled it): each receive may carry a run of datagrams,
        // split at the size its control message gives.
    }
    let mut ring = new_ring(((RECV_SLOTS * fds.len() + SEND_SLOTS) as u32).next_power_of_two())?;
    let mut recv: Vec<Box<RecvSlot>> = Vec::with_capacity(RECV_SLOTS * fds.len());
    for socket in 0..fds.len() {
        for _ in 0..RECV_SLOTS {
            recv.push(new_recv_slot(socket));
        }
    }
    let mut sends: Vec<Option<Box<SendSlot>>> = (0..SEND_SLOTS).map(|_| None).collect();
    let mut in_flight = 0usize;
    for (i, slot) in recv.iter_mut().enumerate() {
        post_recv(&mut ring, fds[slot.socket], slot, i as u64)?;
    }
    let mut stats = NodeStats::default();
    actor.on_start(env);
    let mut batch: Vec<(SocketAddr, BytesMut)> = Vec::new();
    let mut received: Vec<(usize, i32)> = Vec::new();
    loop {
        if *shutdown.borrow() || shutdown.has_changed().is_err() {
            break;
        }
        if let Some(token) = env.timers.pop_due(env.now()) {
            stats.timers_fired += 1;
            actor.on_timer(env, token);
        }
        queue_sends(&mut ring, env, &fds, &mut sends, &mut in_flight, &mut received)?;
        let wait = match env.timers.next_deadline() {
            Some(at) => at.saturating_since(env.now()).min(WAIT_MAX),
            None => WAIT_MAX,
        };
        let ts = types::Timespec::from(wait);
        let args = types::SubmitArgs::new().timespec(&ts);
        let want = if wait.is_zero() { 0 } else { 1 };
        match ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => return Err(e),
        }
        reap(&mut ring, env, &mut sends, &mut in_flight, &mut received);
        let mut repost = Vec::with_capacity(received.len());
        for (index, result) in received.drain(..) {
            let slot = &mut recv[index];
            if result >= 0 {
                let len = result as usize;
                // SAFETY: the kernel filled `msg_namelen` bytes of the storage it was given.
                let from = unsafe { SockAddr::new(slot.addr, slot.msg.msg_namelen) }.as_socket();
                if let Some(from) = from {
                    let stride = gro_stride(&slot.msg).unwrap_or(len).max(1);
                    // One copy per receive, its datagrams views of it (as the default driver).
                    let mut run = BytesMut::from(&slot.buf[..len]);
                    while !run.is_empty() {
                        let datagram = run.split_to(stride.min(run.len()));
                        batch.push((from, datagram));
                    }
                }
            } else {
                stats.receive_errors += 1;
            }
            repost.push(index);
        }
        for index in repost {
            let slot = &mut recv[index];
            post_recv(&mut ring, fds[slot.socket], slot, index as u64)?;
        }
        let count = batch.len();
        for (i, (from, payload)) in batch.drain(..).enumerate() {
            stats.datagrams_received += 1;
            if i % GROUP == 0 {
                env.freeze_clocks();
            }
            let group_ends = (i + 1) % GROUP == 0;
            env.batch_remaining = if group_ends { 0 } else { count - i - 1 };
            actor.on_datagram_owned(env, from, payload);
            if env.batch_remaining == 0 {
                queue_sends(&mut ring, env, &fds, &mut sends, &mut in_flight, &mut received)?;
                ring.submit()?;
            }
        }
        env.batch_remaining = 0;
        env.thaw_clocks();
    }
    stats.sends_dropped = env.sends_dropped();
    Ok(stats)
}

/// A ring whose completions interrupt nobody: by default the kernel finishes a receive that
/// became ready (a datagram arriving, on the sending thread's softirq) by interrupting this
/// thread with task work (an IPI even while it runs user code), which cost more than a third of
/// the loop's time under a bulk transfer. With deferred task work the kernel keeps it until this
/// thread next enters the ring to wait, which it does every turn; only this thread submits.
/// Kernels before 6.1 refuse the flags, and get a plain ring.
fn new_ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
        .or_else(|e| {
            tracing::debug!(error = %e, "io_uring without deferred task work");
            IoUring::new(entries)
        })
}

fn new_recv_slot(socket: usize) -> Box<RecvSlot> {
    // SAFETY: all-zero is a valid sockaddr_storage and msghdr (null pointers, zero lengths);
    // the pointers are set by `post_recv` before the kernel sees them.
    let mut slot = Box::new(RecvSlot {
        socket,
        buf: vec![0u8; RECV_BYTES].into_boxed_slice(),
        iov: libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        },
        // SAFETY: sockaddr_storage is plain data for which all-zero bytes are a valid value.
        addr: unsafe { zeroed() },
        control: [0; 8],
        // SAFETY: msghdr is plain data; a zeroed one (null pointers, zero lengths) is valid and
        // is filled in by `post_recv` before the kernel reads it.
        msg: unsafe { zeroed() },
    });
    slot.iov.iov_base = slot.buf.as_mut_ptr().cast();
    slot.iov.iov_len = slot.buf.len();
    slot
}

/// The datagram size of a GRO batch, from the receive's `UDP_GRO` control message.
fn gro_stride(msg: &libc::msghdr) -> Option<usize> {
    // SAFETY: walks the control messages the kernel wrote into the buffer `msg` points at,
    // within `msg_controllen`, with libc's own macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return usize::try_from(size).ok();
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

fn post_recv(ring: &mut IoUring, fd: RawFd, slot: &mut RecvSlot, data: u64) -> io::Result<()> {
    slot.msg.msg_name = (&mut slot.addr as *mut libc::sockaddr_storage).cast();
    slot.msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    slot.msg.msg_iov = &mut slot.iov;
    slot.msg.msg_iovlen = 1;
    slot.msg.msg_control = slot.control.as_mut_ptr().cast();
    slot.msg.msg_controllen = size_of::<[u64; 8]>();
    slot.msg.msg_flags = 0;
    let entry = opcode::RecvMsg::new(types::Fd(fd), &mut slot.msg)
        .build()
        .user_data(data);
    push(ring, &entry)
}

fn push(ring: &mut IoUring, entry: &io_uring::squeue::Entry) -> io::Result<()> {
    loop {
        // SAFETY: every pointer in the entry refers to a boxed slot that outlives the operation
        // (receive slots live for the whole loop; send slots until their completion).
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        ring.submit()?;
    }
}

/// Takes every completion: sends free their slot (a failed one is counted as dropped);
/// receives are handed back as (slot, result).
fn reap(
    ring: &mut IoUring,
    env: &mut RealEnv,
    sends: &mut [Option<Box<SendSlot>>],
    in_flight: &mut usize,
    received: &mut Vec<(usize, i32)>,
) {
    for cqe in ring.completion() {
        let data = cqe.user_data();
        if data & SEND_BIT != 0 {
            sends[(data & !SEND_BIT) as usize] = None;
            *in_flight -= 1;
            if cqe.result() < 0 {
                env.sockets.count_dropped();
            }
        } else {
            received.push((data as usize, cqe.result()));
        }
    }
}

/// Moves queued datagrams into send entries while slots are free.
fn queue_sends(
    ring: &mut IoUring,
    env: &mut RealEnv,
    fds: &[RawFd],
    sends: &mut [Option<Box<SendSlot>>],
    in_flight: &mut usize,
    received: &mut Vec<(usize, i32)>,
) -> io::Result<()> {
    while env.sockets.has_queued() {
        if *in_flight == sends.len() {
            // Every slot busy: wait for completions (a full send buffer, as a blocking socket
            // would wait); receives that complete meanwhile are kept for the caller.
            ring.submit_and_wait(1)?;
            reap(ring, env, sends, in_flight, received);
            continue;
        }
        let Some((socket, to, payload, segment)) = env.sockets.pop_queued() else {
            break;
        };
        let index = sends
            .iter()
            .position(Option::is_none)
            .expect("a free slot: in_flight < len");
        let to = SockAddr::from(to);
        // SAFETY: all-zero is a valid msghdr; the pointers are set below.
        let mut slot = Box::new(SendSlot {
            iov: libc::iovec {
                iov_base: payload.as_ptr() as *mut libc::c_void,
                iov_len: payload.len(),
            },
            _payload: payload,
            _to: to,
            control: [0; 4],
            // SAFETY: msghdr is plain data; a zeroed one is valid and is filled in below before
            // the kernel reads it.
            msg: unsafe { zeroed() },
        });
        slot.msg.msg_name = slot._to.as_ptr() as *mut libc::c_void;
        slot.msg.msg_namelen = slot._to.len();
        slot.msg.msg_iov = &mut slot.iov;
        slot.msg.msg_iovlen = 1;
        if let Some(segment) = segment {
            // SAFETY: CMSG_SPACE is arithmetic on its argument; it reads no memory.
            let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
            slot.msg.msg_control = slot.control.as_mut_ptr().cast();
            slot.msg.msg_controllen = space;
            // SAFETY: the control buffer (32 bytes, 8-aligned) holds one u16 control message.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&slot.msg);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment as u16);
            }
        }
        let entry = opcode::SendMsg::new(types::Fd(fds[socket]), &slot.msg)
            .build()
            .user_data(SEND_BIT | index as u64);
        sends[index] = Some(slot);
        *in_flight += 1;
        push(ring, &entry)?;
    }
    Ok(())
}
