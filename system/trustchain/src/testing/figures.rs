//! Figures of a TrustChain run: certificate handshakes and their failures by class, enrollment
//! times, rotations, verify-before-switch trials, and how fast revocations reached every node.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Figures, Observed};
use crate::validate::ValidationError;

/// The figures [`analyse`] produces, with what each means.
pub const METRICS: &[(&str, &str)] = &[
    (
        "handshakes",
        "certificate handshakes answered (both chains exchanged or one refused)",
    ),
    (
        "handshake_failures",
        "handshakes in which a chain was refused, other than for a scheduled revocation",
    ),
    (
        "handshake_failures_not_yet_valid",
        "of those, refused as not yet valid (the guide's clock-skew symptom)",
    ),
    (
        "handshake_failures_unknown_issuer",
        "of those, refused for an issuer the validator does not trust (the guide's rotation symptom)",
    ),
    ("handshake_failures_expired", "of those, refused as expired"),
    ("handshake_timeouts", "handshakes never answered"),
    ("nodes_enrolled", "nodes that came to hold a certificate"),
    (
        "certificates_issued",
        "leaves the CA issued: enrollments and renewals (a renewal reissues while connections live)",
    ),
    (
        "enroll_complete_ms",
        "time from the start until every node holds a certificate; absent if one never does",
    ),
    (
        "enroll_ms_max",
        "slowest node, from its own start to holding a certificate; absent if one never does",
    ),
    ("enroll_refusals", "enrollment or renewal requests the CA refused"),
    (
        "own_chain_invalid",
        "certificates a node received that failed validation at its own clock",
    ),
    (
        "stale_on_restart",
        "nodes that restarted holding a certificate no longer accepted and renewed it before presenting it",
    ),
    ("rotations", "intermediate rotations the CA performed"),
    ("switches", "nodes that moved to a new intermediate's certificate"),
    (
        "trial_refusals",
        "verify-before-switch checks in which a peer refused the new chain",
    ),
    ("revocations", "scheduled revocations the CA performed"),
    (
        "crl_propagated_ms_max",
        "slowest node, from a revocation until it held a revocation list naming it; absent if one never did",
    ),
    (
        "revoked_accepted",
        "handshakes accepting a revoked node's chain after the validator held the list naming it",
    ),
    (
        "revoked_refusals",
        "handshakes refused because the peer's certificate was revoked",
    ),
    ("malformed_datagrams", "TrustChain datagrams that failed to decode"),
    ("storage_errors", "storage operations that failed"),
];

/// Evidence lines kept.
const EVIDENCE_MAX: usize = 5;

/// The index in [`ValidationError::CLASSES`] of a refusal for revocation.
pub const REVOKED_CLASS: i64 = 5;

/// The class (an index in [`ValidationError::CLASSES`]) of a `tc_handshake` outcome that was a
/// refusal: `1..=99` our validator refused the peer's chain, `101..=199` the peer refused ours;
/// `None` for an acceptance (0), a timeout (200) or an abandoned handshake (201).
pub fn refusal_class(outcome: i64) -> Option<i64> {
    match outcome {
        1..=99 => Some(outcome - 1),
        101..=199 => Some(outcome - 101),
        _ => None,
    }
}

/// Seconds since the start, as nanoseconds over 1e9 (the simulator's own reading of its clock,
/// so the figures do not depend on which side of the seam converts).
fn secs(t: Duration) -> f64 {
    t.as_nanos() as f64 / 1e9
}

fn ms(t: Duration) -> f64 {
    secs(t) * 1000.0
}

