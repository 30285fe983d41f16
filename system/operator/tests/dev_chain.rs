//! `hypermesh dev`, the ERC-8004 development chain, as a developer runs it: a process serving
//! JSON-RPC on loopback, spoken to by a standard Ethereum library (web3.py), restarted on its
//! state directory.

// Tests of real processes: they start reader threads and read the OS clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use alloy_sol_types::SolCall;
use common::{fresh_dir, json_rpc, python_on, run_hypermesh, text, validate_answers, web3_python};
use erc8004::abi::{IdentityRegistry as I, ReputationRegistry as R, IDENTITY_REGISTRY, REPUTATION_REGISTRY};
use erc8004::wallet::{Envelope, Wallet};
use serde_json::{json, Value};

/// A running `hypermesh dev`, killed when dropped.
struct Dev {
    child: Child,
    rpc: SocketAddr,
    /// The printed accounts' private keys, in order.
    keys: Vec<String>,
    /// Every line before `listening on`.
    banner: Vec<String>,
}

impl Dev {
    fn start(state: &Path) -> Dev {
        Dev::start_with(state, &[])
    }

    /// Started with `extra` flags too.
    fn start_with(state: &Path, extra: &[&str]) -> Dev {
        let child = Command::new(env!("CARGO_BIN_EXE_hypermesh"))
            .args(["dev", "--rpc", "[::1]:0", "--state", state.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Held from here on, so that a failed start kills it.
        let mut dev = Dev {
            child,
            rpc: "[::1]:0".parse().unwrap(),
            keys: Vec::new(),
            banner: Vec::new(),
        };
        let mut reader = BufReader::new(dev.child.stdout.take().unwrap());
        loop {
            let mut line = String::new();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "ended before listening: {:?}",
                dev.banner
            );
            if let Some(url) = line.trim().strip_prefix("listening on http://") {
                dev.rpc = url.parse().unwrap();
                dev.keys = dev
                    .banner
                    .iter()
                    .filter_map(|l| l.split("private key ").nth(1).map(str::to_owned))
                    .collect();
                // Keep draining what it prints.
                std::thread::spawn(move || for _ in reader.lines() {});
                return dev;
            }
            dev.banner.push(line.trim().to_owned());
        }
    }

    /// A JSON-RPC call: its `result`, or its `error`.
    fn rpc(&self, method: &str, params: Value) -> Result<Value, Value> {
        json_rpc(self.rpc, method, params)
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The development accounts are the same every run (`ACCOUNTS_SEED`).
fn account(i: u64) -> Wallet {
    Wallet::development(operator::dev::ACCOUNTS_SEED, i)
}

#[test]
fn the_development_chain_keeps_its_state_across_a_kill_and_one_process_holds_it() {
    let dir = fresh_dir("dev-chain-restart");
    let state = dir.join("chain");
    let dev = Dev::start(&state);
    assert_eq!(dev.banner[0], "chain id 8004");
    assert_eq!(dev.keys.len(), 4);
    assert_eq!(
        dev.keys[0],
        account(0).secret().to_string(),
        "the printed key is account 0's"
    );
    let raw = account(0).sign_call(
        Envelope::Legacy,
        8004,
        0,
        IDENTITY_REGISTRY,
        I::register_1Call {
            agentURI: "ipfs://a".into(),
        }
        .abi_encode()
        .into(),
    );
    let hash = dev.rpc("eth_sendRawTransaction", json!([raw])).unwrap();
    assert_eq!(
        dev.rpc("eth_getTransactionReceipt", json!([hash])).unwrap()["status"],
        "0x1"
    );

    // A second process on the same state is refused, naming the holder.
    let second = run_hypermesh(&["dev", "--rpc", "[::1]:0", "--state", state.to_str().unwrap()]);
    assert!(!second.status.success());
    let stderr = text(&second.stderr);
    assert!(stderr.contains("in use by process"), "{stderr}");

    // Killed (no clean stop), then started again: the same chain.
    drop(dev);
    let dev = Dev::start(&state);
    assert!(
        dev.banner.iter().any(|l| l.starts_with("replayed 1 blocks")),
        "{:?}",
        dev.banner
    );
    assert_eq!(dev.rpc("eth_blockNumber", json!([])).unwrap(), "0x1");
    assert_eq!(
        dev.rpc("eth_getTransactionReceipt", json!([hash])).unwrap()["status"],
        "0x1"
    );
    assert_eq!(
        dev.rpc("eth_getTransactionCount", json!([account(0).address(), "latest"]))
            .unwrap(),
        "0x1"
    );
    // Sent again (a retry after the kill lost its answer): in already, its hash. Another
    // transaction with the used nonce is refused.
    assert_eq!(dev.rpc("eth_sendRawTransaction", json!([raw])).unwrap(), hash);
    let reused = account(0).sign_call(
        Envelope::Legacy,
        8004,
        0,
        IDENTITY_REGISTRY,
        I::register_0Call {}.abi_encode().into(),
    );
    let refused = dev.rpc("eth_sendRawTransaction", json!([reused])).unwrap_err();
    assert!(
        refused["message"].as_str().unwrap().starts_with("nonce too low"),
        "{refused}"
    );
    drop(dev);
    // The state directory keeps its chain id.
    let other = run_hypermesh(&[
        "dev",
        "--rpc",
        "[::1]:0",
        "--chain-id",
        "1",
        "--state",
        state.to_str().unwrap(),
    ]);
    assert!(!other.status.success());
    assert!(
        text(&other.stderr).contains("chain id 8004, not 1"),
        "{}",
        text(&other.stderr)
    );

    // Bad flags are refused by name.
    let ipv4 = run_hypermesh(&[
        "dev",
        "--rpc",
        "127.0.0.1:0",
        "--state",
        dir.join("other").to_str().unwrap(),
    ]);
    assert!(!ipv4.status.success());
    assert!(text(&ipv4.stderr).contains("IPv6-only"), "{}", text(&ipv4.stderr));
    let nonsense = run_hypermesh(&[
        "dev",
        "--rpc",
        "localhost",
        "--state",
        dir.join("other").to_str().unwrap(),
    ]);
    assert!(
        text(&nonsense.stderr).contains("--rpc localhost"),
        "{}",
        text(&nonsense.stderr)
    );
}

/// Issue 15's "done means": a transaction signed by a standard Ethereum library registers an
/// agent, gives feedback and reads the summary back through eth_call, and its logs come back
/// from eth_getLogs with the spec's topics.
#[test]
fn web3_py_registers_an_agent_gives_feedback_and_reads_summary_and_logs() {
    let Some(python) = web3_python() else {
        eprintln!("skipped: set TESTBED_WEB3_PYTHON to a Python with web3 (.ci/install-test-tools)");
        return;
    };
    let dir = fresh_dir("dev-chain-web3");
    let dev = Dev::start(&dir.join("chain"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web3/registry_client.py");
    let out = Command::new(python)
        .arg(script)
        .arg(format!("http://{}", dev.rpc))
        .args([&dev.keys[0], &dev.keys[1]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(seen["agent_id"], 0, "{seen}");
    assert_eq!(seen["owner"], account(0).address().to_checksum(None));
    assert_eq!(seen["token_uri"], "ipfs://agent-card");
    assert_eq!(seen["summary"], json!([1, -250, 2]));
    assert_eq!(seen["logs"], 1);
    assert_eq!(
        seen["log_topic0"], "0x6a4a61743519c9d648a14e6493f47dbe3ff1aa29e7785c96c8326a205e58febc",
        "keccak256 of NewFeedback's canonical signature"
    );
    assert_eq!(
        (seen["feedback_value"].clone(), seen["feedback_index"].clone()),
        (json!(-250), json!(1))
    );
    assert_eq!(seen["block_number"], 2);
}

/// A GET of `target` from the API at `addr` with `key` as its bearer: the status, the headers
/// (lower-cased names) and the JSON body.
fn api_get(addr: SocketAddr, target: &str, key: Option<&str>) -> (u16, Vec<(String, String)>, Value) {
    let (status, headers, body) = api_fetch(addr, target, key);
    (status, headers, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// GET `target` over one HTTP/1.1 connection: the status, the header fields (names in lower
/// case) and the body as text.
fn api_fetch(addr: SocketAddr, target: &str, key: Option<&str>) -> (u16, Vec<(String, String)>, String) {
    common::http_plain(addr, "GET", target, key, None)
}

/// The registry API beside JSON-RPC on one chain: refused without a key, served with a key made
/// while it runs, the agent registered over JSON-RPC read back, and refused again once the key is
/// revoked, all without a restart.
#[test]
fn the_registry_api_serves_the_chain_to_a_key_made_and_revoked_while_it_runs() {
    let dir = fresh_dir("dev-chain-api");
    let state = dir.join("chain");
    let dev = Dev::start_with(&state, &["--api", "[::1]:0"]);
    let api: SocketAddr = dev
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("api listening on http://"))
        .expect("the API's address is printed")
        .parse()
        .unwrap();
    let (status, _, health) = api_get(api, "/health", None);
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, _, body) = api_get(api, "/api/v1/agents/", None);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("missing_api_key")));

    let raw = account(0).sign_call(
        Envelope::Eip1559,
        8004,
        0,
        IDENTITY_REGISTRY,
        I::register_1Call {
            agentURI: "ipfs://api".into(),
        }
        .abi_encode()
        .into(),
    );
    dev.rpc("eth_sendRawTransaction", json!([raw])).unwrap();

    let created = run_hypermesh(&["keys", "create", "--state", state.to_str().unwrap()]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key = text(&created.stdout).lines().last().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (status, headers, agent) = loop {
        let answer = api_get(api, "/api/v1/agents/0", Some(&key));
        if answer.0 != 401 || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status, 200, "{agent}");
    assert_eq!(agent["owner"], account(0).address().to_checksum(None));
    assert_eq!(agent["uri"], "ipfs://api");
    assert!(
        headers.iter().any(|(n, v)| n == "x-ratelimit-limit" && v == "1000"),
        "{headers:?}"
    );
    let (_, _, stats) = api_get(api, "/api/v1/agents/0/stats", Some(&key));
    assert_eq!(stats["feedback"]["given"], 0, "{stats}");

    // Feedback committed over JSON-RPC: the very next read shows it (the cached answer from
    // before is not served), and the statistics count it.
    let feedback = R::giveFeedbackCall {
        agentId: alloy_primitives::U256::ZERO,
        value: 87,
        valueDecimals: 0,
        tag1: "speed".into(),
        tag2: String::new(),
        endpoint: String::new(),
        feedbackURI: String::new(),
        feedbackHash: alloy_primitives::B256::ZERO,
    };
    let raw = account(1).sign_call(
        Envelope::Eip1559,
        8004,
        0,
        REPUTATION_REGISTRY,
        feedback.abi_encode().into(),
    );
    dev.rpc("eth_sendRawTransaction", json!([raw])).unwrap();
    let (_, _, agent) = api_get(api, "/api/v1/agents/0", Some(&key));
    assert_eq!(agent["feedback"], 1, "{agent}");
    let (_, _, stats) = api_get(api, "/api/v1/agents/0/stats", Some(&key));
    assert_eq!(
        (
            stats["feedback"]["given"].as_u64(),
            stats["feedback"]["mean"]["value"].as_str()
        ),
        (Some(1), Some("87")),
        "{stats}"
    );

    // /metrics needs no key, and the Prometheus project's own parser reads it.
    let (status, headers, metrics) = api_fetch(api, "/metrics", None);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-type" && v.starts_with("text/plain; version=0.0.4")),
        "{headers:?}"
    );
    // The agent's answer and its statistics, both changed by the feedback.
    assert!(metrics.contains("erc8004_cache_invalidations_total 2\n"), "{metrics}");
    assert!(metrics.contains("erc8004_view_age_max_seconds 0.0\n"), "{metrics}");
    if let Some(python) = web3_python() {
        python_on(
            &python,
            "import prometheus_client",
            "",
            "prometheus_client is not installed beside web3 (run .ci/install-test-tools)",
        );
        let parsed = parse_exposition(&python, &metrics);
        let ok = &parsed["erc8004_requests"]["erc8004_requests_total"];
        let served = ok
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["labels"]["route"] == "/api/v1/agents/{id}" && s["labels"]["status"] == "200")
            .unwrap_or_else(|| panic!("{parsed}"));
        assert_eq!(served["value"], 2.0, "{parsed}");
        let durations = &parsed["erc8004_request_duration_seconds"]["erc8004_request_duration_seconds_count"];
        assert!(!durations.as_array().unwrap().is_empty(), "{parsed}");
    }

    // The OpenAPI document, checked by a standard validator.
    let (status, _, document) = api_fetch(api, "/api/v1/openapi.json", Some(&key));
    assert_eq!(status, 200, "{document}");
    if let Some(python) = web3_python() {
        python_on(
            &python,
            "import openapi_spec_validator",
            "",
            "openapi-spec-validator is not installed beside web3 (run .ci/install-test-tools)",
        );
        validate_openapi(&python, &document);
        // Real answers of every read route, held to the schemas the document gives them.
        let account1 = account(1).address().to_checksum(None);
        let hash = alloy_primitives::keccak256(&raw).to_string();
        let mut cases = Vec::new();
        for (template, target, keyed) in [
            ("/health", "/health".to_string(), false),
            ("/api/v1/agents/", "/api/v1/agents/?limit=5".to_string(), true),
            ("/api/v1/agents/", "/api/v1/agents/?tag=speed".to_string(), true),
            ("/api/v1/agents/{id}", "/api/v1/agents/0".to_string(), true),
            ("/api/v1/agents/{id}", "/api/v1/agents/99".to_string(), true),
            (
                "/api/v1/agents/{id}/feedback",
                "/api/v1/agents/0/feedback".to_string(),
                true,
            ),
            (
                "/api/v1/agents/{id}/validations",
                "/api/v1/agents/0/validations".to_string(),
                true,
            ),
            (
                "/api/v1/agents/{id}/reputation",
                format!("/api/v1/agents/0/reputation?clients={account1}"),
                true,
            ),
            ("/api/v1/agents/{id}/stats", "/api/v1/agents/0/stats".to_string(), true),
            (
                "/api/v1/agents/{id}/registration",
                "/api/v1/agents/0/registration".to_string(),
                true,
            ),
            (
                "/api/v1/transactions/{hash}",
                format!("/api/v1/transactions/{hash}"),
                true,
            ),
            ("/api/v1/agents/", "/api/v1/agents/?active=maybe".to_string(), true),
        ] {
            let (status, _, body) = api_get(api, &target, keyed.then_some(key.as_str()));
            cases.push(json!([template, status.to_string(), body, target]));
        }
        let statuses: Vec<&str> = cases.iter().map(|c| c[1].as_str().unwrap()).collect();
        assert_eq!(
            statuses,
            ["200", "200", "200", "200", "404", "200", "200", "200", "200", "200", "200", "400"],
            "{cases:?}"
        );
        let input = json!({ "document": serde_json::from_str::<Value>(&document).unwrap(), "cases": cases });
        validate_answers(&python, &input.to_string());

        // HTTP/2 with prior knowledge on the same port, from a standard client (httpx over h2):
        // the same answers, headers and errors as HTTP/1.1, all on one connection.
        let answers = http2_exchanges(&python, api, &key);
        let seen: Vec<(&str, &str, u64)> = answers
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["target"].as_str().unwrap(),
                    a["version"].as_str().unwrap(),
                    a["status"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("GET /health", "HTTP/2", 200),
                ("GET /api/v1/agents/0", "HTTP/2", 200),
                ("GET /api/v1/nowhere", "HTTP/2", 404),
                ("DELETE /api/v1/agents/0", "HTTP/2", 405),
                ("POST /api/v1/transactions", "HTTP/2", 400),
            ],
            "{answers}"
        );
        assert_eq!(answers[1]["body"]["uri"], agent["uri"], "{answers}");
        assert_eq!(answers[1]["rate_limit"], "1000", "{answers}");
        assert_eq!(answers[4]["body"]["error"]["code"], "bad_body", "{answers}");
        assert_eq!(
            answers
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["connection"].as_str().unwrap())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            1,
            "one connection carried them all: {answers}"
        );
    }

    // A registration posted ahead of its sender's nonce is held open, and answered with its
    // receipt once the transaction before it is committed over JSON-RPC.
    let late = account(3);
    let sign = |nonce| {
        late.sign_call(
            Envelope::Eip1559,
            8004,
            nonce,
            IDENTITY_REGISTRY,
            I::register_0Call {}.abi_encode().into(),
        )
    };
    let body = format!("{{\"raw\": \"0x{}\"}}", alloy_primitives::hex::encode(sign(1)));
    let held_key = key.clone();
    let held = std::thread::spawn(move || {
        common::http_plain(api, "POST", "/api/v1/transactions", Some(&held_key), Some(&body))
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!held.is_finished(), "answered before the transaction before it came");
    dev.rpc("eth_sendRawTransaction", json!([sign(0)])).unwrap();
    let (status, _, receipt) = held.join().unwrap();
    let receipt: Value = serde_json::from_str(&receipt).unwrap();
    assert_eq!((status, receipt["success"].as_bool()), (200, Some(true)), "{receipt}");

    let revoked = run_hypermesh(&["keys", "revoke", "--state", state.to_str().unwrap(), &key]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (status, _, body) = loop {
        let answer = api_get(api, "/api/v1/agents/0", Some(&key));
        if answer.0 != 200 || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("revoked_api_key")));
}

/// `exposition` read by `prometheus_client`'s parser (the Prometheus project's Python client):
/// `{family: {sample name: [{labels, value}]}}`. A text it cannot parse fails the test.
fn parse_exposition(python: &str, exposition: &str) -> Value {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    samples = out.setdefault(family.name, {})
    for s in family.samples:
        samples.setdefault(s.name, []).append({"labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;
    let out = python_on(python, script, exposition, "the parser refused /metrics");
    serde_json::from_slice(&out).unwrap()
}

/// Checks `document` with openapi-spec-validator (OpenAPI 3.0); a document it refuses fails the
/// test, naming why.
fn validate_openapi(python: &str, document: &str) {
    let script = r#"
import json, sys
from openapi_spec_validator import validate
validate(json.load(sys.stdin))
"#;
    python_on(python, script, document, "the OpenAPI document is refused");
}

/// Requests to the API at `addr` over one HTTP/2 connection with prior knowledge, by httpx (its
/// `h2` backend): for each, the target, the HTTP version, the status, `X-RateLimit-Limit`, the
/// JSON body and the connection's local address.
fn http2_exchanges(python: &str, addr: SocketAddr, key: &str) -> Value {
    python_on(
        python,
        "import httpx, h2",
        "",
        "httpx with HTTP/2 is not installed beside web3 (run .ci/install-test-tools)",
    );
    let script = r#"
import json, sys
import httpx
given = json.load(sys.stdin)
out = []
with httpx.Client(http1=False, http2=True, base_url=given["base"]) as client:
    for method, target, body in [
        ("GET", "/health", None),
        ("GET", "/api/v1/agents/0", None),
        ("GET", "/api/v1/nowhere", None),
        ("DELETE", "/api/v1/agents/0", None),
        ("POST", "/api/v1/transactions", "{\"raw\": 7}"),
    ]:
        headers = {"Authorization": "Bearer " + given["key"], "Content-Type": "application/json"}
        answer = client.request(method, target, headers=headers, content=body)
        out.append({
            "target": method + " " + target,
            "version": answer.http_version,
            "status": answer.status_code,
            "rate_limit": answer.headers.get("x-ratelimit-limit"),
            "body": answer.json(),
            "connection": str(answer.extensions["network_stream"].get_extra_info("client_addr")),
        })
print(json.dumps(out))
"#;
    let input = json!({ "base": format!("http://{addr}"), "key": key });
    let out = python_on(python, script, &input.to_string(), "the HTTP/2 exchanges failed");
    serde_json::from_slice(&out).unwrap()
}
