//! Chain validation with rustls-webpki (the verifier rustls itself uses), at the validating node's
//! own clock time, with every failure classified and explained for an operator.

use std::net::IpAddr;

use pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, ExpirationPolicy, ExtendedKeyUsageValidator,
    KeyPurposeId, KeyPurposeIdIter, RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

/// Signature algorithms accepted in chains: TrustChain issues Ed25519 only.
static ALGORITHMS: &[&dyn pki_types::SignatureVerificationAlgorithm] = &[webpki::ring::ED25519];

/// Node certificates serve both ends of mutual TLS: the leaf must carry both serverAuth and
/// clientAuth. One validator for both means the chain's signatures are checked once, not twice.
struct ServerAndClient;

impl ExtendedKeyUsageValidator for ServerAndClient {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        // id-kp-serverAuth (1.3.6.1.5.5.7.3.1) and id-kp-clientAuth (…3.2), DER contents.
        const SERVER: KeyPurposeId<'static> = KeyPurposeId::new(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]);
        const CLIENT: KeyPurposeId<'static> = KeyPurposeId::new(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]);
        let (mut server, mut client, mut any) = (false, false, false);
        for id in iter {
            let id = id?;
            any = true;
            server |= id == SERVER;
            client |= id == CLIENT;
        }
        // Also called for the CAs on the path, which carry no EKU: absent means unrestricted
        // (RFC 5280 §4.2.1.12), as webpki's own validators treat it.
        if !any || (server && client) {
            Ok(())
        } else {
            #[allow(deprecated)] // the context variant's fields are not constructible outside webpki
            Err(webpki::Error::RequiredEkuNotFound)
        }
    }
}

/// Why a chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The leaf (or a CA above it) ended before the validation time.
    #[error("certificate expired at {not_after} (checked at {now}, by this node's clock): renew it; if it should still be valid, this node's clock may be ahead")]
    Expired {
        /// `notAfter`, Unix seconds.
        not_after: u64,
        /// Validation time, Unix seconds.
        now: u64,
    },
    /// The certificate starts after the validation time.
    #[error("certificate not valid until {not_before} (checked at {now}, by this node's clock): this node's clock is behind, or the issuer's ahead; fix time sync (NTP) or raise the CA's back-dating allowance")]
    NotYetValid {
        /// `notBefore`, Unix seconds.
        not_before: u64,
        /// Validation time, Unix seconds.
        now: u64,
    },
    /// No path to a trusted root.
    #[error("unknown issuer: the chain does not lead to a trusted root; install the CA bundle (`trustchain ca install`) or send the intermediate with the leaf")]
    UnknownIssuer,
    /// The chain's issuing intermediate is not one this node's trust bundle accepts now.
    #[error("unknown issuer: the chain's issuing CA is not in this node's trust bundle; during a CA rotation either this node lacks the new bundle (fetch /ca/bundle) or the peer still presents a leaf of a retired CA (it must renew)")]
    IssuerNotInBundle,
    /// A signature in the chain does not verify: the certificate was altered, or was issued by
    /// another CA using a trusted CA's name.
    #[error("bad signature: the chain names a trusted CA but is not signed by it; the certificate was altered or issued by an impostor CA, so do not trust it")]
    BadSignature,
    /// A revocation list given is past its `nextUpdate`, or not parseable.
    #[error("revocation list unusable ({detail}): fetch the current list from the CA before trusting peers")]
    StaleRevocationList {
        /// What is wrong with it.
        detail: String,
    },
    /// The serial is on a revocation list.
    #[error("certificate revoked: the node must enroll again for a new certificate")]
    Revoked,
    /// The certificate does not name the expected peer.
    #[error("certificate is not valid for {expected}: the peer presented another node's certificate, or was addressed by a name its certificate lacks")]
    NameMismatch {
        /// What was expected.
        expected: String,
    },
    /// Not a parseable certificate, or one with invalid encoding or signature.
    #[error("malformed certificate: {detail}; re-issue it (the PEM may be truncated or not a certificate)")]
    Malformed {
        /// The verifier's finding.
        detail: String,
    },
    /// The certificate presented as the peer's own is a CA certificate: a chain in the wrong
    /// order (intermediate first), or a CA certificate where a node's leaf belongs.
    #[error("the first certificate of the chain is a CA certificate, not a node's leaf: send the chain leaf first (the node's certificate, then its intermediate); a CA certificate never identifies a node")]
    NotALeaf,
    /// Anything else the verifier refused (usage, constraints).
    #[error("certificate refused: {detail}")]
    Other {
        /// The verifier's finding.
        detail: String,
    },
}

