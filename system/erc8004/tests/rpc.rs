//! The JSON-RPC endpoint over the development chain, spoken to as Ethereum tooling speaks:
//! JSON-RPC 2.0 over HTTP POST, quantities in hex, alloy's objects.

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_sol_types::SolCall;
use erc8004::abi::{IdentityRegistry as I, ReputationRegistry as R, IDENTITY_REGISTRY, REPUTATION_REGISTRY};
use erc8004::chain::ChainConfig;
use erc8004::dev::{DevChain, DevLedger};
use erc8004::rpc::RpcService;
use erc8004::wallet::{Envelope, Wallet};
use runtime::{HttpRequest, HttpService, MemStorage, Storage, WallTime};
use serde_json::{json, Value};

const CHAIN: u64 = erc8004::chain::CHAIN_ID_DEFAULT;

fn now() -> WallTime {
    WallTime::from_unix_nanos(1_790_000_000_000_000_000)
}

struct Endpoint {
    service: RpcService<DevChain<MemStorage>>,
}

impl Endpoint {
    fn new() -> Endpoint {
        Endpoint::over(MemStorage::default())
    }

    fn over(storage: MemStorage) -> Endpoint {
        let (dev, _) = DevChain::open(storage, ChainConfig::default()).unwrap();
        Endpoint {
            service: RpcService::new(dev),
        }
    }

    fn post(&mut self, body: &str) -> (u16, Value) {
        let response = self
            .service
            .handle(&HttpRequest::new("POST", "/", body.to_owned()), now());
        let parsed = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).unwrap()
        };
        (response.status, parsed)
    }

    /// The result of `method`, or the error object.
    fn rpc(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let (status, answer) =
            self.post(&json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }).to_string());
        assert_eq!(status, 200);
        assert_eq!(answer["id"], 7);
        match answer.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(answer["result"].clone()),
        }
    }

    fn send<C: SolCall>(&mut self, wallet: &Wallet, to: Address, call: C) -> Result<Value, Value> {
        let nonce = u64::from_str_radix(
            self.rpc("eth_getTransactionCount", json!([wallet.address(), "latest"]))
                .unwrap()
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap();
        let raw = wallet.sign_call(Envelope::Eip1559, CHAIN, nonce, to, call.abi_encode().into());
        self.rpc("eth_sendRawTransaction", json!([raw]))
    }
}

/// What `Endpoint::send` signed for `wallet`'s first registration of `ipfs://agent`.
fn raw_of(wallet: &Wallet, nonce: u64) -> Bytes {
    wallet.sign_call(
        Envelope::Eip1559,
        CHAIN,
        nonce,
        IDENTITY_REGISTRY,
        I::register_1Call {
            agentURI: "ipfs://agent".into(),
        }
        .abi_encode()
        .into(),
    )
}

fn wallet(i: u64) -> Wallet {
    Wallet::development(3, i)
}

