//! The HTML report as a person sees it: opened in a real browser (headless Chromium), every plot
//! is laid out at full size, its series are drawn as lines of real length, its fault windows are
//! shaded and its labels are rendered as text.
//!
//! Without Chromium on the machine the test says so and passes, so `cargo test` works on a fresh
//! machine with only Rust; CI (`.ci/run`) installs Chromium and sets `TESTBED_REQUIRE_BROWSER=1`,
//! which turns a missing browser into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// What the page measures of itself once the browser has laid it out.
const MEASURE: &str = r##"<script>
const svgs = [...document.querySelectorAll("svg")];
const result = {
  svgs: svgs.length,
  full_size: svgs.filter(s => { const b = s.getBoundingClientRect(); return b.width >= 900 && b.height >= 250; }).length,
  series_drawn: [...document.querySelectorAll("svg polyline")]
    .filter(p => p.getAttribute("stroke-width") === "2" && p.getTotalLength() > 20).length,
  shaded: [...document.querySelectorAll("svg rect")]
    .filter(r => r.getAttribute("fill") === "#FFA500" && r.getBoundingClientRect().width > 1).length,
  text_rendered: [...document.querySelectorAll("svg text")].filter(t => t.getComputedTextLength() > 0).length,
  text_total: document.querySelectorAll("svg text").length,
  rows: document.querySelectorAll("tr").length,
};
const out = document.createElement("pre");
out.id = "measured";
out.textContent = JSON.stringify(result);
document.body.appendChild(out);
</script>"##;

fn measure(browser: &Path, page: &Path) -> serde_json::Value {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = page.with_file_name("measured.html");
    std::fs::write(&probe, html.replace("</body>", &format!("{MEASURE}</body>"))).unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", probe.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"measured\">").unwrap_or_else(|| {
        panic!(
            "the page's script did not run: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    }) + "<pre id=\"measured\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    serde_json::from_str(&dom[start..end]).unwrap()
}

#[test]
fn the_suite_report_renders_in_chromium_with_plots_lines_shading_and_labels() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("TESTBED_REQUIRE_BROWSER").is_none(),
            "TESTBED_REQUIRE_BROWSER is set but no chromium is on PATH"
        );
        eprintln!("skipped: no chromium on PATH (CI installs it)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("testbed-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::write(
        scenarios.join("cut.toml"),
        "duration = \"20s\"\nassert = [\"false_deaths == 0\"]\n[nodes]\ncount = 6\n[workload]\nkind = \"membership\"\n\
         [[fault]]\nat = \"5s\"\nkind = \"partition\"\nsides = [\"0..4\", \"4..6\"]\nduration = \"8s\"\n",
    )
    .unwrap();
    std::fs::write(
        scenarios.join("quiet.toml"),
        "duration = \"10s\"\nassert = [\"join_converged_ms <= 1\"]\n[nodes]\ncount = 4\n[workload]\nkind = \"membership\"\n",
    )
    .unwrap();
    let reports = dir.join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["suite", "--dir"])
        .arg(&scenarios)
        .arg("--reports")
        .arg(&reports)
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(1), "quiet.toml fails by design");

    let m = measure(&browser, &reports.join("index.html"));
    let svgs = m["svgs"].as_u64().unwrap();
    assert_eq!(svgs, 6, "three plots per scenario: {m}");
    assert_eq!(m["full_size"], svgs, "every plot laid out at full size: {m}");
    assert!(
        m["series_drawn"].as_u64().unwrap() >= svgs,
        "every plot draws its series: {m}"
    );
    assert_eq!(
        m["shaded"], 3,
        "the partition window is shaded on each of cut's plots: {m}"
    );
    assert_eq!(m["text_rendered"], m["text_total"], "every label renders: {m}");
    assert!(m["rows"].as_u64().unwrap() >= 5, "summary and assertion tables: {m}");
    let _ = std::fs::remove_dir_all(&dir);
}
