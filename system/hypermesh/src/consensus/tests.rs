//! Signatures, certificates, builders, proposals and evidence, against a committee of real keys.

use bytes::Bytes;

use super::fixtures::{summary, Committee};
use super::*;

fn committee() -> Committee {
    Committee::new(4, 7)
}

#[test]
fn a_vote_verifies_and_every_tampered_field_fails() {
    let c = committee();
    let vote = c.vote(2, summary(5, 3, 1));
    assert_eq!(vote.verify(&c.set), Ok(()));
    let mut sig = vote.signature;
    sig.0[10] ^= 1;
    let tampered = [
        (
            Vote {
                view: 6,
                ..vote.clone()
            },
            MessageError::BadSignature(2),
        ),
        (
            Vote {
                height: 4,
                ..vote.clone()
            },
            MessageError::BadSignature(2),
        ),
        (
            Vote {
                block: [9; 32],
                ..vote.clone()
            },
            MessageError::BadSignature(2),
        ),
        (
            Vote {
                signer: 1,
                ..vote.clone()
            },
            MessageError::BadSignature(1),
        ),
        (
            Vote {
                signer: 4,
                ..vote.clone()
            },
            MessageError::UnknownSigner(4),
        ),
        (
            Vote {
                signature: sig,
                ..vote.clone()
            },
            MessageError::BadSignature(2),
        ),
    ];
    for (t, error) in tampered {
        assert_eq!(t.verify(&c.set), Err(error), "{t:?}");
    }
}

#[test]
fn votes_for_genesis_are_refused() {
    let c = committee();
    for s in [
        QcSummary::GENESIS,
        summary(0, 1, 1),
        summary(1, 0, 1),
        QcSummary {
            block: GENESIS,
            ..summary(1, 1, 0)
        },
    ] {
        // Signed correctly, still refused: genesis is certified by convention only.
        let vote = Vote::sign(&c.set, &c.keys[0], s).unwrap();
        assert_eq!(vote.verify(&c.set), Err(MessageError::GenesisVote), "{s:?}");
    }
}

#[test]
fn a_timeout_verifies_and_every_tampered_field_fails() {
    let c = committee();
    let timeout = c.timeout(1, 9, summary(7, 4, 2));
    assert_eq!(timeout.verify(&c.set), Ok(()));
    let mut sig = timeout.signature;
    sig.0[63] ^= 0x80;
    let high = |f: fn(&mut QcSummary)| {
        let mut t = timeout.clone();
        f(&mut t.high_qc);
        t
    };
    let tampered = [
        (
            Timeout {
                view: 10,
                ..timeout.clone()
            },
            MessageError::BadSignature(1),
        ),
        (high(|s| s.view = 8), MessageError::BadSignature(1)),
        (high(|s| s.height = 5), MessageError::BadSignature(1)),
        (high(|s| s.block[0] ^= 1), MessageError::BadSignature(1)),
        (
            Timeout {
                signer: 3,
                ..timeout.clone()
            },
            MessageError::BadSignature(3),
        ),
        (
            Timeout {
                signer: 9,
                ..timeout.clone()
            },
            MessageError::UnknownSigner(9),
        ),
        (
            Timeout {
                signature: sig,
                ..timeout.clone()
            },
            MessageError::BadSignature(1),
        ),
    ];
    for (t, error) in tampered {
        assert_eq!(t.verify(&c.set), Err(error), "{t:?}");
    }
}

#[test]
fn a_timeout_must_report_a_well_formed_qc_from_before_its_view() {
    let c = committee();
    assert_eq!(c.timeout(0, 1, QcSummary::GENESIS).verify(&c.set), Ok(()));
    assert_eq!(
        c.timeout(0, 4, summary(4, 2, 1)).verify(&c.set),
        Err(MessageError::HighQcNotBelowView {
            view: 4,
            high_qc_view: 4
        })
    );
    let malformed = summary(0, 2, 1);
    assert_eq!(
        c.timeout(0, 4, malformed).verify(&c.set),
        Err(MessageError::MalformedHighQc(malformed))
    );
    assert_eq!(
        c.timeout(0, 0, QcSummary::GENESIS).verify(&c.set),
        Err(MessageError::HighQcNotBelowView {
            view: 0,
            high_qc_view: 0
        })
    );
}

