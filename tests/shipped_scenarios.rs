//! Every shipped scenario, and every variant of one, passes under its default seed: the claims
//! the scenario files make (the guide's symptoms reproduced, and gone with the fix) hold on the
//! code as it is.

use std::path::PathBuf;
use std::process::Command;

/// Runs `testbed ARGS --reports DIR` from the repository root (a fresh DIR named `label`),
/// asserts it exits 0, and returns its stdout; the reports are removed.
fn testbed_passes(label: &str, args: &[&str]) -> String {
    let reports: PathBuf = std::env::temp_dir().join(format!("testbed-{label}-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(args)
        .arg("--reports")
        .arg(&reports)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("testbed runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&reports);
    stdout
}

#[test]
fn every_shipped_scenario_and_variant_passes() {
    let stdout = testbed_passes("shipped", &["suite", "--dir", "scenarios"]);
    for name in [
        "bootstrap ",
        "bootstrap:circular",
        "byzantine-equivocation ",
        "byzantine-false-positives ",
        "byzantine-false-positives:aggressive",
        "byzantine-twins ",
        "cert-rotation ",
        "cert-rotation:abrupt",
        "cert-validation-skew ",
        "cert-validation-skew:no-allowance",
        "cert-validation-skew:time-sync",
        "consensus-basic ",
        "consensus-basic:seven",
        "consensus-cpu ",
        "consensus-cpu:naive",
        "membership-slanderer ",
        "node-stack ",
        "swarm-consensus ",
    ] {
        assert!(stdout.contains(name), "{name} did not run:\n{stdout}");
    }
}

/// Sweeps seeds 1-50 of `scenario` (`label` names its reports), asserts every seed passed, and
/// returns each fault kind's count and each of `metrics` summed over the seeds.
fn fifty_seeds_pass(label: &str, scenario: &str, metrics: &[&str]) -> std::collections::BTreeMap<String, f64> {
    let stdout = testbed_passes(label, &["sweep", scenario, "--seeds", "1..50", "--jobs", "2", "--json"]);
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains("\"passed\":50"), "{summary}");
    let mut seen = std::collections::BTreeMap::<String, f64>::new();
    for line in stdout.lines().filter(|l| l.contains("\"faults\"")) {
        let run: serde_json::Value = serde_json::from_str(line).expect("a JSON run line");
        for (kind, n) in run["faults"].as_object().expect("faults").iter() {
            *seen.entry(kind.clone()).or_default() += n.as_f64().unwrap_or(0.0);
        }
        for metric in metrics {
            *seen.entry(metric.to_string()).or_default() += run["metrics"][metric].as_f64().unwrap_or(0.0);
        }
    }
    seen
}

/// A short swarm sweep on every change: 50 seeds of `swarm-membership`, each drawing its own mix
/// of crashes, partitions, pauses, clock jumps and loss bursts (TigerBeetle's VOPR on every
/// commit, in miniature). A failing seed is printed with the command that replays it.
#[test]
fn fifty_swarm_seeds_pass() {
    // Green must not mean that nothing happened: over these seeds the storage faults were
    // reached (a crash between a write and its sync tears or loses it) and survived.
    let seen = fifty_seeds_pass("swarm", "scenarios/swarm-membership.toml", &[]);
    for kind in [
        "crash_at_io",
        "torn_write",
        "unsynced_write_lost",
        "writeback_lost",
        "bit_rot",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0.0) > 0.0,
            "no {kind} in 50 swarm seeds: {seen:?}"
        );
    }
}

/// 50 seeds of `swarm-consensus` on every change, as for membership: each draws its own mix of
/// validator crashes, partitions, pauses, loss bursts and up to f adversaries, and every seed
/// must keep the replicas safe, mark no honest validator, and commit new heights once the
/// faults stop.
#[test]
fn fifty_consensus_swarm_seeds_pass() {
    // Green must not mean that nothing happened: validators crashed and restarted, partitions
    // cut messages, adversaries acted and were detected, and the view changes they forced were
    // survived.
    let seen = fifty_seeds_pass(
        "swarm-consensus",
        "scenarios/swarm-consensus.toml",
        &["view_changes", "byzantine_validators", "byzantine_detected"],
    );
    for kind in [
        "crash",
        "restart",
        "partition_drop",
        "message_loss",
        "view_changes",
        "byzantine_validators",
        "byzantine_detected",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0.0) > 0.0,
            "no {kind} in 50 swarm seeds: {seen:?}"
        );
    }
}
