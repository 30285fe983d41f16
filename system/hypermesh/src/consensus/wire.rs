//! The consensus wire format: big-endian, fixed-width integers, every length checked against a
//! named limit before it is trusted.
//!
//! ```text
//! message     = version u8 | tag u8 | body
//! proposal    = block | qc | timeout? (u8 0, or u8 1 | tc) | signature
//! block       = height u64 | view u64 | parent [32] | proposer u16 | timestamp_ms u64
//!             | count u16 | count × (length u32 | bytes)
//! vote        = view u64 | height u64 | block [32] | signer u16 | signature [64]
//! timeout     = view u64 | high_qc | signer u16 | signature [64]
//! high_qc     = view u64 | height u64 | block [32]
//! qc          = view u64 | height u64 | block [32] | count u16 | count × (signer u16 | signature [64])
//! tc          = view u64 | count u16 | count × (signer u16 | high_qc | signature [64])
//! header      = view u64 | proposer u16 | block [32] | justify_view u64
//!             | timeout_view? (u8 0, or u8 1 | u64) | signature [64]
//! evidence    = kind u8 (1 votes | 2 proposals) | two votes or two headers
//! certified   = block | qc                      (a committed block and its certificate)
//! fetch       = from u64 | count u16
//! blocks      = count u16 | count × certified | proof? (u8 0, or u8 1 | certified)
//! submit      = flags u8 (bit 0: forwarded) | length u32 | transaction
//! vote_for    = vote | header                   (a vote with the proposal's signed header)
//! fetch_proposal = block [32]                   (a proposal asked for by its block's digest)
//! query       = id u64 | length u32 | request     (a read: tag 14 local, tag 16 linearizable)
//! read_index  = id u64                          (a replica asks a validator for its high QC)
//! read_index_answer = id u64 | qc
//! query_answer = id u64 | height u64 | kind u8 (1 answer | 2 refused) | length u32 | bytes
//! report      = accused u16 | reason u8 (1 bad message | 2 clock skew | 3 slow) | view u64
//!             | reporter u16 | signature [64]
//! answer      = transaction [32] | height u64 | kind u8 (1 applied | 2 refused | 3 not admitted)
//!             | length u32 | bytes
//! ```
//!
//! Decoding is total and strict: any bytes give a value or a [`WireError`] naming the field and
//! its offset, never a panic, and a value that decodes encodes back to exactly the bytes it came
//! from (no two encodings of one message). Decoding checks the shape only (lengths, flags,
//! limits); whether signatures and certificates hold is `verify`'s job, against a validator set.

use bytes::{BufMut, Bytes, BytesMut};

use super::block::{Block, BLOCK_BYTES_MAX, BLOCK_HEADER_BYTES, TRANSACTIONS_PER_BLOCK_MAX, TRANSACTION_BYTES_MAX};
use super::certificate::{QuorumCertificate, TimeoutCertificate, TimeoutEntry};
use super::crypto::{Digest, Signature, SIGNATURE_BYTES};
use super::evidence::Evidence;
use super::messages::{Proposal, ProposalHeader, QcSummary, Reason, Report, Timeout, Vote};
use super::validators::VALIDATORS_MAX;

/// The wire version this code speaks, the first byte of every [`Message`].
pub const VERSION: u8 = 1;

/// Encoded size of a QC summary.
pub const QC_SUMMARY_BYTES: usize = 8 + 8 + 32;
/// Encoded size of a vote.
pub const VOTE_BYTES: usize = QC_SUMMARY_BYTES + 2 + SIGNATURE_BYTES;
/// Encoded size of a timeout.
pub const TIMEOUT_BYTES: usize = 8 + QC_SUMMARY_BYTES + 2 + SIGNATURE_BYTES;
/// Encoded size of a quorum certificate's signer.
pub const QC_SIGNER_BYTES: usize = 2 + SIGNATURE_BYTES;
/// Largest encoded quorum certificate: [`VALIDATORS_MAX`] signers.
pub const QC_BYTES_MAX: usize = QC_SUMMARY_BYTES + 2 + VALIDATORS_MAX * QC_SIGNER_BYTES;
/// Encoded size of a timeout certificate's entry.
pub const TC_ENTRY_BYTES: usize = 2 + QC_SUMMARY_BYTES + SIGNATURE_BYTES;
/// Largest encoded timeout certificate: [`VALIDATORS_MAX`] entries.
pub const TC_BYTES_MAX: usize = 8 + 2 + VALIDATORS_MAX * TC_ENTRY_BYTES;
/// Largest encoded proposal header (with a timeout view).
pub const PROPOSAL_HEADER_BYTES_MAX: usize = 8 + 2 + 32 + 8 + 1 + 8 + SIGNATURE_BYTES;
/// Largest encoded proposal: the largest block and certificates.
pub const PROPOSAL_BYTES_MAX: usize = BLOCK_BYTES_MAX + QC_BYTES_MAX + 1 + TC_BYTES_MAX + SIGNATURE_BYTES;
/// Largest encoded evidence.
pub const EVIDENCE_BYTES_MAX: usize = 1 + 2 * PROPOSAL_HEADER_BYTES_MAX;
/// Bytes of an encoded report.
pub const REPORT_BYTES: usize = 2 + 1 + 8 + 2 + SIGNATURE_BYTES;
/// Largest encoded [`Message`] (a proposal, about 690 KiB): within STOQ's default frame of
/// 1 MiB.
pub const MESSAGE_BYTES_MAX: usize = 2 + PROPOSAL_BYTES_MAX;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes ended before a field was complete.
    #[error("truncated at byte {at}: {field} needs {needed} more byte(s)")]
    Truncated {
        /// Offset where the field starts.
        at: usize,
        /// The field.
        field: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// A version this code does not speak.
    #[error("unsupported version {0}, this node speaks {VERSION}")]
    Version(u8),
    /// A field held a value outside its range (a tag or flag).
    #[error("byte {at}: invalid {field} {value}")]
    Invalid {
        /// Offset of the field.
        at: usize,
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A count or length above its limit.
    #[error("byte {at}: {field} {value} is above the limit {max}")]
    Limit {
        /// Offset of the field.
        at: usize,
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The limit.
        max: usize,
    },
    /// Bytes were left over after the value.
    #[error("{0} trailing byte(s)")]
    Trailing(usize),
}

/// One consensus message, as sent between validators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A leader's proposal.
    Proposal(Box<Proposal>),
    /// A vote, to the next view's leader.
    Vote(Vote),
    /// A timeout.
    Timeout(Timeout),
    /// A quorum certificate (for a replica that missed it).
    QuorumCertificate(QuorumCertificate),
    /// A timeout certificate (for a replica that missed it).
    TimeoutCertificate(TimeoutCertificate),
    /// Evidence of misbehaviour.
    Evidence(Evidence),
    /// Catch-up: a replica asks a peer for committed blocks.
    Fetch(Fetch),
    /// Catch-up: committed blocks with their certificates, in height order.
    Blocks(Blocks),
    /// A client's transaction (or a replica forwarding one to the coming leaders).
    Submit(Submit),
    /// What became of a submitted transaction, to the client that submitted it.
    Answer(Answer),
    /// A vote with the signed header of the proposal it votes for, so the collector sees
    /// conflicting proposals of one view (a leader that sent different blocks to different
    /// validators) as evidence.
    VoteFor(Vote, Box<ProposalHeader>),
    /// A validator's signed report of another's misbehaviour (not proof: counted when enough
    /// validators report it).
    Report(Report),
    /// A replica missing a block (an ancestor of a certified one) asks a peer for its proposal
    /// by the block's digest; the answer is the [`Message::Proposal`].
    FetchProposal(Digest),
    /// A client's read of one replica's state, at the consistency it names.
    Query(Query),
    /// The replica's answer to a [`Message::Query`].
    QueryAnswer(QueryAnswer),
    /// A replica serving a linearizable read asks a validator for its highest certificate
    /// (the read's id, the asking replica's own).
    ReadIndex(u64),
    /// A validator's highest certificate, for the read of that id.
    ReadIndexAnswer(u64, QuorumCertificate),
    /// Catch-up past pruned heights: the answer to a [`Message::Fetch`] for heights this
    /// validator no longer holds, offering its newest checkpoint instead.
    SnapshotOffer(SnapshotOffer),
    /// Catch-up past pruned heights: a replica asks for the bytes of the checkpoint of a
    /// height from an offset on; the answer is a [`Message::SnapshotChunk`].
    FetchSnapshot {
        /// The checkpoint's height.
        height: u64,
        /// The first byte wanted.
        offset: u64,
    },
    /// Part of a checkpoint's bytes.
    SnapshotChunk(SnapshotChunk),
}

