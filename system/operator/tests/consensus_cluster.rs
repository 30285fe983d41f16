//! Four `hypermesh node` validators on [::1] run HotStuff-2 consensus over STOQ (mutual TLS on
//! their TrustChain leaves, whose keys sign their votes): a certified client's signed
//! transactions commit; with one validator killed the other three keep committing; restarted
//! from its state directory (no token), it replays its log and catches up with the others.

// A test of real processes and sockets: it reads the OS clock and starts threads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{ca_with_trust, free_port, fresh_dir, json_rpc, run_hypermesh, run_trustchain, text, wait_for, Process};
use serde_json::Value;

const VALIDATORS: usize = 4;

/// `hypermesh key --state DIR`: the 64 hex digits it prints.
fn key_of(state: &Path) -> String {
    let out = run_hypermesh(&["key", "--state", state.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_owned();
    assert_eq!(key.len(), 64, "{key}");
    key
}

fn token(ca: &str, name: &str) -> String {
    let out = run_trustchain(&["token", "--state", ca, "--name", name, "--addr", "::1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

fn min_committed(nodes: &[Process], among: &[usize]) -> u64 {
    among.iter().map(|&i| nodes[i].committed()).min().unwrap()
}

/// A CA and the files of four validators and one client on [::1], the operator's steps: each
/// validator's key first (`hypermesh key`), then one validators file for all, a join token each.
struct Cluster {
    dir: std::path::PathBuf,
    root: std::path::PathBuf,
    names: Vec<String>,
    ports: Vec<u16>,
    validators: std::path::PathBuf,
    tokens: Vec<String>,
    client_state: std::path::PathBuf,
    client_token: String,
    ca: Process,
}

impl Cluster {
    /// The cluster's files under a fresh `name`, and its CA; `isolating`: the CA is served with
    /// the validators file, and so revokes validators on proof of their isolation.
    fn new(name: &str, isolating: bool) -> Cluster {
        Cluster::with_machine(name, isolating, None)
    }

    /// The same, the validators file asking for `machine` (then without `[[client]]` entries).
    fn with_machine(name: &str, isolating: bool, machine: Option<&str>) -> Cluster {
        let dir = fresh_dir(name);
        let (ca_state, root) = ca_with_trust(&dir);
        let ca_arg = ca_state.to_str().unwrap().to_owned();
        let names: Vec<String> = (0..VALIDATORS).map(|i| format!("node-{i}.mesh")).collect();
        let ports: Vec<u16> = (0..VALIDATORS).map(|_| free_port()).collect();
        let mut file = String::from("epoch = 1\n");
        for i in 0..VALIDATORS {
            file += &format!(
                "[[validator]]\nname = \"{}\"\naddress = \"[::1]:{}\"\npublic_key = \"{}\"\n",
                names[i],
                ports[i],
                key_of(&dir.join(format!("node-{i}")))
            );
        }
        let client_state = dir.join("client");
        match machine {
            Some(machine) => file = format!("machine = \"{machine}\"\n{file}"),
            None => {
                file += &format!(
                    "[[client]]\nid = 7\nname = \"client.mesh\"\npublic_key = \"{}\"\n",
                    key_of(&client_state)
                )
            }
        }
        let validators = dir.join("validators.toml");
        std::fs::write(&validators, file).unwrap();
        let tokens: Vec<String> = names.iter().map(|n| token(&ca_arg, n)).collect();
        let client_token = token(&ca_arg, "client.mesh");
        let mut args = vec!["serve", "--state", &ca_arg, "--listen", "[::1]:0"];
        if isolating {
            args.extend(["--validators", validators.to_str().unwrap()]);
        }
        let ca = Process::start(env!("CARGO_BIN_EXE_trustchain"), &args);
        Cluster {
            dir,
            root,
            names,
            ports,
            validators,
            tokens,
            client_state,
            client_token,
            ca,
        }
    }

    /// Starts validator `i` (with its join token the first time) reading the validators file
    /// `validators`.
    fn start_node(&self, i: usize, token: bool, validators: &Path) -> Process {
        self.start_node_with(i, token, validators, &[])
    }

    /// The same, with `extra` arguments.
    fn start_node_with(&self, i: usize, token: bool, validators: &Path, extra: &[&str]) -> Process {
        let listen = format!("[::1]:{}", self.ports[i]);
        let seed = format!("[::1]:{}", self.ports[0]);
        let state = self.dir.join(format!("node-{i}"));
        let ca_addr = self.ca.addr().to_string();
        let mut args = vec![
            "node",
            "--listen",
            &listen,
            "--name",
            &self.names[i],
            "--ca",
            &ca_addr,
            "--ca-root",
            self.root.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--validators",
            validators.to_str().unwrap(),
        ];
        if token {
            args.extend(["--token", &self.tokens[i]]);
        }
        if i > 0 {
            args.extend(["--seed", &seed]);
        }
        args.extend(extra);
        Process::start(env!("CARGO_BIN_EXE_hypermesh"), &args)
    }
}

#[test]
fn validators_commit_survive_a_kill_and_the_restarted_one_catches_up_from_its_state() {
    let cluster = Cluster::new("consensus-cluster", false);
    let (root, validators, ca) = (&cluster.root, &cluster.validators, &cluster.ca);
    let (client_state, client_token) = (&cluster.client_state, &cluster.client_token);
    let ca_addr = ca.addr().to_string();
    let start_node = |i: usize, token: Option<&str>| cluster.start_node(i, token.is_some(), validators);
    let tokens = &cluster.tokens;
    let mut nodes: Vec<Process> = (0..VALIDATORS).map(|i| start_node(i, Some(&tokens[i]))).collect();
    let all: Vec<usize> = (0..VALIDATORS).collect();

    // 1. Every validator takes its seat and commits.
    wait_for("every validator to commit 3 blocks", Duration::from_secs(60), || {
        min_committed(&nodes, &all) >= 3
    });
    for (i, node) in nodes.iter().enumerate() {
        let seat = node
            .probes()
            .into_iter()
            .find(|p| p["event"] == "consensus")
            .expect("a seat");
        assert_eq!(
            (seat["validator"].as_u64(), seat["validators"].as_u64()),
            (Some(i as u64), Some(4))
        );
        assert!(node.count("stoq_connected") >= 1, "consensus ran over STOQ");
    }

    // 2. A certified client's signed transactions commit, each answered by f + 1 validators.
    let out = run_hypermesh(&[
        "client",
        "--listen",
        "[::1]:0",
        "--name",
        "client.mesh",
        "--ca",
        &ca_addr,
        "--ca-root",
        root.to_str().unwrap(),
        "--token",
        client_token,
        "--state",
        client_state.to_str().unwrap(),
        "--validators",
        validators.to_str().unwrap(),
        "--rate",
        "200",
        "--seconds",
        "2",
        "--warmup",
        "500ms",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let (submitted, committed) = (
        summary["submitted"].as_u64().unwrap(),
        summary["committed"].as_u64().unwrap(),
    );
    assert!(committed > 0 && committed * 10 >= submitted * 9, "{stdout}");
    assert_eq!(summary["refused"], 0, "{stdout}");

    // 2b. A certified client reads: linearizable, at or above every height committed before
    //     the read was sent; local, from the replicas' state as it is.
    let committed_before = (0..VALIDATORS).map(|i| nodes[i].committed()).max().unwrap();
    let read = |consistency: &str| {
        run_hypermesh(&[
            "read",
            "--listen",
            "[::1]:0",
            "--name",
            "client.mesh",
            "--ca",
            &ca_addr,
            "--ca-root",
            root.to_str().unwrap(),
            "--state",
            client_state.to_str().unwrap(),
            "--validators",
            validators.to_str().unwrap(),
            "--key",
            "0",
            "--key",
            "1",
            "--consistency",
            consistency,
        ])
    };
    for consistency in ["linearizable", "local"] {
        let out = read(consistency);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let answer: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(answer["consistency"], consistency, "{answer}");
        assert_eq!(answer["keys"]["0"], serde_json::json!([]), "{answer}");
        assert_eq!(
            answer["validators"].as_array().map(Vec::len),
            Some(2),
            "f + 1 agreed: {answer}"
        );
        let height = answer["height"].as_u64().unwrap();
        if consistency == "linearizable" {
            assert!(
                height >= committed_before,
                "a linearizable read at height {height}, below the {committed_before} committed before it"
            );
        }
    }

    // 3. One validator of four is killed: the other three keep committing.
    nodes[3].child.kill().unwrap();
    nodes[3].child.wait().unwrap();
    let killed_at = nodes[3].committed();
    let survivors = [0, 1, 2];
    let before = min_committed(&nodes, &survivors).max(killed_at);
    wait_for(
        "the three survivors to commit 4 more blocks",
        Duration::from_secs(60),
        || min_committed(&nodes, &survivors) >= before + 4,
    );

    // 4. Restarted from its state directory, without a token, it replays its log and catches up.
    nodes[3] = start_node(3, None);
    let target = survivors.iter().map(|&i| nodes[i].committed()).max().unwrap();
    wait_for(
        "the restarted validator to replay its log",
        Duration::from_secs(60),
        || !nodes[3].consensus("recovered").is_empty(),
    );
    let recovered = nodes[3].consensus("recovered")[0]["subject"].as_u64().unwrap();
    assert!(
        recovered >= killed_at,
        "it replayed {recovered} committed blocks; it had committed {killed_at}"
    );
    wait_for(
        "the restarted validator to reach the others' height",
        Duration::from_secs(60),
        || nodes[3].committed() >= target,
    );
    wait_for("all four to commit together again", Duration::from_secs(60), || {
        let top = all.iter().map(|&i| nodes[i].committed()).max().unwrap();
        nodes[3].committed() + 2 >= top && min_committed(&nodes, &all) > target
    });
    let fetched: Vec<Value> = nodes[3].consensus("catchup");
    assert!(
        fetched.iter().any(|p| p["value"].as_i64() > Some(0)),
        "what it missed came from its peers (catch-up): {fetched:?}"
    );
    for node in &nodes {
        assert!(node.consensus("halted").is_empty(), "a replica halted");
    }
}

/// Issue 14, item 4, on real processes: "a committed reconfiguration removes the node from the
/// validator set, TrustChain revokes its certificate, STOQ refuses it; the cluster keeps
/// committing throughout". Validator 3's operator gave it a file the others do not have, with
/// validators 2 and 3 swapped: it signs its votes and proposals as validator 2, over a channel
/// whose certificate names validator 3, so the others mark it first-hand, commit its removal,
/// hand the proof to the CA, which revokes it, and from their next handshake with it STOQ
/// refuses it. (A file of another epoch no longer does: its messages are of views of that
/// epoch, which the others take for a validator ahead of them, not for forgeries.)
#[test]
fn a_validator_shown_byzantine_is_isolated_revoked_by_the_ca_and_refused_by_stoq() {
    let cluster = Cluster::new("consensus-isolation", true);
    // Validator 3's file: the same validators, 2 and 3 swapped.
    let stale = cluster.dir.join("validators-swapped.toml");
    let text = std::fs::read_to_string(&cluster.validators).unwrap();
    let mut blocks: Vec<&str> = text.split("[[validator]]").collect();
    assert_eq!(blocks.len(), VALIDATORS + 1, "a header and one block per validator");
    blocks.swap(3, 4);
    std::fs::write(&stale, blocks.join("[[validator]]")).unwrap();
    let nodes: Vec<Process> = (0..VALIDATORS)
        .map(|i| cluster.start_node(i, true, if i == 3 { &stale } else { &cluster.validators }))
        .collect();
    let honest = [0, 1, 2];

    // 1. The three commit without it, and commit its removal.
    wait_for(
        "the honest validators to isolate validator 3",
        Duration::from_secs(60),
        || {
            honest
                .iter()
                .all(|&i| nodes[i].consensus("isolated").iter().any(|p| p["subject"] == 3))
        },
    );
    for &i in &honest {
        let marked = nodes[i].consensus("marked");
        assert!(
            marked.iter().all(|p| p["subject"] == 3),
            "only validator 3 is marked: {marked:?}"
        );
    }

    // 2. Each hands the proof of it to the CA; the first revokes it.
    let reported = |i: usize| -> Vec<Value> {
        nodes[i]
            .probes()
            .into_iter()
            .filter(|p| p["event"] == "isolation_reported")
            .collect()
    };
    wait_for(
        "every honest validator to hand its proof to the CA",
        Duration::from_secs(30),
        || honest.iter().all(|&i| !reported(i).is_empty()),
    );
    let answers: Vec<Value> = honest.iter().flat_map(|&i| reported(i)).collect();
    for a in &answers {
        assert_eq!(a["validator"], 3, "{a}");
        assert_eq!(a["ca"]["isolated"][0]["name"], "node-3.mesh", "{a}");
    }
    let newly = answers
        .iter()
        .filter(|a| a["ca"]["isolated"][0]["newly_revoked"] == true)
        .count();
    assert_eq!(
        newly, 1,
        "one proof revoked it, the others changed nothing: {answers:?}"
    );
    let failed: Vec<Value> = honest
        .iter()
        .flat_map(|&i| nodes[i].probes())
        .filter(|p| p["event"] == "isolation_report_failed")
        .collect();
    assert!(failed.is_empty(), "{failed:?}");

    // 3. STOQ refuses it: its handshakes fail as revoked on the honest validators, which keep
    //    committing.
    let revoked_class = trustchain::validate::ValidationError::CLASSES
        .iter()
        .position(|c| *c == "revoked")
        .unwrap() as i64;
    let refusals = |i: usize| {
        nodes[i]
            .probes()
            .into_iter()
            .filter(|p| p["probe"] == "stoq_refused" && p["value"].as_i64() == Some(revoked_class))
            .count()
    };
    wait_for(
        "an honest validator to refuse validator 3 as revoked",
        Duration::from_secs(60),
        || honest.iter().any(|&i| refusals(i) > 0),
    );
    let before = min_committed(&nodes, &honest);
    wait_for(
        "the honest validators to commit 3 more blocks",
        Duration::from_secs(60),
        || min_committed(&nodes, &honest) >= before + 3,
    );
    for node in &nodes {
        assert!(node.consensus("halted").is_empty(), "a replica halted");
    }
}

/// `hypermesh node --validators FILE` with `file`, refused before it reaches the CA: exit 2, and
/// its message.
fn refused_file(name: &str, file: &str) -> String {
    let dir = fresh_dir(&format!("consensus-refused-{name}"));
    let path = dir.join("validators.toml");
    std::fs::write(&path, file).unwrap();
    let out = run_hypermesh(&[
        "node",
        "--listen",
        "[::1]:7000",
        "--name",
        name,
        "--ca",
        "[::1]:8443",
        "--ca-root",
        "/nonexistent",
        "--token",
        "t",
        "--state",
        dir.join("state").to_str().unwrap(),
        "--validators",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    text(&out.stderr)
}

#[test]
fn a_validators_file_that_does_not_seat_the_node_is_refused_by_file_entry_and_field() {
    let key = "ab".repeat(32);
    let entry = |name: &str, port: u16, key: &str| {
        format!("[[validator]]\nname = \"{name}\"\naddress = \"[::1]:{port}\"\npublic_key = \"{key}\"\n")
    };
    let err = refused_file("a.mesh", &entry("b.mesh", 7000, &key));
    assert!(err.contains("no [[validator]] is named \"a.mesh\" (--name)"), "{err}");
    let err = refused_file("a.mesh", &entry("a.mesh", 7001, &key));
    assert!(
        err.contains("validator 0 (\"a.mesh\"): address: [::1]:7001, but this node listens on [::1]:7000"),
        "{err}"
    );
    let err = refused_file("a.mesh", &entry("a.mesh", 7000, &key[..60]));
    assert!(
        err.contains("validators.toml:4: validator 0 (\"a.mesh\"): public_key: ") && err.contains("not 64 hex digits"),
        "{err}"
    );
    // The file is read before anything else is: the token was not spent on a bad file.
    assert!(!err.contains("--ca-root"), "{err}");
}

#[test]
fn a_read_without_keys_with_an_unknown_consistency_or_too_many_keys_is_refused_by_name() {
    let base = [
        "read",
        "--listen",
        "[::1]:0",
        "--name",
        "c.mesh",
        "--ca",
        "[::1]:1",
        "--ca-root",
        "/nonexistent",
        "--validators",
        "/nonexistent",
    ];
    let refused = |more: &[&str]| {
        let args: Vec<&str> = base.iter().chain(more).copied().collect();
        let out = run_hypermesh(&args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let err = refused(&[]);
    assert!(err.contains("--key"), "{err}");
    let err = refused(&["--key", "1", "--consistency", "eventual"]);
    assert!(
        err.contains("eventual") && err.contains("linearizable") && err.contains("local"),
        "{err}"
    );
    let many: Vec<String> = (0..65).flat_map(|k| ["--key".to_owned(), k.to_string()]).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = refused(&many);
    assert!(err.contains("65 --key given, at most 64"), "{err}");
}

/// Issue 17: the registry REST API on a validator (`--api`), its key made in the node's state
/// directory while it runs: `/health` names the replica's seat and role and that its partition
/// commits; a registration posted is answered with its receipt once consensus committed it,
/// read again by its hash and read back as an agent; with two of the four validators stopped,
/// the partition left cannot commit and `/health` says so, and a registration posted there is
/// answered `202` (taken, not committed) once the API's wait is over.
fn registry_api_on_a_validator(cluster: &Cluster, nodes: &mut Vec<Process>, chain_id: u64) {
    use alloy_sol_types::SolCall;
    use common::http_plain;
    use erc8004::abi::{IdentityRegistry as I, IDENTITY_REGISTRY};
    use erc8004::wallet::{Envelope, Wallet};

    let api_of = |node: &Process| -> Option<std::net::SocketAddr> {
        node.probes()
            .iter()
            .find(|p| p["event"] == "api")
            .and_then(|p| p["listening"].as_str()?.strip_prefix("http://")?.parse().ok())
    };
    wait_for("validator 1's API", Duration::from_secs(30), || {
        api_of(&nodes[1]).is_some()
    });
    let api = api_of(&nodes[1]).unwrap();
    let state = cluster.dir.join("node-1");
    let created = run_hypermesh(&["keys", "create", "--state", state.to_str().unwrap()]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key = text(&created.stdout).lines().last().unwrap().to_owned();
    let call = |method: &str, target: &str, body: Option<&str>| -> (u16, Value) {
        let (status, _, body) = http_plain(api, method, target, Some(&key), body);
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    };
    let health = || -> Value {
        let (status, _, body) = http_plain(api, "GET", "/health", None, None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    wait_for("the key taken and a commit seen", Duration::from_secs(10), || {
        call("GET", "/api/v1/agents/", None).0 == 200 && health()["status"] == "ok"
    });
    let consensus = health()["components"]["consensus"].clone();
    assert_eq!(
        (consensus["validator"].as_u64(), consensus["validators"].as_u64()),
        (Some(1), Some(VALIDATORS as u64)),
        "{consensus}"
    );
    assert!(
        matches!(consensus["role"].as_str(), Some("leader" | "follower")),
        "{consensus}"
    );
    assert_eq!(consensus["partition_can_commit"], true, "{consensus}");

    let wallet = Wallet::development(99, 1);
    let raw = wallet.sign_call(
        Envelope::Eip1559,
        chain_id,
        0,
        IDENTITY_REGISTRY,
        I::register_1Call {
            agentURI: "data:application/json,{\"name\":\"via-api\",\"supportedTrust\":[\"reputation\"]}".into(),
        }
        .abi_encode()
        .into(),
    );
    let body = format!("{{\"raw\": \"0x{}\"}}", alloy_primitives::hex::encode(&raw));
    let (status, receipt) = call("POST", "/api/v1/transactions", Some(&body));
    assert_eq!((status, receipt["success"].as_bool()), (200, Some(true)), "{receipt}");
    let by_hash = format!("/api/v1/transactions/{}", receipt["hash"].as_str().unwrap());
    assert_eq!(call("GET", &by_hash, None), (200, receipt.clone()));
    let (status, agents) = call("GET", "/api/v1/agents/?trust=reputation", None);
    assert_eq!(status, 200, "{agents}");
    assert_eq!(agents["agents"].as_array().map(Vec::len), Some(1), "{agents}");
    // The node's answers, its consensus component among them, held to the OpenAPI document's
    // schemas by a standard validator.
    let python = common::web3_python();
    let document = call("GET", "/api/v1/openapi.json", None).1;
    let conforms = |targets: &[(&str, &str)]| {
        let Some(python) = &python else { return };
        let cases: Vec<Value> = targets
            .iter()
            .map(|(template, target)| {
                let (status, body) = call("GET", target, None);
                serde_json::json!([template, status.to_string(), body, target])
            })
            .collect();
        let input = serde_json::json!({ "document": document, "cases": cases });
        common::validate_answers(python, &input.to_string());
    };
    let agent = format!("/api/v1/agents/{}", agents["agents"][0]["id"].as_str().unwrap());
    conforms(&[
        ("/health", "/health"),
        ("/api/v1/agents/", "/api/v1/agents/?trust=reputation"),
        ("/api/v1/agents/{id}", &agent),
        ("/api/v1/transactions/{hash}", &by_hash),
    ]);

    // Two of four stopped: the two left are no quorum.
    nodes.truncate(2);
    wait_for(
        "health saying the partition cannot commit",
        Duration::from_secs(45),
        || {
            let h = health();
            h["status"] == "degraded" && h["components"]["consensus"]["partition_can_commit"] == false
        },
    );
    conforms(&[("/health", "/health")]);
    let raw = wallet.sign_call(
        Envelope::Eip1559,
        chain_id,
        1,
        IDENTITY_REGISTRY,
        I::register_1Call {
            agentURI: "ipfs://in-the-minority".into(),
        }
        .abi_encode()
        .into(),
    );
    let body = format!("{{\"raw\": \"0x{}\"}}", alloy_primitives::hex::encode(&raw));
    let posted = std::time::Instant::now();
    let (status, taken) = call("POST", "/api/v1/transactions", Some(&body));
    assert_eq!((status, taken["status"].as_str()), (202, Some("taken")), "{taken}");
    assert!(
        posted.elapsed() >= erc8004_api::service::COMMIT_WAIT - Duration::from_millis(500),
        "answered after {:?}, before the wait was over",
        posted.elapsed()
    );
    let by_hash = format!("/api/v1/transactions/{}", taken["hash"].as_str().unwrap());
    assert_eq!(call("GET", &by_hash, None).0, 404, "not committed");
}

/// Issue 15: the registries on a cluster. Four validators whose file says `machine =
/// "erc8004"`; a transaction signed by a wallet and sent to one validator's JSON-RPC endpoint is
/// committed by consensus, and its receipt and the agent it registered are read back from
/// another validator's endpoint.
#[test]
fn a_registry_transaction_sent_to_one_validator_is_committed_and_read_back_from_another() {
    use alloy_sol_types::SolCall;
    use erc8004::abi::{IdentityRegistry as I, IDENTITY_REGISTRY};
    use erc8004::wallet::{Envelope, Wallet};
    use serde_json::json;

    let cluster = Cluster::with_machine("consensus-erc8004", false, Some("erc8004"));
    let mut nodes: Vec<Process> = (0..VALIDATORS)
        .map(|i| cluster.start_node_with(i, true, &cluster.validators, &["--rpc", "[::1]:0", "--api", "[::1]:0"]))
        .collect();
    let rpc_of = |node: &Process| -> Option<std::net::SocketAddr> {
        node.probes()
            .iter()
            .find(|p| p["event"] == "rpc")
            .and_then(|p| p["listening"].as_str()?.strip_prefix("http://")?.parse().ok())
    };
    wait_for("every validator's JSON-RPC endpoint", Duration::from_secs(30), || {
        nodes.iter().all(|n| rpc_of(n).is_some())
    });
    let (first, last) = (rpc_of(&nodes[0]).unwrap(), rpc_of(&nodes[VALIDATORS - 1]).unwrap());
    let wallet = Wallet::development(99, 0);
    let chain_id = 8004;
    assert_eq!(
        json_rpc(first, "eth_chainId", json!([])).unwrap(),
        format!("{chain_id:#x}")
    );
    let mut hashes = Vec::new();
    for nonce in 0..3 {
        let raw = wallet.sign_call(
            Envelope::Eip1559,
            chain_id,
            nonce,
            IDENTITY_REGISTRY,
            I::register_1Call {
                agentURI: format!("ipfs://agent-{nonce}"),
            }
            .abi_encode()
            .into(),
        );
        hashes.push(json_rpc(first, "eth_sendRawTransaction", json!([raw])).unwrap());
    }
    wait_for("the receipts at another validator", Duration::from_secs(30), || {
        hashes
            .iter()
            .all(|h| json_rpc(last, "eth_getTransactionReceipt", json!([h])).is_ok_and(|r| r["status"] == "0x1"))
    });
    let owner = json_rpc(
        last,
        "eth_call",
        json!([{ "to": IDENTITY_REGISTRY, "data": alloy_primitives::Bytes::from(I::ownerOfCall { tokenId: alloy_primitives::U256::from(2) }.abi_encode()) }]),
    )
    .unwrap();
    assert_eq!(
        owner.as_str().unwrap()[26..].to_lowercase(),
        format!("{:x}", wallet.address()),
        "agent 2 is the wallet's"
    );
    assert_eq!(
        json_rpc(last, "eth_getTransactionCount", json!([wallet.address()])).unwrap(),
        "0x3"
    );
    registry_api_on_a_validator(&cluster, &mut nodes, chain_id);

    // --rpc without the registries is refused by name.
    let plain = Cluster::new("consensus-erc8004-plain", false);
    let listen = format!("[::1]:{}", plain.ports[0]);
    let refused = run_hypermesh(&[
        "node",
        "--listen",
        &listen,
        "--name",
        "node-0.mesh",
        "--ca",
        "[::1]:1",
        "--ca-root",
        plain.root.to_str().unwrap(),
        "--validators",
        plain.validators.to_str().unwrap(),
        "--rpc",
        "[::1]:0",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("machine = \"erc8004\""),
        "{}",
        text(&refused.stderr)
    );
}
