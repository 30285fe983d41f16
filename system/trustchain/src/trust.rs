//! What a node trusts, and when its own certificate is due for renewal.
//!
//! A [`TrustBundle`] holds the roots a node accepts chains to and the issuing intermediates it
//! accepts under them. Pinning the issuers is what makes a CA rotation mean something (once the
//! old intermediate is retired, a stolen copy of its key issues nothing anyone accepts), and it
//! is also what makes an abrupt rotation break handshakes: a leaf of the new intermediate is
//! refused by every node whose bundle does not list it yet. Rotation is therefore done with an
//! overlap: the new intermediate is added to every bundle first, leaves move to it while both
//! are accepted, and the old one leaves the bundle only when the overlap ends. The bundle's
//! `version` changes with every change, so nodes can tell peers which bundle they hold (the basis
//! of verify-before-switch: a node checks its new chain against the bundles its peers hold
//! before presenting it).

use pki_types::{CertificateDer, CertificateRevocationListDer};
use ring::digest::{digest, SHA256};

use crate::validate::{validate_with_revocation, ExpectedPeer, ValidationError};

/// A certificate's identity: SHA-256 of its DER.
pub type Fingerprint = [u8; 32];

/// The fingerprint of a certificate.
pub fn fingerprint(cert: &[u8]) -> Fingerprint {
    digest(&SHA256, cert).as_ref().try_into().expect("SHA-256 is 32 bytes")
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Anchor {
    cert: CertificateDer<'static>,
    fingerprint: Fingerprint,
    /// Unix seconds after which it is no longer trusted (set when it is being retired).
    retire_at: Option<i64>,
}

impl Anchor {
    fn live(&self, now_unix_s: i64) -> bool {
        self.retire_at.is_none_or(|t| now_unix_s <= t)
    }
}

/// The roots and issuing intermediates a node trusts, with retirement times for those being
/// rotated out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustBundle {
    roots: Vec<Anchor>,
    issuers: Vec<Anchor>,
    version: u64,
}

/// Why a bundle could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Cut short or with impossible lengths.
    #[error("trust bundle truncated or corrupt at byte {0}")]
    Corrupt(usize),
    /// Decodes, but lists no root or no issuer.
    #[error("trust bundle holds no root or no issuing CA")]
    Empty,
}

/// Bounds a decoded bundle: a rotation holds two issuers, a root rotation two roots.
const BUNDLE_ENTRIES_MAX: usize = 8;

impl TrustBundle {
    /// A bundle trusting `root` and its intermediate `issuer`.
    pub fn new(root: CertificateDer<'static>, issuer: CertificateDer<'static>) -> Self {
        let mut b = TrustBundle::default();
        b.add_root(root);
        b.add_issuer(issuer);
        b
    }

    fn add(list: &mut Vec<Anchor>, cert: CertificateDer<'static>) -> bool {
        let fingerprint = fingerprint(&cert);
        if list.iter().any(|a| a.fingerprint == fingerprint) {
            return false;
        }
        list.push(Anchor {
            cert,
            fingerprint,
            retire_at: None,
        });
        true
    }

    /// Trusts `root` too (a root rotation's overlap). Adding one already held changes nothing.
    pub fn add_root(&mut self, root: CertificateDer<'static>) {
        if Self::add(&mut self.roots, root) {
            self.version += 1;
        }
    }

    /// Accepts the intermediate `issuer` too (the start of a CA rotation's overlap). Adding one
    /// already held changes nothing.
    pub fn add_issuer(&mut self, issuer: CertificateDer<'static>) {
        if Self::add(&mut self.issuers, issuer) {
            self.version += 1;
        }
    }

    /// Stops trusting the root or issuer `fp` after `at_unix_s` (the end of the overlap).
    /// Returns whether the bundle held it.
    pub fn retire(&mut self, fp: &Fingerprint, at_unix_s: i64) -> bool {
        let found = self
            .roots
            .iter_mut()
            .chain(self.issuers.iter_mut())
            .find(|a| a.fingerprint == *fp);
        match found {
            Some(a) if a.retire_at == Some(at_unix_s) => true,
            Some(a) => {
                a.retire_at = Some(at_unix_s);
                self.version += 1;
                true
            }
            None => false,
        }
    }

    /// Drops entries retired before `now_unix_s` (housekeeping; trust decisions already ignore
    /// them).
    pub fn prune(&mut self, now_unix_s: i64) {
        let before = self.roots.len() + self.issuers.len();
        self.roots.retain(|a| a.live(now_unix_s));
        self.issuers.retain(|a| a.live(now_unix_s));
        if self.roots.len() + self.issuers.len() != before {
            self.version += 1;
        }
    }