/// The most bytes of a checkpoint one [`SnapshotChunk`] carries (with its header, it fits one
/// datagram of [`MESSAGE_BYTES_MAX`]).
pub const SNAPSHOT_CHUNK_BYTES_MAX: usize = 48 * 1024;

/// A validator's newest checkpoint ([`super::checkpoint::Checkpoint`]), described: a replica
/// takes one only once `f + 1` validators offered the same, so at least one honest validator
/// computed that state at that height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotOffer {
    /// The committed height the checkpoint was taken at.
    pub height: u64,
    /// The view of the block at that height.
    pub view: u64,
    /// The digest of the block at that height.
    pub block: Digest,
    /// SHA-256 of the checkpoint's encoding.
    pub state: Digest,
    /// The encoding's length in bytes.
    pub len: u64,
}

/// The bytes of a checkpoint from `offset` on (at most [`SNAPSHOT_CHUNK_BYTES_MAX`]), of
/// `total` in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// The checkpoint's height.
    pub height: u64,
    /// Where these bytes start.
    pub offset: u64,
    /// The encoding's length in bytes.
    pub total: u64,
    /// The bytes.
    pub bytes: Bytes,
}

/// How fresh a [`Query`]'s answer must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// The replica's committed state as it is: possibly stale, one message each way.
    Local,
    /// Every transaction acknowledged before the query was sent is in the state read: the
    /// replica learns the highest certificate of a quorum of validators and answers once it
    /// has committed that height (a read index confirmed by a quorum, not trusted to a leader).
    Linearizable,
}

/// A read-only request to one replica's state machine ([`crate::replication::StateMachine::query`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The client's id for it, echoed in the answer.
    pub id: u64,
    /// How fresh the answer must be.
    pub consistency: Consistency,
    /// The request, in the state machine's encoding.
    pub request: Bytes,
}

/// A replica's answer to a query, as of its committed height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryAnswer {
    /// The query's id.
    pub id: u64,
    /// The committed height the state was read at.
    pub height: u64,
    /// The answer, or why the request was refused.
    pub result: Result<Bytes, String>,
}

/// The most certified blocks one [`Blocks`] message carries.
pub const BLOCKS_PER_MESSAGE_MAX: usize = 256;

/// The largest answer body (a state machine's reply or refusal).
pub const ANSWER_BYTES_MAX: usize = 256 * 1024;

/// A committed block and the certificate of it: what the log stores and catch-up serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedBlock {
    /// The block.
    pub block: Block,
    /// A quorum certificate of exactly this block.
    pub qc: QuorumCertificate,
}

/// A request for committed blocks from height `from` on, at most `count` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The first height wanted.
    pub from: u64,
    /// How many at most.
    pub count: u16,
}

/// Committed blocks at consecutive heights, each with its certificate, and the proof that the
/// last is committed when the blocks themselves do not show it: a certified block of the next
/// view extending it (the two-chain commit rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocks {
    /// Consecutive heights, lowest first.
    pub records: Vec<CertifiedBlock>,
    /// A certified child of the last record, in the view after it.
    pub proof: Option<Box<CertifiedBlock>>,
}

/// A transaction submitted to a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submit {
    /// Sent on by a replica rather than by the client (not forwarded again, not answered).
    pub forwarded: bool,
    /// The transaction's bytes; its id is their digest.
    pub transaction: Bytes,
}

/// What a replica answers a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    /// Committed and applied: the state machine's answer.
    Applied(Bytes),
    /// Committed, and refused by the state machine's rules (every replica refused it alike).
    Refused(String),
    /// Not taken in (the replica's pool is full, or the transaction is too large): it was not
    /// forwarded and will not commit through this submission.
    NotAdmitted(String),
    /// Committed at the answer's height, but the machine's answer is no longer held: a
    /// resubmission came after the replica let older answers go to stay within
    /// [`super::ConsensusConfig::answer_bytes_max`]. Applied or refused is not known.
    Forgotten,
}

impl AnswerKind {
    /// Bytes of the answer's body (the machine's answer or the reason) a replica holds.
    pub fn body_len(&self) -> usize {
        match self {
            AnswerKind::Applied(b) => b.len(),
            AnswerKind::Refused(s) | AnswerKind::NotAdmitted(s) => s.len(),
            AnswerKind::Forgotten => 0,
        }
    }
}

/// The answer to one submitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The transaction's id (the digest of its bytes).
    pub transaction: Digest,
    /// The height it committed at (0 when not admitted).
    pub height: u64,
    /// What became of it.
    pub kind: AnswerKind,
}

mod answer_kind {
    pub const APPLIED: u8 = 1;
    pub const REFUSED: u8 = 2;
    pub const NOT_ADMITTED: u8 = 3;
    pub const FORGOTTEN: u8 = 4;
}

mod tag {
    pub const PROPOSAL: u8 = 1;
    pub const VOTE: u8 = 2;
    pub const TIMEOUT: u8 = 3;
    pub const QUORUM_CERTIFICATE: u8 = 4;
    pub const TIMEOUT_CERTIFICATE: u8 = 5;
    pub const EVIDENCE: u8 = 6;
    pub const FETCH: u8 = 7;
    pub const BLOCKS: u8 = 8;
    pub const SUBMIT: u8 = 9;
    pub const ANSWER: u8 = 10;
    pub const VOTE_FOR: u8 = 11;
    pub const REPORT: u8 = 12;
    pub const FETCH_PROPOSAL: u8 = 13;
    pub const QUERY: u8 = 14;
    pub const QUERY_ANSWER: u8 = 15;
    pub const QUERY_LINEARIZABLE: u8 = 16;
    pub const READ_INDEX: u8 = 17;
    pub const READ_INDEX_ANSWER: u8 = 18;
    pub const SNAPSHOT_OFFER: u8 = 19;
    pub const FETCH_SNAPSHOT: u8 = 20;
    pub const SNAPSHOT_CHUNK: u8 = 21;
}

mod evidence_kind {
    pub const VOTES: u8 = 1;
    pub const PROPOSALS: u8 = 2;
}