#[test]
fn a_wallet_registers_gives_feedback_and_reads_it_back_as_ethereum_tooling_would() {
    let mut rpc = Endpoint::new();
    assert_eq!(rpc.rpc("eth_chainId", json!([])).unwrap(), json!(format!("{CHAIN:#x}")));
    assert_eq!(rpc.rpc("net_version", json!([])).unwrap(), json!(CHAIN.to_string()));
    assert_eq!(rpc.rpc("eth_blockNumber", json!([])).unwrap(), "0x0");
    let (owner, client) = (wallet(0), wallet(1));

    let hash = rpc
        .send(
            &owner,
            IDENTITY_REGISTRY,
            I::register_1Call {
                agentURI: "ipfs://agent".into(),
            },
        )
        .unwrap();
    let receipt = rpc.rpc("eth_getTransactionReceipt", json!([hash])).unwrap();
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(receipt["blockNumber"], "0x1");
    assert_eq!(receipt["from"], json!(owner.address()));
    assert_eq!(receipt["to"], json!(IDENTITY_REGISTRY));
    assert_eq!(receipt["type"], "0x2");
    let logs = receipt["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 4);
    assert_eq!(
        logs[2]["topics"][0],
        json!(keccak256("Registered(uint256,string,address)"))
    );
    assert_eq!(logs[2]["logIndex"], "0x2");
    assert_eq!(logs[2]["transactionHash"], hash);
    let tx = rpc.rpc("eth_getTransactionByHash", json!([hash])).unwrap();
    assert_eq!(
        (tx["from"].clone(), tx["nonce"].clone(), tx["blockNumber"].clone()),
        (json!(owner.address()), json!("0x0"), json!("0x1"))
    );
    let block = rpc.rpc("eth_getBlockByNumber", json!(["latest", false])).unwrap();
    assert_eq!(block["transactions"], json!([hash]));
    assert_eq!(block["number"], "0x1");
    // Ethereum's transactions trie over the one transaction (signatures are deterministic, so
    // signing again gives the bytes sent); no state trie here.
    let sent = raw_of(&owner, 0);
    assert_eq!(json!(keccak256(&sent)), hash);
    let envelope: alloy_consensus::TxEnvelope = alloy_eips::eip2718::Decodable2718::decode_2718_exact(&sent).unwrap();
    let root = alloy_consensus::proofs::calculate_transaction_root(&[envelope]);
    assert_eq!(block["transactionsRoot"], json!(root));
    assert_eq!(block["stateRoot"], json!(B256::ZERO));
    let by_hash = rpc.rpc("eth_getBlockByHash", json!([block["hash"], true])).unwrap();
    assert_eq!(by_hash["transactions"][0]["hash"], hash);

    rpc.send(
        &client,
        REPUTATION_REGISTRY,
        R::giveFeedbackCall {
            agentId: U256::ZERO,
            value: 87,
            valueDecimals: 0,
            tag1: "quality".into(),
            tag2: String::new(),
            endpoint: String::new(),
            feedbackURI: String::new(),
            feedbackHash: B256::ZERO,
        },
    )
    .unwrap();
    let summary = I::getAgentWalletCall { agentId: U256::ZERO };
    let output = rpc
        .rpc(
            "eth_call",
            json!([{ "to": IDENTITY_REGISTRY, "data": Bytes::from(summary.abi_encode()) }, "latest"]),
        )
        .unwrap();
    let output: Bytes = serde_json::from_value(output).unwrap();
    assert_eq!(
        I::getAgentWalletCall::abi_decode_returns(&output).unwrap(),
        owner.address()
    );
    let call = R::getSummaryCall {
        agentId: U256::ZERO,
        clientAddresses: vec![client.address()],
        tag1: String::new(),
        tag2: String::new(),
    };
    let output: Bytes = serde_json::from_value(
        rpc.rpc(
            "eth_call",
            json!([{ "to": REPUTATION_REGISTRY, "input": Bytes::from(call.abi_encode()) }]),
        )
        .unwrap(),
    )
    .unwrap();
    let summary = R::getSummaryCall::abi_decode_returns(&output).unwrap();
    assert_eq!((summary.count, summary.summaryValue), (1, 87));

    // The logs come back from eth_getLogs with the spec's topics.
    let new_feedback =
        keccak256("NewFeedback(uint256,address,uint64,int128,uint8,string,string,string,string,string,bytes32)");
    let found = rpc
        .rpc(
            "eth_getLogs",
            json!([{ "fromBlock": "0x0", "toBlock": "latest", "address": REPUTATION_REGISTRY, "topics": [new_feedback, null, client.address().into_word()] }]),
        )
        .unwrap();
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["blockNumber"], "0x2");
    assert_eq!(found[0]["topics"][3], json!(keccak256("quality")));

    // A revert: eth_call and eth_estimateGas say so with the data; a transaction is included
    // with status 0.
    let self_feedback = R::giveFeedbackCall {
        agentId: U256::ZERO,
        value: 1,
        valueDecimals: 0,
        tag1: String::new(),
        tag2: String::new(),
        endpoint: String::new(),
        feedbackURI: String::new(),
        feedbackHash: B256::ZERO,
    };
    let error = rpc
        .rpc(
            "eth_estimateGas",
            json!([{ "from": owner.address(), "to": REPUTATION_REGISTRY, "data": Bytes::from(self_feedback.abi_encode()) }]),
        )
        .unwrap_err();
    assert_eq!(error["code"], 3);
    assert_eq!(error["message"], "execution reverted: Self-feedback not allowed");
    assert!(error["data"].as_str().unwrap().starts_with("0x08c379a0"));
    let hash = rpc.send(&owner, REPUTATION_REGISTRY, self_feedback).unwrap();
    assert_eq!(
        rpc.rpc("eth_getTransactionReceipt", json!([hash])).unwrap()["status"],
        "0x0"
    );
    assert_eq!(
        rpc.rpc("eth_getTransactionCount", json!([owner.address(), "pending"]))
            .unwrap(),
        "0x2"
    );
}

