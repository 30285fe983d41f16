//! `testbed stoq …`: STOQ commands for operators and benchmarks.

use std::process::ExitCode;

use clap::Subcommand;
use stoq::PacketProtection;

use std::time::Duration;

use runtime_tokio::process_cpu_time;

use crate::stoq_bench::{transfer, Stack, Transfer};
use crate::stoq_ceiling::{blast, DATAGRAM_BYTES, SEGMENTS_MAX};

/// `testbed stoq` subcommands.
#[derive(Subcommand)]
pub enum StoqCommand {
    /// Moves BYTES over STOQ on [::1] and, in the same run, over raw quinn with the same crypto
    /// provider and settings, PAIRS times each, interleaved (STOQ then quinn, then quinn then
    /// STOQ, …) so that drift in the machine's load falls on both. Per case: the median of the
    /// pairwise ratios with their min and max, each stack's median rate, and each stack's CPU
    /// (user + system seconds per GiB moved, from the process's own accounting, over the whole
    /// transfer: certificates, threads, handshake and stream). Cases: one
    /// connection; one connection without packet encryption (both stacks, to separate crypto
    /// cost); CONNECTIONS connections at once (each its own endpoint pair and threads); one
    /// connection with STOQ on the io_uring driver, beside quinn and beside STOQ on the default
    /// (epoll) driver. Exit 0: measured; 2: a transfer failed.
    Bench {
        /// Total bytes per transfer, with an optional unit: 1GiB, 256MiB, 4096.
        #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
        bytes: u64,
        /// Connections in the multi-connection case.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=64))]
        connections: u16,
        /// Transfers per stack per case (at least 5: fewer cannot tell a gap from noise).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(5..=1000))]
        pairs: u16,
        /// Runs only these cases (by name, as printed; repeat or separate with commas), for a
        /// profile of one of them.
        #[arg(long = "case", value_delimiter = ',')]
        cases: Vec<String>,
        /// One JSON line per case: case, stoq_mib_s, quinn_mib_s, ratio (the median), ratio_min,
        /// ratio_max, stoq_cpu_s_per_gib, quinn_cpu_s_per_gib, verdict, pairs, bytes,
        /// connections; the io_uring case adds default_mib_s, default_cpu_s_per_gib and
        /// driver_ratio (io_uring ÷ default) with driver_ratio_min and driver_ratio_max.
        #[arg(long)]
        json: bool,
    },
    /// The loopback ceiling: blasts BYTES of plain UDP from one thread to another over [::1],
    /// runs of 1452-byte datagrams per sendmsg (GSO), received in batches (recvmmsg, GRO), no
    /// QUIC and no crypto; prints what was sent and what was received per second, and the loss
    /// (nothing paces the sender). Exit 0: measured; 2: the sockets failed.
    Ceiling {
        /// Bytes to send, with an optional unit: 1GiB, 256MiB, 4096.
        #[arg(long, default_value = "4GiB", value_parser = parse_bytes)]
        bytes: u64,
        /// Datagrams per send: 45 (a whole UDP payload, the default) or fewer; the QUIC stacks
        /// send at most 10 (quinn's cap).
        #[arg(long, default_value_t = SEGMENTS_MAX as u16, value_parser = clap::value_parser!(u16).range(1..=SEGMENTS_MAX as i64))]
        segments: u16,
        /// One JSON line: case, sent_mib_s, received_mib_s, received_gbit_s, loss, bytes,
        /// datagram_bytes, segments, sends_failed.
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
            pairs,
            cases,
            json,
        } => bench(bytes, usize::from(connections), usize::from(pairs), &cases, json),
        StoqCommand::Ceiling { bytes, segments, json } => ceiling(bytes, usize::from(segments), json),
    }
}

/// One case of the bench: the stacks it runs in rotation, the first being the STOQ under test
/// and the second quinn; a third, when present, is STOQ on the default driver (the io_uring case).
struct Case {
    name: String,
    connections: usize,
    protection: PacketProtection,
    stacks: Vec<Stack>,
}

/// One transfer and what it cost.
#[derive(Clone, Debug)]
struct Sample {
    transfer: Transfer,
    /// User + system CPU of the whole process over the transfer (both endpoints' threads).
    cpu: Duration,
}

