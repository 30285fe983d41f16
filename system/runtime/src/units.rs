//! Durations written as text (`"500ms"`, `"1.5s"`, `"-2h"`), as scenario files and operators'
//! command lines give them.

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
}
