//! The `testbed` binary as a user drives it: exit codes, the JSON summary, determinism across
//! processes.

use std::path::PathBuf;
use std::process::{Command, Output};

fn testbed(args: &[&str]) -> Output {
    // Reports go to a scratch directory, not the checkout's reports/out.
    let reports = std::env::temp_dir()
        .join(format!("testbed-cli-{}", std::process::id()))
        .join("reports");
    Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(args)
        .arg("--reports")
        .arg(reports)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("testbed runs")
}

fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("testbed-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_same_seed_repeats_bit_for_bit_across_processes_and_another_seed_differs() {
    let run = |seed: &str| {
        let out = testbed(&["run", "scenarios/partition-detection.toml", "--seed", seed, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
        last_json(&out)
    };
    let first = run("42");
    let second = run("42");
    let other = run("43");
    assert_eq!(first["trace_hash"], second["trace_hash"]);
    assert_eq!(first["events"], second["events"]);
    assert_ne!(first["trace_hash"], other["trace_hash"]);
    for key in [
        "scenario",
        "seed",
        "passed",
        "trace_hash",
        "events",
        "sim_seconds",
        "wall_seconds",
        "faults",
        "assertions",
    ] {
        assert!(first.get(key).is_some(), "summary lacks {key}");
    }
    let assertion = &first["assertions"][0];
    for key in ["name", "value", "threshold", "passed"] {
        assert!(assertion.get(key).is_some(), "assertion lacks {key}");
    }
    assert!(first["faults"]["partition"].as_u64() == Some(1));
    assert_eq!(first["trace_hash"].as_str().unwrap().len(), 32);
}

#[test]
fn a_malformed_scenario_exits_2_naming_file_and_line() {
    let path = scratch(
        "typo.toml",
        "duration = \"10s\"\n[nodes]\ncount = 3\n[workload]\nkind = \"membership\"\n[[fault]]\nat = \"1s\"\nkind = \"partiton\"\n",
    );
    let out = testbed(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:8: unknown fault kind \"partiton\"", path.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_partition_whose_sides_share_nodes_exits_2_naming_them_file_and_line() {
    let head = "duration = \"10s\"\n[nodes]\ncount = 40\n[workload]\nkind = \"membership\"\n\
                [[fault]]\nat = \"1s\"\nkind = \"partition\"\n";
    for (name, sides, named) in [
        (
            "overlap.toml",
            r#"["0..12", "10..40"]"#,
            "nodes 10 and 11 are on both sides",
        ),
        (
            "same.toml",
            r#"["0..10", "0..10"]"#,
            "nodes 0, 1, 2, 3, 4, 5, 6, 7, 8 and 9 are on both sides",
        ),
    ] {
        let path = scratch(name, &format!("{head}sides = {sides}\n"));
        let out = testbed(&["run", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{}:9: partition sides overlap: {named}", path.display())),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `testbed ARGS` with extra environment variables (and `RUST_LOG` unset unless given).
fn testbed_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let reports = std::env::temp_dir()
        .join(format!("testbed-cli-{}", std::process::id()))
        .join("reports");
    let mut command = Command::new(env!("CARGO_BIN_EXE_testbed"));
    command
        .args(args)
        .arg("--reports")
        .arg(reports)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("testbed runs")
}

#[test]
fn a_variants_expected_symptom_is_counted_not_logged_as_a_harness_error() {
    // Seed node 0 is IPv4-only: its STOQ transport cannot start. That is the symptom the
    // variant shows, counted in its figures; the harness itself did nothing wrong.
    let args = ["run", "scenarios/ipv6-only.toml", "--variant", "ipv4-seed"];
    let out = testbed_env(&args, &[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("[ok] stoq_setup_failures == 1 (measured 1)"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("ERROR"),
        "a simulated node's error reads as the harness's: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes on a stderr that is not a terminal: {stderr:?}"
    );
    // Asked for, the simulated nodes' log lines are there, still without colour codes.
    let out = testbed_env(&args, &[("RUST_LOG", "stoq=error")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("STOQ endpoint not started"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    // A RUST_LOG that is not a filter is bad input, said as such.
    let out = testbed_env(&args, &[("RUST_LOG", "stoq=loud")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("RUST_LOG"), "{stderr}");
}

#[test]
fn a_missing_file_and_a_bad_flag_exit_2() {
    assert_eq!(
        testbed(&["run", "scenarios/does-not-exist.toml"]).status.code(),
        Some(2)
    );
    assert_eq!(
        testbed(&["run", "scenarios/partition-detection.toml", "--seed", "forty-two"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_failing_assertion_exits_1_and_says_which() {
    let path = scratch(
        "strict.toml",
        "duration = \"5s\"\nassert = [\"join_converged_ms <= 0\", \"faults.crash == 0\"]\n[nodes]\ncount = 4\n[workload]\nkind = \"membership\"\nstart_spread = \"1s\"\n",
    );
    let out = testbed(&["run", path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let summary = last_json(&out);
    assert_eq!(summary["passed"], false);
    assert_eq!(summary["assertions"][0]["passed"], false);
    assert_eq!(summary["assertions"][1]["passed"], true);
}

#[test]
fn a_trace_file_holds_one_json_event_per_line() {
    let path = scratch(
        "small.toml",
        "duration = \"2s\"\n[nodes]\ncount = 3\n[workload]\nkind = \"membership\"\n",
    );
    let trace = path.with_extension("trace.jsonl");
    let out = testbed(&[
        "run",
        path.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&trace).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.len() > 10);
    assert!(events.iter().any(|e| e["kind"] == "deliver"));
    assert!(events.iter().any(|e| e["kind"] == "probe" && e["name"] == "joined"));
}

#[test]
fn a_node_whose_clock_is_beyond_clock_skew_max_is_refused_and_the_rest_form_a_cluster() {
    let path = scratch(
        "skew.toml",
        "duration = \"10s\"\nassert = [\"join_refused >= 1\", \"false_suspicions == 0\"]\n[nodes]\ncount = 6\n\
         [[nodes.group]]\nnodes = [5]\nclock_offset = \"45s\"\n[[nodes.group]]\nnodes = [1, 2]\nclock_offset = \"-14s\"\n\
         [workload]\nkind = \"membership\"\nseeds = 1\n",
    );
    let trace = path.with_extension("trace.jsonl");
    let out = testbed(&[
        "run",
        path.to_str().unwrap(),
        "--json",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let joined: Vec<u64> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "probe" && e["name"] == "joined")
        .map(|e| e["node"].as_u64().unwrap())
        .collect();
    // Nodes 1 and 2 are 14 s behind the seed, within clock_skew_max: they join. Node 5 is not.
    for node in [0, 1, 2, 3, 4] {
        assert!(joined.contains(&node), "node {node} did not join: {joined:?}");
    }
    assert!(!joined.contains(&5), "node 5 joined despite a 45 s clock skew");
    assert!(last_json(&out)["metrics"]["join_refused"].as_f64().unwrap() >= 1.0);
}

#[test]
fn a_sweep_lists_failing_seeds_with_the_command_that_replays_each() {
    let path = scratch(
        "sweep.toml",
        "duration = \"3s\"\nassert = [\"join_converged_ms <= 0\"]\n[nodes]\ncount = 4\n[workload]\nkind = \"membership\"\n",
    );
    let out = testbed(&[
        "sweep",
        path.to_str().unwrap(),
        "--seeds",
        "1..6",
        "--shard",
        "2/3",
        "--jobs",
        "2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    // With --json, stdout is pure JSON lines and the human listing goes to stderr.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("replay: testbed run {} --seed 2", path.display())),
        "{stderr}"
    );
    for line in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    let summary = last_json(&out);
    assert_eq!(summary["seeds"], 2, "shard 2/3 of 1..=6 is seeds 2 and 5");
    assert_eq!(summary["failed"], serde_json::json!([2, 5]));
    assert_eq!(
        testbed(&["sweep", path.to_str().unwrap(), "--seeds", "9..1"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn the_suite_writes_an_html_page_and_junit_and_logs_every_run() {
    let dir = std::env::temp_dir().join(format!("testbed-suite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    let ok = "duration = \"3s\"\nassert = [\"join_converged_ms <= 3000\"]\n[nodes]\ncount = 3\n[workload]\nkind = \"membership\"\n";
    std::fs::write(scenarios.join("a-ok.toml"), ok).unwrap();
    std::fs::write(scenarios.join("b-fails.toml"), ok.replace("<= 3000", "<= 0")).unwrap();
    std::fs::write(scenarios.join("c-bad.toml"), "duration = \"3s\"\n[nodes]\ncount = 0\n").unwrap();
    let reports = dir.join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["suite", "--dir"])
        .arg(&scenarios)
        .arg("--reports")
        .arg(&reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an invalid scenario makes the suite exit 2");
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"3\" failures=\"1\" errors=\"1\""), "{junit}");
    assert!(junit.contains("join_converged_ms &lt;= 0"), "{junit}");
    let page = std::fs::read_to_string(reports.join("index.html")).unwrap();
    assert_eq!(
        page.matches("<svg").count(),
        6,
        "three plots for each of the two scenarios that ran"
    );
    assert!(page.contains("class=\"fail\""), "the failing scenario is flagged");
    let runs = std::fs::read_to_string(reports.join("runs.jsonl")).unwrap();
    let runs: Vec<serde_json::Value> = runs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(runs.len(), 2);
    assert!(runs
        .iter()
        .all(|r| r["commit"].is_string() && r["trace_hash"].is_string()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn four_shards_cover_every_seed_once_and_their_merged_logs_make_one_report() {
    let dir = std::env::temp_dir().join(format!("testbed-shards-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Over links of 1–300 ms, joins converge in roughly 240–370 ms: about half the seeds pass.
    let path = scratch(
        "shards.toml",
        "duration = \"5s\"\nassert = [\"join_converged_ms <= 300\"]\n[nodes]\ncount = 4\n\
         [network]\nlatency = { kind = \"uniform\", min = \"1ms\", max = \"300ms\" }\n[workload]\nkind = \"membership\"\n",
    );
    let mut seen = Vec::new();
    let mut merged = String::new();
    for shard in 1..=4 {
        let logs = dir.join(format!("shard-{shard}"));
        let out = Command::new(env!("CARGO_BIN_EXE_testbed"))
            .args(["sweep", path.to_str().unwrap(), "--seeds", "1..10", "--json", "--shard"])
            .arg(format!("{shard}/4"))
            .arg("--reports")
            .arg(&logs)
            .output()
            .unwrap();
        let summary = last_json(&out);
        assert_eq!(summary["shard"], format!("{shard}/4"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in stdout.lines().filter(|l| l.contains("\"trace_hash\"")) {
            let run: serde_json::Value = serde_json::from_str(line).unwrap();
            seen.push(run["seed"].as_u64().unwrap());
        }
        merged.push_str(&std::fs::read_to_string(logs.join("runs.jsonl")).unwrap());
    }
    seen.sort();
    assert_eq!(
        seen,
        (1..=10).collect::<Vec<u64>>(),
        "the shards cover 1..=10 exactly once"
    );
    let merged_path = dir.join("merged.jsonl");
    std::fs::write(&merged_path, format!("{merged}{{\"truncated\n")).unwrap();
    let out_dir = dir.join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .arg("report")
        .arg(&merged_path)
        .arg("--reports")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("merged.jsonl:11:"),
        "the damaged line is named: {stderr}"
    );
    let page = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    let junit = std::fs::read_to_string(out_dir.join("junit.xml")).unwrap();
    assert!(page.contains("seeds passed"), "over-seeds summary");
    assert!(junit.contains("shards (10 seeds)"), "{junit}");
    let passed: usize = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find_map(|w| w.split_once("/10").and_then(|(p, _)| p.parse().ok()))
        .unwrap();
    assert!(
        (1..10).contains(&passed),
        "the sweep needs passing and failing seeds: {passed}/10 passed"
    );
    assert!(page.contains("--seed "), "failing seeds come with replay commands");
    assert!(page.contains("<svg"), "and the plots of a failing seed");
    assert!(junit.contains("seeds failed"), "{junit}");
    let bad = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["report", "/nonexistent/runs.jsonl"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent/runs.jsonl"));
}

#[test]
fn shrink_prints_a_smaller_scenario_that_fails_alike_and_refuses_a_passing_seed() {
    // Node 5 crashes for good: declaring it dead takes seconds, not the 1 s asserted. The swarm's
    // clock jumps and light loss bursts are noise the shrinker must remove.
    let path = scratch(
        "to-shrink.toml",
        "duration = \"40s\"\nassert = [\"death_ms_max <= 1000\"]\n[nodes]\ncount = 12\n[network]\nlatency = \"2ms\"\n\
         [workload]\nkind = \"membership\"\nsettle = \"5s\"\n[swarm]\nwindow = [\"5s\", \"25s\"]\nclock_jumps = [2, 3]\n\
         clock_jump_max = \"2s\"\nloss_bursts = [1, 2]\nloss = [0.01, 0.03]\n[[fault]]\nat = \"10s\"\nkind = \"crash\"\nnodes = [5]\n",
    );
    let out = testbed(&["shrink", path.to_str().unwrap(), "--seed", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("faults 6 -> 1"), "{stderr}");
    let shrunk = scratch("shrunk.toml", &String::from_utf8_lossy(&out.stdout));
    let replay = testbed(&["run", shrunk.to_str().unwrap(), "--json"]);
    assert_eq!(replay.status.code(), Some(1), "the printed scenario fails when run");
    let summary = last_json(&replay);
    assert_eq!(summary["faults"]["crash"], 1);
    assert!(summary["faults"].get("clock_jump").is_none(), "{}", summary["faults"]);
    assert_eq!(summary["seed"], 3, "the seed is the printed scenario's default");

    let passing = testbed(&["shrink", "scenarios/partition-detection.toml", "--seed", "42"]);
    assert_eq!(passing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&passing.stderr).contains("passes under seed 42"));
}

#[test]
fn a_fault_following_closely_does_not_erase_the_death_still_due_from_an_earlier_one() {
    // Node 5 crashes at 10 s; an unrelated pause 1 s later opens a new episode long before
    // anyone may declare node 5 dead. Its death must still be timed, from the crash.
    let path = scratch(
        "overlap.toml",
        "duration = \"40s\"\nassert = [\"death_ms_max <= 20000\", \"undeclared_pairs == 0\"]\n[nodes]\ncount = 12\n\
         [network]\nlatency = \"2ms\"\n[workload]\nkind = \"membership\"\nsettle = \"5s\"\n\
         [[fault]]\nat = \"10s\"\nkind = \"crash\"\nnodes = [5]\n[[fault]]\nat = \"11s\"\nkind = \"pause\"\nnodes = [7]\nduration = \"200ms\"\n",
    );
    let out = testbed(&["run", path.to_str().unwrap(), "--json"]);
    let summary = last_json(&out);
    assert_eq!(out.status.code(), Some(0), "{}", summary["assertions"]);
    let death = summary["metrics"]["death_ms_max"].as_f64().expect("death measured");
    assert!(death > 1000.0, "timed from the crash, not from the pause: {death}");
}

const TRUSTCHAIN_WITH_VARIANT: &str = r#"duration = "2m"
assert = ["nodes_enrolled == 4", "handshake_failures == 0", "handshakes >= 10"]
[nodes]
count = 4
[workload]
kind = "trustchain"
[trustchain]
handshake_interval = "10s"
[[variant]]
name = "circular"
description = "the CA waits for certified members first"
set = ["trustchain.quorum_before_issuing=2"]
assert = ["nodes_enrolled == 0", "enroll_refusals > 0"]
"#;

#[test]
fn a_variant_runs_by_name_with_its_settings_and_assertions_and_the_suite_runs_every_variant() {
    let path = scratch("tc-variant.toml", TRUSTCHAIN_WITH_VARIANT);
    let path = path.to_str().unwrap();
    let base = testbed(&["run", path, "--json"]);
    assert_eq!(base.status.code(), Some(0), "{}", String::from_utf8_lossy(&base.stdout));
    assert_eq!(last_json(&base)["scenario"], "tc-variant");
    let variant = testbed(&["run", path, "--variant", "circular", "--json"]);
    assert_eq!(
        variant.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&variant.stdout)
    );
    let summary = last_json(&variant);
    assert_eq!(summary["scenario"], "tc-variant:circular");
    assert_eq!(summary["variant"], "circular");
    assert_eq!(summary["assertions"][0]["name"], "nodes_enrolled");
    let missing = testbed(&["run", path, "--variant", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no variant \"nope\"") && err.contains("circular"), "{err}");

    let dir = std::env::temp_dir().join(format!("testbed-variants-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("scenarios")).unwrap();
    std::fs::write(dir.join("scenarios/tc.toml"), TRUSTCHAIN_WITH_VARIANT).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["suite", "--dir"])
        .arg(dir.join("scenarios"))
        .arg("--reports")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let junit = std::fs::read_to_string(dir.join("out/junit.xml")).unwrap();
    assert!(junit.contains("tests=\"2\" failures=\"0\""), "{junit}");
    assert!(junit.contains("tc:circular"), "{junit}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_variant_is_reported_at_its_line() {
    let text = TRUSTCHAIN_WITH_VARIANT.replace("\"nodes_enrolled == 0\"", "\"nodes_enroled == 0\"");
    let path = scratch("tc-bad-variant.toml", &text);
    let out = testbed(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tc-bad-variant.toml:13:") && err.contains("nodes_enroled"),
        "{err}"
    );
}

#[test]
fn a_trustchain_run_repeats_bit_for_bit_across_processes() {
    let hash = |seed: &str| {
        let out = testbed(&["run", "scenarios/bootstrap.toml", "--seed", seed, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
        last_json(&out)["trace_hash"].as_str().unwrap().to_string()
    };
    let first = hash("7");
    assert_eq!(first, hash("7"));
    assert_ne!(first, hash("8"));
}

#[test]
fn a_stoq_run_repeats_bit_for_bit_across_processes() {
    // Every QUIC and TLS random draw (connection IDs, client/server randoms, X25519 keys, reset
    // and token keys) follows the seed: two processes, with differently keyed std hash maps,
    // hash the same events.
    let run = |seed: &str| {
        let out = testbed(&["run", "scenarios/ipv6-only.toml", "--seed", seed, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
        let summary = last_json(&out);
        assert!(
            summary["metrics"]["stoq_handshakes"].as_f64().unwrap() >= 56.0,
            "{summary}"
        );
        summary["trace_hash"].as_str().unwrap().to_string()
    };
    let first = run("7");
    assert_eq!(first, run("7"));
    assert_ne!(first, run("8"));
}

#[test]
fn stoq_ceiling_blasts_plain_udp_over_loopback_and_reports_both_ends() {
    let out = testbed(&["stoq", "ceiling", "--bytes", "64MiB", "--segments", "10", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["case"], "udp_gso_loopback");
    assert_eq!(line["bytes"].as_u64(), Some(64 << 20));
    assert_eq!(line["datagram_bytes"].as_u64(), Some(1452));
    assert!(
        line["segments"].as_u64().is_some_and(|s| (1..=10).contains(&s)),
        "{line}"
    );
    assert!(line["sent_mib_s"].as_f64().unwrap() > 0.0, "{line}");
    assert!(line["received_mib_s"].as_f64().unwrap() > 0.0, "{line}");
    let loss = line["loss"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&loss), "{line}");
    let too_many = testbed(&["stoq", "ceiling", "--segments", "46"]);
    assert_eq!(too_many.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&too_many.stderr).contains("--segments"));
}

#[test]
fn stoq_bench_prints_one_json_line_per_case_with_both_stacks_the_pairwise_ratios_and_cpu() {
    let out = testbed(&["stoq", "bench", "--bytes", "4MiB", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cases: Vec<&str> = lines.iter().map(|l| l["case"].as_str().unwrap()).collect();
    assert_eq!(
        cases,
        [
            "one_connection",
            "one_connection_plaintext",
            "2_connections",
            "one_connection_io_uring"
        ]
    );
    let f = |l: &serde_json::Value, k: &str| l[k].as_f64().unwrap_or_else(|| panic!("{k} in {l}"));
    for l in &lines {
        assert!(f(l, "stoq_mib_s") > 0.0 && f(l, "quinn_mib_s") > 0.0, "{l}");
        // The ratio is the median of five pairs, so it lies within them.
        assert!(
            f(l, "ratio_min") <= f(l, "ratio") && f(l, "ratio") <= f(l, "ratio_max"),
            "{l}"
        );
        assert!(
            f(l, "stoq_cpu_s_per_gib") > 0.0 && f(l, "quinn_cpu_s_per_gib") > 0.0,
            "{l}"
        );
        // A verdict only where every pair agrees.
        let expected = if f(l, "ratio_min") > 1.0 {
            "stoq_faster"
        } else if f(l, "ratio_max") < 1.0 {
            "quinn_faster"
        } else {
            "undecided"
        };
        assert_eq!(l["verdict"].as_str(), Some(expected), "{l}");
        assert_eq!(l["pairs"].as_u64(), Some(5));
        assert_eq!(l["bytes"].as_u64(), Some(4 << 20));
    }
    let uring = &lines[3];
    assert!(
        f(uring, "default_mib_s") > 0.0 && f(uring, "default_cpu_s_per_gib") > 0.0,
        "{uring}"
    );
    assert!(
        f(uring, "driver_ratio_min") <= f(uring, "driver_ratio")
            && f(uring, "driver_ratio") <= f(uring, "driver_ratio_max")
    );
    let one = testbed(&[
        "stoq",
        "bench",
        "--bytes",
        "1MiB",
        "--case",
        "one_connection_plaintext",
        "--json",
    ]);
    assert_eq!(one.status.code(), Some(0), "{}", String::from_utf8_lossy(&one.stderr));
    let cases: Vec<serde_json::Value> = String::from_utf8_lossy(&one.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["case"], "one_connection_plaintext");
    let unknown = testbed(&["stoq", "bench", "--case", "one_conection"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--case one_conection: no such case"));
    let few = testbed(&["stoq", "bench", "--pairs", "4"]);
    assert_eq!(few.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&few.stderr).contains("--pairs"));
    let bad = testbed(&["stoq", "bench", "--bytes", "1GB"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown unit `GB`"));
}