impl ValidationError {
    /// The failure's class, a stable lowercase name for counters and JSON: `expired`,
    /// `not_yet_valid`, `unknown_issuer`, `bad_signature`, `stale_revocation_list`, `revoked`,
    /// `name_mismatch`, `malformed` or `other`.
    pub fn class(&self) -> &'static str {
        match self {
            ValidationError::Expired { .. } => "expired",
            ValidationError::NotYetValid { .. } => "not_yet_valid",
            ValidationError::UnknownIssuer | ValidationError::IssuerNotInBundle => "unknown_issuer",
            ValidationError::BadSignature => "bad_signature",
            ValidationError::StaleRevocationList { .. } => "stale_revocation_list",
            ValidationError::Revoked => "revoked",
            ValidationError::NameMismatch { .. } => "name_mismatch",
            // A chain that is not leaf first is malformed as a node's chain; a class of its own
            // would move the indices STOQ gives its transport classes.
            ValidationError::Malformed { .. } | ValidationError::NotALeaf => "malformed",
            ValidationError::Other { .. } => "other",
        }
    }

    /// Every class [`ValidationError::class`] returns, in a fixed order.
    pub const CLASSES: [&'static str; 9] = [
        "expired",
        "not_yet_valid",
        "unknown_issuer",
        "bad_signature",
        "stale_revocation_list",
        "revoked",
        "name_mismatch",
        "malformed",
        "other",
    ];
}

fn classify(e: webpki::Error) -> ValidationError {
    use webpki::Error as E;
    match e {
        E::CertExpired { time, not_after } => ValidationError::Expired {
            not_after: not_after.as_secs(),
            now: time.as_secs(),
        },
        E::CertNotValidYet { time, not_before } => ValidationError::NotYetValid {
            not_before: not_before.as_secs(),
            now: time.as_secs(),
        },
        E::UnknownIssuer => ValidationError::UnknownIssuer,
        E::CrlExpired { .. } | E::InvalidCrlSignatureForPublicKey | E::UnsupportedCrlVersion => {
            ValidationError::StaleRevocationList {
                detail: format!("{e:?}"),
            }
        }
        E::CertRevoked => ValidationError::Revoked,
        E::InvalidSignatureForPublicKey => ValidationError::BadSignature,
        #[allow(deprecated)]
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => ValidationError::Other {
            detail: "the certificate is not issued for both TLS server and client use (extended key usage)".into(),
        },
        E::CaUsedAsEndEntity => ValidationError::NotALeaf,
        E::BadDer | E::BadDerTime | E::TrailingData(_) => ValidationError::Malformed {
            detail: format!("{e:?}"),
        },
        other => ValidationError::Other {
            detail: format!("{other:?}"),
        },
    }
}

/// The peer a chain must identify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedPeer {
    /// Any peer the CA vouches for.
    Any,
    /// A node name (DNS SAN).
    Name(String),
    /// An address (IP SAN).
    Addr(IpAddr),
}

/// Validates `leaf` with `intermediates` against the `roots`, at `now_unix_s`, for both TLS
/// client and server use, and checks it names `expected`. No revocation check: see
/// [`validate_with_revocation`].
pub fn validate(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
    now_unix_s: u64,
    expected: &ExpectedPeer,
) -> Result<(), ValidationError> {
    validate_with_revocation(leaf, intermediates, roots, &[], now_unix_s, expected)
}