#[test]
fn bad_requests_get_json_rpc_errors_naming_the_problem_and_nothing_is_committed() {
    let mut rpc = Endpoint::new();
    let owner = wallet(0);
    let (_, answer) = rpc.post("{not json");
    assert_eq!(answer["error"]["code"], -32700);
    assert_eq!(answer["id"], Value::Null);
    let (_, answer) = rpc.post(r#"{"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}"#);
    assert_eq!(answer["error"]["code"], -32600);
    let error = rpc.rpc("eth_newFilter", json!([{}])).unwrap_err();
    assert_eq!(error["code"], -32601);
    let error = rpc.rpc("eth_getTransactionCount", json!(["0x1234"])).unwrap_err();
    assert_eq!(error["code"], -32602);
    assert!(
        error["message"].as_str().unwrap().contains("parameter 0 (address)"),
        "{error}"
    );
    let error = rpc.rpc("eth_sendRawTransaction", json!(["0x02abcd"])).unwrap_err();
    assert!(
        error["message"].as_str().unwrap().contains("does not decode"),
        "{error}"
    );
    let other_chain = owner.sign_call(
        Envelope::Legacy,
        1,
        0,
        IDENTITY_REGISTRY,
        I::register_0Call {}.abi_encode().into(),
    );
    let error = rpc.rpc("eth_sendRawTransaction", json!([other_chain])).unwrap_err();
    assert!(error["message"].as_str().unwrap().contains("for chain 1"), "{error}");
    let ahead = owner.sign_call(
        Envelope::Eip2930,
        CHAIN,
        17,
        IDENTITY_REGISTRY,
        I::register_0Call {}.abi_encode().into(),
    );
    let error = rpc.rpc("eth_sendRawTransaction", json!([ahead])).unwrap_err();
    assert!(
        error["message"].as_str().unwrap().starts_with("nonce too high")
            && error["message"].as_str().unwrap().contains("at most 16 ahead are held"),
        "{error}"
    );
    let error = rpc.rpc("eth_call", json!([{ "data": "0x" }])).unwrap_err();
    assert!(
        error["message"].as_str().unwrap().contains("\"to\" is required"),
        "{error}"
    );
    let error = rpc
        .rpc("eth_call", json!([{ "to": IDENTITY_REGISTRY }, "0x5"]))
        .unwrap_err();
    assert!(
        error["message"].as_str().unwrap().contains("only the latest"),
        "{error}"
    );
    let error = rpc
        .rpc("eth_getLogs", json!([{ "fromBlock": "0x5", "toBlock": "0x1" }]))
        .unwrap_err();
    assert_eq!(error["code"], -32602);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("invalid block range params"),
        "{error}"
    );
    let error = rpc
        .rpc(
            "eth_getLogs",
            json!([{ "fromBlock": "0x0", "toBlock": "0xffffffffffffffff" }]),
        )
        .unwrap_err();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("beyond current head block 0"),
        "{error}"
    );
    assert_eq!(
        rpc.rpc("eth_blockNumber", json!([])).unwrap(),
        "0x0",
        "nothing committed"
    );
    assert_eq!(
        rpc.rpc("eth_getTransactionReceipt", json!([B256::ZERO])).unwrap(),
        Value::Null
    );

    // A batch answers each; a notification (no id) gets no answer.
    let (status, answer) = rpc.post(
        r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","id":"b","method":"nope"}]"#,
    );
    assert_eq!(status, 200);
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[1]["id"], "b");
    assert_eq!(answers[1]["error"]["code"], -32601);
    let (_, answer) = rpc.post("[]");
    assert_eq!(answer["error"]["code"], -32600);
    let get = rpc.service.handle(&HttpRequest::new("GET", "/", ""), now());
    assert_eq!(get.status, 405);
    let elsewhere = rpc.service.handle(&HttpRequest::new("POST", "/v1", "{}"), now());
    assert_eq!(elsewhere.status, 404);
}

