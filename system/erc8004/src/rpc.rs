//! The JSON-RPC endpoint Ethereum tooling speaks to (`eth_*` over HTTP POST, JSON-RPC 2.0,
//! single requests and batches), as a pure [`HttpService`]: a request and the time in, an
//! answer out. It reads the chain a node holds and hands signed transactions to it through
//! [`RpcNode`]; the objects it answers (blocks, transactions, receipts, logs) are alloy's, so
//! they are written as Ethereum nodes write them.
//!
//! Methods: `web3_clientVersion`, `net_version`, `net_listening`, `eth_chainId`,
//! `eth_syncing`, `eth_accounts` (none: clients sign), `eth_blockNumber`, `eth_gasPrice`,
//! `eth_maxPriorityFeePerGas`, `eth_feeHistory`, `eth_getBalance` (0: no ether exists),
//! `eth_getCode` (a one-byte placeholder at the registries), `eth_getTransactionCount`,
//! `eth_sendRawTransaction` (a transaction already included answers its hash again),
//! `eth_call`, `eth_estimateGas`, `eth_getTransactionReceipt`, `eth_getTransactionByHash`,
//! `eth_getBlockByNumber`, `eth_getBlockByHash`, `eth_getLogs` (a range past the head or
//! reversed is refused, -32602; forgotten history is skipped). Any other answers -32601 (the
//! filter methods among them: pollers use `eth_getLogs`). Answers allow any origin (CORS), as
//! local nodes do. State is the latest only: a block parameter may name the head (by
//! tag or number); an older one is refused by name. Every block is final when made (BFT
//! consensus), so `safe` and `finalized` are the head.
//!
//! Blocks carry Ethereum's transactions and receipts roots; their state root is zero (the state
//! is the registries', kept in no trie). Gas is not metered or charged: `eth_gasPrice` answers [`GAS_PRICE`], `eth_estimateGas`
//! [`GAS_LIMIT`] for a call that succeeds, receipts report no gas used, blocks a base fee of 0.

use std::ops::Deref;

use alloy_consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Eip658Value, Receipt as ConsensusReceipt, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{logs_bloom, Address, Bloom, Bytes, B256, U256};
use alloy_rpc_types_eth::{
    Block as RpcBlock, BlockNumberOrTag, BlockTransactions, Filter, FilterBlockOption, Header as RpcHeader,
    Log as RpcLog, Transaction as RpcTransaction, TransactionReceipt,
};
use runtime::{HttpRequest, HttpResponse, HttpService, WallTime};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::chain::{Block, Chain, FoundLog, Receipt};
use crate::identity::has_code;
use crate::tx::SignedCall;
pub use crate::wallet::{GAS_LIMIT, GAS_PRICE};

/// Requests one batch may carry.
pub const BATCH_MAX: usize = 100;

/// Largest request body the endpoint is served with (a batch of raw transactions).
pub const BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The block gas limit blocks report (nothing is metered against it).
const BLOCK_GAS_LIMIT: u64 = 30_000_000;

/// What the endpoint needs of a node: the chain as it holds it, and a way in for transactions.
pub trait RpcNode {
    /// Shared access to the chain.
    type Chain<'a>: Deref<Target = Chain>
    where
        Self: 'a;

    /// The chain as this node holds it now.
    fn chain(&self) -> Self::Chain<'_>;

    /// Hands `call` (decoded for this chain, its nonce the sender's next or ahead, not held
    /// yet) to the chain; `Ok` once taken (committed, or admitted to be), else why not
    /// ([`SendError::NotTaken`], or [`SendError::Unsure`] if it may have been).
    fn submit(&mut self, call: &SignedCall, now: WallTime) -> Result<(), SendError>;
}

