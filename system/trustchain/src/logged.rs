//! Issuance with certificate transparency: every certificate the CA issues is appended to the CT
//! log before it is handed out, and comes with a receipt (a signed tree head and an inclusion
//! proof) that any node can check with the log's public key. Validation can then require the
//! receipt, so a certificate the CA did not log — a mis-issuance kept out of sight — is refused.

use pki_types::CertificateDer;
use rcgen::PublicKeyData;
use runtime::Storage;

use crate::ca::{Authority, IssueError, NodeIdentity};
use crate::ct::{leaf_hash, verify_inclusion, CtError, CtLog, Hash, LogKey, SignedTreeHead};

/// Proof that a certificate is in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionReceipt {
    /// The certificate's leaf index.
    pub index: u64,
    /// A signed head of a tree that contains it.
    pub sth: SignedTreeHead,
    /// The audit path from the certificate to `sth.root_hash`.
    pub proof: Vec<Hash>,
}

/// Why logged issuance failed.
#[derive(Debug, thiserror::Error)]
pub enum LoggedIssueError {
    /// The CA refused or failed.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// The log could not take the certificate; nothing was handed out.
    #[error(transparent)]
    Log(#[from] CtError),
}

/// Why a receipt does not prove inclusion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The tree head is not signed by the log.
    #[error("the tree head is not signed by the trusted CT log: the certificate's transparency cannot be checked")]
    BadSignature,
    /// The proof does not tie this certificate to the signed root.
    #[error(
        "the certificate is not in the CT log at the claimed position ({0}): it may have been issued outside the log"
    )]
    NotIncluded(String),
}

/// Checks that `cert` is in the log whose public key is `log_public_key`, per `receipt`.
pub fn verify_receipt(cert: &[u8], receipt: &InclusionReceipt, log_public_key: &[u8]) -> Result<(), ReceiptError> {
    receipt
        .sth
        .verify(log_public_key)
        .map_err(|_| ReceiptError::BadSignature)?;
    verify_inclusion(
        &leaf_hash(cert),
        receipt.index,
        receipt.sth.tree_size,
        &receipt.proof,
        &receipt.sth.root_hash,
    )
    .map_err(|e| ReceiptError::NotIncluded(e.to_string()))
}

/// A CA whose every issuance goes through its CT log.
pub struct LoggedAuthority {
    authority: Authority,
    log: CtLog,
    log_key: LogKey,
}

impl std::fmt::Debug for LoggedAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedAuthority")
            .field("authority", &self.authority)
            .field("log_size", &self.log.size())
            .finish_non_exhaustive()
    }
}

impl LoggedAuthority {
    /// Joins a CA, its (opened) log and the log's signing key.
    pub fn new(authority: Authority, log: CtLog, log_key: LogKey) -> Self {
        LoggedAuthority {
            authority,
            log,
            log_key,
        }
    }

    /// The CA.
    pub fn authority(&mut self) -> &mut Authority {
        &mut self.authority
    }

    /// The log.
    pub fn log(&self) -> &CtLog {
        &self.log
    }

    /// The log's public key, to distribute with the root.
    pub fn log_public_key(&self) -> [u8; 32] {
        self.log_key.public_key()
    }

    /// A signed head of the log's durable entries, timestamped `now_unix_s`.
    pub fn tree_head(&self, now_unix_s: i64) -> Result<SignedTreeHead, CtError> {
        let size = self.log.durable_size();
        let root = self.log.tree().root_at(size)?;
        let timestamp_ms = u64::try_from(now_unix_s).unwrap_or(0).saturating_mul(1000);
        Ok(self.log_key.sign(size, timestamp_ms, root))
    }

    /// Issues a leaf, logs it durably, and returns it with its receipt. If the log fails, the
    /// certificate is not returned (it is never valid without being logged).
    pub fn issue(
        &mut self,
        storage: &mut dyn Storage,
        who: &NodeIdentity,
        public_key: &impl PublicKeyData,
        now_unix_s: i64,
    ) -> Result<(CertificateDer<'static>, InclusionReceipt), LoggedIssueError> {
        let cert = self.authority.issue(who, public_key, now_unix_s)?;
        let receipt = self.log_certificate(storage, &cert, now_unix_s)?;
        Ok((cert, receipt))
    }

