//! An io_uring event loop for one node: the option measured against the default driver.
//!
//! The default driver ([`crate::drive`]) waits in tokio's reactor (epoll) and then makes one
//! system call per receive batch and per send. This one keeps one multishot receive armed on
//! every socket, which fills buffers from a provided buffer ring ([`buffers`]) message after
//! message without new submissions, and submits sends as ring entries from slots allocated once,
//! so one `io_uring_enter` both submits the sends a callback produced and waits for the next
//! completions (or the next timer). Task work is deferred to those waits, so a completion never
//! interrupts the thread. Sends keep their GSO segmentation (a `UDP_SEGMENT` control message);
//! a receive may carry a GRO run of datagrams, split at the size its `UDP_GRO` control message
//! gives. The actor sees the same contract: `more_datagrams_follow` holds within groups of
//! completions, sends leave after each group, one due timer fires per turn.
//!
//! Needs Linux 6.1 or later (multishot `recvmsg`, provided buffer rings, deferred task work);
//! on an older kernel the driver refuses to start, naming the failed call.

mod buffers;

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

/// Receive buffers in the provided ring, shared by the node's sockets: messages (each a datagram
/// or a GRO run) received and not yet copied out. When all are taken the kernel keeps what
/// arrives in the socket's buffer until the driver gives some back.
pub const RECV_BUFFERS: u16 = 64;
/// Sends in flight at once; more wait for completions.
pub const SEND_SLOTS: usize = 128;
/// Longest wait without checking for shutdown.
const WAIT_MAX: Duration = Duration::from_millis(50);
/// Receive buffer size: the kernel's header, the sender's address, the control messages and any
/// UDP payload (or GRO run).
const RECV_BYTES: usize = RECV_HEADER_BYTES + NAME_BYTES + CONTROL_BYTES + 65_536;
/// The kernel's header before each received message (`struct io_uring_recvmsg_out`).
const RECV_HEADER_BYTES: usize = 16;
/// Room for the sender's address in a received message.
const NAME_BYTES: usize = size_of::<libc::sockaddr_storage>();
/// Room for control messages (the `UDP_GRO` segment size) in a received message.
const CONTROL_BYTES: usize = 64;
/// The provided buffer group the receives take from.
const BUFFER_GROUP: u16 = 0;
/// Datagrams delivered before sends are submitted and `more_datagrams_follow` turns false.
const GROUP: usize = 32;
/// `user_data` bit marking a send completion.
const SEND_BIT: u64 = 1 << 63;
/// `user_data` of the shutdown's cancellation.
const CANCEL_DATA: u64 = u64::MAX;

/// A completion of a socket's multishot receive: the socket, the result and the flags.
#[derive(Clone, Copy, Debug)]
struct Received {
    socket: usize,
    result: i32,
    flags: u32,
}

/// A send's header, boxed so the kernel's pointers stay valid while it is in flight; the payload
/// and destination are kept until it completes, then the slot is reused.
struct SendSlot {
    payload: Option<Bytes>,
    to: SockAddr,
    iov: libc::iovec,
    control: [u64; 4],
    msg: libc::msghdr,
}

/// Every send slot, allocated once (a boxed slice never moves, so the kernel's pointers into a
/// slot stay valid while its send is in flight), and which are free.
struct SendSlots {
    slots: Box<[SendSlot]>,
    free: Vec<usize>,
}