/// Why a signed transaction was not taken ([`RpcService::send_raw`]): refused, so nothing of it
/// was done (or, for [`SendError::NonceHeld`], nothing new), except [`SendError::Unsure`], whose
/// outcome is unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not a signed transaction for this chain (its encoding, chain id or signature).
    #[error("{0}")]
    Undecodable(String),
    /// Its nonce was used already.
    #[error("nonce too low: next nonce {next}, tx nonce {got}")]
    NonceTooLow {
        /// The sender's next nonce.
        next: u64,
        /// The transaction's.
        got: u64,
    },
    /// Its nonce is further ahead than the chain holds transactions for.
    #[error("nonce too high: next nonce {next}, tx nonce {got}; at most {ahead_max} ahead are held")]
    NonceTooHigh {
        /// The sender's next nonce.
        next: u64,
        /// The transaction's.
        got: u64,
        /// How far ahead the chain holds transactions.
        ahead_max: u64,
    },
    /// Another transaction with its sender and nonce is held already.
    #[error(
        "another transaction with nonce {nonce} of {sender} is held: it is included once the nonces before it are"
    )]
    NonceHeld {
        /// The sender.
        sender: Address,
        /// The nonce.
        nonce: u64,
    },
    /// The node could not take it (its log could not be written, say): nothing of it was done.
    #[error("{0}")]
    NotTaken(String),
    /// The node failed while taking it: whether it was taken is known only later (sending the
    /// same signed transaction again then is safe, it is answered by its hash).
    #[error("{0}")]
    Unsure(String),
}

/// The JSON-RPC endpoint over a node.
pub struct RpcService<N> {
    node: N,
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq)]
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(-32602, message)
    }

    fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

type Answer = Result<Value, RpcError>;

impl<N: RpcNode> RpcService<N> {
    /// The endpoint over `node`.
    pub fn new(node: N) -> RpcService<N> {
        RpcService { node }
    }

    /// The node served.
    pub fn node(&self) -> &N {
        &self.node
    }

    /// The node served, to change.
    pub fn node_mut(&mut self) -> &mut N {
        &mut self.node
    }

    /// The node, giving the endpoint up.
    pub fn into_node(self) -> N {
        self.node
    }

    /// Hands the signed transaction `raw` to the node, as `eth_sendRawTransaction` does: its hash
    /// once taken (included, or held until its sender's nonce reaches it), or why not. One
    /// already included answers its hash again (a retry after a lost answer).
    pub fn send_raw(&mut self, raw: &[u8], now: WallTime) -> Result<B256, SendError> {
        let chain_id = self.node.chain().config().chain_id;
        let call = SignedCall::decode(raw, chain_id).map_err(|e| SendError::Undecodable(e.to_string()))?;
        if self.node.chain().receipt(&call.hash).is_some() {
            return Ok(call.hash);
        }
        let next = self.node.chain().nonce(call.sender);
        if call.nonce < next {
            return Err(SendError::NonceTooLow { next, got: call.nonce });
        }
        let ahead_max = self.node.chain().config().held_per_sender_max;
        if call.nonce > next + ahead_max {
            return Err(SendError::NonceTooHigh {
                next,
                got: call.nonce,
                ahead_max,
            });
        }
        // Sent again while held (a retry): it is taken, and that is the answer.
        match self.node.chain().held(call.sender, call.nonce) {
            Some(held) if held == raw => return Ok(call.hash),
            Some(_) => {
                return Err(SendError::NonceHeld {
                    sender: call.sender,
                    nonce: call.nonce,
                })
            }
            None => {}
        }
        self.node.submit(&call, now)?;
        Ok(call.hash)
    }