    /// Issues a leaf from a CSR (see [`Authority::issue_from_csr`]), logged as [`Self::issue`].
    pub fn issue_from_csr(
        &mut self,
        storage: &mut dyn Storage,
        csr: &[u8],
        granted: &NodeIdentity,
        now_unix_s: i64,
    ) -> Result<(CertificateDer<'static>, InclusionReceipt), LoggedIssueError> {
        let cert = self.authority.issue_from_csr(csr, granted, now_unix_s)?;
        let receipt = self.log_certificate(storage, &cert, now_unix_s)?;
        Ok((cert, receipt))
    }

    fn log_certificate(
        &mut self,
        storage: &mut dyn Storage,
        cert: &[u8],
        now_unix_s: i64,
    ) -> Result<InclusionReceipt, CtError> {
        let logged = self.append_and_commit(storage, cert, now_unix_s);
        if logged.is_err() && self.log.is_failed() {
            // A failed write or sync: the certificate is not handed out, and the log goes back
            // to what is durable before it takes another (CtLog::recover). If that fails too,
            // every later issuance is refused until it succeeds.
            if let Err(e) = self.log.recover(storage) {
                tracing::error!(error = %e, "CT log recovery failed; issuance stays refused");
            }
        }
        logged
    }

    fn append_and_commit(
        &mut self,
        storage: &mut dyn Storage,
        cert: &[u8],
        now_unix_s: i64,
    ) -> Result<InclusionReceipt, CtError> {
        if self.log.is_failed() {
            self.log.recover(storage)?;
        }
        let index = self.log.append(storage, cert)?;
        let size = self.log.commit(storage)?;
        let root = self.log.tree().root_at(size)?;
        let timestamp_ms = u64::try_from(now_unix_s).unwrap_or(0).saturating_mul(1000);
        Ok(InclusionReceipt {
            index,
            sth: self.log_key.sign(size, timestamp_ms, root),
            proof: self.log.tree().inclusion_proof(index, size)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::ca::{key_from_seed, CaPolicy};
    use runtime::MemStorage as Disk;

    #[test]
    fn every_issued_certificate_is_logged_with_a_receipt_that_verifies_and_outsiders_fail() {
        const NOW: i64 = 1_780_000_000;
        let mut disk = Disk::default();
        let (log, _) = CtLog::open(&mut disk, "ct.log").unwrap();
        let authority = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).unwrap();
        let mut ca = LoggedAuthority::new(authority, log, LogKey::from_seed(&[3; 32]));
        let log_key = ca.log_public_key();
        let key = key_from_seed(&[9; 32]);
        let mut issued = Vec::new();
        for i in 0..20u16 {
            let who = NodeIdentity {
                name: format!("node-{i}.mesh"),
                addr: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i),
            };
            issued.push(ca.issue(&mut disk, &who, &key, NOW).unwrap());
        }
        assert_eq!(ca.log().size(), 20);
        for (cert, receipt) in &issued {
            verify_receipt(cert, receipt, &log_key).unwrap();
        }
        // A certificate the CA issued outside the log has no receipt of its own; borrowing
        // another's fails.
        let who = NodeIdentity {
            name: "rogue.mesh".into(),
            addr: Ipv6Addr::LOCALHOST,
        };
        let rogue = ca.authority().issue(&who, &key, NOW).unwrap();
        assert!(matches!(
            verify_receipt(&rogue, &issued[5].1, &log_key),
            Err(ReceiptError::NotIncluded(_))
        ));
        // A head signed by another key is refused.
        let forged = LogKey::from_seed(&[4; 32]);
        let mut bad = issued[0].1.clone();
        bad.sth = forged.sign(bad.sth.tree_size, bad.sth.timestamp_ms, bad.sth.root_hash);
        assert_eq!(
            verify_receipt(&issued[0].0, &bad, &log_key),
            Err(ReceiptError::BadSignature)
        );
        // The log, reopened from storage, holds the same tree.
        let (again, rec) = CtLog::open(&mut disk, "ct.log").unwrap();
        assert_eq!(rec.entries, 20);
        assert_eq!(again.tree().root(), ca.log().tree().root());
    }
}
