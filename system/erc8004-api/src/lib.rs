//! The REST API over the ERC-8004 registries, as seed 004's guide describes it.
//!
//! Built so far: API keys ([`keys`]): who may call `/api/v1/`, at which tier, stored only as
//! hashes, created and revoked by the operator (`hypermesh keys`) while a node serves. The routes,
//! rate limits, cache, statistics, metrics and alerts are not built yet.

pub mod keys;
