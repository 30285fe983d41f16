//! The TrustChain CA run as a service, for operators and for the HTTPS API.
//!
//! - [`CaService`]: a CA whose whole state lives in a `Storage` (its state file, written
//!   crash-safely, and its CT log): created once (`init`), reopened by every command and by the
//!   server, issuing only against an enrollment credential, rotating with an overlap window and a
//!   published rollout plan, revoking by serial, identity and key, limiting renewals per
//!   identity, optionally with its root key kept out of its state (`keep_root_offline`).
//! - [`CaApi`]: the HTTP API over it (`/ca/validate`, `/ca/issue`, `/ca/bundle`, `/ca/crl`,
//!   `/ct/sth`, `/ct/proof`, and `/ca/isolate` with [`isolation`]), a pure [`runtime::HttpService`]; the production backend serves it
//!   over HTTPS. A panic while answering is caught: the request gets a 500 and the service is
//!   reopened from what is durable, so nothing half-updated is kept.
//! - [`pem`]: reading operators' PEM files with errors that say what is wrong where.
//!
//! Nothing here reads a clock, touches the network or the file system, or draws randomness: the
//! caller passes the time, the storage and fresh key seeds.

mod api;
pub mod isolation;
pub mod pem;
mod service;
mod state;
#[cfg(test)]
mod tests;

pub use api::{CaApi, REQUEST_BODY_BYTES_MAX};
pub use service::{
    CaService, Credential, IssueRefusal, Issued, PublicMaterial, Revocation, RotationPlan, RotationReport,
    ServiceError, ServiceLimits, ServiceSeeds, Verdict, ISSUED_LEAVES_MAX, LOG_FILE, RENEWALS_PER_IDENTITY_MAX_DEFAULT,
    SERVER_NAME_DEFAULT, STATE_FILE,
};
pub use state::ActiveRotation;
