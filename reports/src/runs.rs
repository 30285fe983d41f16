//! The run log: one JSON line per run, appended, never rewritten.

use std::io::Write;
use std::path::Path;

use crate::ReportError;

/// Appends `run` as one line to the JSON-lines file at `path`, creating it and its directory.
pub fn append_run(path: &Path, run: &serde_json::Value) -> Result<(), ReportError> {
    crate::ensure_parent(path)?;
    let wrap = ReportError::at(path);
    let mut line = serde_json::to_vec(run).map_err(|e| wrap(e.into()))?;
    line.push(b'\n');
    // One write of the whole line: appends from concurrent sweeps do not interleave mid-line.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(&wrap)?;
    file.write_all(&line).map_err(&wrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_line_per_run_and_keeps_earlier_ones() {
        let dir = std::env::temp_dir().join(format!("reports-runs-{}", std::process::id()));
        let path = dir.join("nested").join("runs.jsonl");
        let _ = std::fs::remove_dir_all(&dir);
        append_run(&path, &serde_json::json!({"seed": 1})).unwrap();
        append_run(&path, &serde_json::json!({"seed": 2})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"seed\":1}\n{\"seed\":2}\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