impl Message {
    /// Encodes the message: [`VERSION`], its tag, its body.
    ///
    /// # Panics
    ///
    /// If it breaks a limit (a block's, or more than [`VALIDATORS_MAX`] signers): a bug of the
    /// caller, which builds messages from checked parts, not bad input.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(2 + self.body_len());
        out.put_u8(VERSION);
        match self {
            Message::Proposal(p) => {
                out.put_u8(tag::PROPOSAL);
                p.write(&mut out);
            }
            Message::Vote(v) => {
                out.put_u8(tag::VOTE);
                v.write(&mut out);
            }
            Message::Timeout(t) => {
                out.put_u8(tag::TIMEOUT);
                t.write(&mut out);
            }
            Message::QuorumCertificate(qc) => {
                out.put_u8(tag::QUORUM_CERTIFICATE);
                qc.write(&mut out);
            }
            Message::TimeoutCertificate(tc) => {
                out.put_u8(tag::TIMEOUT_CERTIFICATE);
                tc.write(&mut out);
            }
            Message::Evidence(e) => {
                out.put_u8(tag::EVIDENCE);
                e.write(&mut out);
            }
            Message::Fetch(f) => {
                out.put_u8(tag::FETCH);
                out.put_u64(f.from);
                out.put_u16(f.count);
            }
            Message::Blocks(b) => {
                out.put_u8(tag::BLOCKS);
                b.write(&mut out);
            }
            Message::Submit(s) => {
                out.put_u8(tag::SUBMIT);
                s.write(&mut out);
            }
            Message::Answer(a) => {
                out.put_u8(tag::ANSWER);
                a.write(&mut out);
            }
            Message::VoteFor(v, h) => {
                out.put_u8(tag::VOTE_FOR);
                v.write(&mut out);
                h.write(&mut out);
            }
            Message::FetchProposal(d) => {
                out.put_u8(tag::FETCH_PROPOSAL);
                out.put_slice(d);
            }
            Message::Query(q) => {
                assert!(q.request.len() <= TRANSACTION_BYTES_MAX, "a query above the limit");
                out.put_u8(match q.consistency {
                    Consistency::Local => tag::QUERY,
                    Consistency::Linearizable => tag::QUERY_LINEARIZABLE,
                });
                out.put_u64(q.id);
                out.put_u32(q.request.len() as u32);
                out.put_slice(&q.request);
            }
            Message::QueryAnswer(a) => {
                let (kind, body): (u8, &[u8]) = match &a.result {
                    Ok(b) => (1, b),
                    Err(e) => (2, e.as_bytes()),
                };
                assert!(body.len() <= ANSWER_BYTES_MAX, "an answer above the limit");
                out.put_u8(tag::QUERY_ANSWER);
                out.put_u64(a.id);
                out.put_u64(a.height);
                out.put_u8(kind);
                out.put_u32(body.len() as u32);
                out.put_slice(body);
            }
            Message::ReadIndex(id) => {
                out.put_u8(tag::READ_INDEX);
                out.put_u64(*id);
            }
            Message::ReadIndexAnswer(id, qc) => {
                out.put_u8(tag::READ_INDEX_ANSWER);
                out.put_u64(*id);
                qc.write(&mut out);
            }
            Message::SnapshotOffer(o) => {
                out.put_u8(tag::SNAPSHOT_OFFER);
                out.put_u64(o.height);
                out.put_u64(o.view);
                out.put_slice(&o.block);
                out.put_slice(&o.state);
                out.put_u64(o.len);
            }
            Message::FetchSnapshot { height, offset } => {
                out.put_u8(tag::FETCH_SNAPSHOT);
                out.put_u64(*height);
                out.put_u64(*offset);
            }
            Message::SnapshotChunk(c) => {
                assert!(
                    c.bytes.len() <= SNAPSHOT_CHUNK_BYTES_MAX
                        && c.offset
                            .checked_add(c.bytes.len() as u64)
                            .is_some_and(|end| end <= c.total),
                    "a snapshot chunk above the limit or past its total"
                );
                out.put_u8(tag::SNAPSHOT_CHUNK);
                out.put_u64(c.height);
                out.put_u64(c.offset);
                out.put_u64(c.total);
                out.put_u32(c.bytes.len() as u32);
                out.put_slice(&c.bytes);
            }
            Message::Report(r) => {
                out.put_u8(tag::REPORT);
                out.put_u16(r.accused);
                out.put_u8(r.reason as u8);
                out.put_u64(r.view);
                out.put_u16(r.reporter);
                out.put_slice(&r.signature.0);
            }
        }
        out.freeze()
    }

    fn body_len(&self) -> usize {
        match self {
            Message::Proposal(p) => p.encoded_len(),
            Message::Vote(_) => VOTE_BYTES,
            Message::Timeout(_) => TIMEOUT_BYTES,
            Message::QuorumCertificate(qc) => qc.encoded_len(),
            Message::TimeoutCertificate(tc) => tc.encoded_len(),
            Message::Evidence(_) => EVIDENCE_BYTES_MAX,
            Message::Fetch(_) => 10,
            Message::Blocks(b) => b.encoded_len(),
            Message::Submit(s) => 5 + s.transaction.len(),
            Message::Answer(a) => a.encoded_len(),
            Message::VoteFor(_, h) => VOTE_BYTES + h.encoded_len(),
            Message::Report(_) => REPORT_BYTES,
            Message::FetchProposal(_) => 32,
            Message::Query(q) => 12 + q.request.len(),
            Message::ReadIndex(_) => 8,
            Message::ReadIndexAnswer(_, qc) => 8 + qc.encoded_len(),
            Message::SnapshotOffer(_) => 8 + 8 + 32 + 32 + 8,
            Message::FetchSnapshot { .. } => 16,
            Message::SnapshotChunk(c) => 28 + c.bytes.len(),
            Message::QueryAnswer(a) => {
                21 + match &a.result {
                    Ok(b) => b.len(),
                    Err(e) => e.len(),
                }
            }
        }
    }

    /// Decodes one message. Transactions are copied out of `data`.
    pub fn decode(data: &[u8]) -> Result<Message, WireError> {
        let mut r = Reader::new(data);
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        let tag_at = r.at;
        let tag = r.u8("message tag")?;
        let message = match tag {
            tag::PROPOSAL => Message::Proposal(Box::new(Proposal::read(&mut r)?)),
            tag::VOTE => Message::Vote(Vote::read(&mut r)?),
            tag::TIMEOUT => Message::Timeout(Timeout::read(&mut r)?),
            tag::QUORUM_CERTIFICATE => Message::QuorumCertificate(QuorumCertificate::read(&mut r)?),
            tag::TIMEOUT_CERTIFICATE => Message::TimeoutCertificate(TimeoutCertificate::read(&mut r)?),
            tag::EVIDENCE => Message::Evidence(Evidence::read(&mut r)?),
            tag::FETCH => Message::Fetch(Fetch {
                from: r.u64("fetch from")?,
                count: r.u16("fetch count")?,
            }),
            tag::BLOCKS => Message::Blocks(Blocks::read(&mut r)?),
            tag::SUBMIT => Message::Submit(Submit::read(&mut r)?),
            tag::ANSWER => Message::Answer(Answer::read(&mut r)?),
            tag::FETCH_PROPOSAL => Message::FetchProposal(r.digest("fetch proposal block")?),
            tag::QUERY | tag::QUERY_LINEARIZABLE => {
                let consistency = if tag == tag::QUERY {
                    Consistency::Local
                } else {
                    Consistency::Linearizable
                };
                let id = r.u64("query id")?;
                let length = r.length("query length", TRANSACTION_BYTES_MAX)?;
                Message::Query(Query {
                    id,
                    consistency,
                    request: Bytes::copy_from_slice(r.slice(length, "query request")?),
                })
            }
            tag::READ_INDEX => Message::ReadIndex(r.u64("read index id")?),
            tag::READ_INDEX_ANSWER => {
                Message::ReadIndexAnswer(r.u64("read index answer id")?, QuorumCertificate::read(&mut r)?)
            }
            tag::QUERY_ANSWER => {
                let id = r.u64("query answer id")?;
                let height = r.u64("query answer height")?;
                let kind_at = r.at;
                let kind = r.u8("query answer kind")?;
                let length = r.length("query answer length", ANSWER_BYTES_MAX)?;
                let body_at = r.at;
                let body = r.slice(length, "query answer body")?;
                let result = match kind {
                    1 => Ok(Bytes::copy_from_slice(body)),
                    2 => Err(String::from_utf8(body.to_vec()).map_err(|_| WireError::Invalid {
                        at: body_at,
                        field: "query refusal (not UTF-8)",
                        value: length as u64,
                    })?),
                    other => {
                        return Err(WireError::Invalid {
                            at: kind_at,
                            field: "query answer kind",
                            value: u64::from(other),
                        })
                    }
                };
                Message::QueryAnswer(QueryAnswer { id, height, result })
            }
            tag::REPORT => Message::Report(Report {
                accused: r.u16("report accused")?,
                reason: {
                    let at = r.at;
                    let value = r.u8("report reason")?;
                    Reason::from_u8(value).ok_or(WireError::Invalid {
                        at,
                        field: "report reason",
                        value: u64::from(value),
                    })?
                },
                view: r.u64("report view")?,
                reporter: r.u16("report reporter")?,
                signature: r.signature("report signature")?,
            }),
            tag::VOTE_FOR => Message::VoteFor(Vote::read(&mut r)?, Box::new(ProposalHeader::read(&mut r)?)),
            tag::SNAPSHOT_OFFER => Message::SnapshotOffer(SnapshotOffer {
                height: r.u64("snapshot offer height")?,
                view: r.u64("snapshot offer view")?,
                block: r.digest("snapshot offer block")?,
                state: r.digest("snapshot offer state")?,
                len: r.u64("snapshot offer length")?,
            }),
            tag::FETCH_SNAPSHOT => Message::FetchSnapshot {
                height: r.u64("fetch snapshot height")?,
                offset: r.u64("fetch snapshot offset")?,
            },
            tag::SNAPSHOT_CHUNK => {
                let height = r.u64("snapshot chunk height")?;
                let offset = r.u64("snapshot chunk offset")?;
                let total = r.u64("snapshot chunk total")?;
                let at = r.at;
                let length = r.length("snapshot chunk length", SNAPSHOT_CHUNK_BYTES_MAX)?;
                if offset.checked_add(length as u64).is_none_or(|end| end > total) {
                    return Err(WireError::Invalid {
                        at,
                        field: "snapshot chunk length (past its total)",
                        value: length as u64,
                    });
                }
                Message::SnapshotChunk(SnapshotChunk {
                    height,
                    offset,
                    total,
                    bytes: Bytes::copy_from_slice(r.slice(length, "snapshot chunk bytes")?),
                })
            }
            other => {
                return Err(WireError::Invalid {
                    at: tag_at,
                    field: "message tag",
                    value: u64::from(other),
                })
            }
        };
        r.finish()?;
        Ok(message)
    }
}