    /// Answers one JSON-RPC request object (`None`: a notification, which gets no answer).
    fn request(&mut self, request: &Value, now: WallTime) -> Option<Value> {
        let id = request.get("id").cloned();
        let mut valid = false;
        let answer = (|| {
            let object = request
                .as_object()
                .ok_or_else(|| RpcError::new(-32600, "a request is a JSON object"))?;
            if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
                return Err(RpcError::new(-32600, "\"jsonrpc\": \"2.0\" is required"));
            }
            let method = object
                .get("method")
                .and_then(Value::as_str)
                .ok_or_else(|| RpcError::new(-32600, "\"method\" must be a string"))?;
            valid = true;
            let params = match object.get("params") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(params)) => params.clone(),
                Some(_) => return Err(RpcError::invalid_params("\"params\" must be an array")),
            };
            self.method(method, &params, now)
        })();
        // A notification (a valid request without an id) gets no answer; an invalid request
        // gets one, with a null id.
        let id = match id {
            Some(id) => id,
            None if valid => return None,
            None => Value::Null,
        };
        Some(match answer {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(error) => json!({ "jsonrpc": "2.0", "id": id, "error": error.to_json() }),
        })
    }

    fn method(&mut self, method: &str, params: &[Value], now: WallTime) -> Answer {
        let chain_id = self.node.chain().config().chain_id;
        match method {
            "web3_clientVersion" => Ok(json!(format!("hypermesh-erc8004/{}", env!("CARGO_PKG_VERSION")))),
            "net_version" => Ok(json!(chain_id.to_string())),
            "eth_chainId" => Ok(quantity(chain_id)),
            "eth_blockNumber" => Ok(quantity(self.node.chain().head())),
            "eth_gasPrice" | "eth_maxPriorityFeePerGas" => Ok(json!(format!("{GAS_PRICE:#x}"))),
            "net_listening" => Ok(json!(true)),
            "eth_syncing" => Ok(json!(false)),
            // The node holds no keys: clients sign.
            "eth_accounts" => Ok(json!([])),
            "eth_getBalance" => {
                let _: Address = param(params, 0, "address")?;
                at_head(&self.node.chain(), params.get(1))?;
                // No ether exists here, and none is needed: gas is not charged.
                Ok(quantity(0))
            }
            "eth_getCode" => {
                let address: Address = param(params, 0, "address")?;
                at_head(&self.node.chain(), params.get(1))?;
                // The registries run natively, not as EVM code: they answer a one-byte
                // placeholder (INVALID), so that tools see a contract there; accounts have none.
                Ok(json!(if has_code(address) { "0xfe" } else { "0x" }))
            }
            "eth_feeHistory" => {
                let count: U256 = param(params, 0, "block count")?;
                let newest: BlockNumberOrTag = param(params, 1, "newest block")?;
                let percentiles: Option<Vec<f64>> = optional(params, 2, "reward percentiles")?;
                let newest = resolve(&self.node.chain(), newest)?;
                let count = count.saturating_to::<u64>().min(1024).min(newest + 1);
                let oldest = newest + 1 - count;
                let mut history = json!({
                    "oldestBlock": quantity(oldest),
                    // No base fee, no gas used: nothing is charged.
                    "baseFeePerGas": vec![quantity(0); count as usize + 1],
                    "gasUsedRatio": vec![0.0; count as usize],
                });
                if let Some(percentiles) = percentiles {
                    let rewards = vec![format!("{GAS_PRICE:#x}"); percentiles.len()];
                    history["reward"] = json!(vec![rewards; count as usize]);
                }
                Ok(history)
            }
            "eth_getTransactionCount" => {
                let address: Address = param(params, 0, "address")?;
                let chain = self.node.chain();
                at_head(&chain, params.get(1))?;
                Ok(quantity(chain.nonce(address)))
            }
            "eth_sendRawTransaction" => {
                let raw: Bytes = param(params, 0, "data")?;
                let hash = self
                    .send_raw(&raw, now)
                    .map_err(|e| RpcError::new(-32000, e.to_string()))?;
                Ok(json!(hash))
            }
            "eth_call" | "eth_estimateGas" => {
                let request: CallRequest = param(params, 0, "transaction")?;
                let chain = self.node.chain();
                at_head(&chain, params.get(1))?;
                let to = request
                    .to
                    .ok_or_else(|| RpcError::invalid_params("\"to\" is required: this chain creates no contracts"))?;
                let data = request.input.or(request.data).unwrap_or_default();
                let from = request.from.unwrap_or_default();
                let value = request.value.unwrap_or_default();
                match chain.call(from, to, &data, value) {
                    Ok(done) if method == "eth_call" => Ok(json!(done.output)),
                    Ok(_) => Ok(quantity(GAS_LIMIT)),
                    Err(revert) => Err(RpcError {
                        code: if revert.data.is_empty() { -32000 } else { 3 },
                        message: format!("execution reverted: {}", revert.reason),
                        data: Some(json!(revert.data)),
                    }),
                }
            }
            "eth_getTransactionReceipt" => {
                let hash: B256 = param(params, 0, "transaction hash")?;
                let chain = self.node.chain();
                Ok(match chain.receipt(&hash) {
                    Some(receipt) => receipt_json(&chain, receipt),
                    None => Value::Null,
                })
            }
            "eth_getTransactionByHash" => {
                let hash: B256 = param(params, 0, "transaction hash")?;
                let chain = self.node.chain();
                Ok(match chain.receipt(&hash) {
                    Some(receipt) => transaction_json(&chain, receipt),
                    None => Value::Null,
                })
            }
            "eth_getBlockByNumber" => {
                let tag: BlockNumberOrTag = param(params, 0, "block")?;
                let full: bool = optional(params, 1, "full")?.unwrap_or(false);
                let chain = self.node.chain();
                let number = resolve(&chain, tag)?;
                Ok(block_at(&chain, number, full))
            }
            "eth_getBlockByHash" => {
                let hash: B256 = param(params, 0, "block hash")?;
                let full: bool = optional(params, 1, "full")?.unwrap_or(false);
                let chain = self.node.chain();
                let number = chain.block_by_hash(&hash).map(|b| b.number);
                Ok(number.map_or(Value::Null, |n| block_at(&chain, n, full)))
            }
            "eth_getLogs" => {
                let filter: Filter = param(params, 0, "filter")?;
                let chain = self.node.chain();
                let (from, to) = match &filter.block_option {
                    FilterBlockOption::AtBlockHash(hash) => {
                        let Some(block) = chain.block_by_hash(hash) else {
                            return Err(RpcError::new(-32000, format!("no block {hash} is kept here")));
                        };
                        (block.number, block.number)
                    }
                    FilterBlockOption::Range { from_block, to_block } => {
                        let from = resolve(&chain, from_block.unwrap_or(BlockNumberOrTag::Latest))?;
                        let to = resolve(&chain, to_block.unwrap_or(BlockNumberOrTag::Latest))?;
                        if from > to {
                            return Err(RpcError::invalid_params(format!(
                                "invalid block range params: fromBlock {from} is after toBlock {to}"
                            )));
                        }
                        if to > chain.head() {
                            return Err(RpcError::invalid_params(format!(
                                "block range extends beyond current head block {}",
                                chain.head()
                            )));
                        }
                        // Forgotten history holds nothing to find.
                        (from.max(chain.oldest_kept()).min(to), to)
                    }
                };
                let found = chain
                    .logs_where(from, to, &|log| filter.matches(log))
                    .map_err(|e| RpcError::new(-32005, e))?;
                Ok(json!(found.iter().map(|f| log_json(&chain, f)).collect::<Vec<_>>()))
            }
            _ => Err(RpcError::new(
                -32601,
                format!(
                    "the method {method} is not served here (see the erc8004::rpc documentation for those that are)"
                ),
            )),
        }
    }
}

