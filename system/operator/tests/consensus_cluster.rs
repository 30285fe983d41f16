//! Four `hypermesh node` validators on [::1] run HotStuff-2 consensus over STOQ (mutual TLS on
//! their TrustChain leaves, whose keys sign their votes): a certified client's signed
//! transactions commit; with one validator killed the other three keep committing; restarted
//! from its state directory (no token), it replays its log and catches up with the others.

// A test of real processes and sockets: it reads the OS clock and starts threads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{ca_with_trust, free_port, fresh_dir, run_hypermesh, run_trustchain, text, wait_for, Process};
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

#[test]
fn validators_commit_survive_a_kill_and_the_restarted_one_catches_up_from_its_state() {
    let dir = fresh_dir("consensus-cluster");
    let (ca_state, root) = ca_with_trust(&dir);
    let ca_arg = ca_state.to_str().unwrap().to_owned();
    let names: Vec<String> = (0..VALIDATORS).map(|i| format!("node-{i}.mesh")).collect();
    let ports: Vec<u16> = (0..VALIDATORS).map(|_| free_port()).collect();
    let node_state = |i: usize| dir.join(format!("node-{i}"));

    // The operator's steps: each validator's key first (`hypermesh key`), then one file for all.
    let mut file = String::from("epoch = 1\n");
    for i in 0..VALIDATORS {
        file += &format!(
            "[[validator]]\nname = \"{}\"\naddress = \"[::1]:{}\"\npublic_key = \"{}\"\n",
            names[i],
            ports[i],
            key_of(&node_state(i))
        );
    }
    let client_state = dir.join("client");
    file += &format!(
        "[[client]]\nid = 7\nname = \"client.mesh\"\npublic_key = \"{}\"\n",
        key_of(&client_state)
    );
    let validators = dir.join("validators.toml");
    std::fs::write(&validators, file).unwrap();
    let tokens: Vec<String> = names.iter().map(|n| token(&ca_arg, n)).collect();
    let client_token = token(&ca_arg, "client.mesh");

    let ca = Process::start(
        env!("CARGO_BIN_EXE_trustchain"),
        &["serve", "--state", &ca_arg, "--listen", "[::1]:0"],
    );
    let ca_addr = ca.addr().to_string();
    let start_node = |i: usize, token: Option<&str>| {
        let listen = format!("[::1]:{}", ports[i]);
        let seed = format!("[::1]:{}", ports[0]);
        let state = node_state(i);
        let mut args = vec![
            "node",
            "--listen",
            &listen,
            "--name",
            &names[i],
            "--ca",
            &ca_addr,
            "--ca-root",
            root.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--validators",
            validators.to_str().unwrap(),
        ];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        if i > 0 {
            args.extend(["--seed", &seed]);
        }
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        Process::start(env!("CARGO_BIN_EXE_hypermesh"), &refs)
    };
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
        &client_token,
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
    drop(ca);
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