/// `encode`, `decode` and the internal read/write for a type; `decode` refuses trailing bytes.
macro_rules! codec {
    ($type:ty, $what:literal) => {
        impl $type {
            #[doc = concat!("Encodes ", $what, " alone (no version or tag).")]
            ///
            /// # Panics
            ///
            /// If it breaks a limit (a bug of the caller, not bad input).
            pub fn encode(&self) -> Bytes {
                let mut out = BytesMut::with_capacity(self.encoded_len());
                self.write(&mut out);
                out.freeze()
            }

            #[doc = concat!("Decodes ", $what, " encoded alone, refusing trailing bytes.")]
            pub fn decode(data: &[u8]) -> Result<Self, WireError> {
                let mut r = Reader::new(data);
                let value = Self::read(&mut r)?;
                r.finish()?;
                Ok(value)
            }
        }
    };
}

codec!(Block, "a block");
codec!(Vote, "a vote");
codec!(Timeout, "a timeout");
codec!(QuorumCertificate, "a quorum certificate");
codec!(TimeoutCertificate, "a timeout certificate");
codec!(ProposalHeader, "a proposal header");
codec!(Proposal, "a proposal");
codec!(Evidence, "evidence");
codec!(CertifiedBlock, "a certified block");

fn put_summary(out: &mut BytesMut, s: &QcSummary) {
    out.put_u64(s.view);
    out.put_u64(s.height);
    out.put_slice(&s.block);
}

fn read_summary(r: &mut Reader, what: &'static [&'static str; 3]) -> Result<QcSummary, WireError> {
    Ok(QcSummary {
        view: r.u64(what[0])?,
        height: r.u64(what[1])?,
        block: r.digest(what[2])?,
    })
}

/// A count of signers, checked against [`VALIDATORS_MAX`].
fn put_signer_count(out: &mut BytesMut, count: usize) {
    assert!(count <= VALIDATORS_MAX, "{count} signers, at most {VALIDATORS_MAX}");
    out.put_u16(count as u16);
}

impl Block {
    fn write(&self, out: &mut BytesMut) {
        if let Err(e) = self.check_limits() {
            panic!("encoding a block that breaks the limits: {e}");
        }
        out.put_u64(self.height);
        out.put_u64(self.view);
        out.put_slice(&self.parent);
        out.put_u16(self.proposer);
        out.put_u64(self.timestamp_ms);
        out.put_u16(self.transactions.len() as u16);
        for t in &self.transactions {
            out.put_u32(t.len() as u32);
            out.put_slice(t);
        }
    }

    fn read(r: &mut Reader) -> Result<Block, WireError> {
        let start = r.at;
        let height = r.u64("block height")?;
        let view = r.u64("block view")?;
        let parent = r.digest("block parent")?;
        let proposer = r.u16("block proposer")?;
        let timestamp_ms = r.u64("block timestamp")?;
        let count = r.count("transaction count", TRANSACTIONS_PER_BLOCK_MAX)?;
        let mut transactions = Vec::with_capacity(count.min(r.remaining() / 4));
        for _ in 0..count {
            let length_at = r.at;
            let length = r.length("transaction length", TRANSACTION_BYTES_MAX)?;
            Reader::at_most(length_at, "block size", r.at - start + length, BLOCK_BYTES_MAX)?;
            transactions.push(Bytes::copy_from_slice(r.slice(length, "transaction")?));
        }
        Ok(Block {
            height,
            view,
            parent,
            proposer,
            timestamp_ms,
            transactions,
        })
    }
}

impl Vote {
    fn encoded_len(&self) -> usize {
        VOTE_BYTES
    }

    fn write(&self, out: &mut BytesMut) {
        put_summary(out, &self.summary());
        out.put_u16(self.signer);
        out.put_slice(&self.signature.0);
    }

    fn read(r: &mut Reader) -> Result<Vote, WireError> {
        let s = read_summary(r, &["vote view", "vote height", "vote block"])?;
        Ok(Vote {
            view: s.view,
            height: s.height,
            block: s.block,
            signer: r.u16("vote signer")?,
            signature: r.signature("vote signature")?,
        })
    }
}

impl Timeout {
    fn encoded_len(&self) -> usize {
        TIMEOUT_BYTES
    }

    fn write(&self, out: &mut BytesMut) {
        out.put_u64(self.view);
        put_summary(out, &self.high_qc);
        out.put_u16(self.signer);
        out.put_slice(&self.signature.0);
    }

    fn read(r: &mut Reader) -> Result<Timeout, WireError> {
        Ok(Timeout {
            view: r.u64("timeout view")?,
            high_qc: read_summary(r, &["high QC view", "high QC height", "high QC block"])?,
            signer: r.u16("timeout signer")?,
            signature: r.signature("timeout signature")?,
        })
    }
}

impl QuorumCertificate {
    fn encoded_len(&self) -> usize {
        QC_SUMMARY_BYTES + 2 + self.signers.len() * QC_SIGNER_BYTES
    }

    /// # Panics
    ///
    /// If signers and signatures differ in number (such a certificate has no encoding).
    fn write(&self, out: &mut BytesMut) {
        assert_eq!(
            self.signers.len(),
            self.signatures.len(),
            "a certificate needs one signature per signer"
        );
        put_summary(out, &self.summary());
        put_signer_count(out, self.signers.len());
        for (signer, signature) in self.signers.iter().zip(&self.signatures) {
            out.put_u16(*signer);
            out.put_slice(&signature.0);
        }
    }

    fn read(r: &mut Reader) -> Result<QuorumCertificate, WireError> {
        let s = read_summary(r, &["QC view", "QC height", "QC block"])?;
        let count = r.count("QC signer count", VALIDATORS_MAX)?;
        let capacity = count.min(r.remaining() / QC_SIGNER_BYTES);
        let (mut signers, mut signatures) = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
        for _ in 0..count {
            signers.push(r.u16("QC signer")?);
            signatures.push(r.signature("QC signature")?);
        }
        Ok(QuorumCertificate {
            view: s.view,
            height: s.height,
            block: s.block,
            signers,
            signatures,
        })
    }
}

impl TimeoutCertificate {
    fn encoded_len(&self) -> usize {
        8 + 2 + self.entries.len() * TC_ENTRY_BYTES
    }

    fn write(&self, out: &mut BytesMut) {
        out.put_u64(self.view);
        put_signer_count(out, self.entries.len());
        for e in &self.entries {
            out.put_u16(e.signer);
            put_summary(out, &e.high_qc);
            out.put_slice(&e.signature.0);
        }
    }

