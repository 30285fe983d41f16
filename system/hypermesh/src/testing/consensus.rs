//! The consensus checker: safety and liveness of a run of [`crate::consensus::Replica`]s, from
//! their probes and their clients' (see the probe tables in `consensus::replica` and
//! `consensus::client`).
//!
//! - **Agreement / no fork:** every height committed by two honest replicas has one block
//!   (evidence: the height, both replicas, both digests).
//! - **Durability:** a restarted replica recovers at least every height it had committed,
//!   unless its log reported damage (`recovered` with heights lost, fetched again from peers).
//! - **Linearizability:** the clients' list-append history, checked by
//!   [`super::history::check`] (strict serializability: real-time order included); evidence is
//!   the anomaly with its shortest cycle.
//! - **Liveness:** after the faults stop (`quiet_from`), honest replicas commit again.
//!
//! Byzantine replicas are left out of agreement and durability: what they claim to have
//! committed proves nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::history::{self, Status, Txn};
use super::{percentile, Figures, Observed, Seconds};
use crate::replication::kv::Op;

/// The figures [`analyse`] produces, with what each means.
pub const METRICS: &[(&str, &str)] = &[
    ("agreement_violations", "heights at which two honest replicas committed different blocks (must be 0)"),
    ("durability_violations", "restarts after which a replica held fewer committed heights than before, with no damage reported (must be 0)"),
    ("linearizability_anomalies", "anomalies in the clients' list-append history: cycles (G0, G1c, G-single, G2, with or without real-time edges), aborted or garbage reads, incompatible orders (must be 0)"),
    ("halted_replicas", "honest replicas that stopped (a log that could not recover, a committed block conflicting with the chain, the safety record lost in every copy)"),
    ("committed_height", "highest height committed by an honest replica"),
    ("committed_height_min", "lowest final committed height among honest replicas up at the end"),
    ("quiet_commits", "heights committed by honest replicas after the faults stopped (liveness: must be above 0 when there is a quiet phase)"),
    ("txns_submitted", "transactions clients submitted"),
    ("txns_ok", "transactions answered as committed and applied"),
    ("txns_failed", "transactions refused (by the state machine, or not admitted)"),
    ("txns_unknown", "transactions with no answer in time (may or may not have committed)"),
    ("commit_ms_p50", "median time from submission to the client's answer, committed transactions"),
    ("reads_ok", "linearizable reads answered (agreeing answers), held to strict serializability with the transactions"),
    ("reads_failed", "linearizable reads refused (no quorum's certificates, or not committed up to them, within read_timeout)"),
    ("reads_unknown", "linearizable reads with no agreeing answers in time"),
    ("read_ms_p99", "99th percentile of the time from a linearizable read's sending to its agreeing answers"),
    ("commit_ms_p90", "90th percentile of the time from submission to answer, committed transactions"),
    ("commit_ms_p99", "99th percentile of the time from submission to answer, committed transactions"),
    ("proposer_conflicts", "views in which two honest validators proposed (every replica must name the same leader for a view: must be 0)"),
    ("view_changes", "views entered through a timeout certificate (summed over honest replicas)"),
    ("catchup_blocks", "blocks honest replicas committed from catch-up answers"),
    ("checkpoints_saved", "checkpoints honest replicas saved (their replicated state at every checkpoint_interval heights)"),
    ("checkpoints_restored", "restarts of honest replicas that restored a checkpoint and replayed only the blocks after it"),
    ("checkpoints_refused", "restarts of honest replicas that left their newest checkpoint aside (damaged, or not vouched for by the log) and replayed the whole log"),
    ("snapshots_installed", "checkpoints honest replicas took from f + 1 validators' offers, behind what their peers' logs keep"),
    ("byzantine_validators", "validators given an adversary that acted (sent something other than an honest replica would)"),
    ("byzantine_detected", "of them, marked by every honest replica up at the end"),
    ("detection_ms_p99", "99th percentile over Byzantine validators of the time from their first misbehaviour until the first honest replica marked them; absent if one was never marked"),
    ("detection_all_ms_max", "slowest time from a Byzantine validator's first misbehaviour until every honest replica up at the end marked it; absent if one was not marked by all"),
    ("honest_marked", "honest validators marked by any honest replica (false positives: must be 0 with the guide's settings)"),
    ("evidence", "Byzantine validators some honest replica holds proof against (conflicting signed messages)"),
    ("reports", "reports honest replicas sent (suspicions, each signed, before enough reporters confirm)"),
    ("byzantine_isolated", "Byzantine validators isolated by a committed removal on every honest replica up at the end"),
    ("isolation_ms_max", "slowest time from a Byzantine validator's first misbehaviour until the last honest replica committed its removal; absent if one was not isolated everywhere"),
    ("honest_isolated", "honest validators isolated by a committed removal (must be 0)"),
    ("isolations_unproven", "validators isolated on an honest replica for which no honest replica kept an isolation proof (what the CA revokes on: must be 0)"),
    ("commits_after_isolation", "heights committed by honest replicas after the last isolation (the cluster keeps committing)"),
];

