//! The registries as a chain on HyperMesh's replicated log: a [`StateMachine`] whose
//! transactions are signed Ethereum transactions ([`SignedCall`]), with accounts' nonces,
//! receipts, logs and blocks, so that Ethereum tooling can follow it.
//!
//! - **A transaction** is included if it decodes for this chain, its signature recovers a
//!   sender, and its nonce is the sender's count of included transactions; a used nonce, or a
//!   transaction that does not decode, is refused and leaves nothing (no receipt, no nonce
//!   used), as a node would not include it.
//! - **Held transactions.** Replicas forward a sender's transactions to different leaders, so
//!   consensus may order them otherwise than sent: one whose nonce is ahead of the sender's next
//!   (by at most [`ChainConfig::held_per_sender_max`]) is held, as a mempool holds it, and
//!   included right after the transaction that fills the gap, in the same block. Held ones are
//!   part of the replicated state, bounded in number ([`ChainConfig::held_max`]) and in age
//!   ([`ChainConfig::held_heights_max`], then dropped).
//!   An included transaction runs its call on the registries: success (status 1, its logs) or
//!   revert (status 0, no logs, the revert data kept), and either way uses its nonce.
//! - **Blocks.** Consensus commits a block at every height, most of them empty heartbeats; an
//!   Ethereum block is made only from a height that included transactions, so block numbers
//!   are dense and every one holds transactions (as chains that make blocks on demand do). A
//!   block's hash chains its parent's with its number, time, consensus height and transaction
//!   hashes: it is not an Ethereum header hash (there is no EVM state root here).
//! - **Time.** `block.timestamp` is the consensus block's proposer time in seconds, never going
//!   back (a later block with an earlier time keeps the time before).
//! - **History** is kept for [`ChainConfig::history_blocks`] blocks (receipts, transactions,
//!   logs); older ones are forgotten, as a node that expires history forgets them. The
//!   registries' state and the nonces are kept whole.
//!
//! Snapshots are the state in canonical JSON (every map in key order), so two replicas at one
//! height produce the same bytes. Queries ([`Query`]) are JSON too, the seam the JSON-RPC
//! endpoint reads through.

use std::cell::RefCell;
use std::collections::BTreeMap;

use alloy_primitives::{keccak256, Address, Bytes as EthBytes, Log, B256, U256};
use bytes::Bytes;
use hypermesh::replication::{BlockInfo, Outcome, RestoreError, StateMachine};
use serde::{Deserialize, Serialize};

use crate::registries::{CallResult, Commit, OnRevert, Registries};
use crate::tx::SignedCall;

/// The chain id of the development chain and of scenarios unless configured.
pub const CHAIN_ID_DEFAULT: u64 = 8004;

/// The chain's settings. The replicated ones (chain id, history, held transactions, what a
/// revert leaves) bound the replicated state and decide outcomes: every validator must run the
/// same, and a snapshot made with others is refused. The query limits are each replica's own, and not in snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainConfig {
    /// The chain id transactions must be signed for (EIP-155).
    pub chain_id: u64,
    /// Blocks whose receipts, transactions and logs are kept for queries.
    pub history_blocks: u64,
    /// Most logs one logs query answers (more: refused, asking for a narrower one). Local.
    #[serde(skip)]
    pub logs_per_query_max: usize,
    /// Widest block range one logs query scans. Local.
    #[serde(skip)]
    pub log_blocks_per_query_max: u64,
    /// How far ahead of its sender's next nonce a transaction may be and still be held.
    pub held_per_sender_max: u64,
    /// Transactions held at most, over all senders.
    pub held_max: usize,
    /// Heights a held transaction waits at most for its gap to fill; then it is dropped.
    pub held_heights_max: u64,
    /// What becomes of a reverted transaction's writes: undone (the default), or kept, seed
    /// 004's faulty setting, which only the simulator's `registry-tx-rollback` variant sets. A
    /// log replays to the state it was written with only under the same setting: the
    /// development chain keeps it beside its log, as it keeps its chain id, and refuses another.
    #[serde(default, skip_serializing_if = "OnRevert::is_rollback")]
    pub on_revert: OnRevert,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            chain_id: CHAIN_ID_DEFAULT,
            history_blocks: 10_000,
            logs_per_query_max: 10_000,
            log_blocks_per_query_max: 10_000,
            held_per_sender_max: 16,
            held_max: 4096,
            held_heights_max: 10_000,
            on_revert: OnRevert::Rollback,
        }
    }
}

