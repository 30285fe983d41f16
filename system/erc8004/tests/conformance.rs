//! Conformance of the native registries to the reference contracts (`erc-8004/erc-8004-contracts`
//! 2.0.0 over OpenZeppelin 5.4): each function's happy path, its reverts with the reference's
//! own data, events byte for byte (topic hashes computed here from the canonical signatures, not
//! taken from the code under test), `getSummary`'s arithmetic, and that a reverted call leaves
//! no trace.

// The returns of functions without outputs do not implement Debug, so `expect_err` is not there
// for them; `.err().expect(…)` is used throughout alike.
#![allow(clippy::err_expect)]

use alloy_primitives::{address, keccak256, Address, Bytes, Log, B256, U256};
use alloy_sol_types::{SolCall, SolValue};
use erc8004::abi::{
    IdentityRegistry as I, MetadataEntry, ReputationRegistry as R, ValidationRegistry as V, IDENTITY_REGISTRY,
    REPUTATION_REGISTRY, VALIDATION_REGISTRY,
};
use erc8004::identity::agent_wallet_digest;
use erc8004::registries::{Commit, Registries, Revert};
use erc8004::wallet::Wallet;

const CHAIN: u64 = 8004;
const NOW: u64 = 1_790_000_000;

/// The registries, called as a chain's transactions would call them.
struct Chain {
    registries: Registries,
    now: u64,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            registries: Registries::new(CHAIN),
            now: NOW,
        }
    }

    /// A committed call: its decoded return and logs, or its revert (the state untouched, checked).
    fn send<C: SolCall>(&mut self, from: Address, to: Address, call: C) -> Result<(C::Return, Vec<Log>), Revert> {
        let before = self.registries.clone();
        match self
            .registries
            .call(from, to, &call.abi_encode(), U256::ZERO, self.now, Commit::IfSucceeded)
        {
            Ok(done) => Ok((
                C::abi_decode_returns(&done.output).expect("the return decodes"),
                done.logs,
            )),
            Err(revert) => {
                assert_eq!(
                    self.registries, before,
                    "a reverted call left a trace: {}",
                    revert.reason
                );
                Err(revert)
            }
        }
    }

    /// A view, as `eth_call` runs it: nothing kept.
    fn view<C: SolCall>(&mut self, to: Address, call: C) -> Result<C::Return, Revert> {
        let before = self.registries.clone();
        let result = self.registries.call(
            Address::ZERO,
            to,
            &call.abi_encode(),
            U256::ZERO,
            self.now,
            Commit::Never,
        );
        assert_eq!(self.registries, before, "a view changed the state");
        result.map(|done| C::abi_decode_returns(&done.output).expect("the return decodes"))
    }
}

fn wallet(i: u64) -> Wallet {
    Wallet::development(42, i)
}

/// topic0 of the canonical event signature `signature`.
fn topic(signature: &str) -> B256 {
    keccak256(signature.as_bytes())
}

fn word(address: Address) -> B256 {
    address.into_word()
}

fn id_topic(n: u64) -> B256 {
    B256::from(U256::from(n))
}

/// `require(…, reason)`'s revert data: `Error(string)`.
fn require_data(reason: &str) -> Bytes {
    let mut data = vec![0x08, 0xc3, 0x79, 0xa0];
    data.extend(reason.to_owned().abi_encode());
    data.into()
}

fn assert_require<T>(result: Result<T, Revert>, reason: &str) {
    let revert = result.err().expect(reason);
    assert_eq!(revert.reason, reason);
    assert_eq!(revert.data, require_data(reason), "{reason}");
}

fn nonexistent_data(agent: u64) -> Bytes {
    // ERC721NonexistentToken(uint256): selector 0x7e273289.
    let mut data = vec![0x7e, 0x27, 0x32, 0x89];
    data.extend(U256::from(agent).abi_encode());
    data.into()
}

const TRANSFER: &str = "Transfer(address,address,uint256)";
const METADATA_UPDATE: &str = "MetadataUpdate(uint256)";
const REGISTERED: &str = "Registered(uint256,string,address)";
const METADATA_SET: &str = "MetadataSet(uint256,string,string,bytes)";