impl SendSlots {
    fn new() -> SendSlots {
        let unspecified = SockAddr::from(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)));
        let slots = (0..SEND_SLOTS)
            .map(|_| {
                SendSlot {
                    payload: None,
                    to: unspecified.clone(),
                    iov: libc::iovec {
                        iov_base: std::ptr::null_mut(),
                        iov_len: 0,
                    },
                    control: [0; 4],
                    // SAFETY: msghdr is plain data; a zeroed one (null pointers, zero lengths) is
                    // valid and is filled in by `queue_sends` before the kernel reads it.
                    msg: unsafe { zeroed() },
                }
            })
            .collect();
        SendSlots {
            slots,
            free: (0..SEND_SLOTS).rev().collect(),
        }
    }

    fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Slot `index`'s send completed: its payload is let go and the slot is free again.
    fn release(&mut self, index: usize) {
        assert!(
            self.slots[index].payload.take().is_some(),
            "send slot {index} completed twice"
        );
        self.free.push(index);
    }
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
    let mut ring = new_ring(((fds.len() + SEND_SLOTS) as u32 + 1).next_power_of_two())?;
    let mut buffers = buffers::BufferRing::register(&ring, BUFFER_GROUP, RECV_BUFFERS, RECV_BYTES)?;
    // What each multishot receive asks for per message: the sender's address and the control
    // messages (the kernel reads the lengths; the pointers stay null).
    // SAFETY: msghdr is plain data; zeroed is valid (null pointers, zero lengths).
    let mut template: Box<libc::msghdr> = Box::new(unsafe { zeroed() });
    template.msg_namelen = NAME_BYTES as libc::socklen_t;
    template.msg_controllen = CONTROL_BYTES;
    let mut armed = vec![false; fds.len()];
    for socket in 0..fds.len() {
        arm_receive(&mut ring, fds[socket], socket, &template)?;
        armed[socket] = true;
    }
    let mut sends = SendSlots::new();
    let mut stats = NodeStats::default();
    actor.on_start(env);
    let mut batch: Vec<(SocketAddr, BytesMut)> = Vec::new();
    let mut received: Vec<Received> = Vec::new();
    loop {
        if *shutdown.borrow() || shutdown.has_changed().is_err() {
            break;
        }
        if let Some(token) = env.timers.pop_due(env.now()) {
            stats.timers_fired += 1;
            actor.on_timer(env, token);
        }
        queue_sends(&mut ring, env, &fds, &mut sends, &mut received)?;
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
        reap(&mut ring, env, &mut sends, &mut received);
        for r in received.drain(..) {
            match take_message(&mut buffers, &template, r) {
                Ok(Some((from, run, stride))) => split_run(&mut batch, from, run, stride),
                Ok(None) => {}
                Err(e) => {
                    stats.receive_errors += 1;
                    tracing::debug!(node = env.node(), error = %e, "receive failed; skipped");
                }
            }
            // A multishot receive ends on an error or when no buffer was free (the datagram
            // waits in the socket): armed again, it takes up where it stopped.
            if !io_uring::cqueue::more(r.flags) {
                stats.receives_rearmed += 1;
                arm_receive(&mut ring, fds[r.socket], r.socket, &template)?;
            }
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
                queue_sends(&mut ring, env, &fds, &mut sends, &mut received)?;
                // A group that sent nothing costs no system call.
                if !ring.submission().is_empty() {
                    ring.submit()?;
                }
            }
        }
        env.batch_remaining = 0;
        env.thaw_clocks();
    }
    // A receive whose last completion was reaped but not yet handled is not armed any more.
    for r in received.drain(..) {
        armed[r.socket] = io_uring::cqueue::more(r.flags);
    }
    quiesce(&mut ring, &mut armed, &mut sends)?;
    // Nothing can fill a buffer now: the ring may let the group go before the memory goes.
    let _ = ring.submitter().unregister_buf_ring(BUFFER_GROUP);
    drop(buffers);
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