/// The run being judged, beside its probes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// Validators are nodes `0..validators`; the rest are clients.
    pub validators: u32,
    /// Validators that run an adversary: excluded from agreement and durability.
    pub byzantine: BTreeSet<u32>,
    /// When the faults stopped (the quiet phase), if the run has one.
    pub quiet_from: Option<Duration>,
    /// Validators up at the end of the run.
    pub up_at_end: BTreeSet<u32>,
}

const EVIDENCE_MAX: usize = 8;

#[derive(Default)]
struct TxnBuilder {
    process: u64,
    invoke: Duration,
    complete: Option<Duration>,
    ops: Vec<Op>,
    pending_key: Option<u64>,
    reads: Vec<(u64, Vec<u64>)>,
    read_keys: Vec<u64>,
    status: Option<Status>,
    latency_ms: Option<f64>,
    /// A linearizable read (a query), not a submitted transaction.
    query: bool,
}

/// Linearizable reads, counted apart from transactions.
#[derive(Default)]
struct ReadCounts {
    total: usize,
    ok: usize,
    failed: usize,
    unknown: usize,
    latencies: Vec<f64>,
}

/// The figures of a consensus run.
pub fn analyse<'a>(probes: impl IntoIterator<Item = Observed<'a>>, run: &Run) -> Figures {
    let mut figures = Figures::default();
    let mut evidence = Vec::new();
    let honest = |node: u32| node < run.validators && !run.byzantine.contains(&node);

    let mut by_height: BTreeMap<u64, (u32, i64)> = BTreeMap::new();
    let mut agreement_violations = 0u64;
    let mut top: BTreeMap<u32, u64> = BTreeMap::new();
    let mut durability_violations = 0u64;
    let mut halted = BTreeSet::new();
    let mut quiet_heights = BTreeSet::new();
    let mut view_changes = 0u64;
    // view → the first honest validator that proposed in it.
    let mut proposers: BTreeMap<u64, u32> = BTreeMap::new();
    let mut proposer_conflicts = BTreeSet::new();
    let mut catchup_blocks = 0i64;
    let (mut checkpoints_saved, mut checkpoints_restored, mut checkpoints_refused) = (0u64, 0u64, 0u64);
    let mut snapshots_installed = 0u64;
    let mut txns: BTreeMap<u64, TxnBuilder> = BTreeMap::new();
    let mut misbehaved: BTreeMap<u32, Duration> = BTreeMap::new();
    // accused → marker → when.
    let mut marked: BTreeMap<u32, BTreeMap<u32, Duration>> = BTreeMap::new();
    let mut proven = BTreeSet::new();
    let mut isolation_proven = BTreeSet::new();
    let mut reports = 0u64;
    let mut isolated: BTreeMap<u32, BTreeMap<u32, Duration>> = BTreeMap::new();
    let mut commit_times: Vec<Duration> = Vec::new();

    for o in probes {
        let p = o.probe;
        if p.protocol != crate::consensus::MOUNT.name {
            continue;
        }
        match p.name {
            "commit" if honest(o.node) => {
                let h = p.subject;
                match by_height.get(&h) {
                    Some((other, digest)) if *digest != p.value => {
                        agreement_violations += 1;
                        if evidence.len() < EVIDENCE_MAX {
                            evidence.push(format!(
                                "agreement: at height {h} node {other} committed block {:016x}, node {} committed block {:016x} (at {})",
                                *digest as u64,
                                o.node,
                                p.value as u64,
                                Seconds(o.at)
                            ));
                        }
                    }
                    Some(_) => {}
                    None => {
                        by_height.insert(h, (o.node, p.value));
                    }
                }
                let t = top.entry(o.node).or_default();
                if h > *t {
                    commit_times.push(o.at);
                }
                *t = (*t).max(h);
                if run.quiet_from.is_some_and(|q| o.at >= q) {
                    quiet_heights.insert(h);
                }
            }
            "recovered" if honest(o.node) => {
                let before = top.get(&o.node).copied().unwrap_or(0);
                let lost = p.value;
                if p.subject < before && lost == 0 {
                    durability_violations += 1;
                    if evidence.len() < EVIDENCE_MAX {
                        evidence.push(format!(
                            "durability: node {} had committed height {before}, recovered only {} with no damage reported (at {})",
                            o.node,
                            p.subject,
                            Seconds(o.at)
                        ));
                    }
                }
                top.insert(o.node, p.subject);
            }
            "checkpoint" if honest(o.node) && p.value > 0 => checkpoints_saved += 1,
            "checkpoint_restored" if honest(o.node) => checkpoints_restored += 1,
            "checkpoint_refused" if honest(o.node) => checkpoints_refused += 1,
            "snapshot_installed" if honest(o.node) => snapshots_installed += 1,
            "halted" if honest(o.node) => {
                let first = halted.insert(o.node);
                if first && evidence.len() < EVIDENCE_MAX {
                    evidence.push(format!(
                        "halted: node {} stopped at height {} ({}) at {}",
                        o.node,
                        p.subject,
                        match p.value {
                            2 => "a committed block conflicted with its chain",
                            crate::consensus::replica::HALTED_SAFETY_LOST => "its safety record was lost in every copy",
                            crate::consensus::replica::HALTED_SNAPSHOT_REFUSED => {
                                "its state machine refused a checkpoint f + 1 validators offered"
                            }
                            _ => "its log failed",
                        },
                        Seconds(o.at)
                    ));
                }
            }
            "view" if honest(o.node) && p.value == 2 => view_changes += 1,
            "proposal" if honest(o.node) => {
                let first = *proposers.entry(p.subject).or_insert(o.node);
                if first != o.node && proposer_conflicts.insert(p.subject) && evidence.len() < EVIDENCE_MAX {
                    evidence.push(format!(
                        "leader schedules differ: nodes {first} and {} both proposed in view {} (at {})",
                        o.node,
                        p.subject,
                        Seconds(o.at)
                    ));
                }
            }
            "misbehaved" => {
                misbehaved.entry(o.node).or_insert(o.at);
            }
            "marked" if honest(o.node) => {
                marked
                    .entry(p.subject as u32)
                    .or_default()
                    .entry(o.node)
                    .or_insert(o.at);
            }
            "evidence" if honest(o.node) => {
                proven.insert(p.subject as u32);
            }
            "report" if honest(o.node) => reports += 1,
            "isolated" if honest(o.node) => {
                isolated
                    .entry(p.subject as u32)
                    .or_default()
                    .entry(o.node)
                    .or_insert(o.at);
            }
            "isolation_proof" if honest(o.node) && p.value > 0 => {
                isolation_proven.insert(p.subject as u32);
            }
            "catchup" if honest(o.node) => catchup_blocks += p.value,
            // The clients' history.
            "txn" => {
                txns.insert(
                    p.subject,
                    TxnBuilder {
                        process: u64::from(o.node),
                        invoke: o.at,
                        ..TxnBuilder::default()
                    },
                );
            }
            "query" => {
                if let Some(t) = txns.get_mut(&p.subject) {
                    t.query = true;
                }
            }
            "append" => {
                if let Some(t) = txns.get_mut(&p.subject) {
                    t.pending_key = Some(p.value as u64);
                }
            }
            "value" => {
                if let Some(t) = txns.get_mut(&p.subject) {
                    if let Some(key) = t.pending_key.take() {
                        t.ops.push(Op::Append {
                            key,
                            value: p.value as u64,
                        });
                    }
                }
            }
            "read" => {
                if let Some(t) = txns.get_mut(&p.subject) {
                    t.ops.push(Op::Read { key: p.value as u64 });
                    t.read_keys.push(p.value as u64);
                }
            }
            "ok" => {
                if let Some(t) = txns.get_mut(&p.subject) {
                    t.status = Some(Status::Ok);
                    t.complete = Some(o.at);
                }
            }
            "read_len" => {
                if let Some(t) = txns.get_mut(&p.subject) {
                    let key = t.read_keys.get(t.reads.len()).copied().unwrap_or(u64::MAX);
                    t.reads.push((key, Vec::with_capacity(p.value.max(0) as usize)));
                }
            }
            "element" => {
                if let Some((_, list)) = txns.get_mut(&p.subject).and_then(|t| t.reads.last_mut()) {
                    list.push(p.value as u64);
                }
            }
            "fail" => {
                if let Some(t) = txns.get_mut(&p.subject) {
                    t.status = Some(Status::Failed);
                    t.complete = Some(o.at);
                }
            }
            "info" => {
                if let Some(t) = txns.get_mut(&p.subject) {
                    t.status = Some(Status::Info);
                }
            }
            "latency_ms" => {
                if let Some(t) = txns.get_mut(&p.subject) {
                    t.latency_ms = Some(p.value as f64);
                }
            }
            _ => {}
        }
    }

    let mut latencies = Vec::new();
    let mut reads = ReadCounts::default();
    let history: Vec<Txn> = txns
        .into_iter()
        .map(|(id, t)| {
            let status = t.status.unwrap_or(Status::Info);
            if t.query {
                reads.total += 1;
                match status {
                    Status::Ok => {
                        reads.ok += 1;
                        reads.latencies.extend(t.latency_ms);
                    }
                    Status::Failed => reads.failed += 1,
                    Status::Info => reads.unknown += 1,
                }
            } else if status == Status::Ok {
                if let Some(l) = t.latency_ms {
                    latencies.push(l);
                }
            }
            Txn {
                id,
                process: t.process,
                invoke: t.invoke,
                complete: t.complete,
                ops: t.ops,
                reads: t.reads,
                status,
            }
        })
        .collect();
    let report = history::check(&history);
    let anomalies: usize = report.anomaly_counts.values().sum();
    for a in report
        .anomalies
        .iter()
        .take(EVIDENCE_MAX.saturating_sub(evidence.len()))
    {
        evidence.push(format!("linearizability: {a}"));
    }

    let honest_up: Vec<u64> = (0..run.validators)
        .filter(|n| honest(*n) && run.up_at_end.contains(n))
        .map(|n| top.get(&n).copied().unwrap_or(0))
        .collect();
    let mut set = |name: &str, value: Option<f64>| {
        figures.metrics.insert(name.to_string(), value);
    };
    set("agreement_violations", Some(agreement_violations as f64));
    set("durability_violations", Some(durability_violations as f64));
    set("linearizability_anomalies", Some(anomalies as f64));
    set("halted_replicas", Some(halted.len() as f64));
    set(
        "committed_height",
        Some(by_height.keys().last().copied().unwrap_or(0) as f64),
    );
    set("committed_height_min", honest_up.iter().min().map(|h| *h as f64));
    set("quiet_commits", run.quiet_from.map(|_| quiet_heights.len() as f64));
    set("txns_submitted", Some((report.transactions - reads.total) as f64));
    set("txns_ok", Some((report.ok - reads.ok) as f64));
    set("txns_failed", Some((report.failed - reads.failed) as f64));
    set("txns_unknown", Some((report.info - reads.unknown) as f64));
    set("reads_ok", Some(reads.ok as f64));
    set("reads_failed", Some(reads.failed as f64));
    set("reads_unknown", Some(reads.unknown as f64));
    set("read_ms_p99", percentile(&mut reads.latencies, 99.0));
    set("commit_ms_p50", percentile(&mut latencies.clone(), 50.0));
    set("commit_ms_p90", percentile(&mut latencies.clone(), 90.0));
    set("commit_ms_p99", percentile(&mut latencies, 99.0));
    set("view_changes", Some(view_changes as f64));
    set("proposer_conflicts", Some(proposer_conflicts.len() as f64));
    set("catchup_blocks", Some(catchup_blocks as f64));
    set("checkpoints_saved", Some(checkpoints_saved as f64));
    set("checkpoints_restored", Some(checkpoints_restored as f64));
    set("checkpoints_refused", Some(checkpoints_refused as f64));
    set("snapshots_installed", Some(snapshots_installed as f64));
    let honest_up_nodes: Vec<u32> = (0..run.validators)
        .filter(|n| honest(*n) && run.up_at_end.contains(n))
        .collect();
    let mut first_detection = Vec::new();
    let mut all_detection: Option<f64> = Some(0.0);
    let mut detected = 0;
    for (node, began) in &misbehaved {
        let by = marked.get(node);
        let first = by.and_then(|m| m.values().min()).map(|t| t.saturating_sub(*began));
        match first {
            Some(d) => first_detection.push(d.as_nanos() as f64 / 1e6),
            None => first_detection.push(f64::INFINITY),
        }
        match everywhere(by, &honest_up_nodes, *began) {
            Some(last) => {
                detected += 1;
                all_detection = all_detection.map(|d| d.max(last));
            }
            None => all_detection = None,
        }
    }
    let honest_marked: BTreeSet<u32> = marked.keys().copied().filter(|n| honest(*n)).collect();
    set("byzantine_validators", Some(misbehaved.len() as f64));
    set("byzantine_detected", Some(detected as f64));
    let p99 = percentile(&mut first_detection, 99.0);
    set("detection_ms_p99", p99.filter(|v| v.is_finite()));
    set(
        "detection_all_ms_max",
        if misbehaved.is_empty() { None } else { all_detection },
    );
    set("honest_marked", Some(honest_marked.len() as f64));
    set("evidence", Some(proven.len() as f64));
    set("reports", Some(reports as f64));
    let mut byzantine_isolated = 0;
    let mut isolation_max: Option<f64> = Some(0.0);
    for (node, began) in &misbehaved {
        match everywhere(isolated.get(node), &honest_up_nodes, *began) {
            Some(last) => {
                byzantine_isolated += 1;
                isolation_max = isolation_max.map(|d| d.max(last));
            }
            None => isolation_max = None,
        }
    }
    let honest_isolated: BTreeSet<u32> = isolated.keys().copied().filter(|n| honest(*n)).collect();
    let last_isolation = isolated.values().flat_map(|m| m.values()).max().copied();
    set("byzantine_isolated", Some(byzantine_isolated as f64));
    set(
        "isolation_ms_max",
        if misbehaved.is_empty() { None } else { isolation_max },
    );
    set("honest_isolated", Some(honest_isolated.len() as f64));
    let unproven: Vec<u32> = isolated
        .keys()
        .copied()
        .filter(|n| !isolation_proven.contains(n))
        .collect();
    set("isolations_unproven", Some(unproven.len() as f64));
    for n in unproven.iter().take(EVIDENCE_MAX.saturating_sub(evidence.len())) {
        evidence.push(format!(
            "unproven isolation: validator {n} was isolated, and no honest replica kept a proof of it for the CA"
        ));
    }
    set(
        "commits_after_isolation",
        last_isolation.map(|t| commit_times.iter().filter(|c| **c > t).count() as f64),
    );
    for n in honest_isolated.iter().take(EVIDENCE_MAX.saturating_sub(evidence.len())) {
        evidence.push(format!(
            "false isolation: honest validator {n} was isolated by a committed removal"
        ));
    }
    for n in honest_marked.iter().take(EVIDENCE_MAX.saturating_sub(evidence.len())) {
        let by = &marked[n];
        evidence.push(format!(
            "false positive: honest validator {n} marked by {} replica(s), first by node {} at {}",
            by.len(),
            by.iter().min_by_key(|(_, t)| **t).map_or(0, |(m, _)| *m),
            Seconds(*by.values().min().expect("marked by someone"))
        ));
    }
    figures.evidence = evidence;
    figures
}

