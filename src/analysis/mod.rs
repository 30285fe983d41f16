//! From what the nodes recorded (probes) and what was done to them (the schedule) to the figures
//! scenarios assert on.
//!
//! The ground truth at any moment is *reachability*: `Y` is reachable from `X` when `Y` is up
//! and no cut blocks either direction between them. Every crash, restart, partition and heal
//! changes it and opens an *episode*; within it, each observer's view of each member is compared
//! with the truth: a pair that became unreachable must be detected (suspected or declared
//! dead), a pair that became reachable again must be seen alive again.

mod membership;
mod percentile;
mod series;
mod trustchain;

pub use membership::{analyse, Analysis};
pub use percentile::percentile;
pub use series::{fault_windows, membership_plots};
pub use trustchain::{analyse_trustchain, trustchain_plots, TRUSTCHAIN_METRICS};

/// Every metric name a scenario may assert on, membership's then TrustChain's.
pub fn metric_names() -> impl Iterator<Item = &'static str> {
    METRICS.iter().chain(TRUSTCHAIN_METRICS).map(|(n, _)| *n)
}

/// The membership workload's metrics, with what each means. `faults.KIND` (a count of an
/// injected fault) is also accepted.
pub const METRICS: &[(&str, &str)] = &[
    ("detection_ms_p50", "median time from losing reachability to the observer suspecting the member, over (observer, member) pairs"),
    ("detection_ms_p99", "99th percentile of the same"),
    ("detection_ms_max", "slowest detection; absent if a pair was never detected"),
    ("first_detection_ms_p99", "99th percentile over lost members of the time until the first observer suspects it (SWIM's detection time)"),
    ("first_detection_ms_max", "slowest first detection"),
    ("observer_detection_ms_p99", "99th percentile over (fault, observer) of the time until the observer suspects any member the fault cut off: it knows something happened (the guide's \"detect partition\"); absent if an observer never noticed"),
    ("undetected_pairs", "(observer, member) pairs that lost reachability for at least `settle` and were not suspected within it"),
    ("death_ms_p99", "99th percentile of the time from losing reachability until the observer declares the member dead"),
    ("death_ms_max", "slowest death declaration; absent if a lost member was never declared dead"),
    ("undeclared_pairs", "(observer, member) pairs that lost reachability for at least `settle` and were not declared dead within it"),
    ("recovery_ms_p99", "99th percentile of the time from regaining reachability (heal, restart) until the observer sees the member alive"),
    ("recovery_ms_max", "slowest recovery; absent if a pair never recovered"),
    ("unrecovered_pairs", "pairs that regained reachability but were not seen alive before the next fault or the end"),
    ("converged_ms_max", "slowest episode: time from a fault until every up node's view matches reachability exactly; absent if one never converged"),
    ("final_converged", "1 if, after the last fault, every up node's view came to match reachability before the end (the liveness check), else 0"),
    ("join_converged_ms", "time from the start until every node holds the full membership alive"),
    ("false_suspicions", "suspicions of a reachable member whose reachability had not changed for `settle`"),
    ("false_deaths", "reachable members declared dead (the guide's false positive: a healthy node marked failed)"),
    ("false_suspicion_pairs_pct", "percent of (observer, member) pairs falsely suspected at least once"),
    ("suspicions_before_first_fault", "suspicions raised before the first crash, restart, partition or heal"),
    ("minority_aware_ms_p99", "99th percentile over nodes cut into a minority of the time until they know it"),
    ("majority_correct_pct", "percent of up nodes whose majority flag was right at the end of every partition"),
    ("refutations", "times a node refuted a suspicion about itself"),
    ("join_refused", "join attempts refused (clock skew beyond clock_skew_max)"),
    ("send_errors", "sends the network stack refused (e.g. address family not supported)"),
    ("malformed_datagrams", "datagrams that failed to decode"),
    ("storage_errors", "storage operations that failed"),
    ("stoq_handshakes", "STOQ connections that completed mutual TLS (each end counts its own; 0 without [stoq])"),
    ("stoq_refusals", "STOQ connections refused or unanswered before they were usable (certificate refused by either side, timeout)"),
    ("stoq_setup_failures", "nodes whose STOQ endpoint could not start (no IPv6 address: STOQ is IPv6-only)"),
];
