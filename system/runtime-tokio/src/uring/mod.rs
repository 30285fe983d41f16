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
/// Room for control messages in a received message: quinn-udp asks for the packet's
/// destination, its traffic class and the `UDP_GRO` segment size (about 88 bytes); a
/// truncated one is refused rather than read without its segment size.
const CONTROL_BYTES: usize = 128;
/// Receives in a row that may end in an error before the driver gives up.
const RECEIVE_FAILURES_MAX: u32 = 64;
/// The provided buffer group the receives take from.
const BUFFER_GROUP: u16 = 0;
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

/// The ring and everything the kernel may read or write while operations are in flight: the
/// receive buffers, the receive template and the send slots. Dropping it, on any path (an
/// error, a panicking actor), first cancels what is in flight and waits for every completion,
/// so no memory the kernel can touch is freed before it is done with it.
struct Ring {
    ring: IoUring,
    buffers: Option<buffers::BufferRing>,
    /// What each multishot receive asks for per message: the sender's address and the control
    /// messages (the kernel reads the lengths; the pointers stay null).
    template: Option<Box<libc::msghdr>>,
    sends: Option<SendSlots>,
    /// Which sockets' multishot receives are armed.
    armed: Vec<bool>,
    /// Receive completions reaped and not yet handled.
    received: Vec<Received>,
}

impl Ring {
    fn new(sockets: usize) -> io::Result<Ring> {
        let ring = new_ring(((sockets + SEND_SLOTS) as u32 + 1).next_power_of_two())?;
        let buffers = buffers::BufferRing::register(&ring, BUFFER_GROUP, RECV_BUFFERS, RECV_BYTES)?;
        // SAFETY: msghdr is plain data; zeroed is valid (null pointers, zero lengths).
        let mut template: Box<libc::msghdr> = Box::new(unsafe { zeroed() });
        template.msg_namelen = NAME_BYTES as libc::socklen_t;
        template.msg_controllen = CONTROL_BYTES;
        Ok(Ring {
            ring,
            buffers: Some(buffers),
            template: Some(template),
            sends: Some(SendSlots::new()),
            armed: vec![false; sockets],
            received: Vec::new(),
        })
    }

    fn sends(&mut self) -> &mut SendSlots {
        self.sends.as_mut().expect("the slots live until the ring is dropped")
    }

    fn template(&self) -> &libc::msghdr {
        self.template
            .as_deref()
            .expect("the template lives until the ring is dropped")
    }

    /// Arms `socket`'s multishot receive: one entry, a completion per message until it ends.
    fn arm_receive(&mut self, fd: RawFd, socket: usize) -> io::Result<()> {
        let entry = opcode::RecvMsgMulti::new(types::Fd(fd), self.template(), BUFFER_GROUP)
            .build()
            .user_data(socket as u64);
        push(&mut self.ring, &entry)?;
        self.armed[socket] = true;
        Ok(())
    }

