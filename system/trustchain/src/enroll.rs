//! Enrollment credentials: nobody obtains a certificate without one.
//!
//! A join token is issued by the CA's operator for one node identity (name and IPv6 address),
//! expires, and is accepted once. It is an HMAC-SHA256 (keyed by a secret only the CA holds)
//! over the grant, so the CA verifies it without storing issued tokens; it stores only the ids of
//! tokens already used, until they expire. The other credential is a certificate the CA issued
//! that is still valid: a node renews by sending a CSR for the same key and names it already
//! holds (checked by the caller against the presented chain).

use std::net::Ipv6Addr;

use ring::hmac;

use crate::ca::{check_node_name, NodeIdentity};

/// What a token grants: a certificate for `identity`, if presented by `expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The identity the certificate will carry; a CSR may ask for no other.
    pub identity: NodeIdentity,
    /// Unix seconds after which the token is refused.
    pub expires: i64,
    /// Distinguishes tokens, so each is accepted once.
    pub id: u64,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token at all.
    #[error("malformed join token: expected `tcj1.<grant hex>.<mac hex>` as printed by `trustchain token`")]
    Malformed,
    /// The MAC does not verify: forged, altered, or from another CA.
    #[error("join token not issued by this CA (or altered): ask this CA's operator for a token")]
    Forged,
    /// Past its expiry.
    #[error("join token expired at {expires} (now {now}): ask the operator for a new one")]
    Expired {
        /// When it expired, Unix s.
        expires: i64,
        /// Now, Unix s.
        now: i64,
    },
    /// Already used to enroll.
    #[error("join token already used: each token enrolls one node once; ask the operator for a new one")]
    Reused,
    /// The ledger of used tokens is full (limit [`UsedTokens::CAPACITY`]).
    #[error("too many unexpired join tokens in use ({0}); retry after some expire")]
    LedgerFull(usize),
}

/// The CA's token key (keep secret, like the CA's keys).
pub struct TokenKey(hmac::Key);

impl TokenKey {
    /// The key from a 32-byte secret.
    pub fn new(secret: &[u8; 32]) -> TokenKey {
        TokenKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A token for `grant`.
    ///
    /// # Panics
    ///
    /// If the grant's name is not a node name ([`check_node_name`]: at most
    /// [`crate::ca::NODE_NAME_BYTES_MAX`] bytes, so it always fits the token's length byte).
    /// Callers check names from operators first and refuse them with that error, as
    /// `trustchain_service::CaService::token` does; a panic here is a caller's bug.
    pub fn issue(&self, grant: &Grant) -> String {
        assert!(
            check_node_name(&grant.identity.name).is_ok(),
            "a join token for the unchecked name {:?}",
            grant.identity.name
        );
        let body = encode_grant(grant);
        let tag = hmac::sign(&self.0, &body);
        format!("tcj1.{}.{}", hex(&body), hex(tag.as_ref()))
    }

    /// The grant `token` carries, if this key issued it and it has not expired at `now_unix_s`.
    /// Single use is the caller's [`UsedTokens`].
    pub fn verify(&self, token: &str, now_unix_s: i64) -> Result<Grant, TokenError> {
        let mut parts = token.trim().split('.');
        let (Some("tcj1"), Some(body), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let body = unhex(body).ok_or(TokenError::Malformed)?;
        let tag = unhex(tag).ok_or(TokenError::Malformed)?;
        hmac::verify(&self.0, &body, &tag).map_err(|_| TokenError::Forged)?;
        let grant = decode_grant(&body).ok_or(TokenError::Malformed)?;
        if now_unix_s > grant.expires {
            return Err(TokenError::Expired {
                expires: grant.expires,
                now: now_unix_s,
            });
        }
        Ok(grant)
    }
}

/// Ids of tokens already used, kept until they expire (after which the token is refused anyway).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsedTokens {
    /// (id, expires), in use order.
    used: Vec<(u64, i64)>,
}

impl UsedTokens {
    /// At most this many unexpired used tokens are remembered; beyond it enrollment is refused
    /// rather than forgetting one (which would let it be replayed).
    pub const CAPACITY: usize = 65_536;

