//! TrustChain: the stack's certificate authority and certificate-transparency log.
//!
//! Built so far:
//! - [`ca`]: root → intermediate → 24 h leaf issuance (Ed25519, from a public key or a
//!   signature-checked CSR, names limited to the enrollment's grant, unique serials, back-dating
//!   allowance for clock skew);
//! - [`validate`]: chain validation with rustls-webpki at the node's own clock time, failures
//!   classified (expired, not yet valid, unknown issuer, revoked, name mismatch, malformed);
//! - [`ct`]: the certificate-transparency log: an RFC 9162 Merkle tree with inclusion and
//!   consistency proofs, an append-only log that survives crash and restart through the runtime's
//!   `Storage`, and Ed25519-signed tree heads;
//! - [`logged`]: issuance through the CT log: every certificate is logged durably before it is
//!   handed out, with a receipt (signed tree head + inclusion proof) that validation can require;
//! - revocation: the CA signs a revocation list (CRL) of revoked serials with a bounded
//!   currency; validation refuses listed leaves and lists past their `nextUpdate`;
//! - [`enroll`]: join tokens (HMAC-signed grants of one identity, each accepted once);
//! - [`trust`]: trust bundles (roots plus the issuers accepted now, each with a retirement time),
//!   which carry a rotation's overlap window;
//! - [`node`]: the protocol actor of bootstrap phases 0 and 1 (seed list, CA created at first
//!   start, enrollment, renewal, verify-before-switch rotation, revocation propagation);
//! - [`durable`]: crash-safe replacement of small state files on the runtime's `Storage`;
//! - `testing` (with the `testing` feature): checkers that turn a run's probes into figures
//!   (handshake failures by class, enrollment times, revocation propagation).
//!
//! The HTTPS service and its operator commands live in the `trustchain-service` crate.

pub mod ca;
pub mod ct;
/// Crash-safe two-slot records, now shared by every protocol: see [`runtime::durable`].
pub use runtime::durable;
pub mod enroll;
pub mod logged;
pub mod node;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trust;
pub mod validate;
