//! What the consensus wire fuzz target checks, stated once: compiled into this crate's corpus
//! replay (`tests/consensus_fuzz_corpus.rs`) and into the fuzz target (`fuzz/src/lib.rs`
//! includes this file), so the fuzzer and CI hold the decoder to the same property. The seed
//! inputs are built here too, by the same committee the property verifies against.
//!
//! The property: [`Message::decode`] is total (any bytes give a message or a `WireError`, never
//! a panic) and strict (a message that decodes encodes back to exactly the bytes it came from);
//! what decodes is within the limits, and verifying it against a validator set answers (valid
//! or a named error) without panicking.

use std::sync::OnceLock;

use bytes::Bytes;
use hypermesh::consensus::{
    Answer, AnswerKind, Blocks, CertifiedBlock, Consistency, Evidence, Fetch, Message, Proposal, QcSummary, Query,
    QueryAnswer, QuorumCertificate, Reason, Report, SnapshotChunk, SnapshotOffer, Submit, Timeout, TimeoutCertificate,
    TimeoutEntry, Validator, ValidatorKey, ValidatorSet, Vote,
};
use hypermesh::membership::NodeId;

/// The epoch of the committee the property verifies against.
pub const EPOCH: u64 = 1;

/// Validators in that committee.
pub const VALIDATORS: usize = 4;

/// The committee: validator `i` on node `i`, named `node-i`, with the key of seed `[i + 1; 32]`.
pub fn committee() -> &'static (ValidatorSet, Vec<ValidatorKey>) {
    static COMMITTEE: OnceLock<(ValidatorSet, Vec<ValidatorKey>)> = OnceLock::new();
    COMMITTEE.get_or_init(|| {
        let keys: Vec<_> = (0..VALIDATORS)
            .map(|i| ValidatorKey::from_seed(&[i as u8 + 1; 32]))
            .collect();
        let validators = keys
            .iter()
            .enumerate()
            .map(|(i, key)| Validator {
                node: NodeId(i as u64),
                name: format!("node-{i}"),
                public_key: key.public_key(),
            })
            .collect();
        (ValidatorSet::new(EPOCH, validators).expect("a valid set"), keys)
    })
}

/// Decodes `data`; if it is a message, it must encode to `data` again, stay within the limits,
/// and verify (or be refused) against [`committee`] without a panic.
pub fn decodes_canonically(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let encoded = message.encode();
    assert_eq!(
        &encoded[..],
        data,
        "{message:?} encodes to other bytes than it decoded from"
    );
    let set = &committee().0;
    match &message {
        Message::Proposal(p) => {
            assert_eq!(p.block.check_limits(), Ok(()), "a decoded block is within the limits");
            let _ = p.verify(set);
        }
        Message::Vote(v) => {
            let _ = v.verify(set);
        }
        Message::Timeout(t) => {
            let _ = t.verify(set);
        }
        Message::QuorumCertificate(qc) => {
            let _ = qc.verify(set);
        }
        Message::TimeoutCertificate(tc) => {
            let _ = tc.verify(set);
        }
        Message::Evidence(e) => {
            let _ = e.verify(set);
        }
        Message::Blocks(b) => {
            for r in b.records.iter().chain(b.proof.as_deref()) {
                assert_eq!(r.block.check_limits(), Ok(()), "a decoded block is within the limits");
                let _ = r.qc.verify(set);
            }
        }
        Message::VoteFor(v, h) => {
            let _ = v.verify(set);
            let _ = h.verify(set);
        }
        Message::Report(r) => {
            let _ = r.verify(set);
        }
        Message::ReadIndexAnswer(_, qc) => {
            let _ = qc.verify(set);
        }
        // Nothing signed: decoding is the whole check.
        Message::Fetch(_)
        | Message::Submit(_)
        | Message::Answer(_)
        | Message::FetchProposal(_)
        | Message::Query(_)
        | Message::QueryAnswer(_)
        | Message::ReadIndex(_)
        | Message::SnapshotOffer(_)
        | Message::FetchSnapshot { .. }
        | Message::SnapshotChunk(_) => {}
    }
}

