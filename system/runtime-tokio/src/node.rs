//! Running one node in this process until told to stop, e.g. for a `hypermesh node` command.

use std::net::SocketAddr;

use runtime::{Actor, Datagrams};
use tokio::sync::watch;

use crate::{drive, BackendError, NodeSpec, NodeStats, ProbeSender, RealEnv};

/// Runs node `node` on its own current-thread tokio runtime until `shutdown` holds `true` (or
/// its sender is dropped). Blocks the calling thread; signal shutdown from another thread or a
/// signal handler with `watch::Sender::send(true)`.
///
/// The sockets are bound before `factory` is called, so it receives the node's actual addresses
/// (with OS-chosen ports). Probes go to `tracing` and, if given, to `probes`.
pub fn run_node<F>(
    node: usize,
    spec: &NodeSpec,
    factory: F,
    mut shutdown: watch::Receiver<bool>,
    probes: Option<ProbeSender>,
) -> Result<NodeStats, BackendError>
where
    F: FnOnce(&[SocketAddr]) -> Box<dyn Actor + Send>,
{
    let runtime = crate::cluster::build_runtime()?;
    runtime.block_on(async move {
        let mut env = RealEnv::bind(node, spec)?;
        if let Some(sink) = probes {
            env = env.with_probe_sink(sink);
        }
        let mut actor = factory(env.local_addrs());
        Ok(drive(&mut *actor, &mut env, &mut shutdown).await)
    })
}

/// As [`run_node`], with the io_uring event loop ([`crate::drive_uring`]) instead of tokio's.
/// Blocks the calling thread until `shutdown` holds `true` (checked at least every 50 ms).
pub fn run_node_uring<F>(
    node: usize,
    spec: &NodeSpec,
    factory: F,
    shutdown: watch::Receiver<bool>,
    probes: Option<ProbeSender>,
) -> Result<NodeStats, BackendError>
where
    F: FnOnce(&[SocketAddr]) -> Box<dyn Actor + Send>,
{
    // The sockets are created as tokio sockets (the same binding code as the default driver);
    // the loop then does its own I/O on their descriptors and never polls tokio.
    let runtime = crate::cluster::build_runtime()?;
    let _context = runtime.enter();
    let mut env = RealEnv::bind(node, spec)?;
    if let Some(sink) = probes {
        env = env.with_probe_sink(sink);
    }
    let mut actor = factory(env.local_addrs());
    crate::drive_uring(&mut *actor, &mut env, &shutdown).map_err(|source| BackendError::Uring { source })
}