#[test]
fn the_development_chain_is_the_same_chain_after_a_restart_and_a_failed_disk_commits_nothing() {
    let mut rpc = Endpoint::new();
    let owner = wallet(0);
    for _ in 0..3 {
        rpc.send(&owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap();
    }
    let head = rpc.rpc("eth_getBlockByNumber", json!(["latest", false])).unwrap();
    let Endpoint { service } = rpc;
    let dev = service_into_dev(service);
    let snapshot = hypermesh::replication::StateMachine::snapshot(dev.chain());
    let mut storage = dev.into_storage();
    storage.crash_keeping(0);
    let mut rpc = Endpoint::over(storage);
    assert_eq!(rpc.rpc("eth_getBlockByNumber", json!(["latest", false])).unwrap(), head);
    assert_eq!(
        hypermesh::replication::StateMachine::snapshot(rpc.service.node().chain()),
        snapshot
    );

    // The disk refuses writes: the transaction is refused and leaves nothing; once the disk
    // is back, the chain goes on.
    let dev = service_into_dev(rpc.service);
    let mut storage = dev.into_storage();
    storage.refuse_writes(Some(""));
    let mut rpc = Endpoint::over(storage);
    let error = rpc.send(&owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap_err();
    assert!(error["message"].as_str().unwrap().contains("log"), "{error}");
    assert_eq!(rpc.rpc("eth_blockNumber", json!([])).unwrap(), "0x3");
    assert_eq!(
        rpc.rpc("eth_getTransactionCount", json!([owner.address()])).unwrap(),
        "0x3"
    );
    let dev = service_into_dev(rpc.service);
    let mut storage = dev.into_storage();
    storage.refuse_writes(None);
    let mut rpc = Endpoint::over(storage);
    rpc.send(&owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap();
    assert_eq!(rpc.rpc("eth_blockNumber", json!([])).unwrap(), "0x4");
}

fn service_into_dev(service: RpcService<DevChain<MemStorage>>) -> DevChain<MemStorage> {
    service.into_node()
}

#[test]
fn a_transaction_sent_ahead_of_its_nonce_is_held_and_included_once_the_gap_fills() {
    let mut rpc = Endpoint::new();
    let owner = wallet(0);
    let raw = |nonce| {
        owner.sign_call(
            Envelope::Eip1559,
            CHAIN,
            nonce,
            IDENTITY_REGISTRY,
            I::register_0Call {}.abi_encode().into(),
        )
    };
    let second = rpc.rpc("eth_sendRawTransaction", json!([raw(1)])).unwrap();
    assert_eq!(
        rpc.rpc("eth_getTransactionReceipt", json!([second])).unwrap(),
        Value::Null,
        "held, not included"
    );
    assert_eq!(rpc.rpc("eth_blockNumber", json!([])).unwrap(), "0x0");
    let first = rpc.rpc("eth_sendRawTransaction", json!([raw(0)])).unwrap();
    let block = rpc.rpc("eth_getBlockByNumber", json!(["latest", false])).unwrap();
    assert_eq!(block["transactions"], json!([first, second]));
    assert_eq!(
        rpc.rpc("eth_getTransactionReceipt", json!([second])).unwrap()["transactionIndex"],
        "0x1"
    );
    assert_eq!(
        rpc.rpc("eth_getTransactionCount", json!([owner.address()])).unwrap(),
        "0x2"
    );
}

#[test]
fn what_wallets_and_tools_ask_besides_is_answered_truthfully() {
    let mut rpc = Endpoint::new();
    let owner = wallet(0);
    assert_eq!(
        rpc.rpc("eth_getCode", json!([IDENTITY_REGISTRY, "latest"])).unwrap(),
        "0xfe"
    );
    assert_eq!(
        rpc.rpc("eth_getCode", json!([owner.address(), "latest"])).unwrap(),
        "0x"
    );
    assert_eq!(
        rpc.rpc("eth_getBalance", json!([owner.address(), "latest"])).unwrap(),
        "0x0"
    );
    assert_eq!(rpc.rpc("eth_accounts", json!([])).unwrap(), json!([]));
    assert_eq!(rpc.rpc("eth_syncing", json!([])).unwrap(), false);
    assert_eq!(rpc.rpc("net_listening", json!([])).unwrap(), true);
    let hash = rpc.send(&owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap();
    let fees = rpc
        .rpc("eth_feeHistory", json!(["0x4", "latest", [25.0, 75.0]]))
        .unwrap();
    assert_eq!(fees["oldestBlock"], "0x0", "{fees}");
    assert_eq!(fees["baseFeePerGas"].as_array().unwrap().len(), 3);
    assert_eq!(fees["reward"][0], json!(["0x3b9aca00", "0x3b9aca00"]));
    // The same transaction sent again (a retry after a lost answer) is its hash, not an error.
    let again = raw_of_register(&owner, 0);
    assert_eq!(rpc.rpc("eth_sendRawTransaction", json!([again])).unwrap(), hash);
    // An invalid request without an id is still answered, with a null id.
    let (_, answer) = rpc.post("[1]");
    assert_eq!(answer[0]["error"]["code"], -32600, "{answer}");
    assert_eq!(answer[0]["id"], Value::Null);
    // A browser's preflight, and the header every answer carries.
    let preflight = rpc.service.handle(&HttpRequest::new("OPTIONS", "/", ""), now());
    assert_eq!(preflight.status, 204);
    let answer = rpc.service.handle(
        &HttpRequest::new("POST", "/", r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#),
        now(),
    );
    assert!(
        answer
            .headers
            .iter()
            .any(|(k, v)| *k == "access-control-allow-origin" && v == "*"),
        "{:?}",
        answer.headers
    );
}

/// What `Endpoint::send` signs for `wallet`'s `register()` at `nonce`.
fn raw_of_register(wallet: &Wallet, nonce: u64) -> Bytes {
    wallet.sign_call(
        Envelope::Eip1559,
        CHAIN,
        nonce,
        IDENTITY_REGISTRY,
        I::register_0Call {}.abi_encode().into(),
    )
}

#[test]
fn a_commit_whose_confirmation_failed_stops_the_chain_until_a_restart_settles_it() {
    let mut rpc = Endpoint::new();
    let owner = wallet(0);
    rpc.send(&owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap();
    // The block is written and synced, but the log's commit marker cannot be: unknown.
    rpc.service
        .node_mut()
        .storage_mut()
        .refuse_writes(Some("dev-log.committed"));
    let error = rpc.send(&owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap_err();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("known only after a restart"),
        "{error}"
    );
    // With the disk back, the same process still commits nothing (a block after the unsure
    // one would link to a parent the log may not hold, and the restart would find it broken).
    rpc.service.node_mut().storage_mut().refuse_writes(None);
    let error = rpc.send(&owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap_err();
    assert!(error["message"].as_str().unwrap().contains("restart"), "{error}");
    let storage = rpc.service.into_node().into_storage();
    let (dev, _) = DevChain::open(storage, ChainConfig::default()).expect("the log opens");
    let mut rpc = Endpoint {
        service: RpcService::new(dev),
    };
    // The restart replayed what the log held: the second registration is in or out, and the
    // chain goes on from there without a broken link.
    let count = rpc.rpc("eth_getTransactionCount", json!([owner.address()])).unwrap();
    let nonce = u64::from_str_radix(count.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert!(nonce == 1 || nonce == 2, "{nonce}");
    rpc.send(&owner, IDENTITY_REGISTRY, I::register_0Call {}).unwrap();
    let mut storage = rpc.service.into_node().into_storage();
    storage.crash_keeping(0);
    let (dev, opened) = DevChain::open(storage, ChainConfig::default()).unwrap();
    assert_eq!(dev.chain().nonce(owner.address()), nonce + 1);
    assert_eq!(opened.replayed, nonce + 1);
}

#[test]
fn a_state_directory_keeps_its_chain_id_and_refuses_another() {
    let rpc = Endpoint::new();
    let storage = rpc.service.into_node().into_storage();
    let other = ChainConfig {
        chain_id: 1,
        ..ChainConfig::default()
    };
    let error = DevChain::open(storage, other).err().expect("refused");
    assert!(error.to_string().contains("chain id 8004, not 1"), "{error}");
}

/// The chain id is kept so that rot does not pass for a new chain: a copy damaged is written
/// again from the others, every copy damaged is refused by name, and a directory made when the
/// id was kept in one slot still opens.
#[test]
fn a_damaged_chain_id_is_repaired_or_refused_never_taken_for_a_new_chain() {
    use erc8004::dev::stored_chain_id;
    let other = ChainConfig {
        chain_id: 31337,
        ..ChainConfig::default()
    };
    let mut storage = MemStorage::default();
    DevLedger::open(&mut storage, other.clone()).unwrap();
    storage.write_all_synced("dev-chain-id.a", b"rotted").unwrap();
    assert_eq!(stored_chain_id(&mut storage).unwrap(), Some(31337));
    let (mut ledger, _) = DevLedger::open(&mut storage, other.clone()).expect("two copies whole");
    assert_eq!(
        storage.read_all("dev-chain-id.a").unwrap(),
        b"rotted",
        "an open writes nothing"
    );
    register(&mut ledger, &mut storage, 31337, 0);
    assert_eq!(
        whole_copies(&mut storage, "dev-chain-id"),
        3,
        "repaired before the block"
    );
    rot_every_copy(&mut storage, "dev-chain-id");
    let error = stored_chain_id(&mut storage).expect_err("refused");
    assert!(error.to_string().contains("dev-chain-id"), "{error}");
    let error = refusal(&mut storage, other.clone());
    assert!(
        error.contains("dev-chain-id in the state directory is damaged in 3"),
        "{error}"
    );

    // Every copy gone from under a chain with blocks: refused, not made again under a guess.
    let mut rpc = Endpoint::new();
    rpc.send(&Wallet::development(1, 0), IDENTITY_REGISTRY, I::register_0Call {})
        .unwrap();
    let mut storage = rpc.service.into_node().into_storage();
    for copy in ["a", "b", "c"] {
        storage.remove(&format!("dev-chain-id.{copy}")).unwrap();
    }
    let error = refusal(&mut storage, ChainConfig::default());
    assert!(error.contains("but the log holds or claims blocks (1 held)"), "{error}");

    // Made before: the id in one slot (`durable::save`, sequence 1), no setting file. It opens;
    // its first block keeps the id in three copies, and writes no setting (none is the default,
    // and cannot rot).
    let mut storage = MemStorage::default();
    runtime::durable::save(&mut storage, "dev-chain-id", 1, &31337u64.to_be_bytes()).unwrap();
    assert_eq!(stored_chain_id(&mut storage).unwrap(), Some(31337));
    let (mut ledger, _) = DevLedger::open(&mut storage, other.clone()).expect("opens");
    register(&mut ledger, &mut storage, 31337, 0);
    assert_eq!(whole_copies(&mut storage, "dev-chain-id"), 3);
    assert!(storage.list().unwrap().iter().all(|f| !f.starts_with("dev-on-revert")));
    DevLedger::open(&mut storage, other).expect("opens again");
}

/// `wallet(1)`'s registration with `nonce` committed in `ledger` on chain `chain_id`.
fn register(ledger: &mut DevLedger, storage: &mut MemStorage, chain_id: u64, nonce: u64) {
    let raw = Wallet::development(1, 0).sign_call(
        Envelope::Eip1559,
        chain_id,
        nonce,
        IDENTITY_REGISTRY,
        I::register_0Call {}.abi_encode().into(),
    );
    ledger
        .commit(
            storage,
            bytes::Bytes::copy_from_slice(&raw),
            WallTime::from_unix_nanos(0),
        )
        .unwrap();
}

/// Why opening the chain in `storage` with `config` is refused.
fn refusal(storage: &mut MemStorage, config: ChainConfig) -> String {
    match DevLedger::open(storage, config) {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    }
}

/// Every one of `base`'s three copies rotted.
fn rot_every_copy(storage: &mut MemStorage, base: &str) {
    for copy in ["a", "b", "c"] {
        storage.write_all_synced(&format!("{base}.{copy}"), b"rotted").unwrap();
    }
}

/// How many of `base`'s three copies hold a whole state.
fn whole_copies(storage: &mut MemStorage, base: &str) -> usize {
    let (mirror, held) = runtime::durable::Mirror::load(storage, base).unwrap();
    let empty = ["a", "b", "c"]
        .iter()
        .filter(|c| storage.read_all(&format!("{base}.{c}")).unwrap().is_empty())
        .count();
    if held.is_some() {
        3 - mirror.damaged() - empty
    } else {
        0
    }
}

/// A log replays to the state it was written with only under the same `on_revert`: a state
/// directory keeps the setting it was made with and refuses the other, either way round.
#[test]
fn a_state_directory_keeps_what_its_reverts_leave_and_refuses_the_other() {
    use erc8004::registries::OnRevert;
    let keeping = ChainConfig {
        on_revert: OnRevert::Keep,
        ..ChainConfig::default()
    };
    let mut storage = MemStorage::default();
    DevLedger::open(&mut storage, keeping.clone()).unwrap();
    let error = refusal(&mut storage, ChainConfig::default());
    assert!(error.contains("on_revert keep, not rollback"), "{error}");
    DevLedger::open(&mut storage, keeping.clone()).expect("the same setting opens");
    let rpc = Endpoint::new();
    let storage = rpc.service.into_node().into_storage();
    let error = DevChain::open(storage, keeping.clone()).err().expect("refused");
    assert!(error.to_string().contains("on_revert rollback, not keep"), "{error}");

    // A chain whose making stopped after its setting was kept (its chain id refused) is made
    // again under the setting asked next, which it then keeps.
    let mut storage = MemStorage::default();
    storage.refuse_writes(Some("dev-chain-id"));
    assert!(DevLedger::open(&mut storage, keeping.clone()).is_err());
    storage.refuse_writes(None);
    DevLedger::open(&mut storage, ChainConfig::default()).expect("made under rollback");
    DevLedger::open(&mut storage, ChainConfig::default()).expect("and kept so");
    let error = refusal(&mut storage, keeping.clone());
    assert!(error.contains("on_revert rollback, not keep"), "{error}");

    // A copy of the setting damaged is written again from the others; all damaged is refused,
    // never taken for the default.
    let mut storage = MemStorage::default();
    DevLedger::open(&mut storage, keeping.clone()).unwrap();
    storage.write_all_synced("dev-on-revert.a", b"rotted").unwrap();
    let (mut ledger, _) = DevLedger::open(&mut storage, keeping.clone()).expect("two copies whole");
    assert_eq!(whole_copies(&mut storage, "dev-on-revert"), 2);
    register(&mut ledger, &mut storage, ChainConfig::default().chain_id, 0);
    assert_eq!(
        whole_copies(&mut storage, "dev-on-revert"),
        3,
        "repaired before the block"
    );
    rot_every_copy(&mut storage, "dev-on-revert");
    let error = refusal(&mut storage, ChainConfig::default());
    assert!(
        error.contains("dev-on-revert in the state directory is damaged in 3 of its copies"),
        "{error}"
    );
}

/// A backend's commit hook is called once per block committed, after its head is published: a
/// waiter it wakes finds the block (the held transaction and its gap filled come in one).
#[test]
fn the_commit_hook_is_called_once_per_block_after_its_head_is_published() {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};
    let (mut dev, _) = DevChain::open(MemStorage::default(), ChainConfig::default()).unwrap();
    let head = dev.head_watch();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let heads = seen.clone();
    dev.on_commit(Box::new(move || {
        heads.lock().unwrap().push(head.load(Ordering::Acquire))
    }));
    let owner = wallet(0);
    for nonce in 0..3 {
        let raw = raw_of_register(&owner, nonce);
        dev.commit(bytes::Bytes::from(raw.to_vec()), now()).unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
}