    fn read(r: &mut Reader) -> Result<TimeoutCertificate, WireError> {
        let view = r.u64("TC view")?;
        let count = r.count("TC entry count", VALIDATORS_MAX)?;
        let mut entries = Vec::with_capacity(count.min(r.remaining() / TC_ENTRY_BYTES));
        for _ in 0..count {
            entries.push(TimeoutEntry {
                signer: r.u16("TC signer")?,
                high_qc: read_summary(r, &["TC high QC view", "TC high QC height", "TC high QC block"])?,
                signature: r.signature("TC signature")?,
            });
        }
        Ok(TimeoutCertificate { view, entries })
    }
}

impl ProposalHeader {
    fn encoded_len(&self) -> usize {
        PROPOSAL_HEADER_BYTES_MAX - if self.timeout_view.is_some() { 0 } else { 8 }
    }

    fn write(&self, out: &mut BytesMut) {
        out.put_u64(self.view);
        out.put_u16(self.proposer);
        out.put_slice(&self.block);
        out.put_u64(self.justify_view);
        match self.timeout_view {
            None => out.put_u8(0),
            Some(v) => {
                out.put_u8(1);
                out.put_u64(v);
            }
        }
        out.put_slice(&self.signature.0);
    }

    fn read(r: &mut Reader) -> Result<ProposalHeader, WireError> {
        Ok(ProposalHeader {
            view: r.u64("header view")?,
            proposer: r.u16("header proposer")?,
            block: r.digest("header block")?,
            justify_view: r.u64("header justify view")?,
            timeout_view: if r.flag("header timeout flag")? {
                Some(r.u64("header timeout view")?)
            } else {
                None
            },
            signature: r.signature("header signature")?,
        })
    }
}

impl Proposal {
    fn encoded_len(&self) -> usize {
        self.block.encoded_len()
            + self.justify.encoded_len()
            + 1
            + self.timeout.as_ref().map_or(0, |t| t.encoded_len())
            + SIGNATURE_BYTES
    }

    fn write(&self, out: &mut BytesMut) {
        self.block.write(out);
        self.justify.write(out);
        match &self.timeout {
            None => out.put_u8(0),
            Some(tc) => {
                out.put_u8(1);
                tc.write(out);
            }
        }
        out.put_slice(&self.signature.0);
    }

    fn read(r: &mut Reader) -> Result<Proposal, WireError> {
        Ok(Proposal {
            block: Block::read(r)?,
            justify: QuorumCertificate::read(r)?,
            timeout: if r.flag("proposal timeout flag")? {
                Some(TimeoutCertificate::read(r)?)
            } else {
                None
            },
            signature: r.signature("proposal signature")?,
        })
    }
}

impl Evidence {
    fn encoded_len(&self) -> usize {
        1 + match self {
            Evidence::ConflictingVotes(..) => 2 * VOTE_BYTES,
            Evidence::ConflictingProposals(a, b) => a.encoded_len() + b.encoded_len(),
        }
    }

    fn write(&self, out: &mut BytesMut) {
        match self {
            Evidence::ConflictingVotes(a, b) => {
                out.put_u8(evidence_kind::VOTES);
                a.write(out);
                b.write(out);
            }
            Evidence::ConflictingProposals(a, b) => {
                out.put_u8(evidence_kind::PROPOSALS);
                a.write(out);
                b.write(out);
            }
        }
    }

    fn read(r: &mut Reader) -> Result<Evidence, WireError> {
        let kind_at = r.at;
        match r.u8("evidence kind")? {
            evidence_kind::VOTES => Ok(Evidence::ConflictingVotes(Vote::read(r)?, Vote::read(r)?)),
            evidence_kind::PROPOSALS => Ok(Evidence::ConflictingProposals(
                ProposalHeader::read(r)?,
                ProposalHeader::read(r)?,
            )),
            other => Err(WireError::Invalid {
                at: kind_at,
                field: "evidence kind",
                value: u64::from(other),
            }),
        }
    }
}

impl CertifiedBlock {
    /// The size of its encoding.
    pub(crate) fn encoded_len(&self) -> usize {
        self.block.encoded_len() + self.qc.encoded_len()
    }

    fn write(&self, out: &mut BytesMut) {
        self.block.write(out);
        self.qc.write(out);
    }

    fn read(r: &mut Reader) -> Result<CertifiedBlock, WireError> {
        Ok(CertifiedBlock {
            block: Block::read(r)?,
            qc: QuorumCertificate::read(r)?,
        })
    }
}

impl Blocks {
    /// The size of its encoding (without version and tag).
    pub fn encoded_len(&self) -> usize {
        2 + self.records.iter().map(CertifiedBlock::encoded_len).sum::<usize>()
            + 1
            + self.proof.as_ref().map_or(0, |p| p.encoded_len())
    }

    fn write(&self, out: &mut BytesMut) {
        assert!(
            self.records.len() <= BLOCKS_PER_MESSAGE_MAX,
            "{} blocks in one message, at most {BLOCKS_PER_MESSAGE_MAX}",
            self.records.len()
        );
        out.put_u16(self.records.len() as u16);
        for record in &self.records {
            record.write(out);
        }
        match &self.proof {
            None => out.put_u8(0),
            Some(p) => {
                out.put_u8(1);
                p.write(out);
            }
        }
    }

    fn read(r: &mut Reader) -> Result<Blocks, WireError> {
        let start = r.at;
        let count = r.count("blocks count", BLOCKS_PER_MESSAGE_MAX)?;
        let mut records = Vec::with_capacity(count.min(r.remaining() / BLOCK_HEADER_BYTES));
        for _ in 0..count {
            let at = r.at;
            records.push(CertifiedBlock::read(r)?);
            Reader::at_most(at, "blocks size", r.at - start, MESSAGE_BYTES_MAX)?;
        }
        let proof = if r.flag("blocks proof flag")? {
            Some(Box::new(CertifiedBlock::read(r)?))
        } else {
            None
        };
        Ok(Blocks { records, proof })
    }
}

impl Submit {
    fn write(&self, out: &mut BytesMut) {
        assert!(
            self.transaction.len() <= TRANSACTION_BYTES_MAX,
            "a transaction above the limit"
        );
        out.put_u8(u8::from(self.forwarded));
        out.put_u32(self.transaction.len() as u32);
        out.put_slice(&self.transaction);
    }

    fn read(r: &mut Reader) -> Result<Submit, WireError> {
        let forwarded = r.flag("submit flags")?;
        let length = r.length("submit length", TRANSACTION_BYTES_MAX)?;
        Ok(Submit {
            forwarded,
            transaction: Bytes::copy_from_slice(r.slice(length, "submitted transaction")?),
        })
    }
}

impl Answer {
    fn body(&self) -> &[u8] {
        match &self.kind {
            AnswerKind::Applied(b) => b,
            AnswerKind::Refused(s) | AnswerKind::NotAdmitted(s) => s.as_bytes(),
            AnswerKind::Forgotten => &[],
        }
    }

    fn encoded_len(&self) -> usize {
        32 + 8 + 1 + 4 + self.body().len()
    }

    fn write(&self, out: &mut BytesMut) {
        let body = self.body();
        assert!(body.len() <= ANSWER_BYTES_MAX, "an answer above the limit");
        out.put_slice(&self.transaction);
        out.put_u64(self.height);
        out.put_u8(match self.kind {
            AnswerKind::Applied(_) => answer_kind::APPLIED,
            AnswerKind::Refused(_) => answer_kind::REFUSED,
            AnswerKind::NotAdmitted(_) => answer_kind::NOT_ADMITTED,
            AnswerKind::Forgotten => answer_kind::FORGOTTEN,
        });
        out.put_u32(body.len() as u32);
        out.put_slice(body);
    }