    /// The roots trusted at `now_unix_s`.
    pub fn roots_at(&self, now_unix_s: i64) -> Vec<CertificateDer<'static>> {
        self.roots
            .iter()
            .filter(|a| a.live(now_unix_s))
            .map(|a| a.cert.clone())
            .collect()
    }

    /// The issuing intermediates accepted at `now_unix_s`.
    pub fn issuers_at(&self, now_unix_s: i64) -> Vec<CertificateDer<'static>> {
        self.issuers
            .iter()
            .filter(|a| a.live(now_unix_s))
            .map(|a| a.cert.clone())
            .collect()
    }

    /// Whether the root or issuer `fp` is trusted at `now_unix_s`.
    pub fn trusts(&self, fp: &Fingerprint, now_unix_s: i64) -> bool {
        self.roots
            .iter()
            .chain(&self.issuers)
            .any(|a| a.fingerprint == *fp && a.live(now_unix_s))
    }

    /// Changes so far: equal versions of one CA's bundle are equal bundles.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Validates `chain` (leaf first, then its intermediate) at `now_unix_s`: it must lead to a
    /// root of this bundle through an issuer this bundle accepts now, not be revoked by any of
    /// `crls`, and name `expected`.
    pub fn validate(
        &self,
        chain: &[CertificateDer<'_>],
        crls: &[CertificateRevocationListDer<'_>],
        now_unix_s: i64,
        expected: &ExpectedPeer,
    ) -> Result<(), ValidationError> {
        let (leaf, presented) = chain.split_first().ok_or(ValidationError::Malformed {
            detail: "empty chain".into(),
        })?;
        let accepted: Vec<CertificateDer<'_>> = presented
            .iter()
            .filter(|c| self.trusts(&fingerprint(c), now_unix_s))
            .cloned()
            .collect();
        let roots = self.roots_at(now_unix_s);
        let now = u64::try_from(now_unix_s).unwrap_or(0);
        match validate_with_revocation(leaf, &accepted, &roots, crls, now, expected) {
            Err(ValidationError::UnknownIssuer) if accepted.len() < presented.len() => {
                Err(ValidationError::IssuerNotInBundle)
            }
            other => other,
        }
    }

    /// A compact binary encoding (what the CA sends nodes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.version.to_be_bytes().to_vec();
        for list in [&self.roots, &self.issuers] {
            out.push(list.len() as u8);
            for a in list {
                out.extend_from_slice(&a.retire_at.unwrap_or(i64::MAX).to_be_bytes());
                out.extend_from_slice(&(a.cert.len() as u16).to_be_bytes());
                out.extend_from_slice(&a.cert);
            }
        }
        out
    }

    /// Reads what [`TrustBundle::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<TrustBundle, BundleError> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], BundleError> {
            let end = at
                .checked_add(n)
                .filter(|e| *e <= bytes.len())
                .ok_or(BundleError::Corrupt(at))?;
            let out = &bytes[at..end];
            at = end;
            Ok(out)
        };
        let version = u64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let n = usize::from(take(1)?[0]);
            if n > BUNDLE_ENTRIES_MAX {
                return Err(BundleError::Corrupt(8));
            }
            for _ in 0..n {
                let retire = i64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
                let len = usize::from(u16::from_be_bytes(take(2)?.try_into().expect("2 bytes")));
                let cert = CertificateDer::from(take(len)?.to_vec());
                list.push(Anchor {
                    fingerprint: fingerprint(&cert),
                    cert,
                    retire_at: (retire != i64::MAX).then_some(retire),
                });
            }
        }
        if take(1).is_ok() {
            return Err(BundleError::Corrupt(bytes.len()));
        }
        let [roots, issuers] = lists;
        if roots.is_empty() || issuers.is_empty() {
            return Err(BundleError::Empty);
        }
        Ok(TrustBundle {
            roots,
            issuers,
            version,
        })
    }
}

/// A certificate's validity window, Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

/// The validity window of a DER certificate, or `None` if it does not parse.
pub fn validity_of(cert: &[u8]) -> Option<Validity> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let v = parsed.validity();
    Some(Validity {
        not_before: v.not_before.timestamp(),
        not_after: v.not_after.timestamp(),
    })
}

