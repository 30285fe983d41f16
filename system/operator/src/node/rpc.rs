//! JSON-RPC on a cluster node (`hypermesh node --rpc ADDR`, with `machine = "erc8004"` in the
//! validators file): the replica's state machine is the registries' chain, shared with the
//! JSON-RPC endpoint in the same process. The endpoint reads the chain as this replica holds
//! it (as any Ethereum node answers from its own state), and hands signed transactions over to
//! the replica ([`StateMachine::take_local`]), which submits them to the coming leaders as a
//! client's; their receipts appear once committed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use erc8004::chain::{Chain, ChainConfig};
use erc8004::rpc::{RpcNode, SendError};
use erc8004::tx::SignedCall;
use hypermesh::replication::{BlockInfo, Outcome, RestoreError, StateMachine};
use runtime::WallTime;

/// Transactions handed over and not yet taken by the replica, at most: beyond it the endpoint
/// refuses ("busy"), rather than hold without bound what consensus has not taken.
pub(crate) const HANDED_OVER_MAX: usize = 10_000;

/// How long handed-over transactions may wait untaken before the endpoint takes the replica
/// for not live (starting, replaying its log, or halted) and refuses more.
pub(crate) const UNTAKEN_MAX: Duration = Duration::from_secs(2);

/// The chain, shared between the replica (which applies blocks to it) and the endpoint.
#[derive(Clone)]
pub(crate) struct SharedChain {
    chain: Arc<Mutex<Chain>>,
    handed_over: Arc<Mutex<HandedOver>>,
    /// The chain id, for checks that need only it (outside the chain's lock).
    chain_id: u64,
    /// Notified after each block applied: the API's answers held for a commit look again.
    applied: Arc<tokio::sync::Notify>,
}

/// Transactions handed over, and when the replica last took them.
struct HandedOver {
    transactions: Vec<Bytes>,
    taken: Instant,
}

/// `mutex` locked; a lock poisoned by a panic elsewhere is taken back (a registry call rolls
/// back on a panic; a panic while applying a block ends the node's host thread, and the node
/// exits).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SharedChain {
    /// A new chain of `chain_id`.
    pub(crate) fn new(chain_id: u64) -> SharedChain {
        SharedChain {
            chain: Arc::new(Mutex::new(Chain::new(ChainConfig {
                chain_id,
                ..ChainConfig::default()
            }))),
            handed_over: Arc::new(Mutex::new(HandedOver {
                transactions: Vec::new(),
                taken: Instant::now(),
            })),
            chain_id,
            applied: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified (`notify_waiters`) after each block applied.
    pub(crate) fn applied(&self) -> Arc<tokio::sync::Notify> {
        self.applied.clone()
    }
}

impl StateMachine for SharedChain {
    fn check(&self, transaction: &[u8]) -> Result<(), String> {
        // The signature check needs only the chain id: not under the lock the endpoint's
        // reads hold.
        SignedCall::decode(transaction, self.chain_id)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn apply(&mut self, block: BlockInfo, transactions: &[Bytes], checked: &[bool]) -> Vec<Outcome> {
        let outcomes = lock(&self.chain).apply(block, transactions, checked);
        // After the chain's lock is let go: whoever wakes reads the block.
        self.applied.notify_waiters();
        outcomes
    }

    fn snapshot(&self) -> Bytes {
        lock(&self.chain).snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        lock(&self.chain).restore(snapshot)
    }

    fn take_local(&mut self) -> Vec<Bytes> {
        let mut handed_over = lock(&self.handed_over);
        handed_over.taken = Instant::now();
        std::mem::take(&mut handed_over.transactions)
    }

    fn query(&self, request: &[u8]) -> Result<Bytes, String> {
        lock(&self.chain).query(request)
    }
}

impl RpcNode for SharedChain {
    type Chain<'a> = MutexGuard<'a, Chain>;

    fn chain(&self) -> MutexGuard<'_, Chain> {
        lock(&self.chain)
    }

    fn submit(&mut self, call: &SignedCall, _now: WallTime) -> Result<(), SendError> {
        let mut handed_over = lock(&self.handed_over);
        // The replica takes what is handed over on every event it handles while live: one that
        // has not for a while is starting, replaying its log, or halted.
        if !handed_over.transactions.is_empty() && handed_over.taken.elapsed() > UNTAKEN_MAX {
            return Err(SendError::NotTaken(format!(
                "this validator has taken no transaction for {} s (starting, catching up or halted): send to another",
                handed_over.taken.elapsed().as_secs()
            )));
        }
        if handed_over.transactions.len() >= HANDED_OVER_MAX {
            return Err(SendError::NotTaken(format!(
                "busy: {HANDED_OVER_MAX} transactions wait for consensus to take them; send again shortly"
            )));
        }
        handed_over.transactions.push(Bytes::copy_from_slice(&call.raw));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API's answers held for a commit wake when a block is applied: a waiter registered
    /// before the block is told.
    #[tokio::test]
    async fn applying_a_block_wakes_who_waits_for_one() {
        let mut chain = SharedChain::new(8004);
        let applied = chain.applied();
        let woken = applied.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let outcomes = chain.apply(
            BlockInfo {
                height: 1,
                timestamp_ms: 1_790_000_000_000,
            },
            &[],
            &[],
        );
        assert!(outcomes.is_empty());
        tokio::time::timeout(Duration::from_secs(1), woken)
            .await
            .expect("woken by the block applied");
        // Whoever wakes reads the block (an empty one seals no Ethereum block; its time is
        // the chain's).
        assert_eq!(chain.chain().time(), 1_790_000_000);
    }
}
