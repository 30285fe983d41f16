//! `testbed stoq …`: STOQ commands for operators and benchmarks.

use std::process::ExitCode;

use clap::Subcommand;
use stoq::PacketProtection;

use crate::stoq_bench::{transfer, Stack, Transfer};

/// `testbed stoq` subcommands.
#[derive(Subcommand)]
pub enum StoqCommand {
    /// Moves BYTES over STOQ on [::1] and, in the same run, over raw quinn with the same crypto
    /// provider and settings; prints both and the ratio. Cases: one connection; one connection
    /// without packet encryption (both stacks, to separate crypto cost); CONNECTIONS connections
    /// at once (each its own endpoint pair and threads); one connection with STOQ on the io_uring
    /// driver instead of the default (epoll) one. Exit 0: measured; 2: a transfer failed.
    Bench {
        /// Total bytes per case, with an optional unit: 1GiB, 256MiB, 4096.
        #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
        bytes: u64,
        /// Connections in the multi-connection case.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=64))]
        connections: u16,
        /// One JSON line per case: case, stoq_mib_s, quinn_mib_s, ratio (and bytes, connections,
        /// stoq_s, quinn_s).
        #[arg(long)]
        json: bool,
    },
}

/// Parses `1GiB`, `512MiB`, `64KiB`, `1000` (bytes).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a byte count (expected e.g. 1GiB, 256MiB or 4096)"))?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` in `{text}` (use B, KiB, MiB or GiB)")),
    };
    let bytes = n.checked_mul(scale).ok_or_else(|| format!("`{text}` is too large"))?;
    if bytes == 0 {
        return Err("the byte count must be above zero".into());
    }
    Ok(bytes)
}

/// Runs a `testbed stoq` command.
pub fn run(command: StoqCommand) -> ExitCode {
    match command {
        StoqCommand::Bench {
            bytes,
            connections,
            json,
        } => bench(bytes, usize::from(connections), json),
    }
}

fn bench(bytes: u64, connections: usize, json: bool) -> ExitCode {
    let cases = [
        ("one_connection", 1, PacketProtection::Encrypted, Stack::Stoq),
        (
            "one_connection_plaintext",
            1,
            PacketProtection::PlaintextForBenchmarks,
            Stack::Stoq,
        ),
        ("connections", connections, PacketProtection::Encrypted, Stack::Stoq),
        (
            "one_connection_io_uring",
            1,
            PacketProtection::Encrypted,
            Stack::StoqUring,
        ),
    ];
    if !json {
        println!(
            "{:<28} {:>12} {:>12} {:>8}",
            "case", "STOQ MiB/s", "quinn MiB/s", "ratio"
        );
    }
    for (name, conns, protection, stoq_stack) in cases {
        let case = if name == "connections" {
            format!("{conns}_connections")
        } else {
            name.to_string()
        };
        let measure = |stack| transfer(stack, bytes, conns, protection);
        let (stoq, quinn) = match (measure(stoq_stack), measure(Stack::Quinn)) {
            (Ok(s), Ok(q)) => (s, q),
            (Err(e), _) => {
                eprintln!("error: {case}: STOQ transfer failed: {e}");
                return ExitCode::from(2);
            }
            (_, Err(e)) => {
                eprintln!("error: {case}: quinn transfer failed: {e}");
                return ExitCode::from(2);
            }
        };
        print_case(&case, conns, &stoq, &quinn, json);
    }
    ExitCode::SUCCESS
}

fn print_case(case: &str, connections: usize, stoq: &Transfer, quinn: &Transfer, json: bool) {
    let ratio = stoq.mib_s() / quinn.mib_s();
    if json {
        let line = serde_json::json!({
            "case": case,
            "stoq_mib_s": round2(stoq.mib_s()),
            "quinn_mib_s": round2(quinn.mib_s()),
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "bytes": stoq.bytes,
            "connections": connections,
            "stoq_s": stoq.elapsed.as_secs_f64(),
            "quinn_s": quinn.elapsed.as_secs_f64(),
        });
        println!("{line}");
    } else {
        println!(
            "{:<28} {:>12.1} {:>12.1} {:>8.3}",
            case,
            stoq.mib_s(),
            quinn.mib_s(),
            ratio
        );
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("1GB").unwrap_err().contains("unknown unit `GB`"));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("0").is_err());
    }
}