#[test]
fn a_vote_cannot_verify_as_a_timeout_or_proposal_nor_in_another_epoch() {
    let c = committee();
    let s = summary(5, 3, 1);
    let vote = c.vote(2, s);
    // The same numbers, the vote's signature, read as a timeout of view 5 (high QC (3, ...)) or
    // of view 6 reporting the voted block.
    let as_timeout = Timeout {
        view: 6,
        high_qc: s,
        signer: 2,
        signature: vote.signature,
    };
    assert_eq!(as_timeout.verify(&c.set), Err(MessageError::BadSignature(2)));
    let as_header = ProposalHeader {
        view: 5,
        proposer: 2,
        block: s.block,
        justify_view: 3,
        timeout_view: None,
        signature: vote.signature,
    };
    assert_eq!(as_header.verify(&c.set), Err(MessageError::BadSignature(2)));
    // And the other way: a timeout's signature is no vote.
    let timeout = c.timeout(2, 6, s);
    let as_vote = Vote {
        signature: timeout.signature,
        ..vote.clone()
    };
    assert_eq!(as_vote.verify(&c.set), Err(MessageError::BadSignature(2)));

    let next_epoch = c.in_epoch(8);
    assert_eq!(vote.verify(&next_epoch), Err(MessageError::BadSignature(2)));
    assert_eq!(timeout.verify(&next_epoch), Err(MessageError::BadSignature(2)));
    assert_eq!(
        c.quorum_qc(s).verify(&next_epoch),
        Err(CertificateError::BadSignature(0))
    );
    assert_eq!(
        c.tc(6, &[(0, s), (1, s), (2, s)]).verify(&next_epoch),
        Err(CertificateError::BadSignature(0))
    );
    let proposal = c.proposal(1, QuorumCertificate::genesis(), None);
    assert_eq!(
        proposal.verify(&next_epoch),
        Err(ProposalError::Signature(MessageError::BadSignature(1)))
    );
}

#[test]
fn signing_needs_a_validators_key_and_the_proposers() {
    let c = committee();
    let stranger = ValidatorKey::from_seed(&[0xee; 32]);
    assert_eq!(
        Vote::sign(&c.set, &stranger, summary(1, 1, 1)),
        Err(SignError::NotAValidator(7))
    );
    assert_eq!(
        Timeout::sign(&c.set, &stranger, 2, QcSummary::GENESIS),
        Err(SignError::NotAValidator(7))
    );
    let block = c.block(1, &QuorumCertificate::genesis());
    assert_eq!(
        Proposal::sign(&c.set, &c.keys[2], block, QuorumCertificate::genesis(), None),
        Err(SignError::NotProposer { signer: 2, proposer: 1 })
    );
}

#[test]
fn the_genesis_certificate_and_only_it_verifies_without_signers() {
    let c = committee();
    assert_eq!(QuorumCertificate::genesis().verify(&c.set), Ok(()));
    assert_eq!(QuorumCertificate::genesis().summary(), QcSummary::GENESIS);
    let mut with_signer = QuorumCertificate::genesis();
    with_signer.signers.push(0);
    with_signer.signatures.push(c.vote(0, summary(1, 1, 1)).signature);
    let not_genesis = [
        with_signer,
        QuorumCertificate {
            height: 1,
            ..QuorumCertificate::genesis()
        },
        QuorumCertificate {
            view: 1,
            ..QuorumCertificate::genesis()
        },
        QuorumCertificate {
            block: [1; 32],
            ..QuorumCertificate::genesis()
        },
        QuorumCertificate {
            block: GENESIS,
            ..c.quorum_qc(summary(2, 2, 1))
        },
    ];
    for qc in not_genesis {
        assert_eq!(qc.verify(&c.set), Err(CertificateError::NotGenesis), "{qc:?}");
    }
}

