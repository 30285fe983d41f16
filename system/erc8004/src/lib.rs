//! The ERC-8004 "Trustless Agents" registries (identity, reputation, validation) as a
//! deterministic state machine for HyperMesh consensus, spoken to with signed Ethereum
//! transactions: a wallet or SDK signs a call to a registry's ABI at its mainnet address, and the
//! cluster executes it natively (no EVM).
//!
//! - [`abi`]: the registries' functions, events and errors, as the reference contracts
//!   (version 2.0.0) declare them, and their addresses.
//! - [`registration`]: the agent registration file an agent's URI points at, read leniently.
//! - [`registries`]: their state, and a call to them (whole, or reverted without a trace);
//!   [`identity`], [`reputation`] and [`validation`] hold each registry's functions.
//! - [`client`]: a simulated agent developer's client of a cluster (consensus client protocol).
//! - [`dev`]: the development chain: the chain on one node's durable log, a block per
//!   transaction.
//! - [`rpc`]: the JSON-RPC endpoint Ethereum tooling speaks to, over a node's chain.
//! - [`table`]: the journaled maps that make a reverted call leave no trace.
//! - [`chain`]: the registries as a chain on HyperMesh's replicated log (a `StateMachine`):
//!   nonces, receipts, blocks, logs, snapshots, and the queries JSON-RPC reads through.
//! - [`tx`]: the signed transactions taken (legacy with EIP-155, EIP-2930, EIP-1559), their
//!   sender recovered.
//! - [`wallet`]: keys that sign them (development accounts, simulated clients, tests).

pub mod abi;
pub mod chain;
pub mod client;
pub mod dev;
pub mod identity;
pub mod read;
pub mod registration;
pub mod registries;
pub mod reputation;
pub mod rpc;
pub mod table;
pub mod tx;
pub mod validation;
pub mod wallet;

#[cfg(test)]
mod tests;
