//! PEM in and out: certificates, chains, CSRs and CRLs as operators and `openssl` handle them.

use pki_types::CertificateDer;

/// Why a PEM input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// Not PEM at all, or a block whose base64 is damaged.
    #[error("{what} is not valid PEM ({detail}): expected `-----BEGIN {label}-----` blocks")]
    NotPem {
        /// What the input was meant to be.
        what: &'static str,
        /// The label expected.
        label: &'static str,
        /// The parser's finding.
        detail: String,
    },
    /// PEM, but without a block of the expected kind.
    #[error("{what} holds no `-----BEGIN {label}-----` block{found}")]
    NoBlock {
        /// What the input was meant to be.
        what: &'static str,
        /// The label expected.
        label: &'static str,
        /// What it held instead, if anything.
        found: String,
    },
}

/// The DER contents of every block labelled `label` in `text`, in order.
fn blocks(text: &[u8], label: &'static str, what: &'static str) -> Result<Vec<Vec<u8>>, PemError> {
    let parsed = ::pem::parse_many(text).map_err(|e| PemError::NotPem {
        what,
        label,
        detail: e.to_string(),
    })?;
    let found: Vec<String> = parsed.iter().map(|p| p.tag().to_owned()).collect();
    let wanted: Vec<Vec<u8>> = parsed
        .into_iter()
        .filter(|p| p.tag() == label)
        .map(|p| p.into_contents())
        .collect();
    if wanted.is_empty() {
        return Err(PemError::NoBlock {
            what,
            label,
            found: if found.is_empty() {
                String::new()
            } else {
                format!(" (it holds {})", found.join(", "))
            },
        });
    }
    Ok(wanted)
}

/// A certificate chain, leaf first, from PEM `CERTIFICATE` blocks.
pub fn chain(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    Ok(blocks(text, "CERTIFICATE", "the certificate chain")?
        .into_iter()
        .map(CertificateDer::from)
        .collect())
}

/// Revocation lists from PEM `X509 CRL` blocks.
pub fn crls(text: &[u8]) -> Result<Vec<pki_types::CertificateRevocationListDer<'static>>, PemError> {
    Ok(blocks(text, "X509 CRL", "the revocation lists")?
        .into_iter()
        .map(pki_types::CertificateRevocationListDer::from)
        .collect())
}

/// The DER of the one `CERTIFICATE REQUEST` in `text` (the first, if several).
pub fn csr(text: &[u8]) -> Result<Vec<u8>, PemError> {
    let mut all = blocks(text, "CERTIFICATE REQUEST", "the certificate signing request")?;
    Ok(all.swap_remove(0))
}

/// The PKCS#8 prefix of an Ed25519 private key (RFC 8410), before its 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// An Ed25519 private key as a PEM `PRIVATE KEY` block (PKCS#8, as `openssl genpkey` writes it).
pub fn ed25519_private_key(seed: &[u8; 32]) -> String {
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(seed);
    encode("PRIVATE KEY", &der)
}

/// The seed of the Ed25519 `PRIVATE KEY` in `text` (what [`ed25519_private_key`] wrote).
pub fn ed25519_seed(text: &[u8], what: &'static str) -> Result<[u8; 32], PemError> {
    let mut all = blocks(text, "PRIVATE KEY", what)?;
    let der = all.swap_remove(0);
    der.strip_prefix(&ED25519_PKCS8_PREFIX[..])
        .and_then(|seed| <[u8; 32]>::try_from(seed).ok())
        .ok_or_else(|| PemError::NotPem {
            what,
            label: "PRIVATE KEY",
            detail: "not an Ed25519 key in PKCS#8 form".into(),
        })
}

/// `der` as a PEM block labelled `label`.
pub fn encode(label: &str, der: &[u8]) -> String {
    ::pem::encode_config(
        &::pem::Pem::new(label, der.to_vec()),
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

/// Certificates as concatenated PEM blocks.
pub fn certificates<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> String {
    certs.into_iter().map(|c| encode("CERTIFICATE", c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_keys_round_trip_and_other_keys_are_refused() {
        let text = ed25519_private_key(&[7; 32]);
        assert_eq!(ed25519_seed(text.as_bytes(), "the root key").unwrap(), [7; 32]);
        let other = encode("PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        let e = ed25519_seed(other.as_bytes(), "the root key").unwrap_err();
        assert!(e.to_string().contains("Ed25519"), "{e}");
        assert!(ed25519_seed(b"junk", "the root key").is_err());
    }

    #[test]
    fn chains_round_trip_and_bad_input_is_named() {
        let text = certificates([&b"leaf"[..], &b"intermediate"[..]]);
        let c = chain(text.as_bytes()).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].as_ref(), b"intermediate");
        let e = chain(b"hello").unwrap_err().to_string();
        assert!(
            e.contains("certificate chain") && e.contains("BEGIN CERTIFICATE"),
            "{e}"
        );
        let key = encode("PRIVATE KEY", b"k");
        let e = chain(key.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("holds PRIVATE KEY"), "{e}");
        let e = chain(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(matches!(e, PemError::NotPem { .. }), "{e}");
    }
}