/// Whether `data` decodes to a message that verifies against [`committee`] (what every seed
/// does).
pub fn decodes_and_verifies(data: &[u8]) -> bool {
    let set = &committee().0;
    match Message::decode(data) {
        Ok(Message::Proposal(p)) => p.verify(set).is_ok(),
        Ok(Message::Vote(v)) => v.verify(set).is_ok(),
        Ok(Message::Timeout(t)) => t.verify(set).is_ok(),
        Ok(Message::QuorumCertificate(qc)) => qc.verify(set).is_ok(),
        Ok(Message::TimeoutCertificate(tc)) => tc.verify(set).is_ok(),
        Ok(Message::Evidence(e)) => e.verify(set).is_ok(),
        Ok(Message::Blocks(b)) => b
            .records
            .iter()
            .chain(b.proof.as_deref())
            .all(|r| r.qc.verify(set).is_ok() && r.qc.block == r.block.digest()),
        Ok(Message::Report(r)) => r.verify(set).is_ok(),
        Ok(Message::ReadIndexAnswer(_, qc)) => qc.verify(set).is_ok(),
        Ok(Message::VoteFor(v, h)) => v.verify(set).is_ok() && h.verify(set).is_ok() && v.block == h.block,
        Ok(
            Message::Fetch(_)
            | Message::Submit(_)
            | Message::Answer(_)
            | Message::FetchProposal(_)
            | Message::Query(_)
            | Message::QueryAnswer(_)
            | Message::ReadIndex(_)
            | Message::SnapshotOffer(_)
            | Message::FetchSnapshot { .. }
            | Message::SnapshotChunk(_),
        ) => true,
        Err(_) => false,
    }
}