#[test]
fn quorum_certificates_are_checked_by_name() {
    for (n, quorum) in [(1, 1), (4, 3), (7, 5)] {
        let c = Committee::new(n, 1);
        let s = summary(3, 2, 1);
        assert_eq!(c.quorum_qc(s).verify(&c.set), Ok(()), "n = {n}");
        assert_eq!(
            c.qc(s, &(0..n).collect::<Vec<_>>()).verify(&c.set),
            Ok(()),
            "n = {n}, all sign"
        );
        let below: Vec<_> = (0..quorum - 1).collect();
        assert_eq!(
            c.qc(s, &below).verify(&c.set),
            Err(CertificateError::BelowQuorum {
                signers: quorum - 1,
                quorum
            }),
            "n = {n}"
        );
    }
    let c = committee();
    let s = summary(3, 2, 1);
    assert_eq!(
        c.qc(s, &[0, 1, 1, 2]).verify(&c.set),
        Err(CertificateError::DuplicateSigner(1))
    );
    // A duplicate that would make up the quorum: refused as a duplicate, not counted twice.
    assert_eq!(
        c.qc(s, &[0, 1, 1]).verify(&c.set),
        Err(CertificateError::DuplicateSigner(1))
    );
    assert_eq!(c.qc(s, &[0, 2, 1]).verify(&c.set), Err(CertificateError::Unsorted(2)));
    let mut unknown = c.quorum_qc(s);
    unknown.signers.push(4);
    unknown.signatures.push(unknown.signatures[0]);
    assert_eq!(unknown.verify(&c.set), Err(CertificateError::UnknownSigner(4)));
    for bad in 0..3 {
        let mut qc = c.quorum_qc(s);
        qc.signatures[bad].0[0] ^= 1;
        assert_eq!(qc.verify(&c.set), Err(CertificateError::BadSignature(bad as u16)));
    }
    let mut short = c.quorum_qc(s);
    short.signatures.pop();
    assert_eq!(
        short.verify(&c.set),
        Err(CertificateError::CountMismatch {
            signers: 3,
            signatures: 2
        })
    );
    // Another block's votes do not certify this one.
    let mut other = c.quorum_qc(summary(3, 2, 2));
    other.block = s.block;
    assert_eq!(other.verify(&c.set), Err(CertificateError::BadSignature(0)));
}

#[test]
fn timeout_certificates_are_checked_by_name() {
    let c = committee();
    let (a, b) = (summary(2, 2, 1), summary(4, 3, 2));
    let tc = c.tc(5, &[(0, a), (1, b), (3, a)]);
    assert_eq!(tc.verify(&c.set), Ok(()));
    assert_eq!(tc.high_qc_view_max(), 4);
    assert_eq!(tc.high_qc_max(), Some(b));
    assert_eq!(
        c.tc(5, &[(0, a), (3, a)]).verify(&c.set),
        Err(CertificateError::BelowQuorum { signers: 2, quorum: 3 })
    );
    assert_eq!(
        c.tc(5, &[(0, a), (1, a), (1, a)]).verify(&c.set),
        Err(CertificateError::DuplicateSigner(1))
    );
    assert_eq!(
        c.tc(5, &[(1, a), (0, a), (2, a)]).verify(&c.set),
        Err(CertificateError::Unsorted(1))
    );
    let mut unknown = tc.clone();
    unknown.entries.push(TimeoutEntry {
        signer: 4,
        ..unknown.entries[0].clone()
    });
    assert_eq!(unknown.verify(&c.set), Err(CertificateError::UnknownSigner(4)));
    let mut bad = tc.clone();
    bad.entries[1].signature.0[5] ^= 1;
    assert_eq!(bad.verify(&c.set), Err(CertificateError::BadSignature(1)));
    // An entry whose high QC was changed after signing.
    let mut moved = tc.clone();
    moved.entries[2].high_qc = b;
    assert_eq!(moved.verify(&c.set), Err(CertificateError::BadSignature(3)));
    let late = c.tc(5, &[(0, a), (1, summary(5, 3, 2)), (2, a)]);
    assert_eq!(
        late.verify(&c.set),
        Err(CertificateError::BadHighQc {
            signer: 1,
            error: MessageError::HighQcNotBelowView {
                view: 5,
                high_qc_view: 5
            }
        })
    );
    let genesis_view = c.tc(0, &[(0, a), (1, a), (2, a)]);
    assert_eq!(genesis_view.verify(&c.set), Err(CertificateError::TimeoutOfGenesis));
    assert_eq!(
        TimeoutCertificate {
            view: 1,
            entries: vec![]
        }
        .high_qc_max(),
        None
    );
}

