//! The REST API over the ERC-8004 registries, as seed 004's guide describes it.
//!
//! Built so far: API keys ([`keys`]): who may call `/api/v1/`, at which tier, stored only as
//! hashes, created and revoked by the operator (`hypermesh keys`); rate limits per key
//! ([`ratelimit`], GCRA with the guide's headers); the [`gate`] every `/api/v1/` request passes
//! (its key, then its limit: 401 saying why, 429 with `Retry-After`); the routes ([`service`]:
//! health, metrics, agents a page at a time and filtered ([`list`]: by owner from the owner
//! [`index`], by registration file, feedback tag and trusted reputation), one agent, its
//! registration file ([`registration`]), its feedback, validations, reputation
//! summary and statistics; transactions posted); what follows the chain ([`view`]: the agents each committed block
//! changed, and the statistics kept incrementally); the read-through [`cache`], bounded and
//! never stale; the Prometheus exposition ([`metrics`]); the guide's three alerts ([`alerts`]),
//! named by `/health`; the OpenAPI document ([`openapi`]).
//! `hypermesh dev --api` serves it (the operator's `api` module).

pub mod alerts;
pub mod cache;
pub mod gate;
pub mod health;
pub mod index;
pub mod keys;
pub mod list;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod registration;
pub mod service;
pub mod setting;
pub mod view;
