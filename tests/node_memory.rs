//! `testbed node memory` end to end, small: a real CA and `hypermesh node` (the operator's
//! binaries, which `cargo test --workspace` builds beside `testbed`) with a dozen certified peers.

// A test of real processes: it starts them and reads their output.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn node_memory(args: &[&str]) -> Output {
    let testbed = Path::new(env!("CARGO_BIN_EXE_testbed"));
    let bin_dir = testbed.parent().expect("a directory");
    assert!(
        bin_dir.join("hypermesh").is_file() && bin_dir.join("trustchain").is_file(),
        "the operator's binaries are not beside testbed in {}: run the workspace's tests (cargo test --workspace), which builds them",
        bin_dir.display()
    );
    Command::new(testbed)
        .args(["node", "memory", "--json", "--bin-dir"])
        .arg(bin_dir)
        .args(args)
        .output()
        .expect("testbed runs")
}

fn summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "not a JSON line ({e}): {line:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_node_holding_every_peer_is_measured_and_judged_against_the_limit() {
    let out = node_memory(&["--members", "12", "--hold", "2s", "--join-rate", "50"]);
    let v = summary(&out);
    assert!(out.status.success(), "exit {:?}: {v}", out.status.code());
    assert_eq!(v["members"], 12);
    assert_eq!(v["alive"], 12, "the node held every peer alive: {v}");
    assert!(v["connections"].as_i64().unwrap() >= 11, "a connection per peer: {v}");
    let (rss, hwm) = (v["rss_mb"].as_f64().unwrap(), v["hwm_mb"].as_f64().unwrap());
    assert!(rss > 1.0 && hwm >= rss_end(&v), "memory was read: {v}");
    assert_eq!(v["within_limit"], true);
    assert!(v["hold_s"].as_f64().unwrap() >= 2.0);

    // The same node over a limit it cannot meet: measured, and exit 1.
    let out = node_memory(&["--members", "3", "--hold", "1s", "--limit-mb", "1"]);
    let v = summary(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(
        (v["alive"].as_u64(), v["within_limit"].as_bool()),
        (Some(3), Some(false))
    );
}

fn rss_end(v: &Value) -> f64 {
    v["rss_mb_end"].as_f64().unwrap()
}

#[test]
fn a_view_of_the_node_alone_is_refused_before_anything_starts() {
    let out = node_memory(&["--members", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--members"), "{stderr}");
}

#[test]
fn a_directory_holding_anything_is_refused_and_left_as_it_was() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node-memory-not-empty");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let out = node_memory(&["--members", "3", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("keep.txt")).unwrap(), "mine");
}
