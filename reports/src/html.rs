//! The HTML report: per scenario, its verdict, its assertions, and SVG plots of series over
//! simulated time with the fault windows shaded, so cause and effect show at a glance.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{escape, ReportError, SeedSummary};

/// A named line of (simulated seconds, value) points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points in time order.
    pub points: Vec<(f64, f64)>,
}

/// One chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plot {
    /// Title above it.
    pub title: String,
    /// What the y axis measures.
    pub y_label: String,
    /// Its lines.
    pub series: Vec<Series>,
}

/// A span of simulated time during which a fault was in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Start, simulated seconds.
    pub start: f64,
    /// End, simulated seconds.
    pub end: f64,
    /// What it was.
    pub label: String,
}

/// One assertion row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `metric op threshold`.
    pub assertion: String,
    /// The measured value, formatted.
    pub measured: String,
    /// Whether it held.
    pub passed: bool,
}

/// Everything shown for one scenario run.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// Scenario name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// Verdict.
    pub passed: bool,
    /// Simulated length, seconds.
    pub duration_s: f64,
    /// Determinism fingerprint.
    pub trace_hash: String,
    /// Assertion rows.
    pub rows: Vec<Row>,
    /// Charts.
    pub plots: Vec<Plot>,
    /// Fault windows, shaded on every chart.
    pub windows: Vec<Window>,
    /// When the scenario ran under several seeds: the over-seeds figures.
    pub seeds: Option<SeedSummary>,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];
const WINDOW_FILL: RGBColor = RGBColor(255, 165, 0);

/// Renders `plot` as an SVG document `width` × `height` pixels.
pub fn render_plot(plot: &Plot, windows: &[Window], duration_s: f64, width: u32, height: u32) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        // Drawing into a string cannot fail for I/O reasons; a failed draw leaves a blank chart
        // rather than losing the report.
        let _ = draw(&root, plot, windows, duration_s);
        let _ = root.present();
    }
    svg
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    plot: &Plot,
    windows: &[Window],
    duration_s: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let y_max = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(&plot.title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..duration_s.max(1e-9), 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("simulated seconds")
        .y_desc(&plot.y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for w in windows {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(w.start.max(0.0), 0.0), (w.end.min(duration_s), y_max)],
            WINDOW_FILL.mix(0.18).filled(),
        )))?;
    }
    for (i, s) in plot.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))?
            .label(&s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// The whole page.
pub fn render_index(title: &str, sections: &[Section]) -> String {
    let mut html = String::new();
    let passed = sections.iter().filter(|s| s.passed).count();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin:.5em 0}}\
         td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}} .pass{{color:#2a7}} .fail{{color:#c22;font-weight:bold}}\
         .legend{{background:rgba(255,165,0,.25);padding:0 .4em}} svg{{display:block;margin:.5em 0}}</style></head><body>\n\
         <h1>{t}</h1><p>{passed} of {n} scenario(s) passed. <span class=\"legend\">Shaded</span>: fault windows.</p>\n",
        t = escape(title),
        n = sections.len()
    );
    html.push_str("<table><tr><th>scenario</th><th>seed(s)</th><th>result</th><th>trace hash (shown run)</th></tr>\n");
    for s in sections {
        let seeds = match &s.seeds {
            None => format!("seed {}", s.seed),
            Some(m) => format!("{} of {} passed", m.passed, m.seeds),
        };
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#{id}\">{n}</a></td><td>{seeds}</td><td class=\"{c}\">{r}</td><td><code>{h}</code></td></tr>",
            id = escape(&s.name),
            n = escape(&s.name),
            c = if s.passed { "pass" } else { "fail" },
            r = if s.passed { "passed" } else { "FAILED" },
            h = escape(&s.trace_hash)
        );
    }
    html.push_str("</table>\n");
    for s in sections {
        match &s.seeds {
            None => {
                let _ = writeln!(html, "<h2 id=\"{0}\">{0} (seed {1})</h2>", escape(&s.name), s.seed);
            }
            Some(m) => {
                let _ = writeln!(html, "<h2 id=\"{0}\">{0} ({1} seeds)</h2>", escape(&s.name), m.seeds);
                render_seeds(&mut html, m);
                let _ = writeln!(html, "<h3>Seed {}</h3>", s.seed);
            }
        }
        html.push_str("<table><tr><th>assertion</th><th>measured</th><th></th></tr>\n");
        for r in &s.rows {
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&r.assertion),
                escape(&r.measured),
                if r.passed { "pass" } else { "fail" },
                if r.passed { "ok" } else { "FAIL" }
            );
        }
        html.push_str("</table>\n");
        if !s.windows.is_empty() {
            let faults: Vec<String> = s
                .windows
                .iter()
                .map(|w| format!("{} ({:.1}–{:.1} s)", escape(&w.label), w.start, w.end))
                .collect();
            let _ = writeln!(html, "<p>Faults: {}</p>", faults.join(", "));
        }
        for plot in &s.plots {
            html.push_str(&render_plot(plot, &s.windows, s.duration_s, 1000, 280));
            html.push('\n');
        }
    }
    html.push_str("</body></html>\n");
    html
}

