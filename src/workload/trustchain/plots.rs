//! The TrustChain plots: handshakes over time, and certificates held.

use reports::{Plot, Series};
use simulator::SimTime;
use trustchain::testing::{refusal_class, REVOKED_CLASS};

use crate::workload::FinishedRun;

/// Samples per run for the plots.
const BUCKETS: usize = 200;

/// The TrustChain plots of `run`.
pub fn plots(run: &FinishedRun<'_>) -> Vec<Plot> {
    let (probes, nodes, end) = (run.probes, run.nodes, run.end);
    let end_s = end.as_secs_f64().max(1e-9);
    let width = end_s / BUCKETS as f64;
    let bucket = |t: SimTime| ((t.as_secs_f64() / width) as usize).min(BUCKETS - 1);
    let (mut ok, mut failed, mut revoked) = (vec![0f64; BUCKETS], vec![0f64; BUCKETS], vec![0f64; BUCKETS]);
    let (mut enrolled, mut switched) = (vec![0f64; BUCKETS], vec![0f64; BUCKETS]);
    let mut seen = vec![false; nodes];
    for p in probes {
        let b = bucket(p.at);
        match p.probe.name {
            "tc_handshake" if p.probe.value == 0 => ok[b] += 1.0,
            "tc_handshake" if refusal_class(p.probe.value) == Some(REVOKED_CLASS) => revoked[b] += 1.0,
            "tc_handshake" if refusal_class(p.probe.value).is_some() => failed[b] += 1.0,
            "tc_enrolled" if !seen[p.node as usize] => {
                seen[p.node as usize] = true;
                enrolled[b] += 1.0;
            }
            "tc_switched" => switched[b] += 1.0,
            _ => {}
        }
    }
    let at = |i: usize| width * (i + 1) as f64;
    let per_hour = 3600.0 / width;
    let rate = |v: &[f64]| v.iter().enumerate().map(|(i, x)| (at(i), x * per_hour)).collect();
    let cumulative = |v: &[f64]| {
        let mut sum = 0.0;
        v.iter()
            .enumerate()
            .map(|(i, x)| {
                sum += x;
                (at(i), sum)
            })
            .collect()
    };
    vec![
        Plot {
            title: "Certificate handshakes".into(),
            y_label: "per hour".into(),
            series: vec![
                Series {
                    name: "accepted both ways".into(),
                    points: rate(&ok),
                },
                Series {
                    name: "a chain refused".into(),
                    points: rate(&failed),
                },
                Series {
                    name: "refused: certificate revoked".into(),
                    points: rate(&revoked),
                },
            ],
        },
        Plot {
            title: "Certificates held".into(),
            y_label: "nodes".into(),
            series: vec![
                Series {
                    name: "nodes enrolled".into(),
                    points: cumulative(&enrolled),
                },
                Series {
                    name: "moves to a new intermediate (cumulative)".into(),
                    points: cumulative(&switched),
                },
            ],
        },
    ]
}
