//! What a node trusts, and when its own certificate is due for renewal.
//!
//! A [`TrustBundle`] is the set of root certificates a node accepts chains to. CA rotation is
//! done with an overlap: the new root is added to every bundle first, leaves move to the new
//! hierarchy while both are trusted, and the old root leaves the bundle only when the overlap
//! ends. The bundle's `version` changes with every change, so nodes can tell peers which bundle
//! they hold (the basis of verify-before-switch: a node checks its new chain against the bundles
//! its peers hold before presenting it).

use pki_types::CertificateDer;
use ring::digest::{digest, SHA256};

/// A root's identity: SHA-256 of its DER.
pub type Fingerprint = [u8; 32];

/// The fingerprint of a certificate.
pub fn fingerprint(cert: &[u8]) -> Fingerprint {
    digest(&SHA256, cert).as_ref().try_into().expect("SHA-256 is 32 bytes")
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Anchor {
    root: CertificateDer<'static>,
    fingerprint: Fingerprint,
    /// Unix seconds after which the root is no longer trusted (set when it is being retired).
    retire_at: Option<i64>,
}

/// The roots a node trusts, with the retirement times of those being rotated out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustBundle {
    anchors: Vec<Anchor>,
    version: u64,
}

impl TrustBundle {
    /// A bundle trusting `root`.
    pub fn new(root: CertificateDer<'static>) -> Self {
        let mut b = TrustBundle::default();
        b.add(root);
        b
    }

    /// Trusts `root` too (the start of a rotation's overlap). Adding a root already held
    /// changes nothing.
    pub fn add(&mut self, root: CertificateDer<'static>) {
        let fingerprint = fingerprint(&root);
        if self.anchors.iter().any(|a| a.fingerprint == fingerprint) {
            return;
        }
        self.anchors.push(Anchor {
            root,
            fingerprint,
            retire_at: None,
        });
        self.version += 1;
    }

    /// Stops trusting the root `fp` after `at_unix_s` (the end of the overlap). Returns whether
    /// the bundle held it.
    pub fn retire(&mut self, fp: &Fingerprint, at_unix_s: i64) -> bool {
        match self.anchors.iter_mut().find(|a| a.fingerprint == *fp) {
            Some(a) => {
                a.retire_at = Some(at_unix_s);
                self.version += 1;
                true
            }
            None => false,
        }
    }

    /// Drops roots retired before `now_unix_s` (housekeeping; [`TrustBundle::roots_at`] already
    /// ignores them).
    pub fn prune(&mut self, now_unix_s: i64) {
        let before = self.anchors.len();
        self.anchors.retain(|a| a.retire_at.is_none_or(|t| t >= now_unix_s));
        if self.anchors.len() != before {
            self.version += 1;
        }
    }

    /// The roots trusted at `now_unix_s`.
    pub fn roots_at(&self, now_unix_s: i64) -> Vec<CertificateDer<'static>> {
        self.anchors
            .iter()
            .filter(|a| a.retire_at.is_none_or(|t| now_unix_s <= t))
            .map(|a| a.root.clone())
            .collect()
    }

    /// Whether `fp` is trusted at `now_unix_s`.
    pub fn trusts(&self, fp: &Fingerprint, now_unix_s: i64) -> bool {
        self.anchors
            .iter()
            .any(|a| a.fingerprint == *fp && a.retire_at.is_none_or(|t| now_unix_s <= t))
    }

    /// Changes so far: equal versions of one node's bundle are equal bundles.
    pub fn version(&self) -> u64 {
        self.version
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
    use crate::validate::{validate, ExpectedPeer, ValidationError};

    const NOW: i64 = 1_780_000_000;

    #[test]
    fn a_rotation_with_overlap_accepts_both_hierarchies_until_the_old_root_retires() {
        let mut old = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).unwrap();
        let mut new = Authority::create(&[3; 32], &[4; 32], NOW, CaPolicy::default()).unwrap();
        let key = key_from_seed(&[9; 32]);
        let who = NodeIdentity {
            name: "node-1.mesh".into(),
            addr: "fd00::1".parse().unwrap(),
        };
        let old_leaf = old.issue(&who, &key, NOW).unwrap();
        let new_leaf = new.issue(&who, &key, NOW).unwrap();
        let check = |bundle: &TrustBundle, leaf, int: &CertificateDer<'static>, at: i64| {
            validate(
                leaf,
                std::slice::from_ref(int),
                &bundle.roots_at(at),
                at as u64,
                &ExpectedPeer::Any,
            )
        };
        let mut bundle = TrustBundle::new(old.root().clone());
        let v0 = bundle.version();
        // Abrupt switch: a peer still holding only the old root refuses the new chain.
        assert_eq!(
            check(&bundle, &new_leaf, new.intermediate(), NOW),
            Err(ValidationError::UnknownIssuer)
        );
        // Overlap: both trusted.
        bundle.add(new.root().clone());
        assert!(bundle.version() > v0);
        check(&bundle, &old_leaf, old.intermediate(), NOW).unwrap();
        check(&bundle, &new_leaf, new.intermediate(), NOW).unwrap();
        // The old root retires at the end of a one-hour overlap.
        let end = NOW + 3600;
        assert!(bundle.retire(&fingerprint(old.root()), end));
        check(&bundle, &old_leaf, old.intermediate(), end).unwrap();
        assert_eq!(
            check(&bundle, &old_leaf, old.intermediate(), end + 1),
            Err(ValidationError::UnknownIssuer)
        );
        check(&bundle, &new_leaf, new.intermediate(), end + 1).unwrap();
        bundle.prune(end + 1);
        assert_eq!(bundle.roots_at(end + 1).len(), 1);
        assert!(bundle.trusts(&fingerprint(new.root()), end + 1));
        assert!(!bundle.retire(&fingerprint(old.root()), end), "already gone");
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