#[test]
fn the_qc_builder_aggregates_matching_verified_votes() {
    let c = committee();
    let s = summary(3, 2, 1);
    let mut builder = QcBuilder::new(&c.set, s);
    assert!(builder.is_empty());
    assert_eq!(builder.add(&c.set, &c.vote(2, s)), Ok(1));
    assert_eq!(
        builder.build(&c.set),
        Err(AggregateError::BelowQuorum { have: 1, quorum: 3 })
    );
    let other = summary(3, 2, 2);
    assert_eq!(
        builder.add(&c.set, &c.vote(0, other)),
        Err(AggregateError::VoteMismatch {
            expected: s,
            found: other
        })
    );
    assert_eq!(builder.add(&c.set, &c.vote(2, s)), Err(AggregateError::Duplicate(2)));
    let mut forged = c.vote(1, s);
    forged.signature.0[0] ^= 1;
    assert_eq!(
        builder.add(&c.set, &forged),
        Err(AggregateError::Invalid(MessageError::BadSignature(1)))
    );
    let next_epoch = c.in_epoch(8);
    assert_eq!(
        builder.add(&next_epoch, &c.vote(1, s)),
        Err(AggregateError::EpochMismatch { builder: 7, set: 8 })
    );
    assert_eq!(builder.add(&c.set, &c.vote(0, s)), Ok(2));
    assert_eq!(builder.add(&c.set, &c.vote(3, s)), Ok(3));
    assert_eq!(builder.len(), 3);
    let qc = builder.build(&c.set).unwrap();
    assert_eq!(qc.signers, [0, 2, 3], "sorted whatever the arrival order");
    assert_eq!(qc.verify(&c.set), Ok(()));
    assert_eq!(qc.summary(), s);
}

#[test]
fn the_tc_builder_aggregates_matching_verified_timeouts() {
    let c = committee();
    let mut builder = TcBuilder::new(&c.set, 5);
    assert!(builder.is_empty());
    let (a, b) = (summary(2, 2, 1), summary(4, 3, 2));
    assert_eq!(builder.add(&c.set, &c.timeout(3, 5, b)), Ok(1));
    assert_eq!(
        builder.add(&c.set, &c.timeout(0, 6, a)),
        Err(AggregateError::ViewMismatch { expected: 5, found: 6 })
    );
    assert_eq!(
        builder.add(&c.set, &c.timeout(3, 5, a)),
        Err(AggregateError::Duplicate(3))
    );
    assert_eq!(
        builder.add(&c.set, &c.timeout(0, 5, summary(5, 3, 1))),
        Err(AggregateError::Invalid(MessageError::HighQcNotBelowView {
            view: 5,
            high_qc_view: 5
        }))
    );
    assert_eq!(
        builder.build(&c.set),
        Err(AggregateError::BelowQuorum { have: 1, quorum: 3 })
    );
    assert_eq!(
        builder.add(&c.in_epoch(1), &c.timeout(0, 5, a)),
        Err(AggregateError::EpochMismatch { builder: 7, set: 1 })
    );
    assert_eq!(builder.add(&c.set, &c.timeout(1, 5, a)), Ok(2));
    assert_eq!(builder.add(&c.set, &c.timeout(0, 5, a)), Ok(3));
    assert_eq!(builder.len(), 3);
    let tc = builder.build(&c.set).unwrap();
    assert_eq!(tc.entries.iter().map(|e| e.signer).collect::<Vec<_>>(), [0, 1, 3]);
    assert_eq!(tc.verify(&c.set), Ok(()));
    assert_eq!(tc.high_qc_max(), Some(b));
}

