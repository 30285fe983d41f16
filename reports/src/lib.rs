//! Reports of testbed runs, for machines and people: a JUnit XML file that any CI system shows
//! natively, and an append-only JSON-lines log of every run (`runs.jsonl`) from which later
//! reports can be regenerated and CI shards merged. HTML with plots is not built yet.

mod junit;
mod runs;

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
