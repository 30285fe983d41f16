//! The registries as a chain on the replicated log: signed transactions included by nonce,
//! receipts and logs, blocks only where transactions were included, queries, snapshots.

use alloy_primitives::{keccak256, Address, Bytes as EthBytes, B256, U256};
use alloy_sol_types::{SolCall, SolEvent};
use bytes::Bytes;
use erc8004::abi::{IdentityRegistry as I, ReputationRegistry as R, IDENTITY_REGISTRY, REPUTATION_REGISTRY};
use erc8004::chain::{Chain, ChainConfig, Query};
use erc8004::registries::OnRevert;
use erc8004::wallet::{Envelope, Wallet};
use hypermesh::replication::{BlockInfo, Outcome, StateMachine};

const T0_MS: u64 = 1_790_000_000_000;

fn wallet(i: u64) -> Wallet {
    Wallet::development(7, i)
}

/// `wallet` signs `call` to `to` at `nonce` for the default chain.
fn signed<C: SolCall>(wallet: &Wallet, nonce: u64, to: Address, call: C) -> Bytes {
    let raw = wallet.sign_call(
        Envelope::Eip1559,
        ChainConfig::default().chain_id,
        nonce,
        to,
        call.abi_encode().into(),
    );
    Bytes::from(raw.to_vec())
}

fn apply(chain: &mut Chain, height: u64, transactions: &[Bytes]) -> Vec<Outcome> {
    let block = BlockInfo {
        height,
        timestamp_ms: T0_MS + height * 1000,
    };
    chain.apply(block, transactions, &vec![false; transactions.len()])
}

fn query(chain: &Chain, query: Query) -> serde_json::Value {
    let request = serde_json::to_vec(&query).unwrap();
    serde_json::from_slice(&chain.query(&request).unwrap()).unwrap()
}

fn applied(outcome: &Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Applied(answer) => serde_json::from_slice(answer).unwrap(),
        Outcome::Refused(why) => panic!("refused: {why}"),
    }
}

