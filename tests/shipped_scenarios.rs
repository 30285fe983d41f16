//! Every shipped scenario, and every variant of one, passes under its default seed: the claims
//! the scenario files make (the guide's symptoms reproduced, and gone with the fix) hold on the
//! code as it is.

use std::process::Command;

#[test]
fn every_shipped_scenario_and_variant_passes() {
    let reports = std::env::temp_dir().join(format!("testbed-shipped-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["suite", "--dir", "scenarios", "--reports"])
        .arg(&reports)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("testbed runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "bootstrap ",
        "bootstrap:circular",
        "cert-rotation ",
        "cert-rotation:abrupt",
        "cert-validation-skew ",
        "cert-validation-skew:no-allowance",
        "cert-validation-skew:time-sync",
        "node-stack ",
    ] {
        assert!(stdout.contains(name), "{name} did not run:\n{stdout}");
    }
    let _ = std::fs::remove_dir_all(&reports);
}

/// A short swarm sweep on every change: 50 seeds of `swarm-membership`, each drawing its own mix
/// of crashes, partitions, pauses, clock jumps and loss bursts (TigerBeetle's VOPR on every
/// commit, in miniature). A failing seed is printed with the command that replays it.
#[test]
fn fifty_swarm_seeds_pass() {
    let reports = std::env::temp_dir().join(format!("testbed-swarm-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args([
            "sweep",
            "scenarios/swarm-membership.toml",
            "--seeds",
            "1..50",
            "--jobs",
            "2",
            "--reports",
        ])
        .arg(&reports)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("testbed runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("50/50 seeds passed"), "{stdout}");
    let _ = std::fs::remove_dir_all(&reports);
}