/// An Ethereum block of this chain: the transactions one consensus height included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Its number, from 1 (0 is genesis, empty).
    pub number: u64,
    /// Its hash.
    pub hash: B256,
    /// Its parent's hash (zero for block 1's parent, genesis).
    pub parent_hash: B256,
    /// Its time, Unix seconds.
    pub timestamp: u64,
    /// The consensus height it was committed at.
    pub height: u64,
    /// Its transactions' hashes, in order.
    pub transactions: Vec<B256>,
}

/// What an included transaction did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction's hash.
    pub transaction_hash: B256,
    /// Its block's number.
    pub block_number: u64,
    /// Its block's hash.
    pub block_hash: B256,
    /// Its position in the block.
    pub transaction_index: u64,
    /// Its sender.
    pub from: Address,
    /// The contract it called.
    pub to: Address,
    /// Its nonce.
    pub nonce: u64,
    /// Whether its call succeeded.
    pub status: bool,
    /// Its logs (none if it reverted), with their address, topics and data.
    pub logs: Vec<Log>,
    /// The position of its first log in the block.
    pub first_log_index: u64,
    /// The revert data and reason, if it reverted.
    pub revert: Option<(EthBytes, String)>,
    /// The signed envelope (for `eth_getTransactionByHash`).
    pub raw: EthBytes,
}

/// The whole replicated state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    config: ChainConfig,
    /// In a cell so that a query's `eth_call` runs on the state itself and rolls back, rather
    /// than on a copy of it (a query has only shared access).
    registries: RefCell<Registries>,
    /// Included transactions per sender: the next nonce.
    nonces: BTreeMap<Address, u64>,
    /// The last consensus height applied.
    height: u64,
    /// `block.timestamp` of the last height applied (never decreasing).
    time: u64,
    /// The last block made (0: none yet).
    head: u64,
    /// The last block's hash (zero before the first).
    head_hash: B256,
    /// The blocks kept, by number.
    blocks: BTreeMap<u64, Block>,
    /// The receipts of the blocks kept, by transaction hash.
    receipts: BTreeMap<B256, Receipt>,
    /// Transactions whose nonce is ahead of their sender's next, by (sender, nonce).
    #[serde(with = "crate::table::pairs")]
    held: BTreeMap<(Address, u64), Held>,
}

/// A transaction held until its sender's nonce reaches it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    /// The signed envelope.
    raw: EthBytes,
    /// The height it was held at.
    since: u64,
}

/// The registries as a replicated chain ([`StateMachine`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    state: State,
}

/// A read of the chain's state (`StateMachine::query`), JSON: `{"query": "<name>", …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "snake_case", deny_unknown_fields)]
pub enum Query {
    /// The head: last block number, consensus height and time.
    Head,
    /// A digest of the replicated state that matters to users (registries, nonces, held
    /// transactions, the head and its hash), leaving out the consensus height and time, which
    /// heartbeat heights move: two replicas at one head answer the same digest.
    Digest,
    /// The next nonce of `address`.
    Nonce {
        /// The account.
        address: Address,
    },
    /// A call run against the current state and undone (`eth_call`).
    Call {
        /// The caller (`msg.sender`); zero if absent.
        #[serde(default)]
        from: Address,
        /// The contract.
        to: Address,
        /// The calldata.
        #[serde(default)]
        data: EthBytes,
    },
    /// The receipt of a transaction.
    Receipt {
        /// Its hash.
        hash: B256,
    },
    /// A block by number.
    Block {
        /// Its number.
        number: u64,
    },
    /// Logs of blocks `from..=to` matching `addresses` (any, if empty) and `topics` (position
    /// by position: empty matches any, else one of the listed).
    Logs {
        /// First block.
        from: u64,
        /// Last block.
        to: u64,
        /// Emitting contracts.
        #[serde(default)]
        addresses: Vec<Address>,
        /// Topic filters by position.
        #[serde(default)]
        topics: Vec<Vec<B256>>,
    },
}