/// The seed inputs, by name: one valid, verifying message of every kind and shape, signed by
/// [`committee`]. Ed25519 signatures are deterministic, so these are the same bytes every time.
pub fn seeds() -> Vec<(&'static str, Bytes)> {
    let (set, keys) = committee();
    let vote = |i: usize, s: QcSummary| Vote::sign(set, &keys[i], s).expect("a validator");
    let quorum: Vec<usize> = (0..set.quorum()).collect();
    let qc = |s: QcSummary| {
        let votes: Vec<_> = quorum.iter().map(|&i| vote(i, s)).collect();
        QuorumCertificate {
            view: s.view,
            height: s.height,
            block: s.block,
            signers: votes.iter().map(|v| v.signer).collect(),
            signatures: votes.iter().map(|v| v.signature).collect(),
        }
    };
    let propose = |view: u64, justify: QuorumCertificate, timeout: Option<TimeoutCertificate>, txs: Vec<Bytes>| {
        let leader = set.leader(view);
        let block = hypermesh::consensus::Block {
            height: justify.height + 1,
            view,
            parent: justify.block,
            proposer: leader,
            timestamp_ms: 1_790_000_000_000 + view,
            transactions: txs,
        };
        Proposal::sign(set, &keys[usize::from(leader)], block, justify, timeout).expect("the leader's key")
    };
    let txs = vec![Bytes::from_static(b"put k v"), Bytes::from_static(b"del k")];
    let first = propose(1, QuorumCertificate::genesis(), None, txs.clone());
    let rival = propose(1, QuorumCertificate::genesis(), None, vec![]);
    let qc1 = qc(QcSummary {
        view: 1,
        height: 1,
        block: first.block.digest(),
    });
    let second = propose(2, qc1.clone(), None, txs);
    let qc2 = qc(QcSummary {
        view: 2,
        height: 2,
        block: second.block.digest(),
    });
    let timeout = |i: usize, high_qc: QcSummary| Timeout::sign(set, &keys[i], 2, high_qc).expect("a validator");
    let tc2 = TimeoutCertificate {
        view: 2,
        entries: [(0, qc1.summary()), (1, QcSummary::GENESIS), (3, qc1.summary())]
            .into_iter()
            .map(|(i, high_qc)| {
                let t = timeout(i, high_qc);
                TimeoutEntry {
                    signer: t.signer,
                    high_qc,
                    signature: t.signature,
                }
            })
            .collect(),
    };
    let third = propose(3, qc1.clone(), Some(tc2.clone()), vec![Bytes::from_static(b"x")]);
    let other = QcSummary {
        view: 1,
        height: 1,
        block: rival.block.digest(),
    };
    let messages = vec![
        ("proposal", Message::Proposal(Box::new(first.clone()))),
        ("proposal-qc", Message::Proposal(Box::new(second.clone()))),
        ("proposal-tc", Message::Proposal(Box::new(third))),
        ("vote", Message::Vote(vote(2, qc1.summary()))),
        ("timeout", Message::Timeout(timeout(1, qc1.summary()))),
        ("qc-genesis", Message::QuorumCertificate(QuorumCertificate::genesis())),
        ("qc", Message::QuorumCertificate(qc1.clone())),
        ("tc", Message::TimeoutCertificate(tc2)),
        (
            "evidence-votes",
            Message::Evidence(Evidence::ConflictingVotes(vote(3, qc1.summary()), vote(3, other))),
        ),
        (
            "evidence-proposals",
            Message::Evidence(Evidence::ConflictingProposals(first.header(), rival.header())),
        ),
        (
            "vote-for",
            Message::VoteFor(
                Vote::sign(
                    set,
                    &keys[3],
                    QcSummary {
                        view: 2,
                        height: 2,
                        block: second.block.digest(),
                    },
                )
                .expect("a validator"),
                Box::new(second.header()),
            ),
        ),
        (
            "report",
            Message::Report(Report::sign(set, &keys[2], 1, Reason::ClockSkew, 3).expect("a validator")),
        ),
        ("fetch", Message::Fetch(Fetch { from: 1, count: 64 })),
        ("fetch-proposal", Message::FetchProposal(first.block.digest())),
        (
            "query",
            Message::Query(Query {
                id: 1,
                consistency: Consistency::Local,
                request: Bytes::from_static(b"read k"),
            }),
        ),
        (
            "query-linearizable",
            Message::Query(Query {
                id: 2,
                consistency: Consistency::Linearizable,
                request: Bytes::from_static(b"read k"),
            }),
        ),
        ("read-index", Message::ReadIndex(3)),
        ("read-index-answer", Message::ReadIndexAnswer(3, qc1.clone())),
        (
            "snapshot-offer",
            Message::SnapshotOffer(SnapshotOffer {
                height: 64,
                view: 70,
                block: first.block.digest(),
                state: [7; 32],
                len: 60_000,
            }),
        ),
        (
            "fetch-snapshot",
            Message::FetchSnapshot {
                height: 64,
                offset: 49_152,
            },
        ),
        (
            "snapshot-chunk",
            Message::SnapshotChunk(SnapshotChunk {
                height: 64,
                offset: 59_990,
                total: 60_000,
                bytes: Bytes::from_static(b"0123456789"),
            }),
        ),
        (
            "query-answer",
            Message::QueryAnswer(QueryAnswer {
                id: 1,
                height: 2,
                result: Ok(Bytes::from_static(b"v")),
            }),
        ),
        (
            "blocks",
            Message::Blocks(Blocks {
                records: vec![CertifiedBlock {
                    block: first.block.clone(),
                    qc: qc1.clone(),
                }],
                proof: Some(Box::new(CertifiedBlock {
                    block: second.block.clone(),
                    qc: qc2,
                })),
            }),
        ),
        (
            "submit",
            Message::Submit(Submit {
                forwarded: false,
                transaction: Bytes::from_static(b"put k v"),
            }),
        ),
        (
            "answer",
            Message::Answer(Answer {
                transaction: [7; 32],
                height: 2,
                kind: AnswerKind::Applied(Bytes::from_static(b"ok")),
            }),
        ),
    ];
    messages.into_iter().map(|(name, m)| (name, m.encode())).collect()
}
