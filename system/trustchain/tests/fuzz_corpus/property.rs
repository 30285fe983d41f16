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

#[path = "../../../../fuzz/shared/draws.rs"]
mod draws;

use draws::{edit, Draws};

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
    decodes_consistently(&edit(encoded.to_vec(), draws.0, HEADER_BYTES, EDITS_MAX));
}

/// The draws this wire's messages need, beside the shared ones.
impl Draws<'_> {
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