impl Validity {
    /// Whether a certificate with this window is due for renewal at `now_unix_s`: once
    /// `fraction` of its lifetime has passed (e.g. 2/3, so a 24 h leaf renews after 16 h and a
    /// failed attempt has 8 h of retries before the certificate lapses).
    pub fn renewal_due(&self, now_unix_s: i64, fraction: f64) -> bool {
        let life = (self.not_after - self.not_before) as f64;
        now_unix_s as f64 >= self.not_before as f64 + life * fraction.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{key_from_seed, Authority, CaPolicy, NodeIdentity};
    use crate::validate::{ExpectedPeer, ValidationError};

    const NOW: i64 = 1_780_000_000;

    fn node() -> NodeIdentity {
        NodeIdentity {
            name: "node-1.mesh".into(),
            addr: "fd00::1".parse().unwrap(),
        }
    }

    #[test]
    fn a_rotation_with_overlap_accepts_both_issuers_until_the_old_one_retires() {
        let mut ca = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).unwrap();
        let key = key_from_seed(&[9; 32]);
        let old_int = ca.intermediate().clone();
        let old_chain = vec![ca.issue(&node(), &key, NOW).unwrap(), old_int.clone()];
        let mut bundle = TrustBundle::new(ca.root().clone(), old_int.clone());
        let v0 = bundle.version();
        let new_int = ca.rotate(&[4; 32], NOW).unwrap();
        let new_chain = vec![ca.issue(&node(), &key, NOW).unwrap(), new_int.clone()];
        let check = |b: &TrustBundle, chain: &[CertificateDer<'static>], at: i64| {
            b.validate(chain, &[], at, &ExpectedPeer::Any)
        };
        // Abrupt switch: a peer whose bundle lacks the new issuer refuses the new chain, though
        // it leads to the same root.
        assert_eq!(check(&bundle, &new_chain, NOW), Err(ValidationError::IssuerNotInBundle));
        assert_eq!(ValidationError::IssuerNotInBundle.class(), "unknown_issuer");
        // Overlap: both accepted.
        bundle.add_issuer(new_int.clone());
        assert!(bundle.version() > v0);
        check(&bundle, &old_chain, NOW).unwrap();
        check(&bundle, &new_chain, NOW).unwrap();
        // The old issuer retires at the end of a one-hour overlap.
        let end = NOW + 3600;
        assert!(bundle.retire(&fingerprint(&old_int), end));
        check(&bundle, &old_chain, end).unwrap();
        assert_eq!(
            check(&bundle, &old_chain, end + 1),
            Err(ValidationError::IssuerNotInBundle)
        );
        check(&bundle, &new_chain, end + 1).unwrap();
        bundle.prune(end + 1);
        assert_eq!(bundle.issuers_at(end + 1), vec![new_int.clone()]);
        assert!(bundle.trusts(&fingerprint(&new_int), end + 1));
        assert!(!bundle.retire(&fingerprint(&old_int), end), "already gone");
        // What the CA sends is what the node gets.
        assert_eq!(TrustBundle::decode(&bundle.encode()), Ok(bundle.clone()));
        // Another CA's chain is an unknown issuer, not a bundle problem.
        let mut other = Authority::create(&[5; 32], &[6; 32], NOW, CaPolicy::default()).unwrap();
        let foreign = vec![other.issue(&node(), &key, NOW).unwrap(), other.intermediate().clone()];
        bundle.add_issuer(other.intermediate().clone());
        assert_eq!(
            check(&bundle, &foreign, NOW + 7200),
            Err(ValidationError::UnknownIssuer)
        );
    }

    #[test]
    fn damaged_bundles_are_refused_not_trusted() {
        let ca = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).unwrap();
        let bytes = TrustBundle::new(ca.root().clone(), ca.intermediate().clone()).encode();
        for cut in 0..bytes.len() {
            assert!(TrustBundle::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(TrustBundle::decode(&longer), Err(BundleError::Corrupt(bytes.len() + 1)));
        assert_eq!(TrustBundle::decode(&[0; 10]), Err(BundleError::Empty));
    }

    #[test]
    fn leaves_renew_after_the_configured_fraction_of_their_life() {
        let mut ca = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).unwrap();
        let leaf = ca
            .issue(
                &NodeIdentity {
                    name: "n.mesh".into(),
                    addr: "fd00::2".parse().unwrap(),
                },
                &key_from_seed(&[9; 32]),
                NOW,
            )
            .unwrap();
        let v = validity_of(&leaf).unwrap();
        assert_eq!(v.not_after - NOW, 86_400, "24 h from issuance");
        assert_eq!(NOW - v.not_before, 300, "back-dated 5 minutes");
        let two_thirds = 2.0 / 3.0;
        assert!(!v.renewal_due(NOW + 15 * 3600, two_thirds));
        assert!(v.renewal_due(NOW + 16 * 3600, two_thirds));
        assert_eq!(validity_of(b"junk"), None);
    }
}
