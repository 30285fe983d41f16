//! The state machine a replicated log drives: what consensus orders, it applies.

use bytes::Bytes;

/// What applying one transaction produced, returned to the client that submitted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; the machine's answer (a read's value, a new id, …).
    Applied(Bytes),
    /// Refused by the machine's own rules (a revert reason): the state is as if the transaction
    /// had not been in the block, and every replica refuses it alike.
    Refused(String),
}

/// The committed block whose transactions a machine applies: its height, and its proposer's
/// timestamp (Unix milliseconds), which every replica sees alike. The timestamp is the
/// proposer's clock, checked by the replicas only to within their allowed skew, and not
/// necessarily increasing: a machine that needs a clock (deadlines) keeps its own from it, never
/// going back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// Its height.
    pub height: u64,
    /// Its proposer's timestamp, Unix milliseconds.
    pub timestamp_ms: u64,
}

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("snapshot refused at byte {offset}: {reason}")]
pub struct RestoreError {
    /// Where decoding failed.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

/// A deterministic state machine: every replica that applies the same committed blocks in the
/// same order holds the same state, byte for byte.
///
/// Determinism is the implementor's duty: no clock, no randomness, no iteration over unordered
/// maps, no floating point whose result may differ across machines (the block's height and the
/// transactions are the only inputs). TrustChain's CA state, the asset registry and the ERC-8004
/// registries each implement it.
pub trait StateMachine: Send {
    /// Checks what can be checked of a transaction without the state (its encoding, its
    /// signatures), once, when a replica admits it to its pool: one that fails is refused
    /// there, with the reason, and never proposed. What passed here need not be checked again
    /// by [`StateMachine::apply`], which then runs off the costly part (a replica votes only
    /// after applying the blocks a proposal commits, so every signature checked at apply is on
    /// the path of every view). The default checks nothing.
    fn check(&self, transaction: &[u8]) -> Result<(), String> {
        let _ = transaction;
        Ok(())
    }

    /// Applies the transactions of the block committed at `block.height`, in order, returning one
    /// outcome per transaction. Heights arrive in order, each once, starting after the height
    /// the machine was restored to (0 for a fresh machine). `checked[i]` says transaction `i`
    /// passed [`StateMachine::check`] on this replica; the machine may skip those checks for
    /// it, and must give the outcome it would give without skipping them (the others are any
    /// leader's choice, Byzantine ones included, and are checked here in full).
    fn apply(&mut self, block: BlockInfo, transactions: &[Bytes], checked: &[bool]) -> Vec<Outcome>;

    /// The whole state as of the last applied height, in a canonical encoding: two replicas at
    /// one height produce equal bytes.
    fn snapshot(&self) -> Bytes;

    /// Replaces the state with that of `snapshot` (made by [`StateMachine::snapshot`]); on an
    /// error the state is left as it was.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError>;

    /// Transactions a client in the node's own process handed over since the last call (a
    /// JSON-RPC endpoint beside the replica, on a real node): the replica submits each as a
    /// client's, checked, admitted and forwarded to the coming leaders, but answers no one (the
    /// local client reads the outcome from the state). Called on every event the replica
    /// handles; the default has none, as in the simulator, where clients are nodes.
    fn take_local(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    /// Answers a read-only `request` from the state as of the last applied height, changing
    /// nothing: a replica's local read (which may be stale; a read that must be linearizable is
    /// submitted as a transaction and ordered by consensus). An error names what is wrong with
    /// the request.
    fn query(&self, request: &[u8]) -> Result<Bytes, String>;
}
