//! The event loop that runs one actor on its [`RealEnv`].

use std::future::pending;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use runtime::{Actor, Clock};
use tokio::sync::watch;

use crate::RealEnv;

/// The receive buffer: one byte more than any UDP payload, so nothing is ever truncated.
pub const RECV_BUFFER_BYTES: usize = 65_536;

/// What a driver did before it was shut down.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams handed to `on_datagram`.
    pub datagrams_received: u64,
    /// Timers handed to `on_timer`.
    pub timers_fired: u64,
    /// Receive errors reported by the OS (logged and skipped).
    pub receive_errors: u64,
    /// Datagrams dropped because a send buffer was full.
    pub sends_dropped: u64,
}

/// One thing the loop woke up for.
enum Wake {
    Shutdown { sender_gone: bool },
    Datagram(io::Result<(usize, SocketAddr)>),
    Timer,
}

/// Runs `actor` on `env` until `shutdown` holds `true` or its sender is dropped.
///
/// Calls `on_start` first, then one event per iteration: a datagram from any of the node's
/// sockets, or the earliest due timer. Both waits are raced fairly (tokio's `select!` starts from
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
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
    actor.on_start(env);
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
                received = env.sockets.recv(&mut buf) => Wake::Datagram(received),
                () = timer => Wake::Timer,
            }
        };
        match wake {
            Wake::Shutdown { sender_gone: true } => break,
            // The loop head reads the new value.
            Wake::Shutdown { sender_gone: false } => {}
            Wake::Datagram(Ok((len, from))) => {
                stats.datagrams_received += 1;
                actor.on_datagram(env, from, Bytes::copy_from_slice(&buf[..len]));
            }
            Wake::Datagram(Err(e)) => {
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
                }
            }
        }
    }
    stats.sends_dropped = env.sends_dropped();
    stats
}
