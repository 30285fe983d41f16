//! Tests of the transactions taken.

use alloy_consensus::TxLegacy;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{address, Bytes, TxKind, U256};

use crate::tx::{SignedCall, TransactionError};
use crate::wallet::{Envelope, Wallet};

const CHAIN: u64 = 8004;

#[test]
fn every_envelope_a_wallet_signs_decodes_to_its_sender_and_call() {
    let wallet = Wallet::development(1, 0);
    let to = address!("8004A169FB4a3325136EB29fA0ceB6D2e539a432");
    for (envelope, kind) in [(Envelope::Legacy, 0), (Envelope::Eip2930, 1), (Envelope::Eip1559, 2)] {
        let raw = wallet.sign_call(envelope, CHAIN, 7, to, Bytes::from_static(b"\x12\x34\x56\x78"));
        let call = SignedCall::decode(&raw, CHAIN).unwrap();
        assert_eq!(call.sender, wallet.address(), "{envelope:?}");
        assert_eq!((call.nonce, call.to, call.kind), (7, to, kind), "{envelope:?}");
        assert_eq!(call.input.as_ref(), b"\x12\x34\x56\x78");
        assert_eq!(
            call.hash,
            alloy_primitives::keccak256(&raw),
            "the hash is of the envelope"
        );
        // Signed for this chain only.
        assert_eq!(
            SignedCall::decode(&raw, 1),
            Err(TransactionError::ChainId {
                expected: 1,
                got: CHAIN
            })
        );
    }
}

#[test]
fn what_is_not_a_call_for_this_chain_is_refused_by_name() {
    let wallet = Wallet::development(1, 0);
    let to = address!("8004A169FB4a3325136EB29fA0ceB6D2e539a432");
    // Legacy without EIP-155: replayable anywhere.
    let tx = TxLegacy {
        chain_id: None,
        nonce: 0,
        gas_price: 1,
        gas_limit: 100_000,
        to: TxKind::Call(to),
        value: U256::ZERO,
        input: Bytes::new(),
    };
    let raw = wallet.sign_envelope(tx).encoded_2718();
    assert_eq!(SignedCall::decode(&raw, CHAIN), Err(TransactionError::NoChainId));
    // A contract creation.
    let tx = TxLegacy {
        chain_id: Some(CHAIN),
        nonce: 0,
        gas_price: 1,
        gas_limit: 100_000,
        to: TxKind::Create,
        value: U256::ZERO,
        input: Bytes::new(),
    };
    let raw = wallet.sign_envelope(tx).encoded_2718();
    assert_eq!(SignedCall::decode(&raw, CHAIN), Err(TransactionError::Create));
    // Garbage, a truncation, a trailing byte, too large.
    assert!(matches!(
        SignedCall::decode(b"\x02hello", CHAIN),
        Err(TransactionError::Decode(_))
    ));
    let good = wallet.sign_call(Envelope::Eip1559, CHAIN, 0, to, Bytes::new());
    assert!(matches!(
        SignedCall::decode(&good[..good.len() - 1], CHAIN),
        Err(TransactionError::Decode(_))
    ));
    let mut longer = good.to_vec();
    longer.push(0);
    assert!(matches!(
        SignedCall::decode(&longer, CHAIN),
        Err(TransactionError::Decode(_))
    ));
    assert!(matches!(
        SignedCall::decode(&vec![0u8; 200_000], CHAIN),
        Err(TransactionError::TooLarge(200_000))
    ));
}

proptest::proptest! {
    /// Wire bytes from anyone: an edited transaction never panics, and what still decodes
    /// names a sender (another one, unless the edit missed the signed fields).
    #[test]
    fn edited_transactions_never_panic(edits in proptest::collection::vec((0usize..200, proptest::prelude::any::<u8>()), 1..4)) {
        let wallet = Wallet::development(2, 1);
        let to = address!("8004BAa17C55a88189AE136b182e5fdA19dE9b63");
        let raw = wallet.sign_call(Envelope::Eip1559, CHAIN, 3, to, Bytes::from(vec![7u8; 100]));
        let mut bytes = raw.to_vec();
        for (at, value) in edits {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        let _ = SignedCall::decode(&bytes, CHAIN);
    }
}

/// EIP-155's own example, signed by its authors' tooling: chain 1, nonce 9, 20 gwei, 21000 gas,
/// 1 ether to 0x3535…35, from the key 0x4646…46.
#[test]
fn the_eip_155_example_decodes_to_its_published_sender() {
    let raw = alloy_primitives::hex!(
        "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
    );
    let call = SignedCall::decode(&raw, 1).unwrap();
    assert_eq!(call.sender, address!("9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"));
    assert_eq!(call.nonce, 9);
    assert_eq!(call.value, U256::from(10u128.pow(18)));
    // The key 0x4646…46 is that sender.
    assert_eq!(Wallet::from_secret(&[0x46; 32]).unwrap().address(), call.sender);
}
