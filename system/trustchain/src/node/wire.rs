//! The TrustChain node protocol's wire format: one message per datagram.
//!
//! ```text
//! magic "TC" | version u8 | kind u8 | fields ...
//! ```
//! Byte strings are `u32` length-prefixed and bounded by [`FIELD_BYTES_MAX`]; lists are `u8`
//! counted. Every length is checked before it is trusted: a malformed datagram decodes to a
//! [`WireError`] naming what was wrong and where, never a panic.

use bytes::{BufMut, Bytes, BytesMut};

/// The magic bytes opening every TrustChain datagram.
pub const MAGIC: [u8; 2] = *b"TC";
/// The wire version this code speaks.
pub const VERSION: u8 = 1;
/// Largest byte string (certificate, CSR, bundle, CRL) a message may carry.
pub const FIELD_BYTES_MAX: usize = 16 * 1024;
/// Most certificates or CRLs in one list.
pub const LIST_MAX: usize = 8;

/// A CA rotation's rollout plan, published with the bundle: node `wave` of `waves` moves to the
/// new issuer at `start_unix_ms + wave × wave_interval_ms` (by its own clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    /// SHA-256 of the new intermediate.
    pub issuer: [u8; 32],
    /// When the first wave moves, Unix ms.
    pub start_unix_ms: i64,
    /// How many waves (1: everyone at once).
    pub waves: u32,
    /// Time between waves, ms.
    pub wave_interval_ms: u64,
}

/// One datagram of the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Node → CA: first enrollment, with a join token.
    Enroll {
        /// The enrollment credential.
        token: String,
        /// DER CSR.
        csr: Bytes,
    },
    /// Node → CA: renewal, authenticated by the node's current chain (same key, same names).
    Renew {
        /// The chain the node holds now, leaf first.
        chain: Vec<Bytes>,
        /// DER CSR for the same key.
        csr: Bytes,
    },
    /// CA → node: a certificate, with what the node needs to validate peers.
    Issued {
        /// Leaf first, then its intermediate.
        chain: Vec<Bytes>,
        /// The CA's current trust bundle (encoded [`crate::trust::TrustBundle`]).
        bundle: Bytes,
        /// Current revocation lists, one per intermediate held.
        crls: Vec<Bytes>,
        /// The rollout in progress, if a rotation is.
        rollout: Option<Rollout>,
    },
    /// CA → node: the request was refused.
    Refused {
        /// Why, for the operator.
        reason: String,
    },
    /// Node → CA: send me the current bundle and revocation lists.
    FetchBundle,
    /// CA → node: the current bundle and revocation lists (pushed on change, or on request).
    Bundle {
        /// Encoded trust bundle.
        bundle: Bytes,
        /// Current revocation lists.
        crls: Vec<Bytes>,
        /// The rollout in progress, if any.
        rollout: Option<Rollout>,
    },
    /// Node → peer: a handshake (or, with `trial`, a check of a chain not yet in use).
    Hello {
        /// Matches the answer to the question.
        nonce: u64,
        /// The sender's chain.
        chain: Vec<Bytes>,
        /// A verify-before-switch trial: validate, answer, count nothing.
        trial: bool,
    },
    /// Peer → node: accepted; here is my chain (empty for a trial).
    HelloAck {
        /// The Hello's nonce.
        nonce: u64,
        /// The responder's chain.
        chain: Vec<Bytes>,
    },
    /// Peer → node: your chain was refused (`reason` is a failure class index) or I hold no
    /// certificate yet ([`NOT_READY`]).
    HelloRefused {
        /// The Hello's nonce.
        nonce: u64,
        /// Index into [`crate::validate::ValidationError::CLASSES`], or [`NOT_READY`].
        reason: u8,
    },
}

/// [`Message::HelloRefused`] reason: the responder has no certificate or bundle yet.
pub const NOT_READY: u8 = 255;

/// Why a datagram did not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not this protocol, or another version.
    #[error("not a TrustChain v{VERSION} datagram (magic/version)")]
    BadHeader,
    /// Unknown message kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// Cut short.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A length beyond the protocol's limits.
    #[error("field at byte {at} is {len} long, over the limit {max}")]
    TooLong {
        /// Where.
        at: usize,
        /// Claimed length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string that is not UTF-8.
    #[error("field at byte {0} is not UTF-8")]
    NotUtf8(usize),
    /// Bytes after the message.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(b.len() as u32);
    out.put_slice(b);
}

fn put_list(out: &mut BytesMut, list: &[Bytes]) {
    out.put_u8(list.len() as u8);
    for b in list {
        put_bytes(out, b);
    }
}

fn put_rollout(out: &mut BytesMut, r: &Option<Rollout>) {
    match r {
        None => out.put_u8(0),
        Some(r) => {
            out.put_u8(1);
            out.put_slice(&r.issuer);
            out.put_i64(r.start_unix_ms);
            out.put_u32(r.waves);
            out.put_u64(r.wave_interval_ms);
        }
    }
}

