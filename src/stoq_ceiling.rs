//! `testbed stoq ceiling`: what this machine's loopback carries for UDP with no QUIC and no
//! crypto, the figure STOQ's and quinn's rates are to be read against.
//!
//! One thread blasts runs of equal-size datagrams at another over `[::1]`, each run one
//! `sendmsg` with GSO (`UDP_SEGMENT`), through quinn-udp (the socket layer both QUIC stacks
//! use); the receiver takes batches of messages per `recvmmsg`, each possibly a GRO run. Nothing
//! paces the sender but the kernel's send buffer, so what the receiver cannot take is dropped
//! (counted as loss): the received rate is the most one receiving thread takes from loopback,
//! the sent rate the most one sending thread puts on it. Work the kernel does for the receiver
//! in softirq context on the sending thread counts against the sender.

use std::io::IoSliceMut;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use quinn::udp::{RecvMeta, Transmit, UdpSocketState, BATCH_SIZE};

use crate::stoq_bench::loopback_udp_socket;

/// Bytes of each datagram: what QUIC packets on this path carry (quinn's and STOQ's
/// full-size packets on `[::1]`), so the ceiling is in the same units as the stacks.
pub const DATAGRAM_BYTES: usize = 1452;
/// The largest UDP payload over IPv6: a GSO run may not exceed it.
const UDP_PAYLOAD_MAX: usize = 65_527;
/// Receive buffer per message: the largest UDP payload, or a GRO run of them.
const MESSAGE_BYTES: usize = 64 * 1024;
/// The receiver's end: nothing received for this long after the sender finished.
const QUIET: Duration = Duration::from_millis(200);

/// One blast's figures.
#[derive(Clone, Debug)]
pub struct Ceiling {
    /// Sends the kernel refused (nothing of them was sent).
    pub sends_failed: u64,
    /// Bytes handed to the kernel.
    pub sent_bytes: u64,
    /// Bytes the receiver took.
    pub received_bytes: u64,
    /// From the first send to the last send's return.
    pub send_time: Duration,
    /// From the first datagram received to the last.
    pub receive_time: Duration,
    /// Datagrams per `sendmsg`.
    pub segments: usize,
}

impl Ceiling {
    /// MiB/s handed to the kernel.
    pub fn sent_mib_s(&self) -> f64 {
        mib_s(self.sent_bytes, self.send_time)
    }

    /// MiB/s the receiver took.
    pub fn received_mib_s(&self) -> f64 {
        mib_s(self.received_bytes, self.receive_time)
    }

    /// The share of sent bytes never received.
    pub fn loss(&self) -> f64 {
        1.0 - self.received_bytes as f64 / self.sent_bytes.max(1) as f64
    }
}

fn mib_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / time.as_secs_f64().max(1e-9)
}

/// The most datagrams one send may carry: one UDP payload's worth.
pub const SEGMENTS_MAX: usize = UDP_PAYLOAD_MAX / DATAGRAM_BYTES;

/// Blasts `bytes` from one thread to another over `[::1]`, `segments` datagrams per send at
/// most (fewer if the kernel allows fewer), and measures both ends.
pub fn blast(bytes: u64, segments: usize) -> Result<Ceiling, String> {
    let io = |what: &'static str| move |e: std::io::Error| format!("{what}: {e}");
    let receiver = loopback_udp_socket().map_err(io("receiver socket"))?;
    receiver.set_read_timeout(Some(QUIET)).map_err(io("receiver timeout"))?;
    let to = receiver.local_addr().map_err(io("receiver address"))?;
    let receiver_state = UdpSocketState::new((&receiver).into()).map_err(io("receiver GRO"))?;
    let sender = loopback_udp_socket().map_err(io("sender socket"))?;
    let sender_state = UdpSocketState::new((&sender).into()).map_err(io("sender GSO"))?;
    // quinn-udp makes its sockets non-blocking; the blast wants the sender to wait for room
    // and the receiver to sleep (up to QUIET) rather than spin on a core the sender needs.
    receiver.set_nonblocking(false).map_err(io("receiver blocking"))?;
    sender.set_nonblocking(false).map_err(io("sender blocking"))?;
    // One send carries at most one UDP payload's worth (65,527 bytes over IPv6), whatever the
    // kernel's segment count allows; past it the send fails (quinn-udp drops it, as UDP would).
    let segments = sender_state.max_gso_segments().min(segments).clamp(1, SEGMENTS_MAX);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let receive = thread::spawn(move || -> Result<(u64, Duration), String> {
        let mut buf = vec![0u8; MESSAGE_BYTES * BATCH_SIZE];
        let mut metas = [RecvMeta::default(); BATCH_SIZE];
        let (mut first, mut last) = (None::<Instant>, None::<Instant>);
        let mut received = 0u64;
        loop {
            let mut slices = buf.chunks_mut(MESSAGE_BYTES).map(IoSliceMut::new);
            let mut iovs: [IoSliceMut<'_>; BATCH_SIZE] =
                std::array::from_fn(|_| slices.next().expect("the buffer holds BATCH_SIZE messages"));
            match receiver_state.recv((&receiver).into(), &mut iovs, &mut metas) {
                Ok(n) => {
                    let now = Instant::now();
                    first.get_or_insert(now);
                    last = Some(now);
                    received += metas[..n].iter().map(|m| m.len as u64).sum::<u64>();
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    // Quiet: over once the sender has finished.
                    if matches!(done_rx.try_recv(), Err(mpsc::TryRecvError::Disconnected)) {
                        break;
                    }
                }
                Err(e) => return Err(format!("receive: {e}")),
            }
        }
        match (first, last) {
            (Some(first), Some(last)) => Ok((received, last - first)),
            _ => Err("nothing was received".into()),
        }
    });
    let run = vec![0xa5u8; DATAGRAM_BYTES * segments];
    let mut sent = 0u64;
    // Bytes of sends the kernel refused: they count toward `bytes` so the blast ends.
    let mut refused = 0u64;
    let mut sends_failed = 0u64;
    let mut last_error = None;
    let start = Instant::now();
    while sent + refused < bytes {
        let n = (run.len() as u64).min(bytes - sent - refused) as usize;
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents: &run[..n],
            segment_size: (n > DATAGRAM_BYTES).then_some(DATAGRAM_BYTES),
            src_ip: None,
        };
        // A blocking socket: the send waits while the send buffer is full. A send the kernel
        // refuses moved nothing: counted, not added (quinn-udp's `send` would hide it).
        match sender_state.try_send((&sender).into(), &transmit) {
            Ok(()) => sent += n as u64,
            Err(e) => {
                sends_failed += 1;
                refused += n as u64;
                last_error = Some(e);
            }
        }
    }
    if sent == 0 {
        let why = last_error.map_or("nothing to send".to_string(), |e| e.to_string());
        return Err(format!("every send failed: {why}"));
    }
    let send_time = start.elapsed();
    drop(done_tx);
    let (received, receive_time) = receive.join().map_err(|_| "the receiver panicked".to_string())??;
    Ok(Ceiling {
        sends_failed,
        sent_bytes: sent,
        received_bytes: received,
        send_time,
        receive_time,
        segments,
    })
}