#[test]
fn transactions_are_included_by_nonce_and_each_block_holds_its_receipts_and_logs() {
    let mut chain = Chain::new(ChainConfig::default());
    let (alice, bob) = (wallet(0), wallet(1));
    // A heartbeat height makes no block.
    assert!(apply(&mut chain, 1, &[]).is_empty());
    assert_eq!(chain.head(), 0);

    let register = signed(
        &alice,
        0,
        IDENTITY_REGISTRY,
        I::register_1Call {
            agentURI: "ipfs://a".into(),
        },
    );
    let skipped = signed(&alice, 50, IDENTITY_REGISTRY, I::register_0Call {});
    let self_feedback = signed(
        &alice,
        1,
        REPUTATION_REGISTRY,
        R::giveFeedbackCall {
            agentId: U256::ZERO,
            value: 90,
            valueDecimals: 0,
            tag1: String::new(),
            tag2: String::new(),
            endpoint: String::new(),
            feedbackURI: String::new(),
            feedbackHash: B256::ZERO,
        },
    );
    let outcomes = apply(
        &mut chain,
        2,
        &[
            register.clone(),
            skipped,
            self_feedback.clone(),
            Bytes::from_static(b"junk"),
        ],
    );
    assert_eq!(applied(&outcomes[0])["status"], true);
    assert!(
        matches!(&outcomes[1], Outcome::Refused(why) if why.contains("nonce 5") && why.contains("next, 1")),
        "{outcomes:?}"
    );
    // A revert is included: status 0, its nonce used, its reason kept.
    let reverted = applied(&outcomes[2]);
    assert_eq!(reverted["status"], false);
    assert_eq!(reverted["revert_reason"], "Self-feedback not allowed");
    assert!(matches!(&outcomes[3], Outcome::Refused(why) if why.contains("does not decode")));
    assert_eq!(chain.nonce(alice.address()), 2);
    assert_eq!(chain.head(), 1);

    let block = chain.block(1).unwrap().clone();
    assert_eq!(
        (block.height, block.timestamp, block.parent_hash),
        (2, T0_MS / 1000 + 2, B256::ZERO)
    );
    let register_hash = keccak256(&register);
    assert_eq!(block.transactions, vec![register_hash, keccak256(&self_feedback)]);
    let receipt = chain.receipt(&register_hash).unwrap();
    assert_eq!(
        (receipt.block_hash, receipt.transaction_index, receipt.status),
        (block.hash, 0, true)
    );
    assert_eq!(
        receipt.logs.len(),
        4,
        "Transfer, MetadataUpdate, Registered, MetadataSet"
    );
    let failed = chain.receipt(&keccak256(&self_feedback)).unwrap();
    assert!(failed.logs.is_empty());
    assert_eq!(failed.first_log_index, 4);

    // A replayed transaction is refused by its used nonce; bob's first is taken.
    let bobs = signed(&bob, 0, IDENTITY_REGISTRY, I::register_0Call {});
    let outcomes = apply(&mut chain, 3, &[register, bobs]);
    assert!(matches!(&outcomes[0], Outcome::Refused(why) if why.contains("nonce 0") && why.contains("is used")));
    assert_eq!(applied(&outcomes[1])["block_number"], 2);
    let second = chain.block(2).unwrap();
    assert_eq!(second.parent_hash, block.hash, "blocks chain");

    // Queries: the head, nonces, eth_call, receipts, logs.
    assert_eq!(query(&chain, Query::Head)["number"], 2);
    assert_eq!(query(&chain, Query::Nonce { address: bob.address() }), 1);
    let owner = query(
        &chain,
        Query::Call {
            from: Address::ZERO,
            to: IDENTITY_REGISTRY,
            data: I::ownerOfCall { tokenId: U256::from(1) }.abi_encode().into(),
        },
    );
    let output: EthBytes = serde_json::from_value(owner["output"].clone()).unwrap();
    assert_eq!(I::ownerOfCall::abi_decode_returns(&output).unwrap(), bob.address());
    let missing = query(
        &chain,
        Query::Call {
            from: Address::ZERO,
            to: IDENTITY_REGISTRY,
            data: I::ownerOfCall { tokenId: U256::from(9) }.abi_encode().into(),
        },
    );
    assert!(
        missing["reason"].as_str().unwrap().contains("ERC721NonexistentToken"),
        "{missing}"
    );
    let registered = keccak256("Registered(uint256,string,address)");
    let logs = chain.logs(1, 2, &[IDENTITY_REGISTRY], &[vec![registered]]).unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!((logs[0].block_number, logs[0].log_index), (1, 2));
    assert_eq!((logs[1].block_number, logs[1].log_index), (2, 1));
    let by_owner = chain
        .logs(1, 2, &[], &[vec![registered], vec![], vec![bob.address().into_word()]])
        .unwrap();
    assert_eq!(by_owner.len(), 1, "the owner topic picks bob's");
    assert!(chain.logs(3, 1, &[], &[]).unwrap_err().contains("after its end"));
    assert!(chain
        .logs(0, u64::MAX, &[], &[])
        .unwrap_err()
        .contains("spans 18446744073709551615 blocks"));
    assert!(chain.logs(0, 20_000, &[], &[]).unwrap_err().contains("at most 10000"));
    assert!(chain
        .query(b"{\"query\":\"nonsense\"}")
        .unwrap_err()
        .contains("does not parse"));
    assert!(chain
        .query(b"{\"query\":\"nonce\",\"address\":\"0x00\"}")
        .unwrap_err()
        .contains("does not parse"));
}

#[test]
fn block_time_never_goes_back_and_deadlines_are_judged_by_it() {
    let mut chain = Chain::new(ChainConfig::default());
    let alice = wallet(0);
    apply(
        &mut chain,
        1,
        &[signed(&alice, 0, IDENTITY_REGISTRY, I::register_0Call {})],
    );
    let later = BlockInfo {
        height: 2,
        timestamp_ms: T0_MS - 60_000,
    };
    let outcomes = chain.apply(
        later,
        &[signed(&alice, 1, IDENTITY_REGISTRY, I::register_0Call {})],
        &[false],
    );
    assert_eq!(applied(&outcomes[0])["status"], true);
    assert_eq!(
        chain.block(2).unwrap().timestamp,
        T0_MS / 1000 + 1,
        "the earlier proposer time is not taken"
    );
}