impl Message {
    /// The datagram.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(256);
        out.put_slice(&MAGIC);
        out.put_u8(VERSION);
        match self {
            Message::Enroll { token, csr } => {
                out.put_u8(1);
                put_bytes(&mut out, token.as_bytes());
                put_bytes(&mut out, csr);
            }
            Message::Renew { chain, csr } => {
                out.put_u8(2);
                put_list(&mut out, chain);
                put_bytes(&mut out, csr);
            }
            Message::Issued {
                chain,
                bundle,
                crls,
                rollout,
            } => {
                out.put_u8(3);
                put_list(&mut out, chain);
                put_bytes(&mut out, bundle);
                put_list(&mut out, crls);
                put_rollout(&mut out, rollout);
            }
            Message::Refused { reason } => {
                out.put_u8(4);
                put_bytes(&mut out, reason.as_bytes());
            }
            Message::FetchBundle => out.put_u8(5),
            Message::Bundle { bundle, crls, rollout } => {
                out.put_u8(6);
                put_bytes(&mut out, bundle);
                put_list(&mut out, crls);
                put_rollout(&mut out, rollout);
            }
            Message::Hello { nonce, chain, trial } => {
                out.put_u8(7);
                out.put_u64(*nonce);
                put_list(&mut out, chain);
                out.put_u8(u8::from(*trial));
            }
            Message::HelloAck { nonce, chain } => {
                out.put_u8(8);
                out.put_u64(*nonce);
                put_list(&mut out, chain);
            }
            Message::HelloRefused { nonce, reason } => {
                out.put_u8(9);
                out.put_u64(*nonce);
                out.put_u8(*reason);
            }
        }
        out.freeze()
    }

    /// Reads one datagram. Byte strings share the datagram's buffer (no copies).
    pub fn decode(datagram: &Bytes) -> Result<Message, WireError> {
        let mut r = Reader { buf: datagram, at: 0 };
        if r.take(2)? != MAGIC || r.u8()? != VERSION {
            return Err(WireError::BadHeader);
        }
        let kind = r.u8()?;
        let message = match kind {
            1 => Message::Enroll {
                token: r.string()?,
                csr: r.bytes()?,
            },
            2 => Message::Renew {
                chain: r.list()?,
                csr: r.bytes()?,
            },
            3 => Message::Issued {
                chain: r.list()?,
                bundle: r.bytes()?,
                crls: r.list()?,
                rollout: r.rollout()?,
            },
            4 => Message::Refused { reason: r.string()? },
            5 => Message::FetchBundle,
            6 => Message::Bundle {
                bundle: r.bytes()?,
                crls: r.list()?,
                rollout: r.rollout()?,
            },
            7 => Message::Hello {
                nonce: r.u64()?,
                chain: r.list()?,
                trial: r.u8()? != 0,
            },
            8 => Message::HelloAck {
                nonce: r.u64()?,
                chain: r.list()?,
            },
            9 => Message::HelloRefused {
                nonce: r.u64()?,
                reason: r.u8()?,
            },
            other => return Err(WireError::UnknownKind(other)),
        };
        match datagram.len() - r.at {
            0 => Ok(message),
            n => Err(WireError::Trailing(n)),
        }
    }
}

struct Reader<'a> {
    buf: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(WireError::Truncated(self.at))?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Result<Bytes, WireError> {
        let at = self.at;
        let len = self.u32()? as usize;
        if len > FIELD_BYTES_MAX {
            return Err(WireError::TooLong {
                at,
                len,
                max: FIELD_BYTES_MAX,
            });
        }
        self.take(len)?;
        Ok(self.buf.slice(self.at - len..self.at))
    }
    fn string(&mut self) -> Result<String, WireError> {
        let at = self.at;
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::NotUtf8(at))
    }
    fn list(&mut self) -> Result<Vec<Bytes>, WireError> {
        let at = self.at;
        let n = usize::from(self.u8()?);
        if n > LIST_MAX {
            return Err(WireError::TooLong {
                at,
                len: n,
                max: LIST_MAX,
            });
        }
        (0..n).map(|_| self.bytes()).collect()
    }
    fn rollout(&mut self) -> Result<Option<Rollout>, WireError> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(Rollout {
                issuer: self.take(32)?.try_into().expect("32 bytes"),
                start_unix_ms: self.u64()? as i64,
                waves: self.u32()?,
                wave_interval_ms: self.u64()?,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn samples() -> Vec<Message> {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        vec![
            Message::Enroll {
                token: "tcj1.aa.bb".into(),
                csr: b("csr"),
            },
            Message::Renew {
                chain: vec![b("leaf"), b("int")],
                csr: b("csr"),
            },
            Message::Issued {
                chain: vec![b("leaf")],
                bundle: b("bundle"),
                crls: vec![b("crl1"), b("crl2")],
                rollout: Some(Rollout {
                    issuer: [7; 32],
                    start_unix_ms: -5,
                    waves: 6,
                    wave_interval_ms: 300_000,
                }),
            },
            Message::Refused { reason: "no".into() },
            Message::FetchBundle,
            Message::Bundle {
                bundle: b("x"),
                crls: vec![],
                rollout: None,
            },
            Message::Hello {
                nonce: 9,
                chain: vec![b("leaf")],
                trial: true,
            },
            Message::HelloAck {
                nonce: 9,
                chain: vec![],
            },
            Message::HelloRefused { nonce: 9, reason: 2 },
        ]
    }

    #[test]
    fn every_message_round_trips_and_every_truncation_is_an_error() {
        for m in samples() {
            let bytes = m.encode();
            assert_eq!(Message::decode(&bytes), Ok(m.clone()));
            for cut in 0..bytes.len() {
                assert!(Message::decode(&bytes.slice(..cut)).is_err(), "{m:?} cut at {cut}");
            }
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert_eq!(Message::decode(&Bytes::from(longer)), Err(WireError::Trailing(1)));
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut framed = b"TC\x01".to_vec();
            framed.extend_from_slice(&data);
            let _ = Message::decode(&Bytes::from(framed));
            let _ = Message::decode(&Bytes::from(data));
        }
    }
}
