//! Reports of testbed runs, for machines and people: a JUnit XML file that any CI system shows
//! natively, and an append-only JSON-lines log of every run (`runs.jsonl`) from which later
//! reports can be regenerated and CI shards merged, and an HTML page with SVG plots.

mod html;
mod junit;
mod runs;

pub use html::{render_index, render_plot, write_index, Plot, Row, Section, Series, Window};
pub use junit::{write_junit, Case, Outcome};
pub use runs::append_run;

use std::path::PathBuf;

/// A report that could not be written, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct ReportError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}