    /// Marks `grant`'s token used at `now_unix_s`, or refuses it if it already was.
    pub fn spend(&mut self, grant: &Grant, now_unix_s: i64) -> Result<(), TokenError> {
        self.used.retain(|(_, expires)| *expires >= now_unix_s);
        if self.used.iter().any(|(id, _)| *id == grant.id) {
            return Err(TokenError::Reused);
        }
        if self.used.len() >= Self::CAPACITY {
            return Err(TokenError::LedgerFull(self.used.len()));
        }
        self.used.push((grant.id, grant.expires));
        Ok(())
    }

    /// The remembered (id, expiry) pairs, for persistence.
    pub fn entries(&self) -> &[(u64, i64)] {
        &self.used
    }

    /// A ledger holding `entries` (as [`UsedTokens::entries`] returned them).
    pub fn from_entries(entries: Vec<(u64, i64)>) -> UsedTokens {
        UsedTokens { used: entries }
    }
}

fn encode_grant(g: &Grant) -> Vec<u8> {
    let name = g.identity.name.as_bytes();
    let len = u8::try_from(name.len()).expect("a checked node name fits one length byte");
    let mut out = Vec::with_capacity(1 + name.len() + 32);
    out.push(len);
    out.extend_from_slice(name);
    out.extend_from_slice(&g.identity.addr.octets());
    out.extend_from_slice(&g.expires.to_be_bytes());
    out.extend_from_slice(&g.id.to_be_bytes());
    out
}

fn decode_grant(b: &[u8]) -> Option<Grant> {
    let len = usize::from(*b.first()?);
    if b.len() != 1 + len + 16 + 16 {
        return None;
    }
    let name = std::str::from_utf8(&b[1..1 + len]).ok()?.to_string();
    // Only checked names are ever granted; anything else was not made by `issue`.
    check_node_name(&name).ok()?;
    let rest = &b[1 + len..];
    let addr = Ipv6Addr::from(<[u8; 16]>::try_from(&rest[..16]).ok()?);
    let expires = i64::from_be_bytes(rest[16..24].try_into().ok()?);
    let id = u64::from_be_bytes(rest[24..32].try_into().ok()?);
    Some(Grant {
        identity: NodeIdentity { name, addr },
        expires,
        id,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 1024 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: u64) -> Grant {
        Grant {
            identity: NodeIdentity {
                name: "node-3.mesh".into(),
                addr: "fd00::3".parse().unwrap(),
            },
            expires: 1_000,
            id,
        }
    }

    #[test]
    fn a_token_enrolls_its_node_once_before_it_expires() {
        let key = TokenKey::new(&[7; 32]);
        let token = key.issue(&grant(1));
        let g = key.verify(&token, 999).unwrap();
        assert_eq!(g, grant(1));
        let mut used = UsedTokens::default();
        used.spend(&g, 999).unwrap();
        assert_eq!(used.spend(&g, 999), Err(TokenError::Reused));
        used.spend(&key.verify(&key.issue(&grant(2)), 999).unwrap(), 999)
            .unwrap();
        assert_eq!(
            key.verify(&token, 1_001),
            Err(TokenError::Expired {
                expires: 1_000,
                now: 1_001
            })
        );
    }

    #[test]
    fn forged_altered_and_garbage_tokens_are_refused_with_their_reason() {
        let key = TokenKey::new(&[7; 32]);
        let other = TokenKey::new(&[8; 32]);
        assert_eq!(key.verify(&other.issue(&grant(1)), 0), Err(TokenError::Forged));
        let token = key.issue(&grant(1));
        // Point the grant at another address (last byte of the address, in the body).
        let mut altered = token.clone().into_bytes();
        let body_end = token.rfind('.').unwrap();
        altered[body_end - 33] = if altered[body_end - 33] == b'3' { b'4' } else { b'3' };
        assert_eq!(
            key.verify(std::str::from_utf8(&altered).unwrap(), 0),
            Err(TokenError::Forged)
        );
        for junk in [
            "",
            "tcj1",
            "tcj1..",
            "tcj1.zz.00",
            "tcj2.00.00",
            "tcj1.00.00.00",
            "tcj1.0.0",
        ] {
            let e = key.verify(junk, 0).unwrap_err();
            assert!(
                matches!(e, TokenError::Malformed | TokenError::Forged),
                "{junk:?}: {e:?}"
            );
        }
    }
}
