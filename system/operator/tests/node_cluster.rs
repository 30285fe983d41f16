//! Three `hypermesh node` processes on [::1] enroll with a `trustchain serve` CA over HTTPS, form
//! a cluster over STOQ (QUIC with mutual TLS on their TrustChain leaves), renew their leaves while
//! connected, survive a kill and restart from their state directory, and refuse a node the
//! operator revoked.

// A test (or bench) of real processes and sockets: it reads the OS clock and starts threads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::time::Duration;

use common::{free_port, fresh_dir, run_hypermesh, run_trustchain, text, wait_for, Process};

/// How many `{"event": EVENT}` lines `node` printed.
fn events(node: &Process, event: &str) -> usize {
    node.probes().iter().filter(|p| p["event"] == event).count()
}

#[test]
fn a_node_cluster_renews_live_restarts_from_its_state_and_refuses_a_revoked_node() {
    let dir = fresh_dir("node-cluster");
    let state = dir.join("ca");
    let state_arg = state.to_str().unwrap();
    // Minute-long leaves issued at the current time (no back-dating): each node renews a quarter
    // of the way through, so every node renews within seconds, while connections live.
    let init = run_trustchain(&[
        "ca",
        "init",
        "--state",
        state_arg,
        "--leaf-lifetime",
        "1m",
        "--backdate",
        "0s",
    ]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let trust_dir = dir.join("trust");
    let install = run_trustchain(&[
        "ca",
        "install",
        "--state",
        state_arg,
        "--out",
        trust_dir.to_str().unwrap(),
    ]);
    assert!(install.status.success(), "{}", text(&install.stderr));
    let root = trust_dir.join("root.pem");
    let names = ["node-a.mesh", "node-b.mesh", "node-c.mesh"];
    let tokens: Vec<String> = names
        .iter()
        .map(|name| {
            let out = run_trustchain(&["token", "--state", state_arg, "--name", name, "--addr", "::1"]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout).trim().to_owned()
        })
        .collect();
    let ca_listen = format!("[::1]:{}", free_port());
    let serve = || {
        Process::start(
            env!("CARGO_BIN_EXE_trustchain"),
            &["serve", "--state", state_arg, "--listen", &ca_listen],
        )
    };
    let mut ca = serve();
    let ca_addr = ca.addr().to_string();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let node_state = |i: usize| dir.join(format!("node-{i}"));

    // A node; with a token the first time, without one when it restarts from its state.
    let start_node = |i: usize, token: Option<&str>| {
        let listen = format!("[::1]:{}", ports[i]);
        let seed = format!("[::1]:{}", ports[0]);
        let state = node_state(i);
        let mut args = vec![
            "node",
            "--listen",
            &listen,
            "--name",
            names[i],
            "--ca",
            &ca_addr,
            "--ca-root",
            root.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--renew-fraction",
            "0.25",
            "--trust-refresh",
            "1s",
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
    let mut nodes: Vec<Process> = (0..3).map(|i| start_node(i, Some(&tokens[i]))).collect();
    let ids: Vec<u64> = nodes.iter().map(Process::id).collect();
    let all_alive = |nodes: &[Process], among: &[usize]| {
        among.iter().all(|&i| {
            among
                .iter()
                .filter(|&&j| j != i)
                .all(|&j| nodes[i].state_of(ids[j]) == Some(0))
        })
    };

    // 1. The cluster forms over STOQ.
    wait_for(
        "every node to hold the other two alive",
        Duration::from_secs(60),
        || all_alive(&nodes, &[0, 1, 2]),
    );
    for node in &nodes {
        assert!(
            node.count("stoq_connected") >= 1,
            "membership ran over STOQ connections"
        );
        assert_eq!(node.count("stoq_refused"), 0);
    }

    // 2. Every node renews its leaf while its connections live: nobody is suspected for it.
    wait_for("every node to renew its leaf", Duration::from_secs(40), || {
        nodes.iter().all(|n| events(n, "renewed") >= 1)
    });
    assert!(all_alive(&nodes, &[0, 1, 2]), "a renewal disturbed membership");
    for node in &nodes {
        assert_eq!(node.count("stoq_refused"), 0, "a renewed chain was refused");
        let suspected = node.probes().iter().any(|p| p["probe"] == "member" && p["value"] != 0);
        assert!(!suspected, "a renewal made a member look failed");
    }

    // 3. A killed node is declared dead, restarts from its state directory without a token,
    //    keeps its identity, and rejoins.
    nodes[1].child.kill().unwrap();
    nodes[1].child.wait().unwrap();
    wait_for("the survivors to declare node b dead", Duration::from_secs(90), || {
        nodes[0].state_of(ids[1]) == Some(2) && nodes[2].state_of(ids[1]) == Some(2)
    });
    nodes[1] = start_node(1, None);
    assert_eq!(nodes[1].id(), ids[1], "the restarted node kept its certified identity");
    wait_for("node b to rejoin", Duration::from_secs(60), || {
        all_alive(&nodes, &[0, 1, 2])
    });

    // 4. The operator revokes node c (the CA is stopped for it: `serve` holds the state lock):
    //    at their next trust refresh the others close its connections and refuse it.
    drop(ca);
    let c_chain = node_state(2).join("node.chain.pem");
    let revoke = run_trustchain(&["revoke", "--state", state_arg, "--cert", c_chain.to_str().unwrap()]);
    assert!(revoke.status.success(), "{}", text(&revoke.stderr));
    ca = serve();
    wait_for("node c to learn it is revoked", Duration::from_secs(30), || {
        events(&nodes[2], "revoked") >= 1
    });
    wait_for(
        "nodes a and b to refuse node c and declare it dead",
        Duration::from_secs(90),
        || nodes[0].state_of(ids[2]) == Some(2) && nodes[1].state_of(ids[2]) == Some(2),
    );
    assert!(
        nodes[0].count("stoq_refused") + nodes[1].count("stoq_refused") >= 1,
        "the revoked node's connections were refused"
    );
    assert_eq!(
        nodes[0].state_of(ids[1]),
        Some(0),
        "a and b still hold each other alive"
    );
    assert_eq!(nodes[1].state_of(ids[0]), Some(0));
    drop(ca);
}

/// `hypermesh node` with `--listen LISTEN` and `extra` arguments, refused before it dials anything:
/// exit 2, and its message.
fn refused_node(listen: &str, extra: &[&str]) -> String {
    let mut args = vec!["node", "--listen", listen, "--name", "n.mesh", "--ca", "[::1]:8443"];
    args.extend(["--ca-root", "/nonexistent", "--token", "t"]);
    args.extend(extra);
    let out = run_hypermesh(&args);
    assert_eq!(out.status.code(), Some(2));
    text(&out.stderr)
}

#[test]
fn a_node_refuses_ipv4_and_unspecified_addresses_by_name() {
    let err = refused_node("0.0.0.0:7000", &[]);
    assert!(
        err.contains("--listen 0.0.0.0:7000 is an IPv4 address, and the node runs over IPv6 only"),
        "{err}"
    );
    let err = refused_node("[::]:7000", &[]);
    assert!(err.contains("--listen [::]:7000 is the unspecified address"), "{err}");
    let err = refused_node("[::1]:7000", &["--seed", "10.0.0.1:7000"]);
    assert!(
        err.contains("--seed 10.0.0.1:7000 is an IPv4 address: seeds are reached over IPv6 only"),
        "{err}"
    );
    let err = refused_node("[::1]:7000", &["--seed", "1"]);
    assert!(
        err.contains("--seed \"1\" is not an address and port: give a seed node's IPv6 address"),
        "{err}"
    );
    assert!(!err.contains("IPv4 address"), "{err}");
}

#[test]
fn the_address_a_refused_listen_suggests_is_one_the_node_accepts() {
    for (given, suggested) in [("127.0.0.1:7000", "[::1]:7000"), ("[::]:7000", "[::1]:7000")] {
        let err = refused_node(given, &[]);
        assert!(err.contains(&format!("--listen {suggested}")), "{given}: {err}");
        assert!(
            !err.contains("[::]:7000 or") && !err.contains("such as [::]"),
            "{given}: {err}"
        );
        // The suggestion passes every address check: the node gets as far as reading --ca-root.
        let err = refused_node(suggested, &[]);
        assert!(err.contains("--ca-root /nonexistent"), "{suggested}: {err}");
    }
}