#[test]
fn agent_ids_start_at_zero_and_registration_logs_come_in_the_references_order() {
    let mut chain = Chain::new();
    let alice = wallet(0).address();
    let entry = MetadataEntry {
        metadataKey: "skills".into(),
        metadataValue: Bytes::from_static(b"trading"),
    };
    let (agent, logs) = chain
        .send(
            alice,
            IDENTITY_REGISTRY,
            I::register_2Call {
                agentURI: "ipfs://agent-0".into(),
                metadata: vec![entry],
            },
        )
        .unwrap();
    assert_eq!(agent, U256::ZERO, "the first agent is id 0");
    let topics0: Vec<B256> = logs.iter().map(|l| l.data.topics()[0]).collect();
    assert_eq!(
        topics0,
        [TRANSFER, METADATA_UPDATE, REGISTERED, METADATA_SET, METADATA_SET].map(topic),
        "Transfer, MetadataUpdate, Registered, MetadataSet(agentWallet), MetadataSet(entry)"
    );
    assert!(logs.iter().all(|l| l.address == IDENTITY_REGISTRY));
    // The reference's topic hashes, as published.
    assert_eq!(
        topic(REGISTERED),
        "0xca52e62c367d81bb2e328eb795f7c7ba24afb478408a26c0e201d155c449bc4a"
            .parse::<B256>()
            .unwrap()
    );
    assert_eq!(
        topic(METADATA_SET),
        "0x2c149ed548c6d2993cd73efe187df6eccabe4538091b33adbd25fafdb8a1468b"
            .parse::<B256>()
            .unwrap()
    );
    // Transfer(0x0, alice, 0): all three indexed.
    assert_eq!(
        logs[0].data.topics(),
        &[topic(TRANSFER), B256::ZERO, word(alice), id_topic(0)]
    );
    // MetadataUpdate(0): not indexed.
    assert_eq!(logs[1].data.topics(), &[topic(METADATA_UPDATE)]);
    assert_eq!(logs[1].data.data, U256::ZERO.abi_encode());
    // Registered(agentId*, agentURI, owner*).
    assert_eq!(logs[2].data.topics(), &[topic(REGISTERED), id_topic(0), word(alice)]);
    assert_eq!(logs[2].data.data, "ipfs://agent-0".to_owned().abi_encode());
    // MetadataSet(agentId*, keccak(key)*, key, value): the wallet is 20 packed bytes.
    assert_eq!(
        logs[3].data.topics(),
        &[
            topic(METADATA_SET),
            id_topic(0),
            "0x2ac6109326e720d1435c0db66f7e35eda7839f52b6f1f5520a60788e132b4e39"
                .parse()
                .unwrap()
        ]
    );
    assert_eq!(
        logs[3].data.data,
        ("agentWallet".to_owned(), Bytes::copy_from_slice(alice.as_slice())).abi_encode_params()
    );
    assert_eq!(logs[4].data.topics()[2], keccak256("skills"));

    // register(): the next id, no URI, no MetadataUpdate.
    let (second, logs) = chain.send(alice, IDENTITY_REGISTRY, I::register_0Call {}).unwrap();
    assert_eq!(second, U256::from(1));
    assert_eq!(
        logs.iter().map(|l| l.data.topics()[0]).collect::<Vec<_>>(),
        [TRANSFER, REGISTERED, METADATA_SET].map(topic)
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::tokenURICall { tokenId: second })
            .unwrap(),
        ""
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::tokenURICall { tokenId: agent })
            .unwrap(),
        "ipfs://agent-0"
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::ownerOfCall { tokenId: second })
            .unwrap(),
        alice
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::balanceOfCall { owner: alice })
            .unwrap(),
        U256::from(2)
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::getAgentWalletCall { agentId: agent })
            .unwrap(),
        alice,
        "the wallet starts as the owner"
    );
    assert_eq!(
        chain
            .view(
                IDENTITY_REGISTRY,
                I::getMetadataCall {
                    agentId: agent,
                    metadataKey: "skills".into()
                }
            )
            .unwrap(),
        Bytes::from_static(b"trading")
    );
    assert_eq!(chain.view(IDENTITY_REGISTRY, I::nameCall {}).unwrap(), "AgentIdentity");
    assert_eq!(chain.view(IDENTITY_REGISTRY, I::symbolCall {}).unwrap(), "AGENT");
    assert_eq!(chain.view(IDENTITY_REGISTRY, I::getVersionCall {}).unwrap(), "2.0.0");
    for (interface, supported) in [
        ([0x80, 0xac, 0x58, 0xcd], true),
        ([0x5b, 0x5e, 0x13, 0x9f], true),
        ([0x49, 0x06, 0x49, 0x06], true),
        ([0xff, 0xff, 0xff, 0xff], false),
    ] {
        let answer = chain
            .view(
                IDENTITY_REGISTRY,
                I::supportsInterfaceCall {
                    interfaceId: interface.into(),
                },
            )
            .unwrap();
        assert_eq!(answer, supported, "{interface:?}");
    }
    // Unknown agents: views that do not revert, and those that do.
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::getAgentWalletCall { agentId: U256::from(9) })
            .unwrap(),
        Address::ZERO
    );
    let revert = chain
        .view(IDENTITY_REGISTRY, I::ownerOfCall { tokenId: U256::from(9) })
        .err()
        .expect("a revert");
    assert_eq!(revert.data, nonexistent_data(9));
}

#[test]
fn the_reserved_key_and_authorization_are_refused_as_the_reference_refuses_them() {
    let mut chain = Chain::new();
    let (alice, bob) = (wallet(0).address(), wallet(1).address());
    let reserved = MetadataEntry {
        metadataKey: "agentWallet".into(),
        metadataValue: Bytes::from_static(b"x"),
    };
    // The whole registration reverts, mint included: the id is not used.
    assert_require(
        chain.send(
            alice,
            IDENTITY_REGISTRY,
            I::register_2Call {
                agentURI: "u".into(),
                metadata: vec![reserved],
            },
        ),
        "reserved key",
    );
    let (agent, _) = chain
        .send(alice, IDENTITY_REGISTRY, I::register_1Call { agentURI: "u".into() })
        .unwrap();
    assert_eq!(agent, U256::ZERO);
    let set = |key: &str, id: u64| I::setMetadataCall {
        agentId: U256::from(id),
        metadataKey: key.into(),
        metadataValue: Bytes::from_static(b"v"),
    };
    assert_require(chain.send(bob, IDENTITY_REGISTRY, set("k", 0)), "Not authorized");
    assert_require(
        chain.send(alice, IDENTITY_REGISTRY, set("agentWallet", 0)),
        "reserved key",
    );
    // Authorization comes before the reserved key; an unknown agent reverts in getApproved.
    assert_require(
        chain.send(bob, IDENTITY_REGISTRY, set("agentWallet", 0)),
        "Not authorized",
    );
    assert_eq!(
        chain
            .send(alice, IDENTITY_REGISTRY, set("k", 7))
            .err()
            .expect("a revert")
            .data,
        nonexistent_data(7)
    );
    chain
        .send(alice, IDENTITY_REGISTRY, set("AgentWallet", 0))
        .expect("case matters");
    // An operator may; so may the approved address.
    chain
        .send(
            alice,
            IDENTITY_REGISTRY,
            I::setApprovalForAllCall {
                operator: bob,
                approved: true,
            },
        )
        .unwrap();
    let (_, logs) = chain
        .send(
            bob,
            IDENTITY_REGISTRY,
            I::setAgentURICall {
                agentId: agent,
                newURI: "https://new".into(),
            },
        )
        .unwrap();
    assert_eq!(
        logs.iter().map(|l| l.data.topics()[0]).collect::<Vec<_>>(),
        [METADATA_UPDATE, "URIUpdated(uint256,string,address)"].map(topic)
    );
    assert_eq!(logs[1].data.topics()[2], word(bob), "updatedBy is the caller");
    assert!(chain
        .view(
            IDENTITY_REGISTRY,
            I::isAuthorizedOrOwnerCall {
                spender: bob,
                agentId: agent
            }
        )
        .unwrap());
    // approve: only the owner or an operator.
    let carol = wallet(2).address();
    let refused = chain
        .send(
            carol,
            IDENTITY_REGISTRY,
            I::approveCall {
                to: carol,
                tokenId: agent,
            },
        )
        .err()
        .expect("a revert");
    assert_eq!(&refused.data[..4], &[0xa9, 0xfb, 0xf5, 0x1f], "ERC721InvalidApprover");
    let refused = chain
        .send(
            alice,
            IDENTITY_REGISTRY,
            I::setApprovalForAllCall {
                operator: Address::ZERO,
                approved: true,
            },
        )
        .err()
        .expect("a revert");
    assert_eq!(&refused.data[..4], &[0x5b, 0x08, 0xba, 0x18], "ERC721InvalidOperator");
}

