//! What the TrustChain node wire fuzz targets check, stated once: compiled into this crate's
//! corpus replay (`tests/fuzz_corpus.rs`) and into the fuzz targets (`fuzz/src/lib.rs` includes
//! this file), so the fuzzer and CI hold the decoder to the same property.
//!
//! The property: [`Message::decode`] is total (any bytes give a message or a `WireError`, never a
//! panic), and a message that decodes encodes to a datagram of the same length that decodes to
//! the same message. (Not to the same bytes: the decoder reads any non-zero `trial` byte as true
//! and any non-zero rollout flag as present, and the encoder writes 1.)

use bytes::Bytes;
use trustchain::node::wire::{Message, Rollout, LIST_MAX};

/// Bytes a structured mutation leaves alone: the magic and the version, so mutations reach the
/// body decoders instead of failing the header check.
pub const HEADER_BYTES: usize = 3;

/// Most edits one structured input applies.
pub const EDITS_MAX: usize = 16;

/// Longest byte string a structured input builds (the decoder allows far more; short fields keep
/// inputs small).
const FIELD_BYTES_BUILT_MAX: u8 = 64;

/// Decodes `datagram`; if it is a message, that message must encode to as many bytes and decode
/// to itself again.
pub fn decodes_consistently(datagram: &[u8]) {
    if let Ok(message) = Message::decode(&Bytes::copy_from_slice(datagram)) {
        let encoded = message.encode();
        assert_eq!(encoded.len(), datagram.len(), "{message:?} encodes to another length");
        assert_eq!(
            Message::decode(&encoded),
            Ok(message),
            "a decoded message must round-trip"
        );
    }
}

/// Builds a valid message from the first bytes of `input` (every input builds one), checks that
/// it round-trips, then applies the remaining bytes as edits behind the header and checks the
/// edited datagram as [`decodes_consistently`] does.
pub fn edited_message_decodes_consistently(input: &[u8]) {
    let mut draws = Draws(input);
    let message = message(&mut draws);
    let encoded = message.encode();
    assert_eq!(
        Message::decode(&encoded),
        Ok(message),
        "a valid message must round-trip"
    );
    decodes_consistently(&edit(encoded.to_vec(), draws.0));
}

/// Applies up to [`EDITS_MAX`] edits of 4 bytes each (operation, position as `u16`, value) to
/// `datagram`, never touching its first [`HEADER_BYTES`].
fn edit(mut datagram: Vec<u8>, edits: &[u8]) -> Vec<u8> {
    for e in edits.chunks_exact(4).take(EDITS_MAX) {
        let body_len = datagram.len() - HEADER_BYTES;
        let at = HEADER_BYTES + usize::from(u16::from_be_bytes([e[1], e[2]])) % (body_len + 1);
        match e[0] % 4 {
            0 if at < datagram.len() => datagram[at] ^= e[3],
            1 if at < datagram.len() => datagram[at] = e[3],
            2 => datagram.truncate(at),
            3 => datagram.insert(at, e[3]),
            _ => {}
        }
    }
    datagram
}

/// Reads fuzz input as a sequence of choices; past its end every draw is zero, so any input
/// yields a complete message.
struct Draws<'a>(&'a [u8]);

impl Draws<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.bytes())
    }
    fn field(&mut self) -> Bytes {
        let len = usize::from(self.u8() % (FIELD_BYTES_BUILT_MAX + 1));
        let n = len.min(self.0.len());
        let mut out = self.0[..n].to_vec();
        self.0 = &self.0[n..];
        out.resize(len, 0);
        Bytes::from(out)
    }
    fn text(&mut self) -> String {
        String::from_utf8_lossy(&self.field()).into_owned()
    }
    fn list(&mut self) -> Vec<Bytes> {
        (0..usize::from(self.u8()) % (LIST_MAX + 1))
            .map(|_| self.field())
            .collect()
    }
    fn rollout(&mut self) -> Option<Rollout> {
        (self.u8() % 2 == 1).then(|| Rollout {
            issuer: self.bytes(),
            start_unix_ms: self.u64() as i64,
            waves: self.u32(),
            wave_interval_ms: self.u64(),
        })
    }
}

fn message(d: &mut Draws) -> Message {
    match d.u8() % 9 {
        0 => Message::Enroll {
            token: d.text(),
            csr: d.field(),
        },
        1 => Message::Renew {
            chain: d.list(),
            csr: d.field(),
        },
        2 => Message::Issued {
            chain: d.list(),
            bundle: d.field(),
            crls: d.list(),
            rollout: d.rollout(),
        },
        3 => Message::Refused { reason: d.text() },
        4 => Message::FetchBundle,
        5 => Message::Bundle {
            bundle: d.field(),
            crls: d.list(),
            rollout: d.rollout(),
        },
        6 => Message::Hello {
            nonce: d.u64(),
            chain: d.list(),
            trial: d.u8() % 2 == 1,
        },
        7 => Message::HelloAck {
            nonce: d.u64(),
            chain: d.list(),
        },
        _ => Message::HelloRefused {
            nonce: d.u64(),
            reason: d.u8(),
        },
    }
}
