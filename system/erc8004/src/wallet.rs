//! Keys that sign as an Ethereum wallet does: the development chain's accounts, the simulator's
//! clients (keys drawn from the seed) and the tests. Signing is k256's; envelopes and hashes are
//! alloy's.

use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxEip2930, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Address, Bytes, Signature, TxKind, B256, U256};
use k256::ecdsa::SigningKey;

/// A secp256k1 key and the address it signs for.
#[derive(Clone)]
pub struct Wallet {
    key: SigningKey,
    address: Address,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Wallet")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Which envelope a [`Wallet`] signs a call in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// Legacy, with EIP-155's chain id.
    Legacy,
    /// EIP-2930 (type 1), an empty access list.
    Eip2930,
    /// EIP-1559 (type 2).
    Eip1559,
}

/// Gas limit the wallet signs: the registries do not meter gas, and this is what
/// `eth_estimateGas` answers.
pub const GAS_LIMIT: u64 = 1_000_000;

/// Gas price the wallet signs (and `eth_gasPrice` answers): 1 gwei, never charged.
pub const GAS_PRICE: u128 = 1_000_000_000;

impl Wallet {
    /// The wallet of the 32-byte private key `secret`; `None` if it is not a valid key (zero,
    /// or not below the curve's order).
    pub fn from_secret(secret: &[u8; 32]) -> Option<Wallet> {
        let key = SigningKey::from_slice(secret).ok()?;
        let address = Address::from_public_key(key.verifying_key());
        Some(Wallet { key, address })
    }

    /// The development wallet number `index` of `seed`: keccak-256 of both, redrawn in the
    /// (vanishing) case it is not a valid key. The same seed gives the same wallets on every
    /// machine, which is what the simulator and the development chain need; never use them for
    /// value.
    pub fn development(seed: u64, index: u64) -> Wallet {
        let mut preimage = [0u8; 24];
        preimage[..8].copy_from_slice(b"erc8004 ");
        preimage[8..16].copy_from_slice(&seed.to_be_bytes());
        preimage[16..].copy_from_slice(&index.to_be_bytes());
        let mut secret = keccak256(preimage);
        loop {
            if let Some(wallet) = Wallet::from_secret(&secret.0) {
                return wallet;
            }
            secret = keccak256(secret);
        }
    }

    /// The address it signs for.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The private key, for printing to a developer (the development chain's accounts).
    pub fn secret(&self) -> B256 {
        B256::from_slice(&self.key.to_bytes())
    }

    /// Its signature over the 32-byte `hash` (a transaction's signing hash, an EIP-712 digest).
    pub fn sign_hash(&self, hash: &B256) -> Signature {
        let (signature, recovery) = self
            .key
            .sign_prehash_recoverable(hash.as_slice())
            .expect("a 32-byte prehash always signs");
        Signature::from((signature, recovery))
    }

    /// The raw signed transaction (as `eth_sendRawTransaction` takes it) calling `to` with
    /// `input` at `nonce` on chain `chain_id`.
    pub fn sign_call(&self, envelope: Envelope, chain_id: u64, nonce: u64, to: Address, input: Bytes) -> Bytes {
        let raw = match envelope {
            Envelope::Legacy => {
                let tx = TxLegacy {
                    chain_id: Some(chain_id),
                    nonce,
                    gas_price: GAS_PRICE,
                    gas_limit: GAS_LIMIT,
                    to: TxKind::Call(to),
                    value: U256::ZERO,
                    input,
                };
                self.sign_envelope(tx)
            }
            Envelope::Eip2930 => {
                let tx = TxEip2930 {
                    chain_id,
                    nonce,
                    gas_price: GAS_PRICE,
                    gas_limit: GAS_LIMIT,
                    to: TxKind::Call(to),
                    value: U256::ZERO,
                    access_list: Default::default(),
                    input,
                };
                self.sign_envelope(tx)
            }
            Envelope::Eip1559 => {
                let tx = TxEip1559 {
                    chain_id,
                    nonce,
                    gas_limit: GAS_LIMIT,
                    max_fee_per_gas: GAS_PRICE,
                    max_priority_fee_per_gas: GAS_PRICE,
                    to: TxKind::Call(to),
                    value: U256::ZERO,
                    access_list: Default::default(),
                    input,
                };
                self.sign_envelope(tx)
            }
        };
        Bytes::from(raw.encoded_2718())
    }

    /// `tx` signed by this wallet, in its EIP-2718 envelope.
    pub fn sign_envelope<T>(&self, tx: T) -> TxEnvelope
    where
        T: SignableTransaction<Signature>,
        TxEnvelope: From<Signed<T>>,
    {
        let signature = self.sign_hash(&tx.signature_hash());
        tx.into_signed(signature).into()
    }
}