/// The signature `signer` gives to become `agent`'s wallet under `owner` until `deadline`.
fn wallet_signature(signer: &Wallet, agent: U256, owner: Address, deadline: u64) -> Bytes {
    let digest = agent_wallet_digest(CHAIN, agent, signer.address(), owner, U256::from(deadline));
    let signature = signer.sign_hash(&digest);
    // r ‖ s ‖ v with v 27 or 28, as wallets give it.
    let mut raw = signature.as_bytes();
    raw[64] = 27 + u8::from(signature.v());
    Bytes::copy_from_slice(&raw)
}

#[test]
fn the_agent_wallet_takes_the_new_wallets_eip712_signature_within_five_minutes() {
    // The reference's digest for its published example (chain 1, the mainnet proxy).
    let digest = agent_wallet_digest(
        1,
        U256::from(5),
        address!("1111111111111111111111111111111111111111"),
        address!("2222222222222222222222222222222222222222"),
        U256::from(1_700_000_000u64),
    );
    assert_eq!(
        digest,
        "0x92fb8f3412a5daacde4bd79ef2b161d7e382fa4a921eb7a7409b641ba875db90"
            .parse::<B256>()
            .unwrap()
    );
    assert_eq!(
        erc8004::identity::eip712_domain(1).separator(),
        "0xaf548694a34be1ed51ad7aba41462666ec92faab9e465c70a9ec2bc8ecfbd156"
            .parse::<B256>()
            .unwrap()
    );

    let mut chain = Chain::new();
    let (owner, other) = (wallet(0), wallet(1));
    let new_wallet = wallet(5);
    let (agent, _) = chain
        .send(owner.address(), IDENTITY_REGISTRY, I::register_0Call {})
        .unwrap();
    let set = |deadline: u64, signature: Bytes, to: Address| I::setAgentWalletCall {
        agentId: agent,
        newWallet: to,
        deadline: U256::from(deadline),
        signature,
    };
    let good = |deadline| wallet_signature(&new_wallet, agent, owner.address(), deadline);
    assert_require(
        chain.send(
            other.address(),
            IDENTITY_REGISTRY,
            set(NOW + 240, good(NOW + 240), new_wallet.address()),
        ),
        "Not authorized",
    );
    assert_require(
        chain.send(
            owner.address(),
            IDENTITY_REGISTRY,
            set(NOW + 240, good(NOW + 240), Address::ZERO),
        ),
        "bad wallet",
    );
    assert_require(
        chain.send(
            owner.address(),
            IDENTITY_REGISTRY,
            set(NOW - 1, good(NOW - 1), new_wallet.address()),
        ),
        "expired",
    );
    assert_require(
        chain.send(
            owner.address(),
            IDENTITY_REGISTRY,
            set(NOW + 301, good(NOW + 301), new_wallet.address()),
        ),
        "deadline too far",
    );
    // Signed by someone else, or naming another owner, or with v as 0/1.
    let forged = wallet_signature(&other, agent, owner.address(), NOW + 240);
    assert_require(
        chain.send(
            owner.address(),
            IDENTITY_REGISTRY,
            set(NOW + 240, forged, new_wallet.address()),
        ),
        "invalid wallet sig",
    );
    let wrong_owner = wallet_signature(&new_wallet, agent, other.address(), NOW + 240);
    assert_require(
        chain.send(
            owner.address(),
            IDENTITY_REGISTRY,
            set(NOW + 240, wrong_owner, new_wallet.address()),
        ),
        "invalid wallet sig",
    );
    let mut raw_v = good(NOW + 240).to_vec();
    raw_v[64] -= 27;
    assert_require(
        chain.send(
            owner.address(),
            IDENTITY_REGISTRY,
            set(NOW + 240, raw_v.into(), new_wallet.address()),
        ),
        "invalid wallet sig",
    );
    // Both bounds are inclusive.
    chain
        .send(
            owner.address(),
            IDENTITY_REGISTRY,
            set(NOW + 300, good(NOW + 300), new_wallet.address()),
        )
        .unwrap();
    let (_, logs) = chain
        .send(
            owner.address(),
            IDENTITY_REGISTRY,
            set(NOW, good(NOW), new_wallet.address()),
        )
        .unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].data.topics()[0], topic(METADATA_SET));
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::getAgentWalletCall { agentId: agent })
            .unwrap(),
        new_wallet.address()
    );
    // unsetAgentWallet: empty, said with an empty MetadataSet.
    let (_, logs) = chain
        .send(
            owner.address(),
            IDENTITY_REGISTRY,
            I::unsetAgentWalletCall { agentId: agent },
        )
        .unwrap();
    assert_eq!(
        logs[0].data.data,
        ("agentWallet".to_owned(), Bytes::new()).abi_encode_params()
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::getAgentWalletCall { agentId: agent })
            .unwrap(),
        Address::ZERO
    );
}

