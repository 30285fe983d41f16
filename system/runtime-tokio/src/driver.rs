//! The event loop that runs one actor on its [`RealEnv`].

use std::future::pending;
use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use runtime::{Actor, Clock};
use tokio::sync::watch;

use crate::RealEnv;

/// The receive buffer per message: one byte more than any UDP payload, so nothing is ever
/// truncated (a GRO batch fills at most this much too).
pub const RECV_BUFFER_BYTES: usize = 65_536;

/// The most datagrams handed over as one group: `more_datagrams_follow` holds within it, and
/// what the actor sends leaves at its end. A QUIC receiver acknowledges once per group: at 32
/// (about one GRO run) STOQ took 3 % more CPU per GiB than raw quinn and moved 0.92-0.94 of its
/// bytes; at 128, 4-8 % less CPU and 0.98-1.06 of the bytes (`stoq bench --case
/// one_connection`, three runs each, interleaved); 512 was no better. Both drivers use it.
pub(crate) const HAND_OVER_GROUP: usize = 128;

/// Receive batches taken back to back after a wake before the loop waits again.
const DRAIN_ROUNDS_MAX: usize = 16;

/// What a driver did before it was shut down.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams handed to the actor (`on_datagram_owned`).
    pub datagrams_received: u64,
    /// Timers handed to `on_timer`.
    pub timers_fired: u64,
    /// Receive errors reported by the OS (logged and skipped).
    pub receive_errors: u64,
    /// Datagrams dropped because the send queue was full or the OS refused them.
    pub sends_dropped: u64,
    /// Times a send found the socket's send buffer full and waited for room.
    pub send_waits: u64,
    /// io_uring driver only: times a socket's multishot receive ended (every receive buffer
    /// taken, mostly) and was armed again; what arrived meanwhile waited in the socket.
    pub receives_rearmed: u64,
}

/// One thing the loop woke up for.
enum Wake {
    Shutdown { sender_gone: bool },
    Datagrams(io::Result<()>),
    Timer,
}

/// Runs `actor` on `env` until `shutdown` holds `true` or its sender is dropped.
///
/// Calls `on_start` first, then one event per iteration: a batch of datagrams from one of the
/// node's sockets (each handed to `on_datagram_owned` in turn), or the earliest due timer. What the
/// actor sends during a callback is written after it returns (segmented sends in one system
/// call), waiting for the socket if its send buffer is full. Both waits are raced fairly (tokio's `select!` starts from
/// a random branch), so a flood of datagrams cannot starve timers nor a stream of past-due timers
/// starve the sockets. Timers due at the same instant fire in the order they were set. The
/// actor's callbacks run on the calling task: a callback that blocks stalls this node (and, on a
/// current-thread runtime, every node).
pub async fn drive<A: Actor + ?Sized>(
    actor: &mut A,
    env: &mut RealEnv,
    shutdown: &mut watch::Receiver<bool>,
) -> NodeStats {
    let mut stats = NodeStats::default();
    let mut batch: Vec<(SocketAddr, BytesMut)> = Vec::new();
    actor.on_start(env);
    env.sockets.flush().await;
    loop {
        if *shutdown.borrow_and_update() {
            break;
        }
        let next = env.timers.next_deadline();
        // A due timer skips tokio's timer wheel, whose millisecond ticks would delay a timer set
        // in the past by up to a tick instead of firing it right after the call that set it.
        let due_now = next.is_some_and(|at| at <= env.now());
        let deadline = next.map(|at| env.clock.deadline(at));
        let wake = {
            let timer = async {
                match deadline {
                    // Ready at once, yet counted against the task's coop budget, so an actor
                    // that keeps setting past timers still yields to the other nodes' tasks.
                    _ if due_now => tokio::task::coop::consume_budget().await,
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => pending().await,
                }
            };
            tokio::select! {
                changed = shutdown.changed() => Wake::Shutdown { sender_gone: changed.is_err() },
                received = env.sockets.recv(&mut batch) => Wake::Datagrams(received),
                () = timer => Wake::Timer,
            }
        };
        match wake {
            Wake::Shutdown { sender_gone: true } => break,
            // The loop head reads the new value.
            Wake::Shutdown { sender_gone: false } => {}
            Wake::Datagrams(Ok(())) => {
                // Under load, keep reading while the sockets have more (firing timers that fall
                // due meanwhile) rather than paying a full wait per batch; bounded, so the other
                // branches and tasks still get their turn.
                for round in 0..=DRAIN_ROUNDS_MAX {
                    if round > 0 {
                        // One due timer per round: an actor that keeps setting past-due timers
                        // must not keep this loop from the sockets (or the other tasks).
                        if let Some(token) = env.timers.pop_due(env.now()) {
                            stats.timers_fired += 1;
                            actor.on_timer(env, token);
                            env.sockets.flush().await;
                        }
                        match env.sockets.try_recv(&mut batch) {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(e) => {
                                stats.receive_errors += 1;
                                tracing::debug!(node = env.node(), error = %e, "receive failed; skipped");
                                break;
                            }
                        }
                    }
                    let count = batch.len();
                    for (i, (from, payload)) in batch.drain(..).enumerate() {
                        stats.datagrams_received += 1;
                        // "More follow" holds within groups of HAND_OVER_GROUP, so an actor
                        // deferring per-batch work (a QUIC receiver's acknowledgements) never
                        // holds it back behind a whole GRO-sized batch.
                        let group_ends = env.hand_over(i, count, HAND_OVER_GROUP);
                        actor.on_datagram_owned(env, from, payload);
                        // What a group's end produced (acknowledgements, above all) leaves now,
                        // not after the rest of a long batch.
                        if group_ends {
                            env.sockets.flush().await;
                        }
                    }
                    env.handed_over();
                }
            }
            Wake::Datagrams(Err(e)) => {
                stats.receive_errors += 1;
                tracing::debug!(node = env.node(), error = %e, "receive failed; skipped");
                // Let other tasks run in case the error repeats at once.
                tokio::task::yield_now().await;
            }
            Wake::Timer => {
                // The sleep never ends before its deadline, but re-checking costs nothing and
                // keeps "a timer fires no earlier than `at`" true by construction.
                if let Some(token) = env.timers.pop_due(env.now()) {
                    stats.timers_fired += 1;
                    actor.on_timer(env, token);
                    env.sockets.flush().await;
                }
            }
        }
    }
    stats.sends_dropped = env.sends_dropped();
    stats.send_waits = env.sockets.waits();
    stats
}
