//! The membership wire format: one message per datagram, big-endian, versioned.
//!
//! ```text
//! magic "HM" | version u8 | kind u8 | sender u64 | body ... | updates
//! ```
//! Every length is checked before it is trusted: a malformed datagram yields a [`WireError`]
//! naming what was wrong and at which byte, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

/// The magic bytes opening every membership datagram.
pub const MAGIC: [u8; 2] = *b"HM";
/// The wire version this code speaks.
pub const VERSION: u8 = 1;
/// Most updates one message may carry; a decoder refuses more, whatever the datagram size.
pub const UPDATES_PER_MESSAGE_MAX: usize = 255;
/// Most member records one push-pull or announcement message may carry.
pub const RECORDS_PER_MESSAGE_MAX: usize = 255;

/// A node's identity in the cluster.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// What a gossip update says about a member.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Alive at `incarnation`, reachable at `addr`.
    Alive {
        /// Where it listens.
        addr: SocketAddr,
    },
    /// Suspected by `by`.
    Suspect {
        /// Who suspects it.
        by: NodeId,
    },
    /// Declared dead by `by`.
    Dead {
        /// Who declared it.
        by: NodeId,
    },
}

/// A piece of gossip: a claim about `node` at `incarnation`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The member it is about.
    pub node: NodeId,
    /// The member's incarnation the claim refers to.
    pub incarnation: u64,
    /// The claim.
    pub claim: Claim,
}

/// A member as listed in a push-pull exchange.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Who.
    pub node: NodeId,
    /// Where.
    pub addr: SocketAddr,
    /// Its incarnation.
    pub incarnation: u64,
    /// 0 alive, 1 suspect, 2 dead.
    pub state: u8,
}

/// Why a join was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// The joiner's wall clock differs from the refuser's by `skew_ms`, beyond `clock_skew_max`.
    ClockSkew {
        /// Joiner minus refuser, in milliseconds.
        skew_ms: i64,
    },
}

/// One membership message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Are you alive? `target` guards against a reused address answering for someone else.
    Ping {
        /// Sequence number to echo.
        seq: u32,
        /// Whom the sender means to probe.
        target: NodeId,
    },
    /// Yes.
    Ack {
        /// The ping's sequence number.
        seq: u32,
    },
    /// Please probe `target` for me and forward its ack.
    PingReq {
        /// Sequence number the requester waits on.
        seq: u32,
        /// Whom to probe.
        target: NodeId,
        /// Where.
        target_addr: SocketAddr,
    },
    /// Gossip only.
    Gossip,
    /// State exchange (joins and anti-entropy): a chunk of the sender's member list.
    PushPull {
        /// Whether the receiver should answer with its own list: the first leg of an exchange,
        /// and in a join, the seed asked to answer it (the joiner's primary; the other seeds
        /// only learn of the joiner).
        reply_wanted: bool,
        /// Whether the sender is joining (first start or restart), not a member's anti-entropy:
        /// only joins are checked against `clock_skew_max`, whether or not the receiver still
        /// lists the sender from an earlier life.
        join: bool,
        /// Sender's wall clock, ms since the Unix epoch (for the join skew check).
        wall_ms: i64,
        /// Members in this chunk.
        records: Vec<Record>,
    },
    /// Anti-entropy's opening: a digest of the sender's whole view (itself included) and its own
    /// record. A receiver whose view digests the same has nothing to exchange and stays silent;
    /// otherwise it answers with its list, asking for the sender's (a push-pull). A settled
    /// cluster's exchanges then cost a datagram, not two lists.
    Digest {
        /// Sender's wall clock, ms since the Unix epoch (a stranger's is checked as a join's).
        wall_ms: i64,
        /// The sender's view digest (`MembershipNode`'s `view_digest`).
        digest: u64,
        /// The sender as it lists itself.
        record: Record,
    },
    /// Members the sender admitted (answered the joins of) since its last announcement, sent
    /// to every member it holds alive or suspect: how a cluster learns of its joiners without
    /// gossiping each one to everyone. Receivers adopt the records as anti-entropy (and gossip
    /// none of them on).
    Announce {
        /// The admitted members, as the sender holds them now.
        records: Vec<Record>,
    },
    /// A join was refused.
    Refuse {
        /// Why.
        reason: RefuseReason,
    },
}