/// As [`validate`], and the leaf must not be on any of the `crls` (DER revocation lists, each
/// signed by the leaf's issuer and current at `now_unix_s`). A leaf whose issuer has no list among
/// them is accepted: lists cover the issuing intermediate, and a node holds the current one.
pub fn validate_with_revocation(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
    crls: &[CertificateRevocationListDer<'_>],
    now_unix_s: u64,
    expected: &ExpectedPeer,
) -> Result<(), ValidationError> {
    let anchors = roots
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(r).map_err(classify))
        .collect::<Result<Vec<_>, _>>()?;
    let cert = EndEntityCert::try_from(leaf).map_err(classify)?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now_unix_s));
    let lists = crls
        .iter()
        .map(|c| {
            BorrowedCertRevocationList::from_der(c)
                .map(CertRevocationList::from)
                .map_err(|e| ValidationError::StaleRevocationList {
                    detail: format!("{e:?}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let list_refs: Vec<&CertRevocationList<'_>> = lists.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&list_refs).ok().map(|b| {
        b.with_depth(RevocationCheckDepth::EndEntity)
            .with_status_policy(UnknownStatusPolicy::Allow)
            .with_expiration_policy(ExpirationPolicy::Enforce)
            .build()
    });
    cert.verify_for_usage(
        ALGORITHMS,
        &anchors,
        intermediates,
        time,
        ServerAndClient,
        revocation,
        None,
    )
    .map_err(classify)?;
    let name = match expected {
        ExpectedPeer::Any => return Ok(()),
        ExpectedPeer::Name(n) => ServerName::try_from(n.as_str())
            .map_err(|_| ValidationError::NameMismatch { expected: n.clone() })?
            .to_owned(),
        ExpectedPeer::Addr(a) => ServerName::IpAddress((*a).into()),
    };
    cert.verify_is_valid_for_subject_name(&name).map_err(|e| match e {
        webpki::Error::CertNotValidForName(_) => ValidationError::NameMismatch {
            expected: match expected {
                ExpectedPeer::Name(n) => n.clone(),
                ExpectedPeer::Addr(a) => a.to_string(),
                ExpectedPeer::Any => String::new(),
            },
        },
        other => classify(other),
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::ca::{key_from_seed, request, Authority, CaPolicy, IssueError, NodeIdentity};

    const NOW: i64 = 1_780_000_000; // mid-2026

    fn node(i: u8) -> NodeIdentity {
        NodeIdentity {
            name: format!("node-{i}.mesh"),
            addr: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(i)),
        }
    }

    fn authority(seed: u8) -> Authority {
        Authority::create(&[seed; 32], &[seed + 1; 32], NOW, CaPolicy::default()).unwrap()
    }

    #[test]
    fn an_issued_chain_validates_for_its_name_and_address_and_fails_clearly_otherwise() {
        let mut ca = authority(1);
        let key = key_from_seed(&[9; 32]);
        let leaf = ca.issue(&node(7), &key, NOW).unwrap();
        let ints = [ca.intermediate().clone()];
        let roots = [ca.root().clone()];
        let now = NOW as u64;
        validate(&leaf, &ints, &roots, now, &ExpectedPeer::Name("node-7.mesh".into())).unwrap();
        validate(&leaf, &ints, &roots, now, &ExpectedPeer::Addr(node(7).addr.into())).unwrap();
        assert_eq!(
            validate(&leaf, &ints, &roots, now, &ExpectedPeer::Name("node-8.mesh".into())),
            Err(ValidationError::NameMismatch {
                expected: "node-8.mesh".into()
            })
        );
        // 24 h and a minute later: expired. Two hours before issuance: not yet valid (the
        // allowance is 5 minutes); one minute before: accepted thanks to back-dating.
        assert!(matches!(
            validate(&leaf, &ints, &roots, now + 86_460, &ExpectedPeer::Any),
            Err(ValidationError::Expired { .. })
        ));
        let early = validate(&leaf, &ints, &roots, now - 7200, &ExpectedPeer::Any).unwrap_err();
        assert!(matches!(early, ValidationError::NotYetValid { .. }), "{early}");
        assert!(
            early.to_string().contains("clock"),
            "tells the operator what to do: {early}"
        );
        validate(&leaf, &ints, &roots, now - 60, &ExpectedPeer::Any).unwrap();
        // Another CA's root, or no intermediate: unknown issuer.
        let other = authority(50);
        assert_eq!(
            validate(&leaf, &ints, &[other.root().clone()], now, &ExpectedPeer::Any),
            Err(ValidationError::UnknownIssuer)
        );
        assert_eq!(
            validate(&leaf, &[], &roots, now, &ExpectedPeer::Any),
            Err(ValidationError::UnknownIssuer)
        );
        // A leaf altered after issuance (one byte of its name): bad signature.
        let mut altered = leaf.to_vec();
        let at = altered.windows(6).position(|w| w == b"node-7").unwrap();
        altered[at + 5] = b'8';
        assert_eq!(
            validate(&CertificateDer::from(altered), &ints, &roots, now, &ExpectedPeer::Any),
            Err(ValidationError::BadSignature)
        );
        // Garbage: malformed, not a panic.
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x02]);
        assert!(matches!(
            validate(&junk, &ints, &roots, now, &ExpectedPeer::Any),
            Err(ValidationError::Malformed { .. })
        ));
    }

    #[test]
    fn csr_issuance_checks_the_signature_and_the_granted_names() {
        let mut ca = authority(1);
        let key = key_from_seed(&[11; 32]);
        let csr = request(&node(3), &key).unwrap();
        let leaf = ca.issue_from_csr(&csr, &node(3), NOW).unwrap();
        validate(
            &leaf,
            &[ca.intermediate().clone()],
            &[ca.root().clone()],
            NOW as u64,
            &ExpectedPeer::Name("node-3.mesh".into()),
        )
        .unwrap();
        // Asking for another node's name than the enrollment grants is refused.
        assert!(matches!(
            ca.issue_from_csr(&csr, &node(4), NOW),
            Err(IssueError::NameNotGranted { .. })
        ));
        // A CSR altered after signing fails its signature check.
        let mut forged = csr.clone();
        let i = forged.len() / 2;
        forged[i] ^= 0x01;
        assert!(matches!(
            ca.issue_from_csr(&forged, &node(3), NOW),
            Err(IssueError::BadCsr(_))
        ));
        assert!(matches!(
            ca.issue_from_csr(b"not a csr", &node(3), NOW),
            Err(IssueError::BadCsr(_))
        ));
    }

    #[test]
    fn serials_are_unique_and_issuance_is_deterministic_from_the_seeds() {
        let mut a = authority(1);
        let mut b = authority(1);
        let key = key_from_seed(&[9; 32]);
        let leaves: Vec<_> = (0..50).map(|i| a.issue(&node(i), &key, NOW).unwrap()).collect();
        let again: Vec<_> = (0..50).map(|i| b.issue(&node(i), &key, NOW).unwrap()).collect();
        assert_eq!(leaves, again, "same seeds, same certificates, byte for byte");
        let mut serials: Vec<Vec<u8>> = leaves
            .iter()
            .map(|l| {
                let (_, cert) = x509_parser::parse_x509_certificate(l).unwrap();
                cert.raw_serial().to_vec()
            })
            .collect();
        serials.sort();
        serials.dedup();
        assert_eq!(serials.len(), 50);
    }

    #[test]
    fn a_revoked_leaf_is_refused_by_a_current_list_and_a_stale_list_is_refused_too() {
        let policy = CaPolicy {
            crl_lifetime: std::time::Duration::from_secs(3600),
            ..CaPolicy::default()
        };
        let mut ca = Authority::create(&[1; 32], &[2; 32], NOW, policy).unwrap();
        let key = key_from_seed(&[9; 32]);
        let good = ca.issue(&node(1), &key, NOW).unwrap();
        let bad = ca.issue(&node(2), &key, NOW).unwrap();
        ca.revoke(&crate::ca::serial_of(&bad).unwrap(), NOW + 60);
        let crl = ca.revocation_list(NOW + 60).unwrap();
        let (ints, roots) = ([ca.intermediate().clone()], [ca.root().clone()]);
        let now = NOW as u64 + 120;
        let check = |leaf, at| {
            validate_with_revocation(leaf, &ints, &roots, std::slice::from_ref(&crl), at, &ExpectedPeer::Any)
        };
        assert_eq!(check(&bad, now), Err(ValidationError::Revoked));
        check(&good, now).unwrap();
        // Without the list the revoked leaf still validates: revocation reaches a node only
        // through the list it holds.
        validate(&bad, &ints, &roots, now, &ExpectedPeer::Any).unwrap();
        // Past the list's hour of currency (the leaf itself is still within its 24 h).
        let stale = check(&good, NOW as u64 + 60 + 3600 + 600);
        assert!(
            matches!(stale, Err(ValidationError::StaleRevocationList { .. })),
            "{stale:?}"
        );
        // Garbage instead of a list: refused with a reason, not a panic.
        let junk = CertificateRevocationListDer::from(vec![1, 2, 3]);
        assert!(matches!(
            validate_with_revocation(&good, &ints, &roots, &[junk], now, &ExpectedPeer::Any),
            Err(ValidationError::StaleRevocationList { .. })
        ));
    }

    /// Issue 13, item 14: a chain in the wrong order (the intermediate first) or a CA certificate
    /// presented as a node's leaf was class `other` with webpki's `CaUsedAsEndEntity`.
    #[test]
    fn a_chain_out_of_order_or_a_ca_as_leaf_is_named_as_such() {
        let mut ca = authority(1);
        let leaf = ca.issue(&node(7), &key_from_seed(&[9; 32]), NOW).unwrap();
        let (int, root) = (ca.intermediate().clone(), ca.root().clone());
        let now = NOW as u64;
        for refused in [
            validate(
                &int,
                std::slice::from_ref(&leaf),
                std::slice::from_ref(&root),
                now,
                &ExpectedPeer::Any,
            ),
            validate(&root, &[], std::slice::from_ref(&root), now, &ExpectedPeer::Any),
        ] {
            let e = refused.unwrap_err();
            assert_ne!(e.class(), "other", "{e:?}");
            let message = e.to_string();
            assert!(message.contains("leaf first"), "{message}");
            assert!(!message.contains("CaUsedAsEndEntity"), "{message}");
        }
    }

    /// Issue 13, item 14: a grant refusal printed `DnsName(Ia5String(..))`.
    #[test]
    fn a_name_not_granted_is_said_in_words() {
        let mut ca = authority(1);
        let csr = request(&node(3), &key_from_seed(&[11; 32])).unwrap();
        let refused = ca.issue_from_csr(&csr, &node(4), NOW).unwrap_err().to_string();
        assert!(refused.contains("DNS name node-3.mesh"), "{refused}");
        assert!(
            !refused.contains("Ia5String") && !refused.contains("DnsName("),
            "{refused}"
        );
    }

    /// The guide's own check: `openssl verify -CAfile root.pem -untrusted intermediate.pem leaf.pem`.
    #[test]
    fn openssl_verifies_the_chains_it_issues() {
        let Ok(version) = std::process::Command::new("openssl").arg("version").output() else {
            assert!(
                std::env::var_os("TESTBED_REQUIRE_OPENSSL").is_none(),
                "no openssl on PATH"
            );
            eprintln!("skipped: no openssl on PATH");
            return;
        };
        assert!(version.status.success());
        // openssl checks validity at the real time, so the chain is issued at it.
        #[allow(clippy::disallowed_methods)]
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut ca = Authority::create(&[1; 32], &[2; 32], now, CaPolicy::default()).unwrap();
        let leaf = ca.issue(&node(7), &key_from_seed(&[9; 32]), now).unwrap();
        let dir = std::env::temp_dir().join(format!("trustchain-openssl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = |der: &[u8]| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()));
        std::fs::write(dir.join("root.pem"), pem(ca.root())).unwrap();
        std::fs::write(dir.join("intermediate.pem"), pem(ca.intermediate())).unwrap();
        std::fs::write(dir.join("leaf.pem"), pem(&leaf)).unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "intermediate.pem",
                "leaf.pem",
            ])
            .current_dir(&dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("leaf.pem: OK"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // And it refuses the leaf against another CA's root.
        let other = Authority::create(&[5; 32], &[6; 32], now, CaPolicy::default()).unwrap();
        std::fs::write(dir.join("other.pem"), pem(other.root())).unwrap();
        let refused = std::process::Command::new("openssl")
            .args([
                "verify",
                "-CAfile",
                "other.pem",
                "-untrusted",
                "intermediate.pem",
                "leaf.pem",
            ])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