/// Milliseconds from `began` until the last of `nodes` did something (`by`: node → when), or
/// `None` if one of them never did.
fn everywhere(by: Option<&BTreeMap<u32, Duration>>, nodes: &[u32], began: Duration) -> Option<f64> {
    let mut last = began;
    for node in nodes {
        last = last.max(*by?.get(node)?);
    }
    Some(last.saturating_sub(began).as_nanos() as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use runtime::Probe;

    use super::*;

    fn at(ms: u64, node: u32, probe: &Probe) -> Observed<'_> {
        Observed {
            at: Duration::from_millis(ms),
            node,
            probe,
        }
    }

    fn p(name: &'static str, subject: u64, value: i64) -> Probe {
        Probe::new(name, subject, value).scoped("consensus")
    }

    fn run(validators: u32) -> Run {
        Run {
            validators,
            byzantine: BTreeSet::new(),
            quiet_from: Some(Duration::from_millis(50)),
            up_at_end: (0..validators).collect(),
        }
    }

    #[test]
    fn two_blocks_at_one_height_are_a_violation_with_evidence() {
        let probes = [
            p("commit", 1, 7),
            p("commit", 1, 7),
            p("commit", 2, 8),
            p("commit", 2, 9),
        ];
        let observed = [
            at(10, 0, &probes[0]),
            at(11, 1, &probes[1]),
            at(20, 0, &probes[2]),
            at(60, 1, &probes[3]),
        ];
        let figures = analyse(observed, &run(2));
        assert_eq!(figures.get("agreement_violations"), Some(1.0));
        assert!(
            figures.evidence[0].contains(
                "at height 2 node 0 committed block 0000000000000008, node 1 committed block 0000000000000009"
            ),
            "{:?}",
            figures.evidence
        );
        assert_eq!(figures.get("quiet_commits"), Some(1.0));
        assert_eq!(figures.get("committed_height_min"), Some(2.0));
    }

    #[test]
    fn a_byzantine_replicas_commits_prove_nothing() {
        let probes = [p("commit", 1, 7), p("commit", 1, 8)];
        let observed = [at(10, 0, &probes[0]), at(11, 1, &probes[1])];
        let mut judged = run(2);
        judged.byzantine.insert(1);
        assert_eq!(analyse(observed, &judged).get("agreement_violations"), Some(0.0));
    }

    #[test]
    fn a_restart_that_forgets_commits_is_a_durability_violation_unless_damage_was_reported() {
        let probes = [p("commit", 5, 1), p("recovered", 3, 0), p("recovered", 2, 3)];
        let forgot = [at(10, 0, &probes[0]), at(20, 0, &probes[1])];
        let figures = analyse(forgot, &run(1));
        assert_eq!(figures.get("durability_violations"), Some(1.0));
        assert!(figures.evidence[0].contains("had committed height 5, recovered only 3"));
        let damaged = [at(10, 0, &probes[0]), at(20, 0, &probes[2])];
        assert_eq!(analyse(damaged, &run(1)).get("durability_violations"), Some(0.0));
    }

    #[test]
    fn a_stale_read_in_the_clients_history_is_an_anomaly() {
        // T1 appends 1 to key 0 and completes; T2 starts after and reads key 0 empty; T3 reads
        // [1] (so the append is in the version order).
        let t1 = 1u64;
        let t2 = 2u64;
        let t3 = 3u64;
        let probes = [
            p("txn", t1, 1),
            p("append", t1, 0),
            p("value", t1, 1),
            p("ok", t1, 1),
            p("txn", t2, 1),
            p("read", t2, 0),
            p("ok", t2, 2),
            p("read_len", t2, 0),
            p("txn", t3, 1),
            p("read", t3, 0),
            p("ok", t3, 3),
            p("read_len", t3, 1),
            p("element", t3, 1),
        ];
        let times = [1, 1, 1, 5, 10, 10, 12, 12, 20, 20, 22, 22, 22];
        let observed: Vec<_> = probes.iter().zip(times).map(|(p, t)| at(t, 9, p)).collect();
        let figures = analyse(observed, &run(1));
        assert_eq!(figures.get("txns_ok"), Some(3.0));
        assert!(
            figures.get("linearizability_anomalies").unwrap() >= 1.0,
            "{:?}",
            figures
        );
        assert!(
            figures.evidence.iter().any(|e| e.starts_with("linearizability:")),
            "{:?}",
            figures.evidence
        );
    }
}