impl<N: RpcNode + Send> HttpService for RpcService<N> {
    fn handle(&mut self, request: &HttpRequest, now: WallTime) -> HttpResponse {
        if request.path != "/" {
            return HttpResponse::new(
                404,
                "application/json",
                format!(
                    "{}\n",
                    json!({ "error": format!("no {}: JSON-RPC is served at /", request.path) })
                ),
            );
        }
        if request.method == "OPTIONS" {
            // A browser's preflight: any page may call (the answers are public, and the
            // endpoint holds no keys).
            return cors(HttpResponse::new(204, "application/json", String::new()));
        }
        if request.method != "POST" {
            return HttpResponse::new(
                405,
                "application/json",
                format!("{}\n", json!({ "error": "JSON-RPC takes POST" })),
            )
            .with_header("allow", "POST".to_owned());
        }
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(body) => body,
            Err(e) => {
                let error = RpcError::new(-32700, format!("the body is not JSON: {e}"));
                return answer(json!({ "jsonrpc": "2.0", "id": null, "error": error.to_json() }));
            }
        };
        match body {
            Value::Array(batch) => {
                if batch.is_empty() || batch.len() > BATCH_MAX {
                    let error = RpcError::new(
                        -32600,
                        format!("a batch carries 1 to {BATCH_MAX} requests, not {}", batch.len()),
                    );
                    return answer(json!({ "jsonrpc": "2.0", "id": null, "error": error.to_json() }));
                }
                let answers: Vec<Value> = batch.iter().filter_map(|r| self.request(r, now)).collect();
                if answers.is_empty() {
                    // Notifications only: nothing to say.
                    return HttpResponse::new(204, "application/json", String::new());
                }
                answer(Value::Array(answers))
            }
            single => match self.request(&single, now) {
                Some(a) => answer(a),
                None => HttpResponse::new(204, "application/json", String::new()),
            },
        }
    }
}