/// A log as a logs query answers it: where it is, and what it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundLog {
    /// The log.
    pub log: Log,
    /// Its block's number.
    pub block_number: u64,
    /// Its block's hash.
    pub block_hash: B256,
    /// Its transaction's hash.
    pub transaction_hash: B256,
    /// Its transaction's position in the block.
    pub transaction_index: u64,
    /// Its position in the block.
    pub log_index: u64,
}

impl Chain {
    /// An empty chain with `config`.
    pub fn new(config: ChainConfig) -> Chain {
        Chain {
            state: State {
                registries: RefCell::new(Registries::new(config.chain_id)),
                config,
                nonces: BTreeMap::new(),
                height: 0,
                time: 0,
                head: 0,
                head_hash: B256::ZERO,
                blocks: BTreeMap::new(),
                receipts: BTreeMap::new(),
                held: BTreeMap::new(),
            },
        }
    }

    /// The chain's settings.
    pub fn config(&self) -> &ChainConfig {
        &self.state.config
    }

    /// The registries' state.
    pub fn registries(&self) -> std::cell::Ref<'_, Registries> {
        self.state.registries.borrow()
    }

    /// The next nonce of `address`.
    pub fn nonce(&self, address: Address) -> u64 {
        self.state.nonces.get(&address).copied().unwrap_or(0)
    }

    /// The receipt of the transaction `hash`, if included and still kept.
    pub fn receipt(&self, hash: &B256) -> Option<&Receipt> {
        self.state.receipts.get(hash)
    }

    /// Block `number`, if kept.
    pub fn block(&self, number: u64) -> Option<&Block> {
        self.state.blocks.get(&number)
    }

    /// The last block's number (0 before any).
    pub fn head(&self) -> u64 {
        self.state.head
    }

    /// `block.timestamp` now: the last applied height's time, Unix seconds.
    pub fn time(&self) -> u64 {
        self.state.time
    }

    /// The digest [`Query::Digest`] answers.
    pub fn digest(&self) -> B256 {
        let s = &self.state;
        #[derive(Serialize)]
        struct Users<'a> {
            registries: &'a RefCell<Registries>,
            nonces: &'a BTreeMap<Address, u64>,
            #[serde(with = "crate::table::pairs")]
            held: &'a BTreeMap<(Address, u64), Held>,
            head: u64,
            head_hash: B256,
        }
        let users = Users {
            registries: &s.registries,
            nonces: &s.nonces,
            held: &s.held,
            head: s.head,
            head_hash: s.head_hash,
        };
        keccak256(serde_json::to_vec(&users).expect("the state serializes"))
    }

    /// The oldest block kept (history before it was forgotten); the head if none is kept.
    pub fn oldest_kept(&self) -> u64 {
        self.state.blocks.keys().next().copied().unwrap_or(self.state.head)
    }

    /// The signed transaction of `sender` with `nonce` held for an earlier nonce, if one is and
    /// the next block keeps it (one held its longest is dropped then, and is not counted here).
    pub fn held(&self, sender: Address, nonce: u64) -> Option<&[u8]> {
        let oldest = (self.state.height + 1).saturating_sub(self.state.config.held_heights_max);
        self.state
            .held
            .get(&(sender, nonce))
            .filter(|h| h.since >= oldest)
            .map(|h| h.raw.as_ref())
    }

    /// The kept block whose hash is `hash`.
    pub fn block_by_hash(&self, hash: &B256) -> Option<&Block> {
        self.state.blocks.values().find(|b| b.hash == *hash)
    }

    /// Runs a call against the current state (`eth_call`): whatever it does is rolled back
    /// before this returns.
    pub fn call(&self, from: Address, to: Address, data: &[u8], value: U256) -> CallResult {
        let now = self.state.time;
        self.state
            .registries
            .borrow_mut()
            .call(from, to, data, value, now, Commit::Never)
    }

    /// Answers `query` as JSON; an error names what is wrong with it.
    pub fn answer(&self, query: &Query) -> Result<serde_json::Value, String> {
        let s = &self.state;
        Ok(match query {
            Query::Head => serde_json::json!({ "number": s.head, "height": s.height, "timestamp": s.time }),
            Query::Digest => serde_json::json!({ "head": s.head, "digest": self.digest() }),
            Query::Nonce { address } => serde_json::json!(self.nonce(*address)),
            Query::Call { from, to, data } => {
                // Not committed: whatever the call does is rolled back before the answer.
                let result = s
                    .registries
                    .borrow_mut()
                    .call(*from, *to, data, U256::ZERO, s.time, Commit::Never);
                match result {
                    Ok(done) => serde_json::json!({ "output": done.output }),
                    Err(revert) => serde_json::json!({ "revert": revert.data, "reason": revert.reason }),
                }
            }
            Query::Receipt { hash } => serde_json::to_value(s.receipts.get(hash)).map_err(|e| e.to_string())?,
            Query::Block { number } => serde_json::to_value(s.blocks.get(number)).map_err(|e| e.to_string())?,
            Query::Logs {
                from,
                to,
                addresses,
                topics,
            } => serde_json::to_value(self.logs(*from, *to, addresses, topics)?).map_err(|e| e.to_string())?,
        })
    }

    /// The logs of blocks `from..=to` that match, bounded by the configured limits.
    pub fn logs(
        &self,
        from: u64,
        to: u64,
        addresses: &[Address],
        topics: &[Vec<B256>],
    ) -> Result<Vec<FoundLog>, String> {
        if topics.len() > 4 {
            return Err(format!("{} topic positions; a log has at most 4", topics.len()));
        }
        let matches = |log: &Log| {
            (addresses.is_empty() || addresses.contains(&log.address))
                && topics.iter().enumerate().all(|(i, wanted)| {
                    wanted.is_empty() || log.data.topics().get(i).is_some_and(|t| wanted.contains(t))
                })
        };
        self.logs_where(from, to, &matches)
    }

    /// The logs of blocks `from..=to` for which `matches` holds, bounded by the configured
    /// limits (a range too wide or too many logs is refused, saying which limit).
    pub fn logs_where(&self, from: u64, to: u64, matches: &dyn Fn(&Log) -> bool) -> Result<Vec<FoundLog>, String> {
        let config = &self.state.config;
        if from > to {
            return Err(format!("the range starts at block {from}, after its end {to}"));
        }
        if to - from >= config.log_blocks_per_query_max {
            return Err(format!(
                "the range {from}..={to} spans {} blocks; at most {} per query",
                (to - from).saturating_add(1),
                config.log_blocks_per_query_max
            ));
        }
        let mut found = Vec::new();
        for block in self.state.blocks.range(from..=to).map(|(_, b)| b) {
            for hash in &block.transactions {
                let receipt = &self.state.receipts[hash];
                for (i, log) in receipt.logs.iter().enumerate() {
                    if !matches(log) {
                        continue;
                    }
                    if found.len() == config.logs_per_query_max {
                        return Err(format!(
                            "more than {} logs match in blocks {from}..={to}: ask for a narrower range",
                            config.logs_per_query_max
                        ));
                    }
                    found.push(FoundLog {
                        log: log.clone(),
                        block_number: block.number,
                        block_hash: block.hash,
                        transaction_hash: *hash,
                        transaction_index: receipt.transaction_index,
                        log_index: receipt.first_log_index + i as u64,
                    });
                }
            }
        }
        Ok(found)
    }

    /// Takes the transaction `raw` into the block under way (whose receipts so far are
    /// `receipts`): includes it if its nonce is next, and then the sender's held ones that
    /// follow; holds it if its nonce is ahead; refuses it otherwise.
    fn take(&mut self, raw: &[u8], receipts: &mut Vec<Receipt>) -> Outcome {
        // Decoded again even if checked: the sender is needed, and recovery is what the check
        // costs. (Caching it by hash is left for when it shows in profiles.)
        let call = match SignedCall::decode(raw, self.state.config.chain_id) {
            Ok(call) => call,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        let (sender, nonce) = (call.sender, call.nonce);
        let next = self.nonce(sender);
        if nonce < next {
            return Outcome::Refused(format!("nonce {nonce} of {sender} is used: its next is {next}"));
        }
        if nonce > next {
            return self.hold(call, next);
        }
        let (receipt, output) = self.include_next(call, receipts);
        let answer = serde_json::json!({
            "transaction_hash": receipt.transaction_hash,
            "status": receipt.status,
            "block_number": receipt.block_number,
            "output": output,
            "revert_reason": receipt.revert.as_ref().map(|(_, why)| why),
        });
        // The sender's held transactions that now follow, in nonce order.
        while let Some(held) = self.state.held.remove(&(sender, self.nonce(sender))) {
            let call = SignedCall::decode(&held.raw, self.state.config.chain_id).expect("a held transaction decoded");
            self.include_next(call, receipts);
        }
        Outcome::Applied(Bytes::from(answer.to_string()))
    }

    /// Holds `call`, whose nonce is ahead of its sender's `next`, if the bounds allow.
    fn hold(&mut self, call: SignedCall, next: u64) -> Outcome {
        let (sender, nonce) = (call.sender, call.nonce);
        let config = &self.state.config;
        if nonce - next > config.held_per_sender_max {
            return Outcome::Refused(format!(
                "nonce {nonce} of {sender} is {} ahead of its next, {next}: at most {} are held",
                nonce - next,
                config.held_per_sender_max
            ));
        }
        if let Some(held) = self.state.held.get(&(sender, nonce)) {
            return Outcome::Refused(if held.raw == call.raw {
                format!("transaction {} is held already", call.hash)
            } else {
                format!("another transaction with nonce {nonce} of {sender} is held")
            });
        }
        if self.state.held.len() >= config.held_max {
            return Outcome::Refused(format!(
                "{} transactions are held, the most kept: send nonce {next} of {sender} first",
                config.held_max
            ));
        }
        let answer = serde_json::json!({ "transaction_hash": call.hash, "held": true, "next_nonce": next });
        let since = self.state.height;
        self.state.held.insert((sender, nonce), Held { raw: call.raw, since });
        Outcome::Applied(Bytes::from(answer.to_string()))
    }

    /// Includes `call` (its nonce the sender's next) after `receipts`; its receipt, also
    /// pushed, and its call's return.
    fn include_next(&mut self, call: SignedCall, receipts: &mut Vec<Receipt>) -> (Receipt, EthBytes) {
        let first_log_index = receipts.iter().map(|r| r.logs.len() as u64).sum();
        let (receipt, output) = self.include(call, receipts.len() as u64, first_log_index);
        receipts.push(receipt.clone());
        (receipt, output)
    }

    /// Includes `call` (checked: this chain's, signed, its nonce next) as the transaction at
    /// `index` of the block under way; its receipt.
    fn include(&mut self, call: SignedCall, index: u64, first_log_index: u64) -> (Receipt, EthBytes) {
        let s = &mut self.state;
        let now = s.time;
        let result = s.registries.get_mut().call(
            call.sender,
            call.to,
            &call.input,
            call.value,
            now,
            s.config.on_revert.commit(),
        );
        *s.nonces.entry(call.sender).or_insert(0) += 1;
        let (status, logs, revert, output) = match result {
            Ok(done) => (true, done.logs, None, done.output),
            Err(revert) => (false, Vec::new(), Some((revert.data, revert.reason)), EthBytes::new()),
        };
        let receipt = Receipt {
            transaction_hash: call.hash,
            block_number: s.head + 1,
            block_hash: B256::ZERO, // set when the block is sealed
            transaction_index: index,
            from: call.sender,
            to: call.to,
            nonce: call.nonce,
            status,
            logs,
            first_log_index,
            revert,
            raw: call.raw,
        };
        (receipt, output)
    }

    /// Seals the block of `receipts` at the current height and time, and forgets the blocks
    /// past the history kept.
    fn seal(&mut self, mut receipts: Vec<Receipt>) {
        let s = &mut self.state;
        let number = s.head + 1;
        let transactions: Vec<B256> = receipts.iter().map(|r| r.transaction_hash).collect();
        let mut preimage = Vec::with_capacity(32 + 24 + 32 * transactions.len());
        preimage.extend_from_slice(s.head_hash.as_slice());
        preimage.extend_from_slice(&number.to_be_bytes());
        preimage.extend_from_slice(&s.time.to_be_bytes());
        preimage.extend_from_slice(&s.height.to_be_bytes());
        for t in &transactions {
            preimage.extend_from_slice(t.as_slice());
        }
        let hash = keccak256(&preimage);
        for r in &mut receipts {
            r.block_hash = hash;
        }
        s.blocks.insert(
            number,
            Block {
                number,
                hash,
                parent_hash: s.head_hash,
                timestamp: s.time,
                height: s.height,
                transactions,
            },
        );
        s.receipts.extend(receipts.into_iter().map(|r| (r.transaction_hash, r)));
        s.head = number;
        s.head_hash = hash;
        while s.blocks.len() as u64 > s.config.history_blocks {
            let (_, old) = s.blocks.pop_first().expect("more blocks than kept");
            for t in old.transactions {
                s.receipts.remove(&t);
            }
        }
    }
}