#[test]
fn a_transfer_clears_the_agent_wallet_before_its_transfer_log_and_checks_as_openzeppelin_does() {
    let mut chain = Chain::new();
    let (alice, bob, carol) = (wallet(0).address(), wallet(1).address(), wallet(2).address());
    let (agent, _) = chain
        .send(alice, IDENTITY_REGISTRY, I::register_1Call { agentURI: "u".into() })
        .unwrap();
    chain
        .send(
            alice,
            IDENTITY_REGISTRY,
            I::setMetadataCall {
                agentId: agent,
                metadataKey: "k".into(),
                metadataValue: Bytes::from_static(b"kept"),
            },
        )
        .unwrap();
    chain
        .send(
            alice,
            IDENTITY_REGISTRY,
            I::approveCall {
                to: carol,
                tokenId: agent,
            },
        )
        .unwrap();
    let transfer = |from, to, id: u64| I::transferFromCall {
        from,
        to,
        tokenId: U256::from(id),
    };
    let refused = chain
        .send(bob, IDENTITY_REGISTRY, transfer(alice, bob, 0))
        .err()
        .expect("a revert");
    // ERC721InsufficientApproval(address,uint256): selector 0x177e802f.
    let mut expected = vec![0x17, 0x7e, 0x80, 0x2f];
    expected.extend((bob, agent).abi_encode_params());
    assert_eq!(refused.data, Bytes::from(expected));
    let refused = chain
        .send(alice, IDENTITY_REGISTRY, transfer(bob, carol, 0))
        .err()
        .expect("a revert");
    assert_eq!(&refused.data[..4], &[0x64, 0x28, 0x3d, 0x7b], "ERC721IncorrectOwner");
    let refused = chain
        .send(alice, IDENTITY_REGISTRY, transfer(alice, Address::ZERO, 0))
        .err()
        .expect("a revert");
    assert_eq!(&refused.data[..4], &[0x64, 0xa0, 0xae, 0x92], "ERC721InvalidReceiver");
    assert_eq!(
        chain
            .send(alice, IDENTITY_REGISTRY, transfer(alice, bob, 3))
            .err()
            .expect("a revert")
            .data,
        nonexistent_data(3)
    );
    // A safe transfer to a contract that does not take ERC-721s.
    let refused = chain
        .send(
            alice,
            IDENTITY_REGISTRY,
            I::safeTransferFrom_0Call {
                from: alice,
                to: REPUTATION_REGISTRY,
                tokenId: agent,
            },
        )
        .err()
        .expect("a revert");
    assert_eq!(&refused.data[..4], &[0x64, 0xa0, 0xae, 0x92]);

    // The approved address transfers.
    let (_, logs) = chain.send(carol, IDENTITY_REGISTRY, transfer(alice, bob, 0)).unwrap();
    assert_eq!(
        logs.iter().map(|l| l.data.topics()[0]).collect::<Vec<_>>(),
        [METADATA_SET, TRANSFER].map(topic),
        "the wallet's clearing, then the transfer"
    );
    assert_eq!(
        logs[1].data.topics(),
        &[topic(TRANSFER), word(alice), word(bob), id_topic(0)]
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::ownerOfCall { tokenId: agent })
            .unwrap(),
        bob
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::getAgentWalletCall { agentId: agent })
            .unwrap(),
        Address::ZERO
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::getApprovedCall { tokenId: agent })
            .unwrap(),
        Address::ZERO
    );
    assert_eq!(
        chain
            .view(
                IDENTITY_REGISTRY,
                I::getMetadataCall {
                    agentId: agent,
                    metadataKey: "k".into()
                }
            )
            .unwrap(),
        Bytes::from_static(b"kept")
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::balanceOfCall { owner: alice })
            .unwrap(),
        U256::ZERO
    );
    assert_eq!(
        chain.view(IDENTITY_REGISTRY, I::balanceOfCall { owner: bob }).unwrap(),
        U256::from(1)
    );
    assert_eq!(
        chain
            .view(IDENTITY_REGISTRY, I::tokenURICall { tokenId: agent })
            .unwrap(),
        "u"
    );
}

fn feedback(agent: u64, value: i128, decimals: u8, tag1: &str, tag2: &str) -> R::giveFeedbackCall {
    R::giveFeedbackCall {
        agentId: U256::from(agent),
        value,
        valueDecimals: decimals,
        tag1: tag1.into(),
        tag2: tag2.into(),
        endpoint: "https://agent.example/mcp".into(),
        feedbackURI: "ipfs://feedback".into(),
        feedbackHash: B256::repeat_byte(0xfe),
    }
}