/// The datagram size of a GRO run, from the `UDP_GRO` control message among `control`.
fn gro_stride_in(control: &[u8]) -> Option<usize> {
    // A header pointing at the control bytes, for libc's walking macros.
    // SAFETY: msghdr is plain data; zeroed is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_control = control.as_ptr().cast_mut().cast();
    msg.msg_controllen = control.len();
    gro_stride(&msg)
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

/// Arms `socket`'s multishot receive: one entry, a completion per message until it ends.
fn arm_receive(ring: &mut IoUring, fd: RawFd, socket: usize, template: &libc::msghdr) -> io::Result<()> {
    let entry = opcode::RecvMsgMulti::new(types::Fd(fd), template, BUFFER_GROUP)
        .build()
        .user_data(socket as u64);
    push(ring, &entry)
}

/// The message a receive completion carries, copied out of its buffer (given back at once):
/// sender, bytes and GRO segment size. `None` when the completion carries no message (no free
/// buffer, or a cancelled receive).
fn take_message(
    buffers: &mut buffers::BufferRing,
    template: &libc::msghdr,
    r: Received,
) -> io::Result<Option<(SocketAddr, BytesMut, usize)>> {
    if r.result < 0 {
        return match -r.result {
            libc::ENOBUFS | libc::ECANCELED => Ok(None),
            errno => Err(io::Error::from_raw_os_error(errno)),
        };
    }
    let Some(bid) = io_uring::cqueue::buffer_select(r.flags) else {
        return Err(io::Error::other("a receive completion without its buffer"));
    };
    let taken = (|| {
        let filled = buffers
            .filled(bid, r.result as usize)
            .ok_or_else(|| io::Error::other("a receive completion naming no buffer of the ring"))?;
        let message = io_uring::types::RecvMsgOut::parse(filled, template)
            .map_err(|()| io::Error::other("a received message shorter than its header"))?;
        if message.is_payload_truncated() || message.is_name_data_truncated() {
            return Err(io::Error::other("a received message larger than its buffer"));
        }
        let name = message.name_data();
        // SAFETY: sockaddr_storage is plain data; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = name.len().min(NAME_BYTES);
        // SAFETY: `len` bytes fit both the name data and the storage.
        unsafe { std::ptr::copy_nonoverlapping(name.as_ptr(), (&raw mut storage).cast::<u8>(), len) };
        // SAFETY: the storage holds the address the kernel wrote, `len` bytes of it.
        let from = unsafe { SockAddr::new(storage, len as libc::socklen_t) }.as_socket();
        let payload = message.payload_data();
        let stride = gro_stride_in(message.control_data()).unwrap_or(payload.len()).max(1);
        Ok(from.map(|from| (from, BytesMut::from(payload), stride)))
    })();
    buffers.give_back(bid);
    taken
}

/// Hands a received run on as datagrams, each a view of one copy (as the default driver).
fn split_run(batch: &mut Vec<(SocketAddr, BytesMut)>, from: SocketAddr, mut run: BytesMut, stride: usize) {
    while !run.is_empty() {
        let datagram = run.split_to(stride.min(run.len()));
        batch.push((from, datagram));
    }
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

/// Cancels every operation in flight and waits until each has completed: the receive buffers
/// and send payloads the kernel may still write into or read from are freed only after.
/// `armed` says which sockets' receives are still armed.
fn quiesce(ring: &mut IoUring, armed: &mut [bool], sends: &mut SendSlots) -> io::Result<()> {
    let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
        .build()
        .user_data(CANCEL_DATA);
    push(ring, &cancel)?;
    let mut cancel_done = false;
    while armed.iter().any(|a| *a) || sends.in_flight() > 0 || !cancel_done {
        ring.submit_and_wait(1)?;
        for cqe in ring.completion() {
            match cqe.user_data() {
                CANCEL_DATA => cancel_done = true,
                data if data & SEND_BIT != 0 => sends.release((data & !SEND_BIT) as usize),
                socket => {
                    if !io_uring::cqueue::more(cqe.flags()) {
                        armed[socket as usize] = false;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Takes every completion: sends free their slot (a failed one is counted as dropped);
/// receives are handed back as (slot, result).
fn reap(ring: &mut IoUring, env: &mut RealEnv, sends: &mut SendSlots, received: &mut Vec<Received>) {
    for cqe in ring.completion() {
        let data = cqe.user_data();
        if data == CANCEL_DATA {
            continue;
        }
        if data & SEND_BIT != 0 {
            sends.release((data & !SEND_BIT) as usize);
            if cqe.result() < 0 {
                env.sockets.count_dropped();
            }
        } else {
            received.push(Received {
                socket: data as usize,
                result: cqe.result(),
                flags: cqe.flags(),
            });
        }
    }
}

/// Moves queued datagrams into send entries while slots are free.
fn queue_sends(
    ring: &mut IoUring,
    env: &mut RealEnv,
    fds: &[RawFd],
    sends: &mut SendSlots,
    received: &mut Vec<Received>,
) -> io::Result<()> {
    while env.sockets.has_queued() {
        let Some(&index) = sends.free.last() else {
            // Every slot busy: wait for completions (a full send buffer, as a blocking socket
            // would wait); receives that complete meanwhile are kept for the caller.
            ring.submit_and_wait(1)?;
            reap(ring, env, sends, received);
            continue;
        };
        let Some((socket, to, payload, segment)) = env.sockets.pop_queued() else {
            break;
        };
        sends.free.pop();
        let slot = &mut sends.slots[index];
        slot.to = SockAddr::from(to);
        slot.iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        slot.payload = Some(payload);
        // SAFETY: all-zero is a valid msghdr; the pointers are set below.
        slot.msg = unsafe { zeroed() };
        slot.msg.msg_name = slot.to.as_ptr() as *mut libc::c_void;
        slot.msg.msg_namelen = slot.to.len();
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
        push(ring, &entry)?;
    }
    Ok(())
}