#[test]
fn replicas_applying_the_same_blocks_snapshot_alike_and_a_restore_answers_the_same() {
    let run = || {
        let mut chain = Chain::new(ChainConfig::default());
        for h in 1..=5u64 {
            let w = wallet(h % 3);
            let nonce = chain.nonce(w.address());
            apply(
                &mut chain,
                h,
                &[signed(&w, nonce, IDENTITY_REGISTRY, I::register_0Call {})],
            );
        }
        chain
    };
    let (a, b) = (run(), run());
    let snapshot = a.snapshot();
    assert_eq!(snapshot, b.snapshot(), "same blocks, same bytes");
    let mut restored = Chain::new(ChainConfig::default());
    restored.restore(&snapshot).unwrap();
    assert_eq!(restored, a);
    assert_eq!(query(&restored, Query::Head), query(&a, Query::Head));
    // It goes on from there as the original does.
    let next = signed(&wallet(9), 0, IDENTITY_REGISTRY, I::register_0Call {});
    let mut original = a.clone();
    assert_eq!(
        apply(&mut restored, 6, std::slice::from_ref(&next)),
        apply(&mut original, 6, &[next])
    );
    assert_eq!(restored.snapshot(), original.snapshot());

    // Bad snapshots are refused by where, and change nothing.
    let before = restored.clone();
    let mut cut = snapshot.to_vec();
    cut.truncate(cut.len() / 2);
    let error = restored.restore(&cut).unwrap_err();
    assert!(error.offset > 0 && error.offset <= cut.len(), "{error}");
    assert_eq!(restored, before);
    let other = Chain::new(ChainConfig {
        chain_id: 1,
        ..ChainConfig::default()
    });
    let error = restored.restore(&other.snapshot()).unwrap_err();
    assert!(error.reason.contains("chain_id 1"), "{error}");
    // A replicated setting that differs is refused by name; a local query limit is not kept.
    let mut other = Chain::new(ChainConfig {
        history_blocks: 5,
        ..ChainConfig::default()
    });
    let error = other.restore(&snapshot).unwrap_err();
    assert!(
        error.reason.contains("history_blocks 10000, this replica runs 5"),
        "{error}"
    );
    // So is a chain that keeps reverted writes; one that undoes them snapshots without saying
    // so, as before the setting was (`on_revert` absent from the bytes).
    let mut keeping = Chain::new(ChainConfig {
        on_revert: OnRevert::Keep,
        ..ChainConfig::default()
    });
    let error = keeping.restore(&snapshot).unwrap_err();
    assert!(
        error.reason.contains("on_revert rollback, this replica runs keep"),
        "{error}"
    );
    assert!(!String::from_utf8_lossy(&snapshot).contains("on_revert"));
    let narrow = Chain::new(ChainConfig {
        logs_per_query_max: 3,
        ..ChainConfig::default()
    });
    assert_eq!(narrow.snapshot(), Chain::new(ChainConfig::default()).snapshot());
    assert_eq!(restored, before);
}

#[test]
fn history_beyond_the_blocks_kept_is_forgotten_but_nonces_and_registries_are_not() {
    let mut chain = Chain::new(ChainConfig {
        history_blocks: 2,
        ..ChainConfig::default()
    });
    let alice = wallet(0);
    let mut hashes = Vec::new();
    for h in 1..=3u64 {
        let tx = signed(&alice, h - 1, IDENTITY_REGISTRY, I::register_0Call {});
        hashes.push(keccak256(&tx));
        apply(&mut chain, h, &[tx]);
    }
    assert!(chain.block(1).is_none() && chain.receipt(&hashes[0]).is_none());
    assert!(chain.block(3).is_some() && chain.receipt(&hashes[2]).is_some());
    assert_eq!(chain.nonce(alice.address()), 3);
    assert_eq!(chain.registries().clone(), {
        let mut check = Chain::new(ChainConfig::default());
        for h in 1..=3u64 {
            apply(
                &mut check,
                h,
                &[signed(&alice, h - 1, IDENTITY_REGISTRY, I::register_0Call {})],
            );
        }
        let registries = check.registries().clone();
        registries
    });
}