#[test]
fn feedback_is_indexed_from_one_per_client_and_refused_as_the_reference_refuses_it() {
    let mut chain = Chain::new();
    let (owner, operator, approved) = (wallet(0).address(), wallet(1).address(), wallet(2).address());
    let (client, other) = (wallet(3).address(), wallet(4).address());
    chain.send(owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap();
    chain
        .send(
            owner,
            IDENTITY_REGISTRY,
            I::setApprovalForAllCall {
                operator,
                approved: true,
            },
        )
        .unwrap();
    chain
        .send(
            owner,
            IDENTITY_REGISTRY,
            I::approveCall {
                to: approved,
                tokenId: U256::ZERO,
            },
        )
        .unwrap();
    for who in [owner, operator, approved] {
        assert_require(
            chain.send(who, REPUTATION_REGISTRY, feedback(0, 80, 0, "", "")),
            "Self-feedback not allowed",
        );
    }
    assert_require(
        chain.send(client, REPUTATION_REGISTRY, feedback(0, 80, 19, "", "")),
        "too many decimals",
    );
    let bound = 10i128.pow(38);
    assert_require(
        chain.send(client, REPUTATION_REGISTRY, feedback(0, bound + 1, 0, "", "")),
        "value too large",
    );
    assert_require(
        chain.send(client, REPUTATION_REGISTRY, feedback(0, -bound - 1, 0, "", "")),
        "value too large",
    );
    // The unknown agent's revert comes from the identity registry, unchanged.
    assert_eq!(
        chain
            .send(client, REPUTATION_REGISTRY, feedback(5, 1, 0, "", ""))
            .err()
            .expect("a revert")
            .data,
        nonexistent_data(5)
    );

    let (_, logs) = chain
        .send(client, REPUTATION_REGISTRY, feedback(0, -bound, 0, "quality", "speed"))
        .unwrap();
    let new_feedback = "NewFeedback(uint256,address,uint64,int128,uint8,string,string,string,string,string,bytes32)";
    assert_eq!(
        topic(new_feedback),
        "0x6a4a61743519c9d648a14e6493f47dbe3ff1aa29e7785c96c8326a205e58febc"
            .parse::<B256>()
            .unwrap()
    );
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].address, REPUTATION_REGISTRY);
    assert_eq!(
        logs[0].data.topics(),
        &[topic(new_feedback), id_topic(0), word(client), keccak256("quality")]
    );
    assert_eq!(
        logs[0].data.data,
        (
            1u64,
            // An int128 is encoded as its sign-extended 32-byte word, as an int256 is.
            alloy_primitives::I256::try_from(-bound).unwrap(),
            U256::ZERO, // valueDecimals: a uint8 in a full word
            "quality".to_owned(),
            "speed".to_owned(),
            "https://agent.example/mcp".to_owned(),
            "ipfs://feedback".to_owned(),
            B256::repeat_byte(0xfe)
        )
            .abi_encode_params()
    );
    chain
        .send(client, REPUTATION_REGISTRY, feedback(0, 95, 1, "quality", ""))
        .unwrap();
    chain
        .send(other, REPUTATION_REGISTRY, feedback(0, 7, 0, "", ""))
        .unwrap();
    let last = |c: &mut Chain, who| {
        c.view(
            REPUTATION_REGISTRY,
            R::getLastIndexCall {
                agentId: U256::ZERO,
                clientAddress: who,
            },
        )
        .unwrap()
    };
    assert_eq!(
        (
            last(&mut chain, client),
            last(&mut chain, other),
            last(&mut chain, owner)
        ),
        (2, 1, 0)
    );
    assert_eq!(
        chain
            .view(REPUTATION_REGISTRY, R::getClientsCall { agentId: U256::ZERO })
            .unwrap(),
        vec![client, other],
        "first-feedback order"
    );

    // Revocation: by the client only, once.
    let revoke = |index| R::revokeFeedbackCall {
        agentId: U256::ZERO,
        feedbackIndex: index,
    };
    assert_require(chain.send(client, REPUTATION_REGISTRY, revoke(0)), "index must be > 0");
    assert_require(
        chain.send(client, REPUTATION_REGISTRY, revoke(3)),
        "index out of bounds",
    );
    assert_require(chain.send(owner, REPUTATION_REGISTRY, revoke(1)), "index out of bounds");
    let (_, logs) = chain.send(client, REPUTATION_REGISTRY, revoke(1)).unwrap();
    assert_eq!(
        logs[0].data.topics(),
        &[
            topic("FeedbackRevoked(uint256,address,uint64)"),
            id_topic(0),
            word(client),
            id_topic(1)
        ]
    );
    assert_require(chain.send(client, REPUTATION_REGISTRY, revoke(1)), "Already revoked");
    let read = chain
        .view(
            REPUTATION_REGISTRY,
            R::readFeedbackCall {
                agentId: U256::ZERO,
                clientAddress: client,
                feedbackIndex: 1,
            },
        )
        .unwrap();
    assert_eq!((read.value, read.valueDecimals, read.isRevoked), (-bound, 0, true));
    assert_eq!((read.tag1.as_str(), read.tag2.as_str()), ("quality", "speed"));

    // readAllFeedback: every client when none is named; revoked hidden unless asked; tag filter.
    let all = |c: &mut Chain, clients: Vec<Address>, tag1: &str, include: bool| {
        c.view(
            REPUTATION_REGISTRY,
            R::readAllFeedbackCall {
                agentId: U256::ZERO,
                clientAddresses: clients,
                tag1: tag1.into(),
                tag2: String::new(),
                includeRevoked: include,
            },
        )
        .unwrap()
    };
    let shown = all(&mut chain, vec![], "", false);
    assert_eq!(
        (shown.clients, shown.feedbackIndexes, shown.values),
        (vec![client, other], vec![2, 1], vec![95, 7])
    );
    let shown = all(&mut chain, vec![], "", true);
    assert_eq!(shown.revokedStatuses, vec![true, false, false]);
    let shown = all(&mut chain, vec![client], "quality", true);
    assert_eq!(shown.feedbackIndexes, vec![1, 2]);

    // Responses: anyone, repeatedly, to revoked feedback too.
    let respond = |client, index, uri: &str| R::appendResponseCall {
        agentId: U256::ZERO,
        clientAddress: client,
        feedbackIndex: index,
        responseURI: uri.into(),
        responseHash: B256::ZERO,
    };
    assert_require(
        chain.send(owner, REPUTATION_REGISTRY, respond(client, 0, "r")),
        "index must be > 0",
    );
    assert_require(
        chain.send(owner, REPUTATION_REGISTRY, respond(client, 1, "")),
        "Empty URI",
    );
    assert_require(
        chain.send(owner, REPUTATION_REGISTRY, respond(client, 3, "r")),
        "index out of bounds",
    );
    let (_, logs) = chain.send(owner, REPUTATION_REGISTRY, respond(client, 1, "r")).unwrap();
    assert_eq!(
        logs[0].data.topics(),
        &[
            topic("ResponseAppended(uint256,address,uint64,address,string,bytes32)"),
            id_topic(0),
            word(client),
            word(owner)
        ],
        "feedbackIndex is not indexed"
    );
    chain
        .send(owner, REPUTATION_REGISTRY, respond(client, 1, "again"))
        .unwrap();
    chain.send(other, REPUTATION_REGISTRY, respond(client, 2, "r")).unwrap();
    chain.send(client, REPUTATION_REGISTRY, respond(other, 1, "r")).unwrap();
    let count = |c: &mut Chain, client, index, responders: Vec<Address>| {
        c.view(
            REPUTATION_REGISTRY,
            R::getResponseCountCall {
                agentId: U256::ZERO,
                clientAddress: client,
                feedbackIndex: index,
                responders,
            },
        )
        .unwrap()
    };
    assert_eq!(count(&mut chain, client, 1, vec![]), 2);
    assert_eq!(
        count(&mut chain, client, 0, vec![]),
        3,
        "index 0: every feedback of the client"
    );
    assert_eq!(
        count(&mut chain, Address::ZERO, 9, vec![]),
        4,
        "client zero: everything, index ignored"
    );
    assert_eq!(
        count(&mut chain, client, 0, vec![owner, owner]),
        4,
        "a repeated responder counts again"
    );
    assert_eq!(count(&mut chain, client, 9, vec![]), 0, "no bounds check");
}

/// `getSummary` over the feedback each of `clients` gives agent 0, after a client's feedback
/// `revoked` (by index) is revoked.
fn summary_of(feedbacks: &[(i128, u8)]) -> R::getSummaryReturn {
    let mut chain = Chain::new();
    chain
        .send(wallet(0).address(), IDENTITY_REGISTRY, I::register_0Call {})
        .unwrap();
    let mut clients = Vec::new();
    for (i, &(value, decimals)) in feedbacks.iter().enumerate() {
        let client = wallet(10 + i as u64).address();
        chain
            .send(client, REPUTATION_REGISTRY, feedback(0, value, decimals, "", ""))
            .unwrap();
        clients.push(client);
    }
    chain
        .view(
            REPUTATION_REGISTRY,
            R::getSummaryCall {
                agentId: U256::ZERO,
                clientAddresses: clients,
                tag1: String::new(),
                tag2: String::new(),
            },
        )
        .unwrap()
}

