//! What the membership wire fuzz targets check, stated once: compiled into this crate's corpus
//! replay (`tests/fuzz_corpus.rs`) and into the fuzz targets (`fuzz/src/lib.rs` includes this
//! file), so the fuzzer and CI hold the decoder to the same property.
//!
//! The property: [`Message::decode`] is total (any bytes give a message or a `WireError`, never
//! a panic) and strict (a message that decodes encodes back to exactly the bytes it came from, so
//! no two datagrams mean the same message).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hypermesh::membership::wire::{Body, Claim, Message, NodeId, Record, RefuseReason, Update};

#[path = "../../../../fuzz/shared/draws.rs"]
mod draws;

use draws::{edit, Draws};

/// Bytes a structured mutation leaves alone: the magic and the version, so mutations reach the
/// body decoders instead of failing the header check.
pub const HEADER_BYTES: usize = 3;

/// Most edits one structured input applies.
pub const EDITS_MAX: usize = 16;

/// Decodes `datagram`; if it is a message, that message must encode to `datagram` again.
pub fn decodes_canonically(datagram: &[u8]) {
    if let Ok(message) = Message::decode(datagram) {
        let encoded = message.encode();
        assert_eq!(
            &encoded[..],
            datagram,
            "{message:?} encodes to other bytes than it decoded from"
        );
    }
}

/// Builds a valid message from the first bytes of `input` (every input builds one), checks that
/// it round-trips, then applies the remaining bytes as edits behind the header and checks the
/// edited datagram as [`decodes_canonically`] does.
pub fn edited_message_decodes_canonically(input: &[u8]) {
    let mut draws = Draws(input);
    let message = message(&mut draws);
    let encoded = message.encode();
    assert_eq!(
        Message::decode(&encoded).as_ref(),
        Ok(&message),
        "a valid message must round-trip"
    );
    decodes_canonically(&edit(encoded.to_vec(), draws.0, HEADER_BYTES, EDITS_MAX));
}

/// The draws this wire's messages need, beside the shared ones.
impl Draws<'_> {
    fn node(&mut self) -> NodeId {
        NodeId(self.u64())
    }
    fn addr(&mut self) -> SocketAddr {
        let ip = if self.u8().is_multiple_of(2) {
            IpAddr::V4(Ipv4Addr::from(self.bytes::<4>()))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.bytes::<16>()))
        };
        SocketAddr::new(ip, u16::from_be_bytes(self.bytes()))
    }
}

fn message(d: &mut Draws) -> Message {
    let sender = d.node();
    let body = match d.u8() % 6 {
        0 => Body::Ping {
            seq: d.u32(),
            target: d.node(),
        },
        1 => Body::Ack { seq: d.u32() },
        2 => Body::PingReq {
            seq: d.u32(),
            target: d.node(),
            target_addr: d.addr(),
        },
        3 => Body::Gossip,
        4 => Body::PushPull {
            reply_wanted: d.u8() % 2 == 1,
            join: d.u8() % 2 == 1,
            wall_ms: d.u64() as i64,
            // A u8 count is within RECORDS_PER_MESSAGE_MAX (255).
            records: (0..d.u8()).map(|_| record(d)).collect(),
        },
        _ => Body::Refuse {
            reason: RefuseReason::ClockSkew {
                skew_ms: d.u64() as i64,
            },
        },
    };
    // A u8 count is within UPDATES_PER_MESSAGE_MAX (255).
    let updates = (0..d.u8()).map(|_| update(d)).collect();
    Message { sender, body, updates }
}

fn record(d: &mut Draws) -> Record {
    Record {
        node: d.node(),
        addr: d.addr(),
        incarnation: d.u64(),
        state: d.u8() % 3,
    }
}

fn update(d: &mut Draws) -> Update {
    let node = d.node();
    let incarnation = d.u64();
    let claim = match d.u8() % 3 {
        0 => Claim::Alive { addr: d.addr() },
        1 => Claim::Suspect { by: d.node() },
        _ => Claim::Dead { by: d.node() },
    };
    Update {
        node,
        incarnation,
        claim,
    }
}
