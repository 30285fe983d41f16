//! Three `hypermesh node` processes on [::1] enroll with a `trustchain serve` CA over
//! HTTPS, form a cluster over STOQ (QUIC with mutual TLS on their TrustChain leaves), and detect
//! one of them being killed.

// A test (or bench) of real processes and sockets: it reads the OS clock and starts threads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ca_with_trust, fresh_dir, run_hypermesh, run_trustchain, text};
use serde_json::Value;

/// A child process whose stdout lines are collected; killed when dropped.
struct Process {
    child: Child,
    first_line: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `binary` (the path of `trustchain` or `hypermesh`) with `args`.
    fn start(binary: &str, args: &[&str]) -> Process {
        let mut child = Command::new(binary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        reader.read_line(&mut first_line).unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in reader.lines() {
                match line {
                    Ok(l) => sink.lock().unwrap().push(l),
                    Err(_) => break,
                }
            }
        });
        Process {
            child,
            first_line,
            lines,
        }
    }

    /// The address after "listening on " (and "https://").
    fn addr(&self) -> SocketAddr {
        self.first_line
            .strip_prefix("listening on ")
            .map(|rest| rest.trim_start_matches("https://"))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {:?}", self.first_line))
            .parse()
            .unwrap()
    }

    /// The membership id after "(id ".
    fn id(&self) -> u64 {
        let at = self.first_line.find("(id ").expect("an id") + 4;
        self.first_line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn probes(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The last state (0 alive, 1 suspect, 2 dead) this node recorded for member `id`.
    fn state_of(&self, id: u64) -> Option<i64> {
        self.probes()
            .iter()
            .rfind(|p| p["probe"] == "member" && p["subject"].as_u64() == Some(id))
            .and_then(|p| p["value"].as_i64())
    }

    fn count(&self, name: &str) -> usize {
        self.probes().iter().filter(|p| p["probe"] == name).count()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_node_processes_form_a_cluster_over_mutual_tls_and_detect_a_killed_one() {
    let dir = fresh_dir("node-cluster");
    let (state, root) = ca_with_trust(&dir);
    let state_arg = state.to_str().unwrap();
    let names = ["node-a.mesh", "node-b.mesh", "node-c.mesh"];
    let tokens: Vec<String> = names
        .iter()
        .map(|name| {
            let out = run_trustchain(&["token", "--state", state_arg, "--name", name, "--addr", "::1"]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout).trim().to_owned()
        })
        .collect();
    let ca = Process::start(
        env!("CARGO_BIN_EXE_trustchain"),
        &["serve", "--state", state_arg, "--listen", "[::1]:0"],
    );
    let ca_addr = ca.addr().to_string();

    let start_node = |i: usize, seed: Option<&str>| {
        let node_state = dir.join(format!("node-{i}"));
        let mut args = vec![
            "node",
            "--listen",
            "[::1]:0",
            "--name",
            names[i],
            "--ca",
            &ca_addr,
            "--ca-root",
            root.to_str().unwrap(),
            "--token",
            &tokens[i],
            "--state",
            node_state.to_str().unwrap(),
        ];
        if let Some(seed) = seed {
            args.extend(["--seed", seed]);
        }
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        Process::start(env!("CARGO_BIN_EXE_hypermesh"), &refs)
    };
    let first = start_node(0, None);
    let seed = first.addr().to_string();
    let nodes = [first, start_node(1, Some(&seed)), start_node(2, Some(&seed))];
    let ids: Vec<u64> = nodes.iter().map(Process::id).collect();

    wait_for(
        "every node to hold the other two alive",
        Duration::from_secs(60),
        || (0..3).all(|i| (0..3).filter(|&j| j != i).all(|j| nodes[i].state_of(ids[j]) == Some(0))),
    );
    for node in &nodes {
        assert!(
            node.count("stoq_connected") >= 1,
            "membership ran over STOQ connections"
        );
        assert_eq!(node.count("stoq_refused"), 0);
    }

    let [a, b, mut c] = nodes;
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    let start = Instant::now();
    while !(a.state_of(ids[2]) == Some(2) && b.state_of(ids[2]) == Some(2)) {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the survivors did not declare the killed node {} dead within 90 s; node a saw: {:?}",
            ids[2],
            a.lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(a.state_of(ids[1]), Some(0), "the survivors still hold each other alive");
    assert_eq!(b.state_of(ids[0]), Some(0));
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
        err.contains("--listen is the IPv4 address 0.0.0.0:7000: STOQ is IPv6-only"),
        "{err}"
    );
    let err = refused_node("[::]:7000", &[]);
    assert!(err.contains("unspecified"), "{err}");
    let err = refused_node("[::1]:7000", &["--seed", "10.0.0.1:7000"]);
    assert!(err.contains("--seed 1 is the IPv4 address 10.0.0.1:7000"), "{err}");
}