#[test]
fn get_summary_averages_at_18_decimals_reports_at_the_most_common_and_truncates_as_solidity() {
    let s = |v: &[(i128, u8)]| {
        let r = summary_of(v);
        (r.count, r.summaryValue, r.summaryValueDecimals)
    };
    assert_eq!(s(&[(80, 0), (90, 0), (100, 0)]), (3, 90, 0), "the reference's test");
    assert_eq!(
        s(&[(9977, 2), (80, 0)]),
        (2, 89, 0),
        "a tie of decimals goes to the fewest"
    );
    assert_eq!(
        s(&[(9977, 2), (9950, 2), (80, 0)]),
        (3, 9309, 2),
        "the mode: 2 decimals; (99.77 + 99.50 + 80) / 3 = 93.09"
    );
    assert_eq!(s(&[(-5, 0), (2, 0)]), (2, -1, 0), "toward zero, not down");
    // One 1e38 at 0 decimals and two at 18: the mean at 18 decimals does not fit 128 bits, and
    // the reference's unchecked cast keeps the low 128 (computed apart: Python's integers).
    assert_eq!(
        s(&[(10i128.pow(38), 0), (1, 18), (1, 18)]),
        (3, -886_533_759_346_574_857_640_019_685_980_940_970, 18)
    );

    // A client list is required; repeats count twice; revoked and mismatched tags are out.
    let mut chain = Chain::new();
    chain
        .send(wallet(0).address(), IDENTITY_REGISTRY, I::register_0Call {})
        .unwrap();
    let (a, b) = (wallet(1).address(), wallet(2).address());
    chain.send(a, REPUTATION_REGISTRY, feedback(0, 10, 0, "x", "")).unwrap();
    chain
        .send(a, REPUTATION_REGISTRY, feedback(0, 1000, 0, "y", ""))
        .unwrap();
    chain.send(b, REPUTATION_REGISTRY, feedback(0, 40, 0, "x", "")).unwrap();
    chain
        .send(
            b,
            REPUTATION_REGISTRY,
            R::revokeFeedbackCall {
                agentId: U256::ZERO,
                feedbackIndex: 1,
            },
        )
        .unwrap();
    let summary = |c: &mut Chain, clients: Vec<Address>, tag1: &str| {
        c.view(
            REPUTATION_REGISTRY,
            R::getSummaryCall {
                agentId: U256::ZERO,
                clientAddresses: clients,
                tag1: tag1.into(),
                tag2: String::new(),
            },
        )
    };
    assert_require(summary(&mut chain, vec![], ""), "clientAddresses required");
    let r = summary(&mut chain, vec![wallet(9).address()], "").unwrap();
    assert_eq!(
        (r.count, r.summaryValue, r.summaryValueDecimals),
        (0, 0, 0),
        "nothing matched"
    );
    let r = summary(&mut chain, vec![a, b], "x").unwrap();
    assert_eq!(
        (r.count, r.summaryValue),
        (1, 10),
        "b's is revoked, a's second is tagged y"
    );
    let r = summary(&mut chain, vec![a, a], "").unwrap();
    assert_eq!((r.count, r.summaryValue), (4, 505));
}