/// A decoded datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Who sent it.
    pub sender: NodeId,
    /// What it says.
    pub body: Body,
    /// Piggybacked gossip.
    pub updates: Vec<Update>,
}

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// It ended before a field was complete.
    #[error("truncated at byte {at}: {field} needs {needed} more byte(s)")]
    Truncated {
        /// Offset where the field starts.
        at: usize,
        /// The field.
        field: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// It is not a membership datagram.
    #[error("bad magic {found:02x?}, expected \"HM\"")]
    BadMagic {
        /// The first two bytes.
        found: [u8; 2],
    },
    /// A version this code does not speak.
    #[error("unsupported version {0}, this node speaks {VERSION}")]
    Version(u8),
    /// A field held a value outside its range.
    #[error("byte {at}: invalid {field} {value}")]
    Invalid {
        /// Offset of the field.
        at: usize,
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// Bytes were left over after the message.
    #[error("{0} trailing byte(s) after the message")]
    Trailing(usize),
}

mod kind {
    pub const PING: u8 = 1;
    pub const ACK: u8 = 2;
    pub const PING_REQ: u8 = 3;
    pub const GOSSIP: u8 = 4;
    pub const PUSH_PULL: u8 = 5;
    pub const REFUSE: u8 = 6;
    pub const ANNOUNCE: u8 = 7;
    pub const DIGEST: u8 = 8;
}

mod claim {
    pub const ALIVE: u8 = 0;
    pub const SUSPECT: u8 = 1;
    pub const DEAD: u8 = 2;
}

/// Encoded size of an address.
pub const ADDR_BYTES_MAX: usize = 1 + 16 + 2;
/// Encoded size of an update, at most.
pub const UPDATE_BYTES_MAX: usize = 8 + 8 + 1 + ADDR_BYTES_MAX;
/// Encoded size of a record.
pub const RECORD_BYTES_MAX: usize = 8 + ADDR_BYTES_MAX + 8 + 1;
/// Encoded size of the header: magic, version, kind, sender.
const HEADER_BYTES: usize = 2 + 1 + 1 + 8;
/// Encoded size of the largest body but for the records of a push-pull or an announcement: a
/// digest's (wall clock, digest, and its one record with the record count).
const BODY_FIXED_BYTES_MAX: usize = 8 + 8 + 1 + RECORD_BYTES_MAX;
// Every other body's fixed part fits too: a ping-req's (sequence number, target and its
// address; a ping's is shorter), a push-pull's (flags, wall clock, record count), a refusal's
// (reason, skew).
const _: () = {
    let others = [4 + 8 + ADDR_BYTES_MAX, 1 + 8 + 1, 1 + 8];
    let mut i = 0;
    while i < others.len() {
        assert!(others[i] <= BODY_FIXED_BYTES_MAX, "the digest's body is the largest");
        i += 1;
    }
};
/// Encoded size of the header, the largest body but for push-pull's and announcement's
/// records (a digest's, its record included), and the update count: a message is at most this
/// plus its records and updates.
pub const HEADER_AND_BODY_BYTES_MAX: usize = HEADER_BYTES + BODY_FIXED_BYTES_MAX + 1;

fn put_addr(out: &mut BytesMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.put_u8(4);
            out.put_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.put_u8(6);
            out.put_slice(&ip.octets());
        }
    }
    out.put_u16(addr.port());
}

/// A record count, then the records. Panics if there are more than [`RECORDS_PER_MESSAGE_MAX`]:
/// senders chunk their lists, so more is a bug in this crate.
fn put_records(out: &mut BytesMut, records: &[Record]) {
    assert!(records.len() <= RECORDS_PER_MESSAGE_MAX, "too many records");
    out.put_u8(records.len() as u8);
    for r in records {
        out.put_u64(r.node.0);
        put_addr(out, &r.addr);
        out.put_u64(r.incarnation);
        out.put_u8(r.state);
    }
}

