//! Named assertions with thresholds: `"detection_ms_p99 <= 1000"`.

use std::fmt;

use serde::Serialize;

use crate::analysis::metric_names;

/// A comparison operator.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `==`
    #[serde(rename = "==")]
    Eq,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Eq => "==",
        })
    }
}

/// `metric op threshold`.
#[derive(Clone, Debug, PartialEq)]
pub struct Assertion {
    /// A metric the analysis produces.
    pub metric: String,
    /// How to compare.
    pub op: Op,
    /// Against what.
    pub threshold: f64,
}

impl Assertion {
    /// Parses `"metric op number"`, refusing unknown metrics.
    pub fn parse(text: &str) -> Result<Assertion, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [metric, op, value] = parts.as_slice() else {
            return Err(format!(
                "assertion {text:?}: expected \"METRIC OP NUMBER\", e.g. \"detection_ms_p99 <= 1000\""
            ));
        };
        let op = match *op {
            "<=" => Op::Le,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            ">" => Op::Gt,
            "==" => Op::Eq,
            other => {
                return Err(format!(
                    "assertion {text:?}: unknown operator {other:?} (use <=, <, >=, > or ==)"
                ))
            }
        };
        let fault_kind = metric.strip_prefix("faults.");
        if let Some(kind) = fault_kind {
            if !simulator::FAULT_KINDS.contains(&kind) {
                return Err(format!(
                    "assertion {text:?}: unknown fault kind {kind:?} (known: {})",
                    simulator::FAULT_KINDS.join(", ")
                ));
            }
        }
        let is_fault_count = fault_kind.is_some();
        if !is_fault_count && !metric_names().any(|name| name == *metric) {
            let known: Vec<&str> = metric_names().collect();
            return Err(format!(
                "assertion {text:?}: unknown metric {metric:?} (known: {}, or faults.KIND)",
                known.join(", ")
            ));
        }
        let threshold: f64 = value
            .parse()
            .map_err(|_| format!("assertion {text:?}: threshold {value:?} is not a number"))?;
        Ok(Assertion {
            metric: metric.to_string(),
            op,
            threshold,
        })
    }

    /// Whether `value` satisfies it; a missing value (never measured) fails.
    pub fn holds(&self, value: Option<f64>) -> bool {
        let Some(v) = value else { return false };
        match self.op {
            Op::Le => v <= self.threshold,
            Op::Lt => v < self.threshold,
            Op::Ge => v >= self.threshold,
            Op::Gt => v > self.threshold,
            Op::Eq => v == self.threshold,
        }
    }
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op, self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates() {
        let a = Assertion::parse("false_suspicions == 0").unwrap();
        assert!(a.holds(Some(0.0)) && !a.holds(Some(1.0)) && !a.holds(None));
        let b = Assertion::parse("detection_ms_p99 <= 1000").unwrap();
        assert!(b.holds(Some(999.0)) && !b.holds(Some(1000.5)));
    }

    #[test]
    fn the_unknown_metric_message_lists_each_known_name_once() {
        // Two workloads both report `malformed_datagrams` and `storage_errors`; the list named
        // them twice.
        let e = Assertion::parse("nope > 1").unwrap_err();
        let list = e
            .split_once("(known: ")
            .and_then(|(_, rest)| rest.strip_suffix(", or faults.KIND)"))
            .unwrap_or_else(|| panic!("no list of names: {e}"));
        let names: Vec<&str> = list.split(", ").collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "{e}");
        assert!(
            names.contains(&"storage_errors") && names.contains(&"handshakes"),
            "{e}"
        );
    }

    #[test]
    fn refuses_unknown_metrics_and_operators() {
        assert!(Assertion::parse("detecton_ms <= 1")
            .unwrap_err()
            .contains("unknown metric"));
        assert!(Assertion::parse("detection_ms_p99 => 1")
            .unwrap_err()
            .contains("unknown operator"));
        assert!(Assertion::parse("detection_ms_p99 <= fast")
            .unwrap_err()
            .contains("not a number"));
    }
}
