//! The registries read as the REST API shows them: agents a page at a time in id order, one
//! agent with what the other registries hold about it, its feedback and validations.

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use erc8004::abi::{
    IdentityRegistry as I, MetadataEntry, ReputationRegistry as R, ValidationRegistry as V, IDENTITY_REGISTRY,
    REPUTATION_REGISTRY, VALIDATION_REGISTRY,
};
use erc8004::registries::{Commit, Registries};
use erc8004::wallet::Wallet;

const NOW: u64 = 1_790_000_000;

fn send<C: SolCall>(registries: &mut Registries, from: Address, to: Address, call: C) {
    if let Err(revert) = registries.call(from, to, &call.abi_encode(), U256::ZERO, NOW, Commit::IfSucceeded) {
        panic!("{}", revert.reason);
    }
}

/// Feedback of `value` (no decimals) tagged `tag` to agent 2.
fn feedback_to_agent_2(value: i128, tag: &str) -> R::giveFeedbackCall {
    R::giveFeedbackCall {
        agentId: U256::from(2),
        value,
        valueDecimals: 0,
        tag1: tag.into(),
        tag2: String::new(),
        endpoint: String::new(),
        feedbackURI: String::new(),
        feedbackHash: B256::ZERO,
    }
}

#[test]
fn agents_are_read_a_page_at_a_time_with_their_feedback_and_validations() {
    let mut registries = Registries::new(8004);
    let (owner, client, validator) = (
        Wallet::development(42, 0).address(),
        Wallet::development(42, 1).address(),
        Wallet::development(42, 2).address(),
    );
    for i in 0..5u64 {
        // Agents 2 and 3 carry metadata: each lists its own keys only.
        let metadata = if i == 2 || i == 3 {
            vec![MetadataEntry {
                metadataKey: format!("key-of-{i}"),
                metadataValue: vec![1u8].into(),
            }]
        } else {
            Vec::new()
        };
        send(
            &mut registries,
            owner,
            IDENTITY_REGISTRY,
            I::register_2Call {
                agentURI: format!("ipfs://agent-{i}"),
                metadata,
            },
        );
    }
    for (value, tag) in [(80i128, "speed"), (-20, "accuracy")] {
        send(
            &mut registries,
            client,
            REPUTATION_REGISTRY,
            feedback_to_agent_2(value, tag),
        );
    }
    send(
        &mut registries,
        owner,
        VALIDATION_REGISTRY,
        V::validationRequestCall {
            validatorAddress: validator,
            agentId: U256::from(2),
            requestURI: "ipfs://request".into(),
            requestHash: B256::repeat_byte(7),
        },
    );

    assert_eq!(registries.agent_count(), 5);
    let agent = registries.agent(U256::from(2)).unwrap();
    assert_eq!((agent.owner, agent.uri.as_str()), (owner, "ipfs://agent-2"));
    assert_eq!((agent.clients, agent.feedback, agent.validations), (1, 2, 1));
    assert_eq!(registries.agent(U256::from(9)), None);
    assert!(
        agent.metadata_keys.contains(&"key-of-2".to_owned()),
        "{:?}",
        agent.metadata_keys
    );
    assert!(
        !agent.metadata_keys.contains(&"key-of-3".to_owned()),
        "{:?}",
        agent.metadata_keys
    );

    let first: Vec<u64> = registries
        .agents_after(None, 2)
        .iter()
        .map(|a| a.id.to::<u64>())
        .collect();
    assert_eq!(first, [0, 1]);
    let next: Vec<u64> = registries
        .agents_after(Some(U256::from(1)), 2)
        .iter()
        .map(|a| a.id.to::<u64>())
        .collect();
    assert_eq!(next, [2, 3]);
    assert_eq!(registries.agents_after(Some(U256::from(4)), 2), []);
    assert_eq!(registries.agents_after(Some(U256::MAX), 2), []);

    let feedback = registries.feedback_entries(U256::from(2));
    let seen: Vec<(u64, i128, &str)> = feedback
        .iter()
        .map(|f| (f.index, f.feedback.value, f.feedback.tag1.as_str()))
        .collect();
    assert_eq!(seen, [(1, 80, "speed"), (2, -20, "accuracy")]);
    assert!(feedback.iter().all(|f| f.client == client));
    assert!(registries.feedback_entries(U256::from(1)).is_empty());
    // A second client's feedback counts as a second client.
    send(
        &mut registries,
        validator,
        REPUTATION_REGISTRY,
        feedback_to_agent_2(1, ""),
    );
    let agent = registries.agent(U256::from(2)).unwrap();
    assert_eq!((agent.clients, agent.feedback), (2, 3));
    // Pages: feedback after a (client, index) cursor, validations from a position.
    let all = registries.feedback_entries(U256::from(2));
    let first = registries.feedback_page(U256::from(2), None, 2);
    assert_eq!(first, all[..2]);
    let rest = registries.feedback_page(U256::from(2), Some((first[1].client, first[1].index)), 10);
    assert_eq!(rest, all[2..]);
    assert_eq!(registries.validation_page(U256::from(2), 0, 5).len(), 1);
    assert!(registries.validation_page(U256::from(2), 1, 5).is_empty());
    assert!(registries.validation_page(U256::from(2), u64::MAX, 5).is_empty());
    let validations = registries.validation_entries(U256::from(2));
    assert_eq!(validations.len(), 1);
    assert_eq!(
        (validations[0].request_hash, validations[0].validation.validator),
        (B256::repeat_byte(7), validator)
    );
}
