//! [`LocalCluster`]: several nodes on real loopback sockets in one process, for tests and demos.

use std::any::Any;
use std::net::SocketAddr;
use std::time::Duration;

use runtime::{Actor, Datagrams};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinError, JoinSet};

use crate::{drive, BackendError, NodeSpec, NodeStats, ProbeRecord, RealEnv};

/// What a cluster run observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterOutcome {
    /// Every probe recorded, in the order the collector received them (each node's own probes
    /// are in that node's order; across nodes the order is only approximately real time).
    pub probes: Vec<ProbeRecord>,
    /// True if the run ended because `timeout` passed before `done` held.
    pub timed_out: bool,
    /// Every node's actual bound addresses, as handed to the factory.
    pub addrs: Vec<Vec<SocketAddr>>,
    /// Every node's driver statistics, by node index.
    pub stats: Vec<NodeStats>,
}

/// Runs a set of nodes on real sockets in this process until a condition on their probes holds.
///
/// All nodes share one current-thread tokio runtime, so a run is single-threaded like the
/// simulator, though not deterministic: the OS schedules the packets.
#[derive(Debug)]
pub struct LocalCluster;

impl LocalCluster {
    /// Binds every node of `specs`, builds each actor with `factory(node, &addrs)` (where
    /// `addrs[i]` are node `i`'s actual bound addresses, so actors can address their peers), runs
    /// them all, and stops them once `done(&probes_so_far)` returns true or `timeout` has passed.
    ///
    /// `done` is called once before any node runs and then after each batch of probes arrives.
    /// Blocks the calling thread; it builds its own runtime, so call it from plain sync code.
    pub fn run<F, D>(
        specs: Vec<NodeSpec>,
        mut factory: F,
        timeout: Duration,
        mut done: D,
    ) -> Result<ClusterOutcome, BackendError>
    where
        F: FnMut(usize, &[Vec<SocketAddr>]) -> Box<dyn Actor + Send>,
        D: FnMut(&[ProbeRecord]) -> bool,
    {
        let runtime = build_runtime()?;
        runtime.block_on(async move {
            let (probe_tx, mut probe_rx) = mpsc::unbounded_channel();
            let mut envs = Vec::with_capacity(specs.len());
            for (node, spec) in specs.iter().enumerate() {
                envs.push(RealEnv::bind(node, spec)?.with_probe_sink(probe_tx.clone()));
            }
            // Only the nodes hold senders now, so the channel closes when they are all gone.
            drop(probe_tx);
            let addrs: Vec<Vec<SocketAddr>> = envs.iter().map(|env| env.local_addrs().to_vec()).collect();
            let actors: Vec<_> = (0..envs.len()).map(|node| factory(node, &addrs)).collect();

            let (stop_tx, stop_rx) = watch::channel(false);
            let mut tasks = JoinSet::new();
            let mut task_nodes: Vec<(Id, usize)> = Vec::with_capacity(envs.len());
            for (node, (mut actor, mut env)) in actors.into_iter().zip(envs).enumerate() {
                let mut stop = stop_rx.clone();
                let handle = tasks.spawn(async move { (node, drive(&mut *actor, &mut env, &mut stop).await) });
                task_nodes.push((handle.id(), node));
            }
            let node_of = |id: Id| {
                task_nodes
                    .iter()
                    .find(|(task, _)| *task == id)
                    .map_or(usize::MAX, |(_, n)| *n)
            };

            let mut probes = Vec::new();
            let mut timed_out = false;
            let mut failure = None;
            let mut stats = vec![NodeStats::default(); addrs.len()];
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            if !done(&probes) {
                loop {
                    tokio::select! {
                        // Deadline first: a probe flood must not postpone the timeout.
                        biased;
                        () = &mut deadline => {
                            timed_out = true;
                            break;
                        }
                        Some(record) = probe_rx.recv() => {
                            probes.push(record);
                            while let Ok(record) = probe_rx.try_recv() {
                                probes.push(record);
                            }
                            if done(&probes) {
                                break;
                            }
                        }
                        // Drivers only return when stopped, so one ending now has panicked.
                        Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                            match joined {
                                Ok((_, (node, node_stats))) => stats[node] = node_stats,
                                Err(e) => failure = Some(failed(node_of(e.id()), e)),
                            }
                            break;
                        }
                    }
                }
            }

            // Ignored error: all receivers gone means every driver has already ended.
            let _ = stop_tx.send(true);
            while let Some(joined) = tasks.join_next_with_id().await {
                match joined {
                    Ok((_, (node, node_stats))) => stats[node] = node_stats,
                    Err(e) => {
                        let error = failed(node_of(e.id()), e);
                        failure.get_or_insert(error);
                    }
                }
            }
            if let Some(error) = failure {
                return Err(error);
            }
            while let Ok(record) = probe_rx.try_recv() {
                probes.push(record);
            }
            Ok(ClusterOutcome {
                probes,
                timed_out,
                addrs,
                stats,
            })
        })
    }
}

/// The runtime every blocking entry point builds: one thread, so nodes interleave like actors in
/// the simulator and need no synchronisation.
pub(crate) fn build_runtime() -> Result<Runtime, BackendError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| BackendError::Runtime { source })
}

fn failed(node: usize, error: JoinError) -> BackendError {
    let reason = if error.is_panic() {
        panic_message(error.into_panic())
    } else {
        error.to_string()
    };
    BackendError::NodeFailed { node, reason }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_string(),
            Err(_) => "panicked with a non-string payload".to_string(),
        },
    }
}
