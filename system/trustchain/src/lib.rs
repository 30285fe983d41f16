//! TrustChain: the stack's certificate authority and certificate-transparency log.
//!
//! Built so far: the certificate-transparency log ([`ct`]): an RFC 9162 Merkle tree with
//! inclusion and consistency proofs, an append-only log that survives crash and restart through
//! the runtime's `Storage`, and Ed25519-signed tree heads. The CA hierarchy, validation, rotation,
//! revocation and the HTTPS service are not built yet.

pub mod ct;