fn answer(body: Value) -> HttpResponse {
    cors(HttpResponse::new(200, "application/json", format!("{body}\n")))
}

/// `response` with the headers that let a page of any origin call the endpoint, as local
/// Ethereum nodes answer.
fn cors(response: HttpResponse) -> HttpResponse {
    response
        .with_header("access-control-allow-origin", "*".to_owned())
        .with_header("access-control-allow-methods", "POST, OPTIONS".to_owned())
        .with_header("access-control-allow-headers", "content-type".to_owned())
}

/// `n` as an Ethereum quantity (`"0x…"`, no leading zeros).
fn quantity(n: u64) -> Value {
    json!(format!("{n:#x}"))
}

/// Parameter `i` (named `name` in refusals), required.
fn param<T: DeserializeOwned>(params: &[Value], i: usize, name: &str) -> Result<T, RpcError> {
    optional(params, i, name)?.ok_or_else(|| RpcError::invalid_params(format!("parameter {i} ({name}) is missing")))
}

/// Parameter `i`, if given.
fn optional<T: DeserializeOwned>(params: &[Value], i: usize, name: &str) -> Result<Option<T>, RpcError> {
    match params.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| RpcError::invalid_params(format!("parameter {i} ({name}): {e}"))),
    }
}

/// The block number `tag` names here.
fn resolve(chain: &Chain, tag: BlockNumberOrTag) -> Result<u64, RpcError> {
    Ok(match tag {
        BlockNumberOrTag::Earliest => 0,
        BlockNumberOrTag::Number(n) => n,
        // BFT consensus: a block is final when made.
        BlockNumberOrTag::Latest | BlockNumberOrTag::Pending | BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized => {
            chain.head()
        }
    })
}

/// Refuses a block parameter that names state other than the latest (only that is kept).
fn at_head(chain: &Chain, block: Option<&Value>) -> Result<(), RpcError> {
    let Some(tag) = optional::<BlockNumberOrTag>(block.map(std::slice::from_ref).unwrap_or_default(), 0, "block")?
    else {
        return Ok(());
    };
    let number = resolve(chain, tag)?;
    if number != chain.head() {
        return Err(RpcError::new(
            -32000,
            format!(
                "state at block {number} is not kept here: only the latest (block {}) is",
                chain.head()
            ),
        ));
    }
    Ok(())
}

/// A call's transaction object, as `eth_call` and `eth_estimateGas` take it.
#[derive(Deserialize)]
struct CallRequest {
    from: Option<Address>,
    to: Option<Address>,
    input: Option<Bytes>,
    data: Option<Bytes>,
    value: Option<U256>,
}

fn rpc_log(chain: &Chain, found: &FoundLog) -> RpcLog {
    RpcLog {
        inner: found.log.clone(),
        block_hash: Some(found.block_hash),
        block_number: Some(found.block_number),
        block_timestamp: chain.block(found.block_number).map(|b| b.timestamp),
        transaction_hash: Some(found.transaction_hash),
        transaction_index: Some(found.transaction_index),
        log_index: Some(found.log_index),
        removed: false,
    }
}

fn log_json(chain: &Chain, found: &FoundLog) -> Value {
    serde_json::to_value(rpc_log(chain, found)).expect("a log serializes")
}

fn receipt_json(chain: &Chain, r: &Receipt) -> Value {
    let logs: Vec<RpcLog> = r
        .logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            rpc_log(
                chain,
                &FoundLog {
                    log: log.clone(),
                    block_number: r.block_number,
                    block_hash: r.block_hash,
                    transaction_hash: r.transaction_hash,
                    transaction_index: r.transaction_index,
                    log_index: r.first_log_index + i as u64,
                },
            )
        })
        .collect();
    let receipt = TransactionReceipt {
        inner: receipt_envelope(r, logs),
        transaction_hash: r.transaction_hash,
        transaction_index: Some(r.transaction_index),
        block_hash: Some(r.block_hash),
        block_number: Some(r.block_number),
        gas_used: 0,
        effective_gas_price: 0,
        blob_gas_used: None,
        blob_gas_price: None,
        from: r.from,
        to: Some(r.to),
        contract_address: None,
    };
    serde_json::to_value(receipt).expect("a receipt serializes")
}