#[test]
fn a_transaction_ahead_of_its_senders_nonce_is_held_until_the_gap_fills_and_then_included_in_order() {
    let mut chain = Chain::new(ChainConfig {
        held_heights_max: 3,
        ..ChainConfig::default()
    });
    let alice = wallet(0);
    let tx = |nonce| signed(&alice, nonce, IDENTITY_REGISTRY, I::register_0Call {});
    // Nonces 2 and 1 arrive first (forwarded to another leader, say): held, nothing included.
    let outcomes = apply(&mut chain, 1, &[tx(2), tx(1)]);
    for o in &outcomes {
        assert_eq!(applied(o)["held"], true, "{o:?}");
    }
    assert_eq!((chain.head(), chain.nonce(alice.address())), (0, 0));
    let again = apply(&mut chain, 2, &[tx(2)]);
    assert!(
        matches!(&again[0], Outcome::Refused(why) if why.contains("held already")),
        "{again:?}"
    );
    // Nonce 0 fills the gap: 0, 1 and 2 are included in that order, in one block.
    let outcomes = apply(&mut chain, 3, &[tx(0)]);
    assert_eq!(applied(&outcomes[0])["status"], true);
    let block = chain.block(1).unwrap();
    assert_eq!(
        block.transactions,
        vec![keccak256(tx(0)), keccak256(tx(1)), keccak256(tx(2))]
    );
    assert_eq!(chain.nonce(alice.address()), 3);
    let receipt = chain.receipt(&keccak256(tx(2))).unwrap();
    assert_eq!((receipt.transaction_index, receipt.first_log_index), (2, 6));
    // A held transaction whose gap never fills is dropped after held_heights_max heights; it is
    // no longer reported held once the next block would drop it.
    apply(&mut chain, 4, &[tx(5)]);
    assert_eq!(chain.held(alice.address(), 5), Some(tx(5).as_ref()));
    apply(&mut chain, 6, &[]);
    assert_eq!(
        chain.held(alice.address(), 5),
        Some(tx(5).as_ref()),
        "held at 4, kept at 7"
    );
    apply(&mut chain, 7, &[]);
    assert_eq!(chain.held(alice.address(), 5), None, "dropped by block 8");
    let replica_view = chain.snapshot();
    apply(&mut chain, 8, &[]);
    apply(&mut chain, 9, &[tx(3), tx(4)]);
    assert_eq!(
        chain.nonce(alice.address()),
        5,
        "nonce 5 was dropped at height 8, before the gap filled"
    );
    assert_ne!(chain.snapshot(), replica_view);
}

/// Seed 004's "Transaction Rollback Errors": a registration refused after it minted (its second
/// metadata entry is the reserved key) leaves no trace on the chain as configured, and, under
/// the guide's faulty setting (`on_revert = keep`), leaves its agent minted although its receipt
/// says it reverted and no `Registered` log names it: the partial write the guide describes.
#[test]
fn a_registration_refused_after_its_mint_leaves_no_agent_unless_reverts_keep_their_writes() {
    let alice = wallet(0);
    let entry = |key: &str| erc8004::abi::MetadataEntry {
        metadataKey: key.into(),
        metadataValue: EthBytes::from_static(b"x"),
    };
    let refused = signed(
        &alice,
        0,
        IDENTITY_REGISTRY,
        I::register_2Call {
            agentURI: "ipfs://a".into(),
            metadata: vec![entry("name"), entry(erc8004::identity::AGENT_WALLET)],
        },
    );
    let next = signed(
        &alice,
        1,
        IDENTITY_REGISTRY,
        I::register_1Call {
            agentURI: "ipfs://b".into(),
        },
    );
    let run = |on_revert| {
        let mut chain = Chain::new(ChainConfig {
            on_revert,
            ..ChainConfig::default()
        });
        let outcomes = apply(&mut chain, 1, &[refused.clone(), next.clone()]);
        assert_eq!(applied(&outcomes[0])["status"], false);
        assert!(chain.receipt(&keccak256(&refused)).unwrap().logs.is_empty());
        let logs = &chain.receipt(&keccak256(&next)).unwrap().logs;
        let registered = logs
            .iter()
            .find(|log| log.topics()[0] == I::Registered::SIGNATURE_HASH)
            .expect("the next registration's Registered log");
        let agents = chain.registries().agent_count();
        (agents, U256::from_be_bytes(registered.topics()[1].0))
    };
    assert_eq!(run(OnRevert::Rollback), (1, U256::ZERO), "the refused one left nothing");
    assert_eq!(
        run(OnRevert::Keep),
        (2, U256::from(1)),
        "the refused one's agent stands, and the next registration's id skips it"
    );
}