impl StateMachine for Chain {
    /// The encoding, the chain id and the signature (the costly part: secp256k1 recovery).
    fn check(&self, transaction: &[u8]) -> Result<(), String> {
        SignedCall::decode(transaction, self.state.config.chain_id)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn apply(&mut self, block: BlockInfo, transactions: &[Bytes], _checked: &[bool]) -> Vec<Outcome> {
        assert!(
            block.height > self.state.height,
            "height {} applied after height {}: heights arrive in order",
            block.height,
            self.state.height
        );
        self.state.height = block.height;
        self.state.time = self.state.time.max(block.timestamp_ms / 1000);
        let oldest = block.height.saturating_sub(self.state.config.held_heights_max);
        self.state.held.retain(|_, h| h.since >= oldest);
        let mut receipts: Vec<Receipt> = Vec::new();
        let outcomes = transactions.iter().map(|raw| self.take(raw, &mut receipts)).collect();
        if !receipts.is_empty() {
            self.seal(receipts);
        }
        outcomes
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.state).expect("the state serializes"))
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let state: State = serde_json::from_slice(snapshot).map_err(|e| RestoreError {
            offset: byte_offset(snapshot, e.line(), e.column()),
            reason: e.to_string(),
        })?;
        let (theirs, ours) = (&state.config, &self.state.config);
        let setting = |name, theirs: &dyn ToString, ours: &dyn ToString| (name, theirs.to_string(), ours.to_string());
        for (name, a, b) in [
            setting("chain_id", &theirs.chain_id, &ours.chain_id),
            setting("history_blocks", &theirs.history_blocks, &ours.history_blocks),
            setting(
                "held_per_sender_max",
                &theirs.held_per_sender_max,
                &ours.held_per_sender_max,
            ),
            setting("held_max", &theirs.held_max, &ours.held_max),
            setting("held_heights_max", &theirs.held_heights_max, &ours.held_heights_max),
            setting("on_revert", &theirs.on_revert, &ours.on_revert),
        ] {
            if a != b {
                return Err(RestoreError {
                    offset: 0,
                    reason: format!(
                        "the snapshot was made with {name} {a}, this replica runs {b}: every validator must run the same"
                    ),
                });
            }
        }
        // The query limits are this replica's own.
        let config = self.state.config.clone();
        self.state = State { config, ..state };
        Ok(())
    }

    fn query(&self, request: &[u8]) -> Result<Bytes, String> {
        let query: Query = serde_json::from_slice(request).map_err(|e| format!("the query does not parse: {e}"))?;
        self.answer(&query).map(|v| Bytes::from(v.to_string()))
    }
}

/// The byte offset of `line` and `column` (1-based, as serde_json reports them) in `text`.
fn byte_offset(text: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(text.len())
}