#[test]
fn proposals_verify_on_the_happy_path_and_after_a_timeout() {
    let c = committee();
    let first = c.proposal(1, QuorumCertificate::genesis(), None);
    assert_eq!(first.verify(&c.set), Ok(()));
    assert_eq!(first.header().verify(&c.set), Ok(()));
    let qc1 = c.quorum_qc(QcSummary {
        view: 1,
        height: 1,
        block: first.block.digest(),
    });
    let second = c.proposal(2, qc1.clone(), None);
    assert_eq!(second.verify(&c.set), Ok(()));
    // View 2 timed out; a quorum reports QC 1 at best: the leader of 3 extends it.
    let tc2 = c.tc(2, &[(0, qc1.summary()), (1, QcSummary::GENESIS), (3, qc1.summary())]);
    let third = c.proposal(3, qc1.clone(), Some(tc2.clone()));
    assert_eq!(third.verify(&c.set), Ok(()));
    // Extending genesis after that timeout would abandon QC 1, which a quorum reported.
    let stale = c.proposal(3, QuorumCertificate::genesis(), Some(tc2.clone()));
    assert_eq!(
        stale.verify(&c.set),
        Err(ProposalError::JustifyBelowTimeoutHighQc {
            justify_view: 0,
            high_qc_view: 1
        })
    );
    // Without the timeout certificate, view 3 is not justified by QC 1.
    let unjustified = c.proposal(3, qc1.clone(), None);
    assert_eq!(
        unjustified.verify(&c.set),
        Err(ProposalError::ViewNotJustified {
            view: 3,
            justify_view: 1
        })
    );
    let wrong_tc_view = c.proposal(4, qc1.clone(), Some(tc2.clone()));
    assert_eq!(
        wrong_tc_view.verify(&c.set),
        Err(ProposalError::TimeoutNotPreviousView {
            view: 4,
            timeout_view: 2
        })
    );
    let mut bad_tc = tc2.clone();
    bad_tc.entries[0].signature.0[0] ^= 1;
    assert_eq!(
        c.proposal(3, qc1.clone(), Some(bad_tc)).verify(&c.set),
        Err(ProposalError::Timeout(CertificateError::BadSignature(0)))
    );
    let mut bad_qc = qc1.clone();
    bad_qc.signers.pop();
    bad_qc.signatures.pop();
    assert_eq!(
        c.proposal(2, bad_qc, None).verify(&c.set),
        Err(ProposalError::Justify(CertificateError::BelowQuorum {
            signers: 2,
            quorum: 3
        }))
    );
}

