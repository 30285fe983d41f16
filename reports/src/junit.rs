//! JUnit XML: one test case per scenario run.

use std::fmt::Write as _;
use std::path::Path;

use crate::{escape, ReportError};

/// How one case ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every assertion held.
    Passed,
    /// An assertion failed; the message lists which.
    Failed(String),
    /// The case could not run (a malformed scenario file).
    Error(String),
}

/// One test case.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Its name, e.g. `partition-detection (seed 42)`.
    pub name: String,
    /// Wall seconds it took.
    pub seconds: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// Text shown with it (figures, the replay command).
    pub output: String,
}

/// The JUnit XML document for `cases` in suite `suite`.
pub fn render_junit(suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| matches!(c.outcome, Outcome::Failed(_))).count();
    let errors = cases.iter().filter(|c| matches!(c.outcome, Outcome::Error(_))).count();
    let time: f64 = cases.iter().map(|c| c.seconds).sum();
    let suite = escape(suite);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\"",
        cases.len()
    );
    let _ = writeln!(xml, "<testsuites name=\"{suite}\" {counts}>");
    let _ = writeln!(xml, "  <testsuite name=\"{suite}\" {counts}>");
    for case in cases {
        let _ = write!(
            xml,
            "    <testcase classname=\"{suite}\" name=\"{}\" time=\"{:.3}\">",
            escape(&case.name),
            case.seconds
        );
        match &case.outcome {
            Outcome::Passed => {}
            Outcome::Failed(message) => {
                let _ = write!(xml, "\n      <failure message=\"{0}\">{0}</failure>", escape(message));
            }
            Outcome::Error(message) => {
                let _ = write!(xml, "\n      <error message=\"{0}\">{0}</error>", escape(message));
            }
        }
        if !case.output.is_empty() {
            let _ = write!(xml, "\n      <system-out>{}</system-out>", escape(&case.output));
        }
        xml.push_str("\n    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Writes the JUnit XML for `cases` to `path`, creating its directory.
pub fn write_junit(path: &Path, suite: &str, cases: &[Case]) -> Result<(), ReportError> {
    crate::write_file(path, &render_junit(suite, cases))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failures_and_errors_and_escapes_text() {
        let cases = vec![
            Case {
                name: "a (seed 1)".into(),
                seconds: 0.5,
                outcome: Outcome::Passed,
                output: String::new(),
            },
            Case {
                name: "b".into(),
                seconds: 1.0,
                outcome: Outcome::Failed("detection_ms_p99 <= 1000 (measured 1024)".into()),
                output: "replay: testbed run b.toml --seed 2".into(),
            },
            Case {
                name: "c".into(),
                seconds: 0.0,
                outcome: Outcome::Error("c.toml:3: bad \"x\"".into()),
                output: String::new(),
            },
        ];
        let xml = render_junit("scenarios", &cases);
        assert!(xml.contains("tests=\"3\" failures=\"1\" errors=\"1\""));
        assert!(xml.contains("detection_ms_p99 &lt;= 1000"));
        assert!(xml.contains("bad &quot;x&quot;"));
        assert!(!xml.contains("<= 1000"));
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert_eq!(xml.matches("</testcase>").count(), 3);
    }
}