fn sample(stack: Stack, case: &Case, bytes: u64) -> Result<Sample, String> {
    let cpu = || process_cpu_time().map_err(|e| format!("reading the process's CPU time: {e}"));
    let before = cpu()?;
    let transfer = transfer(stack, bytes, case.connections, case.protection)?;
    Ok(Sample {
        transfer,
        cpu: cpu()? - before,
    })
}

/// Runs `case` for `pairs` rounds, each round every stack once, starting one stack later each
/// round (A B, B A, …). Returns each stack's samples, in round order.
fn rounds(case: &Case, bytes: u64, pairs: usize) -> Result<Vec<Vec<Sample>>, String> {
    let n = case.stacks.len();
    let mut samples = vec![Vec::with_capacity(pairs); n];
    for round in 0..pairs {
        for k in 0..n {
            let i = (round + k) % n;
            let stack = case.stacks[i];
            let s = sample(stack, case, bytes).map_err(|e| format!("{}: {stack:?} transfer failed: {e}", case.name))?;
            samples[i].push(s);
        }
    }
    Ok(samples)
}

/// The median, least and greatest of some figures.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    /// Of a non-empty list (an even count's median is the mean of the middle two).
    fn of(values: &[f64]) -> Spread {
        assert!(!values.is_empty(), "a spread of no figures");
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    /// Which side every pair fell on: `ahead` when every ratio is above 1, `behind` when every one
    /// is below, otherwise `undecided` (the pairs disagree, so the gap is within the noise).
    fn verdict(&self, ahead: &'static str, behind: &'static str) -> &'static str {
        if self.min > 1.0 {
            ahead
        } else if self.max < 1.0 {
            behind
        } else {
            "undecided"
        }
    }
}

/// Pairwise ratios of rates, round by round.
fn ratios(a: &[Sample], b: &[Sample]) -> Spread {
    let r: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| a.transfer.mib_s() / b.transfer.mib_s())
        .collect();
    Spread::of(&r)
}

fn median_rate(samples: &[Sample]) -> f64 {
    Spread::of(&samples.iter().map(|s| s.transfer.mib_s()).collect::<Vec<_>>()).median
}

/// CPU seconds per GiB moved, over all of a stack's transfers.
fn cpu_per_gib(samples: &[Sample]) -> f64 {
    let cpu: f64 = samples.iter().map(|s| s.cpu.as_secs_f64()).sum();
    let gib: f64 = samples.iter().map(|s| s.transfer.bytes as f64).sum::<f64>() / (1u64 << 30) as f64;
    cpu / gib
}

fn bench(bytes: u64, connections: usize, pairs: usize, only: &[String], json: bool) -> ExitCode {
    let case = |name: &str, connections, protection, stacks: &[Stack]| Case {
        name: name.to_string(),
        connections,
        protection,
        stacks: stacks.to_vec(),
    };
    let cases = [
        case(
            "one_connection",
            1,
            PacketProtection::Encrypted,
            &[Stack::Stoq, Stack::Quinn],
        ),
        case(
            "one_connection_plaintext",
            1,
            PacketProtection::PlaintextForBenchmarks,
            &[Stack::Stoq, Stack::Quinn],
        ),
        case(
            &format!("{connections}_connections"),
            connections,
            PacketProtection::Encrypted,
            &[Stack::Stoq, Stack::Quinn],
        ),
        case(
            "one_connection_io_uring",
            1,
            PacketProtection::Encrypted,
            &[Stack::StoqUring, Stack::Quinn, Stack::Stoq],
        ),
    ];
    if let Some(unknown) = only.iter().find(|name| !cases.iter().any(|c| &c.name == *name)) {
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        eprintln!("error: --case {unknown}: no such case (cases: {})", names.join(", "));
        return ExitCode::from(2);
    }
    let cases: Vec<&Case> = cases
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.name))
        .collect();
    if !json {
        println!("{pairs} transfers of {bytes} bytes per stack per case, interleaved; ratio = STOQ ÷ quinn");
        println!(
            "{:<26} {:>11} {:>11} {:>22} {:>11} {:>11}  verdict",
            "case", "STOQ MiB/s", "quinn MiB/s", "ratio median [min-max]", "STOQ s/GiB", "quinn s/GiB"
        );
    }
    for case in cases {
        let samples = match rounds(case, bytes, pairs) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        print_case(case, &samples, pairs, bytes, json);
    }
    ExitCode::SUCCESS
}