fn put_update(out: &mut BytesMut, u: &Update) {
    out.put_u64(u.node.0);
    out.put_u64(u.incarnation);
    match u.claim {
        Claim::Alive { addr } => {
            out.put_u8(claim::ALIVE);
            put_addr(out, &addr);
        }
        Claim::Suspect { by } => {
            out.put_u8(claim::SUSPECT);
            out.put_u64(by.0);
        }
        Claim::Dead { by } => {
            out.put_u8(claim::DEAD);
            out.put_u64(by.0);
        }
    }
}

impl Message {
    /// Encodes the message. Panics only if the caller broke the per-message limits, which is a
    /// bug in this crate, not bad input.
    pub fn encode(&self) -> Bytes {
        assert!(self.updates.len() <= UPDATES_PER_MESSAGE_MAX, "too many updates");
        let mut out = BytesMut::with_capacity(HEADER_AND_BODY_BYTES_MAX + self.updates.len() * UPDATE_BYTES_MAX);
        out.put_slice(&MAGIC);
        out.put_u8(VERSION);
        let kind = match &self.body {
            Body::Ping { .. } => kind::PING,
            Body::Ack { .. } => kind::ACK,
            Body::PingReq { .. } => kind::PING_REQ,
            Body::Gossip => kind::GOSSIP,
            Body::PushPull { .. } => kind::PUSH_PULL,
            Body::Refuse { .. } => kind::REFUSE,
            Body::Announce { .. } => kind::ANNOUNCE,
            Body::Digest { .. } => kind::DIGEST,
        };
        out.put_u8(kind);
        out.put_u64(self.sender.0);
        match &self.body {
            Body::Ping { seq, target } => {
                out.put_u32(*seq);
                out.put_u64(target.0);
            }
            Body::Ack { seq } => out.put_u32(*seq),
            Body::PingReq {
                seq,
                target,
                target_addr,
            } => {
                out.put_u32(*seq);
                out.put_u64(target.0);
                put_addr(&mut out, target_addr);
            }
            Body::Gossip => {}
            Body::PushPull {
                reply_wanted,
                join,
                wall_ms,
                records,
            } => {
                out.put_u8(u8::from(*reply_wanted) | u8::from(*join) << 1);
                out.put_i64(*wall_ms);
                put_records(&mut out, records);
            }
            Body::Announce { records } => put_records(&mut out, records),
            Body::Digest {
                wall_ms,
                digest,
                record,
            } => {
                out.put_i64(*wall_ms);
                out.put_u64(*digest);
                put_records(&mut out, std::slice::from_ref(record));
            }
            Body::Refuse {
                reason: RefuseReason::ClockSkew { skew_ms },
            } => {
                out.put_u8(1);
                out.put_i64(*skew_ms);
            }
        }
        out.put_u8(self.updates.len() as u8);
        for u in &self.updates {
            put_update(&mut out, u);
        }
        out.freeze()
    }

