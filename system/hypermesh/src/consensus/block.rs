//! Blocks: a batch of transactions chained to its parent by digest, and the limits that bound
//! one.

use bytes::Bytes;

use super::crypto::{domain_digest, Digest, Domain};
use super::validators::ValidatorIndex;

/// Most transactions one block may carry (the protocol's `batch_size_max` is at most this).
pub const TRANSACTIONS_PER_BLOCK_MAX: usize = 4096;

/// Largest transaction, in bytes.
pub const TRANSACTION_BYTES_MAX: usize = 64 * 1024;

/// Largest block, as encoded (header, transaction count, each transaction with its 4-byte
/// length). With the largest certificates a proposal stays well within STOQ's default frame
/// (1 MiB); see [`super::wire::MESSAGE_BYTES_MAX`].
pub const BLOCK_BYTES_MAX: usize = 512 * 1024;

/// The encoded size of a block without transactions: height, view, parent, proposer,
/// timestamp, transaction count.
pub const BLOCK_HEADER_BYTES: usize = 8 + 8 + 32 + 2 + 8 + 2;

/// The digest that stands for the genesis block, the root of every chain: all zeros. The genesis
/// block is never encoded or hashed (no SHA-256 preimage of zero is known, so no real block has
/// this digest); the first block, at height 1, names it as its parent, justified by
/// [`super::QuorumCertificate::genesis`].
pub const GENESIS: Digest = [0; 32];

/// A block: the `height`-th of the chain, proposed in `view` by the validator at `proposer`,
/// extending the block whose digest is `parent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Its position in the chain: its parent's height plus one (genesis is 0, so blocks are at
    /// least 1).
    pub height: u64,
    /// The view it was proposed in.
    pub view: u64,
    /// The digest of the block it extends ([`GENESIS`] at height 1).
    pub parent: Digest,
    /// The index of the validator that proposed it, the leader of `view`.
    pub proposer: ValidatorIndex,
    /// The proposer's wall clock when it proposed, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The transactions, opaque to consensus, applied in this order.
    pub transactions: Vec<Bytes>,
}

/// Why a block breaks the limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// More than [`TRANSACTIONS_PER_BLOCK_MAX`] transactions.
    #[error("{0} transactions, at most {TRANSACTIONS_PER_BLOCK_MAX} per block")]
    TooManyTransactions(usize),
    /// A transaction above [`TRANSACTION_BYTES_MAX`].
    #[error("transaction {index} is {bytes} bytes, at most {TRANSACTION_BYTES_MAX}")]
    TransactionTooLarge {
        /// Its position in the block.
        index: usize,
        /// Its size.
        bytes: usize,
    },
    /// An encoding above [`BLOCK_BYTES_MAX`].
    #[error("the block encodes to {0} bytes, at most {BLOCK_BYTES_MAX}")]
    TooLarge(usize),
}

impl Block {
    /// The size of its encoding.
    pub fn encoded_len(&self) -> usize {
        BLOCK_HEADER_BYTES + self.transactions.iter().map(|t| 4 + t.len()).sum::<usize>()
    }

    /// Whether it is within [`TRANSACTIONS_PER_BLOCK_MAX`], [`TRANSACTION_BYTES_MAX`] and
    /// [`BLOCK_BYTES_MAX`]; a proposer checks before signing, and only such a block can be
    /// encoded or hashed.
    pub fn check_limits(&self) -> Result<(), BlockError> {
        if self.transactions.len() > TRANSACTIONS_PER_BLOCK_MAX {
            return Err(BlockError::TooManyTransactions(self.transactions.len()));
        }
        if let Some((index, t)) = self
            .transactions
            .iter()
            .enumerate()
            .find(|(_, t)| t.len() > TRANSACTION_BYTES_MAX)
        {
            return Err(BlockError::TransactionTooLarge { index, bytes: t.len() });
        }
        let bytes = self.encoded_len();
        if bytes > BLOCK_BYTES_MAX {
            return Err(BlockError::TooLarge(bytes));
        }
        Ok(())
    }

    /// Its digest: SHA-256 of the consensus domain, `block/` and its canonical encoding (the
    /// wire encoding, [`Block::encode`], which no other bytes decode to). It covers every field,
    /// so a vote for the digest is a vote for exactly this block.
    ///
    /// # Panics
    ///
    /// If the block breaks the limits ([`Block::check_limits`]): such a block cannot be encoded.
    pub fn digest(&self) -> Digest {
        domain_digest(Domain::Block, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Block {
        Block {
            height: 1,
            view: 1,
            parent: GENESIS,
            proposer: 1,
            timestamp_ms: 1_790_000_000_000,
            transactions: vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")],
        }
    }

    #[test]
    fn the_digest_covers_every_field() {
        let original = block();
        let d = original.digest();
        assert_eq!(d, block().digest(), "deterministic");
        let tampered: Vec<Block> = vec![
            Block { height: 2, ..block() },
            Block { view: 2, ..block() },
            Block {
                parent: [1; 32],
                ..block()
            },
            Block { proposer: 2, ..block() },
            Block {
                timestamp_ms: 1,
                ..block()
            },
            Block {
                transactions: vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")],
                ..block()
            },
            Block {
                transactions: vec![Bytes::from_static(b"bc"), Bytes::from_static(b"a")],
                ..block()
            },
            Block {
                transactions: vec![],
                ..block()
            },
        ];
        for t in tampered {
            assert_ne!(t.digest(), d, "{t:?}");
        }
        assert_ne!(d, GENESIS);
    }

    #[test]
    fn limits_are_named() {
        assert_eq!(block().check_limits(), Ok(()));
        assert_eq!(block().encoded_len(), BLOCK_HEADER_BYTES + 4 + 1 + 4 + 2);
        let many = Block {
            transactions: vec![Bytes::new(); TRANSACTIONS_PER_BLOCK_MAX + 1],
            ..block()
        };
        assert_eq!(
            many.check_limits(),
            Err(BlockError::TooManyTransactions(TRANSACTIONS_PER_BLOCK_MAX + 1))
        );
        let at_count_limit = Block {
            transactions: vec![Bytes::new(); TRANSACTIONS_PER_BLOCK_MAX],
            ..block()
        };
        assert_eq!(at_count_limit.check_limits(), Ok(()));
        let big = Block {
            transactions: vec![Bytes::new(), Bytes::from(vec![0; TRANSACTION_BYTES_MAX + 1])],
            ..block()
        };
        assert_eq!(
            big.check_limits(),
            Err(BlockError::TransactionTooLarge {
                index: 1,
                bytes: TRANSACTION_BYTES_MAX + 1
            })
        );
        let fits = BLOCK_BYTES_MAX - BLOCK_HEADER_BYTES - 8 * 4 - 7 * TRANSACTION_BYTES_MAX;
        let mut full = Block {
            transactions: vec![Bytes::from(vec![0; TRANSACTION_BYTES_MAX]); 7],
            ..block()
        };
        full.transactions.push(Bytes::from(vec![0; fits]));
        assert_eq!(full.encoded_len(), BLOCK_BYTES_MAX);
        assert_eq!(full.check_limits(), Ok(()));
        full.transactions.push(Bytes::new());
        assert_eq!(full.check_limits(), Err(BlockError::TooLarge(BLOCK_BYTES_MAX + 4)));
    }
}