/// The figures of a TrustChain run of `starts.len()` nodes, node `i` started at `starts[i]`,
/// from its `probes` in the order they were recorded.
pub fn analyse(probes: &[Observed<'_>], starts: &[Duration]) -> Figures {
    let nodes = starts.len();
    let mut figures = Figures::default();
    let count = |name: &str| probes.iter().filter(|p| p.probe.name == name).count() as f64;
    // Revocations: which node, when.
    let revoked: Vec<(u32, Duration)> = probes
        .iter()
        .filter(|p| p.probe.name == "tc_revoked")
        .map(|p| (p.probe.subject as u32, p.at))
        .collect();
    handshakes(probes, &revoked, &mut figures);
    enrollment(probes, starts, &mut figures);
    let m = &mut figures.metrics;
    m.insert("enroll_refusals".into(), Some(count("tc_refused")));
    m.insert("own_chain_invalid".into(), Some(count("tc_own_invalid")));
    m.insert("stale_on_restart".into(), Some(count("tc_stale_on_restart")));
    m.insert("rotations".into(), Some(count("tc_rotation")));
    m.insert("switches".into(), Some(count("tc_switched")));
    let trial_refusals = probes
        .iter()
        .filter(|p| p.probe.name == "tc_trial" && (1..=99).contains(&p.probe.value))
        .count();
    m.insert("trial_refusals".into(), Some(trial_refusals as f64));
    m.insert("revocations".into(), Some(revoked.len() as f64));
    revocation_propagation(probes, &revoked, nodes, m);
    m.insert("malformed_datagrams".into(), Some(count("tc_malformed")));
    m.insert("storage_errors".into(), Some(count("tc_storage_error")));
    figures
}

/// Handshakes answered, refused (by class, leaving out those with a revoked node) and timed out.
fn handshakes(probes: &[Observed<'_>], revoked: &[(u32, Duration)], figures: &mut Figures) {
    let revoked_at = |n: u32| revoked.iter().find(|(k, _)| *k == n).map(|(_, t)| *t);
    let involves_revoked = |p: &Observed<'_>| {
        [p.node, p.probe.subject as u32]
            .iter()
            .any(|n| revoked_at(*n).is_some_and(|t| p.at >= t))
    };
    let mut by_class = [0f64; ValidationError::CLASSES.len()];
    let (mut answered, mut failures, mut timeouts, mut revoked_refusals) = (0f64, 0f64, 0f64, 0f64);
    for p in probes.iter().filter(|p| p.probe.name == "tc_handshake") {
        let outcome = p.probe.value;
        match outcome {
            200 => timeouts += 1.0,
            201 => {}
            _ => answered += 1.0,
        }
        let Some(class) = refusal_class(outcome) else { continue };
        if class == REVOKED_CLASS {
            revoked_refusals += 1.0;
        }
        if involves_revoked(p) {
            continue;
        }
        failures += 1.0;
        if let Some(c) = by_class.get_mut(class as usize) {
            *c += 1.0;
        }
        if figures.evidence.len() < EVIDENCE_MAX {
            let class_name = ValidationError::CLASSES.get(class as usize).unwrap_or(&"other");
            let side = if outcome > 100 {
                "our chain refused there"
            } else {
                "its chain refused here"
            };
            figures.evidence.push(format!(
                "{:.3} s: node {} handshake with node {}: {class_name} ({side})",
                secs(p.at),
                p.node,
                p.probe.subject
            ));
        }
    }
    let class_count = |name: &str| {
        ValidationError::CLASSES
            .iter()
            .position(|c| *c == name)
            .map_or(0.0, |i| by_class[i])
    };
    let m = &mut figures.metrics;
    m.insert("handshakes".into(), Some(answered));
    m.insert("handshake_failures".into(), Some(failures));
    for class in ["not_yet_valid", "unknown_issuer", "expired"] {
        m.insert(format!("handshake_failures_{class}"), Some(class_count(class)));
    }
    m.insert("handshake_timeouts".into(), Some(timeouts));
    m.insert("revoked_refusals".into(), Some(revoked_refusals));
}

/// Enrollment: each node's first certificate, timed from the run's start and from its own.
fn enrollment(probes: &[Observed<'_>], starts: &[Duration], figures: &mut Figures) {
    let nodes = starts.len();
    let mut enrolled: Vec<Option<Duration>> = vec![None; nodes];
    for p in probes.iter().filter(|p| p.probe.name == "tc_enrolled") {
        let slot = &mut enrolled[p.node as usize];
        if slot.is_none() {
            *slot = Some(p.at);
        }
    }
    let held = enrolled.iter().flatten().count();
    let m = &mut figures.metrics;
    m.insert("nodes_enrolled".into(), Some(held as f64));
    m.insert(
        "certificates_issued".into(),
        Some(probes.iter().filter(|p| p.probe.name == "tc_issued").count() as f64),
    );
    let all = enrolled.iter().all(Option::is_some);
    m.insert(
        "enroll_complete_ms".into(),
        all.then(|| enrolled.iter().flatten().map(|t| ms(*t)).fold(0.0, f64::max)),
    );
    m.insert(
        "enroll_ms_max".into(),
        all.then(|| {
            enrolled
                .iter()
                .zip(starts)
                .map(|(t, start)| ms(t.expect("all")) - start.as_secs_f64() * 1000.0)
                .fold(0.0, f64::max)
        }),
    );
    if !all && figures.evidence.len() < EVIDENCE_MAX {
        let missing: Vec<usize> = (0..nodes).filter(|i| enrolled[*i].is_none()).collect();
        figures.evidence.push(format!("nodes never enrolled: {missing:?}"));
    }
}

/// Revocation propagation: per revocation, every other node's first list naming more serials
/// than it held before, and handshakes that still accepted the revoked node after it.
fn revocation_propagation(
    probes: &[Observed<'_>],
    revoked: &[(u32, Duration)],
    nodes: usize,
    m: &mut BTreeMap<String, Option<f64>>,
) {
    let mut propagated_max: Option<f64> = Some(0.0);
    let mut accepted_after = 0f64;
    for (k, at) in revoked {
        for node in 0..nodes as u32 {
            if node == *k {
                continue;
            }
            let lists = || {
                probes
                    .iter()
                    .filter(move |p| p.node == node && p.probe.name == "tc_crl")
            };
            let before = lists().filter(|p| p.at < *at).map(|p| p.probe.value).max().unwrap_or(0);
            match lists().find(|p| p.at >= *at && p.probe.value > before) {
                Some(p) => {
                    propagated_max = propagated_max.map(|m| m.max(ms(p.at) - ms(*at)));
                    accepted_after += probes
                        .iter()
                        .filter(|h| {
                            h.node == node
                                && h.probe.name == "tc_handshake"
                                && h.probe.subject == u64::from(*k)
                                && h.probe.value == 0
                                && h.at >= p.at
                        })
                        .count() as f64;
                }
                None => propagated_max = None,
            }
        }
    }
    m.insert("crl_propagated_ms_max".into(), propagated_max);
    m.insert("revoked_accepted".into(), Some(accepted_after));
}