fn print_case(case: &Case, samples: &[Vec<Sample>], pairs: usize, bytes: u64, json: bool) {
    let (stoq, quinn) = (&samples[0], &samples[1]);
    let ratio = ratios(stoq, quinn);
    let verdict = ratio.verdict("stoq_faster", "quinn_faster");
    let default_driver = samples.get(2);
    if json {
        let mut line = serde_json::json!({
            "case": case.name,
            "stoq_mib_s": round2(median_rate(stoq)),
            "quinn_mib_s": round2(median_rate(quinn)),
            "ratio": round3(ratio.median),
            "ratio_min": round3(ratio.min),
            "ratio_max": round3(ratio.max),
            "stoq_cpu_s_per_gib": round3(cpu_per_gib(stoq)),
            "quinn_cpu_s_per_gib": round3(cpu_per_gib(quinn)),
            "verdict": verdict,
            "pairs": pairs,
            "bytes": bytes,
            "connections": case.connections,
        });
        if let Some(default) = default_driver {
            let driver = ratios(stoq, default);
            line["default_mib_s"] = round2(median_rate(default)).into();
            line["default_cpu_s_per_gib"] = round3(cpu_per_gib(default)).into();
            line["driver_ratio"] = round3(driver.median).into();
            line["driver_ratio_min"] = round3(driver.min).into();
            line["driver_ratio_max"] = round3(driver.max).into();
        }
        println!("{line}");
    } else {
        println!(
            "{:<26} {:>11.1} {:>11.1} {:>22} {:>11.3} {:>11.3}  {verdict}",
            case.name,
            median_rate(stoq),
            median_rate(quinn),
            format!("{:.3} [{:.3}-{:.3}]", ratio.median, ratio.min, ratio.max),
            cpu_per_gib(stoq),
            cpu_per_gib(quinn),
        );
        if let Some(default) = default_driver {
            let driver = ratios(stoq, default);
            println!(
                "{:<26} {:>11.1} {:>11} {:>22} {:>11.3} {:>11}  {}",
                "  io_uring ÷ default",
                median_rate(default),
                "",
                format!("{:.3} [{:.3}-{:.3}]", driver.median, driver.min, driver.max),
                cpu_per_gib(default),
                "",
                driver.verdict("io_uring_faster", "default_faster"),
            );
        }
    }
}

fn ceiling(bytes: u64, segments: usize, json: bool) -> ExitCode {
    let c = match blast(bytes, segments) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: loopback blast: {e}");
            return ExitCode::from(2);
        }
    };
    let gbit_s = |mib_s: f64| mib_s * 1024.0 * 1024.0 * 8.0 / 1e9;
    if json {
        let line = serde_json::json!({
            "case": "udp_gso_loopback",
            "sent_mib_s": round2(c.sent_mib_s()),
            "received_mib_s": round2(c.received_mib_s()),
            "received_gbit_s": round3(gbit_s(c.received_mib_s())),
            "loss": round3(c.loss()),
            "bytes": c.sent_bytes,
            "datagram_bytes": DATAGRAM_BYTES,
            "segments": c.segments,
            "sends_failed": c.sends_failed,
        });
        println!("{line}");
    } else {
        println!(
            "plain UDP over [::1], {} datagrams of {DATAGRAM_BYTES} B per send (GSO), no QUIC, no crypto",
            c.segments
        );
        println!(
            "sent     {:>9.1} MiB/s  {:>6.2} Gbit/s",
            c.sent_mib_s(),
            gbit_s(c.sent_mib_s())
        );
        println!(
            "received {:>9.1} MiB/s  {:>6.2} Gbit/s  (loss {:.1} %)",
            c.received_mib_s(),
            gbit_s(c.received_mib_s()),
            c.loss() * 100.0
        );
        if c.sends_failed > 0 {
            println!("sends refused by the kernel: {}", c.sends_failed);
        }
    }
    ExitCode::SUCCESS
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
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

    #[test]
    fn a_spread_takes_the_middle_and_a_verdict_needs_every_pair() {
        let odd = Spread::of(&[1.2, 0.9, 1.1]);
        assert_eq!((odd.median, odd.min, odd.max), (1.1, 0.9, 1.2));
        assert_eq!(odd.verdict("a", "b"), "undecided");
        assert_eq!(Spread::of(&[1.0, 3.0, 2.0, 4.0]).median, 2.5);
        assert_eq!(Spread::of(&[1.01, 1.3]).verdict("a", "b"), "a");
        assert_eq!(Spread::of(&[0.99, 0.5]).verdict("a", "b"), "b");
    }
}
