//! `benches/simspeed.sh` as a user runs it, at a tiny size: all three simulators build, run the
//! workload and deliver exactly N·(N−1)·10·D datagrams, and the ratios line is printed. (The
//! speed figures themselves are measured by hand; a timed assertion here would be noise.)

use std::process::Command;

#[test]
fn the_simspeed_script_runs_all_three_simulators_and_each_delivers_every_datagram() {
    let out = Command::new("bash")
        .arg("benches/simspeed.sh")
        .args(["5", "1"])
        .env("SIMSPEED_TESTBED_BIN", env!("CARGO_BIN_EXE_testbed"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for (line, sim) in lines.iter().zip(["testbed", "turmoil", "madsim"]) {
        assert_eq!(line["sim"], sim);
        assert_eq!(line["expected"], 5 * 4 * 10, "{line}");
        assert_eq!(line["delivered"], line["expected"], "{line}");
        assert!(line["delivered_per_wall_second"].as_f64().unwrap() > 0.0);
    }
    assert!(lines[3]["ratio_vs_turmoil"].as_f64().is_some(), "{}", lines[3]);
    assert!(lines[3]["ratio_vs_madsim"].as_f64().is_some(), "{}", lines[3]);

    let usage = Command::new("bash")
        .arg("benches/simspeed.sh")
        .arg("1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}