    fn read(r: &mut Reader) -> Result<Answer, WireError> {
        let transaction = r.digest("answer transaction")?;
        let height = r.u64("answer height")?;
        let kind_at = r.at;
        let kind = r.u8("answer kind")?;
        let length_at = r.at;
        let length = r.length("answer length", ANSWER_BYTES_MAX)?;
        let body_at = r.at;
        let body = r.slice(length, "answer body")?;
        let text = |field| {
            String::from_utf8(body.to_vec()).map_err(|_| WireError::Invalid {
                at: body_at,
                field,
                value: length as u64,
            })
        };
        let kind = match kind {
            answer_kind::APPLIED => AnswerKind::Applied(Bytes::copy_from_slice(body)),
            answer_kind::REFUSED => AnswerKind::Refused(text("answer reason (not UTF-8)")?),
            answer_kind::NOT_ADMITTED => AnswerKind::NotAdmitted(text("answer reason (not UTF-8)")?),
            answer_kind::FORGOTTEN if body.is_empty() => AnswerKind::Forgotten,
            answer_kind::FORGOTTEN => {
                return Err(WireError::Invalid {
                    at: length_at,
                    field: "answer length (a forgotten answer has no body)",
                    value: length as u64,
                })
            }
            other => {
                return Err(WireError::Invalid {
                    at: kind_at,
                    field: "answer kind",
                    value: u64::from(other),
                })
            }
        };
        Ok(Answer {
            transaction,
            height,
            kind,
        })
    }
}

/// Reads fields off a byte slice, naming each one and its offset in any error.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.at
    }

    fn slice(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(WireError::Truncated {
                at: self.at,
                field,
                needed: n - self.remaining(),
            });
        }
        let bytes = &self.data[self.at..self.at + n];
        self.at += n;
        Ok(bytes)
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        Ok(self.slice(N, field)?.try_into().expect("length checked"))
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

    fn digest(&mut self, field: &'static str) -> Result<Digest, WireError> {
        self.take(field)
    }

    fn signature(&mut self, field: &'static str) -> Result<Signature, WireError> {
        Ok(Signature(self.take(field)?))
    }

    /// A `u32` length of bytes to follow, at most `max`.
    fn length(&mut self, field: &'static str, max: usize) -> Result<usize, WireError> {
        let at = self.at;
        let length = self.u32(field)? as usize;
        Self::at_most(at, field, length, max)
    }

    /// A `u16` count, at most `max`.
    fn count(&mut self, field: &'static str, max: usize) -> Result<usize, WireError> {
        let at = self.at;
        let count = usize::from(self.u16(field)?);
        Self::at_most(at, field, count, max)
    }

    /// `value`, read at `at`, if it is at most `max`.
    fn at_most(at: usize, field: &'static str, value: usize, max: usize) -> Result<usize, WireError> {
        if value > max {
            return Err(WireError::Limit {
                at,
                field,
                value: value as u64,
                max,
            });
        }
        Ok(value)
    }

    /// A presence byte: 0 or 1, nothing else (so no two encodings mean one message).
    fn flag(&mut self, field: &'static str) -> Result<bool, WireError> {
        let at = self.at;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(WireError::Invalid {
                at,
                field,
                value: u64::from(other),
            }),
        }
    }

    fn finish(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }
}