/// The receipt `r` as Ethereum encodes it, in its transaction's envelope type, with `logs` (as
/// the consensus encoding or the RPC objects carry them).
fn receipt_envelope<L>(r: &Receipt, logs: Vec<L>) -> ReceiptEnvelope<L> {
    let with_bloom = ReceiptWithBloom {
        receipt: ConsensusReceipt {
            status: Eip658Value::Eip658(r.status),
            cumulative_gas_used: 0,
            logs,
        },
        logs_bloom: logs_bloom(r.logs.iter()),
    };
    // A typed envelope's first byte is its type; a legacy one starts an RLP list (0xc0 or more).
    match r.raw.first().copied().filter(|b| *b < 0x7f).unwrap_or(0) {
        1 => ReceiptEnvelope::Eip2930(with_bloom),
        2 => ReceiptEnvelope::Eip1559(with_bloom),
        _ => ReceiptEnvelope::Legacy(with_bloom),
    }
}

fn rpc_transaction(chain: &Chain, r: &Receipt) -> RpcTransaction {
    let envelope = TxEnvelope::decode_2718_exact(&r.raw).expect("an included transaction decodes");
    RpcTransaction {
        inner: Recovered::new_unchecked(envelope, r.from),
        block_hash: Some(r.block_hash),
        block_number: Some(r.block_number),
        transaction_index: Some(r.transaction_index),
        effective_gas_price: Some(0),
        block_timestamp: chain.block(r.block_number).map(|b| b.timestamp),
    }
}

fn transaction_json(chain: &Chain, r: &Receipt) -> Value {
    serde_json::to_value(rpc_transaction(chain, r)).expect("a transaction serializes")
}

/// Block `number` as JSON (`null` if not kept); with `full`, its transactions' objects.
fn block_at(chain: &Chain, number: u64, full: bool) -> Value {
    let genesis;
    let block: &Block = if number == 0 {
        genesis = Block {
            number: 0,
            hash: B256::ZERO,
            parent_hash: B256::ZERO,
            timestamp: 0,
            height: 0,
            transactions: Vec::new(),
        };
        &genesis
    } else {
        match chain.block(number) {
            Some(block) => block,
            None => return Value::Null,
        }
    };
    let receipts: Vec<&Receipt> = block
        .transactions
        .iter()
        .filter_map(|hash| chain.receipt(hash))
        .collect();
    let mut bloom = Bloom::ZERO;
    for r in &receipts {
        bloom |= logs_bloom(r.logs.iter());
    }
    // The transactions' and receipts' tries are Ethereum's; there is no state trie (the state is
    // the registries', not accounts'), so the state root is zero.
    let envelopes: Vec<TxEnvelope> = receipts
        .iter()
        .map(|r| TxEnvelope::decode_2718_exact(&r.raw).expect("an included transaction decodes"))
        .collect();
    let consensus_receipts: Vec<ReceiptEnvelope> =
        receipts.iter().map(|r| receipt_envelope(r, r.logs.clone())).collect();
    let header = alloy_consensus::Header {
        parent_hash: block.parent_hash,
        ommers_hash: alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH,
        state_root: B256::ZERO,
        transactions_root: calculate_transaction_root(&envelopes),
        receipts_root: calculate_receipt_root(&consensus_receipts),
        logs_bloom: bloom,
        number: block.number,
        gas_limit: BLOCK_GAS_LIMIT,
        timestamp: block.timestamp,
        base_fee_per_gas: Some(0),
        ..Default::default()
    };
    let transactions = if full {
        BlockTransactions::Full(receipts.iter().map(|r| rpc_transaction(chain, r)).collect())
    } else {
        BlockTransactions::Hashes(block.transactions.clone())
    };
    let rpc = RpcBlock {
        header: RpcHeader {
            hash: block.hash,
            inner: header,
            total_difficulty: Some(U256::ZERO),
            size: None,
        },
        uncles: Vec::new(),
        transactions,
        withdrawals: None,
    };
    serde_json::to_value(rpc).expect("a block serializes")
}
