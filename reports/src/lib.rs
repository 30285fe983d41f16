//! Reports of testbed runs, for machines and people: a JUnit XML file that any CI system shows
//! natively, an append-only JSON-lines log of every run (`runs.jsonl`), and an HTML page with SVG
//! plots. Both reports can be rebuilt from run logs alone ([`read_runs`], [`build_report`]), so
//! the logs of CI shards merge into one report.

mod html;
mod junit;
mod record;
mod runs;

pub use html::{render_index, render_plot, write_index, Plot, Row, Section, Series, Window};
pub use junit::{write_junit, Case, Outcome};
pub use record::{
    build_report, format_value, read_runs, AssertionRecord, Report, RunLogs, RunRecord, SeedSummary, Spread,
};
pub use runs::append_run;

use std::path::{Path, PathBuf};

/// A report or run log that could not be written or read, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub struct ReportError {
    /// `read` or `write`.
    pub action: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl ReportError {
    fn at(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
        move |source| ReportError {
            action: "write",
            path: path.to_path_buf(),
            source,
        }
    }

    fn reading(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
        move |source| ReportError {
            action: "read",
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Creates `path`'s directory if needed.
fn ensure_parent(path: &Path) -> Result<(), ReportError> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(ReportError::at(path)),
        None => Ok(()),
    }
}

/// Writes `contents` to `path`, creating its directory.
fn write_file(path: &Path, contents: &str) -> Result<(), ReportError> {
    ensure_parent(path)?;
    std::fs::write(path, contents).map_err(ReportError::at(path))
}

/// Escapes `text` for XML and HTML text and attribute values. Control characters XML 1.0
/// cannot carry become spaces.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