#[test]
fn validation_requests_are_unique_answered_only_by_their_validator_and_summarized() {
    let mut chain = Chain::new();
    let (owner, validator, stranger) = (wallet(0).address(), wallet(1).address(), wallet(2).address());
    chain.send(owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap();
    let request = |validator, agent: u64, hash: u8| V::validationRequestCall {
        validatorAddress: validator,
        agentId: U256::from(agent),
        requestURI: "ipfs://request".into(),
        requestHash: B256::repeat_byte(hash),
    };
    assert_require(
        chain.send(owner, VALIDATION_REGISTRY, request(Address::ZERO, 0, 1)),
        "bad validator",
    );
    assert_require(
        chain.send(stranger, VALIDATION_REGISTRY, request(validator, 0, 1)),
        "Not authorized",
    );
    assert_eq!(
        chain
            .send(owner, VALIDATION_REGISTRY, request(validator, 4, 1))
            .err()
            .expect("a revert")
            .data,
        nonexistent_data(4)
    );
    let (_, logs) = chain
        .send(owner, VALIDATION_REGISTRY, request(validator, 0, 1))
        .unwrap();
    assert_eq!(
        logs[0].data.topics(),
        &[
            "0x530436c3634a98e1e626b0898be2f1e9980cc1bd2a78c07a0aba52d0a48a5059"
                .parse()
                .unwrap(),
            word(validator),
            id_topic(0),
            B256::repeat_byte(1)
        ]
    );
    assert_eq!(
        topic("ValidationRequest(address,uint256,string,bytes32)"),
        logs[0].data.topics()[0]
    );
    assert_require(
        chain.send(owner, VALIDATION_REGISTRY, request(stranger, 0, 1)),
        "exists",
    );
    chain.send(owner, VALIDATION_REGISTRY, request(stranger, 0, 2)).unwrap();

    let pending = chain
        .view(
            VALIDATION_REGISTRY,
            V::getValidationStatusCall {
                requestHash: B256::repeat_byte(1),
            },
        )
        .unwrap();
    assert_eq!(
        (pending.validatorAddress, pending.response, pending.lastUpdate),
        (validator, 0, U256::from(NOW))
    );
    assert_require(
        chain.view(
            VALIDATION_REGISTRY,
            V::getValidationStatusCall {
                requestHash: B256::repeat_byte(9),
            },
        ),
        "unknown",
    );
    let respond = |hash: u8, response: u8, tag: &str| V::validationResponseCall {
        requestHash: B256::repeat_byte(hash),
        response,
        responseURI: "ipfs://response".into(),
        responseHash: B256::repeat_byte(0xaa),
        tag: tag.into(),
    };
    assert_require(
        chain.send(validator, VALIDATION_REGISTRY, respond(9, 50, "")),
        "unknown",
    );
    assert_require(
        chain.send(stranger, VALIDATION_REGISTRY, respond(1, 50, "")),
        "not validator",
    );
    assert_require(
        chain.send(validator, VALIDATION_REGISTRY, respond(1, 101, "")),
        "resp>100",
    );
    chain
        .send(validator, VALIDATION_REGISTRY, respond(1, 40, "soft"))
        .unwrap();
    chain.now += 10;
    let (_, logs) = chain
        .send(validator, VALIDATION_REGISTRY, respond(1, 91, "hard"))
        .unwrap();
    assert_eq!(
        logs[0].data.topics(),
        &[
            topic("ValidationResponse(address,uint256,bytes32,uint8,string,bytes32,string)"),
            word(validator),
            id_topic(0),
            B256::repeat_byte(1)
        ]
    );
    let status = chain
        .view(
            VALIDATION_REGISTRY,
            V::getValidationStatusCall {
                requestHash: B256::repeat_byte(1),
            },
        )
        .unwrap();
    assert_eq!(
        (status.response, status.tag.as_str(), status.lastUpdate),
        (91, "hard", U256::from(NOW + 10))
    );
    chain
        .send(stranger, VALIDATION_REGISTRY, respond(2, 100, "soft"))
        .unwrap();
    let summary = |c: &mut Chain, validators: Vec<Address>, tag: &str| {
        let r = c
            .view(
                VALIDATION_REGISTRY,
                V::getSummaryCall {
                    agentId: U256::ZERO,
                    validatorAddresses: validators,
                    tag: tag.into(),
                },
            )
            .unwrap();
        (r.count, r.avgResponse)
    };
    assert_eq!(summary(&mut chain, vec![], ""), (2, 95), "floor of 191 / 2");
    assert_eq!(
        summary(&mut chain, vec![validator, validator], ""),
        (1, 91),
        "membership, not repeats"
    );
    assert_eq!(summary(&mut chain, vec![], "soft"), (1, 100));
    assert_eq!(
        chain
            .view(VALIDATION_REGISTRY, V::getAgentValidationsCall { agentId: U256::ZERO })
            .unwrap(),
        vec![B256::repeat_byte(1), B256::repeat_byte(2)]
    );
    assert_eq!(
        chain
            .view(
                VALIDATION_REGISTRY,
                V::getValidatorRequestsCall {
                    validatorAddress: stranger
                }
            )
            .unwrap(),
        vec![B256::repeat_byte(2)]
    );
    assert_eq!(
        chain.view(VALIDATION_REGISTRY, V::getIdentityRegistryCall {}).unwrap(),
        IDENTITY_REGISTRY
    );
}

#[test]
fn calls_the_registries_cannot_dispatch_revert_with_a_reason_naming_why() {
    let mut chain = Chain::new();
    let alice = wallet(0).address();
    let call = |c: &mut Chain, to: Address, input: &[u8], value: u64| {
        c.registries
            .call(alice, to, input, U256::from(value), NOW, Commit::IfSucceeded)
            .err()
            .expect("a revert")
    };
    let stranger = address!("000000000000000000000000000000000000dEaD");
    let revert = call(&mut chain, stranger, &I::register_0Call {}.abi_encode(), 0);
    assert!(
        revert
            .reason
            .contains("no contract at 0x000000000000000000000000000000000000dEaD"),
        "{}",
        revert.reason
    );
    let revert = call(&mut chain, IDENTITY_REGISTRY, &[0xde, 0xad, 0xbe, 0xef], 0);
    assert!(
        revert.reason.contains("no function with selector 0xdeadbeef"),
        "{}",
        revert.reason
    );
    assert!(revert.data.is_empty());
    let revert = call(&mut chain, REPUTATION_REGISTRY, &[0x01], 0);
    assert!(revert.reason.contains("calldata of 1 bytes"), "{}", revert.reason);
    let mut truncated = I::register_1Call { agentURI: "u".into() }.abi_encode();
    truncated.truncate(20);
    let revert = call(&mut chain, IDENTITY_REGISTRY, &truncated, 0);
    assert!(revert.reason.contains("do not decode"), "{}", revert.reason);
    let revert = call(&mut chain, IDENTITY_REGISTRY, &I::register_0Call {}.abi_encode(), 1);
    assert!(revert.reason.contains("non-payable"), "{}", revert.reason);
    assert_eq!(chain.registries, Registries::new(CHAIN), "nothing of it applied");
}

proptest::proptest! {
    /// Whatever mix of calls (many of them refused), a refused call leaves the registries
    /// exactly as they were (checked in `send`), and ids are assigned once each, from 0.
    #[test]
    fn refused_calls_leave_no_trace_and_ids_are_never_assigned_twice(
        steps in proptest::collection::vec((0u8..8, 0u64..4, 0u64..3, 0i128..200), 1..40)
    ) {
        let mut chain = Chain::new();
        let mut next = 0u64;
        for (kind, who, agent, value) in steps {
            let from = wallet(who).address();
            let agent_id = U256::from(agent);
            let outcome = match kind {
                0 => chain.send(from, IDENTITY_REGISTRY, I::register_0Call {}).map(|(id, _)| {
                    assert_eq!(id, U256::from(next));
                    next += 1;
                }),
                1 => chain
                    .send(from, IDENTITY_REGISTRY, I::register_2Call {
                        agentURI: "u".into(),
                        metadata: vec![
                            MetadataEntry { metadataKey: "a".into(), metadataValue: Bytes::from_static(b"1") },
                            MetadataEntry {
                                metadataKey: if value % 2 == 0 { "agentWallet".into() } else { "b".into() },
                                metadataValue: Bytes::from_static(b"2"),
                            },
                        ],
                    })
                    .map(|(id, _)| {
                        assert_eq!(id, U256::from(next));
                        next += 1;
                    }),
                2 => chain.send(from, REPUTATION_REGISTRY, feedback(agent, value - 100, (value % 20) as u8, "t", "")).map(drop),
                3 => chain.send(from, REPUTATION_REGISTRY, R::revokeFeedbackCall { agentId: agent_id, feedbackIndex: (value % 3) as u64 }).map(drop),
                4 => chain.send(from, IDENTITY_REGISTRY, I::transferFromCall { from, to: wallet((who + 1) % 4).address(), tokenId: agent_id }).map(drop),
                5 => chain.send(from, VALIDATION_REGISTRY, V::validationRequestCall {
                    validatorAddress: wallet(value as u64 % 4).address(),
                    agentId: agent_id,
                    requestURI: String::new(),
                    requestHash: B256::repeat_byte(value as u8 % 5),
                }).map(drop),
                6 => chain.send(from, VALIDATION_REGISTRY, V::validationResponseCall {
                    requestHash: B256::repeat_byte(value as u8 % 5),
                    response: (value % 120) as u8,
                    responseURI: String::new(),
                    responseHash: B256::ZERO,
                    tag: String::new(),
                }).map(drop),
                _ => chain.send(from, IDENTITY_REGISTRY, I::setMetadataCall {
                    agentId: agent_id,
                    metadataKey: if value % 3 == 0 { "agentWallet".into() } else { "k".into() },
                    metadataValue: Bytes::from(vec![value as u8]),
                }).map(drop),
            };
            let _ = outcome;
        }
    }
}

#[test]
fn calldata_is_validated_as_solidity_validates_it_and_signatures_as_openzeppelin_recovers_them() {
    let mut chain = Chain::new();
    let (alice, bob) = (wallet(0), wallet(1));
    let (agent, _) = chain
        .send(alice.address(), IDENTITY_REGISTRY, I::register_0Call {})
        .unwrap();
    chain
        .send(bob.address(), REPUTATION_REGISTRY, feedback(0, 1, 0, "", ""))
        .unwrap();
    let raw = |c: &mut Chain, from: Address, to: Address, input: Vec<u8>| {
        c.registries
            .call(from, to, &input, U256::ZERO, NOW, Commit::IfSucceeded)
    };
    // revokeFeedback(0, 2^64 + 1): a uint64 with higher bits set reverts, not index 1.
    let mut input = R::revokeFeedbackCall {
        agentId: agent,
        feedbackIndex: 1,
    }
    .abi_encode();
    input[4 + 32 + 23] = 1;
    let before = chain.registries.clone();
    let revert = raw(&mut chain, bob.address(), REPUTATION_REGISTRY, input)
        .err()
        .expect("a revert");
    assert!(
        revert.data.is_empty() && revert.reason.contains("beyond its type"),
        "{}",
        revert.reason
    );
    assert_eq!(chain.registries, before);
    // setApprovalForAll(op, 2): a bool is 0 or 1.
    let mut input = I::setApprovalForAllCall {
        operator: bob.address(),
        approved: true,
    }
    .abi_encode();
    input[4 + 63] = 2;
    assert!(raw(&mut chain, alice.address(), IDENTITY_REGISTRY, input).is_err());
    // A string that is not UTF-8 is refused by name, not altered.
    let mut input = I::register_1Call { agentURI: "ab".into() }.abi_encode();
    input[4 + 64] = 0xff;
    let revert = raw(&mut chain, alice.address(), IDENTITY_REGISTRY, input)
        .err()
        .expect("a revert");
    assert!(revert.reason.contains("not UTF-8"), "{}", revert.reason);
    // Trailing bytes after the arguments are taken, as Solidity takes them (calldata suffixes).
    let mut input = I::register_0Call {}.abi_encode();
    input.extend_from_slice(b"builder code suffix");
    assert!(raw(&mut chain, alice.address(), IDENTITY_REGISTRY, input).is_ok());

    // setAgentWallet: a high s (the same signature's twin) and other lengths are refused.
    let new_wallet = wallet(5);
    let good = wallet_signature(&new_wallet, agent, alice.address(), NOW + 60);
    let set = |signature: Vec<u8>| I::setAgentWalletCall {
        agentId: agent,
        newWallet: new_wallet.address(),
        deadline: U256::from(NOW + 60),
        signature: signature.into(),
    };
    let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
    let s_low = U256::from_be_slice(&good[32..64]);
    let mut twin = good.to_vec();
    twin[32..64].copy_from_slice(&(n - s_low).to_be_bytes::<32>());
    twin[64] = if good[64] == 27 { 28 } else { 27 };
    assert_require(
        chain.send(alice.address(), IDENTITY_REGISTRY, set(twin)),
        "invalid wallet sig",
    );
    assert_require(
        chain.send(alice.address(), IDENTITY_REGISTRY, set(good[..64].to_vec())),
        "invalid wallet sig",
    );
    let mut longer = good.to_vec();
    longer.push(0);
    assert_require(
        chain.send(alice.address(), IDENTITY_REGISTRY, set(longer)),
        "invalid wallet sig",
    );
    chain
        .send(alice.address(), IDENTITY_REGISTRY, set(good.to_vec()))
        .unwrap();

    // ERC-5267's domain, which wallets read to sign; and no owner can upgrade.
    let domain = chain.view(IDENTITY_REGISTRY, I::eip712DomainCall {}).unwrap();
    assert_eq!(domain.fields.0, [0x0f]);
    assert_eq!(
        (domain.name.as_str(), domain.version.as_str()),
        ("ERC8004IdentityRegistry", "1")
    );
    assert_eq!(
        (domain.chainId, domain.verifyingContract),
        (U256::from(CHAIN), IDENTITY_REGISTRY)
    );
    for to in [IDENTITY_REGISTRY, REPUTATION_REGISTRY, VALIDATION_REGISTRY] {
        let output = chain
            .registries
            .call(
                Address::ZERO,
                to,
                &I::ownerCall {}.abi_encode(),
                U256::ZERO,
                NOW,
                Commit::Never,
            )
            .unwrap()
            .output;
        assert_eq!(output, Bytes::from(Address::ZERO.abi_encode()), "{to}");
    }

    // The single-token approved address may transfer but not approve; the zero caller of an
    // eth_call is not checked at all (OpenZeppelin's _approve and _update skip it).
    let carol = wallet(2).address();
    chain
        .send(
            alice.address(),
            IDENTITY_REGISTRY,
            I::approveCall {
                to: carol,
                tokenId: agent,
            },
        )
        .unwrap();
    let refused = chain
        .send(
            carol,
            IDENTITY_REGISTRY,
            I::approveCall {
                to: bob.address(),
                tokenId: agent,
            },
        )
        .err()
        .expect("a revert");
    assert_eq!(&refused.data[..4], &[0xa9, 0xfb, 0xf5, 0x1f], "ERC721InvalidApprover");
    assert!(chain
        .view(
            IDENTITY_REGISTRY,
            I::approveCall {
                to: bob.address(),
                tokenId: agent
            }
        )
        .is_ok());
}
