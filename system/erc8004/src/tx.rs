//! Signed Ethereum transactions, as `eth_sendRawTransaction` takes them: an EIP-2718 envelope
//! (legacy with EIP-155, EIP-2930 or EIP-1559), its sender recovered from the secp256k1
//! signature, its chain id checked. What a wallet or SDK signs for mainnet registries is
//! accepted unchanged, except for the chain id, which is this chain's.
//!
//! Decoding, hashing and recovery are alloy's ([`alloy_consensus::TxEnvelope`]); this module
//! only says which of them this chain takes, and why not, by name.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};

/// Largest raw transaction taken: the registries' calls carry URIs and metadata, far below it
/// (Ethereum's own mempools refuse transactions over 128 KiB).
pub const TRANSACTION_BYTES_MAX: usize = 128 * 1024;

/// A signed transaction this chain takes: a call, from a recovered sender, for this chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCall {
    /// Its hash (keccak-256 of the envelope), the id clients know it by.
    pub hash: B256,
    /// Who signed it.
    pub sender: Address,
    /// The sender's transaction count it claims: it applies only at exactly that count.
    pub nonce: u64,
    /// The contract called.
    pub to: Address,
    /// The calldata.
    pub input: Bytes,
    /// Wei sent along (the registries take none: a call with value reverts).
    pub value: U256,
    /// The gas limit signed (not metered here; kept for answers).
    pub gas_limit: u64,
    /// The envelope's type: 0 legacy, 1 EIP-2930, 2 EIP-1559.
    pub kind: u8,
    /// The envelope as signed, for answers about it.
    pub raw: Bytes,
}

/// Why bytes are not a transaction this chain takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// Larger than [`TRANSACTION_BYTES_MAX`].
    #[error("the transaction is {0} bytes, more than the {TRANSACTION_BYTES_MAX} taken")]
    TooLarge(usize),
    /// Not an envelope alloy decodes.
    #[error("the transaction does not decode: {0}")]
    Decode(String),
    /// An envelope type this chain does not take.
    #[error("transactions of type {0} are not taken here (legacy, EIP-2930 and EIP-1559 are)")]
    Type(u8),
    /// The signature does not recover a sender.
    #[error("the signature does not recover a sender: {0}")]
    Signature(String),
    /// A legacy transaction without EIP-155 replay protection.
    #[error(
        "the transaction names no chain id (a legacy transaction without EIP-155): it could be replayed on any chain"
    )]
    NoChainId,
    /// Signed for another chain.
    #[error("the transaction is for chain {got}; this chain is {expected}")]
    ChainId {
        /// This chain's id.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// A contract creation: the registries are the only contracts.
    #[error("the transaction creates a contract: this chain runs only the ERC-8004 registries")]
    Create,
}

impl SignedCall {
    /// Decodes `raw` (the bytes of `eth_sendRawTransaction`) for the chain `chain_id`.
    pub fn decode(raw: &[u8], chain_id: u64) -> Result<SignedCall, TransactionError> {
        if raw.len() > TRANSACTION_BYTES_MAX {
            return Err(TransactionError::TooLarge(raw.len()));
        }
        let envelope = TxEnvelope::decode_2718_exact(raw).map_err(|e| TransactionError::Decode(e.to_string()))?;
        let kind = match &envelope {
            TxEnvelope::Legacy(_) => 0,
            TxEnvelope::Eip2930(_) => 1,
            TxEnvelope::Eip1559(_) => 2,
            TxEnvelope::Eip4844(_) => return Err(TransactionError::Type(3)),
            TxEnvelope::Eip7702(_) => return Err(TransactionError::Type(4)),
        };
        match envelope.chain_id() {
            None => return Err(TransactionError::NoChainId),
            Some(got) if got != chain_id => {
                return Err(TransactionError::ChainId {
                    expected: chain_id,
                    got,
                })
            }
            Some(_) => {}
        }
        let TxKind::Call(to) = envelope.kind() else {
            return Err(TransactionError::Create);
        };
        let sender = envelope
            .recover_signer()
            .map_err(|e| TransactionError::Signature(e.to_string()))?;
        Ok(SignedCall {
            hash: *envelope.tx_hash(),
            sender,
            nonce: envelope.nonce(),
            to,
            input: envelope.input().clone(),
            value: envelope.value(),
            gas_limit: envelope.gas_limit(),
            kind,
            raw: Bytes::copy_from_slice(raw),
        })
    }
}
