//! The registry REST API on a cluster node (`hypermesh node --api ADDR`, with `machine =
//! "erc8004"` in the validators file): `erc8004_api` over the chain this validator's replica
//! applies blocks to, its keys from the node's state directory (`hypermesh keys --state`), as
//! `hypermesh dev --api` serves it over the development chain. Reads answer from this replica's
//! state; a transaction posted is handed to consensus as the JSON-RPC endpoint hands it and
//! answered with its receipt once committed (the server holds the answer, woken by each block
//! applied; `202` if not within the API's commit wait, and `GET /api/v1/transactions/{hash}`
//! answers it later), and
//! `/health` names the replica's seat, view, role and whether its partition can commit.

use alloy_primitives::B256;
use erc8004::chain::Chain;
use erc8004::rpc::{RpcService, SendError};
use erc8004_api::health::ConsensusHealth;
use erc8004_api::service::ChainSource;
use runtime::WallTime;

use super::rpc::SharedChain;
use super::status::ReplicaStatus;

/// The node's chain and its replica's status, as the API reads them.
pub(crate) struct NodeSource {
    /// The chain behind the JSON-RPC endpoint's own service (the same checks on a transaction).
    pub rpc: RpcService<SharedChain>,
    /// What the replica says of itself.
    pub status: ReplicaStatus,
}

impl ChainSource for NodeSource {
    fn with_chain<T>(&self, read: impl FnOnce(&Chain) -> T) -> T {
        self.rpc.with_chain(read)
    }

    fn submit(&mut self, raw: &[u8], now: WallTime) -> Result<B256, SendError> {
        self.rpc.submit(raw, now)
    }

    fn consensus(&self) -> Option<ConsensusHealth> {
        Some(self.status.health())
    }
}