/// Failing seeds listed in full up to this many; the rest are counted.
const FAILING_SEEDS_LISTED: usize = 50;

fn render_seeds(html: &mut String, m: &SeedSummary) {
    let _ = write!(html, "<p>{} of {} seeds passed", m.passed, m.seeds);
    match m.commits.as_slice() {
        [] => {}
        [one] => {
            let _ = write!(html, " (commit <code>{}</code>)", escape(one));
        }
        many => {
            let _ = write!(
                html,
                " <span class=\"fail\">from {} different commits</span>: {}",
                many.len(),
                many.iter()
                    .map(|c| format!("<code>{}</code>", escape(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    html.push_str(".</p>\n");
    if !m.failing.is_empty() {
        html.push_str("<table><tr><th>failing seed</th><th>what failed</th><th>replay</th></tr>\n");
        for (seed, why, replay) in m.failing.iter().take(FAILING_SEEDS_LISTED) {
            let _ = writeln!(
                html,
                "<tr><td>{seed}</td><td>{}</td><td><code>{}</code></td></tr>",
                escape(why),
                escape(replay)
            );
        }
        html.push_str("</table>\n");
        if m.failing.len() > FAILING_SEEDS_LISTED {
            let _ = writeln!(
                html,
                "<p>… and {} more failing seeds.</p>",
                m.failing.len() - FAILING_SEEDS_LISTED
            );
        }
    }
    if !m.spread.is_empty() {
        html.push_str(
            "<table><tr><th>metric over seeds</th><th>seeds measured</th><th>min</th><th>median</th><th>p99</th><th>max</th></tr>\n",
        );
        for d in &m.spread {
            let v = |x: f64| crate::format_value(Some(x));
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&d.metric),
                d.measured,
                v(d.min),
                v(d.median),
                v(d.p99),
                v(d.max)
            );
        }
        html.push_str("</table>\n");
    }
}

/// Writes the page to `path`, creating its directory.
pub fn write_index(path: &Path, title: &str, sections: &[Section]) -> Result<(), ReportError> {
    crate::write_file(path, &render_index(title, sections))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section() -> Section {
        Section {
            name: "partition <detection>".into(),
            seed: 42,
            passed: false,
            duration_s: 60.0,
            trace_hash: "abc".into(),
            rows: vec![Row {
                assertion: "detection_ms_p99 <= 1000".into(),
                measured: "1024".into(),
                passed: false,
            }],
            plots: vec![Plot {
                title: "members held alive".into(),
                y_label: "members".into(),
                series: vec![Series {
                    name: "mean".into(),
                    points: vec![(0.0, 0.0), (10.0, 49.0), (20.0, 30.0)],
                }],
            }],
            windows: vec![Window {
                start: 10.0,
                end: 40.0,
                label: "partition".into(),
            }],
            seeds: None,
        }
    }

    #[test]
    fn plots_are_svg_with_the_series_and_the_shaded_window() {
        let s = section();
        let svg = render_plot(&s.plots[0], &s.windows, s.duration_s, 600, 200);
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("<polyline"), "no line drawn");
        assert!(svg.contains("members held alive"));
        assert!(
            svg.contains("opacity=\"0.18") || svg.contains("fill-opacity=\"0.18"),
            "no shaded window"
        );
    }

    #[test]
    fn the_page_escapes_names_and_flags_failures() {
        let html = render_index("testbed", &[section()]);
        assert!(html.contains("partition &lt;detection&gt;"));
        assert!(!html.contains("partition <detection>"));
        assert!(html.contains("class=\"fail\""));
        assert!(html.contains("0 of 1 scenario(s) passed"));
        assert_eq!(html.matches("<svg").count(), 1);
    }
}