#[test]
fn proposals_are_refused_by_name() {
    let c = committee();
    let genesis = QuorumCertificate::genesis();
    // Validator 2 proposes in view 1, led by 1.
    let mut block = c.block(1, &genesis);
    block.proposer = 2;
    let usurper = Proposal::sign(&c.set, &c.keys[2], block, genesis.clone(), None).unwrap();
    assert_eq!(
        usurper.verify(&c.set),
        Err(ProposalError::NotLeader {
            view: 1,
            proposer: 2,
            leader: 1
        })
    );
    let sign = |block: Block, justify: QuorumCertificate| {
        let key = &c.keys[usize::from(block.proposer)];
        Proposal::sign(&c.set, key, block, justify, None).unwrap()
    };
    let orphan = sign(
        Block {
            parent: [3; 32],
            ..c.block(1, &genesis)
        },
        genesis.clone(),
    );
    assert_eq!(
        orphan.verify(&c.set),
        Err(ProposalError::NotExtendingJustify {
            height: 1,
            justify_height: 0
        })
    );
    let skipping = sign(
        Block {
            height: 2,
            ..c.block(1, &genesis)
        },
        genesis.clone(),
    );
    assert_eq!(
        skipping.verify(&c.set),
        Err(ProposalError::NotExtendingJustify {
            height: 2,
            justify_height: 0
        })
    );
    let qc5 = c.quorum_qc(summary(5, 1, 1));
    let early = sign(c.block(5, &qc5), qc5.clone());
    assert_eq!(
        early.verify(&c.set),
        Err(ProposalError::JustifyNotBeforeView {
            view: 5,
            justify_view: 5
        })
    );
    let in_genesis = sign(
        Block {
            view: 0,
            proposer: 0,
            ..c.block(0, &genesis)
        },
        genesis.clone(),
    );
    assert_eq!(
        in_genesis.verify(&c.set),
        Err(ProposalError::JustifyNotBeforeView {
            view: 0,
            justify_view: 0
        })
    );
    let mut oversized = c.block(1, &genesis);
    oversized.transactions = vec![Bytes::new(); TRANSACTIONS_PER_BLOCK_MAX + 1];
    let oversized = Proposal {
        block: oversized,
        justify: genesis.clone(),
        timeout: None,
        signature: Signature([0; 64]),
    };
    assert_eq!(
        oversized.verify(&c.set),
        Err(ProposalError::Block(BlockError::TooManyTransactions(
            TRANSACTIONS_PER_BLOCK_MAX + 1
        )))
    );
}

#[test]
fn a_proposal_verifies_and_every_tampered_field_fails() {
    let c = committee();
    let qc1 = c.quorum_qc(summary(1, 1, 1));
    let original = c.proposal(2, qc1.clone(), None);
    assert_eq!(original.verify(&c.set), Ok(()));
    let bad_signature = Err(ProposalError::Signature(MessageError::BadSignature(2)));
    let mut tampered: Vec<Proposal> = Vec::new();
    let mut with = |f: &dyn Fn(&mut Proposal)| {
        let mut p = original.clone();
        f(&mut p);
        tampered.push(p);
    };
    with(&|p| p.block.timestamp_ms += 1);
    with(&|p| p.block.transactions[0] = Bytes::from_static(b"put k w"));
    with(&|p| {
        p.block.transactions.pop();
    });
    with(&|p| p.signature.0[20] ^= 4);
    for p in &tampered {
        assert_eq!(p.verify(&c.set), bad_signature, "{:?}", p.block);
    }
    // Fields the structure ties together fail before the signature is checked.
    let mut p = original.clone();
    p.block.height = 3;
    assert!(matches!(
        p.verify(&c.set),
        Err(ProposalError::NotExtendingJustify { .. })
    ));
    let mut p = original.clone();
    p.block.view = 6;
    assert!(matches!(p.verify(&c.set), Err(ProposalError::ViewNotJustified { .. })));
    let mut p = original.clone();
    p.block.proposer = 3;
    assert!(matches!(p.verify(&c.set), Err(ProposalError::NotLeader { .. })));
    // Another valid certificate of the same block (other signers) means the same proposal.
    let mut p = original.clone();
    p.justify = c.qc(summary(1, 1, 1), &[1, 2, 3]);
    assert_eq!(p.verify(&c.set), Ok(()));
    // A certificate that does not verify is refused.
    let mut p = original.clone();
    p.justify.signatures[2].0[1] ^= 1;
    assert_eq!(
        p.verify(&c.set),
        Err(ProposalError::Justify(CertificateError::BadSignature(2)))
    );
    // Adding a timeout certificate changes what was signed.
    let mut p = original.clone();
    p.timeout = Some(c.tc(
        1,
        &[
            (0, QcSummary::GENESIS),
            (1, QcSummary::GENESIS),
            (2, QcSummary::GENESIS),
        ],
    ));
    assert_eq!(p.verify(&c.set), bad_signature);
}

