//! The consensus plots: each validator's committed height, the clients' commit latency, and
//! their transactions' outcomes, over simulated time.

use std::collections::BTreeSet;
use std::time::Duration;

use hypermesh::consensus::MOUNT;
use hypermesh::testing::percentile;
use reports::{Plot, Series};
use simulator::SimTime;

use crate::workload::FinishedRun;

/// Samples per run.
const BUCKETS: usize = 200;

/// The consensus plots of `run`, whose first `validators` nodes are validators.
pub fn plots(run: &FinishedRun<'_>, validators: u32) -> Vec<Plot> {
    let end_s = run.end.as_secs_f64().max(1e-9);
    let width = end_s / BUCKETS as f64;
    let at = |b: usize| width * (b + 1) as f64;

    // Committed height: each validator's as of the end of each bucket.
    let mut height = vec![0u64; validators as usize];
    let mut heights: Vec<Vec<(f64, f64)>> = vec![Vec::with_capacity(BUCKETS); validators as usize];
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); BUCKETS];
    let (mut ok, mut failed, mut unknown) = (vec![0f64; BUCKETS], vec![0f64; BUCKETS], vec![0f64; BUCKETS]);
    let mut committed_ids = BTreeSet::new();
    let mut next = 0;
    for b in 0..BUCKETS {
        let sample = at(b);
        let until = SimTime::from_duration(Duration::from_secs_f64(sample));
        while let Some(r) = run.probes.get(next).filter(|r| r.at <= until) {
            next += 1;
            if r.probe.protocol != MOUNT.name {
                continue;
            }
            let node = r.node as usize;
            match r.probe.name {
                "commit" if node < height.len() => height[node] = height[node].max(r.probe.subject),
                // A restarted replica starts again from what its log recovered.
                "recovered" if node < height.len() => height[node] = r.probe.subject,
                "ok" => {
                    committed_ids.insert(r.probe.subject);
                    ok[b] += 1.0;
                }
                "fail" => failed[b] += 1.0,
                "info" => unknown[b] += 1.0,
                "latency_ms" if committed_ids.remove(&r.probe.subject) => {
                    latencies[b].push(r.probe.value as f64);
                }
                _ => {}
            }
        }
        for (v, series) in heights.iter_mut().enumerate() {
            series.push((sample, height[v] as f64));
        }
    }
    let latency = |pct: f64| -> Vec<(f64, f64)> {
        latencies
            .iter()
            .enumerate()
            .filter_map(|(b, l)| percentile(&mut l.clone(), pct).map(|ms| (at(b), ms)))
            .collect()
    };
    let rate = |v: &[f64]| v.iter().enumerate().map(|(b, n)| (at(b), n / width)).collect();
    vec![
        Plot {
            title: "Committed height per validator".into(),
            y_label: "height".into(),
            series: heights
                .into_iter()
                .enumerate()
                .map(|(v, points)| Series {
                    name: format!("validator {v}"),
                    points,
                })
                .collect(),
        },
        Plot {
            title: "Commit latency (submission to the client's answer)".into(),
            y_label: "ms".into(),
            series: vec![
                Series {
                    name: "p50".into(),
                    points: latency(50.0),
                },
                Series {
                    name: "p99".into(),
                    points: latency(99.0),
                },
            ],
        },
        Plot {
            title: "Client transactions".into(),
            y_label: "per second".into(),
            series: vec![
                Series {
                    name: "committed".into(),
                    points: rate(&ok),
                },
                Series {
                    name: "refused".into(),
                    points: rate(&failed),
                },
                Series {
                    name: "no answer in time".into(),
                    points: rate(&unknown),
                },
            ],
        },
    ]
}
