//! Why a node or cluster could not be set up or did not run to its end.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use runtime::AddressFamily;

/// A failure of the production backend itself (never of the protocol it runs).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A socket could not be created, configured or bound to `addr`.
    #[error("cannot bind UDP socket to {addr}: {source}")]
    Bind {
        /// The requested bind address.
        addr: SocketAddr,
        /// What the OS (or the address check) said.
        #[source]
        source: io::Error,
    },
    /// Two bind addresses of one family: a node has at most one socket per family, because
    /// `send_to` picks the socket by the destination's family alone.
    #[error("node binds two {family:?} addresses ({first} and {second}); at most one per family is allowed")]
    DuplicateFamily {
        /// The family that appears twice.
        family: AddressFamily,
        /// The first address of that family.
        first: SocketAddr,
        /// The second one.
        second: SocketAddr,
    },
    /// The node's storage directory could not be created or made durable.
    #[error("cannot prepare storage directory {}: {source}", path.display())]
    StorageDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The tokio runtime could not be built.
    #[error("cannot build the tokio runtime: {source}")]
    Runtime {
        /// What tokio said.
        #[source]
        source: io::Error,
    },
    /// The io_uring event loop failed (io_uring unavailable or disabled, or a ring error).
    #[error("io_uring event loop failed: {source} (is io_uring enabled? /proc/sys/kernel/io_uring_disabled)")]
    Uring {
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Sockets were bound outside a tokio runtime, which tokio cannot register them with.
    #[error("RealEnv::bind must be called inside a tokio runtime (within block_on or after Runtime::enter)")]
    NoRuntime,
    /// The OS random source failed while seeding the node's generator.
    #[error("the OS random source failed: {reason}")]
    Entropy {
        /// What `getrandom` said.
        reason: String,
    },
    /// A node's driver stopped before it was asked to: its actor panicked.
    #[error("node {node} stopped unexpectedly: {reason}")]
    NodeFailed {
        /// The node's index.
        node: usize,
        /// The panic message, or why the task ended.
        reason: String,
    },
}