#[test]
fn conflicting_votes_are_evidence_and_nothing_else_is() {
    let c = committee();
    let (a, b) = (summary(4, 2, 1), summary(4, 2, 2));
    let evidence = Evidence::ConflictingVotes(c.vote(3, a), c.vote(3, b));
    assert_eq!(evidence.verify(&c.set), Ok(3));
    assert_eq!((evidence.offender(), evidence.view()), (3, 4));
    // Same view, other height (and block): still two votes in one view.
    assert_eq!(
        Evidence::ConflictingVotes(c.vote(3, a), c.vote(3, summary(4, 3, 2))).verify(&c.set),
        Ok(3)
    );
    assert_eq!(
        Evidence::ConflictingVotes(c.vote(3, a), c.vote(3, a)).verify(&c.set),
        Err(EvidenceError::NoConflict)
    );
    assert_eq!(
        Evidence::ConflictingVotes(c.vote(3, a), c.vote(2, b)).verify(&c.set),
        Err(EvidenceError::DifferentSigners { first: 3, second: 2 })
    );
    assert_eq!(
        Evidence::ConflictingVotes(c.vote(3, a), c.vote(3, summary(5, 2, 2))).verify(&c.set),
        Err(EvidenceError::DifferentViews { first: 4, second: 5 })
    );
    let mut forged = c.vote(3, b);
    forged.signature.0[0] ^= 1;
    assert_eq!(
        Evidence::ConflictingVotes(c.vote(3, a), forged.clone()).verify(&c.set),
        Err(EvidenceError::Second(MessageError::BadSignature(3)))
    );
    assert_eq!(
        Evidence::ConflictingVotes(forged, c.vote(3, a)).verify(&c.set),
        Err(EvidenceError::First(MessageError::BadSignature(3)))
    );
    // Evidence from one epoch does not convict under the next.
    assert_eq!(
        evidence.verify(&c.in_epoch(8)),
        Err(EvidenceError::First(MessageError::BadSignature(3)))
    );
}

#[test]
fn conflicting_proposals_are_evidence_and_nothing_else_is() {
    let c = committee();
    let genesis = QuorumCertificate::genesis();
    let one = c.proposal(1, genesis.clone(), None);
    let mut other_block = c.block(1, &genesis);
    other_block.transactions.clear();
    let two = Proposal::sign(&c.set, &c.keys[1], other_block, genesis.clone(), None).unwrap();
    let evidence = Evidence::ConflictingProposals(one.header(), two.header());
    assert_eq!(evidence.verify(&c.set), Ok(1));
    assert_eq!((evidence.offender(), evidence.view()), (1, 1));
    assert_eq!(
        Evidence::ConflictingProposals(one.header(), one.header()).verify(&c.set),
        Err(EvidenceError::NoConflict)
    );
    // The same block re-signed with another justification is no conflict either.
    let tc = c.tc(0, &[]);
    let resigned = Proposal::sign(&c.set, &c.keys[1], one.block.clone(), genesis.clone(), Some(tc)).unwrap();
    assert_eq!(
        Evidence::ConflictingProposals(one.header(), resigned.header()).verify(&c.set),
        Err(EvidenceError::NoConflict)
    );
    let next = c.proposal(2, c.quorum_qc(summary(1, 1, 1)), None);
    let mut disguised = next.header();
    disguised.view = 1;
    assert_eq!(
        Evidence::ConflictingProposals(one.header(), next.header()).verify(&c.set),
        Err(EvidenceError::DifferentSigners { first: 1, second: 2 })
    );
    disguised.proposer = 1;
    assert_eq!(
        Evidence::ConflictingProposals(one.header(), disguised).verify(&c.set),
        Err(EvidenceError::Second(MessageError::BadSignature(1)))
    );
    let mut same_signer_other_view = next.header();
    same_signer_other_view.proposer = 1;
    assert_eq!(
        Evidence::ConflictingProposals(one.header(), same_signer_other_view).verify(&c.set),
        Err(EvidenceError::DifferentViews { first: 1, second: 2 })
    );
}
