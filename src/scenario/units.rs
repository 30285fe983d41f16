//! Units in scenario files: durations (`"500ms"`, `"1.5s"`, `"-2h"`), node selections.

use std::time::Duration;

/// Parses an unsigned duration like `"250us"`, `"500ms"`, `"1.5s"`, `"2m"`, `"1h"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let nanos = parse_signed_nanos(text)?;
    if nanos < 0 {
        return Err(format!("duration {text:?} must not be negative"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Parses a signed duration in nanoseconds (`"-5s"` for a backward clock jump).
pub fn parse_signed_nanos(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let scale: f64 = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        "" => return Err(format!("duration {text:?} has no unit (use ns, us, ms, s, m, h or d)")),
        other => {
            return Err(format!(
                "duration {text:?} has unknown unit {other:?} (use ns, us, ms, s, m, h or d)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?} does not start with a number"))?;
    let nanos = value * scale;
    if !nanos.is_finite() || nanos > 1e18 {
        return Err(format!("duration {text:?} is too large"));
    }
    Ok(if negative {
        -(nanos.round() as i64)
    } else {
        nanos.round() as i64
    })
}

/// Which nodes a fault or group applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every node.
    All,
    /// Explicit indices.
    List(Vec<u32>),
    /// Indices `start..end`.
    Range(u32, u32),
    /// `count` nodes drawn from the seed.
    Random(u32),
}

impl Selection {
    /// Parses `"all"`, `"3..7"`, `"random 10"` (a list arrives as [`Selection::List`] directly),
    /// checking indices against `node_count`.
    pub fn parse(text: &str, node_count: u32) -> Result<Selection, String> {
        let t = text.trim();
        let selection = if t == "all" {
            Selection::All
        } else if let Some(n) = t.strip_prefix("random") {
            let count: u32 = n
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: expected \"random N\""))?;
            Selection::Random(count)
        } else if let Some((a, b)) = t.split_once("..") {
            let start: u32 = a
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: expected a range \"A..B\""))?;
            let end: u32 = b
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: expected a range \"A..B\""))?;
            if start >= end {
                return Err(format!("range {text:?} is empty"));
            }
            Selection::Range(start, end)
        } else {
            return Err(format!(
                "node selection {text:?}: use \"all\", \"A..B\", \"random N\" or a list of indices"
            ));
        };
        selection.check(node_count)?;
        Ok(selection)
    }

    /// Checks every index exists.
    pub fn check(&self, node_count: u32) -> Result<(), String> {
        match self {
            Selection::All => Ok(()),
            Selection::List(list) => match list.iter().find(|i| **i >= node_count) {
                Some(i) => Err(format!(
                    "node {i} does not exist (there are {node_count} nodes, 0..{node_count})"
                )),
                None if list.is_empty() => Err("empty node list".to_string()),
                None => Ok(()),
            },
            Selection::Range(_, end) if *end > node_count => {
                Err(format!("range ends at {end} but there are {node_count} nodes"))
            }
            Selection::Range(..) => Ok(()),
            Selection::Random(count) if *count > node_count => {
                Err(format!("cannot pick {count} of {node_count} nodes"))
            }
            Selection::Random(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_signed_nanos("-5s").unwrap(), -5_000_000_000);
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
    }

    #[test]
    fn selections_are_checked_against_the_node_count() {
        assert_eq!(Selection::parse("0..30", 50).unwrap(), Selection::Range(0, 30));
        assert_eq!(Selection::parse("random 10", 50).unwrap(), Selection::Random(10));
        assert!(Selection::parse("40..60", 50).unwrap_err().contains("50 nodes"));
        assert!(Selection::List(vec![50]).check(50).is_err());
    }
}