    /// Takes every completion: sends free their slot (a failed one is counted as dropped);
    /// receives are kept in `received`.
    fn reap(&mut self, env: &mut RealEnv) {
        let sends = self.sends.as_mut().expect("the slots live until the ring is dropped");
        for cqe in self.ring.completion() {
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
                if !io_uring::cqueue::more(cqe.flags()) {
                    self.armed[data as usize] = false;
                }
                self.received.push(Received {
                    socket: data as usize,
                    result: cqe.result(),
                    flags: cqe.flags(),
                });
            }
        }
    }

    /// Cancels every operation in flight and waits until each has completed.
    fn quiesce(&mut self) -> io::Result<()> {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(CANCEL_DATA);
        push(&mut self.ring, &cancel)?;
        let mut cancel_done = false;
        let Some(sends) = self.sends.as_mut() else {
            return Ok(());
        };
        while self.armed.iter().any(|a| *a) || sends.in_flight() > 0 || !cancel_done {
            retry_interrupted(|| self.ring.submit_and_wait(1))?;
            for cqe in self.ring.completion() {
                match cqe.user_data() {
                    CANCEL_DATA => cancel_done = true,
                    data if data & SEND_BIT != 0 => sends.release((data & !SEND_BIT) as usize),
                    socket => {
                        if !io_uring::cqueue::more(cqe.flags()) {
                            self.armed[socket as usize] = false;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if let Err(e) = self.quiesce() {
            // The kernel may still use them: leaking is the only safe end.
            tracing::error!(error = %e, "io_uring operations not drained at shutdown; their buffers are leaked");
            std::mem::forget(self.buffers.take());
            std::mem::forget(self.sends.take());
            std::mem::forget(self.template.take());
            return;
        }
        // Nothing can fill a buffer now: the group is let go before its memory is.
        let _ = self.ring.submitter().unregister_buf_ring(BUFFER_GROUP);
    }
}

/// Runs `f` again while the kernel says it was interrupted by a signal.
fn retry_interrupted<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
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
    let mut ring = Ring::new(fds.len())?;
    for (socket, &fd) in fds.iter().enumerate() {
        ring.arm_receive(fd, socket)?;
    }
    let mut stats = NodeStats::default();
    actor.on_start(env);
    let mut batch: Vec<(SocketAddr, BytesMut)> = Vec::new();
    let mut received: Vec<Received> = Vec::new();
    // Receives that ended in an error, in a row: a kernel that cannot run them fails every one
    // at once, and the loop would spin.
    let mut failed_in_a_row = 0;
    loop {
        if *shutdown.borrow() || shutdown.has_changed().is_err() {
            break;
        }
        if let Some(token) = env.timers.pop_due(env.now()) {
            stats.timers_fired += 1;
            actor.on_timer(env, token);
        }
        queue_sends(&mut ring, env, &fds)?;
        // Completions already in hand, or a timer due: look, do not wait.
        let wait = match env.timers.next_deadline() {
            _ if !ring.received.is_empty() => Duration::ZERO,
            Some(at) => at.saturating_since(env.now()).min(WAIT_MAX),
            None => WAIT_MAX,
        };
        let ts = types::Timespec::from(wait);
        let args = types::SubmitArgs::new().timespec(&ts);
        // Always with GETEVENTS (want 1): deferred task work, which fills the receive
        // buffers, runs only in such a call; a zero timeout returns at once.
        match ring.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => return Err(e),
        }
        ring.reap(env);
        std::mem::swap(&mut received, &mut ring.received);
        for r in received.drain(..) {
            let buffers = ring
                .buffers
                .as_mut()
                .expect("the buffers live until the ring is dropped");
            let template = ring
                .template
                .as_deref()
                .expect("the template lives until the ring is dropped");
            match take_message(buffers, template, r) {
                Ok(Some((from, run, stride))) => {
                    failed_in_a_row = 0;
                    split_run(&mut batch, from, run, stride);
                }
                Ok(None) => {}
                Err(e) => {
                    stats.receive_errors += 1;
                    tracing::debug!(node = env.node(), error = %e, "receive failed; skipped");
                }
            }
            // A multishot receive ends on an error or when no buffer was free (the datagram
            // waits in the socket): armed again, it takes up where it stopped.
            if !io_uring::cqueue::more(r.flags) {
                if r.result < 0 && r.result != -libc::ENOBUFS {
                    failed_in_a_row += 1;
                    if failed_in_a_row > RECEIVE_FAILURES_MAX {
                        return Err(io::Error::new(
                            io::ErrorKind::Unsupported,
                            format!(
                                "every io_uring receive fails ({}); multishot recvmsg needs Linux 6.0 or later",
                                io::Error::from_raw_os_error(-r.result)
                            ),
                        ));
                    }
                }
                stats.receives_rearmed += 1;
                ring.arm_receive(fds[r.socket], r.socket)?;
            }
        }
        let count = batch.len();
        for (i, (from, payload)) in batch.drain(..).enumerate() {
            stats.datagrams_received += 1;
            let group_ends = env.hand_over(i, count, crate::driver::HAND_OVER_GROUP);
            actor.on_datagram_owned(env, from, payload);
            if group_ends {
                queue_sends(&mut ring, env, &fds)?;
                // A group that sent nothing costs no system call.
                if !ring.ring.submission().is_empty() {
                    retry_interrupted(|| ring.ring.submit())?;
                }
            }
        }
        env.handed_over();
    }
    drop(ring);
    stats.sends_dropped = env.sends_dropped();
    Ok(stats)
}

/// A ring whose completions interrupt nobody: by default the kernel finishes a receive that
/// became ready (a datagram arriving, on the sending thread's softirq) by interrupting this
/// thread with task work (an IPI even while it runs user code), which cost more than a third of
/// the loop's time under a bulk transfer. With deferred task work the kernel keeps it until this
/// thread next enters the ring to wait, which it does every turn; only this thread submits.
/// Kernels before 6.1 refuse the flags, and the driver with them.
fn new_ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("io_uring with deferred task work (Linux 6.1 or later): {e}"),
            )
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
        if message.is_control_data_truncated() {
            return Err(io::Error::other(
                "a received message whose control messages were cut short",
            ));
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
        // SAFETY: every pointer in the entry refers to memory the `Ring` owns and keeps until
        // the operation completes (the receive template and buffers, a send's slot and payload).
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        retry_interrupted(|| ring.submit())?;
    }
}

/// Moves queued datagrams into send entries while slots are free.
fn queue_sends(ring: &mut Ring, env: &mut RealEnv, fds: &[RawFd]) -> io::Result<()> {
    while env.sockets.has_queued() {
        let Some(&index) = ring.sends().free.last() else {
            // Every slot busy: wait for completions (a full send buffer, as a blocking socket
            // would wait); receives that complete meanwhile are kept for the caller.
            retry_interrupted(|| ring.ring.submit_and_wait(1))?;
            ring.reap(env);
            continue;
        };
        let Some((socket, to, payload, segment)) = env.sockets.pop_queued() else {
            break;
        };
        let sends = ring.sends();
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
        push(&mut ring.ring, &entry)?;
    }
    Ok(())
}