    /// Decodes one datagram.
    pub fn decode(data: &[u8]) -> Result<Message, WireError> {
        let mut r = Reader { data, at: 0 };
        let magic = [r.u8("magic")?, r.u8("magic")?];
        if magic != MAGIC {
            return Err(WireError::BadMagic { found: magic });
        }
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        let kind_at = r.at;
        let kind = r.u8("kind")?;
        let sender = r.node("sender")?;
        let body = match kind {
            kind::PING => Body::Ping {
                seq: r.u32("seq")?,
                target: r.node("target")?,
            },
            kind::ACK => Body::Ack { seq: r.u32("seq")? },
            kind::PING_REQ => Body::PingReq {
                seq: r.u32("seq")?,
                target: r.node("target")?,
                target_addr: r.addr()?,
            },
            kind::GOSSIP => Body::Gossip,
            kind::PUSH_PULL => {
                let flag_at = r.at;
                // Bit 0: reply wanted; bit 1: a join. Any other bit is refused, so no two
                // datagrams mean one message.
                let flags = r.u8("push-pull flags")?;
                if flags > 0b11 {
                    return Err(WireError::Invalid {
                        at: flag_at,
                        field: "push-pull flags",
                        value: u64::from(flags),
                    });
                }
                let (reply_wanted, join) = (flags & 1 != 0, flags & 2 != 0);
                let wall_ms = r.i64("wall clock")?;
                let records = r.records()?;
                Body::PushPull {
                    reply_wanted,
                    join,
                    wall_ms,
                    records,
                }
            }
            kind::ANNOUNCE => Body::Announce { records: r.records()? },
            kind::DIGEST => {
                let wall_ms = r.i64("wall clock")?;
                let digest = r.u64("digest")?;
                let count_at = r.at;
                let records = r.records()?;
                let [record] = records[..] else {
                    return Err(WireError::Invalid {
                        at: count_at,
                        field: "digest record count",
                        value: records.len() as u64,
                    });
                };
                Body::Digest {
                    wall_ms,
                    digest,
                    record,
                }
            }
            kind::REFUSE => {
                let reason_at = r.at;
                match r.u8("refuse reason")? {
                    1 => Body::Refuse {
                        reason: RefuseReason::ClockSkew {
                            skew_ms: r.i64("skew")?,
                        },
                    },
                    v => {
                        return Err(WireError::Invalid {
                            at: reason_at,
                            field: "refuse reason",
                            value: u64::from(v),
                        })
                    }
                }
            }
            other => {
                return Err(WireError::Invalid {
                    at: kind_at,
                    field: "message kind",
                    value: u64::from(other),
                })
            }
        };
        let count = usize::from(r.u8("update count")?);
        let mut updates = Vec::with_capacity(count);
        for _ in 0..count {
            let node = r.node("update node")?;
            let incarnation = r.u64("update incarnation")?;
            let claim_at = r.at;
            let claim = match r.u8("claim")? {
                claim::ALIVE => Claim::Alive { addr: r.addr()? },
                claim::SUSPECT => Claim::Suspect {
                    by: r.node("suspecter")?,
                },
                claim::DEAD => Claim::Dead {
                    by: r.node("declarer")?,
                },
                v => {
                    return Err(WireError::Invalid {
                        at: claim_at,
                        field: "claim",
                        value: u64::from(v),
                    })
                }
            };
            updates.push(Update {
                node,
                incarnation,
                claim,
            });
        }
        if r.at != data.len() {
            return Err(WireError::Trailing(data.len() - r.at));
        }
        Ok(Message { sender, body, updates })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let end = self.at + N;
        let Some(bytes) = self.data.get(self.at..end) else {
            return Err(WireError::Truncated {
                at: self.at,
                field,
                needed: end - self.data.len(),
            });
        };
        self.at = end;
        Ok(bytes.try_into().expect("length checked"))
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.take::<1>(field)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.take(field)?))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.take(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.take(field)?))
    }
    /// A member id: any 64-bit value.
    fn node(&mut self, field: &'static str) -> Result<NodeId, WireError> {
        Ok(NodeId(self.u64(field)?))
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.take(field)?))
    }
    /// A record count, then that many records.
    fn records(&mut self) -> Result<Vec<Record>, WireError> {
        let count = usize::from(self.u8("record count")?);
        let mut records = Vec::with_capacity(count);
        for _ in 0..count {
            let node = self.node("record node")?;
            let addr = self.addr()?;
            let incarnation = self.u64("record incarnation")?;
            let state_at = self.at;
            let state = self.u8("record state")?;
            if state > 2 {
                return Err(WireError::Invalid {
                    at: state_at,
                    field: "record state",
                    value: u64::from(state),
                });
            }
            records.push(Record {
                node,
                addr,
                incarnation,
                state,
            });
        }
        Ok(records)
    }

    fn addr(&mut self) -> Result<SocketAddr, WireError> {
        let family_at = self.at;
        let ip = match self.u8("address family")? {
            4 => IpAddr::V4(Ipv4Addr::from(self.take::<4>("IPv4 address")?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.take::<16>("IPv6 address")?)),
            v => {
                return Err(WireError::Invalid {
                    at: family_at,
                    field: "address family",
                    value: u64::from(v),
                })
            }
        };
        Ok(SocketAddr::new(ip, self.u16("port")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(ip.into()), port)),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(ip.into()), port)),
        ]
    }

    fn id() -> impl Strategy<Value = u64> {
        any::<u64>()
    }

    fn update() -> impl Strategy<Value = Update> {
        let claim = prop_oneof![
            addr().prop_map(|addr| Claim::Alive { addr }),
            id().prop_map(|b| Claim::Suspect { by: NodeId(b) }),
            id().prop_map(|b| Claim::Dead { by: NodeId(b) }),
        ];
        (id(), any::<u64>(), claim).prop_map(|(n, i, claim)| Update {
            node: NodeId(n),
            incarnation: i,
            claim,
        })
    }

    fn record() -> impl Strategy<Value = Record> {
        (id(), addr(), any::<u64>(), 0u8..3).prop_map(|(n, addr, incarnation, state)| Record {
            node: NodeId(n),
            addr,
            incarnation,
            state,
        })
    }

    fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            proptest::collection::vec(record(), 0..20).prop_map(|records| Body::Announce { records }),
            (any::<i64>(), any::<u64>(), record()).prop_map(|(wall_ms, digest, record)| Body::Digest {
                wall_ms,
                digest,
                record
            }),
            (any::<u32>(), id()).prop_map(|(seq, t)| Body::Ping { seq, target: NodeId(t) }),
            any::<u32>().prop_map(|seq| Body::Ack { seq }),
            (any::<u32>(), id(), addr()).prop_map(|(seq, t, a)| Body::PingReq {
                seq,
                target: NodeId(t),
                target_addr: a
            }),
            Just(Body::Gossip),
            (
                any::<bool>(),
                any::<bool>(),
                any::<i64>(),
                proptest::collection::vec(record(), 0..20)
            )
                .prop_map(|(reply_wanted, join, wall_ms, records)| Body::PushPull {
                    reply_wanted,
                    join,
                    wall_ms,
                    records
                }),
            any::<i64>().prop_map(|skew_ms| Body::Refuse {
                reason: RefuseReason::ClockSkew { skew_ms }
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(sender in id(), body in body(), updates in proptest::collection::vec(update(), 0..30)) {
            let msg = Message { sender: NodeId(sender), body, updates };
            prop_assert_eq!(Message::decode(&msg.encode()).unwrap(), msg);
        }

        #[test]
        fn ids_above_2_to_the_56_round_trip(body in body(), high in (1u64 << 56)..=u64::MAX) {
            let msg = Message { sender: NodeId(high), body, updates: vec![] };
            prop_assert_eq!(Message::decode(&msg.encode()).unwrap(), msg);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::decode(&data);
        }

        #[test]
        fn every_truncation_is_an_error(body in body(), cut in 0usize..1000) {
            let bytes = Message { sender: NodeId(1), body, updates: vec![] }.encode();
            let cut = cut % bytes.len();
            prop_assert!(Message::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        let mut bytes = Message {
            sender: NodeId(1),
            body: Body::Ack { seq: 7 },
            updates: vec![],
        }
        .encode()
        .to_vec();
        assert_eq!(
            Message::decode(b"XY\x01").unwrap_err(),
            WireError::BadMagic { found: *b"XY" }
        );
        bytes[3] = 99;
        assert_eq!(
            Message::decode(&bytes).unwrap_err().to_string(),
            "byte 3: invalid message kind 99"
        );
        let short = &Message {
            sender: NodeId(1),
            body: Body::Ack { seq: 7 },
            updates: vec![],
        }
        .encode()[..14];
        assert_eq!(
            Message::decode(short).unwrap_err().to_string(),
            "truncated at byte 12: seq needs 2 more byte(s)"
        );
    }
}
