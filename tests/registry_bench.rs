//! `testbed bench registry` end to end, small: a real `hypermesh dev --api` (the operator's
//! binary, which `cargo test --workspace` builds beside `testbed`) seeded and loaded through its
//! API by a load process, reads of agents and statistics judged for staleness and every write
//! checked at the end.

// A test of real processes: it starts them and reads their output.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;
use std::process::{Command, ExitStatus};

use serde_json::Value;

/// A small load: 300 requests a second (30 of them writes) over 4 connections, 1 s of warm-up,
/// 2 measured.
const SMALL: [&str; 10] = [
    "--seconds",
    "2",
    "--warmup",
    "1",
    "--rate",
    "300",
    "--writes",
    "30",
    "--connections",
    "4",
];

/// `testbed bench registry --json` with `args` on the operator's binaries beside `testbed`:
/// its exit and its JSON line.
fn bench(args: &[&str]) -> (ExitStatus, Value) {
    let testbed = Path::new(env!("CARGO_BIN_EXE_testbed"));
    let bin_dir = testbed.parent().expect("a directory");
    assert!(
        bin_dir.join("hypermesh").is_file(),
        "the operator's binaries are not beside testbed in {}: run the workspace's tests (cargo test --workspace), which builds them",
        bin_dir.display()
    );
    let out = Command::new(testbed)
        .args(["bench", "registry", "--json", "--bin-dir"])
        .arg(bin_dir)
        .args(args)
        .output()
        .expect("testbed runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "not a JSON line ({e}): {line:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status, v)
}

#[test]
fn the_api_is_loaded_with_reads_and_writes_and_nothing_read_is_stale_or_lost() {
    let (status, v) = bench(&[&SMALL[..], &["--agents", "30"]].concat());
    assert!(status.success(), "exit {:?}: {v}", status.code());
    assert_eq!(
        (
            v["errors"].as_u64(),
            v["stale_reads"].as_u64(),
            v["lost_writes"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{v}"
    );
    // The load ran: 300 requests a second for the 2 measured seconds, writes among them
    // acknowledged, reads judged.
    assert_eq!(v["requests"].as_u64(), Some(600), "{v}");
    assert!(v["writes_acked"].as_u64().unwrap() >= 20, "{v}");
    assert!(v["reads_judged"].as_u64().unwrap() >= 200, "{v}");
    assert_eq!(v["duplicated_writes"].as_u64(), Some(0), "{v}");
    let (p50, p99) = (v["p50_ms"].as_f64().unwrap(), v["p99_ms"].as_f64().unwrap());
    assert!(p50 > 0.0 && p99 >= p50, "{v}");
    let hit_rate = v["cache_hit_rate"].as_f64().unwrap();
    assert!(hit_rate > 0.0 && hit_rate < 1.0, "writes invalidate, reads hit: {v}");
    assert!(v["node_cpu_pct"].as_f64().unwrap() > 0.0, "{v}");
}

/// The guide's original cache (invalidation that deletes nothing) on the same load: the check
/// sees the stale reads, and the bench fails.
#[test]
fn with_the_originals_cache_the_bench_sees_stale_reads_and_fails() {
    let (status, v) = bench(&[&SMALL[..], &["--agents", "10", "--cache-invalidation", "never"]].concat());
    assert_eq!(status.code(), Some(1), "{v}");
    assert!(v["stale_reads"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        v["lost_writes"].as_u64(),
        Some(0),
        "the writes are in the chain, only the answers were stale: {v}"
    );
}