const _: () = assert!(BLOCK_HEADER_BYTES == 8 + 8 + 32 + 2 + 8 + 2);
const _: () = assert!(TRANSACTIONS_PER_BLOCK_MAX <= u16::MAX as usize);
const _: () = assert!(VALIDATORS_MAX <= u16::MAX as usize);
const _: () = assert!(MESSAGE_BYTES_MAX <= 1 << 20, "a proposal must fit STOQ's default frame");
const _: () = assert!(
    EVIDENCE_BYTES_MAX < 300,
    "evidence stays small enough to commit as a transaction"
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::fixtures::{summary, Committee};
    use super::super::*;
    use super::*;

    /// One message of every kind and shape: proposals with and without a timeout certificate,
    /// a vote, a timeout, certificates (genesis, a quorum, a timeout one), both evidences.
    fn samples() -> Vec<Message> {
        let c = Committee::new(4, 2);
        let genesis = QuorumCertificate::genesis();
        let first = c.proposal(1, genesis.clone(), None);
        let qc1 = c.quorum_qc(QcSummary {
            view: 1,
            height: 1,
            block: first.block.digest(),
        });
        let tc2 = c.tc(2, &[(0, qc1.summary()), (1, QcSummary::GENESIS), (3, qc1.summary())]);
        let after_timeout = c.proposal(3, qc1.clone(), Some(tc2.clone()));
        let mut empty_block = c.block(1, &genesis);
        empty_block.transactions.clear();
        let rival = Proposal::sign(&c.set, &c.keys[1], empty_block, genesis.clone(), None).unwrap();
        vec![
            Message::Proposal(Box::new(first.clone())),
            Message::Proposal(Box::new(after_timeout.clone())),
            Message::Vote(c.vote(2, qc1.summary())),
            Message::Timeout(c.timeout(1, 2, qc1.summary())),
            Message::QuorumCertificate(genesis),
            Message::QuorumCertificate(qc1.clone()),
            Message::TimeoutCertificate(tc2),
            Message::Evidence(Evidence::ConflictingVotes(
                c.vote(3, summary(4, 2, 1)),
                c.vote(3, summary(4, 2, 2)),
            )),
            Message::Evidence(Evidence::ConflictingProposals(first.header(), rival.header())),
            Message::Evidence(Evidence::ConflictingProposals(after_timeout.header(), first.header())),
            Message::Fetch(Fetch { from: 7, count: 64 }),
            Message::Blocks(Blocks {
                records: vec![CertifiedBlock {
                    block: first.block.clone(),
                    qc: qc1.clone(),
                }],
                proof: Some(Box::new(CertifiedBlock {
                    block: after_timeout.block.clone(),
                    qc: qc1.clone(),
                })),
            }),
            Message::Blocks(Blocks {
                records: vec![],
                proof: None,
            }),
            Message::Submit(Submit {
                forwarded: true,
                transaction: Bytes::from_static(b"tx"),
            }),
            Message::Answer(Answer {
                transaction: [9; 32],
                height: 12,
                kind: AnswerKind::Applied(Bytes::from_static(b"ok")),
            }),
            Message::Answer(Answer {
                transaction: [9; 32],
                height: 12,
                kind: AnswerKind::Refused("no".into()),
            }),
            Message::Answer(Answer {
                transaction: [9; 32],
                height: 0,
                kind: AnswerKind::NotAdmitted("pool full".into()),
            }),
            Message::Answer(Answer {
                transaction: [9; 32],
                height: 12,
                kind: AnswerKind::Forgotten,
            }),
            Message::VoteFor(c.vote(2, qc1.summary()), Box::new(first.header())),
            Message::VoteFor(c.vote(2, qc1.summary()), Box::new(after_timeout.header())),
            Message::Report(Report::sign(&c.set, &c.keys[1], 2, Reason::Slow, 9).unwrap()),
            Message::FetchProposal([3; 32]),
            Message::Query(Query {
                id: 4,
                consistency: Consistency::Local,
                request: Bytes::from_static(b"q"),
            }),
            Message::Query(Query {
                id: 5,
                consistency: Consistency::Linearizable,
                request: Bytes::from_static(b"q"),
            }),
            Message::ReadIndex(6),
            Message::ReadIndexAnswer(6, qc1.clone()),
            Message::SnapshotOffer(SnapshotOffer {
                height: 128,
                view: 140,
                block: [1; 32],
                state: [2; 32],
                len: 100_000,
            }),
            Message::FetchSnapshot {
                height: 128,
                offset: 49_152,
            },
            Message::SnapshotChunk(SnapshotChunk {
                height: 128,
                offset: 99_990,
                total: 100_000,
                bytes: Bytes::from_static(b"0123456789"),
            }),
            Message::QueryAnswer(QueryAnswer {
                id: 4,
                height: 9,
                result: Ok(Bytes::from_static(b"a")),
            }),
            Message::QueryAnswer(QueryAnswer {
                id: 4,
                height: 9,
                result: Err("no".into()),
            }),
        ]
    }

    #[test]
    fn every_message_round_trips_alone_and_in_a_message() {
        for message in samples() {
            let bytes = message.encode();
            assert!(bytes.len() <= MESSAGE_BYTES_MAX);
            assert_eq!(Message::decode(&bytes).as_ref(), Ok(&message));
            let body = &bytes[2..];
            match &message {
                Message::Proposal(p) => {
                    assert_eq!(Proposal::decode(body).as_ref(), Ok(&**p));
                    assert_eq!(Block::decode(&p.block.encode()).as_ref(), Ok(&p.block));
                    assert_eq!(ProposalHeader::decode(&p.header().encode()), Ok(p.header()));
                    assert_eq!(p.encoded_len(), body.len());
                }
                Message::Vote(v) => assert_eq!(Vote::decode(body).as_ref(), Ok(v)),
                Message::Timeout(t) => assert_eq!(Timeout::decode(body).as_ref(), Ok(t)),
                Message::QuorumCertificate(qc) => assert_eq!(QuorumCertificate::decode(body).as_ref(), Ok(qc)),
                Message::TimeoutCertificate(tc) => assert_eq!(TimeoutCertificate::decode(body).as_ref(), Ok(tc)),
                Message::Evidence(e) => {
                    assert_eq!(Evidence::decode(body).as_ref(), Ok(e));
                    assert_eq!(e.encoded_len(), body.len());
                }
                Message::Blocks(b) => {
                    assert_eq!(b.encoded_len(), body.len());
                    for r in &b.records {
                        assert_eq!(CertifiedBlock::decode(&r.encode()).as_ref(), Ok(r));
                    }
                }
                Message::Answer(a) => assert_eq!(a.encoded_len(), body.len()),
                Message::Fetch(_)
                | Message::Submit(_)
                | Message::VoteFor(..)
                | Message::Report(_)
                | Message::FetchProposal(_)
                | Message::Query(_)
                | Message::QueryAnswer(_)
                | Message::ReadIndex(_)
                | Message::ReadIndexAnswer(..)
                | Message::SnapshotOffer(_)
                | Message::FetchSnapshot { .. }
                | Message::SnapshotChunk(_) => {
                    assert_eq!(message.body_len(), body.len())
                }
            }
        }
    }

    #[test]
    fn every_truncation_of_every_encoding_is_an_error() {
        for message in samples() {
            let bytes = message.encode();
            for cut in 0..bytes.len() {
                assert!(
                    Message::decode(&bytes[..cut]).is_err(),
                    "{message:?} cut at {cut} decoded"
                );
            }
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert_eq!(Message::decode(&longer), Err(WireError::Trailing(1)));
        }
    }

    #[test]
    fn sizes_are_as_documented() {
        let c = Committee::new(4, 2);
        let vote = c.vote(0, summary(1, 1, 1));
        assert_eq!(vote.encode().len(), VOTE_BYTES);
        assert_eq!(c.timeout(0, 2, QcSummary::GENESIS).encode().len(), TIMEOUT_BYTES);
        let evidence = Evidence::ConflictingVotes(vote.clone(), vote);
        assert_eq!(evidence.encode().len(), 1 + 2 * VOTE_BYTES);
        assert_eq!(MESSAGE_BYTES_MAX, 708_735);
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        let vote = Committee::new(4, 2).vote(0, summary(1, 1, 1));
        let bytes = Message::Vote(vote).encode();
        assert_eq!(
            Message::decode(&[]).unwrap_err().to_string(),
            "truncated at byte 0: version needs 1 more byte(s)"
        );
        assert_eq!(Message::decode(&[2, 2]), Err(WireError::Version(2)));
        assert_eq!(
            Message::decode(&[1, 99]).unwrap_err().to_string(),
            "byte 1: invalid message tag 99"
        );
        assert_eq!(
            Message::decode(&bytes[..60]).unwrap_err().to_string(),
            "truncated at byte 52: vote signature needs 56 more byte(s)"
        );
        // Evidence of an unknown kind.
        assert_eq!(
            Message::decode(&[1, 6, 3]).unwrap_err().to_string(),
            "byte 2: invalid evidence kind 3"
        );
        // A proposal whose timeout flag is 2: the flag follows the block (60 bytes, no
        // transactions) and the genesis QC (50 bytes).
        let mut proposal = vec![1, 1];
        proposal.extend_from_slice(&[0; BLOCK_HEADER_BYTES]);
        proposal.extend_from_slice(&QuorumCertificate::genesis().encode());
        proposal.push(2);
        assert_eq!(
            Message::decode(&proposal).unwrap_err().to_string(),
            "byte 112: invalid proposal timeout flag 2"
        );
        // A forgotten answer that carries a body.
        let mut answer = Message::Answer(Answer {
            transaction: [9; 32],
            height: 12,
            kind: AnswerKind::Refused("x".into()),
        })
        .encode()
        .to_vec();
        answer[2 + 32 + 8] = 4;
        assert_eq!(
            Message::decode(&answer).unwrap_err().to_string(),
            "byte 43: invalid answer length (a forgotten answer has no body) 1"
        );
    }

    #[test]
    fn counts_and_lengths_above_their_limits_are_refused() {
        let header = |count: u16| {
            let mut b = vec![0; BLOCK_HEADER_BYTES - 2];
            b.extend_from_slice(&count.to_be_bytes());
            b
        };
        assert_eq!(
            Block::decode(&header(TRANSACTIONS_PER_BLOCK_MAX as u16 + 1)),
            Err(WireError::Limit {
                at: 58,
                field: "transaction count",
                value: TRANSACTIONS_PER_BLOCK_MAX as u64 + 1,
                max: TRANSACTIONS_PER_BLOCK_MAX
            })
        );
        // A count at the limit with no transactions behind it is only truncated.
        assert!(matches!(
            Block::decode(&header(TRANSACTIONS_PER_BLOCK_MAX as u16)),
            Err(WireError::Truncated {
                field: "transaction length",
                ..
            })
        ));
        let mut long = header(1);
        long.extend_from_slice(&(TRANSACTION_BYTES_MAX as u32 + 1).to_be_bytes());
        assert_eq!(
            Block::decode(&long),
            Err(WireError::Limit {
                at: 60,
                field: "transaction length",
                value: TRANSACTION_BYTES_MAX as u64 + 1,
                max: TRANSACTION_BYTES_MAX
            })
        );
        // Eight transactions of the largest size: the eighth takes the block beyond its limit.
        let mut big = header(8);
        for _ in 0..7 {
            big.extend_from_slice(&(TRANSACTION_BYTES_MAX as u32).to_be_bytes());
            big.extend_from_slice(&[7; TRANSACTION_BYTES_MAX]);
        }
        let eighth_at = big.len();
        big.extend_from_slice(&(TRANSACTION_BYTES_MAX as u32).to_be_bytes());
        assert_eq!(
            Block::decode(&big),
            Err(WireError::Limit {
                at: eighth_at,
                field: "block size",
                value: (eighth_at + 4 + TRANSACTION_BYTES_MAX) as u64,
                max: BLOCK_BYTES_MAX
            })
        );
        let mut qc = vec![0; QC_SUMMARY_BYTES];
        qc.extend_from_slice(&(VALIDATORS_MAX as u16 + 1).to_be_bytes());
        assert_eq!(
            QuorumCertificate::decode(&qc),
            Err(WireError::Limit {
                at: QC_SUMMARY_BYTES,
                field: "QC signer count",
                value: VALIDATORS_MAX as u64 + 1,
                max: VALIDATORS_MAX
            })
        );
        let mut tc = vec![0; 8];
        tc.extend_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            TimeoutCertificate::decode(&tc),
            Err(WireError::Limit {
                at: 8,
                field: "TC entry count",
                ..
            })
        ));
    }

    #[test]
    fn the_largest_block_round_trips() {
        let mut block = Block {
            height: 1,
            view: 1,
            parent: GENESIS,
            proposer: 0,
            timestamp_ms: 0,
            transactions: vec![Bytes::from(vec![1; TRANSACTION_BYTES_MAX]); 7],
        };
        let fits = BLOCK_BYTES_MAX - block.encoded_len() - 4;
        block.transactions.push(Bytes::from(vec![2; fits]));
        let bytes = block.encode();
        assert_eq!(bytes.len(), BLOCK_BYTES_MAX);
        assert_eq!(Block::decode(&bytes), Ok(block));
    }

    fn signature() -> impl Strategy<Value = Signature> {
        proptest::collection::vec(any::<u8>(), 64).prop_map(|v| Signature(v.try_into().unwrap()))
    }

    fn qc_summary() -> impl Strategy<Value = QcSummary> {
        (any::<u64>(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(view, height, block)| QcSummary {
            view,
            height,
            block,
        })
    }

    fn block() -> impl Strategy<Value = Block> {
        let transactions = proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6);
        (
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<u16>(),
            any::<u64>(),
            transactions,
        )
            .prop_map(|(height, view, parent, proposer, timestamp_ms, txs)| Block {
                height,
                view,
                parent,
                proposer,
                timestamp_ms,
                transactions: txs.into_iter().map(Bytes::from).collect(),
            })
    }

    fn qc() -> impl Strategy<Value = QuorumCertificate> {
        (
            qc_summary(),
            proptest::collection::vec((any::<u16>(), signature()), 0..6),
        )
            .prop_map(|(s, signed)| QuorumCertificate {
                view: s.view,
                height: s.height,
                block: s.block,
                signers: signed.iter().map(|(i, _)| *i).collect(),
                signatures: signed.iter().map(|(_, s)| *s).collect(),
            })
    }

    fn tc() -> impl Strategy<Value = TimeoutCertificate> {
        let entry = (any::<u16>(), qc_summary(), signature()).prop_map(|(signer, high_qc, signature)| TimeoutEntry {
            signer,
            high_qc,
            signature,
        });
        (any::<u64>(), proptest::collection::vec(entry, 0..6))
            .prop_map(|(view, entries)| TimeoutCertificate { view, entries })
    }

    fn vote() -> impl Strategy<Value = Vote> {
        (qc_summary(), any::<u16>(), signature()).prop_map(|(s, signer, signature)| Vote {
            view: s.view,
            height: s.height,
            block: s.block,
            signer,
            signature,
        })
    }

    fn header() -> impl Strategy<Value = ProposalHeader> {
        (
            any::<u64>(),
            any::<u16>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<Option<u64>>(),
            signature(),
        )
            .prop_map(
                |(view, proposer, block, justify_view, timeout_view, signature)| ProposalHeader {
                    view,
                    proposer,
                    block,
                    justify_view,
                    timeout_view,
                    signature,
                },
            )
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (block(), qc(), proptest::option::of(tc()), signature()).prop_map(
                |(block, justify, timeout, signature)| {
                    Message::Proposal(Box::new(Proposal {
                        block,
                        justify,
                        timeout,
                        signature,
                    }))
                }
            ),
            vote().prop_map(Message::Vote),
            (any::<u64>(), qc_summary(), any::<u16>(), signature()).prop_map(|(view, high_qc, signer, signature)| {
                Message::Timeout(Timeout {
                    view,
                    high_qc,
                    signer,
                    signature,
                })
            }),
            qc().prop_map(Message::QuorumCertificate),
            tc().prop_map(Message::TimeoutCertificate),
            (vote(), vote()).prop_map(|(a, b)| Message::Evidence(Evidence::ConflictingVotes(a, b))),
            (header(), header()).prop_map(|(a, b)| Message::Evidence(Evidence::ConflictingProposals(a, b))),
            (any::<u64>(), any::<u16>()).prop_map(|(from, count)| Message::Fetch(Fetch { from, count })),
            (
                proptest::collection::vec((block(), qc()), 0..3),
                proptest::option::of((block(), qc()))
            )
                .prop_map(|(records, proof)| {
                    Message::Blocks(Blocks {
                        records: records
                            .into_iter()
                            .map(|(block, qc)| CertifiedBlock { block, qc })
                            .collect(),
                        proof: proof.map(|(block, qc)| Box::new(CertifiedBlock { block, qc })),
                    })
                }),
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(forwarded, t)| {
                Message::Submit(Submit {
                    forwarded,
                    transaction: Bytes::from(t),
                })
            }),
            (vote(), header()).prop_map(|(v, h)| Message::VoteFor(v, Box::new(h))),
            any::<[u8; 32]>().prop_map(Message::FetchProposal),
            (
                any::<u64>(),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..20)
            )
                .prop_map(|(id, linear, q)| {
                    Message::Query(Query {
                        id,
                        consistency: if linear {
                            Consistency::Linearizable
                        } else {
                            Consistency::Local
                        },
                        request: Bytes::from(q),
                    })
                }),
            any::<u64>().prop_map(Message::ReadIndex),
            (any::<u64>(), qc()).prop_map(|(id, qc)| Message::ReadIndexAnswer(id, qc)),
            (
                any::<u64>(),
                any::<u64>(),
                any::<[u8; 32]>(),
                any::<[u8; 32]>(),
                any::<u64>()
            )
                .prop_map(|(height, view, block, state, len)| {
                    Message::SnapshotOffer(SnapshotOffer {
                        height,
                        view,
                        block,
                        state,
                        len,
                    })
                }),
            (any::<u64>(), any::<u64>()).prop_map(|(height, offset)| Message::FetchSnapshot { height, offset }),
            (
                any::<u64>(),
                0u64..1 << 40,
                proptest::collection::vec(any::<u8>(), 0..64),
                0u64..1000
            )
                .prop_map(|(height, offset, bytes, extra)| {
                    Message::SnapshotChunk(SnapshotChunk {
                        height,
                        offset,
                        total: offset + bytes.len() as u64 + extra,
                        bytes: Bytes::from(bytes),
                    })
                }),
            (any::<u64>(), any::<u64>(), any::<bool>(), "[a-z]{0,10}").prop_map(|(id, height, ok, t)| {
                Message::QueryAnswer(QueryAnswer {
                    id,
                    height,
                    result: if ok { Ok(Bytes::from(t.into_bytes())) } else { Err(t) },
                })
            }),
            (any::<u16>(), 1u8..4, any::<u64>(), any::<u16>(), signature()).prop_map(
                |(accused, reason, view, reporter, signature)| {
                    Message::Report(Report {
                        accused,
                        reason: Reason::from_u8(reason).unwrap(),
                        view,
                        reporter,
                        signature,
                    })
                }
            ),
            (any::<[u8; 32]>(), any::<u64>(), 0u8..4, "[a-z ]{0,20}").prop_map(|(transaction, height, k, text)| {
                let kind = match k {
                    0 => AnswerKind::Applied(Bytes::from(text.into_bytes())),
                    1 => AnswerKind::Refused(text),
                    2 => AnswerKind::NotAdmitted(text),
                    _ => AnswerKind::Forgotten,
                };
                Message::Answer(Answer {
                    transaction,
                    height,
                    kind,
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_messages_round_trip(message in message()) {
            let bytes = message.encode();
            prop_assert_eq!(Message::decode(&bytes), Ok(message));
        }

        #[test]
        fn random_bytes_never_panic_and_what_decodes_is_canonical(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(message) = Message::decode(&data) {
                prop_assert_eq!(&message.encode()[..], &data[..]);
            }
        }

        #[test]
        fn random_bodies_behind_a_valid_header_never_panic(
            tag in 0u8..8,
            body in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let data = [&[VERSION, tag][..], &body].concat();
            if let Ok(message) = Message::decode(&data) {
                prop_assert_eq!(&message.encode()[..], &data[..]);
            }
        }

        #[test]
        fn edited_encodings_never_panic(message in message(), edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8)) {
            let mut bytes = message.encode().to_vec();
            for (at, value) in edits {
                let at = usize::from(at) % bytes.len();
                bytes[at] = value;
            }
            if let Ok(decoded) = Message::decode(&bytes) {
                prop_assert_eq!(&decoded.encode()[..], &bytes[..]);
            }
        }
    }
}
